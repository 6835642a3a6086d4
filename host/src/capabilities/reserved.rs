//! Host-owned paths inside a granted root. An operator may grant a plugin a
//! directory that also holds Warden's own files (the state directory holds
//! the turn locks; a broad grant may hold the configuration, the component
//! cache or another plugin's wasm). Those stay out of the plugin's reach:
//! naming one, anything below one, or (for moves and removals) a directory
//! above one is refused, and listings do not show them.

use std::path::{Path, PathBuf};

use crate::types::PluginError;

/// Relative paths (components joined by `/`) the guest may not touch.
#[derive(Debug, Default)]
pub struct Reserved {
    paths: Vec<(String, String)>,
}

impl Reserved {
    /// Fence off `host_path` (described as `what`) if it lies inside `root`.
    /// A root that IS a host path cannot be granted at all.
    pub fn add(&mut self, root: &Path, host_path: &Path, what: &str) -> Result<(), PluginError> {
        let (root, host) = (resolved(root), resolved(host_path));
        let Ok(relative) = host.strip_prefix(&root) else { return Ok(()) };
        if relative.as_os_str().is_empty() {
            return Err(PluginError::Denied(format!(
                "{} is Warden's {what}; grant the plugin a directory of its own",
                root.display()
            )));
        }
        let relative = relative.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/");
        self.paths.push((relative, format!("Warden's {what}")));
        Ok(())
    }

    /// Refuse `path` if it is a reserved path or lies below one.
    pub fn check(&self, path: &str) -> Result<(), PluginError> {
        self.refuse_if(path, |reserved| within(path, reserved))
    }

    /// Refuse `path` also if it is a directory above a reserved path (moving
    /// or removing it would take the reserved path along).
    pub fn check_with_ancestors(&self, path: &str) -> Result<(), PluginError> {
        self.refuse_if(path, |reserved| within(path, reserved) || within(reserved, path))
    }

    fn refuse_if(&self, path: &str, touches: impl Fn(&str) -> bool) -> Result<(), PluginError> {
        match self.paths.iter().find(|(reserved, _)| touches(reserved)) {
            Some((reserved, what)) => Err(PluginError::Denied(format!(
                "{path:?} would touch {reserved:?}, which is {what}; plugins cannot reach it even inside their root"
            ))),
            None => Ok(()),
        }
    }

    /// Each reserved path (relative to the root) with what it is.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.paths.iter().map(|(path, what)| (path.as_str(), what.as_str()))
    }

    /// Whether the entry `name` of the directory `dir` (`""` for the root) is reserved.
    pub fn hides(&self, dir: &str, name: &str) -> bool {
        let path = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
        self.paths.iter().any(|(reserved, _)| *reserved == path)
    }
}

/// Whether `path` is `base` or lies below it (both lexically clean).
fn within(path: &str, base: &str) -> bool {
    path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `path` with symlinks resolved as far as it exists, the rest appended.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_only_paths_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        std::fs::create_dir(&root).unwrap();
        let mut reserved = Reserved::default();
        reserved.add(&root, &root.join("turn-locks"), "turn-lock directory").unwrap();
        reserved.add(&root, &dir.path().join("elsewhere"), "cache").unwrap();
        reserved.add(&root, &root.join("plugins/agent.wasm"), "agent-driver plugin").unwrap();
        assert!(reserved.check("turn-locks").is_err());
        assert!(reserved.check("turn-locks/x.lock").is_err());
        assert!(reserved.check("turn-locks-not").is_ok());
        assert!(reserved.check("elsewhere").is_ok());
        assert!(reserved.check("plugins").is_ok());
        assert!(reserved.check_with_ancestors("plugins").is_err());
        assert!(reserved.check_with_ancestors("plugins/other.wasm").is_ok());
        assert!(reserved.hides("", "turn-locks") && reserved.hides("plugins", "agent.wasm"));
        assert!(!reserved.hides("", "plugins"));
        let err = Reserved::default().add(&root, &root, "configuration file").unwrap_err();
        assert!(format!("{err:?}").contains("a directory of its own"), "{err:?}");
    }
}
