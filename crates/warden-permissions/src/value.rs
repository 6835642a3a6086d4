//! The kinds of value an option or a positional may take, and how a value is
//! checked against its kind. Patterns are regular expressions matched against
//! the whole value (the `regex` crate: linear time, no backtracking).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// What an option's value or a positional must be.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ValueRule {
    /// Any text (sensible only for positionals after `--`, e.g. a prompt).
    Text,
    /// A hyphenated UUID, e.g. a thread id.
    Uuid,
    /// An absolute path that, once symbolic links are resolved, lies inside
    /// one of the plugin's `cwd-roots`.
    Path,
    /// One of these words.
    Enum(Vec<String>),
    /// A regular expression the whole value must match.
    Pattern(String),
    /// `key=value`, as for `codex -c`: the key must be one of these, and
    /// the value must match that key's pattern.
    Config(Vec<ConfigRule>),
}

/// One configuration key a `config` value may set.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigRule {
    /// The exact key (dotted path), e.g. `model_verbosity`.
    pub key: String,
    /// A regular expression the whole value must match.
    pub value: String,
}

/// What checking a value needs from the effective policy.
#[derive(Clone, Debug, Default)]
pub struct ValueContext {
    /// Canonical directories a `path` value must lie in.
    pub cwd_roots: Vec<PathBuf>,
}

impl ValueRule {
    /// Refuse a rule that can never be checked (a bad regular expression).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ValueRule::Pattern(p) => compile(p).map(drop),
            ValueRule::Config(rules) => rules.iter().try_for_each(|r| compile(&r.value).map(drop)),
            ValueRule::Enum(words) if words.is_empty() => Err("an `enum` needs at least one word".into()),
            _ => Ok(()),
        }
    }

    /// `Ok` if `value` is of this kind; the error says what was expected.
    pub fn check(&self, value: &str, context: &ValueContext) -> Result<(), String> {
        match self {
            ValueRule::Text => Ok(()),
            ValueRule::Uuid => check_uuid(value),
            ValueRule::Path => check_path(value, &context.cwd_roots).map(drop),
            ValueRule::Enum(words) => {
                if words.iter().any(|w| w == value) {
                    Ok(())
                } else {
                    Err(format!("{value:?} is not one of {}", words.join(", ")))
                }
            }
            ValueRule::Pattern(pattern) => {
                if compile(pattern)?.is_match(value) {
                    Ok(())
                } else {
                    Err(format!("{value:?} does not match the pattern {pattern:?}"))
                }
            }
            ValueRule::Config(rules) => check_config(value, rules),
        }
    }

    pub fn show(&self) -> String {
        match self {
            ValueRule::Text => "text".into(),
            ValueRule::Uuid => "uuid".into(),
            ValueRule::Path => "path in cwd-roots".into(),
            ValueRule::Enum(words) => words.join("|"),
            ValueRule::Pattern(p) => format!("/{p}/"),
            ValueRule::Config(rules) => {
                format!(
                    "key=value with key in {{{}}}",
                    rules.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", ")
                )
            }
        }
    }
}

/// A hyphenated UUID in its canonical textual form.
pub fn check_uuid(value: &str) -> Result<(), String> {
    match uuid::Uuid::try_parse(value) {
        Ok(parsed) if parsed.hyphenated().to_string() == value.to_ascii_lowercase() => Ok(()),
        _ => Err(format!("{value:?} is not a UUID (e.g. 0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f)")),
    }
}

