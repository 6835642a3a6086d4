//! What the operator lets one principal ask of any agent, on top of each
//! agent's own request limits (`[principals.<name>]`). Every bound is
//! optional; one that is set narrows, it never widens: a request must pass
//! the agent's limits and these.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::requests::{APPROVAL_POLICIES, Sandbox, dangerous_config_key};
use crate::value::{ValueContext, ValueRule, check_path};

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PrincipalBounds {
    /// The widest sandbox this principal's turns may get; turns that ask for
    /// none get this one.
    pub max_sandbox: Option<Sandbox>,
    /// Approval policies this principal may ask for.
    pub approval_policies: Option<Vec<String>>,
    /// Configuration keys this principal may set, each with its value pattern.
    pub config_keys: Option<BTreeMap<String, String>>,
    /// Directories this principal's turns may run in (canonical once loaded).
    pub cwd_roots: Option<Vec<PathBuf>>,
}

impl PrincipalBounds {
    /// Refuse bounds that name unknown policies, dangerous keys or bad patterns.
    pub fn validate(&self) -> Result<(), String> {
        for policy in self.approval_policies.iter().flatten() {
            if !APPROVAL_POLICIES.contains(&policy.as_str()) {
                return Err(format!(
                    "unknown approval policy {policy:?} in `approval-policies` (known: {})",
                    APPROVAL_POLICIES.join(", ")
                ));
            }
        }
        for (key, pattern) in self.config_keys.iter().flatten() {
            if dangerous_config_key(key) {
                return Err(format!(
                    "`config-keys` lists {key:?}, which can load code, start programs or redirect prompts and credentials"
                ));
            }
            ValueRule::Pattern(pattern.clone())
                .validate()
                .map_err(|e| format!("`config-keys.{key}`: {e}"))?;
        }
        Ok(())
    }

    pub fn check_sandbox(&self, sandbox: &str) -> Result<(), String> {
        match (self.max_sandbox, Sandbox::parse(sandbox)) {
            (Some(max), Some(level)) if level > max => Err(format!(
                "sandbox {sandbox:?} is wider than this principal may ask (`max-sandbox = \"{}\"`)",
                max.as_str()
            )),
            _ => Ok(()),
        }
    }

    pub fn check_approval_policy(&self, policy: &str) -> Result<(), String> {
        match &self.approval_policies {
            Some(allowed) if !allowed.iter().any(|p| p == policy) => Err(format!(
                "approval policy {policy:?} is not one this principal may ask for (`approval-policies`: {})",
                allowed.join(", ")
            )),
            _ => Ok(()),
        }
    }

    pub fn check_config(&self, key: &str, value: &str) -> Result<(), String> {
        let Some(keys) = &self.config_keys else { return Ok(()) };
        let Some(pattern) = keys.get(key) else {
            return Err(format!(
                "the configuration key {key:?} is not one this principal may set (`config-keys`: {})",
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ));
        };
        ValueRule::Pattern(pattern.clone())
            .check(value, &ValueContext::default())
            .map_err(|e| format!("{key}: {e} (this principal's `config-keys`)"))
    }

    pub fn check_cwd(&self, cwd: &str) -> Result<(), String> {
        match &self.cwd_roots {
            Some(roots) => {
                check_path(cwd, roots).map(drop).map_err(|e| format!("{e} (this principal's `cwd-roots`)"))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> PrincipalBounds {
        PrincipalBounds {
            max_sandbox: Some(Sandbox::ReadOnly),
            approval_policies: Some(vec!["never".into()]),
            config_keys: Some([("model_verbosity".to_string(), "\"(low|medium)\"".to_string())].into()),
            cwd_roots: Some(vec![std::env::temp_dir().canonicalize().unwrap()]),
        }
    }

    #[test]
    fn set_bounds_narrow_and_unset_ones_allow() {
        let b = bounds();
        b.check_sandbox("read-only").unwrap();
        assert!(b.check_sandbox("workspace-write").unwrap_err().contains("max-sandbox = \"read-only\""));
        b.check_approval_policy("never").unwrap();
        assert!(b.check_approval_policy("on-request").unwrap_err().contains("approval-policies"));
        b.check_config("model_verbosity", "\"low\"").unwrap();
        assert!(b.check_config("model_verbosity", "\"high\"").is_err());
        assert!(b.check_config("hide_agent_reasoning", "true").unwrap_err().contains("model_verbosity"));
        b.check_cwd(std::env::temp_dir().to_str().unwrap()).unwrap();
        assert!(b.check_cwd("/").unwrap_err().contains("cwd-roots"));
        let open = PrincipalBounds::default();
        open.check_sandbox("danger-full-access").unwrap();
        open.check_config("anything", "x").unwrap();
        open.check_cwd("/").unwrap();
    }

    #[test]
    fn bad_bounds_are_refused() {
        let mut b = bounds();
        b.approval_policies = Some(vec!["sometimes".into()]);
        assert!(b.validate().unwrap_err().contains("sometimes"));
        let mut b = bounds();
        b.config_keys = Some([("mcp_servers.x.command".to_string(), ".*".to_string())].into());
        assert!(b.validate().unwrap_err().contains("load code"));
    }
}
