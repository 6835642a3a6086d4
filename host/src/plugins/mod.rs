//! Turning the operator's configuration into loaded plugins: which wasm
//! each role runs, what it declared, what it is granted, and its limits.

pub mod agents;
pub mod grants;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::capabilities::sql::Database;
use crate::capabilities::store_fs::FsRoot;
use crate::config::{Config, PluginConfig};
use crate::config_paths::validate_root;
use crate::contract::role::Role;
use crate::runtime::calls::{AgentPlugin, ContextPlugin, PolicyPlugin, StoragePlugin};
use crate::runtime::embedded::{default_plugin, plugin_named};
use crate::runtime::loaded::describe;
use crate::runtime::loaded::{PluginInfo, PluginLimits, PluginSource};
use crate::runtime::manifest::{FromWasm, Manifest};
use crate::runtime::{EngineLimits, Runtime};
use crate::types::PluginError;
use grants::Grant;
use warden_permissions::{EnvDeclaration, ProcessPolicy};

/// Largest file a plugin may read in one call.
const MAX_READ_BYTES: u64 = 256 << 20;

/// One plugin per role, and one agent driver per served agent, ready to call.
pub struct PluginSet {
    pub storage: StoragePlugin,
    pub policy: PolicyPlugin,
    pub context: ContextPlugin,
    /// In tool order; never empty.
    pub agents: Vec<ServedAgent>,
}

/// An agent Warden serves: the tools `<name>` and `<name>-reply`.
pub struct ServedAgent {
    pub name: String,
    pub plugin: AgentPlugin,
    /// Wall-clock limit of one of its turns (`turn-timeout-secs`).
    pub turn_timeout: std::time::Duration,
}

impl ServedAgent {
    /// Why this agent cannot run turns (a granted program missing), if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        let policy = self.plugin.info.process.as_ref()?;
        policy.granted.iter().find_map(|program| program.executable.as_ref().err().cloned())
    }
}

impl PluginSet {
    pub fn agent(&self, name: &str) -> Option<&ServedAgent> {
        self.agents.iter().find(|a| a.name == name)
    }

    pub fn agent_names(&self) -> Vec<&str> {
        self.agents.iter().map(|a| a.name.as_str()).collect()
    }
}

/// The engine limits that fit every configured plugin: a pool that holds
/// every plugin's call slots at once, so no plugin's hung calls can take the
/// instances another plugin needs.
pub fn engine_limits(config: &Config) -> anyhow::Result<EngineLimits> {
    let mut sections: Vec<(String, PluginConfig)> = Role::ALL
        .into_iter()
        .filter(|r| *r != Role::AgentDriver)
        .map(|r| (format!("[plugins.{r}]"), config.plugin(r)))
        .collect();
    for spec in agents::served(config)? {
        sections.push((format!("the agent `{}`", spec.name), spec.config.plugin(Role::AgentDriver)));
    }
    let max_memory_bytes = sections.iter().map(|(_, pc)| pc.memory_bytes()).max().unwrap_or(0);
    if let Some((section, _)) = sections.iter().find(|(_, pc)| pc.max_concurrent_calls() == 0) {
        anyhow::bail!("max-concurrent-calls = 0 under {section} would refuse every call; set at least 1");
    }
    let slots: u32 = sections.iter().map(|(_, pc)| pc.max_concurrent_calls()).sum();
    let concurrent_instances = match config.max_concurrent_calls {
        None => slots,
        Some(pool) if pool >= slots => pool,
        Some(pool) => anyhow::bail!(
            "max-concurrent-calls = {pool} is smaller than the plugins' own limits together ({slots}, \
             the sum of `max-concurrent-calls` under each [plugins.<role>] and each agent, 8 each by \
             default): one plugin's hung calls could then take the instances the others need; raise it \
             to {slots} or lower a plugin's limit"
        ),
    };
    Ok(EngineLimits { concurrent_instances, max_memory_bytes })
}

/// Build the runtime for `config`, with its compiled-component cache.
pub fn runtime(config: &Config) -> anyhow::Result<Runtime> {
    Runtime::new(engine_limits(config)?, config.cache_dir()?.as_deref())
}

pub fn load_all(runtime: &Runtime, config: &Config) -> anyhow::Result<PluginSet> {
    let (info, wasm) = plugin_info(Role::StorageBackend, config)?;
    let storage = runtime.load_storage(info, &wasm)?;
    let (info, wasm) = plugin_info(Role::SessionPolicy, config)?;
    let policy = runtime.load_policy(info, &wasm)?;
    let (info, wasm) = plugin_info(Role::ContextBuilder, config)?;
    let context = runtime.load_context(info, &wasm)?;
    let mut agents = Vec::new();
    for spec in agents::served(config)? {
        let (info, wasm) = plugin_info(Role::AgentDriver, &spec.config)
            .with_context(|| format!("the agent `{}`", spec.name))?;
        let plugin = runtime.load_agent(info, &wasm)?;
        let turn_timeout = spec.config.plugin(Role::AgentDriver).turn_timeout();
        let served = ServedAgent { name: spec.name, plugin, turn_timeout };
        if let Some(why) = served.unavailable() {
            tracing::warn!(agent = %served.name, "the agent is unavailable until this is fixed: {why}");
        }
        agents.push(served);
    }
    Ok(PluginSet { storage, policy, context, agents })
}

