//! A program the operator grants: its name, where it is (resolved to an
//! absolute path once, at start-up), and how its arguments are checked —
//! a typed policy (built-in or written out), an exact argument list, or,
//! only when the operator says `unrestricted = true`, positional patterns.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::argv::Command;
use crate::pattern::ArgPattern;
use crate::requests::RequestLimits;
use crate::value::ValueContext;
use crate::{claude, codex, gemini};

/// As written in the configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProgramGrant {
    /// The name plugins use to ask for it.
    pub name: String,
    /// The executable; found on Warden's PATH (absolute entries only) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A built-in typed policy (`"codex"`, `"claude"` or `"gemini"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A typed policy written out: options, subcommands, positionals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Command>,
    /// One exact argument list; with `unrestricted = true` it may use `*`
    /// (one argument) and a trailing `**` (the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<ArgPattern>,
    /// Accept wildcard `args`: the plugin may then pass any option, including
    /// ones that make the program load code or start other programs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unrestricted: bool,
}

/// How a granted program's arguments are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgumentCheck {
    Typed { policy: Box<Command>, source: String },
    Exact(ArgPattern),
    Unrestricted(ArgPattern),
}

/// A grant ready to check requests against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedProgram {
    pub name: String,
    /// The absolute path, or why it is not available on this host.
    pub executable: Result<PathBuf, String>,
    pub check: ArgumentCheck,
}

impl ProgramGrant {
    /// Check the grant and resolve its program; errors are configuration
    /// errors naming the fix.
    pub fn resolve(
        &self,
        limits: &RequestLimits,
        host_path: Option<&std::ffi::OsStr>,
    ) -> Result<ResolvedProgram, String> {
        let name = &self.name;
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "program name {name:?} must be a plain name without `/`; put the location in `path`"
            ));
        }
        let chosen = [self.policy.is_some(), self.arguments.is_some(), self.args.is_some()];
        let check = match (&self.policy, &self.arguments, &self.args) {
            _ if chosen.iter().filter(|c| **c).count() > 1 => {
                return Err(format!("program {name:?}: give only one of `policy`, `arguments` and `args`"));
            }
            (Some(policy), _, _) if policy == codex::NAME => ArgumentCheck::Typed {
                policy: Box::new(codex::policy(limits)),
                source: format!("built-in policy {policy:?}"),
            },
            (Some(policy), _, _) if policy == claude::NAME => ArgumentCheck::Typed {
                policy: Box::new(claude::policy(limits)),
                source: format!("built-in policy {policy:?}"),
            },
            (Some(policy), _, _) if policy == gemini::NAME => ArgumentCheck::Typed {
                policy: Box::new(gemini::policy(limits)),
                source: format!("built-in policy {policy:?}"),
            },
            (Some(policy), _, _) => {
                return Err(format!(
                    "program {name:?}: unknown built-in policy {policy:?} (known: {:?}, {:?}, {:?})",
                    codex::NAME,
                    claude::NAME,
                    gemini::NAME
                ));
            }
            (None, Some(arguments), _) => {
                arguments.validate().map_err(|e| format!("program {name:?}: `arguments`: {e}"))?;
                ArgumentCheck::Typed { policy: Box::new(arguments.clone()), source: "`arguments`".into() }
            }
            (None, None, Some(args)) if self.unrestricted => ArgumentCheck::Unrestricted(args.clone()),
            (None, None, Some(args)) if args.has_wildcard() => {
                return Err(format!(
                    "program {name:?}: `args = [{}]` uses a wildcard, which lets a plugin pass any option \
                     (for codex, `-c mcp_servers.<x>.command=...` runs any program). Describe the arguments \
                     with a typed policy (`policy = \"codex\"`, or an `arguments` table), or write \
                     `unrestricted = true` to accept that risk",
                    args.0.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
                ));
            }
            (None, None, Some(args)) => ArgumentCheck::Exact(args.clone()),
            (None, None, None) if self.unrestricted => {
                ArgumentCheck::Unrestricted(ArgPattern(vec!["**".into()]))
            }
            (None, None, None) => {
                return Err(format!(
                    "program {name:?}: say how its arguments are checked: `policy = \"codex\"`, \
                     `policy = \"claude\"` or `policy = \"gemini\"`, an `arguments` table, an exact `args` list, or `unrestricted = true`"
                ));
            }
        };
        let executable = match &self.path {
            Some(path) if !path.is_absolute() => {
                return Err(format!("program {name:?}: `path` {} must be absolute", path.display()));
            }
            Some(path) if is_executable(path) => Ok(path.clone()),
            Some(path) => Err(format!(
                "program {name:?} is granted at {}, which is not an executable file",
                path.display()
            )),
            None => find_on_path(name, host_path).ok_or_else(|| {
                format!(
                    "program {name:?} is granted but was not found on PATH when Warden started; install it (or set `path` in its grant) and restart Warden"
                )
            }),
        };
        Ok(ResolvedProgram { name: name.clone(), executable, check })
    }
}

