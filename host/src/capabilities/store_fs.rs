//! The `store-fs` capability: file operations confined to one granted root.
//!
//! Confinement does not rely on path checks alone. Every operation walks the
//! relative path one component at a time with `openat(O_NOFOLLOW)` from the
//! root's directory handle (cap-std), so a symbolic link anywhere below the
//! root — file or directory, pointing inside or outside — is refused with
//! `denied`, and a directory swapped for a symlink between a check and its use
//! is refused too. Nothing here ever changes permissions of an existing entry.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, DirBuilder, File, Metadata, OpenOptions, OpenOptionsExt};
use cap_std::fs::{DirBuilderExt, MetadataExt};

use super::reserved::{Fence, Id, Reserved};
use crate::control::Waiter;
use crate::types::{DirEntry, EntryKind, EntryMetadata, PluginError};

pub use wit::{StoreFs, StoreFsView};

/// Prefix of the temporary files `write_atomic` creates; listings hide them.
pub const TEMP_PREFIX: &str = ".warden-tmp.";

/// A temporary file older than this was left by a writer that died.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// How often a waiting `lock` retries (a cancellation ends the wait at once).
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// One directory an operator granted to a plugin.
pub struct FsRoot {
    dir: Dir,
    /// The root's identity, fixed while `dir` holds it open.
    root_id: Id,
    path: PathBuf,
    writable: bool,
    max_read_bytes: u64,
    reserved: Reserved,
    /// If set, the only top-level entries of the root the plugin may reach.
    entries: Option<Vec<String>>,
}

/// An exclusive advisory lock held on a file inside a root (an `flock` on
/// the whole file, or an open-file-description lock on one byte of it),
/// released when dropped.
pub struct FsLock {
    _file: std::fs::File,
}

impl FsRoot {
    /// Open (creating it with mode 0700 if `writable` and missing) the directory
    /// at `path`. The root itself must be a real directory, not a symlink.
    pub fn open(path: &Path, writable: bool, max_read_bytes: u64) -> Result<Self, PluginError> {
        if writable {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| io_error(&format!("creating root {}", path.display()), e))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(PluginError::Denied(format!(
                    "the granted root {} is a symbolic link; grant the real directory instead",
                    path.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(PluginError::Invalid(format!(
                    "the granted root {} is not a directory",
                    path.display()
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(io_error(&format!("opening root {}", path.display()), e)),
        }
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|e| io_error(&format!("opening root {}", path.display()), e))?;
        let root_id =
            id(&dir.dir_metadata().map_err(|e| io_error(&format!("opening root {}", path.display()), e))?);
        Ok(Self {
            dir,
            root_id,
            path: path.to_path_buf(),
            writable,
            max_read_bytes,
            reserved: Reserved::default(),
            entries: None,
        })
    }

    /// Grant only these top-level entries of the root (each one plain name):
    /// anything else is refused and not listed. A read-only CODEX_HOME, for
    /// one, holds credentials beside the transcripts an agent driver reads.
    pub fn limit_to(&mut self, entries: Vec<String>) -> Result<(), PluginError> {
        if let Some(bad) = entries.iter().find(|e| split(e).map_or(true, |c| c.len() != 1)) {
            return Err(PluginError::Invalid(format!(
                "root-entries: {bad:?} is not the name of one entry directly inside the root"
            )));
        }
        self.entries = Some(entries);
        Ok(())
    }

    /// The top-level entries granted, if the root is limited to some.
    pub fn entries(&self) -> Option<&[String]> {
        self.entries.as_deref()
    }

    /// Keep the host's own `host_path` (a `what`) out of reach if it lies inside this root.
    pub fn reserve(&mut self, host_path: &Path, what: &str) -> Result<(), PluginError> {
        self.reserved.add(&self.path, host_path, what)
    }

    /// The host's own paths inside this root, which the plugin cannot reach.
    pub fn reserved(&self) -> &Reserved {
        &self.reserved
    }

    /// The reserved entries' identities for one operation.
    fn fence(&self) -> Fence<'_> {
        self.reserved.fence(self.dir.as_fd(), self.root_id)
    }

    /// The root's path on the host, for messages and configuration.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>, PluginError> {
        let (mut file, len) = self.open_regular(path)?;
        if len > self.max_read_bytes {
            return Err(PluginError::Invalid(format!(
                "{path:?} is {len} bytes, over the read limit of {} bytes; read it in parts with read-range",
                self.max_read_bytes
            )));
        }
        let mut data = Vec::with_capacity(len as usize);
        file.read_to_end(&mut data).map_err(|e| self.fs_error("reading", path, e))?;
        Ok(data)
    }

    /// At most `length` bytes from `offset` (fewer at the end, none past it).
    pub fn read_range(&self, path: &str, offset: u64, length: u32) -> Result<Vec<u8>, PluginError> {
        let (file, len) = self.open_regular(path)?;
        let length = u64::from(length).min(self.max_read_bytes).min(len.saturating_sub(offset));
        let mut data = vec![0; length as usize];
        let mut read = 0;
        while read < data.len() {
            match cap_std::fs::FileExt::read_at(&file, &mut data[read..], offset + read as u64) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fs_error("reading", path, e)),
            }
        }
        data.truncate(read);
        Ok(data)
    }

