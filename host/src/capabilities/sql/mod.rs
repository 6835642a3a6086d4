//! The `sql` capability: PostgreSQL for a storage plugin, through the one
//! database and schema the operator granted ([`Database`]). Each
//! `transaction` holds a pooled connection until it commits or is dropped
//! (then rolled back); each `advisory-lock` holds one of its own. Every
//! statement is bounded by the server's statement timeout, the call's
//! deadline and cancellation (which cancel it on the server), and the caps
//! on the rows and bytes of its result; every wait is host time, not the
//! plugin's CPU budget.

mod database;
mod errors;
pub mod locks;
mod values;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Object;
use futures_util::{StreamExt, pin_mut};
use wasmtime::component::{HasData, Resource, ResourceTable};

pub use database::Database;
pub use errors::describe;

use super::{Who, host_time};
use crate::contract::bindings::storage::warden::plugin::sql::{
    self, AdvisoryLock as LockMarker, Isolation, Rows, SqlError, Transaction as TransactionMarker, Value,
};
use crate::control::CallControl;
use crate::types::PluginError;
use values::{Column, Param, RawLength};

/// What a plugin's transaction may have changed of its connection, undone
/// before the connection goes back to the pool (which then hands it on
/// without a check):
/// its settings first (`search_path` and the statement timeout back to the
/// connection's own, so nothing of the plugin's schema runs below), its role,
/// the locks it took through SQL, cursors, listeners and temporary objects.
/// Statements it prepared with SQL `PREPARE` cannot be dropped without the
/// host's own: such a connection fails the cleaning and is closed.
const CLEAN: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; SELECT pg_catalog.pg_advisory_unlock_all(); \
                     CLOSE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES; \
                     DO $$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql) THEN \
                     RAISE EXCEPTION 'the plugin prepared statements: the connection is closed'; END IF; END $$";
/// How long the cleaning of a dropped transaction may take before its connection is closed instead.
const CLEAN_WAIT: Duration = Duration::from_secs(10);
/// What one cell of a result costs the host besides its bytes, for `max-result-mib`.
const CELL_OVERHEAD: usize = 32;

/// Bytes of one statement's text, at most.
const MAX_STATEMENT_BYTES: usize = 1 << 20;
/// Statements a connection keeps prepared; past it, the cache starts over.
const MAX_CACHED_STATEMENTS: usize = 256;

/// Links `sql` to a call's [`SqlView`].
pub struct Sql;

impl HasData for Sql {
    type Data<'a> = SqlView<'a>;
}

/// What the `sql` functions of one call see.
pub struct SqlView<'a> {
    pub who: Who<'a>,
    /// The granted database; `None` grants nothing.
    pub database: Option<&'a Arc<Database>>,
    pub table: &'a mut ResourceTable,
    pub control: &'a mut CallControl,
}

/// A plugin's open transaction.
pub struct Transaction {
    connection: Option<Object>,
    database: Arc<Database>,
    /// The `BEGIN` not sent yet: it goes with the first statement, in the same round trip.
    pending_begin: Option<&'static str>,
    /// A statement failed: the server aborted the transaction, so `commit` cannot succeed.
    failed: bool,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else { return };
        clean_then_return(connection, "ROLLBACK; ");
    }
}

/// Hand `connection` back to the pool once `first` (ending its transaction,
/// if any) and [`CLEAN`] have run, in the background, so no call waits for
/// them; a connection they fail on, or that takes over [`CLEAN_WAIT`], is
/// closed instead.
fn clean_then_return(connection: Object, first: &'static str) {
    Database::detach(async move {
        // Settings first (RESET ALL), so the plugin's search_path cannot choose what CLEAN runs.
        let statements = format!("{first}{CLEAN}");
        let cleaned = tokio::time::timeout(CLEAN_WAIT, connection.batch_execute(&statements)).await;
        if !matches!(cleaned, Ok(Ok(()))) {
            drop(Object::take(connection));
        }
    });
}

impl SqlView<'_> {
    fn database(&self) -> Result<Arc<Database>, SqlError> {
        self.database.cloned().ok_or_else(|| errors::no_grant(self.who.plugin))
    }

    /// Run `op` as host time, logging a refusal as every capability does.
    fn host<R>(
        &mut self,
        operation: &str,
        op: impl FnOnce(&mut SqlTables<'_>, &CallControl) -> Result<R, SqlError>,
    ) -> wasmtime::Result<Result<R, SqlError>> {
        let who = self.who;
        let mut tables = SqlTables { table: self.table };
        let result = host_time(self.control, |control| op(&mut tables, control));
        Ok(result.map_err(|error| match error {
            SqlError::Host(e) => SqlError::Host(who.refused(operation, "database", e)),
            other => other,
        }))
    }
}

