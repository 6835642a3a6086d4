//! Who may run what: matching a spawn request against the operator's grant
//! AND the plugin's own declaration.
//!
//! An argument pattern is a list of items: a literal matches one equal
//! argument, `*` matches any one argument, and a trailing `**` matches all
//! remaining arguments (including none).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::PluginError;

/// Argument patterns for one program, as written in configuration or a manifest.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ArgPattern(pub Vec<String>);

impl ArgPattern {
    pub fn matches(&self, args: &[String]) -> bool {
        let mut args = args.iter();
        for (i, item) in self.0.iter().enumerate() {
            if item == "**" && i + 1 == self.0.len() {
                return true;
            }
            match args.next() {
                Some(arg) if item == "*" || item == arg => {}
                _ => return false,
            }
        }
        args.next().is_none()
    }
}

/// A program the plugin declared it needs (from its manifest).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeclaredProgram {
    pub name: String,
    #[serde(default)]
    pub args: ArgPattern,
}

/// A program the operator granted (from configuration).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProgramGrant {
    /// The name plugins use to ask for it.
    pub name: String,
    /// The executable to run; looked up on the host's PATH when absent.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub args: ArgPattern,
}

/// The effective process permissions of one plugin.
#[derive(Clone, Debug, Default)]
pub struct ProcessPolicy {
    pub plugin: String,
    pub granted: Vec<ProgramGrant>,
    pub declared: Vec<DeclaredProgram>,
    /// Environment variable patterns the operator granted (`*` wildcards).
    pub env_granted: Vec<String>,
    /// Environment variable patterns the plugin declared (`*` wildcards).
    pub env_declared: Vec<String>,
    /// Directories a child's working directory must lie inside (canonical).
    pub cwd_roots: Vec<PathBuf>,
}

/// A request that passed every check, ready to spawn.
#[derive(Debug)]
pub struct ApprovedSpawn {
    pub executable: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

impl ProcessPolicy {
    /// Check a request; `denied` names the missing grant and how to add it.
    pub fn approve(
        &self,
        program: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: Option<&str>,
    ) -> Result<ApprovedSpawn, PluginError> {
        let shown = show_command(program, args);
        let declared = self.declared.iter().any(|d| d.name == program && d.args.matches(args));
        if !declared {
            return Err(PluginError::Denied(format!(
                "plugin `{}` tried to run `{shown}`, which its manifest does not declare; \
                 the plugin must declare this program and argument pattern",
                self.plugin
            )));
        }
        let Some(grant) = self.granted.iter().find(|g| g.name == program && g.args.matches(args)) else {
            return Err(PluginError::Denied(format!(
                "plugin `{}` may not run `{shown}`: no grant matches. To allow it, add to the \
                 operator configuration under [plugins.<role>]: \
                 [[plugins.<role>.programs]] name = {program:?}, args = [...] (use \"*\" for one \
                 argument and a trailing \"**\" for the rest)",
                self.plugin
            )));
        };
        for (name, _) in env {
            if !self.env_allowed(name) {
                return Err(PluginError::Denied(format!(
                    "plugin `{}` may not set environment variable {name:?}: it is not allow-listed; \
                     add it to `env` in both the plugin's manifest and the operator's grant",
                    self.plugin
                )));
            }
        }
        let cwd = self.approve_cwd(cwd)?;
        let executable = match &grant.path {
            Some(path) => path.clone(),
            None => find_on_path(program).ok_or_else(|| {
                PluginError::NotFound(format!(
                    "program {program:?} is granted but not found on PATH; install it or set \
                     `path` in its grant"
                ))
            })?,
        };
        let mut child_env: Vec<(String, String)> = env.to_vec();
        for (name, value) in std::env::vars() {
            if self.env_allowed(&name) && !env.iter().any(|(n, _)| *n == name) {
                child_env.push((name, value));
            }
        }
        Ok(ApprovedSpawn { executable, args: args.to_vec(), env: child_env, cwd })
    }

    /// A variable passes if both the grant and the declaration allow it.
    pub fn env_allowed(&self, name: &str) -> bool {
        let matches = |patterns: &[String]| patterns.iter().any(|p| wildcard_match(p, name));
        matches(&self.env_granted) && matches(&self.env_declared)
    }

