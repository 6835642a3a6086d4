//! The `task-store` export: one row of `tasks` per record, its body stored
//! as the host wrote it. Ids and sizes are checked as the SDK's `task_files`
//! checks them; times past what a bigint holds are kept as its largest
//! value, which is as far in the future for every purpose.

use warden_plugin::storage::PluginError;
use warden_plugin::storage::sql::Value;
use warden_plugin::storage::task_store::{Guest, TaskRecord};

use crate::Store;
use crate::db;
use crate::error::run;

/// Longest task id accepted (the contract's bound).
const MAX_ID_BYTES: usize = 128;
/// Largest body accepted (the contract's bound).
const MAX_BODY_BYTES: usize = 16 << 20;

const SAVE: &str = "insert into tasks (id, expires_ms, body) values ($1, $2, $3) \
    on conflict (id) do update set expires_ms = excluded.expires_ms, body = excluded.body";
const LOAD: &str = "select expires_ms, body from tasks where id = $1 and expires_ms > $2";
const PURGE: &str = "delete from tasks where expires_ms <= $1";

impl Guest for Store {
    fn save_task(task: TaskRecord) -> Result<(), PluginError> {
        check_id(&task.id)?;
        if task.body.len() > MAX_BODY_BYTES {
            return Err(PluginError::Invalid(format!(
                "task {:?} is {} bytes; a task record holds at most {MAX_BODY_BYTES}",
                task.id,
                task.body.len()
            )));
        }
        if !db::storable(&task.body) {
            return Err(PluginError::Invalid(format!(
                "task {:?} contains NUL, which PostgreSQL text cannot hold",
                task.id
            )));
        }
        let params = [Value::Text(task.id), time(task.expires_ms), Value::Text(task.body)];
        run(|| db::write(SAVE, &params)).map(drop)
    }

    fn load_task(id: String, now_ms: u64) -> Result<TaskRecord, PluginError> {
        check_id(&id)?;
        let params = [Value::Text(id.clone()), time(now_ms)];
        let Some(mut cells) = run(|| db::first_row(LOAD, &params))? else {
            return Err(PluginError::NotFound(format!("no task {id:?}")));
        };
        let corrupt = |problem: String| PluginError::Corrupt(format!("task {id:?} is unreadable: {problem}"));
        let expires_ms = cells.unsigned("expires_ms").map_err(corrupt)?;
        let body = cells.text("body").map_err(corrupt)?;
        Ok(TaskRecord { id, expires_ms, body })
    }

    fn purge_tasks(now_ms: u64) -> Result<u32, PluginError> {
        let params = [time(now_ms)];
        let removed = run(|| db::write(PURGE, &params))?;
        Ok(u32::try_from(removed).unwrap_or(u32::MAX))
    }
}

/// Refuse an id outside the contract's alphabet.
fn check_id(id: &str) -> Result<(), PluginError> {
    let well_formed = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if well_formed {
        Ok(())
    } else {
        Err(PluginError::Invalid(format!(
            "task id {:?} is not 1 to {MAX_ID_BYTES} ASCII letters, digits and `-`",
            id.chars().take(40).collect::<String>()
        )))
    }
}

/// A time as a bigint, the largest one standing for any later time.
fn time(ms: u64) -> Value {
    Value::Integer(i64::try_from(ms).unwrap_or(i64::MAX))
}
