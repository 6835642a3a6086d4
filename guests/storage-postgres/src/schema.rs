//! The tables, in the schema the host's `search_path` names (never
//! qualified, never `public`), and their migrations. `warden_schema` holds
//! the version; the migrations past it run in order in one transaction that
//! first takes a transaction-level advisory lock, so hosts starting at once
//! migrate once and the others find the work done. Nothing checks the
//! version on the way in: an operation that names a table or column the
//! schema lacks fails, and [`crate::error::run`] migrates and runs it again.

use warden_plugin::storage::PluginError;
use warden_plugin::storage::log::{Level, log};
use warden_plugin::storage::sql::{Transaction, Value};

use crate::db::{self, Cells};
use crate::error::Error;

/// The advisory lock migrations hold ("warden" and 1).
const MIGRATION_LOCK: i64 = 0x7761_7264_656e_0001;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&[&str]] = &[
    &[
        // `collate "C"`: keys order by their bytes, as in every Warden store.
        "create table sessions (\
        id text collate \"C\" primary key, \
        revision bigint not null, \
        created_ms bigint not null, \
        last_accessed_ms bigint not null, \
        turn_count integer not null, \
        agent_thread_id text, \
        model text, \
        cwd text, \
        body text not null)",
        "create index sessions_by_thread on sessions (agent_thread_id) where agent_thread_id is not null",
        // Listings walk it forwards (most recent first, then by key).
        "create index sessions_by_use on sessions (last_accessed_ms desc, id)",
        "create table tasks (\
        id text collate \"C\" primary key, \
        expires_ms bigint not null, \
        body text not null)",
        "create index tasks_by_expiry on tasks (expires_ms)",
    ],
    &[
        // Kept by every save that creates a session and every delete, so a count reads one row.
        "create table session_count (one boolean primary key default true check (one), n bigint not null)",
        "insert into session_count (n) select count(*) from sessions",
    ],
];

const VERSION_TABLE: &str = "create table if not exists warden_schema (\
    one boolean primary key default true check (one), \
    version integer not null)";

/// Bring the schema to the newest version.
pub(crate) fn migrate() -> Result<(), Error> {
    let transaction = db::begin()?;
    transaction.execute("select pg_advisory_xact_lock($1)", &[Value::Integer(MIGRATION_LOCK)])?;
    transaction.execute(VERSION_TABLE, &[])?;
    let from = version(&transaction)?;
    let newest = MIGRATIONS.len();
    if from > newest {
        return Err(PluginError::Io(format!(
            "the database schema is at version {from}, newer than this plugin knows ({newest}): \
             upgrade the storage-postgres plugin"
        ))
        .into());
    }
    if from == newest {
        // Another host migrated meanwhile, or the failure was not a missing table.
        return Ok(());
    }
    for statement in MIGRATIONS[from..].iter().flat_map(|m| m.iter()) {
        transaction.execute(statement, &[])?;
    }
    transaction.execute(
        "insert into warden_schema (version) values ($1) \
         on conflict (one) do update set version = excluded.version",
        &[Value::Integer(newest as i64)],
    )?;
    Transaction::commit(transaction)?;
    log(Level::Info, &format!("migrated the database schema from version {from} to {newest}"));
    Ok(())
}

/// The schema's version; 0 before the first migration.
fn version(transaction: &Transaction) -> Result<usize, Error> {
    let rows = transaction.query("select version from warden_schema", &[])?.rows;
    let Some(row) = rows.into_iter().next() else { return Ok(0) };
    let version = Cells::new(row)
        .unsigned("version")
        .map_err(|problem| PluginError::Corrupt(format!("warden_schema is unreadable: {problem}")))?;
    Ok(usize::try_from(version).unwrap_or(usize::MAX))
}
