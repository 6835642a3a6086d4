//! What the operator's configuration grants a role's plugin, before it is
//! intersected with what the plugin declares. The embedded plugins get
//! working defaults (the state directory; for agent-codex `codex` under its
//! typed policy and CODEX_HOME, for agent-claude `claude` under its typed
//! policy and CLAUDE_CONFIG_DIR; the home directory as working root); a
//! plugin loaded from a file gets nothing the configuration does not name.
//! The types and checks themselves live in `warden-permissions`.

use std::path::PathBuf;

use serde::Serialize;
use warden_permissions::{EnvGrant, ProgramGrant, RequestLimits};

use crate::config::{Config, PluginConfig};
use crate::config_paths::validate_root;
use crate::contract::role::{Role, RootAccess};

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

/// The variables Claude Code reads for its provider and configuration, passed
/// on from Warden's environment to agent-claude's `claude` (the plugin
/// declares them too and cannot choose their values).
const CLAUDE_AGENT_ENV: &[&str] = &[
    "HOME",
    "PATH",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_*",
    "DISABLE_TELEMETRY",
    "DISABLE_AUTOUPDATER",
];

/// What agent-claude may reach of CLAUDE_CONFIG_DIR: its transcripts, not
/// `.credentials.json`, `settings.json` or the rest.
const CLAUDE_AGENT_ROOT_ENTRIES: &[&str] = &["projects"];

/// The embedded agent driver for Claude Code (see `runtime/embedded.rs`).
const AGENT_CLAUDE: &str = "agent-claude";

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

/// The grant for `role` under `config`; `embedded` (the name of an embedded
/// plugin, `None` for a file) selects the defaults.
pub fn grant(role: Role, config: &Config, embedded: Option<&str>) -> anyhow::Result<Grant> {
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
    let claude = embedded == Some(AGENT_CLAUDE);
    let embedded = embedded.is_some();
    match role {
        Role::StorageBackend => {
            grant.root = match (&pc.root, embedded) {
                (Some(root), _) => Some(root.clone()),
                (None, true) => Some(config.state_dir()?),
                (None, false) => None,
            };
            grant.root_entries = pc.root_entries.clone();
        }
        Role::AgentDriver => {
            let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let (home, entries, program, env) = if claude {
                (claude_config_dir(), CLAUDE_AGENT_ROOT_ENTRIES, "claude", CLAUDE_AGENT_ENV)
            } else {
                (codex_home(), DEFAULT_AGENT_ROOT_ENTRIES, "codex", DEFAULT_AGENT_ENV)
            };
            grant.root = pc.root.clone().or(if embedded { home } else { None });
            grant.root_entries = Some(pc.root_entries.clone().unwrap_or_else(|| names(entries)));
            grant.programs = match (pc.programs.is_empty(), embedded) {
                (true, true) => vec![typed_grant(program)],
                _ => pc.programs.clone(),
            };
            grant.env = EnvGrant {
                inherit: match (&pc.env, embedded) {
                    (Some(env), _) => env.clone(),
                    (None, true) => names(env),
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
    grant.root_writable = role.root() == Some(RootAccess::ReadWrite);
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
    if let Some(modes) = &pc.permission_modes {
        limits.permission_modes = modes.clone();
    }
    limits.validate().map_err(|e| anyhow::anyhow!("[plugins.agent-driver]: {e}"))?;
    Ok(limits)
}

/// Grants a role cannot use are a configuration error, not something to ignore.
fn refuse_misplaced(role: Role, pc: &PluginConfig) -> anyhow::Result<()> {
    if role.root().is_none()
        && let Some(root) = &pc.root
    {
        anyhow::bail!("a {role} plugin cannot be granted a directory (root = {})", root.display());
    }
    if role.root().is_none() && pc.root_entries.is_some() {
        anyhow::bail!("a {role} plugin cannot be granted a directory (root-entries)");
    }
    let agent_only = !pc.programs.is_empty()
        || pc.env.is_some()
        || pc.env_values.is_some()
        || pc.env_patterns.is_some()
        || pc.cwd_roots.is_some()
        || pc.max_sandbox.is_some()
        || pc.approval_policies.is_some()
        || pc.config_keys.is_some()
        || pc.permission_modes.is_some();
    if !role.runs_programs() && agent_only {
        anyhow::bail!(
            "a {role} plugin cannot be granted programs, environment, working directories or request limits"
        );
    }
    Ok(())
}

/// `name` found on PATH, under its built-in policy of the same name.
fn typed_grant(name: &str) -> ProgramGrant {
    ProgramGrant { name: name.into(), policy: Some(name.into()), ..ProgramGrant::default() }
}

fn codex_home() -> Option<PathBuf> {
    std::env::var_os("CODEX_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".codex")))
}

fn claude_config_dir() -> Option<PathBuf> {
    std::env::var_os("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".claude")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_grant(text: &str, embedded: Option<&str>) -> anyhow::Result<Grant> {
        grant(Role::AgentDriver, &Config::parse(text).unwrap(), embedded)
    }

    #[test]
    fn each_embedded_driver_gets_its_own_program_environment_and_transcripts() {
        let codex = agent_grant("", Some("agent-codex")).unwrap();
        assert_eq!(codex.programs, [typed_grant("codex")]);
        assert_eq!(codex.root_entries.as_deref().unwrap(), DEFAULT_AGENT_ROOT_ENTRIES);
        assert_eq!(codex.root, codex_home());

        let claude = agent_grant("", Some(AGENT_CLAUDE)).unwrap();
        assert_eq!(claude.programs, [typed_grant("claude")]);
        assert_eq!(
            claude.root_entries.as_deref().unwrap(),
            ["projects"],
            "never the credentials beside them"
        );
        assert_eq!(claude.root, claude_config_dir());
        assert!(claude.env.inherit.iter().any(|v| v == "ANTHROPIC_API_KEY"));
        assert!(claude.env.inherit.iter().any(|v| v == "CLAUDE_CODE_*"));
        assert!(!claude.env.inherit.iter().any(|v| v.starts_with("OPENAI")));
        assert!(claude.env.fixed.is_empty() && claude.env.patterns.is_empty(), "the plugin chooses no value");

        let file = agent_grant("", None).unwrap();
        assert!(file.programs.is_empty() && file.root.is_none() && file.env.inherit.is_empty());
    }

    #[test]
    fn permission_modes_are_the_operators_to_widen() {
        let claude = agent_grant("", Some(AGENT_CLAUDE)).unwrap();
        assert!(claude.requests.check_permission_mode("bypassPermissions").is_err());
        let widened = agent_grant(
            "[plugins.agent-driver]\npermission-modes = [\"plan\", \"bypassPermissions\"]\n",
            None,
        )
        .unwrap();
        assert!(widened.requests.check_permission_mode("bypassPermissions").is_ok());
        assert!(widened.requests.check_permission_mode("acceptEdits").is_err());
        let err = agent_grant("[plugins.agent-driver]\npermission-modes = [\"yolo\"]\n", None).unwrap_err();
        assert!(err.to_string().contains("unknown permission mode"), "{err}");
        let err = grant(
            Role::ContextBuilder,
            &Config::parse("[plugins.context-builder]\npermission-modes = [\"plan\"]\n").unwrap(),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("request limits"), "{err}");
    }
}