    fn approve_cwd(&self, cwd: Option<&str>) -> Result<PathBuf, PluginError> {
        let Some(cwd) = cwd else {
            return self.cwd_roots.first().cloned().ok_or_else(|| {
                PluginError::Denied(format!(
                    "plugin `{}` has no working-directory root granted; add `cwd-roots` to its grant",
                    self.plugin
                ))
            });
        };
        let requested = Path::new(cwd);
        if !requested.is_absolute() {
            return Err(PluginError::Invalid(format!("working directory {cwd:?} must be an absolute path")));
        }
        let canonical = requested
            .canonicalize()
            .map_err(|e| PluginError::NotFound(format!("working directory {cwd:?} cannot be used: {e}")))?;
        if self.cwd_roots.iter().any(|root| canonical.starts_with(root)) {
            return Ok(canonical);
        }
        Err(PluginError::Denied(format!(
            "working directory {} is outside the granted roots [{}]; add a parent directory to \
             `cwd-roots` in the plugin's grant",
            canonical.display(),
            self.cwd_roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        )))
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(tail) = text.strip_prefix(prefix) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| wildcard_match(rest, &tail[i..]))
        }
    }
}

fn show_command(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| if a.contains(' ') { format!("{a:?}") } else { a.clone() }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resolve a bare program name on the host's PATH (no shell involved).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(items: &[&str]) -> ArgPattern {
        ArgPattern(items.iter().map(|s| s.to_string()).collect())
    }

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn literal_star_and_rest() {
        let p = pattern(&["exec", "*", "**"]);
        assert!(p.matches(&args(&["exec", "x"])));
        assert!(p.matches(&args(&["exec", "x", "y", "z"])));
        assert!(!p.matches(&args(&["exec"])));
        assert!(!p.matches(&args(&["run", "x"])));
        let exact = pattern(&["--version"]);
        assert!(exact.matches(&args(&["--version"])));
        assert!(!exact.matches(&args(&["--version", "extra"])));
        assert!(pattern(&[]).matches(&[]));
        assert!(!pattern(&[]).matches(&args(&["a"])));
    }

    #[test]
    fn double_star_only_counts_at_the_end() {
        let p = pattern(&["**", "x"]);
        assert!(p.matches(&args(&["**", "x"])));
        assert!(!p.matches(&args(&["a", "x"])));
    }

    fn policy(cwd_root: &Path) -> ProcessPolicy {
        ProcessPolicy {
            plugin: "test".into(),
            granted: vec![ProgramGrant {
                name: "echo".into(),
                path: Some("/bin/echo".into()),
                args: pattern(&["hello", "*"]),
            }],
            declared: vec![DeclaredProgram { name: "echo".into(), args: pattern(&["**"]) }],
            env_granted: vec!["LANG".into(), "SECRET".into()],
            env_declared: vec!["LANG".into(), "*_KEY".into()],
            cwd_roots: vec![cwd_root.canonicalize().unwrap()],
        }
    }

    #[test]
    fn needs_grant_and_declaration() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = policy(dir.path());
        assert!(p.approve("echo", &args(&["hello", "x"]), &[], None).is_ok());
        let err = p.approve("echo", &args(&["bye"]), &[], None).unwrap_err();
        assert!(matches!(err, PluginError::Denied(ref m) if m.contains("no grant matches")), "{err:?}");
        p.declared.clear();
        let err = p.approve("echo", &args(&["hello", "x"]), &[], None).unwrap_err();
        assert!(matches!(err, PluginError::Denied(ref m) if m.contains("does not declare")), "{err:?}");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*_API_KEY", "MOCK_API_KEY"));
        assert!(!wildcard_match("*_API_KEY", "MOCK_API_KEYS"));
        assert!(wildcard_match("LC_*", "LC_ALL"));
        assert!(wildcard_match("A*B*C", "AxxBxxC"));
        assert!(!wildcard_match("HOME", "HOMEX"));
    }

    #[test]
    fn env_needs_both_grant_and_declaration() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        assert!(p.env_allowed("LANG"));
        assert!(!p.env_allowed("SECRET"), "granted but not declared");
        assert!(!p.env_allowed("API_KEY"), "declared but not granted");
    }

    #[test]
    fn env_and_cwd_are_confined() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let env = vec![("SECRET".to_string(), "x".to_string())];
        let err = p.approve("echo", &args(&["hello", "x"]), &env, None).unwrap_err();
        assert!(matches!(err, PluginError::Denied(ref m) if m.contains("SECRET")), "{err:?}");
        let err = p.approve("echo", &args(&["hello", "x"]), &[], Some("/")).unwrap_err();
        assert!(matches!(err, PluginError::Denied(ref m) if m.contains("outside the granted roots")));
        let inner = dir.path().join("sub");
        std::fs::create_dir(&inner).unwrap();
        let ok = p.approve("echo", &args(&["hello", "x"]), &[], inner.to_str()).unwrap();
        assert_eq!(ok.cwd, inner.canonicalize().unwrap());
        std::os::unix::fs::symlink("/", dir.path().join("escape")).unwrap();
        let escape = dir.path().join("escape");
        let err = p.approve("echo", &args(&["hello", "x"]), &[], escape.to_str()).unwrap_err();
        assert!(matches!(err, PluginError::Denied(_)), "a symlink out of the root is refused");
    }
}
