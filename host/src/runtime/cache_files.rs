//! The files of the compiled-component cache, and whether to trust them. The
//! cache directory is created 0700 and must belong to Warden's user and be
//! writable by no one else; entries and the per-install secret are 0600
//! files of that user. The secret (32 random bytes) keys the MAC that binds
//! every entry to its name. Entries of other engines and entries unused for
//! [`UNUSED_FOR`] are pruned at start-up.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The file holding the per-install secret, inside the cache directory.
const SECRET_FILE: &str = "cache.key";
const SECRET_LEN: usize = 32;

/// An entry no start-up has used for this long belongs to a plugin that is
/// gone (or was updated) and is removed.
pub const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// A hit refreshes an entry's modification time once it is this old.
pub const REFRESH_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A temporary file this old was left by a writer that died.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Create `dir` (0700) if missing and check that only this user can write it.
pub fn trusted_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("creating the component cache {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("inspecting the component cache {}: {e}", dir.display()))?;
    untrusted(&meta).map_or(Ok(()), |why| {
        anyhow::bail!(
            "the component cache {} {why}; whoever can write there could plant compiled code that Warden \
             would run. Make it yours with mode 0700 (chown, chmod 700) or set cache-dir to a directory of your own",
            dir.display()
        )
    })
}

/// Why a file or directory cannot be trusted: another owner, or group/world write access.
pub fn untrusted(meta: &Metadata) -> Option<String> {
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Some(format!("belongs to uid {}, not Warden's uid {me}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!("is writable by group or others (mode {:o})", meta.mode() & 0o7777));
    }
    None
}

/// Open an entry without following a symlink, if it is a regular file this user
/// alone may write; `Ok(None)` if it does not exist.
pub fn open_trusted(path: &Path) -> anyhow::Result<Option<File>> {
    let file =
        match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => anyhow::bail!("cannot open it: {e}"),
        };
    let meta = file.metadata()?;
    if !meta.is_file() {
        anyhow::bail!("it is not a regular file");
    }
    if let Some(why) = untrusted(&meta) {
        anyhow::bail!("it {why}");
    }
    Ok(Some(file))
}

/// Write `parts` to a new 0600 temporary file in `dir` and rename it to `name`.
pub fn write_atomic(dir: &Path, name: &str, parts: &[&[u8]]) -> std::io::Result<()> {
    let temp = dir.join(format!(".tmp.{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(name))
    })();
    if result.is_err()
        && let Err(e) = std::fs::remove_file(&temp)
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(temp = %temp.display(), error = %e, "could not remove a cache temp file");
    }
    result
}

/// The per-install secret, created (32 random bytes, 0600) on first use. Two
/// processes starting at once agree on one: it is linked into place, never overwritten.
pub fn secret(dir: &Path) -> anyhow::Result<[u8; SECRET_LEN]> {
    let path = dir.join(SECRET_FILE);
    for _ in 0..2 {
        match open_trusted(&path) {
            Ok(Some(mut file)) => {
                let mode = file.metadata()?.mode();
                if mode & 0o077 != 0 {
                    anyhow::bail!(
                        "the component cache's key {} is readable by group or others (mode {:o}); \
                         chmod 600 it, or remove it and Warden makes a new one",
                        path.display(),
                        mode & 0o7777
                    );
                }
                let mut secret = [0; SECRET_LEN];
                let mut rest = Vec::new();
                file.read_exact(&mut secret)
                    .and_then(|()| file.read_to_end(&mut rest))
                    .ok()
                    .filter(|_| rest.is_empty())
                    .ok_or_else(|| anyhow::anyhow!("{} is not a {SECRET_LEN}-byte key", path.display()))
                    .map_err(|e| anyhow::anyhow!("{e}; remove it and Warden will make a new one"))?;
                return Ok(secret);
            }
            Ok(None) => create_secret(dir, &path)?,
            Err(e) => anyhow::bail!(
                "the component cache's key {}: {e}; remove it (Warden makes a new one) or fix its owner and mode (0600)",
                path.display()
            ),
        }
    }
    anyhow::bail!("the component cache's key {} vanished while it was created", path.display())
}

fn create_secret(dir: &Path, path: &Path) -> anyhow::Result<()> {
    let mut secret = [0; SECRET_LEN];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no random bytes for the cache key: {e}"))?;
    let temp = dir.join(format!(".tmp.{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(&secret)?;
        file.sync_all()?;
        match std::fs::hard_link(&temp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            // No hard links (vfat, exFAT): replace. Losing a start-up race then
            // only costs recompiling the entries written under the other key.
            Err(_) => std::fs::rename(&temp, path),
        }
    })();
    let _ = std::fs::remove_file(&temp);
    result.map_err(|e| anyhow::anyhow!("creating the component cache's key {}: {e}", path.display()))
}

/// Remove entries not named `{current}-….cwasm` (other engines, the old
/// layout), entries unused for [`UNUSED_FOR`], and stale temporary files.
/// Failures are logged: a cache that cannot be pruned still works.
pub fn prune(dir: &Path, current_engine: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return removed };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
        let remove = if name.starts_with(".tmp.") {
            age > STALE_TEMP
        } else if let Some(stem) = name.strip_suffix(".cwasm") {
            stem.split_once('-').is_none_or(|(engine, _)| engine != current_engine) || age > UNUSED_FOR
        } else {
            false
        };
        if remove {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed.push(entry.path()),
                Err(e) => {
                    tracing::warn!(entry = %entry.path().display(), error = %e, "could not prune a cache entry")
                }
            }
        }
    }
    if !removed.is_empty() {
        tracing::info!(removed = removed.len(), cache = %dir.display(), "pruned old compiled components");
    }
    removed
}
