//! What the operator's configuration grants a role's plugin, before it is
//! intersected with what the plugin declares. The embedded default plugins
//! get working defaults (the state directory, `codex` under its typed
//! policy, CODEX_HOME, the home directory as working root); a plugin loaded
//! from a file gets nothing the configuration does not name. The types and
//! checks themselves live in `warden-permissions`.

use std::path::PathBuf;

use serde::Serialize;
use warden_permissions::{EnvGrant, ProgramGrant, RequestLimits};

use crate::config::{Config, PluginConfig};
use crate::config_paths::validate_root;
use crate::contract::role::Role;

/// Variables the default agent grant passes on from Warden's environment
/// (the plugin must declare them too); plugins cannot choose their values.
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

/// What an agent driver may reach of its read-only root (CODEX_HOME): the
/// transcripts agent-codex reads, not `auth.json`, `config.toml` or the rest.
const DEFAULT_AGENT_ROOT_ENTRIES: &[&str] = &["sessions", "archived_sessions"];

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Grant {
    /// The directory for `store-fs` (writable) or `store-fs-readonly`.
    pub root: Option<PathBuf>,
    pub root_writable: bool,
    /// The only top-level entries of `root` granted (`None`: all of it).
    pub root_entries: Option<Vec<String>>,
    pub programs: Vec<ProgramGrant>,
    pub env: EnvGrant,
    pub cwd_roots: Vec<PathBuf>,
    pub memory_mib: u32,
    #[serde(skip)]
    pub requests: RequestLimits,
}

/// The grant for `role` under `config`; `embedded` selects the defaults.
pub fn grant(role: Role, config: &Config, embedded: bool) -> anyhow::Result<Grant> {
    let mut pc = config.plugin(role);
    refuse_misplaced(role, &pc)?;
    let section = format!("under [plugins.{role}]");
    pc.root = pc.root.map(|root| validate_root(&format!("root {section}"), &root)).transpose()?;
    if let Some(roots) = &mut pc.cwd_roots {
        for root in roots {
            *root = validate_root(&format!("cwd-roots {section}"), root)?;
        }
    }
    let memory_mib = (pc.memory_bytes() >> 20) as u32;
    let mut grant = Grant { memory_mib, ..Grant::default() };
    match role {
        Role::StorageBackend => {
            grant.root = match (&pc.root, embedded) {
                (Some(root), _) => Some(root.clone()),
                (None, true) => Some(config.state_dir()?),
                (None, false) => None,
            };
            grant.root_writable = true;
            grant.root_entries = pc.root_entries.clone();
        }
        Role::AgentDriver => {
            grant.root = pc.root.clone().or_else(|| if embedded { codex_home() } else { None });
            grant.root_entries = Some(
                pc.root_entries
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AGENT_ROOT_ENTRIES.iter().map(|s| s.to_string()).collect()),
            );
            grant.programs = match (pc.programs.is_empty(), embedded) {
                (true, true) => vec![default_codex_grant()],
                _ => pc.programs.clone(),
            };
            grant.env = EnvGrant {
                inherit: match (&pc.env, embedded) {
                    (Some(env), _) => env.clone(),
                    (None, true) => DEFAULT_AGENT_ENV.iter().map(|s| s.to_string()).collect(),
                    (None, false) => Vec::new(),
                },
                fixed: pc.env_values.clone().unwrap_or_default(),
                patterns: pc.env_patterns.clone().unwrap_or_default(),
            };
            grant.env.validate().map_err(|e| anyhow::anyhow!("[plugins.{role}]: {e}"))?;
            grant.cwd_roots = match (&pc.cwd_roots, embedded) {
                (Some(roots), _) => roots.clone(),
                (None, true) => std::env::var_os("HOME").map(PathBuf::from).into_iter().collect(),
                (None, false) => Vec::new(),
            };
            grant.requests = request_limits(&pc)?;
        }
        Role::SessionPolicy | Role::ContextBuilder => {}
    }
    Ok(grant)
}

/// The operator's bounds on what a turn may ask for, over the safe defaults.
fn request_limits(pc: &PluginConfig) -> anyhow::Result<RequestLimits> {
    let mut limits = RequestLimits::default();
    if let Some(max) = pc.max_sandbox {
        limits.max_sandbox = max;
    }
    if let Some(policies) = &pc.approval_policies {
        limits.approval_policies = policies.clone();
    }
    if let Some(keys) = &pc.config_keys {
        limits.config_keys = keys.clone();
    }
    limits.validate().map_err(|e| anyhow::anyhow!("[plugins.agent-driver]: {e}"))?;
    Ok(limits)
}

/// Grants a role cannot use are a configuration error, not something to ignore.
fn refuse_misplaced(role: Role, pc: &PluginConfig) -> anyhow::Result<()> {
    if matches!(role, Role::SessionPolicy | Role::ContextBuilder)
        && let Some(root) = &pc.root
    {
        anyhow::bail!("a {role} plugin cannot be granted a directory (root = {})", root.display());
    }
    if matches!(role, Role::SessionPolicy | Role::ContextBuilder) && pc.root_entries.is_some() {
        anyhow::bail!("a {role} plugin cannot be granted a directory (root-entries)");
    }
    let agent_only = !pc.programs.is_empty()
        || pc.env.is_some()
        || pc.env_values.is_some()
        || pc.env_patterns.is_some()
        || pc.cwd_roots.is_some()
        || pc.max_sandbox.is_some()
        || pc.approval_policies.is_some()
        || pc.config_keys.is_some();
    if role != Role::AgentDriver && agent_only {
        anyhow::bail!(
            "a {role} plugin cannot be granted programs, environment, working directories or request limits"
        );
    }
    Ok(())
}

fn default_codex_grant() -> ProgramGrant {
    ProgramGrant { name: "codex".into(), policy: Some("codex".into()), ..ProgramGrant::default() }
}

fn codex_home() -> Option<PathBuf> {
    std::env::var_os("CODEX_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".codex")))
}
