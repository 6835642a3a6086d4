//! The `log` interface: guest messages go to the host's structured log,
//! tagged with the plugin's name and role. Warden's log writer
//! (`crate::logging`) keeps every event on one line, escaping newlines and
//! control characters, so a plugin cannot forge a log line that looks like
//! the host's (`capability refused plugin=…`) or move the terminal's cursor.

use wasmtime::component::HasData;

use super::Who;
use crate::contract::bindings::agent::warden::plugin::log::{self, Level};

/// What `log` needs from a call: whose messages they are.
pub struct LogView<'a> {
    pub who: Who<'a>,
}

/// Links `log` to a call's [`LogView`].
pub struct Log;

impl HasData for Log {
    type Data<'a> = LogView<'a>;
}

impl log::Host for LogView<'_> {
    fn log(&mut self, level: Level, message: String) {
        let plugin = self.who.plugin;
        let role = self.who.role.world();
        match level {
            Level::Trace => tracing::trace!(plugin, role, "{message}"),
            Level::Debug => tracing::debug!(plugin, role, "{message}"),
            Level::Info => tracing::info!(plugin, role, "{message}"),
            Level::Warn => tracing::warn!(plugin, role, "{message}"),
            Level::Error => tracing::error!(plugin, role, "{message}"),
        }
    }
}
