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

/// A contract error as `kind: message`.
pub fn describe(error: &PluginError) -> String {
    let (kind, message) = match error {
        PluginError::NotFound(m) => ("not found", m),
        PluginError::Invalid(m) => ("invalid", m),
        PluginError::Denied(m) => ("denied", m),
        PluginError::Busy(m) => ("busy", m),
        PluginError::Conflict(m) => ("conflict", m),
        PluginError::Io(m) => ("I/O error", m),
        PluginError::Corrupt(m) => ("corrupt", m),
        PluginError::Timeout(m) => ("timeout", m),
        PluginError::Cancelled(m) => ("cancelled", m),
        PluginError::Failed(m) => ("failed", m),
        PluginError::Unsupported(m) => ("unsupported", m),
    };
    format!("{kind}: {message}")
}
