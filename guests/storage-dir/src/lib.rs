//! Warden's default storage backend: one file per session in `sessions.d/`,
//! a log of the session's JSON forms whose newest whole record is the session
//! ([`file`]): a save appends with one durable write. Saves take one of 64
//! striped `flock` locks (under `locks/`) for the read-compare-write of a
//! revision, so processes sharing a store serialise per session and a killed
//! holder never blocks anyone. Nothing is cached between calls, so a process
//! never serves a session older than what another process acknowledged.
//! Lookups by thread, listings and counts go through [`index`], checked
//! against the session files.

store_codec::wit_conversions!(warden_plugin::storage);

mod catalog;
mod file;
mod index;
mod migrate;
mod tasks;

pub(crate) use file::{read_session, read_summary};
use store_codec::key;
use warden_plugin::storage::log::{Level, log};
use warden_plugin::storage::{
    EntryKind, Guest, MigrateOptions, MigrateReport, PluginError, Session, SessionSummary, store_fs,
};

pub(crate) const SESSIONS: &str = "sessions.d";
const LOCKS: &str = "locks";
const LOCK_STRIPES: u64 = 64;
pub(crate) const LOCK_WAIT_MS: u32 = 10_000;

struct Store;

impl Guest for Store {
    fn load(id: String) -> Result<Session, PluginError> {
        let name = file_name(&id)?;
        match read_session(&name)? {
            Some(session) if session.key == id => wit_convert::to_wit(session),
            Some(_) => Err(PluginError::NotFound(format!("no session {id:?}"))),
            None => Err(PluginError::NotFound(format!("no session {id:?}"))),
        }
    }

    fn save(session: Session, expected_revision: Option<u64>) -> Result<u64, PluginError> {
        let name = file_name(&session.id)?;
        let _lock = lock_for(&name)?;
        let stored = match file::read_stored_summary(&name) {
            Ok(found) => found,
            Err(PluginError::Corrupt(message)) => {
                log(Level::Warn, &format!("overwriting a quarantined session: {message}"));
                None
            }
            Err(e) => return Err(e),
        };
        let current = stored.as_ref().map_or(0, |(summary, _)| summary.revision);
        if let Some(expected) = expected_revision
            && expected != current
        {
            return Err(PluginError::Conflict(format!(
                "session {:?} is at revision {current}, not {expected}: another writer saved it first; reload and retry",
                session.id
            )));
        }
        let mut new = wit_convert::from_wit(session)?;
        new.revision = current + 1;
        let old = stored
            .as_ref()
            .map(|(summary, _)| (summary.agent_thread_id.as_deref(), summary.last_accessed_ms));
        index::before_save(&name, old, new.agent_thread_id.as_deref(), new.last_accessed_ms)?;
        if stored.is_none() {
            // A session already on disk has its directory.
            store_fs::create_dir(SESSIONS)?;
        }
        file::write_session(&name, &new, stored.as_ref().and_then(|(_, log_length)| *log_length))?;
        if stored.is_none() {
            after_change(index::counted(1));
        }
        Ok(new.revision)
    }

    fn delete(id: String) -> Result<bool, PluginError> {
        let name = file_name(&id)?;
        let _lock = lock_for(&name)?;
        let last_used = match read_summary(&path(&name))? {
            Some(Ok(summary)) => Some(summary.last_accessed_ms),
            _ => None,
        };
        match store_fs::remove_file(&path(&name)) {
            Ok(()) => {
                after_change(match last_used {
                    Some(ms) => index::deleted(&name, ms),
                    None => index::counted(-1),
                });
                Ok(true)
            }
            Err(PluginError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list() -> Result<Vec<SessionSummary>, PluginError> {
        let entries = match store_fs::list_dir(SESSIONS) {
            Ok(entries) => entries,
            Err(PluginError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut summaries = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.kind != EntryKind::File || key::decode(&entry.name).is_none() {
                continue;
            }
            match read_summary(&path(&entry.name)) {
                Ok(Some(Ok(view))) => summaries.push(wit_convert::summary(view)),
                Ok(Some(Err(message))) => log(Level::Warn, &format!("skipping {}: {message}", entry.name)),
                Ok(None) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(summaries)
    }

    fn find_by_thread(thread_id: String) -> Result<Option<Session>, PluginError> {
        let Some(key) = index::session_for_thread(&thread_id)? else { return Ok(None) };
        match Self::load(key) {
            Ok(session) if session.agent_thread_id.as_deref() == Some(&thread_id) => Ok(Some(session)),
            // Changed or removed since the index was read.
            Ok(_) | Err(PluginError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn migrate(options: MigrateOptions) -> Result<MigrateReport, PluginError> {
        migrate::run(options)
    }
}

/// The session file changed, so the call succeeded: an index update that
/// failed after it is logged (the count is off until `reindex`), never
/// reported as a failed save or delete, which a caller would retry.
fn after_change(update: Result<(), PluginError>) {
    if let Err(e) = update {
        log(
            Level::Warn,
            &format!(
                "the session changed but its index was not updated ({e:?}); `warden sessions reindex` repairs it"
            ),
        );
    }
}

pub(crate) fn file_name(id: &str) -> Result<String, PluginError> {
    key::file_name(id).map_err(PluginError::Invalid)
}

pub(crate) fn path(name: &str) -> String {
    format!("{SESSIONS}/{name}")
}

/// One of the striped lock files, chosen by a stable hash of the file name.
pub(crate) fn lock_for(name: &str) -> Result<store_fs::Lock, PluginError> {
    let stripe =
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
            % LOCK_STRIPES;
    lock(&format!("{stripe:02}"), LOCK_WAIT_MS)
}

/// Every striped lock, in order (as no save takes two, no deadlock): no
/// save runs while they are held. Each is waited for at most `wait_ms`.
pub(crate) fn lock_every_stripe(wait_ms: u32) -> Result<Vec<store_fs::Lock>, PluginError> {
    (0..LOCK_STRIPES).map(|stripe| lock(&format!("{stripe:02}"), wait_ms)).collect()
}

/// Take the lock file `locks/<name>`, creating `locks/` when it is missing.
pub(crate) fn lock(name: &str, wait_ms: u32) -> Result<store_fs::Lock, PluginError> {
    let path = format!("{LOCKS}/{name}");
    match store_fs::acquire_lock(&path, wait_ms) {
        Err(PluginError::NotFound(_)) => {
            store_fs::create_dir(LOCKS)?;
            store_fs::acquire_lock(&path, wait_ms)
        }
        other => other,
    }
}

warden_plugin::storage::export!(Store, manifest = "warden.toml");
