//! Host-owned paths inside a granted root. An operator may grant a plugin a
//! directory that also holds Warden's own files (the state directory holds
//! the turn locks; a broad grant may hold the configuration, the component
//! cache or another plugin's wasm). Those stay out of the plugin's reach:
//! naming one, anything below one, or (for moves and removals) a directory
//! above one is refused, and listings do not show them.
//!
//! Names are not enough: on a case-insensitive file system (vfat, exFAT,
//! APFS, NTFS) `WARDEN.TOML` is `warden.toml`, vfat also answers to 8.3
//! aliases, and a hard link or bind mount gives a file a second name. So a
//! reserved entry is recognised by its identity (device and inode): each
//! operation takes a [`Fence`] (the identities of the reserved entries, the
//! directories above them and their parents, pinned open for the
//! operation's length), and the store checks every component it opens
//! against it. The pins outlive the operation: the next one looks each path
//! up again (one `statx`) and reuses the pin when the path still leads to
//! the pinned entry (a pinned inode cannot be reused, so equal numbers mean
//! the same entry), and pins it afresh when it does not. Names are also
//! compared case-folded, which covers reserved entries that do not exist
//! yet and FUSE file systems whose inode numbers differ per spelling.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags};

use crate::types::PluginError;

/// A file's identity: (device, inode).
pub type Id = (u64, u64);

/// Relative paths (components joined by `/`) the guest may not touch.
#[derive(Debug, Default)]
pub struct Reserved {
    paths: Vec<ReservedPath>,
    /// The entries last pinned, by path relative to the root: (identity, `O_PATH` handle).
    pins: Mutex<Vec<(String, Id, Arc<OwnedFd>)>>,
}

#[derive(Debug)]
struct ReservedPath {
    /// Relative to the root, components joined by `/`.
    relative: String,
    /// `relative`, case-folded.
    folded: String,
    /// Directories strictly between the root and the entry, relative to the root.
    ancestors: Vec<String>,
    /// The directory holding the entry: the root itself (`None`), or the last of `ancestors`.
    parent: Option<String>,
    what: String,
}

impl Reserved {
    /// Fence off `host_path` (described as `what`) if it lies inside `root`.
    /// A root that IS a host path, or lies inside one, cannot be granted at all.
    pub fn add(&mut self, root: &Path, host_path: &Path, what: &str) -> Result<(), PluginError> {
        let (root, host) = (resolved(root), resolved(host_path));
        if let Some(inside) = containing(&host, &root) {
            let how = if inside { "lies inside" } else { "is" };
            return Err(PluginError::Denied(format!(
                "{} {how} Warden's {what} ({}); grant the plugin a directory of its own",
                root.display(),
                host.display()
            )));
        }
        let Some(relative) = relative_to(&host, &root) else { return Ok(()) };
        let components: Vec<String> = relative.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        let ancestors: Vec<String> = (1..components.len()).map(|n| components[..n].join("/")).collect();
        let parent = ancestors.last().cloned();
        let relative = components.join("/");
        self.paths.push(ReservedPath {
            folded: fold(&relative),
            relative,
            ancestors,
            parent,
            what: format!("Warden's {what}"),
        });
        Ok(())
    }

    /// Refuse `path` if its name is a reserved path or lies below one (case-folded).
    pub fn check(&self, path: &str) -> Result<(), PluginError> {
        let folded = fold(path);
        self.refuse_if(path, |reserved| within(&folded, &reserved.folded))
    }

    /// Refuse `path` also if it names a directory above a reserved path
    /// (moving or removing it would take the reserved path along).
    pub fn check_with_ancestors(&self, path: &str) -> Result<(), PluginError> {
        let folded = fold(path);
        self.refuse_if(path, |reserved| {
            within(&folded, &reserved.folded) || within(&reserved.folded, &folded)
        })
    }

    fn refuse_if(&self, path: &str, touches: impl Fn(&ReservedPath) -> bool) -> Result<(), PluginError> {
        match self.paths.iter().find(|reserved| touches(reserved)) {
            Some(reserved) => Err(refusal(path, reserved)),
            None => Ok(()),
        }
    }

