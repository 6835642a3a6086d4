//! What a Store holds during one plugin call, and nothing more: the
//! plugin's grants (shared), a deny-all WASI context, the resource table,
//! the memory limiter, the call's control (cancellation, deadline, host-time
//! accounting) and its progress sink. Each capability sees only its own view
//! of it (`HostState::log`, `::process`, …), which the linker hands it.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::loaded::PluginInfo;
use crate::capabilities::Who;
use crate::capabilities::config::ConfigView;
use crate::capabilities::log::LogView;
use crate::capabilities::process::{ChildLimits, LiveChildren, ProcessView};
use crate::capabilities::progress::{ProgressSink, ProgressView};
use crate::capabilities::sql::SqlView;
use crate::capabilities::store_fs::StoreFsView;
use crate::control::CallControl;

/// Bytes of guest stderr kept per call; the rest is dropped.
const STDERR_CAPACITY: usize = 64 * 1024;

pub struct HostState {
    pub(crate) plugin: Arc<PluginInfo>,
    pub(crate) table: ResourceTable,
    pub(crate) control: CallControl,
    pub(crate) progress: Option<ProgressSink>,
    pub(crate) memory: MemoryLimiter,
    /// Children this call holds now (against `limits.max_children_per_call`).
    call_children: LiveChildren,
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

    /// Everything the guest wrote to stderr during the call.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    fn who(plugin: &PluginInfo) -> Who<'_> {
        Who { plugin: &plugin.name, role: plugin.role }
    }

    pub(crate) fn log(&mut self) -> LogView<'_> {
        LogView { who: Self::who(&self.plugin) }
    }

    pub(crate) fn config(&mut self) -> ConfigView<'_> {
        ConfigView { settings_json: &self.plugin.settings_json }
    }

    pub(crate) fn progress(&mut self) -> ProgressView<'_> {
        ProgressView { who: Self::who(&self.plugin), sink: self.progress.as_ref() }
    }

    pub(crate) fn store_fs(&mut self) -> StoreFsView<'_> {
        let plugin = &*self.plugin;
        StoreFsView {
            who: Self::who(plugin),
            root: plugin.fs_root.as_ref(),
            audit: plugin.audit,
            table: &mut self.table,
            control: &mut self.control,
        }
    }

    pub(crate) fn sql(&mut self) -> SqlView<'_> {
        let plugin = &*self.plugin;
        SqlView {
            who: Self::who(plugin),
            database: plugin.database.as_ref(),
            table: &mut self.table,
            control: &mut self.control,
        }
    }

    pub(crate) fn process(&mut self) -> ProcessView<'_> {
        let plugin = &*self.plugin;
        let limits = &plugin.limits;
        ProcessView {
            who: Self::who(plugin),
            policy: plugin.process.as_ref(),
            audit: plugin.audit,
            limits: ChildLimits {
                output_cap: limits.output_cap,
                per_call: limits.max_children_per_call,
                per_plugin: limits.max_children,
            },
            plugin_children: &plugin.live_children,
            call_children: &self.call_children,
            table: &mut self.table,
            control: &mut self.control,
        }
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