    /// Open a regular file for reading without following a final symlink; returns it and its length.
    ///
    /// The entry's type is checked before it is opened: opening a FIFO blocks
    /// until a writer appears, and opening a device runs its driver. The open
    /// itself is non-blocking, and the opened file must be the regular file
    /// that was checked, so an entry swapped in between cannot hang the host.
    /// A file replaced in between (another writer's atomic rename) is checked
    /// and opened again, a few times, before the reader is told to retry.
    fn open_regular(&self, path: &str) -> Result<(File, u64), PluginError> {
        const ATTEMPTS: usize = 8;
        let mut attempt = 1;
        loop {
            match self.open_checked(path) {
                Err(OpenRace::Replaced) if attempt < ATTEMPTS => attempt += 1,
                Err(OpenRace::Replaced) => {
                    return Err(PluginError::Busy(format!(
                        "{path:?} was replaced {ATTEMPTS} times while it was being opened; try again"
                    )));
                }
                Err(OpenRace::Failed(e)) => return Err(e),
                Ok(opened) => return Ok(opened),
            }
        }
    }

    fn open_checked(&self, path: &str) -> Result<(File, u64), OpenRace> {
        let (dir, name, entry) = self.parent_and_entry(path, true)?;
        let checked = match entry {
            Some(m) if m.is_file() => m,
            Some(m) => return Err(not_a_regular_file(path, m.file_type()).into()),
            None => return Err(PluginError::NotFound(format!("reading {path:?}: it does not exist")).into()),
        };
        let file = dir
            .open_with(
                name,
                OpenOptions::new()
                    .read(true)
                    .follow(FollowSymlinks::No)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY),
            )
            .map_err(|e| self.fs_error("reading", path, e))?;
        let meta = file.metadata().map_err(|e| self.fs_error("reading", path, e))?;
        if !meta.is_file() {
            return Err(not_a_regular_file(path, meta.file_type()).into());
        }
        if (meta.dev(), meta.ino()) != (checked.dev(), checked.ino()) {
            return Err(OpenRace::Replaced);
        }
        Ok((file, meta.len()))
    }

    /// Temp file (exclusive, no-follow, 0600) in the target's directory, write,
    /// fsync, rename over the target, fsync the directory. Any failure removes
    /// the temp file and is returned.
    pub fn write_atomic(&self, path: &str, data: &[u8]) -> Result<(), PluginError> {
        self.require_writable("write", path)?;
        let (dir, name, entry) = self.parent_and_entry(path, true)?;
        refuse_symlink_or_dir(entry.as_ref(), path)?;
        let temp = format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let result = write_and_sync(&dir, &temp, data)
            .and_then(|()| dir.rename(&temp, &dir, name))
            .and_then(|()| sync_dir(&dir));
        if let Err(e) = result {
            if let Err(cleanup) = dir.remove_file(&temp)
                && cleanup.kind() != ErrorKind::NotFound
            {
                tracing::error!(root = %self.path.display(), temp, error = %cleanup,
                    "could not remove temporary file after a failed write");
            }
            return Err(self.fs_error("writing", path, e));
        }
        Ok(())
    }

    /// Append with one write to a regular file (no-follow, created 0600),
    /// without fsync; returns the file's length after this write. A FIFO or
    /// device is refused before it is opened, as for reads.
    pub fn append(&self, path: &str, data: &[u8]) -> Result<u64, PluginError> {
        self.append_with(path, data, false)
    }

    /// [`Self::append`], then `fdatasync`, and an fsync of the directory when
    /// this call created the file: the bytes are on disk when it returns.
    pub fn append_durable(&self, path: &str, data: &[u8]) -> Result<u64, PluginError> {
        self.append_with(path, data, true)
    }

    fn append_with(&self, path: &str, data: &[u8], durable: bool) -> Result<u64, PluginError> {
        self.require_writable("append to", path)?;
        let (dir, name, entry) = self.parent_and_entry(path, true)?;
        refuse_symlink_or_dir(entry.as_ref(), path)?;
        let open = |create: bool| {
            let mut options = OpenOptions::new();
            options
                .append(true)
                .mode(0o600)
                .follow(FollowSymlinks::No)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
            if create {
                options.create_new(true);
            }
            dir.open_with(name, &options)
        };
        let opened = match open(false) {
            Err(e) if e.kind() == ErrorKind::NotFound => match open(true) {
                // Another writer created it in between.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => open(false).map(|file| (file, false)),
                other => other.map(|file| (file, true)),
            },
            other => other.map(|file| (file, false)),
        };
        let (mut file, created) = opened.map_err(|e| self.fs_error("appending to", path, e))?;
        let meta = file.metadata().map_err(|e| self.fs_error("appending to", path, e))?;
        if !meta.is_file() {
            return Err(not_a_regular_file(path, meta.file_type()));
        }
        file.write_all(data).map_err(|e| self.fs_error("appending to", path, e))?;
        let length =
            std::io::Seek::stream_position(&mut file).map_err(|e| self.fs_error("appending to", path, e))?;
        if durable {
            file.sync_data().map_err(|e| self.fs_error("syncing", path, e))?;
            if created {
                sync_dir(&dir).map_err(|e| self.fs_error("syncing the directory of", path, e))?;
            }
        }
        Ok(length)
    }

    pub fn remove_file(&self, path: &str) -> Result<(), PluginError> {
        self.require_writable("remove", path)?;
        let (dir, name, entry) = self.parent_and_entry(path, true)?;
        refuse_symlink_or_dir(entry.as_ref(), path)?;
        dir.remove_file(name).map_err(|e| self.fs_error("removing", path, e))?;
        sync_dir(&dir).map_err(|e| self.fs_error("removing", path, e))
    }

    pub fn remove_dir(&self, path: &str) -> Result<(), PluginError> {
        self.require_writable("remove", path)?;
        self.reserved.check_with_ancestors(path)?;
        let (dir, name) = self.parent_of(path)?;
        self.refuse_reserved_below(&dir, name, path)?;
        let meta = self.lstat(&dir, name, path)?;
        match meta {
            Some(m) if m.is_dir() => {}
            Some(m) if m.file_type().is_symlink() => return Err(symlink_denied(path)),
            Some(_) => return Err(PluginError::Invalid(format!("{path:?} is not a directory"))),
            None => return Err(PluginError::NotFound(format!("{path:?} does not exist"))),
        }
        dir.remove_dir(name).map_err(|e| self.fs_error("removing", path, e))
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<(), PluginError> {
        self.require_writable("rename", from)?;
        self.reserved.check_with_ancestors(from)?;
        self.reserved.check_with_ancestors(to)?;
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = self.parent_of(to)?;
        self.refuse_reserved_below(&from_dir, from_name, from)?;
        self.refuse_reserved_below(&to_dir, to_name, to)?;
        match self.lstat(&from_dir, from_name, from)? {
            None => return Err(PluginError::NotFound(format!("{from:?} does not exist"))),
            Some(m) if m.file_type().is_symlink() => return Err(symlink_denied(from)),
            Some(m) if special_kind(m.file_type()).is_some() => {
                return Err(not_a_regular_file(from, m.file_type()));
            }
            Some(_) => {}
        }
        if let Some(m) = self.lstat(&to_dir, to_name, to)?
            && m.file_type().is_symlink()
        {
            return Err(symlink_denied(to));
        }
        from_dir
            .rename(from_name, &to_dir, to_name)
            .map_err(|e| self.fs_error("renaming", &format!("{from} -> {to}"), e))?;
        sync_dir(&to_dir).map_err(|e| self.fs_error("renaming", to, e))?;
        sync_dir(&from_dir).map_err(|e| self.fs_error("renaming", from, e))
    }

    /// Entries of a directory, hiding in-flight temporary files and the
    /// host's reserved paths. `""` is the root.
    pub fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, PluginError> {
        let dir = if path.is_empty() {
            self.dir.try_clone().map_err(|e| self.fs_error("listing", path, e))?
        } else {
            self.open_dir(path)?
        };
        let fence = self.fence();
        let (dev, ino) = if fence.is_empty() { (0, 0) } else { self.dir_id(&dir, path)? };
        let filter = fence.holds_reserved((dev, ino));
        let mut out = Vec::new();
        for entry in dir.entries().map_err(|e| self.fs_error("listing", path, e))? {
            let entry = entry.map_err(|e| self.fs_error("listing", path, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(root = %self.path.display(), dir = path, "skipping a non-UTF-8 file name");
                continue;
            };
            if name.starts_with(TEMP_PREFIX) {
                self.remove_stale_temp(&dir, &name);
                continue;
            }
            if self.reserved.hides(path, &name) || path.is_empty() && !self.grants_entry(&name) {
                continue;
            }
            // A reserved entry under another name (a hard link): the directory
            // entry's inode, free to read; the parent of a reserved entry is
            // checked entry by entry (a mount point's entry shows the inode below it).
            if !fence.is_empty() && fence.hides((dev, std::os::unix::fs::DirEntryExt::ino(&entry)))
                || filter && self.lstat(&dir, &name, path)?.is_some_and(|m| fence.hides(id(&m)))
            {
                continue;
            }
            let kind = entry.file_type().map_err(|e| self.fs_error("listing", path, e))?;
            if special_kind(kind).is_some() {
                continue;
            }
            out.push(DirEntry { name, kind: entry_kind(kind) });
        }
        Ok(out)
    }

    /// Remove a temporary file a killed writer left behind, once it is old
    /// enough that no write can still be using it. Failures are logged only:
    /// the listing does not depend on them.
    fn remove_stale_temp(&self, dir: &Dir, name: &str) {
        if !self.writable {
            return;
        }
        let stale = dir
            .symlink_metadata(name)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.into_std().elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if stale {
            match dir.remove_file(name) {
                Ok(()) => tracing::info!(root = %self.path.display(), name, "removed a stale temporary file"),
                Err(e) => {
                    tracing::warn!(root = %self.path.display(), name, error = %e, "could not remove a stale temporary file")
                }
            }
        }
    }

    /// Metadata of an entry, not following a final symlink; `None` if absent.
    pub fn metadata(&self, path: &str) -> Result<Option<EntryMetadata>, PluginError> {
        let entry = match self.parent_and_entry(path, true) {
            Ok((_, _, entry)) => entry,
            Err(PluginError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(entry.map(|m| EntryMetadata {
            kind: entry_kind(m.file_type()),
            size: m.len(),
            modified_ns: m
                .modified()
                .ok()
                .and_then(|t| t.into_std().duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64),
            file_id: m.dev().rotate_left(32) ^ m.ino(),
        }))
    }

    /// Create a directory and its missing parents, each checked for symlinks.
    pub fn create_dir(&self, path: &str) -> Result<(), PluginError> {
        self.require_writable("create a directory", path)?;
        let components = self.guest_path(path)?;
        let fence = self.fence();
        let mut dir = self.dir.try_clone().map_err(|e| self.fs_error("creating", path, e))?;
        for component in components {
            match dir.create_dir_with(component, DirBuilder::new().mode(0o700)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(self.fs_error("creating", path, e)),
            }
            dir = dir.open_dir_nofollow(component).map_err(|e| self.fs_error("creating", path, e))?;
            if !fence.is_empty() {
                fence.check(self.dir_id(&dir, path)?, path)?;
            }
        }
        Ok(())
    }

    /// Refuse a lock file that exists and is a FIFO, socket or device (opening one could block).
    pub fn refuse_special(&self, path: &str) -> Result<(), PluginError> {
        match self.parent_and_entry(path, true)?.2 {
            Some(m) if special_kind(m.file_type()).is_some() => Err(not_a_regular_file(path, m.file_type())),
            _ => Ok(()),
        }
    }

    /// Take an exclusive flock on `path` (created 0600 if missing), waiting at
    /// most `wait`, and never past the call's deadline or its cancellation.
    pub fn lock(&self, path: &str, wait: Duration, call: &Waiter) -> Result<FsLock, PluginError> {
        self.require_writable("lock", path)?;
        let (dir, name) = self.parent_of(path)?;
        let file = self.locked_file(&dir, name, path, wait, Some(call))?;
        Ok(FsLock { _file: file })
    }

    /// Take, without waiting, the lock of `key` in the lock file at `path`:
    /// an exclusive open-file-description lock on one byte of the file,
    /// chosen by `key` (its low 63 bits). Many keys share one file, created
    /// (0600) once and kept, so taking and releasing a key creates and
    /// removes nothing; the lock is released when dropped, or when its
    /// holder dies. Two locks on one key conflict even within one process.
    pub fn lock_key(&self, path: &str, key: u64) -> Result<FsLock, PluginError> {
        self.require_writable("lock", path)?;
        let (dir, name) = self.parent_of(path)?;
        let file = self.lock_file(&dir, name, path)?;
        let byte = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: (key & i64::MAX as u64) as libc::off_t,
            l_len: 1,
            l_pid: 0,
        };
        // SAFETY: a valid descriptor and a valid `struct flock` for the call's duration.
        if unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_OFD_SETLK, &byte) } == 0 {
            return Ok(FsLock { _file: file });
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => {
                Err(PluginError::Busy(format!("{path:?}: this key is locked by another holder")))
            }
            _ => Err(self.fs_error("locking", path, error)),
        }
    }

    /// Open (creating, 0600, no-follow) `name` in `dir` and flock it, retrying
    /// for up to `wait`; a call's `Waiter` ends the wait on its deadline or cancellation.
    fn locked_file(
        &self,
        dir: &Dir,
        name: &str,
        path: &str,
        wait: Duration,
        call: Option<&Waiter>,
    ) -> Result<std::fs::File, PluginError> {
        let file = self.lock_file(dir, name, path)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => match call {
                    Some(call) => call.pause(LOCK_RETRY.min(wait.saturating_sub(started.elapsed())))?,
                    None => std::thread::sleep(LOCK_RETRY),
                },
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(PluginError::Busy(format!(
                        "{path:?} is locked by another holder; gave up after {} ms",
                        wait.as_millis()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(self.fs_error("locking", path, e)),
            }
        }
    }

    /// Open (creating, 0600, no-follow) the lock file `name` in `dir`.
    fn lock_file(&self, dir: &Dir, name: &str, path: &str) -> Result<std::fs::File, PluginError> {
        // Non-blocking, then checked: a FIFO or device swapped in after the
        // caller's type check can neither block the open nor be locked.
        let file = dir
            .open_with(
                name,
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .mode(0o600)
                    .follow(FollowSymlinks::No)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY),
            )
            .map_err(|e| self.fs_error("locking", path, e))?;
        let kind = file.metadata().map_err(|e| self.fs_error("locking", path, e))?.file_type();
        if !kind.is_file() {
            return Err(not_a_regular_file(path, kind));
        }
        Ok(file.into_std())
    }

    fn require_writable(&self, what: &str, path: &str) -> Result<(), PluginError> {
        if self.writable {
            return Ok(());
        }
        Err(PluginError::Denied(format!(
            "cannot {what} {path:?}: the root {} is granted read-only",
            self.path.display()
        )))
    }

    /// Open every directory above the last component without following
    /// symlinks; return that directory and the last component. Each opened
    /// directory, and the last component if it exists, must not be one of
    /// Warden's reserved entries by identity, whatever name reached it.
    fn parent_of<'p>(&self, path: &'p str) -> Result<(Dir, &'p str), PluginError> {
        self.parent_and_entry(path, false).map(|(dir, name, _)| (dir, name))
    }

    /// [`Self::parent_of`], and the entry's own metadata (not following a
    /// symlink), looked up once for the fence and the caller; with
    /// `entry` false it is looked up only when the fence needs it.
    fn parent_and_entry<'p>(
        &self,
        path: &'p str,
        entry: bool,
    ) -> Result<(Dir, &'p str, Option<Metadata>), PluginError> {
        let mut components = self.guest_path(path)?;
        let name = components.pop().expect("split returns at least one component");
        let fence = self.fence();
        let mut dir: Option<Dir> = None;
        for component in components {
            // The first level opens from the root itself: no copy of the root's handle.
            let parent = dir.as_ref().unwrap_or(&self.dir);
            let opened =
                parent.open_dir_nofollow(component).map_err(|e| self.fs_error("opening", path, e))?;
            if !fence.is_empty() {
                fence.check(self.dir_id(&opened, path)?, path)?;
            }
            dir = Some(opened);
        }
        let dir = match dir {
            Some(dir) => dir,
            None => self.dir.try_clone().map_err(|e| self.fs_error("opening", path, e))?,
        };
        let meta = if entry || !fence.is_empty() { self.lstat(&dir, name, path)? } else { None };
        if let Some(m) = meta.as_ref().filter(|_| !fence.is_empty()) {
            fence.check(id(m), path)?;
        }
        Ok((dir, name, meta))
    }

    /// The identity of an open directory.
    fn dir_id(&self, dir: &Dir, path: &str) -> Result<Id, PluginError> {
        dir.dir_metadata().map(|m| id(&m)).map_err(|e| self.fs_error("inspecting", path, e))
    }

    /// Refuse `path` (in `dir` as `name`) if it is a directory above one of
    /// Warden's reserved entries, by identity: moving or removing it would
    /// take the reserved entry along.
    fn refuse_reserved_below(&self, dir: &Dir, name: &str, path: &str) -> Result<(), PluginError> {
        let fence = self.fence();
        if !fence.is_empty()
            && let Some(m) = self.lstat(dir, name, path)?
        {
            fence.check_with_ancestors(id(&m), path)?;
        }
        Ok(())
    }

    /// A guest path checked lexically, against the granted entries and the
    /// reserved paths, split into components.
    fn guest_path<'p>(&self, path: &'p str) -> Result<Vec<&'p str>, PluginError> {
        let components = split(path)?;
        if !self.grants_entry(components[0]) {
            let granted = self.entries.as_deref().unwrap_or_default().join(", ");
            return Err(PluginError::Denied(format!(
                "{path:?} is not granted: of {} only {granted} may be reached; an operator can widen \
                 this with root-entries in the plugin's configuration",
                self.path.display()
            )));
        }
        self.reserved.check(path)?;
        Ok(components)
    }

    /// Whether the top-level entry `name` is granted (by exact name: a case
    /// variant of a granted name reaches only the granted entry, if anything).
    fn grants_entry(&self, name: &str) -> bool {
        self.entries.as_ref().is_none_or(|entries| entries.iter().any(|e| e == name))
    }

    fn open_dir(&self, path: &str) -> Result<Dir, PluginError> {
        let (dir, name) = self.parent_of(path)?;
        dir.open_dir_nofollow(name).map_err(|e| self.fs_error("opening", path, e))
    }

    fn lstat(&self, dir: &Dir, name: &str, path: &str) -> Result<Option<Metadata>, PluginError> {
        match dir.symlink_metadata(name) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fs_error("inspecting", path, e)),
        }
    }

    /// Map an I/O error to the WIT error variants. ELOOP / ENOTDIR from a
    /// no-follow open mean a symlink was in the way.
    fn fs_error(&self, action: &str, path: &str, e: std::io::Error) -> PluginError {
        let errno = e.raw_os_error();
        if errno == Some(rustix::io::Errno::LOOP.raw_os_error())
            || errno == Some(rustix::io::Errno::NOTDIR.raw_os_error()) && self.has_symlink(path)
        {
            return symlink_denied(path);
        }
        match e.kind() {
            ErrorKind::NotFound => PluginError::NotFound(format!("{action} {path:?}: it does not exist")),
            ErrorKind::PermissionDenied => {
                PluginError::Denied(format!("{action} {path:?} under {}: {e}", self.path.display()))
            }
            ErrorKind::NotADirectory => {
                PluginError::Invalid(format!("{action} {path:?}: a component is not a directory"))
            }
            _ => PluginError::Io(format!("{action} {path:?} under {}: {e}", self.path.display())),
        }
    }

    /// Whether any component of `path` is currently a symlink (for messages only).
    fn has_symlink(&self, path: &str) -> bool {
        let mut prefix = PathBuf::new();
        for component in path.split('/') {
            prefix.push(component);
            if self.dir.symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
                return true;
            }
        }
        false
    }
}