    /// Each reserved path (relative to the root) with what it is.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.paths.iter().map(|p| (p.relative.as_str(), p.what.as_str()))
    }

    /// Whether the entry `name` of the directory `dir` (`""` for the root) is
    /// reserved by name (case-folded).
    pub fn hides(&self, dir: &str, name: &str) -> bool {
        let path = fold(&if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") });
        self.paths.iter().any(|reserved| reserved.folded == path)
    }

    /// The reserved entries' identities now, pinned open until the fence is
    /// dropped. `root` is the granted root, opened, and `root_id` its identity:
    /// every entry is reached from it, so a fence costs one short lookup per
    /// reserved entry and directory above it.
    pub fn fence(&self, root: BorrowedFd<'_>, root_id: Id) -> Fence<'_> {
        let mut fence = Fence {
            reserved: self,
            entries: Vec::new(),
            ancestors: Vec::new(),
            parents: Vec::new(),
            _pins: Vec::new(),
        };
        for (index, reserved) in self.paths.iter().enumerate() {
            if let Some(id) = fence.pin(root, &reserved.relative) {
                fence.entries.push((id, index));
            }
            for ancestor in &reserved.ancestors {
                if let Some(id) = fence.pin(root, ancestor) {
                    fence.ancestors.push((id, index));
                }
            }
            let parent = match &reserved.parent {
                None => Some(root_id),
                Some(parent) => fence.pin(root, parent),
            };
            fence.parents.extend(parent);
        }
        fence
    }

    /// A pin on the entry now at `relative`, and its identity: the last pin
    /// if it still holds that entry, else a new one. `None` if there is none.
    fn pinned(&self, root: BorrowedFd<'_>, relative: &str) -> Option<(Id, Arc<OwnedFd>)> {
        let mut pins = self.pins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = pins.iter().position(|(path, _, _)| path == relative);
        let seen = match rustix::fs::statat(root, relative, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => (stat.st_dev, stat.st_ino),
            Err(_) => {
                // Gone: the pin would only keep a removed entry alive.
                if let Some(index) = slot {
                    pins.swap_remove(index);
                }
                return None;
            }
        };
        if let Some(index) = slot
            && pins[index].1 == seen
        {
            return Some((seen, pins[index].2.clone()));
        }
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(root, relative, flags, Mode::empty()).ok()?;
        let stat = rustix::fs::fstat(&fd).ok()?;
        let pinned = ((stat.st_dev, stat.st_ino), Arc::new(fd));
        match slot {
            Some(index) => pins[index] = (relative.to_string(), pinned.0, pinned.1.clone()),
            None => pins.push((relative.to_string(), pinned.0, pinned.1.clone())),
        }
        Some(pinned)
    }
}

/// The identities of the reserved entries during one operation.
pub struct Fence<'r> {
    reserved: &'r Reserved,
    entries: Vec<(Id, usize)>,
    ancestors: Vec<(Id, usize)>,
    parents: Vec<Id>,
    /// Open `O_PATH` handles keep every identity above valid (no inode reuse,
    /// stable numbers on file systems that make them up) while the fence lives.
    _pins: Vec<Arc<OwnedFd>>,
}

impl Fence<'_> {
    /// Whether there is nothing to check (no reserved path exists in this root).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.ancestors.is_empty()
    }

    /// Refuse `path` if the entry it reached (`id`) is a reserved entry.
    pub fn check(&self, id: Id, path: &str) -> Result<(), PluginError> {
        match self.entries.iter().find(|(reserved, _)| *reserved == id) {
            Some((_, index)) => Err(refusal(path, &self.reserved.paths[*index])),
            None => Ok(()),
        }
    }

    /// Refuse `path` if its entry is reserved or a directory above a reserved entry.
    pub fn check_with_ancestors(&self, id: Id, path: &str) -> Result<(), PluginError> {
        self.check(id, path)?;
        match self.ancestors.iter().find(|(ancestor, _)| *ancestor == id) {
            Some((_, index)) => Err(refusal(path, &self.reserved.paths[*index])),
            None => Ok(()),
        }
    }

    /// Whether the directory `id` directly holds a reserved entry (so its listing must be filtered).
    pub fn holds_reserved(&self, id: Id) -> bool {
        self.parents.contains(&id)
    }

    /// Whether the entry `id` is reserved (to leave it out of a listing).
    pub fn hides(&self, id: Id) -> bool {
        self.entries.iter().any(|(reserved, _)| *reserved == id)
    }

    fn pin(&mut self, root: BorrowedFd<'_>, relative: &str) -> Option<Id> {
        let (id, pin) = self.reserved.pinned(root, relative)?;
        self._pins.push(pin);
        Some(id)
    }
}

fn refusal(path: &str, reserved: &ReservedPath) -> PluginError {
    PluginError::Denied(format!(
        "{path:?} would touch {:?}, which is {}; plugins cannot reach it even inside their root",
        reserved.relative, reserved.what
    ))
}

/// Case folding for name comparisons: upper then lower case, so that
/// characters whose upper case is ASCII (`ı`, `ſ`, the Kelvin sign) match too.
fn fold(name: &str) -> String {
    name.to_uppercase().to_lowercase()
}

