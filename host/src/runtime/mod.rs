//! The sandboxed component runtime: one engine, a compiled-component cache,
//! the world check of each plugin against its role, a linker per role that
//! provides only that world's imports (plus deny-all WASI), and the call of
//! a plugin in a fresh Store ([`loaded`]) through typed entry points
//! ([`calls`]).

mod cache;
mod cache_files;
pub mod calls;
pub mod embedded;
mod engine;
pub mod host_state;
mod linker;
pub mod loaded;
pub mod manifest;
pub mod pres;
pub mod slots;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::contract::bindings;
use crate::contract::role::Role;
use crate::contract::world_check;
pub use cache::CacheOutcome;
use cache::ComponentCache;
use calls::{AgentPlugin, ContextPlugin, PolicyPlugin, StoragePlugin};
use engine::EpochTicker;
pub use engine::{EPOCH_TICK, EngineLimits};
use host_state::HostState;
use loaded::{Loaded, PluginInfo};

pub struct Runtime {
    engine: Engine,
    cache: Option<ComponentCache>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// `cache_dir` of `None` compiles every plugin at load time.
    pub fn new(limits: EngineLimits, cache_dir: Option<&Path>) -> anyhow::Result<Self> {
        let engine = engine::build_engine(limits)?;
        let cache = cache_dir.map(|dir| ComponentCache::new(dir, &engine)).transpose()?;
        let _ticker = EpochTicker::start(&engine);
        Ok(Self { engine, cache, _ticker })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile a component (or fetch it from the cache).
    pub fn compile(&self, name: &str, wasm: &[u8]) -> anyhow::Result<Component> {
        self.compile_traced(name, wasm).map(|(component, _)| component)
    }

    fn compile_traced(&self, name: &str, wasm: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
        match &self.cache {
            Some(cache) => cache.load(&self.engine, wasm),
            None => cache::compile(&self.engine, wasm),
        }
        .with_context(|| format!("plugin `{name}` is not a loadable WebAssembly component"))
    }

    /// Link a component against the role's host interfaces without running it.
    pub fn link_check(&self, role: Role, component: &Component) -> anyhow::Result<()> {
        linker::for_role(&self.engine, role)?
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("its imports do not match the host's")?;
        Ok(())
    }

    /// Compile (or fetch from the cache) and check a component against its role.
    pub fn prepare(&self, role: Role, name: &str, wasm: &[u8]) -> anyhow::Result<(Component, CacheOutcome)> {
        let (component, outcome) = self.compile_traced(name, wasm)?;
        let outside = world_check::check(&self.engine, &component, role)
            .map_err(|why| anyhow::anyhow!("plugin `{name}` cannot serve as {role}: {why}"))?;
        if !outside.is_empty() {
            tracing::info!(plugin = name, exports = ?outside,
                "the plugin also exports interfaces outside the contract; Warden never calls them");
        }
        Ok((component, outcome))
    }

    pub fn load_storage(&self, info: PluginInfo, wasm: &[u8]) -> anyhow::Result<StoragePlugin> {
        self.load(Role::StorageBackend, info, wasm, pres::StoragePre::new)
    }

    pub fn load_policy(&self, info: PluginInfo, wasm: &[u8]) -> anyhow::Result<PolicyPlugin> {
        self.load(Role::SessionPolicy, info, wasm, pres::PolicyPre::new)
    }

    pub fn load_context(&self, info: PluginInfo, wasm: &[u8]) -> anyhow::Result<ContextPlugin> {
        self.load(Role::ContextBuilder, info, wasm, bindings::context::ContextBuilderPre::new)
    }

    pub fn load_agent(&self, info: PluginInfo, wasm: &[u8]) -> anyhow::Result<AgentPlugin> {
        self.load(Role::AgentDriver, info, wasm, bindings::agent::AgentDriverPre::new)
    }

    fn load<P>(
        &self,
        role: Role,
        info: PluginInfo,
        wasm: &[u8],
        typed: impl FnOnce(wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<P>,
    ) -> anyhow::Result<Loaded<P>> {
        let name = info.name.clone();
        let (component, _) = self.prepare(role, &name, wasm)?;
        let pre = linker::for_role(&self.engine, role)?
            .instantiate_pre(&component)
            .and_then(typed)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("plugin `{name}` does not fit the {role} world"))?;
        let slots = slots::CallSlots::new(info.limits.max_concurrent_calls);
        Ok(Loaded { info: Arc::new(info), engine: self.engine.clone(), pre, slots })
    }
}
