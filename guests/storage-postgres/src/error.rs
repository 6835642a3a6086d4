//! What a failed statement means to Warden: the one place a `sql-error`
//! becomes a `plugin-error`, and where an operation is run again after a
//! serialization failure or deadlock, or after the migrations it was missing.

use warden_plugin::storage::PluginError;
use warden_plugin::storage::sql::{ServerError, SqlError};

use crate::schema;

const UNDEFINED_TABLE: &str = "42P01";
const UNDEFINED_COLUMN: &str = "42703";
const SERIALIZATION_FAILURE: &str = "40001";
const DEADLOCK_DETECTED: &str = "40P01";
const UNIQUE_VIOLATION: &str = "23505";
const QUERY_CANCELED: &str = "57014";
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// Runs of an operation after the first that the server aborted for a concurrent one.
const RETRIES: u32 = 3;

/// Why one attempt at an operation failed.
pub(crate) enum Error {
    /// A statement failed; [`run`] decides what it means.
    Sql(SqlError),
    /// The operation's own answer (conflict, corrupt row, …).
    Plugin(PluginError),
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Self {
        Self::Sql(e)
    }
}

impl From<PluginError> for Error {
    fn from(e: PluginError) -> Self {
        Self::Plugin(e)
    }
}

impl From<Error> for PluginError {
    fn from(e: Error) -> Self {
        match e {
            Error::Plugin(e) => e,
            Error::Sql(SqlError::Server(server)) => refused(server),
            Error::Sql(SqlError::Unavailable(message)) => {
                PluginError::Io(format!("the database is unavailable ({message}); retry the call"))
            }
            Error::Sql(SqlError::Host(e)) => e,
        }
    }
}

/// A statement the server refused, as Warden's error.
fn refused(server: ServerError) -> PluginError {
    let ServerError { code, message } = server;
    let text = format!("SQLSTATE {code}: {message}");
    match code.as_str() {
        UNIQUE_VIOLATION => PluginError::Conflict(text),
        SERIALIZATION_FAILURE | DEADLOCK_DETECTED | LOCK_NOT_AVAILABLE => {
            PluginError::Busy(format!("{text}; retry the call"))
        }
        QUERY_CANCELED => PluginError::Timeout(text),
        _ => PluginError::Io(text),
    }
}

/// Run `operation` (each run its own transaction) and answer as Warden
/// expects: run again, up to [`RETRIES`] times, when the server aborted it
/// for a concurrent transaction; once, after migrating the schema, when it
/// named a table or column the schema does not have yet.
pub(crate) fn run<T>(mut operation: impl FnMut() -> Result<T, Error>) -> Result<T, PluginError> {
    let mut retries = 0;
    let mut migrated = false;
    loop {
        let server = match operation() {
            Ok(value) => return Ok(value),
            Err(Error::Sql(SqlError::Server(server))) => server,
            Err(e) => return Err(e.into()),
        };
        match server.code.as_str() {
            UNDEFINED_TABLE | UNDEFINED_COLUMN if !migrated => {
                migrated = true;
                schema::migrate()?;
            }
            SERIALIZATION_FAILURE | DEADLOCK_DETECTED if retries < RETRIES => retries += 1,
            SERIALIZATION_FAILURE | DEADLOCK_DETECTED => {
                return Err(PluginError::Busy(format!(
                    "the database aborted this operation {} times for concurrent ones (last: SQLSTATE {}: {}); retry the call",
                    retries + 1,
                    server.code,
                    server.message
                )));
            }
            _ => return Err(refused(server)),
        }
    }
}