/// Whether `path` is `base` or lies below it (both lexically clean).
fn within(path: &str, base: &str) -> bool {
    path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `Some(false)` if `root` is the host path, `Some(true)` if it lies inside
/// it (by name, case-folded, or by the identity of one of its directories).
fn containing(host: &Path, root: &Path) -> Option<bool> {
    let host_id = std::fs::metadata(host).ok().map(|m| id_of(&m));
    for (depth, ancestor) in root.ancestors().enumerate() {
        let same_name = fold(&ancestor.to_string_lossy()) == fold(&host.to_string_lossy());
        let same_id = host_id.is_some() && std::fs::metadata(ancestor).ok().map(|m| id_of(&m)) == host_id;
        if same_name || same_id {
            return Some(depth > 0);
        }
    }
    None
}

/// `host` relative to `root` if it lies inside it: by name, or through an
/// ancestor directory that is the root (a case variant of its path).
fn relative_to(host: &Path, root: &Path) -> Option<PathBuf> {
    if let Ok(relative) = host.strip_prefix(root) {
        return Some(relative.to_path_buf());
    }
    let root_id = std::fs::metadata(root).ok().map(|m| id_of(&m))?;
    host.ancestors().skip(1).find_map(|ancestor| {
        let same = std::fs::metadata(ancestor).is_ok_and(|m| id_of(&m) == root_id);
        same.then(|| host.strip_prefix(ancestor).ok().map(Path::to_path_buf)).flatten()
    })
}

fn id_of(meta: &std::fs::Metadata) -> Id {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
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
        assert!(reserved.check("TURN-LOCKS/x.lock").is_err(), "names compare case-folded");
        assert!(reserved.check("turn-loc\u{212a}s").is_err(), "the Kelvin sign folds to k");
        assert!(reserved.check("turn-locks-not").is_ok());
        assert!(reserved.check("elsewhere").is_ok());
        assert!(reserved.check("plugins").is_ok());
        assert!(reserved.check_with_ancestors("plugins").is_err());
        assert!(reserved.check_with_ancestors("Plugins").is_err());
        assert!(reserved.check_with_ancestors("plugins/other.wasm").is_ok());
        assert!(reserved.hides("", "turn-locks") && reserved.hides("plugins", "agent.wasm"));
        assert!(reserved.hides("PLUGINS", "Agent.wasm"));
        assert!(!reserved.hides("", "plugins"));
        let err = Reserved::default().add(&root, &root, "configuration file").unwrap_err();
        assert!(format!("{err:?}").contains("a directory of its own"), "{err:?}");
    }

    #[test]
    fn a_root_inside_a_reserved_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(cache.join("sub/deeper")).unwrap();
        for root in [cache.join("sub"), cache.join("sub/deeper")] {
            let err = Reserved::default().add(&root, &cache, "compiled-component cache").unwrap_err();
            assert!(format!("{err:?}").contains("lies inside Warden's compiled-component cache"), "{err:?}");
        }
        std::os::unix::fs::symlink(cache.join("sub"), dir.path().join("link")).unwrap();
        let err = Reserved::default().add(&dir.path().join("link"), &cache, "cache").unwrap_err();
        assert!(format!("{err:?}").contains("lies inside"), "through a symlink too: {err:?}");
    }

    #[test]
    fn a_fence_knows_entries_their_ancestors_and_parents_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("plugins")).unwrap();
        std::fs::write(root.join("plugins/agent.wasm"), "wasm").unwrap();
        let mut reserved = Reserved::default();
        reserved.add(root, &root.join("plugins/agent.wasm"), "agent-driver plugin").unwrap();
        reserved.add(root, &root.join("not-yet"), "turn-lock directory").unwrap();
        let id = |p: &Path| id_of(&std::fs::symlink_metadata(p).unwrap());
        let opened = std::fs::File::open(root).unwrap();
        let fence = reserved.fence(std::os::fd::AsFd::as_fd(&opened), id(root));
        assert!(fence.check(id(&root.join("plugins/agent.wasm")), "x").is_err());
        assert!(fence.check(id(&root.join("plugins")), "x").is_ok());
        assert!(fence.check_with_ancestors(id(&root.join("plugins")), "x").is_err());
        assert!(fence.holds_reserved(id(&root.join("plugins"))) && fence.holds_reserved(id(root)));
        std::fs::hard_link(root.join("plugins/agent.wasm"), root.join("alias")).unwrap();
        assert!(fence.hides(id(&root.join("alias"))), "a hard link is the same file");
    }

    #[test]
    fn a_fence_follows_a_reserved_entry_replaced_or_created_between_operations() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("warden.toml"), "first").unwrap();
        let mut reserved = Reserved::default();
        reserved.add(root, &root.join("warden.toml"), "configuration").unwrap();
        reserved.add(root, &root.join("turn-locks"), "turn-lock directory").unwrap();
        let id = |p: &Path| id_of(&std::fs::symlink_metadata(p).unwrap());
        let opened = std::fs::File::open(root).unwrap();
        let fence = || reserved.fence(std::os::fd::AsFd::as_fd(&opened), id(root));
        let first = id(&root.join("warden.toml"));
        assert!(fence().hides(first));
        // An editor's save: a new file renamed over the old one.
        std::fs::write(root.join("new"), "second").unwrap();
        std::fs::rename(root.join("new"), root.join("warden.toml")).unwrap();
        std::fs::create_dir(root.join("turn-locks")).unwrap();
        let fence = fence();
        assert!(fence.hides(id(&root.join("warden.toml"))), "the new file is fenced");
        assert!(!fence.hides(first), "the old one, gone, is not");
        assert!(fence.hides(id(&root.join("turn-locks"))), "an entry created since is fenced");
        std::fs::hard_link(root.join("warden.toml"), root.join("alias")).unwrap();
        assert!(fence.hides(id(&root.join("alias"))));
    }
}
