//! The operator's configuration (TOML): where state lives, and for each
//! plugin role which wasm to run, its limits, its settings, and what it is
//! granted. Everything has a safe default, so no file is needed. Every path
//! must be absolute; a leading `~/` is expanded to `$HOME` (see `config_paths`).
//!
//! ```toml
//! state-dir = "/var/lib/warden"          # default: the platform state dir
//! cache-dir = "/var/cache/warden"        # default: the platform cache dir
//! audit = false                          # log every spawn and write
//!
//! [http]                                 # `warden serve --http <addr:port>`
//! allowed-hosts = ["warden.example.com"] # Host values beyond loopback and the bound address
//! allowed-origins = []                   # browser origins accepted
//! shutdown-grace-secs = 30
//! public-url = "https://warden.example.com"   # behind a proxy: what clients use
//! tls = { cert = "/etc/warden/cert.pem", key = "/etc/warden/key.pem" }   # HTTPS (rustls)
//! [auth]
//! local-principal = "me"                 # the stdio caller (default: the user running Warden)
//! transcript-owner = "me"                # who may rehydrate from agents' transcripts (default: local)
//! [[auth.tokens]]                        # tokens or jwt: required to bind a non-loopback address
//! principal = "alice"                    # sessions are kept apart by principal
//! sha256 = "<hex SHA-256 of the token>"
//! [auth.jwt]                             # OAuth 2.1 access tokens (JWT)
//! jwks = "https://auth.example.com/.well-known/jwks.json"   # or a file path
//! issuer = "https://auth.example.com"
//! audience = "https://warden.example.com/mcp"
//! scopes = ["warden"]                    # required scopes
//! principal-claim = "sub"
//! [principals.alice]                     # what one principal may ask of any agent (narrows only)
//! max-sandbox = "read-only"
//! approval-policies = ["never"]
//! config-keys = {}
//! cwd-roots = ["/srv/src/alice"]
//!
//! [agents.codex]                         # the agents served (default: codex and claude),
//!                                        # each with the settings below; an older
//!                                        # [plugins.agent-driver] configures one of them
//! [plugins.agent-driver]
//! path = "/opt/plugins/my-agent.wasm"    # default: the embedded plugin
//! plugin = "agent-claude"                # or another embedded plugin, by name (not with `path`)
//! memory-mib = 128
//! cpu-budget-ms = 1000
//! call-timeout-ms = 10000                # every call but a turn
//! max-concurrent-calls = 8               # calls of this plugin at once
//! turn-timeout-secs = 1800
//! max-children-per-call = 4              # live child processes per call
//! max-children = 16                      # … and over all the plugin's calls
//! root = "/home/me/.codex"               # read-only for agent drivers
//! root-entries = ["sessions", "archived_sessions"]   # the default
//! env = ["HOME", "PATH", "CODEX_HOME"]   # passed on from Warden's environment
//! env-values = { LANG = "C.UTF-8" }       # fixed by the operator
//! env-patterns = { RUST_LOG = "[a-z]+" }  # plugins may set these, matching values only
//! cwd-roots = ["/home/me/src"]
//! max-sandbox = "workspace-write"
//! approval-policies = ["never", "on-request"]
//! config-keys = { model_verbosity = '"(low|medium|high)"' }
//! permission-modes = ["default", "acceptEdits", "plan"]   # Claude Code's `--permission-mode`
//! settings = { program = "codex" }
//! [[plugins.agent-driver.programs]]
//! name = "codex"
//! path = "/usr/local/bin/codex"          # default: looked up on PATH
//! policy = "codex"                       # typed argument policy
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::capabilities::process;
use crate::config_paths::validate_root;
use crate::contract::role::Role;
use warden_permissions::{DatabaseGrant, PrincipalBounds, ProgramGrant, Sandbox};

