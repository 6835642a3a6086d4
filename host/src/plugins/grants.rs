//! What the operator's configuration grants a role's plugin, before it is
//! intersected with what the plugin declares. The embedded plugins get
//! working defaults (the state directory; for agent-codex `codex` under its
//! typed policy and CODEX_HOME, for agent-claude `claude` under its typed
//! policy and CLAUDE_CONFIG_DIR; the home directory as working root); a
//! plugin loaded from a file gets nothing the configuration does not name.
//! The types and checks themselves live in `warden-permissions`.

use std::path::PathBuf;

use serde::Serialize;
use warden_permissions::{DatabaseGrant, EnvGrant, ProgramGrant, RequestLimits};

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
/// The embedded agent driver for Gemini CLI.
const AGENT_GEMINI: &str = "agent-gemini";

/// The variables Gemini CLI reads for its provider, passed on from Warden's
/// environment to agent-gemini's `gemini`. Left out on purpose, so a
/// plugin's child never gets them: the ones that trust the working
/// directory (`GEMINI_CLI_TRUST_WORKSPACE`, whose project settings may start
/// MCP servers and hooks), load settings or a system prompt from a path
/// (`GEMINI_CLI_SYSTEM_SETTINGS_PATH`, `GEMINI_SYSTEM_MD`, …), start a
/// sandbox or an IDE server, or export telemetry.
const GEMINI_AGENT_ENV: &[&str] = &[
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
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_MODEL",
    "GEMINI_CLI_HOME",
];

/// Fixed for agent-gemini's `gemini`: one Node process instead of a
/// relaunched child that ignores SIGINT, so a cancelled turn stops at once.
const GEMINI_AGENT_FIXED: &[(&str, &str)] = &[("GEMINI_CLI_NO_RELAUNCH", "true")];

/// What agent-gemini may reach of the Gemini CLI home: its transcripts
/// (`tmp/`), not `settings.json`, `oauth_creds.json` or the rest.
const GEMINI_AGENT_ROOT_ENTRIES: &[&str] = &["tmp"];

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Grant {
    /// The directory for `store-fs` (writable) or `store-fs-readonly`.
    pub root: Option<PathBuf>,
    pub root_writable: bool,
    /// The database for `sql` (storage only).
    pub database: Option<DatabaseGrant>,
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
    let driver = embedded;
    let embedded = embedded.is_some();
    match role {
        Role::StorageBackend => {
            grant.root = match (&pc.root, embedded) {
                (Some(root), _) => Some(root.clone()),
                (None, true) => Some(config.state_dir()?),
                (None, false) => None,
            };
            grant.root_entries = pc.root_entries.clone();
            grant.database = pc.database.clone();
        }
        Role::AgentDriver => {
            let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let (home, entries, program, env, fixed): (_, _, _, _, &[(&str, &str)]) = match driver {
                Some(AGENT_CLAUDE) => {
                    (claude_config_dir(), CLAUDE_AGENT_ROOT_ENTRIES, "claude", CLAUDE_AGENT_ENV, &[])
                }
                Some(AGENT_GEMINI) => {
                    (gemini_home(), GEMINI_AGENT_ROOT_ENTRIES, "gemini", GEMINI_AGENT_ENV, GEMINI_AGENT_FIXED)
                }
                _ => (codex_home(), DEFAULT_AGENT_ROOT_ENTRIES, "codex", DEFAULT_AGENT_ENV, &[]),
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
                fixed: match (&pc.env_values, embedded) {
                    (Some(values), _) => values.clone(),
                    (None, true) => fixed.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
                    (None, false) => Default::default(),
                },
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
    if role != Role::StorageBackend && pc.database.is_some() {
        anyhow::bail!(
            "a database is granted to the {role} plugin: only storage-backend plugins can use one; remove the \
             `database` table from its section"
        );
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

/// Gemini CLI's home: `$GEMINI_CLI_HOME/.gemini`, default `~/.gemini`.
fn gemini_home() -> Option<PathBuf> {
    std::env::var_os("GEMINI_CLI_HOME")
        .or_else(|| std::env::var_os("HOME"))
        .map(|home| PathBuf::from(home).join(".gemini"))
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

        let gemini = agent_grant("", Some(AGENT_GEMINI)).unwrap();
        assert_eq!(gemini.programs, [typed_grant("gemini")]);
        assert_eq!(
            gemini.root_entries.as_deref().unwrap(),
            ["tmp"],
            "never settings.json or oauth_creds.json"
        );
        assert_eq!(gemini.root, gemini_home());
        assert!(gemini.env.inherit.iter().any(|v| v == "GOOGLE_GEMINI_BASE_URL"));
        for trusting in ["GEMINI_CLI_TRUST_WORKSPACE", "GEMINI_SYSTEM_MD", "GEMINI_CLI_SYSTEM_SETTINGS_PATH"]
        {
            assert!(
                !gemini.env.inherit.iter().any(|v| warden_permissions::name_matches(v, trusting)),
                "{trusting}"
            );
        }
        assert_eq!(gemini.env.fixed.get("GEMINI_CLI_NO_RELAUNCH").map(String::as_str), Some("true"));

        let file = agent_grant("", None).unwrap();
        assert!(file.programs.is_empty() && file.root.is_none() && file.env.inherit.is_empty());
        assert!(file.env.fixed.is_empty());
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