/// An absolute path inside one of `roots`, after resolving links; returns it canonical.
pub fn check_path(value: &str, roots: &[PathBuf]) -> Result<PathBuf, String> {
    let requested = Path::new(value);
    if !requested.is_absolute() {
        return Err(format!("{value:?} must be an absolute path"));
    }
    let canonical = requested.canonicalize().map_err(|e| format!("{value:?} cannot be used: {e}"))?;
    if roots.iter().any(|root| canonical.starts_with(root)) {
        return Ok(canonical);
    }
    Err(format!(
        "{} is outside the granted working-directory roots [{}]; add a parent directory to `cwd-roots`",
        canonical.display(),
        roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}

fn check_config(value: &str, rules: &[ConfigRule]) -> Result<(), String> {
    let Some((key, setting)) = value.split_once('=') else {
        return Err(format!("{value:?} is not of the form key=value"));
    };
    let Some(rule) = rules.iter().find(|r| r.key == key) else {
        return Err(format!(
            "the configuration key {key:?} is not allowed (allowed: {}); keys that load code, start \
             programs or redirect where prompts and credentials go are never allowed by default",
            if rules.is_empty() {
                "none".to_string()
            } else {
                rules.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", ")
            }
        ));
    };
    if compile(&rule.value)?.is_match(setting) {
        Ok(())
    } else {
        Err(format!("the value {setting:?} of {key:?} does not match the allowed pattern {:?}", rule.value))
    }
}

/// The anchored regular expression of `pattern`, compiled once per process.
/// Patterns come only from the operator's configuration and the built-in
/// policies (values are matched, never compiled), so the cache stays small.
/// Shared, not cloned: a cloned `Regex` starts with an empty matching cache.
fn compile(pattern: &str) -> Result<Arc<regex::Regex>, String> {
    static COMPILED: OnceLock<Mutex<HashMap<String, Arc<regex::Regex>>>> = OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(regex) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(pattern) {
        return Ok(regex.clone());
    }
    let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map(Arc::new)
        .map_err(|e| format!("the pattern {pattern:?} is not a valid regular expression: {e}"))?;
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(pattern.to_string(), regex.clone());
    Ok(regex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let cx = ValueContext::default();
        assert!(ValueRule::Uuid.check("0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f", &cx).is_ok());
        for bad in
            ["--last", "0199a5e42f7c7d109c3e4b5a6c7d8e9f", "{0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f}", ""]
        {
            assert!(ValueRule::Uuid.check(bad, &cx).is_err(), "{bad}");
        }
        let sandbox = ValueRule::Enum(vec!["read-only".into(), "workspace-write".into()]);
        assert!(sandbox.check("read-only", &cx).is_ok());
        assert!(sandbox.check("danger-full-access", &cx).unwrap_err().contains("not one of"));
        let model = ValueRule::Pattern("[a-z0-9.-]+".into());
        assert!(model.check("gpt-5.1", &cx).is_ok());
        assert!(model.check("gpt-5.1\n", &cx).is_err(), "the whole value must match");
        assert!(ValueRule::Pattern("(".into()).validate().is_err());
    }

    #[test]
    fn config_keys_are_exact() {
        let rules = vec![ConfigRule { key: "model_verbosity".into(), value: "\"(low|high)\"".into() }];
        let rule = ValueRule::Config(rules);
        let cx = ValueContext::default();
        assert!(rule.check("model_verbosity=\"low\"", &cx).is_ok());
        assert!(rule.check("model_verbosity=\"loud\"", &cx).is_err());
        let err = rule.check("mcp_servers.x.command=\"/bin/sh\"", &cx).unwrap_err();
        assert!(err.contains("mcp_servers.x.command") && err.contains("not allowed"), "{err}");
        assert!(rule.check(" model_verbosity=\"low\"", &cx).is_err());
        assert!(rule.check("model_verbosity", &cx).is_err());
    }

    #[test]
    fn paths_stay_in_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let inner = root.join("a");
        std::fs::create_dir(&inner).unwrap();
        std::os::unix::fs::symlink("/", root.join("out")).unwrap();
        let roots = vec![root.clone()];
        assert_eq!(check_path(inner.to_str().unwrap(), &roots).unwrap(), inner);
        assert!(check_path("/", &roots).unwrap_err().contains("outside"));
        assert!(check_path(root.join("out").to_str().unwrap(), &roots).unwrap_err().contains("outside"));
        assert!(check_path("a", &roots).unwrap_err().contains("absolute"));
        assert!(check_path(root.join("a/../..").to_str().unwrap(), &roots).is_err());
    }
}
