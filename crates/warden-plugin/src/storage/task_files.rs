//! A ready-made `task-store` over the plugin's granted directory: one file
//! per task in `tasks.d/`, written atomically. A storage plugin without a
//! better place for tasks exports it with
//! `warden_plugin::storage::task_files::task_store_in_files!(Plugin);`, or
//! calls [`save`], [`load`] and [`purge`] from its own `task_store::Guest`.

use serde::{Deserialize, Serialize};

use super::task_store::TaskRecord;
use super::{EntryKind, PluginError, store_fs};

/// The directory of task files, inside the plugin's root.
pub const DIR: &str = "tasks.d";
const SUFFIX: &str = ".task.json";
/// Longest task id accepted (the contract's bound).
const MAX_ID_BYTES: usize = 128;
/// Largest record accepted (the contract's bound on `body`, and some room).
const MAX_RECORD_BYTES: usize = 16 << 20;

#[derive(Serialize, Deserialize)]
struct File {
    id: String,
    expires_ms: u64,
    body: String,
}

/// The file of task `id`, refusing an id outside the contract's alphabet
/// (so an id is never a path of its own).
fn path(id: &str) -> Result<String, PluginError> {
    let well_formed = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !well_formed {
        return Err(PluginError::Invalid(format!(
            "task id {:?} is not 1 to {MAX_ID_BYTES} ASCII letters, digits and `-`",
            id.chars().take(40).collect::<String>()
        )));
    }
    Ok(format!("{DIR}/{id}{SUFFIX}"))
}

/// Store `task`, replacing the record with its id; durable on return.
pub fn save(task: TaskRecord) -> Result<(), PluginError> {
    let path = path(&task.id)?;
    if task.body.len() > MAX_RECORD_BYTES {
        return Err(PluginError::Invalid(format!(
            "task {:?} is {} bytes; a task record holds at most {MAX_RECORD_BYTES}",
            task.id,
            task.body.len()
        )));
    }
    let file = File { id: task.id, expires_ms: task.expires_ms, body: task.body };
    let bytes = serde_json::to_vec(&file).map_err(|e| PluginError::Io(format!("encoding a task: {e}")))?;
    store_fs::create_dir(DIR)?;
    store_fs::write_atomic(&path, &bytes)
}

/// The live record `id`; `not-found` if absent or expired at `now_ms`.
pub fn load(id: &str, now_ms: u64) -> Result<TaskRecord, PluginError> {
    let missing = || PluginError::NotFound(format!("no task {id:?}"));
    let file = match read(&path(id)?)? {
        Some(file) => file,
        None => return Err(missing()),
    };
    if file.id != id || file.expires_ms <= now_ms {
        return Err(missing());
    }
    Ok(TaskRecord { id: file.id, expires_ms: file.expires_ms, body: file.body })
}

/// Remove the records expired at `now_ms` (and unreadable ones); returns how many went.
pub fn purge(now_ms: u64) -> Result<u32, PluginError> {
    let entries = match store_fs::list_dir(DIR) {
        Ok(entries) => entries,
        Err(PluginError::NotFound(_)) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.iter().filter(|e| e.kind == EntryKind::File && e.name.ends_with(SUFFIX)) {
        let path = format!("{DIR}/{}", entry.name);
        let dead = match read(&path) {
            Ok(Some(file)) => file.expires_ms <= now_ms,
            Ok(None) => false,
            Err(PluginError::Corrupt(_)) => true,
            Err(e) => return Err(e),
        };
        if dead {
            match store_fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(PluginError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

fn read(path: &str) -> Result<Option<File>, PluginError> {
    match store_fs::read(path) {
        Ok(bytes) if bytes.len() > MAX_RECORD_BYTES + 4096 => {
            Err(PluginError::Corrupt(format!("{path} is larger than any task record")))
        }
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PluginError::Corrupt(format!("{path} is not a task record: {e}"))),
        Err(PluginError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `task_store_in_files!(Plugin)`: `Plugin`'s `task-store` is this module.
#[doc(inline)]
pub use crate::__task_store_in_files as task_store_in_files;

#[doc(hidden)]
#[macro_export]
macro_rules! __task_store_in_files {
    ($ty:ty) => {
        impl $crate::storage::task_store::Guest for $ty {
            fn save_task(
                task: $crate::storage::task_store::TaskRecord,
            ) -> Result<(), $crate::storage::PluginError> {
                $crate::storage::task_files::save(task)
            }

            fn load_task(
                id: String,
                now_ms: u64,
            ) -> Result<$crate::storage::task_store::TaskRecord, $crate::storage::PluginError> {
                $crate::storage::task_files::load(&id, now_ms)
            }

            fn purge_tasks(now_ms: u64) -> Result<u32, $crate::storage::PluginError> {
                $crate::storage::task_files::purge(now_ms)
            }
        }
    };
}