/// Check a guest-supplied relative path lexically and split it into components.
pub fn split(path: &str) -> Result<Vec<&str>, PluginError> {
    if path.is_empty() {
        return Err(PluginError::Denied("an empty path names nothing inside the root".into()));
    }
    if path.contains('\0') {
        return Err(PluginError::Denied(format!("{path:?} contains a NUL byte")));
    }
    if path.starts_with('/') {
        return Err(PluginError::Denied(format!(
            "{path:?} is absolute; paths are relative to the granted root"
        )));
    }
    let components: Vec<&str> = path.split('/').collect();
    for component in &components {
        match *component {
            "" => return Err(PluginError::Denied(format!("{path:?} has an empty component"))),
            "." | ".." => {
                return Err(PluginError::Denied(format!(
                    "{path:?} contains {component:?}; paths may not leave or re-enter directories"
                )));
            }
            _ => {}
        }
    }
    Ok(components)
}

fn write_and_sync(dir: &Dir, temp: &str, data: &[u8]) -> std::io::Result<()> {
    let mut file: File = dir.open_with(
        temp,
        OpenOptions::new().write(true).create_new(true).mode(0o600).follow(FollowSymlinks::No),
    )?;
    file.write_all(data)?;
    file.sync_all()
}

/// cap-std directory handles are `O_PATH` on Linux and cannot be fsynced; open `.` for that.
fn sync_dir(dir: &Dir) -> std::io::Result<()> {
    dir.open(".")?.sync_all()
}

