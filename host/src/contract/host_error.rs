//! How a capability fails: with a refusal the guest receives as its own
//! `plugin-error`, or with a host failure that traps the call. Host failures
//! (a resource handle the table does not hold, a full resource table) are
//! Warden's problem, not the plugin's; handing them to the guest as an
//! ordinary error would let it carry on as if it had done something wrong.

use super::bindings::types::PluginError;

#[derive(Debug)]
pub enum HostError {
    /// Returned to the guest.
    Plugin(PluginError),
    /// Traps the call.
    Host(wasmtime::Error),
}

impl HostError {
    /// The error for the guest, or the trap.
    pub fn into_plugin_error(self) -> wasmtime::Result<PluginError> {
        match self {
            HostError::Plugin(error) => Ok(error),
            HostError::Host(error) => Err(error),
        }
    }
}

impl From<PluginError> for HostError {
    fn from(error: PluginError) -> Self {
        HostError::Plugin(error)
    }
}

impl From<wasmtime::component::ResourceTableError> for HostError {
    fn from(error: wasmtime::component::ResourceTableError) -> Self {
        HostError::Host(error.into())
    }
}
