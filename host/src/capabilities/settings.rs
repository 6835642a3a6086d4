//! The `config` interface: a plugin reads its own settings table.

use crate::runtime::bindings::agent::warden::plugin::config;
use crate::runtime::host_state::HostState;

impl config::Host for HostState {
    fn settings(&mut self) -> String {
        self.plugin.settings_json.clone()
    }
}
