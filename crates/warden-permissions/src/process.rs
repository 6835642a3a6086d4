//! The effective process permissions of one plugin: the intersection of the
//! operator's grants (programs with their argument policies, environment,
//! working-directory roots) and the plugin's own declaration (its manifest).
//! [`ProcessPolicy::approve`] is the one check every spawn passes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::denial::Denial;
use crate::env::{EnvDeclaration, EnvGrant};
use crate::pattern::ArgPattern;
use crate::program::ResolvedProgram;
use crate::requests::RequestLimits;
use crate::value::{ValueContext, check_path};

/// A program the plugin declared it needs (from its manifest).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeclaredProgram {
    pub name: String,
    #[serde(default)]
    pub args: ArgPattern,
}

#[derive(Clone, Debug, Default)]
pub struct ProcessPolicy {
    pub plugin: String,
    pub granted: Vec<ResolvedProgram>,
    pub declared: Vec<DeclaredProgram>,
    pub env: EnvGrant,
    pub env_declared: EnvDeclaration,
    /// Directories a child's working directory (and any path argument) must lie inside (canonical).
    pub cwd_roots: Vec<PathBuf>,
    /// What a turn may ask for (sandbox, approvals, configuration keys); the
    /// built-in program policies are built from the same limits.
    pub requests: RequestLimits,
}

/// A request that passed every check, ready to spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedSpawn {
    pub executable: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

impl ProcessPolicy {
    /// Check a request; a denial names the missing grant and how to add it.
    /// `host_env` is Warden's own environment, source of inherited values.
    pub fn approve(
        &self,
        program: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: Option<&str>,
        host_env: impl Iterator<Item = (String, String)>,
    ) -> Result<ApprovedSpawn, Denial> {
        let plugin = &self.plugin;
        let shown = show_command(program, args);
        if !self.declared.iter().any(|d| d.name == program && d.args.matches(args)) {
            return Err(Denial::Denied(format!(
                "plugin `{plugin}` tried to run `{shown}`, which its manifest does not declare; \
                 the plugin must declare this program and argument pattern"
            )));
        }
        let candidates: Vec<&ResolvedProgram> = self.granted.iter().filter(|g| g.name == program).collect();
        if candidates.is_empty() {
            return Err(Denial::Denied(format!(
                "plugin `{plugin}` may not run `{program}`: it is not granted. To allow it, add \
                 [[plugins.<role>.programs]] name = {program:?} with its argument policy to the operator configuration"
            )));
        }
        let context = ValueContext { cwd_roots: self.cwd_roots.clone() };
        let mut reasons = Vec::new();
        let mut grant = None;
        for candidate in candidates {
            match candidate.check_args(args, &context) {
                Ok(()) => {
                    grant = Some(candidate);
                    break;
                }
                Err(reason) => reasons.push(reason),
            }
        }
        let Some(grant) = grant else {
            return Err(Denial::Denied(format!(
                "plugin `{plugin}` may not run `{shown}`: {}",
                reasons.join("; or ")
            )));
        };
        let cwd = self.approve_cwd(cwd)?;
        let child_env = self.env.child_env(&self.env_declared, env, host_env, plugin)?;
        let executable = grant.executable.clone().map_err(Denial::NotFound)?;
        Ok(ApprovedSpawn { executable, args: args.to_vec(), env: child_env, cwd })
    }

    fn approve_cwd(&self, cwd: Option<&str>) -> Result<PathBuf, Denial> {
        let Some(cwd) = cwd else {
            return self.cwd_roots.first().cloned().ok_or_else(|| {
                Denial::Denied(format!(
                    "plugin `{}` has no working-directory root granted; add `cwd-roots` to its grant",
                    self.plugin
                ))
            });
        };
        check_path(cwd, &self.cwd_roots).map_err(|e| {
            if e.contains("outside") {
                Denial::Denied(format!("working directory {e}"))
            } else if e.contains("absolute") {
                Denial::Invalid(format!("working directory {e}"))
            } else {
                Denial::NotFound(format!("working directory {e}"))
            }
        })
    }
}

fn show_command(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(
            args.iter().map(|a| if a.contains(' ') || a.is_empty() { format!("{a:?}") } else { a.clone() }),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::ProgramGrant;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn policy(root: &std::path::Path) -> ProcessPolicy {
        let grant = ProgramGrant {
            name: "echo".into(),
            path: Some("/bin/echo".into()),
            args: Some(ArgPattern(args(&["hello", "*"]))),
            unrestricted: true,
            ..ProgramGrant::default()
        };
        ProcessPolicy {
            plugin: "test".into(),
            granted: vec![grant.resolve(&RequestLimits::default(), None).unwrap()],
            declared: vec![DeclaredProgram { name: "echo".into(), args: ArgPattern(args(&["**"])) }],
            env: EnvGrant { inherit: vec!["LANG".into(), "SECRET".into()], ..EnvGrant::default() },
            env_declared: EnvDeclaration(vec!["LANG".into(), "*_KEY".into()]),
            cwd_roots: vec![root.canonicalize().unwrap()],
            requests: RequestLimits::default(),
        }
    }

    fn none() -> std::iter::Empty<(String, String)> {
        std::iter::empty()
    }

    #[test]
    fn needs_grant_and_declaration() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = policy(dir.path());
        assert!(p.approve("echo", &args(&["hello", "x"]), &[], None, none()).is_ok());
        let err = p.approve("echo", &args(&["bye"]), &[], None, none()).unwrap_err();
        assert!(err.message().contains("do not match"), "{err:?}");
        let err = p.approve("cat", &args(&[]), &[], None, none()).unwrap_err();
        assert!(err.message().contains("does not declare"), "{err:?}");
        p.declared.clear();
        let err = p.approve("echo", &args(&["hello", "x"]), &[], None, none()).unwrap_err();
        assert!(err.message().contains("does not declare"), "{err:?}");
    }

    #[test]
    fn env_and_cwd_are_confined() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let host =
            || [("SECRET".to_string(), "s".to_string()), ("LANG".to_string(), "C".to_string())].into_iter();
        let ok = p.approve("echo", &args(&["hello", "x"]), &[], None, host()).unwrap();
        assert_eq!(
            ok.env,
            [("LANG".to_string(), "C".to_string())],
            "granted but undeclared SECRET stays out"
        );
        let err = p
            .approve("echo", &args(&["hello", "x"]), &[("LANG".into(), "x".into())], None, host())
            .unwrap_err();
        assert!(matches!(err, Denial::Denied(_)), "{err:?}");
        let err = p.approve("echo", &args(&["hello", "x"]), &[], Some("/"), none()).unwrap_err();
        assert!(err.message().contains("outside"), "{err:?}");
        let inner = dir.path().join("sub");
        std::fs::create_dir(&inner).unwrap();
        let ok = p.approve("echo", &args(&["hello", "x"]), &[], inner.to_str(), none()).unwrap();
        assert_eq!(ok.cwd, inner.canonicalize().unwrap());
        std::os::unix::fs::symlink("/", dir.path().join("escape")).unwrap();
        let escape = dir.path().join("escape");
        let err = p.approve("echo", &args(&["hello", "x"]), &[], escape.to_str(), none()).unwrap_err();
        assert!(matches!(err, Denial::Denied(_)), "a symlink out of the root is refused");
    }
}
