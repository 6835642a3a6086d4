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

#[derive(Default)]
pub struct TurnLocks {
    local: Option<FsRoot>,
    shared: Option<Arc<Database>>,
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
        Self { local, shared }
    }

    /// Whether processes on other hosts are kept out too.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Take the lock of the session stored as `id` for one turn, or say it is busy.
    pub fn lock_turn(&self, id: &str, cancel: &CancelFlag) -> Result<HeldLock, NotLocked> {
        self.lock(SESSIONS_FILE, HostLockKind::Turn, id, cancel)
    }

    /// Take the lock that says task `id` runs in this process.
    pub fn lock_task(&self, id: &str) -> Result<HeldLock, NotLocked> {
        self.lock(TASKS_FILE, HostLockKind::Task, id, &CancelFlag::new())
    }

    /// Whether a process (here or on another host) holds task `id`'s lock;
    /// the error when that cannot be told (the database unreachable).
    pub fn task_runs_elsewhere(&self, id: &str) -> Result<bool, String> {
        match self.lock_task(id) {
            Ok(_) => Ok(false),
            Err(NotLocked::Busy) => Ok(true),
            Err(NotLocked::Failed(why)) => Err(why),
        }
    }

    fn lock(
        &self,
        file: &str,
        kind: HostLockKind,
        id: &str,
        cancel: &CancelFlag,
    ) -> Result<HeldLock, NotLocked> {
        let local = match &self.local {
            Some(dir) => Some(dir.lock_key(file, local_key(id)).map_err(|e| match e {
                PluginError::Busy(_) => NotLocked::Busy,
                other => NotLocked::Failed(crate::runtime::loaded::describe(&other)),
            })?),
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
