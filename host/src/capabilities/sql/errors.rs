//! What a plugin is told when a statement, a connection or a wait fails:
//! the server's SQLSTATE and message as they are; a lost or unreachable
//! server as `unavailable` (retryable); the host's own refusals and stops as
//! the `plugin-error` every capability uses.

use deadpool_postgres::{PoolError, TimeoutType};

use crate::contract::bindings::storage::warden::plugin::sql::{ServerError, SqlError};
use crate::control::{Interruption, Waiter};
use crate::types::PluginError;

/// The error a failed statement or connection becomes.
pub fn from_postgres(error: &tokio_postgres::Error, target: &str) -> SqlError {
    if let Some(db) = error.as_db_error() {
        let mut message = db.message().to_string();
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            message.push_str(&format!(" (hint: {hint})"));
        }
        return SqlError::Server(ServerError { code: db.code().code().to_string(), message });
    }
    if error.is_closed() || error_is_io(error) {
        return SqlError::Unavailable(format!(
            "the connection to the database {target} broke ({error}); nothing was committed: retry, Warden reconnects"
        ));
    }
    // A parameter the host could not encode, or a column it could not decode.
    SqlError::Host(PluginError::Invalid(error_chain(error)))
}

fn error_is_io(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

/// The error with its causes, which is where tokio-postgres says which parameter or option failed and why.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The error of a connection the pool could not give.
pub fn from_pool(error: PoolError, target: &str, setting: &str) -> SqlError {
    match error {
        PoolError::Timeout(TimeoutType::Create | TimeoutType::Recycle) => SqlError::Unavailable(format!(
            "cannot connect to the database {target} within connect-timeout-ms; retry, Warden reconnects"
        )),
        PoolError::Timeout(TimeoutType::Wait) => SqlError::Host(PluginError::Busy(format!(
            "every connection to {target} is in use ({setting} of the database grant); try again, or raise it"
        ))),
        PoolError::Backend(e) => match from_postgres(&e, target) {
            // Refused at login (a wrong password, a missing database or role): retrying will
            // not help; the operator's grant needs fixing.
            SqlError::Server(server) if server.code.starts_with("28") || server.code == "3D000" => {
                SqlError::Host(PluginError::Denied(format!(
                    "the database {target} refused Warden's login: SQLSTATE {}: {}; check url, password-file or \
                     password-env (and locks-user) under [plugins.storage-backend.database]",
                    server.code, server.message
                )))
            }
            SqlError::Server(server) => SqlError::Unavailable(format!(
                "cannot connect to the database {target}: SQLSTATE {}: {}",
                server.code, server.message
            )),
            other => other,
        },
        other => SqlError::Unavailable(format!("cannot connect to the database {target}: {other}")),
    }
}

/// The error of a wait the call's deadline or cancellation stopped.
pub fn interrupted(interruption: Interruption, waiter: &Waiter) -> SqlError {
    SqlError::Host(match waiter.check() {
        Err(error) => error,
        Ok(()) => match interruption {
            Interruption::Cancelled => PluginError::Cancelled("the call was cancelled by the client".into()),
            Interruption::DeadlinePassed(limit) => PluginError::Timeout(format!(
                "the call exceeded its wall-clock limit of {} s while the database worked",
                limit.as_secs_f64()
            )),
        },
    })
}

/// An error as a log line or a message shows it.
pub fn describe(error: &SqlError) -> String {
    match error {
        SqlError::Server(server) => format!("SQLSTATE {}: {}", server.code, server.message),
        SqlError::Unavailable(message) => format!("unavailable: {message}"),
        SqlError::Host(error) => crate::contract::describe(error),
    }
}

/// Refused: this plugin has no database.
pub fn no_grant(plugin: &str) -> SqlError {
    SqlError::Host(PluginError::Denied(format!(
        "plugin `{plugin}` has no database: the operator grants one under [plugins.storage-backend.database]"
    )))
}
