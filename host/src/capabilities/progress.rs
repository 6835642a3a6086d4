//! The `progress` interface: events go to the call's progress sink (the MCP
//! client's progress notifications) when the caller asked for progress.

use crate::runtime::bindings::agent::warden::plugin::progress::{self, ProgressEvent as WitEvent};
use crate::runtime::host_state::{HostState, ProgressEvent};

impl progress::Host for HostState {
    fn report(&mut self, event: WitEvent) {
        tracing::debug!(plugin = %self.plugin.name, kind = %event.kind, message = %event.message, "progress");
        if let Some(sink) = &self.progress {
            sink(ProgressEvent { kind: event.kind, message: event.message });
        }
    }
}