fn symlink_denied(path: &str) -> PluginError {
    PluginError::Denied(format!(
        "{path:?} passes through a symbolic link; links are never followed inside a store root"
    ))
}

/// What a FIFO, socket or device is, for messages; `None` for files, directories and links.
fn special_kind(t: cap_std::fs::FileType) -> Option<&'static str> {
    use cap_std::fs::FileTypeExt as _;
    if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_char_device() {
        Some("a character device")
    } else {
        None
    }
}

/// Store roots serve regular files and directories only: a FIFO would block
/// the host, a device would run its driver.
/// Why one attempt to open a checked regular file did not succeed.
enum OpenRace {
    /// The entry was replaced between the check and the open.
    Replaced,
    Failed(PluginError),
}

impl From<PluginError> for OpenRace {
    fn from(error: PluginError) -> Self {
        OpenRace::Failed(error)
    }
}

fn not_a_regular_file(path: &str, t: cap_std::fs::FileType) -> PluginError {
    match special_kind(t) {
        Some(kind) => PluginError::Denied(format!(
            "{path:?} is {kind}; store roots serve only regular files and directories, so it is never opened"
        )),
        None if t.is_symlink() => symlink_denied(path),
        None => PluginError::Invalid(format!("{path:?} is not a regular file")),
    }
}

