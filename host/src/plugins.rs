//! Turning the operator's configuration into loaded plugins: which wasm
//! each role runs, what it declared, what it is granted, and its limits.

use std::path::PathBuf;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::capabilities::process_grant::{ArgPattern, ProcessPolicy, ProgramGrant};
use crate::capabilities::store_fs::FsRoot;
use crate::config::{Config, PluginConfig};
use crate::runtime::embedded::default_plugin;
use crate::runtime::manifest::Manifest;
use crate::runtime::plugin::{PluginInfo, PluginLimits, PluginSource};
use crate::runtime::role::Role;
use crate::runtime::roles::{AgentPlugin, ContextPlugin, PolicyPlugin, StoragePlugin};
use crate::runtime::{EngineLimits, Runtime};

/// Variables the default agent grant passes to children (the plugin must declare them too).
const DEFAULT_AGENT_ENV: &[&str] = &[
    "HOME",
    "PATH",
    "CODEX_HOME",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "SSL_CERT_FILE",
];
/// Largest file a plugin may read in one call.
const MAX_READ_BYTES: u64 = 256 << 20;

/// One plugin per role, ready to call.
pub struct PluginSet {
    pub storage: StoragePlugin,
    pub policy: PolicyPlugin,
    pub context: ContextPlugin,
    pub agent: AgentPlugin,
}

/// The engine limits that fit every configured plugin.
pub fn engine_limits(config: &Config) -> EngineLimits {
    let max_memory_bytes = Role::ALL.iter().map(|r| config.plugin(*r).memory_bytes()).max().unwrap_or(0);
    EngineLimits { concurrent_instances: config.max_concurrent_calls.unwrap_or(32), max_memory_bytes }
}

/// Build the runtime for `config`, with its compiled-component cache.
pub fn runtime(config: &Config) -> anyhow::Result<Runtime> {
    Runtime::new(engine_limits(config), config.cache_dir().as_deref())
}

pub fn load_all(runtime: &Runtime, config: &Config) -> anyhow::Result<PluginSet> {
    let (info, wasm) = plugin_info(Role::StorageBackend, config)?;
    let storage = runtime.load_storage(info, &wasm)?;
    let (info, wasm) = plugin_info(Role::SessionPolicy, config)?;
    let policy = runtime.load_policy(info, &wasm)?;
    let (info, wasm) = plugin_info(Role::ContextBuilder, config)?;
    let context = runtime.load_context(info, &wasm)?;
    let (info, wasm) = plugin_info(Role::AgentDriver, config)?;
    let agent = runtime.load_agent(info, &wasm)?;
    Ok(PluginSet { storage, policy, context, agent })
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
    let (name, source, wasm) = match &pc.path {
        Some(path) => {
            let wasm = std::fs::read(path)
                .with_context(|| format!("cannot read the {role} plugin {}", path.display()))?;
            let name = path.file_stem().map_or("plugin".into(), |s| s.to_string_lossy().into_owned());
            (name, PluginSource::File(path.clone()), wasm)
        }
        None => {
            let (name, wasm) = default_plugin(role);
            (name.to_string(), PluginSource::Embedded(name), wasm.to_vec())
        }
    };
    let manifest = Manifest::from_wasm(&wasm).map_err(|e| anyhow::anyhow!("plugin `{name}`: {e}"))?;
    if let Some(declared) = &manifest.role
        && declared != role.world()
    {
        anyhow::bail!("plugin `{name}` declares the role `{declared}` but is configured as {role}");
    }
    let info = PluginInfo {
        limits: PluginLimits {
            memory_bytes: pc.memory_bytes(),
            cpu_budget: pc.cpu_budget(),
            output_cap: pc.output_cap(),
        },
        fs_root: fs_root(role, &pc, config).with_context(|| format!("plugin `{name}` ({role})"))?,
        process: process_policy(role, &pc, &manifest, &name)?,
        settings_json: serde_json::to_string(&pc.settings)?,
        audit: config.audit,
        sha256: hex::encode(Sha256::digest(&wasm)),
        name,
        role,
        source,
        manifest,
    };
    Ok((info, wasm))
}

fn fs_root(role: Role, pc: &PluginConfig, config: &Config) -> anyhow::Result<Option<FsRoot>> {
    let open = |path: &PathBuf, writable| {
        FsRoot::open(path, writable, MAX_READ_BYTES)
            .map_err(|e| anyhow::anyhow!("root {}: {e}", path.display()))
    };
    match role {
        Role::StorageBackend => {
            let path = match &pc.root {
                Some(root) => root.clone(),
                None => config.state_dir()?,
            };
            open(&path, true).map(Some)
        }
        Role::AgentDriver => {
            let path = pc.root.clone().or_else(codex_home);
            match path {
                Some(path) if path.is_dir() => open(&path, false).map(Some),
                Some(path) => {
                    tracing::warn!(root = %path.display(), "the agent's directory does not exist yet; no transcripts can be read");
                    Ok(None)
                }
                None => Ok(None),
            }
        }
        Role::SessionPolicy | Role::ContextBuilder => {
            if let Some(root) = &pc.root {
                anyhow::bail!("a {role} plugin cannot be granted a directory (root = {})", root.display());
            }
            Ok(None)
        }
    }
}

fn process_policy(
    role: Role,
    pc: &PluginConfig,
    manifest: &Manifest,
    name: &str,
) -> anyhow::Result<Option<ProcessPolicy>> {
    if role != Role::AgentDriver {
        if !pc.programs.is_empty() || pc.env.is_some() || pc.cwd_roots.is_some() {
            anyhow::bail!("a {role} plugin cannot be granted programs, environment or working directories");
        }
        return Ok(None);
    }
    let granted = if pc.programs.is_empty() { default_codex_grants() } else { pc.programs.clone() };
    let env_granted =
        pc.env.clone().unwrap_or_else(|| DEFAULT_AGENT_ENV.iter().map(|s| s.to_string()).collect());
    let cwd_roots = match &pc.cwd_roots {
        Some(roots) => roots.clone(),
        None => std::env::var_os("HOME").map(PathBuf::from).into_iter().collect(),
    };
    let cwd_roots = cwd_roots
        .into_iter()
        .filter_map(|root| match root.canonicalize() {
            Ok(canonical) => Some(canonical),
            Err(e) => {
                tracing::warn!(plugin = name, root = %root.display(), error = %e, "ignoring a working-directory root");
                None
            }
        })
        .collect();
    Ok(Some(ProcessPolicy {
        plugin: name.to_string(),
        granted,
        declared: manifest.programs.clone(),
        env_granted,
        env_declared: manifest.env.clone(),
        cwd_roots,
    }))
}

fn default_codex_grants() -> Vec<ProgramGrant> {
    let pattern = |items: &[&str]| ArgPattern(items.iter().map(|s| s.to_string()).collect());
    vec![
        ProgramGrant { name: "codex".into(), path: None, args: pattern(&["exec", "**"]) },
        ProgramGrant { name: "codex".into(), path: None, args: pattern(&["-a", "*", "exec", "**"]) },
    ]
}

fn codex_home() -> Option<PathBuf> {
    std::env::var_os("CODEX_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".codex")))
}