/// The configured storage plugin, granted `root` instead of the state directory.
pub fn load_storage_at(
    runtime: &Runtime,
    config: &Config,
    root: &std::path::Path,
) -> anyhow::Result<StoragePlugin> {
    let mut config = config.clone();
    config.plugins.entry(Role::StorageBackend).or_default().root = Some(root.to_path_buf());
    let (info, wasm) = plugin_info(Role::StorageBackend, &config)?;
    runtime.load_storage(info, &wasm)
}

/// Resolve a role's plugin: its wasm, its declaration, and its grants.
pub fn plugin_info(role: Role, config: &Config) -> anyhow::Result<(PluginInfo, Vec<u8>)> {
    let pc = config.plugin(role);
    if let (Some(path), Some(name)) = (&pc.path, &pc.plugin) {
        anyhow::bail!(
            "[plugins.{role}] names both a file (path = {}) and an embedded plugin (plugin = {name:?}); keep one",
            path.display()
        );
    }
    let (name, source, wasm) = match &pc.path {
        Some(path) => {
            let path = &validate_root(&format!("path under [plugins.{role}]"), path)?;
            let wasm = std::fs::read(path)
                .with_context(|| format!("cannot read the {role} plugin {}", path.display()))?;
            (file_plugin_name(path), PluginSource::File(path.clone()), wasm)
        }
        None => {
            let (name, wasm) = match &pc.plugin {
                Some(name) => {
                    plugin_named(role, name).map_err(|e| anyhow::anyhow!("[plugins.{role}]: {e}"))?
                }
                None => default_plugin(role),
            };
            (name.to_string(), PluginSource::Embedded(name), wasm.to_vec())
        }
    };
    let info = resolve(role, config, name, source, &wasm)?;
    Ok((info, wasm))
}

/// A plugin's name from its file name.
pub fn file_plugin_name(path: &Path) -> String {
    path.file_stem().map_or("plugin".into(), |s| s.to_string_lossy().into_owned())
}

/// Intersect what `wasm` declares with what `config` grants `role`.
pub fn resolve(
    role: Role,
    config: &Config,
    name: String,
    source: PluginSource,
    wasm: &[u8],
) -> anyhow::Result<PluginInfo> {
    let manifest = Manifest::from_wasm(wasm).map_err(|e| anyhow::anyhow!("plugin `{name}`: {e}"))?;
    if let Some(declared) = &manifest.role
        && declared != role.world()
    {
        anyhow::bail!("plugin `{name}` declares the role `{declared}` but is configured as {role}");
    }
    let pc = config.plugin(role);
    let embedded = match &source {
        PluginSource::Embedded(name) => Some(*name),
        _ => None,
    };
    let grant = grants::grant(role, config, embedded)?;
    if let Some(needed) = manifest.memory_mib
        && needed > grant.memory_mib
    {
        anyhow::bail!(
            "plugin `{name}` needs {needed} MiB of memory but {role} plugins are limited to {} MiB; raise memory-mib under [plugins.{role}]",
            grant.memory_mib
        );
    }
    Ok(PluginInfo {
        limits: PluginLimits {
            memory_bytes: pc.memory_bytes(),
            cpu_budget: pc.cpu_budget(),
            output_cap: pc.output_cap(),
            max_children_per_call: pc.max_children_per_call(),
            max_children: pc.max_children(),
            call_timeout: pc.call_timeout(),
            max_concurrent_calls: pc.max_concurrent_calls() as usize,
        },
        fs_root: fs_root(&grant, &manifest, config).with_context(|| format!("plugin `{name}` ({role})"))?,
        database: database(&grant, &manifest, role).with_context(|| format!("plugin `{name}` ({role})"))?,
        process: process_policy(role, &grant, &manifest, &name)?,
        settings_json: serde_json::to_string(&pc.settings)?,
        audit: config.audit,
        live_children: Default::default(),
        sha256: hex::encode(Sha256::digest(wasm)),
        name,
        role,
        source,
        manifest,
    })
}

/// The directory both declared and granted, opened, with Warden's own files
/// inside it fenced off; `None` if either side is missing.
fn fs_root(grant: &Grant, manifest: &Manifest, config: &Config) -> anyhow::Result<Option<FsRoot>> {
    let (Some(declared), Some(path)) = (&manifest.root, &grant.root) else { return Ok(None) };
    if !grant.root_writable && !path.is_dir() {
        tracing::warn!(root = %path.display(), name = %declared, "the granted read-only directory does not exist yet");
        return Ok(None);
    }
    let failed =
        |e: PluginError| anyhow::anyhow!("directory `{declared}` at {}: {}", path.display(), describe(&e));
    let mut root = FsRoot::open(path, grant.root_writable, MAX_READ_BYTES).map_err(failed)?;
    if let Some(entries) = &grant.root_entries {
        root.limit_to(entries.clone()).map_err(failed)?;
    }
    if grant.root_writable {
        for (host_path, what) in config.host_paths() {
            root.reserve(&host_path, &what).map_err(failed)?;
        }
    }
    Ok(Some(root))
}