/// The call's resource table, as the `sql` functions use it.
struct SqlTables<'a> {
    table: &'a mut ResourceTable,
}

impl SqlTables<'_> {
    fn transaction(&mut self, handle: &Resource<TransactionMarker>) -> Result<&mut Transaction, SqlError> {
        self.table
            .get_mut(&Resource::<Transaction>::new_borrow(handle.rep()))
            .map_err(|e| SqlError::Host(PluginError::Invalid(format!("not a transaction of this call: {e}"))))
    }
}

impl sql::Host for SqlView<'_> {
    fn begin(
        &mut self,
        isolation: Isolation,
    ) -> wasmtime::Result<Result<Resource<TransactionMarker>, SqlError>> {
        let database = match self.database() {
            Ok(database) => database,
            Err(e) => return Ok(Err(e)),
        };
        self.host("begin", |tables, control| {
            let waiter = control.waiter();
            let connection = database
                .transaction_connection(waiter)
                .map_err(|stop| errors::interrupted(stop, waiter))?
                .map_err(|e| errors::from_pool(e, &database.target, "pool-size"))?;
            let begin = match isolation {
                Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
                Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
                Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            };
            let transaction = Transaction {
                connection: Some(connection),
                database: database.clone(),
                pending_begin: Some(begin),
                failed: false,
            };
            let held = tables
                .table
                .push(transaction)
                .map_err(|e| SqlError::Host(PluginError::Io(format!("holding the transaction: {e}"))))?;
            Ok(Resource::new_own(held.rep()))
        })
    }

    fn lock(&mut self, key: i64, wait_ms: u32) -> wasmtime::Result<Result<Resource<LockMarker>, SqlError>> {
        let database = match self.database() {
            Ok(database) => database,
            Err(e) => return Ok(Err(e)),
        };
        self.host("lock", |tables, control| {
            let lock =
                locks::plugin_lock(&database, key, Duration::from_millis(wait_ms.into()), control.waiter())?;
            let held = tables
                .table
                .push(lock)
                .map_err(|e| SqlError::Host(PluginError::Io(format!("holding the lock: {e}"))))?;
            Ok(Resource::new_own(held.rep()))
        })
    }
}