impl ResolvedProgram {
    pub fn check_args(&self, args: &[String], context: &ValueContext) -> Result<(), String> {
        match &self.check {
            ArgumentCheck::Typed { policy, .. } => policy.check(&self.name, args, context),
            ArgumentCheck::Exact(pattern) | ArgumentCheck::Unrestricted(pattern) => {
                if pattern.matches(args) {
                    Ok(())
                } else {
                    Err(format!("the arguments do not match the granted `args = [{}]`", pattern.show()))
                }
            }
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        matches!(self.check, ArgumentCheck::Unrestricted(_))
    }

    /// Lines for `warden plugins` and `warden plugin check`.
    pub fn describe(&self) -> Vec<String> {
        let location = match &self.executable {
            Ok(path) => path.display().to_string(),
            Err(_) => "(not found on PATH)".into(),
        };
        match &self.check {
            ArgumentCheck::Typed { policy, source } => {
                let mut lines = vec![format!("{} at {location}, arguments checked by {source}:", self.name)];
                lines.extend(policy.describe(&self.name).into_iter().map(|l| format!("  {l}")));
                lines
            }
            ArgumentCheck::Exact(args) => {
                vec![format!("{} at {location}, exactly: {} {}", self.name, self.name, args.show())]
            }
            ArgumentCheck::Unrestricted(args) => vec![format!(
                "UNRESTRICTED: {} at {location} with any arguments matching `{}` — the plugin may make it load code or start other programs",
                self.name,
                args.show()
            )],
        }
    }
}

/// A bare program name on `host_path`, skipping relative and empty entries
/// (they would resolve against whatever directory Warden runs in).
pub fn find_on_path(program: &str, host_path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(host_path?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(toml_text: &str) -> ProgramGrant {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn wildcards_need_the_explicit_opt_out() {
        let limits = RequestLimits::default();
        let path = Some(std::ffi::OsStr::new("/bin:/usr/bin"));
        let err = grant("name = \"sh\"\nargs = [\"exec\", \"**\"]").resolve(&limits, path).unwrap_err();
        assert!(err.contains("unrestricted = true") && err.contains("mcp_servers"), "{err}");
        let open =
            grant("name = \"sh\"\nargs = [\"**\"]\nunrestricted = true").resolve(&limits, path).unwrap();
        assert!(open.is_unrestricted());
        assert!(open.describe()[0].starts_with("UNRESTRICTED"));
        let exact = grant("name = \"sh\"\nargs = [\"-c\", \"true\"]").resolve(&limits, path).unwrap();
        assert!(exact.check_args(&["-c".into(), "true".into()], &ValueContext::default()).is_ok());
        assert!(exact.check_args(&["-c".into(), "id".into()], &ValueContext::default()).is_err());
        assert!(grant("name = \"sh\"").resolve(&limits, path).unwrap_err().contains("say how"));
        assert!(
            grant("name = \"sh\"\npolicy = \"codex\"\nargs = []")
                .resolve(&limits, path)
                .unwrap_err()
                .contains("only one")
        );
        assert!(
            grant("name = \"sh\"\npolicy = \"git\"")
                .resolve(&limits, path)
                .unwrap_err()
                .contains("unknown built-in")
        );
    }

    #[test]
    fn relative_path_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let old = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let relative = find_on_path("tool", Some(std::ffi::OsStr::new("bin::.")));
        let absolute = find_on_path("tool", Some(std::ffi::OsStr::new(&format!("bin:{}", bin.display()))));
        std::env::set_current_dir(old).unwrap();
        assert_eq!(relative, None);
        assert_eq!(absolute, Some(tool));
        let limits = RequestLimits::default();
        let err = grant("name = \"tool\"\npath = \"bin/tool\"\npolicy = \"codex\"")
            .resolve(&limits, None)
            .unwrap_err();
        assert!(err.contains("must be absolute"), "{err}");
    }
}
