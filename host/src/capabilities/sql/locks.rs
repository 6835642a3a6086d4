//! Session-level advisory locks, each held on a connection of its own (the
//! lock pool): released when the holder is dropped, and by the server when
//! the connection dies, so a crashed Warden never leaves one behind. The
//! plugin's locks take one 64-bit key; the host's (a turn's, a task's) take
//! two 32-bit keys, which PostgreSQL keeps in a separate key space.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use sha2::{Digest, Sha256};

use super::database::Database;
use super::errors;
use crate::contract::bindings::storage::warden::plugin::sql::SqlError;
use crate::control::Waiter;
use crate::types::PluginError;

/// The first key of the host's locks: what is locked.
#[derive(Clone, Copy, Debug)]
pub enum HostLockKind {
    /// One turn of a session at a time, across every host sharing the store.
    Turn = 0x5744_0001,
    /// A task's turn runs (in the process holding it).
    Task = 0x5744_0002,
}

#[derive(Clone, Copy, Debug)]
enum Key {
    Plugin(i64),
    Host(i32, i32),
}

/// A held advisory lock.
pub struct AdvisoryLock {
    connection: Option<Object>,
    key: Key,
}

impl AdvisoryLock {
    /// Whether the connection holding the lock is still open (a server
    /// restart or a terminated backend releases it without a word).
    pub fn is_intact(&self) -> bool {
        self.connection.as_ref().is_some_and(|connection| !connection.is_closed())
    }
}

/// How long dropping a lock waits for the server to release it.
const UNLOCK_WAIT: Duration = Duration::from_secs(2);

impl Drop for AdvisoryLock {
    /// A host lock is released before this returns (or its connection
    /// closed), so that the next turn of the same session, started at once,
    /// finds it free; a plugin's is released in the background.
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else { return };
        let key = self.key;
        let (done, released) = std::sync::mpsc::sync_channel::<()>(1);
        Database::detach(async move {
            let unlock = async {
                match key {
                    Key::Plugin(k) => {
                        run(&connection, "SELECT pg_catalog.pg_advisory_unlock($1::int8)", &[&k]).await
                    }
                    Key::Host(a, b) => {
                        run(
                            &connection,
                            "SELECT pg_catalog.pg_advisory_unlock($1::int4, $2::int4)",
                            &[&a, &b],
                        )
                        .await
                    }
                }
            };
            if !matches!(tokio::time::timeout(UNLOCK_WAIT, unlock).await, Ok(Ok(_))) {
                // Closing the connection releases whatever it held.
                drop(Object::take(connection));
            }
            let _ = done.send(());
        });
        if matches!(key, Key::Host(..)) {
            let _ = released.recv_timeout(UNLOCK_WAIT);
        }
    }
}

/// How long to sleep between attempts at a lock someone else holds.
const RETRY_STEP: Duration = Duration::from_millis(20);

/// Take the plugin's lock `key`, trying for at most `wait` (and never past the call's deadline).
pub fn plugin_lock(
    database: &Arc<Database>,
    key: i64,
    wait: Duration,
    waiter: &Waiter,
) -> Result<AdvisoryLock, SqlError> {
    take(database, Key::Plugin(key), wait, waiter)?.ok_or_else(|| {
        SqlError::Host(PluginError::Busy(format!(
            "advisory lock {key} is held by another connection (waited {} ms)",
            wait.as_millis()
        )))
    })
}

/// Try once to take the host's lock of `kind` on `id` (a storage id, a task
/// id), scoped to the database's schema; `None` if another holder has it.
pub fn try_host_lock(
    database: &Arc<Database>,
    kind: HostLockKind,
    id: &str,
    waiter: &Waiter,
) -> Result<Option<AdvisoryLock>, SqlError> {
    let digest =
        Sha256::new().chain_update(database.schema.as_bytes()).chain_update([0]).chain_update(id).finalize();
    let second = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    take(database, Key::Host(kind as i32, second), Duration::ZERO, waiter)
}

fn take(
    database: &Arc<Database>,
    key: Key,
    wait: Duration,
    waiter: &Waiter,
) -> Result<Option<AdvisoryLock>, SqlError> {
    let (for_plugin, setting) = match key {
        Key::Plugin(_) => (true, "plugin-lock-pool-size"),
        Key::Host(..) => (false, "lock-pool-size"),
    };
    let connection = database
        .lock_connection(waiter, for_plugin)
        .map_err(|stop| errors::interrupted(stop, waiter))?
        .map_err(|e| errors::from_pool(e, &database.target, setting))?;
    let started = Instant::now();
    loop {
        let attempt = match database.block_cancelling(
            waiter,
            try_once(&connection, key),
            Some(connection.cancel_token()),
        ) {
            Ok(attempt) => attempt,
            Err(stop) => {
                // The server may have granted the lock as the wait ended: close the
                // connection rather than hand a lock on to its next user.
                drop(Object::take(connection));
                return Err(errors::interrupted(stop, waiter));
            }
        };
        match attempt {
            Ok(true) => return Ok(Some(AdvisoryLock { connection: Some(connection), key })),
            Ok(false) if started.elapsed() >= wait => return Ok(None),
            Ok(false) => {
                if let Err(e) = waiter.pause(RETRY_STEP.min(wait)) {
                    return Err(SqlError::Host(e));
                }
            }
            Err(e) => {
                let error = errors::from_postgres(&e, &database.target);
                drop(Object::take(connection));
                return Err(error);
            }
        }
    }
}

async fn try_once(connection: &Object, key: Key) -> Result<bool, tokio_postgres::Error> {
    let row = match key {
        Key::Plugin(k) => run(connection, "SELECT pg_catalog.pg_try_advisory_lock($1::int8)", &[&k]).await?,
        Key::Host(a, b) => {
            run(connection, "SELECT pg_catalog.pg_try_advisory_lock($1::int4, $2::int4)", &[&a, &b]).await?
        }
    };
    row.try_get(0)
}

/// One of the statements above, prepared once per connection (one round trip after the first).
async fn run(
    connection: &Object,
    statement: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, tokio_postgres::Error> {
    let prepared = connection.prepare_cached(statement).await?;
    connection.query_one(&prepared, params).await
}
