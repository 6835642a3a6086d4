//! `save`: the compare-and-swap on a session's revision happens in SQL, in
//! one statement and a commit. `expected-revision` 0 inserts unless the key
//! exists; n updates only the row still at n; none upserts. A save that
//! changes no row asks for the stored revision (in the same transaction) to
//! name it in the conflict. A save that creates a session also counts it,
//! in the same statement (`session_count`, see [`crate::schema`]).

use warden_plugin::storage::sql::{Transaction, Value};
use warden_plugin::storage::{PluginError, Session};

use crate::db::{self, Cells};
use crate::error::{Error, run};
use crate::row::Prepared;

/// Changes one row (the count's) when the session was new, none when the key exists.
const INSERT: &str = "with inserted as (insert into sessions \
    (id, revision, created_ms, last_accessed_ms, turn_count, agent_thread_id, model, cwd, body) \
    values ($1, 1, $2, $3, $4, $5, $6, $7, $8) on conflict (id) do nothing returning 1) \
    update session_count set n = n + 1 where exists (select from inserted)";
const UPDATE: &str = "update sessions set revision = revision + 1, created_ms = $2, last_accessed_ms = $3, \
    turn_count = $4, agent_thread_id = $5, model = $6, cwd = $7, body = $8 \
    where id = $1 and revision = $9";
/// `xmax = 0` tells a row the upsert inserted from one it updated.
const UPSERT: &str = "with upserted as (insert into sessions \
    (id, revision, created_ms, last_accessed_ms, turn_count, agent_thread_id, model, cwd, body) \
    values ($1, 1, $2, $3, $4, $5, $6, $7, $8) on conflict (id) do update set \
    revision = sessions.revision + 1, created_ms = excluded.created_ms, \
    last_accessed_ms = excluded.last_accessed_ms, turn_count = excluded.turn_count, \
    agent_thread_id = excluded.agent_thread_id, model = excluded.model, cwd = excluded.cwd, \
    body = excluded.body \
    returning revision, xmax = 0 as inserted), \
    counted as (update session_count set n = n + 1 where exists (select from upserted where inserted)) \
    select revision from upserted";
const SET_BODY: &str = "update sessions set body = $2 where id = $1";
const STORED_REVISION: &str = "select revision from sessions where id = $1";

/// Store `session` and return its new revision (see `storage.save`).
pub(crate) fn save(session: Session, expected: Option<u64>) -> Result<u64, PluginError> {
    let mut row = Prepared::new(session)?;
    let Some(expected) = expected else { return run(|| overwrite(&mut row)) };
    let expected_param = db::bigint("the expected revision", expected)?;
    let next = expected + 1;
    let body = row.body(next)?;
    let mut params = row.params(body);
    let statement = if expected == 0 {
        INSERT
    } else {
        params.push(expected_param);
        UPDATE
    };
    run(|| swap(statement, &params, row.id(), expected))?;
    Ok(next)
}

/// Run the insert or update; no row changed is a conflict.
fn swap(statement: &str, params: &[Value], id: &str, expected: u64) -> Result<(), Error> {
    let transaction = db::begin()?;
    if transaction.execute(statement, params)? == 0 {
        return Err(match stored_revision(&transaction, id) {
            Ok(current) => PluginError::Conflict(format!(
                "session {id:?} is at revision {current}, not {expected}: another writer saved it first; reload and retry"
            ))
            .into(),
            Err(e) => e,
        });
    }
    Ok(Transaction::commit(transaction)?)
}

/// The revision stored for `id`; 0 if there is no such session.
fn stored_revision(transaction: &Transaction, id: &str) -> Result<u64, Error> {
    let rows = transaction.query(STORED_REVISION, &[Value::Text(id.to_string())])?.rows;
    let Some(row) = rows.into_iter().next() else { return Ok(0) };
    Cells::new(row)
        .unsigned("revision")
        .map_err(|problem| PluginError::Corrupt(format!("session {id:?} is unreadable ({problem})")).into())
}

/// An unconditional save: one upsert. Its body carries the revision the
/// caller's copy leads to; when the stored session was at another one, the
/// body is written again at the revision the upsert gave, before the commit.
fn overwrite(row: &mut Prepared) -> Result<u64, Error> {
    let guess = row.revision().saturating_add(1);
    let body = row.body(guess)?;
    let params = row.params(body);
    let transaction = db::begin()?;
    let rows = transaction.query(UPSERT, &params)?.rows;
    let revision = rows
        .into_iter()
        .next()
        .ok_or_else(|| "no row".to_string())
        .and_then(|row| Cells::new(row).unsigned("revision"))
        .map_err(|problem| {
            PluginError::Io(format!(
                "saving session {:?}: the upsert returned no revision ({problem})",
                row.id()
            ))
        })?;
    if revision != guess {
        let id = Value::Text(row.id().to_string());
        transaction.execute(SET_BODY, &[id, row.body(revision)?])?;
    }
    Transaction::commit(transaction)?;
    Ok(revision)
}
