//! Environment variables of a child: which come from Warden's own
//! environment, which the operator fixes, and which a plugin may set, with
//! the values it may set them to. A plugin never chooses the value of a
//! variable that redirects the program (PATH, HOME, CODEX_HOME, base URLs,
//! API keys) unless the operator wrote a pattern for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::denial::Denial;
use crate::pattern::name_matches;
use crate::value::{ValueContext, ValueRule};

/// The operator's side.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvGrant {
    /// Names (`*` wildcards allowed) passed on from Warden's environment.
    pub inherit: Vec<String>,
    /// Variables set to these values, whatever the plugin asks.
    pub fixed: BTreeMap<String, String>,
    /// Variables a plugin may set, each with the pattern its value must match.
    pub patterns: BTreeMap<String, String>,
}

/// The plugin's side: names (`*` wildcards allowed) it declared in its manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvDeclaration(pub Vec<String>);

impl EnvDeclaration {
    fn covers(&self, name: &str) -> bool {
        self.0.iter().any(|p| name_matches(p, name))
    }
}

impl EnvGrant {
    pub fn validate(&self) -> Result<(), String> {
        for (name, pattern) in &self.patterns {
            ValueRule::Pattern(pattern.clone())
                .validate()
                .map_err(|e| format!("`env-patterns.{name}`: {e}"))?;
            if self.fixed.contains_key(name) {
                return Err(format!(
                    "{name} is both fixed (`env-values`) and settable (`env-patterns`); keep one"
                ));
            }
        }
        Ok(())
    }

    /// The child's environment: inherited values from `host_env`, fixed
    /// values, then the plugin's own settings that pass their patterns.
    pub fn child_env(
        &self,
        declared: &EnvDeclaration,
        requested: &[(String, String)],
        host_env: impl Iterator<Item = (String, String)>,
        plugin: &str,
    ) -> Result<Vec<(String, String)>, Denial> {
        let mut env: Vec<(String, String)> = Vec::new();
        for (name, value) in requested {
            if !declared.covers(name) {
                return Err(Denial::Denied(format!(
                    "plugin `{plugin}` may not set environment variable {name:?}: its manifest does not declare it in `env`"
                )));
            }
            if self.fixed.contains_key(name) {
                return Err(Denial::Denied(format!(
                    "plugin `{plugin}` may not set {name:?}: the operator fixes its value (`env-values`)"
                )));
            }
            let Some(pattern) = self.patterns.get(name) else {
                return Err(Denial::Denied(format!(
                    "plugin `{plugin}` may not choose the value of {name:?}{}; to let plugins set it, the \
                     operator adds `{name} = \"<pattern>\"` to `env-patterns` under [plugins.<role>]",
                    if self.inherit.iter().any(|p| name_matches(p, name)) {
                        " (it is passed on from Warden's environment)"
                    } else {
                        ""
                    }
                )));
            };
            ValueRule::Pattern(pattern.clone())
                .check(value, &ValueContext::default())
                .map_err(|e| Denial::Denied(format!("plugin `{plugin}` may not set {name}: {e}")))?;
            if env.iter().any(|(n, _)| n == name) {
                return Err(Denial::Invalid(format!("environment variable {name:?} is given twice")));
            }
            env.push((name.clone(), value.clone()));
        }
        for (name, value) in &self.fixed {
            env.push((name.clone(), value.clone()));
        }
        for (name, value) in host_env {
            let taken = env.iter().any(|(n, _)| *n == name);
            if !taken && declared.covers(&name) && self.inherit.iter().any(|p| name_matches(p, &name)) {
                env.push((name, value));
            }
        }
        Ok(env)
    }

    /// Whether a child could receive `name` at all (for `warden plugins`).
    pub fn reaches(&self, declared: &EnvDeclaration, name: &str) -> bool {
        self.fixed.contains_key(name)
            || declared.covers(name)
                && (self.patterns.contains_key(name) || self.inherit.iter().any(|p| name_matches(p, name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> EnvGrant {
        EnvGrant {
            inherit: vec!["HOME".into(), "PATH".into(), "*_API_KEY".into()],
            fixed: [("OPENAI_BASE_URL".to_string(), "http://127.0.0.1:9/v1".to_string())].into(),
            patterns: [("LANG".to_string(), "[A-Za-z_.@0-9-]{1,32}".to_string())].into(),
        }
    }

    fn host() -> impl Iterator<Item = (String, String)> {
        [
            ("HOME", "/home/u"),
            ("PATH", "/usr/bin"),
            ("MOCK_API_KEY", "k"),
            ("SECRET", "s"),
            ("OPENAI_BASE_URL", "http://real"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
    }

    fn declared() -> EnvDeclaration {
        EnvDeclaration(vec![
            "HOME".into(),
            "PATH".into(),
            "LANG".into(),
            "*_API_KEY".into(),
            "OPENAI_BASE_URL".into(),
        ])
    }

    #[test]
    fn inherited_fixed_and_patterned() {
        let env = grant().child_env(&declared(), &[("LANG".into(), "C.UTF-8".into())], host(), "p").unwrap();
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("LANG"), Some("C.UTF-8"));
        assert_eq!(get("HOME"), Some("/home/u"));
        assert_eq!(get("MOCK_API_KEY"), Some("k"));
        assert_eq!(
            get("OPENAI_BASE_URL"),
            Some("http://127.0.0.1:9/v1"),
            "the operator's value wins over the host's"
        );
        assert_eq!(get("SECRET"), None);
    }

    #[test]
    fn plugins_cannot_redirect() {
        for (name, value) in [
            ("PATH", "/tmp/evil"),
            ("HOME", "/tmp"),
            ("OPENAI_BASE_URL", "http://evil"),
            ("MOCK_API_KEY", "x"),
            ("LANG", "a b;"),
            ("CODEX_HOME", "/tmp"),
        ] {
            let err =
                grant().child_env(&declared(), &[(name.into(), value.into())], host(), "p").unwrap_err();
            assert!(matches!(err, Denial::Denied(_)), "{name}: {err:?}");
        }
        let err = grant().child_env(&declared(), &[("PATH".into(), "/x".into())], host(), "p").unwrap_err();
        assert!(err.message().contains("env-patterns"), "{err:?}");
    }

    #[test]
    fn undeclared_names_are_not_inherited() {
        let env = grant().child_env(&EnvDeclaration(vec!["HOME".into()]), &[], host(), "p").unwrap();
        assert!(env.iter().all(|(k, _)| k == "HOME" || k == "OPENAI_BASE_URL"), "{env:?}");
    }
}
