//! "One turn per session" and "this task runs here" across processes. On
//! one host a lock on one byte, chosen by a hash of the id, of a lock file
//! in the turn-lock directory (`sessions.lock`, `tasks.lock`): an
//! open-file-description lock, released when its holder dies, and nothing
//! created or removed per turn; when the store is a database shared by several
//! hosts, also a PostgreSQL advisory lock on a connection of its own, which
//! the server releases when the holder's connection dies (a SIGKILLed
//! Warden included).

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::capabilities::sql::locks::{AdvisoryLock, HostLockKind, try_host_lock};
use crate::capabilities::sql::{Database, describe};
use crate::capabilities::store_fs::{FsLock, FsRoot};
use crate::control::{CancelFlag, Waiter};
use crate::types::PluginError;

/// The lock files in the turn-lock directory.
const SESSIONS_FILE: &str = "sessions.lock";
const TASKS_FILE: &str = "tasks.lock";

/// The key of `id` in a lock file: 63 bits of its SHA-256 (two ids share a
/// byte with odds of about 2^-63, and a turn of one would then find the other busy).
fn local_key(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes"))
}

/// How long taking a lock on the database may take (a connection, one statement).
const DATABASE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How long a local lock found held is tried again before it is called busy.
/// A process Warden starts gets a copy of every descriptor Warden has open
/// (a clone without `CLONE_FILES`), which it closes in its first system
/// calls; until then the copy of a lock file's descriptor keeps its lock
/// held, even if Warden has just let go of it.
const SETTLE: Duration = Duration::from_millis(250);
/// How often a held local lock is tried again within [`SETTLE`].
const SETTLE_STEP: Duration = Duration::from_millis(2);

pub struct TurnLocks {
    local: Option<FsRoot>,
    shared: Option<Arc<Database>>,
    settle: Duration,
}

impl Default for TurnLocks {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// A held lock; dropping it releases it everywhere.
pub struct HeldLock {
    _local: Option<FsLock>,
    _shared: Option<AdvisoryLock>,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum NotLocked {
    /// Another process (here, or on another host) holds it.
    Busy,
    /// The lock could not be asked for (the directory, the database).
    Failed(String),
    /// The call was cancelled while the lock was tried again.
    Cancelled,
}

impl HeldLock {
    /// Whether the lock still holds everywhere it was taken.
    pub fn is_intact(&self) -> bool {
        self._shared.as_ref().is_none_or(AdvisoryLock::is_intact)
    }
}

impl TurnLocks {
    /// `local`: the turn-lock directory; `shared`: the store's database, when it has one.
    pub fn new(local: Option<FsRoot>, shared: Option<Arc<Database>>) -> Self {
        Self { local, shared, settle: SETTLE }
    }

    /// The same, trying a held local lock again for `settle` instead of [`SETTLE`].
    pub fn with_settle(self, settle: Duration) -> Self {
        Self { settle, ..self }
    }

    /// Whether processes on other hosts are kept out too.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Take the lock of the session stored as `id` for one turn, or say it is busy.
    pub fn lock_turn(&self, id: &str, cancel: &CancelFlag) -> Result<HeldLock, NotLocked> {
        self.lock(SESSIONS_FILE, HostLockKind::Turn, id, self.settle, cancel)
    }

    /// Take the lock that says task `id` runs in this process.
    pub fn lock_task(&self, id: &str) -> Result<HeldLock, NotLocked> {
        self.lock(TASKS_FILE, HostLockKind::Task, id, self.settle, &CancelFlag::new())
    }

    /// Whether a process (here or on another host) holds task `id`'s lock;
    /// the error when that cannot be told (the database unreachable). Asked
    /// once: a lock held for a moment only says the task runs, which the next look corrects.
    pub fn task_runs_elsewhere(&self, id: &str) -> Result<bool, String> {
        match self.lock(TASKS_FILE, HostLockKind::Task, id, Duration::ZERO, &CancelFlag::new()) {
            Ok(_) => Ok(false),
            // Nothing cancels this one (its flag is its own); a held lock says "runs".
            Err(NotLocked::Busy | NotLocked::Cancelled) => Ok(true),
            Err(NotLocked::Failed(why)) => Err(why),
        }
    }