/// The database both declared and granted; `None` if either side is missing.
fn database(grant: &Grant, manifest: &Manifest, role: Role) -> anyhow::Result<Option<Arc<Database>>> {
    match (&grant.database, manifest.database) {
        (Some(granted), true) => Database::open(granted, &format!("plugins.{role}.database")).map(Some),
        (None, true) => anyhow::bail!(
            "it keeps its data in a database, and none is granted: give one under [plugins.{role}.database] (see docs/postgres-setup.md)"
        ),
        (Some(_), false) => anyhow::bail!(
            "[plugins.{role}.database] is set, but this plugin keeps its data elsewhere and declares no database: \
             choose one that does (plugin = \"storage-postgres\") or remove the database grant"
        ),
        (None, false) => Ok(None),
    }
}

/// The agent's effective process permissions: each granted program
/// resolved to an absolute path and its argument policy, intersected with
/// the manifest's declaration at call time.
fn process_policy(
    role: Role,
    grant: &Grant,
    manifest: &Manifest,
    name: &str,
) -> anyhow::Result<Option<ProcessPolicy>> {
    if !role.runs_programs() {
        return Ok(None);
    }
    let cwd_roots = grant
        .cwd_roots
        .iter()
        .filter_map(|root| match root.canonicalize() {
            Ok(canonical) => Some(canonical),
            Err(e) => {
                tracing::warn!(plugin = name, root = %root.display(), error = %e, "ignoring a working-directory root");
                None
            }
        })
        .collect();
    let host_path = std::env::var_os("PATH");
    let mut granted = Vec::new();
    for program in &grant.programs {
        let resolved = program
            .resolve(&grant.requests, host_path.as_deref())
            .map_err(|e| anyhow::anyhow!("plugin `{name}` ([plugins.{role}]): {e}"))?;
        if resolved.is_unrestricted() {
            tracing::warn!(plugin = name, program = %resolved.name,
                "UNRESTRICTED program grant: the plugin may pass any argument, including ones that load code or start other programs");
        }
        if let Err(why) = &resolved.executable {
            tracing::warn!(plugin = name, "{why}");
        }
        granted.push(resolved);
    }
    Ok(Some(ProcessPolicy {
        plugin: name.to_string(),
        granted,
        declared: manifest.programs.clone(),
        env: grant.env.clone(),
        env_declared: EnvDeclaration(manifest.env.clone()),
        cwd_roots,
        requests: grant.requests.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_holds_every_plugins_call_slots() {
        let limits = |text: &str| engine_limits(&Config::parse(text).unwrap());
        // Three roles and the three default agents.
        assert_eq!(limits("").unwrap().concurrent_instances, 6 * crate::config::DEFAULT_MAX_CONCURRENT_CALLS);
        let wider = "max-concurrent-calls = 50\n[plugins.agent-driver]\nmax-concurrent-calls = 2\n";
        assert_eq!(limits(wider).unwrap().concurrent_instances, 50);
        let err = limits("max-concurrent-calls = 16\n").unwrap_err().to_string();
        assert!(err.contains("max-concurrent-calls = 16") && err.contains("(48"), "{err}");
        let err = limits("[agents.claude]\nmax-concurrent-calls = 0\n").unwrap_err().to_string();
        assert!(err.contains("the agent `claude`"), "{err}");
        let err = limits("[plugins.session-policy]\nmax-concurrent-calls = 0\n").unwrap_err().to_string();
        assert!(err.contains("[plugins.session-policy]"), "{err}");
    }

    #[test]
    fn an_embedded_plugin_is_chosen_by_name() {
        let info = |text: &str| plugin_info(Role::AgentDriver, &Config::parse(text).unwrap()).map(|(i, _)| i);
        let error = |role: Role, text: &str| match plugin_info(role, &Config::parse(text).unwrap()) {
            Ok((info, _)) => panic!("{text}: loaded {}", info.name),
            Err(e) => e.to_string(),
        };
        assert_eq!(info("").unwrap().name, "agent-codex", "codex stays the default agent");
        let claude = info("[plugins.agent-driver]\nplugin = \"agent-claude\"\n").unwrap();
        assert_eq!(claude.name, "agent-claude");
        assert_eq!(claude.manifest.programs[0].name, "claude");
        let err = error(Role::AgentDriver, "[plugins.agent-driver]\nplugin = \"agent-gpt\"\n");
        assert!(err.contains("agent-codex, agent-claude") && err.contains("`path`"), "{err}");
        let both = "[plugins.agent-driver]\nplugin = \"agent-claude\"\npath = \"/x.wasm\"\n";
        assert!(error(Role::AgentDriver, both).contains("keep one"));
        let err = error(Role::StorageBackend, "[plugins.storage-backend]\nplugin = \"agent-claude\"\n");
        assert!(err.contains("no embedded storage-backend plugin"), "{err}");
    }
}