pub const DEFAULT_MEMORY_MIB: u32 = 128;
pub const DEFAULT_CPU_BUDGET_MS: u64 = 1000;
pub const DEFAULT_TURN_TIMEOUT_SECS: u64 = 30 * 60;
pub const DEFAULT_OUTPUT_CAP_MIB: u32 = 64;
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 8;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    pub state_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub audit: bool,
    /// Plugin calls that may run at once, all plugins together (the pooling
    /// allocator's size); default and minimum: the sum of the plugins' own limits.
    pub max_concurrent_calls: Option<u32>,
    /// Longest answer returned to an MCP client, in bytes; longer ones are cut with a note.
    pub max_response_bytes: Option<usize>,
    #[serde(default)]
    pub plugins: BTreeMap<Role, PluginConfig>,
    /// The agents served, each an agent-driver plugin with its own section
    /// (see `plugins::agents`); none: `codex`, `claude` and `gemini`.
    #[serde(default)]
    pub agents: BTreeMap<String, PluginConfig>,
    /// `warden serve --http`: accepted hosts and origins, shutdown grace.
    #[serde(default)]
    pub http: HttpConfig,
    /// Who may call `warden serve --http`.
    #[serde(default)]
    pub auth: AuthConfig,
    /// What each principal may ask of any agent, beyond each agent's own limits.
    #[serde(default)]
    pub principals: BTreeMap<String, PrincipalBounds>,
    /// The file this configuration was read from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpConfig {
    /// `Host` values accepted beyond loopback names and the bound address.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted (`https://app.example.com:443`); none by default.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How long running calls may go on after SIGTERM before they are cancelled.
    pub shutdown_grace_secs: Option<u64>,
    /// The URL clients reach Warden at (`https://warden.example.com`), for
    /// the protected resource metadata (default: `http(s)://<bound address>`).
    pub public_url: Option<String>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
}

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// The principal of stdio callers and of sessions stored without an
    /// owner (default: the user running Warden).
    pub local_principal: Option<String>,
    /// The principal who may rebuild sessions from the agents' transcript
    /// directories (default: the local principal).
    pub transcript_owner: Option<String>,
    /// JWT access tokens from an OAuth 2.1 authorization server.
    pub jwt: Option<JwtConfig>,
}

/// Where JWT access tokens come from and what they must say.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct JwtConfig {
    /// The authorization server's JSON Web Key Set: an absolute path, or an
    /// `https://` URL (`http://` on loopback only).
    pub jwks: String,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry (this resource's identifier).
    pub audience: String,
    /// Scopes every token must grant (`scope` or `scp`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The claim naming the principal (default `sub`).
    pub principal_claim: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub leeway_secs: Option<u64>,
    /// Fewest seconds between two reads of the key set, which a token
    /// naming an unknown key triggers (default 60).
    pub refresh_secs: Option<u64>,
}

/// A bearer token, kept as the SHA-256 digest of the token, and whose it is.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TokenConfig {
    pub principal: String,
    /// The token's SHA-256 digest, 64 hex digits.
    pub sha256: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PluginConfig {
    /// A `.wasm` component replacing the embedded default.
    pub path: Option<PathBuf>,
    /// An embedded plugin other than the role's default, by name (e.g. `agent-claude`).
    pub plugin: Option<String>,
    pub memory_mib: Option<u32>,
    pub cpu_budget_ms: Option<u64>,
    /// Wall-clock limit of one agent turn (agent-driver only).
    pub turn_timeout_secs: Option<u64>,
    /// Wall-clock limit of every other call (and of waiting for a free call slot).
    pub call_timeout_ms: Option<u64>,
    /// Calls of this plugin that may run at once.
    pub max_concurrent_calls: Option<u32>,
    /// Bytes kept from each child's stdout and stderr, in MiB.
    pub output_cap_mib: Option<u32>,
    /// Live children one plugin call may hold.
    pub max_children_per_call: Option<usize>,
    /// Live children the plugin may hold over all its calls.
    pub max_children: Option<usize>,
    /// The database granted to `sql` (storage only).
    pub database: Option<DatabaseGrant>,
    /// The directory granted to `store-fs` (storage) or `store-fs-readonly` (agent).
    pub root: Option<PathBuf>,
    /// The only top-level entries of `root` the plugin may reach (agent
    /// default: `sessions`, `archived_sessions`; storage default: all).
    pub root_entries: Option<Vec<String>>,
    #[serde(default)]
    pub programs: Vec<ProgramGrant>,
    /// Environment variables children receive from Warden's environment.
    pub env: Option<Vec<String>>,
    /// Environment variables the operator sets to fixed values.
    pub env_values: Option<BTreeMap<String, String>>,
    /// Environment variables plugins may set, each with its value pattern.
    pub env_patterns: Option<BTreeMap<String, String>>,
    /// The widest sandbox a turn may use, whoever asks (agent-driver only).
    pub max_sandbox: Option<Sandbox>,
    /// Approval policies a turn may use (agent-driver only).
    pub approval_policies: Option<Vec<String>>,
    /// Configuration overrides a turn may pass: key → value pattern (agent-driver only).
    pub config_keys: Option<BTreeMap<String, String>>,
    /// Claude Code permission modes a turn may use (agent-driver only).
    pub permission_modes: Option<Vec<String>>,
    /// Directories a child's working directory must lie in.
    pub cwd_roots: Option<Vec<PathBuf>>,
    /// Handed to the plugin as JSON through the `config` interface.
    #[serde(default)]
    pub settings: toml::Table,
}

impl Config {
    /// Read a configuration file; errors name the file and the problem.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read configuration {}: {e}", path.display()))?;
        let config =
            Self::parse(&text).map_err(|e| anyhow::anyhow!("configuration {}: {e}", path.display()))?;
        Ok(Self { source: Some(path.to_path_buf()), ..config })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn plugin(&self, role: Role) -> PluginConfig {
        self.plugins.get(&role).cloned().unwrap_or_default()
    }