impl sql::HostTransaction for SqlView<'_> {
    fn query(
        &mut self,
        handle: Resource<TransactionMarker>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Rows, SqlError>> {
        self.host("query", |tables, control| {
            let transaction = tables.transaction(&handle)?;
            transaction.run(control, &statement, &params, Run::Query).map(|done| match done {
                Done::Rows(rows) => rows,
                Done::Changed(_) => unreachable!("a query answers rows"),
            })
        })
    }

    fn execute(
        &mut self,
        handle: Resource<TransactionMarker>,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, SqlError>> {
        self.host("execute", |tables, control| {
            let transaction = tables.transaction(&handle)?;
            transaction.run(control, &statement, &params, Run::Execute).map(|done| match done {
                Done::Changed(n) => n,
                Done::Rows(_) => unreachable!("an execute answers a count"),
            })
        })
    }

    fn commit(&mut self, handle: Resource<TransactionMarker>) -> wasmtime::Result<Result<(), SqlError>> {
        let mut transaction = self.table.delete(Resource::<Transaction>::new_own(handle.rep()))?;
        self.host("commit", move |_, control| {
            let waiter = control.waiter();
            if transaction.failed {
                return Err(SqlError::Server(sql::ServerError {
                    code: "25P02".into(),
                    message: "a statement of this transaction failed: nothing was committed; begin a new transaction"
                        .into(),
                }));
            }
            if transaction.pending_begin.is_some() {
                // No statement ran: there is nothing to commit.
                transaction.pending_begin = None;
                drop(transaction.connection.take());
                return Ok(());
            }
            let connection = transaction.connection.as_ref().expect("a live transaction has its connection");
            let database = transaction.database.clone();
            // The COMMIT's answer is the outcome; the connection's cleaning follows in the
            // background, and a failed one only costs the connection.
            let committed =
                match database.block_cancelling(waiter, connection.batch_execute("COMMIT"), Some(connection.cancel_token())) {
                    Ok(committed) => committed,
                    Err(stop) => {
                        return Err(match errors::interrupted(stop, waiter) {
                            SqlError::Host(e) => SqlError::Host(unknown_outcome(e)),
                            other => other,
                        });
                    }
                };
            match committed {
                Ok(()) => {
                    let connection = transaction.connection.take().expect("a live transaction has its connection");
                    clean_then_return(connection, "");
                    Ok(())
                }
                Err(e) => Err(match errors::from_postgres(&e, &database.target) {
                    SqlError::Unavailable(_) => SqlError::Unavailable(format!(
                        "the connection to the database {} broke while it committed ({e}): the transaction may or \
                         may not have been committed; read the data again before retrying",
                        database.target
                    )),
                    other => other,
                }),
            }
        })
    }

    fn drop(&mut self, handle: Resource<TransactionMarker>) -> wasmtime::Result<()> {
        self.table.delete(Resource::<Transaction>::new_own(handle.rep()))?;
        Ok(())
    }
}

impl sql::HostAdvisoryLock for SqlView<'_> {
    fn drop(&mut self, handle: Resource<LockMarker>) -> wasmtime::Result<()> {
        self.table.delete(Resource::<locks::AdvisoryLock>::new_own(handle.rep()))?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Run {
    Query,
    Execute,
}

enum Done {
    Rows(Rows),
    Changed(u64),
}

impl Transaction {
    fn run(
        &mut self,
        control: &CallControl,
        statement: &str,
        params: &[Value],
        run: Run,
    ) -> Result<Done, SqlError> {
        if statement.len() > MAX_STATEMENT_BYTES {
            return Err(SqlError::Host(PluginError::Invalid(format!(
                "the statement is {} bytes; at most {MAX_STATEMENT_BYTES} are taken",
                statement.len()
            ))));
        }
        let waiter = control.waiter();
        let database = self.database.clone();
        let connection = self
            .connection
            .as_ref()
            .ok_or_else(|| SqlError::Host(PluginError::Invalid("the transaction has ended".into())))?;
        if connection.statement_cache.size() >= MAX_CACHED_STATEMENTS {
            connection.statement_cache.clear();
        }
        let caps = database.caps;
        let begin = self.pending_begin.take();
        let work = async {
            let prepared = connection.prepare_cached(statement).await?;
            let params = params.iter().map(Param);
            match run {
                Run::Execute => connection.execute_raw(&prepared, params).await.map(|n| Ok(Done::Changed(n))),
                Run::Query => {
                    let columns: Vec<String> =
                        prepared.columns().iter().map(|c| c.name().to_string()).collect();
                    let stream = connection.query_raw(&prepared, params).await?;
                    pin_mut!(stream);
                    let (mut rows, mut bytes) = (Vec::new(), 0usize);
                    while let Some(row) = stream.next().await {
                        let row = row?;
                        if rows.len() == caps.rows {
                            return Ok(Err(over_cap(format!("more than {} rows", caps.rows), "max-rows")));
                        }
                        // Sizes first, from the row as received: nothing is copied past the cap.
                        for i in 0..row.len() {
                            bytes += row.try_get::<_, RawLength>(i)?.0 + CELL_OVERHEAD;
                        }
                        if bytes > caps.bytes {
                            return Ok(Err(over_cap(
                                format!("more than {} bytes", caps.bytes),
                                "max-result-mib",
                            )));
                        }
                        let mut values = Vec::with_capacity(row.len());
                        for i in 0..row.len() {
                            values.push(row.try_get::<_, Column>(i)?.0);
                        }
                        rows.push(values);
                    }
                    Ok(Ok(Done::Rows(Rows { columns, rows })))
                }
            }
        };
        let with_begin = async {
            match begin {
                // Sent first, answered in the same round trip as the statement.
                Some(begin) => match futures_util::join!(connection.batch_execute(begin), work) {
                    (Ok(()), done) => done,
                    (Err(e), _) => Err(e),
                },
                None => work.await,
            }
        };
        let outcome = database
            .block_cancelling(waiter, with_begin, Some(connection.cancel_token()))
            .map_err(|stop| errors::interrupted(stop, waiter));
        let result = match outcome {
            Ok(Ok(Ok(done))) => return Ok(done),
            Ok(Ok(Err(over))) => over,
            Ok(Err(e)) => {
                use tokio_postgres::error::SqlState;
                // A prepared statement the plugin deallocated, or one a schema change outdated.
                if matches!(
                    e.code(),
                    Some(&SqlState::INVALID_SQL_STATEMENT_NAME | &SqlState::FEATURE_NOT_SUPPORTED)
                ) {
                    connection.statement_cache.clear();
                }
                errors::from_postgres(&e, &database.target)
            }
            Err(stopped) => stopped,
        };
        self.failed = true;
        Err(result)
    }
}

/// A deadline or cancellation that stopped a COMMIT leaves its outcome unknown: say so.
fn unknown_outcome(error: PluginError) -> PluginError {
    let note = "; the COMMIT was under way, so the transaction may or may not have been committed: read the data \
                again before retrying";
    match error {
        PluginError::Timeout(m) => PluginError::Timeout(m + note),
        PluginError::Cancelled(m) => PluginError::Cancelled(m + note),
        other => other,
    }
}

fn over_cap(what: String, setting: &str) -> SqlError {
    SqlError::Host(PluginError::Invalid(format!(
        "the result has {what} ({setting} of the database grant); select less (LIMIT, fewer columns) or page through it"
    )))
}
