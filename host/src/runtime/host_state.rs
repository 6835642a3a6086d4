//! What a Store holds during one plugin call: the plugin's grants, a
//! deny-all WASI context, the resource table, the memory limiter and the
//! call's control (cancellation, deadline, host-time accounting).

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::control::{CallControl, thread_cpu_time};
use super::plugin::PluginInfo;
use crate::capabilities::process::LiveChildren;
use crate::types::PluginError;

/// Bytes of guest stderr kept per call; the rest is dropped.
const STDERR_CAPACITY: usize = 64 * 1024;

/// Receives the `progress` events of a call.
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// A progress event, as reported by an agent-driver plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    pub kind: String,
    pub message: String,
}

pub struct HostState {
    pub(crate) plugin: Arc<PluginInfo>,
    pub(crate) table: ResourceTable,
    pub(crate) control: CallControl,
    pub(crate) progress: Option<ProgressSink>,
    pub(crate) memory: MemoryLimiter,
    /// Children this call holds now (against `limits.max_children_per_call`).
    pub(crate) call_children: LiveChildren,
    wasi: WasiCtx,
    stderr: MemoryOutputPipe,
}

impl HostState {
    pub fn new(plugin: Arc<PluginInfo>, control: CallControl, progress: Option<ProgressSink>) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // Deny-all: no preopens, no environment, no arguments, no network.
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory = MemoryLimiter::new(plugin.limits.memory_bytes);
        let call_children = LiveChildren::default();
        Self { plugin, table: ResourceTable::new(), control, progress, memory, call_children, wasi, stderr }
    }

    /// Run a host operation, counting its CPU as the host's, not the guest's.
    pub(crate) fn timed<R>(&mut self, op: impl FnOnce(&mut Self) -> R) -> R {
        let started = thread_cpu_time();
        let result = op(self);
        self.control.add_host_cpu(thread_cpu_time().saturating_sub(started));
        result
    }

    /// Everything the guest wrote to stderr during the call.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    /// Refusals are logged as structured events before being returned.
    pub(crate) fn refused(&self, operation: &str, target: &str, error: PluginError) -> PluginError {
        if let PluginError::Denied(reason) = &error {
            tracing::warn!(plugin = %self.plugin.name, role = %self.plugin.role, operation, target,
                reason = %reason, "capability refused");
        }
        error
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps a plugin's linear memory and remembers that the cap was hit, so the
/// resulting trap is reported as what it is.
pub struct MemoryLimiter {
    limit: usize,
    pub(crate) exceeded: Option<usize>,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        Self { limit, exceeded: None }
    }
}

/// The error a memory limit breach traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {desired} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = Some(desired);
            return Err(MemoryLimitExceeded { limit: self.limit, desired }.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
