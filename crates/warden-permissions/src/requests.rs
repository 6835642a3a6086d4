//! What an agent request may ask for, whoever asks: an MCP caller, a stored
//! session, or a context plugin. The operator bounds the sandbox level, the
//! approval policies and the configuration overrides; the same limits feed
//! the program's argument policy, so the spawn check enforces them again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::value::{ConfigRule, ValueContext, ValueRule};

/// Codex's sandbox levels, from the narrowest.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Sandbox {
    ReadOnly,
    WorkspaceWrite,
    DangerFullAccess,
}

impl Sandbox {
    pub const ALL: [Sandbox; 3] = [Sandbox::ReadOnly, Sandbox::WorkspaceWrite, Sandbox::DangerFullAccess];
    /// The names of [`Sandbox::ALL`], in the same order.
    pub const NAMES: &[&str] = &["read-only", "workspace-write", "danger-full-access"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Sandbox> {
        Sandbox::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Approval policies codex knows (`-a`).
pub const APPROVAL_POLICIES: &[&str] = &["untrusted", "on-failure", "on-request", "never"];
/// Claude Code's permission modes (`--permission-mode`; its help lists all
/// but `default`, which it accepts and reports when no mode is given).
pub const PERMISSION_MODES: &[&str] =
    &["default", "manual", "acceptEdits", "plan", "dontAsk", "auto", "bypassPermissions"];
/// The modes allowed unless the operator says otherwise. Left out: `auto`
/// (Claude Code decides on its own what to allow) and `bypassPermissions`
/// (nothing is asked). Seen with 2.1.328 in a headless turn: in `default` a
/// shell command that changes files is refused as needing approval, while
/// `acceptEdits` lets it change files inside the working directory only.
pub const DEFAULT_PERMISSION_MODES: &[&str] = &["default", "manual", "acceptEdits", "plan", "dontAsk"];
/// Reasoning efforts codex knows.
pub const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];
/// A model name: no leading dash, no spaces or control characters.
pub const MODEL_PATTERN: &str = "[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}";
/// Configuration keys that only carry text for the model (instructions, the
/// compaction prompt): any single TOML string is allowed, as it loads nothing,
/// starts nothing and redirects nothing.
pub const TEXT_KEYS: &[&str] = &["base_instructions", "developer_instructions", "compact_prompt"];
/// A TOML basic string, as `serde_json` writes one.
const TOML_STRING: &str = r#""(?:[^"\\\x00-\x1f]|\\(?:[btnfr"\\/]|u[0-9A-Fa-f]{4}))*""#;

/// The operator's bounds on requests, with defaults that load no code,
/// start no program and redirect nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_sandbox: Sandbox,
    pub approval_policies: Vec<String>,
    /// Configuration keys a request may set, each with its value pattern.
    pub config_keys: BTreeMap<String, String>,
    /// Claude Code permission modes a turn may use.
    pub permission_modes: Vec<String>,
}

impl Default for RequestLimits {
    fn default() -> Self {
        let quoted = |words: &str| format!("\"({words})\"");
        let config_keys = [
            ("model_reasoning_effort", quoted(&REASONING_EFFORTS.join("|"))),
            ("model_reasoning_summary", quoted("auto|concise|detailed|none")),
            ("model_verbosity", quoted("low|medium|high")),
            ("hide_agent_reasoning", "true|false".to_string()),
            ("show_raw_agent_reasoning", "true|false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            max_sandbox: Sandbox::WorkspaceWrite,
            approval_policies: APPROVAL_POLICIES.iter().map(|s| s.to_string()).collect(),
            config_keys,
            permission_modes: DEFAULT_PERMISSION_MODES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Keys whose override could load code, start programs, read other
/// configuration, or redirect prompts and credentials; refused even when an
/// operator lists them, unless the grant is explicitly unrestricted.
pub fn dangerous_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "mcp_servers",
        "model_providers",
        "model_provider",
        "profile",
        "profiles",
        "notify",
        "shell_environment_policy",
        "experimental",
        "otel",
        "chatgpt_base_url",
    ]
    .iter()
    .any(|k| key == *k || key.starts_with(&format!("{k}.")))
        || key.contains("base_url")
        || key.contains("command")
}

impl RequestLimits {
    /// Refuse limits that cannot be enforced.
    pub fn validate(&self) -> Result<(), String> {
        for policy in &self.approval_policies {
            if !APPROVAL_POLICIES.contains(&policy.as_str()) {
                return Err(format!(
                    "unknown approval policy {policy:?} in `approval-policies` (known: {})",
                    APPROVAL_POLICIES.join(", ")
                ));
            }
        }
        for mode in &self.permission_modes {
            if !PERMISSION_MODES.contains(&mode.as_str()) {
                return Err(format!(
                    "unknown permission mode {mode:?} in `permission-modes` (known: {})",
                    PERMISSION_MODES.join(", ")
                ));
            }
        }
        if self.permission_modes.is_empty() {
            return Err("`permission-modes` is empty; list at least one (e.g. \"default\")".into());
        }
        for (key, pattern) in &self.config_keys {
            if dangerous_config_key(key) {
                return Err(format!(
                    "`config-keys` lists {key:?}, which can load code, start programs or redirect prompts \
                     and credentials; remove it (to allow it anyway, grant the program with `unrestricted = true`)"
                ));
            }
            ValueRule::Pattern(pattern.clone())
                .validate()
                .map_err(|e| format!("`config-keys.{key}`: {e}"))?;
        }
        Ok(())
    }

    pub fn sandboxes(&self) -> Vec<String> {
        Sandbox::ALL.into_iter().filter(|s| *s <= self.max_sandbox).map(|s| s.as_str().to_string()).collect()
    }

    /// The operator's keys, then the [`TEXT_KEYS`] (a key the operator
    /// lists keeps the operator's pattern).
    pub fn config_rules(&self) -> Vec<ConfigRule> {
        let text = TEXT_KEYS
            .iter()
            .filter(|key| !self.config_keys.contains_key(**key))
            .map(|key| (key.to_string(), TOML_STRING.to_string()));
        self.config_keys
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .chain(text)
            .map(|(key, value)| ConfigRule { key, value })
            .collect()
    }

    /// A sandbox level, named or not; the error names the setting.
    pub fn check_sandbox(&self, sandbox: &str) -> Result<(), String> {
        let Some(level) = Sandbox::parse(sandbox) else {
            return Err(format!(
                "sandbox {sandbox:?} is not one of {}",
                Sandbox::ALL.map(Sandbox::as_str).join(", ")
            ));
        };
        if level > self.max_sandbox {
            return Err(format!(
                "sandbox {sandbox:?} is above the operator's limit {:?}; the operator can raise `max-sandbox` under [plugins.agent-driver]",
                self.max_sandbox.as_str()
            ));
        }
        Ok(())
    }

    pub fn check_approval_policy(&self, policy: &str) -> Result<(), String> {
        if self.approval_policies.iter().any(|p| p == policy) {
            return Ok(());
        }
        Err(format!(
            "approval policy {policy:?} is not allowed (allowed: {}); the operator can change `approval-policies` under [plugins.agent-driver]",
            self.approval_policies.join(", ")
        ))
    }

    pub fn check_permission_mode(&self, mode: &str) -> Result<(), String> {
        if self.permission_modes.iter().any(|m| m == mode) {
            return Ok(());
        }
        Err(format!(
            "permission mode {mode:?} is not allowed (allowed: {}); the operator can change `permission-modes` under [plugins.agent-driver]",
            self.permission_modes.join(", ")
        ))
    }

    /// One configuration override, its value already TOML.
    pub fn check_config(&self, key: &str, value: &str) -> Result<(), String> {
        ValueRule::Config(self.config_rules())
            .check(&format!("{key}={value}"), &ValueContext::default())
            .map_err(|e| format!("{e}; the operator can allow a key and its values with `config-keys` under [plugins.agent-driver]"))
    }

    pub fn check_model(&self, model: &str) -> Result<(), String> {
        ValueRule::Pattern(MODEL_PATTERN.into())
            .check(model, &ValueContext::default())
            .map_err(|e| format!("model: {e}"))
    }

    pub fn check_reasoning_effort(&self, effort: &str) -> Result<(), String> {
        if REASONING_EFFORTS.contains(&effort) {
            return Ok(());
        }
        Err(format!("reasoning effort {effort:?} is not one of {}", REASONING_EFFORTS.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_refuse_what_runs_code_or_redirects() {
        let limits = RequestLimits::default();
        limits.validate().unwrap();
        assert!(limits.check_sandbox("workspace-write").is_ok());
        let err = limits.check_sandbox("danger-full-access").unwrap_err();
        assert!(err.contains("max-sandbox"), "{err}");
        for key in [
            "mcp_servers.x.command",
            "model_provider",
            "model_providers.evil.base_url",
            "profile",
            "chatgpt_base_url",
        ] {
            let err = limits.check_config(key, "\"x\"").unwrap_err();
            assert!(err.contains("config-keys"), "{err}");
        }
        assert!(limits.check_config("model_verbosity", "\"low\"").is_ok());
        for key in TEXT_KEYS {
            assert!(limits.check_config(key, "\"say \\\"x\\\"\\n\"").is_ok(), "{key}");
            assert!(limits.check_config(key, "\"a\" \nmcp_servers.x.command=\"sh\"").is_err(), "{key}");
            assert!(limits.check_config(key, "[\"a\"]").is_err(), "{key}: one string only");
        }
        assert!(limits.check_config("model_verbosity", "\"low\"\nmcp_servers.x.command=\"sh\"").is_err());
        assert!(limits.check_approval_policy("never").is_ok());
        assert!(limits.check_model("--add-dir").is_err());
        assert!(limits.check_model("gpt-5.1-codex").is_ok());
        assert!(limits.check_permission_mode("acceptEdits").is_ok());
        for mode in ["bypassPermissions", "auto"] {
            let err = limits.check_permission_mode(mode).unwrap_err();
            assert!(err.contains("permission-modes"), "{err}");
        }
    }

    #[test]
    fn sandbox_names_are_its_serde_names() {
        for sandbox in Sandbox::ALL {
            let json = toml::Value::try_from(sandbox).unwrap();
            assert_eq!(json.as_str(), Some(sandbox.as_str()));
            assert_eq!(Sandbox::parse(sandbox.as_str()), Some(sandbox));
        }
        assert_eq!(Sandbox::NAMES.len(), Sandbox::ALL.len());
    }

    #[test]
    fn operators_cannot_list_dangerous_keys_by_accident() {
        let mut limits = RequestLimits::default();
        limits.config_keys.insert("mcp_servers.x.command".into(), ".*".into());
        assert!(limits.validate().unwrap_err().contains("unrestricted"));
        let mut limits = RequestLimits::default();
        limits.config_keys.insert("openai_base_url".into(), ".*".into());
        assert!(limits.validate().is_err());
        let mut limits = RequestLimits::default();
        limits.approval_policies.push("yolo".into());
        assert!(limits.validate().is_err());
        let mut limits = RequestLimits::default();
        limits.permission_modes.push("yolo".into());
        assert!(limits.validate().unwrap_err().contains("unknown permission mode"));
        limits.permission_modes.clear();
        assert!(limits.validate().unwrap_err().contains("empty"));
        limits.permission_modes.push("bypassPermissions".into());
        limits.validate().expect("an operator may list bypassPermissions explicitly");
    }
}