    /// Where sessions are stored: the file, then `$XDG_STATE_HOME/warden`, then `~/.local/state/warden`.
    pub fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.state_dir {
            return validate_root("state-dir", dir);
        }
        platform_dir("XDG_STATE_HOME", ".local/state")
            .ok_or_else(|| anyhow::anyhow!("no state directory: set --state-dir, WARDEN_STATE_DIR or HOME"))
    }

    /// Where the host's cross-process turn locks live.
    pub fn turn_lock_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self.state_dir()?.join("turn-locks"))
    }

    /// Files and directories Warden itself relies on, each with what it is.
    /// No plugin may touch them, even inside a directory it was granted: a
    /// plugin that could rewrite the configuration, another plugin's wasm or
    /// a compiled component would gain what the operator never granted.
    pub fn host_paths(&self) -> Vec<(PathBuf, String)> {
        let mut paths = Vec::new();
        if let Ok(dir) = self.turn_lock_dir() {
            paths.push((dir, "turn-lock directory".to_string()));
        }
        if let Ok(Some(dir)) = self.cache_dir() {
            paths.push((dir, "compiled-component cache".to_string()));
        }
        if let Some(file) = &self.source {
            paths.push((file.clone(), "configuration file".to_string()));
        }
        for (role, plugin) in &self.plugins {
            if let Some(Ok(wasm)) = plugin.path.as_deref().map(|p| validate_root("path", p)) {
                paths.push((wasm, format!("{role} plugin")));
            }
        }
        for (agent, plugin) in &self.agents {
            if let Some(Ok(wasm)) = plugin.path.as_deref().map(|p| validate_root("path", p)) {
                paths.push((wasm, format!("agent-driver plugin of agent {agent}")));
            }
        }
        paths
    }

    /// Where compiled plugins are cached: the file, then `$XDG_CACHE_HOME/warden`, then `~/.cache/warden`.
    pub fn cache_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        match &self.cache_dir {
            Some(dir) => validate_root("cache-dir", dir).map(Some),
            None => Ok(platform_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("components"))),
        }
    }
}

impl PluginConfig {
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB) as usize) << 20
    }

    pub fn cpu_budget(&self) -> Duration {
        Duration::from_millis(self.cpu_budget_ms.unwrap_or(DEFAULT_CPU_BUDGET_MS))
    }

    pub fn turn_timeout(&self) -> Duration {
        Duration::from_secs(self.turn_timeout_secs.unwrap_or(DEFAULT_TURN_TIMEOUT_SECS))
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms.unwrap_or(DEFAULT_CALL_TIMEOUT_MS))
    }

    pub fn max_concurrent_calls(&self) -> u32 {
        self.max_concurrent_calls.unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS)
    }

    pub fn output_cap(&self) -> usize {
        (self.output_cap_mib.unwrap_or(DEFAULT_OUTPUT_CAP_MIB) as usize) << 20
    }

    pub fn max_children_per_call(&self) -> usize {
        self.max_children_per_call.unwrap_or(process::DEFAULT_MAX_CHILDREN_PER_CALL)
    }

    pub fn max_children(&self) -> usize {
        self.max_children.unwrap_or(process::DEFAULT_MAX_CHILDREN)
    }
}

fn platform_dir(xdg: &str, fallback: &str) -> Option<PathBuf> {
    let base = std::env::var_os(xdg)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(fallback)))?;
    Some(base.join("warden"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_wasm_file_is_one_of_wardens_own_paths() {
        let config = Config::parse("[agents.mine]\npath = \"/opt/warden/mine.wasm\"\n").unwrap();
        let reserved = config.host_paths();
        assert!(
            reserved
                .iter()
                .any(|(path, what)| path == Path::new("/opt/warden/mine.wasm") && what.contains("mine")),
            "{reserved:?}"
        );
    }

    #[test]
    fn parses_roles_and_refuses_unknown_keys() {
        let config = Config::parse(
            r#"
            [plugins.storage-backend]
            memory-mib = 16
            [plugins.agent-driver]
            cpu-budget-ms = 200
            [[plugins.agent-driver.programs]]
            name = "codex"
            policy = "codex"
            "#,
        )
        .unwrap();
        assert_eq!(config.plugin(Role::StorageBackend).memory_bytes(), 16 << 20);
        assert_eq!(config.plugin(Role::AgentDriver).cpu_budget(), Duration::from_millis(200));
        assert_eq!(config.plugin(Role::SessionPolicy).memory_bytes(), 128 << 20);
        let err = Config::parse("[plugins.storage-backend]\nmemroy-mib = 1\n").unwrap_err();
        assert!(err.contains("memroy-mib"), "{err}");
        let err = Config::parse("[plugins.storage]\n").unwrap_err();
        assert!(err.contains("storage"), "{err}");
    }
}
