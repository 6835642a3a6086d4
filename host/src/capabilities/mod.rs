//! The capabilities the host lends to plugins, one module per WIT interface.
//! Each module holds the policy (what is allowed) and its enforcement, and
//! implements the contract's generated `Host` trait on a view of its own:
//! what one call of one plugin needs from it (the grant, the call's resource
//! table, the call's control). The runtime composes those views into a
//! call's state and links each interface on its own (see `runtime::linker`).
//!
//! Layering: capabilities use `contract` and `control`, never `runtime`.

pub mod config;
pub mod log;
pub mod process;
pub mod progress;
pub mod reserved;
pub mod sql;
pub mod store_fs;

use crate::contract::role::Role;
use crate::control::{CallControl, thread_cpu_time};
use crate::types::PluginError;

/// The plugin a capability serves, as named in logs and errors.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub plugin: &'a str,
    pub role: Role,
}

impl Who<'_> {
    /// A refusal, logged as a structured event before it is returned.
    pub fn refused(&self, operation: &str, target: &str, error: PluginError) -> PluginError {
        if let PluginError::Denied(reason) = &error {
            tracing::warn!(plugin = %self.plugin, role = %self.role, operation, target,
                reason = %reason, "capability refused");
        }
        error
    }
}

/// Run a host operation, counting its CPU as the host's, not the guest's
/// (the guest's CPU budget excludes it).
pub fn host_time<R>(control: &mut CallControl, op: impl FnOnce(&mut CallControl) -> R) -> R {
    let started = thread_cpu_time();
    let result = op(control);
    control.add_host_cpu(thread_cpu_time().saturating_sub(started));
    result
}
