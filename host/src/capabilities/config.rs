//! The `config` interface: a plugin reads its own settings table (the
//! operator's `[plugins.<role>.settings]`, as a JSON object).

use wasmtime::component::HasData;

use crate::contract::bindings::agent::warden::plugin::config;

/// What `config` needs from a call: the plugin's settings.
pub struct ConfigView<'a> {
    pub settings_json: &'a str,
}

/// Links `config` to a call's [`ConfigView`].
pub struct Config;

impl HasData for Config {
    type Data<'a> = ConfigView<'a>;
}

impl config::Host for ConfigView<'_> {
    fn settings(&mut self) -> String {
        self.settings_json.to_string()
    }
}