fn entry_kind(t: cap_std::fs::FileType) -> EntryKind {
    if t.is_symlink() {
        EntryKind::Symlink
    } else if t.is_dir() {
        EntryKind::Directory
    } else if t.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

/// Refuse an existing entry that is not a regular file: a symlink, a
/// directory, or a FIFO, socket or device.
fn refuse_symlink_or_dir(entry: Option<&Metadata>, path: &str) -> Result<(), PluginError> {
    match entry {
        Some(m) if m.file_type().is_symlink() => Err(symlink_denied(path)),
        Some(m) if m.is_dir() => {
            Err(PluginError::Invalid(format!("{path:?} is a directory where a file was expected")))
        }
        Some(m) if !m.is_file() => Err(not_a_regular_file(path, m.file_type())),
        _ => Ok(()),
    }
}

/// An entry's identity: (device, inode).
fn id(meta: &Metadata) -> Id {
    (meta.dev(), meta.ino())
}

fn io_error(action: &str, e: std::io::Error) -> PluginError {
    PluginError::Io(format!("{action}: {e}"))
}

mod wit {
    //! The `store-fs` and `store-fs-readonly` interfaces over the plugin's [`FsRoot`].

    use std::time::Duration;

    use wasmtime::component::{HasData, Resource, ResourceTable};

    use super::{FsLock, FsRoot};
    use crate::capabilities::{Who, host_time};
    use crate::contract::HostError;
    use crate::contract::bindings::agent::warden::plugin::store_fs_readonly;
    use crate::contract::bindings::storage::warden::plugin::store_fs::{self, Lock};
    use crate::contract::bindings::types;
    use crate::control::CallControl;
    use crate::types::{DirEntry, EntryMetadata, PluginError};

    /// What `store-fs` and `store-fs-readonly` need from a call: the granted
    /// root, the table that holds locks, and the call's control.
    pub struct StoreFsView<'a> {
        pub who: Who<'a>,
        /// The granted directory; `None` grants nothing.
        pub root: Option<&'a FsRoot>,
        /// Log every write, not only refusals.
        pub audit: bool,
        pub table: &'a mut ResourceTable,
        pub control: &'a mut CallControl,
    }

    /// Links `store-fs` or `store-fs-readonly` to a call's [`StoreFsView`].
    pub struct StoreFs;

    impl HasData for StoreFs {
        type Data<'a> = StoreFsView<'a>;
    }

    impl StoreFsView<'_> {
        fn with_root<R>(
            &mut self,
            operation: &str,
            target: &str,
            op: impl FnOnce(&FsRoot, &CallControl) -> Result<R, PluginError>,
        ) -> Result<R, HostError> {
            let (who, root) = (self.who, self.root);
            host_time(self.control, |control| {
                let result = match root {
                    Some(root) => op(root, control),
                    None => Err(PluginError::Denied(format!(
                        "plugin `{}` has no directory granted; set `root` under [plugins.{}] in the configuration",
                        who.plugin, who.role
                    ))),
                };
                result.map_err(|e| HostError::Plugin(who.refused(operation, target, e)))
            })
        }
    }

    impl store_fs::Host for StoreFsView<'_> {
        fn read(&mut self, path: String) -> Result<Vec<u8>, HostError> {
            self.with_root("read", &path, |root, _| root.read(&path))
        }

        fn read_range(&mut self, path: String, offset: u64, length: u32) -> Result<Vec<u8>, HostError> {
            self.with_root("read-range", &path, |root, _| root.read_range(&path, offset, length))
        }

        fn write_atomic(&mut self, path: String, data: Vec<u8>) -> Result<(), HostError> {
            let audit = self.audit;
            self.with_root("write", &path, |root, _| {
                root.write_atomic(&path, &data)?;
                if audit {
                    tracing::info!(root = %root.path().display(), path, bytes = data.len(), "audit: write");
                }
                Ok(())
            })
        }

        fn append(&mut self, path: String, data: Vec<u8>) -> Result<u64, HostError> {
            let audit = self.audit;
            self.with_root("append", &path, |root, _| {
                let length = root.append(&path, &data)?;
                if audit {
                    tracing::info!(root = %root.path().display(), path, bytes = data.len(), "audit: append");
                }
                Ok(length)
            })
        }

        fn append_durable(&mut self, path: String, data: Vec<u8>) -> Result<u64, HostError> {
            let audit = self.audit;
            self.with_root("append-durable", &path, |root, _| {
                let length = root.append_durable(&path, &data)?;
                if audit {
                    tracing::info!(root = %root.path().display(), path, bytes = data.len(),
                        "audit: durable append");
                }
                Ok(length)
            })
        }

        fn remove_file(&mut self, path: String) -> Result<(), HostError> {
            self.with_root("remove-file", &path, |root, _| root.remove_file(&path))
        }

        fn remove_dir(&mut self, path: String) -> Result<(), HostError> {
            self.with_root("remove-dir", &path, |root, _| root.remove_dir(&path))
        }

        fn rename(&mut self, from: String, to: String) -> Result<(), HostError> {
            let target = format!("{from} -> {to}");
            self.with_root("rename", &target, |root, _| root.rename(&from, &to))
        }

        fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, HostError> {
            self.with_root("list-dir", &path, |root, _| root.list_dir(&path))
        }

        fn metadata(&mut self, path: String) -> Result<Option<EntryMetadata>, HostError> {
            self.with_root("metadata", &path, |root, _| root.metadata(&path))
        }

        fn create_dir(&mut self, path: String) -> Result<(), HostError> {
            self.with_root("create-dir", &path, |root, _| root.create_dir(&path))
        }

        fn acquire_lock(&mut self, path: String, wait_ms: u32) -> Result<Resource<Lock>, HostError> {
            let wait = Duration::from_millis(wait_ms.into());
            let lock = self.with_root("lock", &path, |root, control| {
                root.refuse_special(&path)?;
                root.lock(&path, wait, control.waiter())
            })?;
            let held =
                self.table.push(lock).map_err(|e| PluginError::Io(format!("holding the lock: {e}")))?;
            Ok(Resource::new_own(held.rep()))
        }
    }

    impl store_fs::HostLock for StoreFsView<'_> {
        fn drop(&mut self, lock: Resource<Lock>) -> wasmtime::Result<()> {
            self.table.delete(Resource::<FsLock>::new_own(lock.rep()))?;
            Ok(())
        }
    }

    impl types::Host for StoreFsView<'_> {
        fn convert_plugin_error(&mut self, error: HostError) -> wasmtime::Result<PluginError> {
            error.into_plugin_error()
        }
    }

    impl store_fs_readonly::Host for StoreFsView<'_> {
        fn read(&mut self, path: String) -> Result<Vec<u8>, HostError> {
            self.with_root("read", &path, |root, _| root.read(&path))
        }

        fn read_range(&mut self, path: String, offset: u64, length: u32) -> Result<Vec<u8>, HostError> {
            self.with_root("read-range", &path, |root, _| root.read_range(&path, offset, length))
        }

        fn list_dir(&mut self, path: String) -> Result<Vec<DirEntry>, HostError> {
            self.with_root("list-dir", &path, |root, _| root.list_dir(&path))
        }

        fn metadata(&mut self, path: String) -> Result<Option<EntryMetadata>, HostError> {
            self.with_root("metadata", &path, |root, _| root.metadata(&path))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_keyed_lock_has_one_holder_at_a_time_and_creates_one_file_for_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = FsRoot::open(dir.path(), true, 0).unwrap();
        let (holders, most, taken) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..3000 {
                        let Ok(lock) = root.lock_key("sessions.lock", 0xdead_beef_0000_0001) else {
                            continue;
                        };
                        let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        taken.fetch_add(1, Ordering::SeqCst);
                        std::thread::yield_now();
                        holders.fetch_sub(1, Ordering::SeqCst);
                        drop(lock);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
        assert!(taken.load(Ordering::SeqCst) > 0);
        let held = root.lock_key("sessions.lock", 1).unwrap();
        assert!(matches!(root.lock_key("sessions.lock", 1), Err(PluginError::Busy(_))), "a held key is busy");
        let other = root.lock_key("sessions.lock", 2).expect("another key is free");
        let highest = root.lock_key("sessions.lock", u64::MAX).expect("every 64-bit key has its byte");
        drop((held, other, highest));
        root.lock_key("sessions.lock", 1).expect("a released key is free again");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["sessions.lock"], "one file for every key");
    }

    #[test]
    fn a_keyed_lock_is_held_against_other_processes_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let root = FsRoot::open(dir.path(), true, 0).unwrap();
        let held = root.lock_key("sessions.lock", 42).unwrap();
        // flock(1) takes whole-file locks, which do not see byte locks: ask the kernel directly.
        let probe = |key: i64| {
            let file =
                std::fs::OpenOptions::new().write(true).open(dir.path().join("sessions.lock")).unwrap();
            let mut byte = libc::flock {
                l_type: libc::F_WRLCK as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                l_start: key,
                l_len: 1,
                l_pid: 0,
            };
            // SAFETY: a valid descriptor and struct.
            assert_eq!(
                unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_OFD_GETLK, &mut byte) },
                0
            );
            byte.l_type != libc::F_UNLCK as libc::c_short
        };
        assert!(probe(42), "key 42 is locked for everyone else");
        assert!(!probe(43));
        drop(held);
        assert!(!probe(42), "released on drop");
    }
}