    fn lock(
        &self,
        file: &str,
        kind: HostLockKind,
        id: &str,
        settle: Duration,
        cancel: &CancelFlag,
    ) -> Result<HeldLock, NotLocked> {
        let local = match &self.local {
            Some(dir) => {
                Some(lock_local(dir, file, local_key(id), &Waiter::new(Some(settle), cancel.clone()))?)
            }
            None => None,
        };
        let shared = match &self.shared {
            Some(database) => {
                let waiter = Waiter::new(Some(DATABASE_LOCK_WAIT), cancel.clone());
                match try_host_lock(database, kind, id, &waiter) {
                    Ok(Some(lock)) => Some(lock),
                    Ok(None) => return Err(NotLocked::Busy),
                    Err(e) => {
                        return Err(NotLocked::Failed(format!(
                            "the database {}: {}",
                            database.target,
                            describe(&e)
                        )));
                    }
                }
            }
            None => None,
        };
        Ok(HeldLock { _local: local, _shared: shared })
    }
}

/// Lock `key` of `file` in `dir`, trying again while it is held until
/// `settle` ends (or the call is cancelled).
fn lock_local(dir: &FsRoot, file: &str, key: u64, settle: &Waiter) -> Result<FsLock, NotLocked> {
    loop {
        match dir.lock_key(file, key) {
            Ok(lock) => return Ok(lock),
            Err(PluginError::Busy(_)) if settle.pause(SETTLE_STEP).is_ok() => {}
            Err(PluginError::Busy(_)) if settle.cancel_flag().is_cancelled() => {
                return Err(NotLocked::Cancelled);
            }
            Err(PluginError::Busy(_)) => return Err(NotLocked::Busy),
            Err(other) => return Err(NotLocked::Failed(crate::runtime::loaded::describe(&other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks_in(dir: &tempfile::TempDir, settle: Duration) -> (TurnLocks, FsRoot) {
        let locks =
            TurnLocks::new(Some(FsRoot::open(dir.path(), true, 0).unwrap()), None).with_settle(settle);
        (locks, FsRoot::open(dir.path(), true, 0).unwrap())
    }

    #[test]
    fn a_turn_lock_let_go_of_within_the_settle_time_is_taken_not_called_busy() {
        let dir = tempfile::tempdir().unwrap();
        let (locks, other) = locks_in(&dir, Duration::from_secs(30));
        // Another holder of the same byte (as a started process's copy of the descriptor is) that lets go soon.
        let held = other.lock_key(SESSIONS_FILE, local_key("s1")).unwrap();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                drop(held);
            });
            assert!(locks.lock_turn("s1", &CancelFlag::new()).is_ok());
        });
    }

    #[test]
    fn a_turn_lock_held_past_the_settle_time_is_busy_and_a_cancel_ends_the_wait_as_a_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let (locks, other) = locks_in(&dir, Duration::from_millis(20));
        let _held = other.lock_key(SESSIONS_FILE, local_key("s1")).unwrap();
        assert!(matches!(locks.lock_turn("s1", &CancelFlag::new()), Err(NotLocked::Busy)));
        assert!(locks.lock_turn("s2", &CancelFlag::new()).is_ok(), "another session's lock is free");

        let patient = locks.with_settle(Duration::from_secs(30));
        let cancel = CancelFlag::new();
        cancel.cancel();
        assert!(matches!(patient.lock_turn("s1", &cancel), Err(NotLocked::Cancelled)));
    }

    #[test]
    fn whether_a_task_runs_elsewhere_is_asked_once() {
        let dir = tempfile::tempdir().unwrap();
        let (locks, other) = locks_in(&dir, Duration::from_secs(30));
        let held = other.lock_key(TASKS_FILE, local_key("t1")).unwrap();
        assert_eq!(locks.task_runs_elsewhere("t1"), Ok(true));
        drop(held);
        assert_eq!(locks.task_runs_elsewhere("t1"), Ok(false));
    }
}
