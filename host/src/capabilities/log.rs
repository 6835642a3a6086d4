//! The `log` interface: guest messages go to the host's structured log,
//! tagged with the plugin's name and role. Warden's log writer
//! (`crate::logging`) keeps every event on one line, escaping newlines and
//! control characters, so a plugin cannot forge a log line that looks like
//! the host's (`capability refused plugin=…`) or move the terminal's cursor.

use crate::runtime::bindings::agent::warden::plugin::log::{self, Level};
use crate::runtime::host_state::HostState;

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = self.plugin.name.as_str();
        let role = self.plugin.role.world();
        match level {
            Level::Trace => tracing::trace!(plugin, role, "{message}"),
            Level::Debug => tracing::debug!(plugin, role, "{message}"),
            Level::Info => tracing::info!(plugin, role, "{message}"),
            Level::Warn => tracing::warn!(plugin, role, "{message}"),
            Level::Error => tracing::error!(plugin, role, "{message}"),
        }
    }
}
