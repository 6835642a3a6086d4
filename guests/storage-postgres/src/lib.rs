//! A storage backend in PostgreSQL, through the host's `sql` interface:
//! sessions and task records are rows of tables in the one schema the
//! operator grants ([`schema`], created on first use). A session row holds
//! the session's JSON form as every Warden store writes it (so sessions move
//! between stores unchanged) beside the columns listings and lookups need;
//! the compare-and-swap of revisions happens in SQL ([`save`]). An
//! operation is one statement (and a commit when it writes) in a
//! read-committed transaction of its own, run by [`error::run`]; only a
//! conflict, an unconditional save over another writer's, and a full
//! `list` take more. Nothing is cached between calls, and every row read
//! back is checked.

store_codec::wit_conversions!(warden_plugin::storage);

mod catalog;
mod db;
mod error;
mod row;
mod save;
mod schema;
mod tasks;

use warden_plugin::storage::sql::Value;
use warden_plugin::storage::{Guest, MigrateOptions, MigrateReport, PluginError, Session, SessionSummary};

use error::run;

const LOAD: &str = "select revision, body from sessions where id = $1";
/// Changes one row (the count's) when the session existed, none otherwise.
const DELETE: &str = "with deleted as (delete from sessions where id = $1 returning 1) \
    update session_count set n = n - 1 where exists (select from deleted)";
/// Should several sessions hold the thread, the one used last.
const FIND_BY_THREAD: &str = "select id, revision, body from sessions where agent_thread_id = $1 \
    order by last_accessed_ms desc, id limit 1";

struct Store;

impl Guest for Store {
    fn load(id: String) -> Result<Session, PluginError> {
        row::check_key(&id)?;
        let params = [Value::Text(id.clone())];
        match run(|| db::first_row(LOAD, &params))? {
            Some(cells) => row::session(&id, cells),
            None => Err(PluginError::NotFound(format!("no session {id:?}"))),
        }
    }

    fn save(session: Session, expected_revision: Option<u64>) -> Result<u64, PluginError> {
        save::save(session, expected_revision)
    }

    fn delete(id: String) -> Result<bool, PluginError> {
        row::check_key(&id)?;
        let params = [Value::Text(id)];
        run(|| db::write(DELETE, &params)).map(|deleted| deleted > 0)
    }

    fn list() -> Result<Vec<SessionSummary>, PluginError> {
        run(catalog::every_summary)
    }

    fn find_by_thread(thread_id: String) -> Result<Option<Session>, PluginError> {
        if !db::storable(&thread_id) {
            return Ok(None);
        }
        let params = [Value::Text(thread_id.clone())];
        let Some(mut cells) = run(|| db::first_row(FIND_BY_THREAD, &params))? else { return Ok(None) };
        let id = cells.text("id").map_err(|problem| {
            PluginError::Corrupt(format!(
                "the session of agent thread {thread_id:?} is unreadable: {problem}"
            ))
        })?;
        let session = row::session(&id, cells)?;
        if session.agent_thread_id.as_deref() != Some(thread_id.as_str()) {
            return Err(PluginError::Corrupt(format!(
                "session {id:?} is listed under agent thread {thread_id:?} but its body names {:?}; \
                 it was left in place: save it again or delete it",
                session.agent_thread_id
            )));
        }
        Ok(Some(session))
    }

    fn migrate(_options: MigrateOptions) -> Result<MigrateReport, PluginError> {
        Err(PluginError::Unsupported(
            "this store keeps sessions in PostgreSQL and reads no legacy file; to copy a directory \
             store into it, run `warden migrate --to <config>` from the host"
                .into(),
        ))
    }
}

warden_plugin::storage::export!(Store, manifest = "warden.toml");
