//! The one wasmtime Engine: epoch interruption for CPU budgets, no
//! component-model concurrency (a sync host), and the pooling allocator
//! sized for a handful of plugins; plus the thread that advances epochs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, PoolingAllocationConfig};

/// How often the epoch advances, i.e. how often a running guest's CPU budget is checked.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Pool sizes. Each call holds one component instance for its duration.
#[derive(Clone, Copy, Debug)]
pub struct EngineLimits {
    /// Plugin calls that may run at the same time.
    pub concurrent_instances: u32,
    /// The largest linear memory any plugin may be granted, in bytes.
    pub max_memory_bytes: usize,
}

/// Bytes of a freed instance's memory (and of each table) kept resident and zeroed for the next one.
const KEEP_RESIDENT: usize = 2 << 20;
/// Freed instance slots kept warm (with their resident pages); older ones are handed back to the kernel.
const MAX_WARM_SLOTS: u32 = 16;

pub fn build_engine(limits: EngineLimits) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(limits.concurrent_instances)
        .total_core_instances(limits.concurrent_instances * 16)
        .total_memories(limits.concurrent_instances * 2)
        .total_tables(limits.concurrent_instances * 8)
        .max_memory_size(limits.max_memory_bytes)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        // Calls are synchronous: no fiber stacks. The default pool of 1 000
        // guarded stacks added 2 000 mappings, which every process sharing
        // Warden's memory walks when it exits (a namespace's PID 1 does).
        .total_stacks(0)
        // Every call instantiates afresh. A freed instance's memory is reset
        // by zeroing the pages it wrote (found with the PAGEMAP_SCAN ioctl
        // where the kernel has it) instead of being handed back to the kernel
        // and faulted in again by the next call: about 45 fewer page faults
        // and 15 fewer `madvise` calls per turn. The pages stay resident in
        // the warm slots, bounded by their number.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto)
        .max_unused_warm_slots(MAX_WARM_SLOTS);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .concurrency_support(false)
        .allocation_strategy(pool)
        .max_wasm_stack(1 << 20);
    Engine::new(&config).map_err(anyhow::Error::from)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("warden-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
