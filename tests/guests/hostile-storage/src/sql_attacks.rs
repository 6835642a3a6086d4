//! Attacks through the `sql` interface, run by `load("sql:<attack>")`. Each
//! answers what happened: `Ok(text)` (the load's session carries it in
//! `extra-json`) when the host let it through, else the error it met, as a
//! plugin error of the kind the host gave (a server error becomes `io`
//! with its SQLSTATE, an unreachable server `io` starting "unavailable").
//!
//! Observations (not attacks): `query:S` runs the statement S and answers
//! its rows (a line each, cells between `|`); `exec:S` runs S, commits, and
//! answers how many rows it changed.
//!
//! Escapes: `read-other` (`other.sessions`), `search-path` (`set search_path
//! = other`, then `sessions`), `set-role:R`, `session-authorization:R`,
//! `create-schema`, `write-public`, `password` (changes the login role's
//! password), `terminate-others` (ends every other connection of the login
//! role, the host's lock connections included).
//!
//! Resources: `sleep` (`pg_sleep(60)`), `timeout-zero` (`statement_timeout
//! = 0`, then a sleep), `rows` (a million rows), `huge-value` (one value of
//! 200 MiB), `locks:N` and `transactions:N` (N held at once in one call),
//! `leak:V` (inserts V into `leaked` and never commits nor drops the
//! transaction), `sql-advisory:K` (a session-level advisory lock taken with
//! SQL on a transaction's connection, then the transaction dropped).
//!
//! Values: `wrong-type` (text for an int4 placeholder), `unsupported-column`
//! (`select now()`).

use warden_plugin::storage::PluginError;
use warden_plugin::storage::sql::{self, Isolation, SqlError, Transaction, Value};

/// Run the attack `attack` (what followed `sql:` in the id).
pub fn run(attack: &str) -> Result<String, PluginError> {
    let (verb, arg) = attack.split_once(':').unwrap_or((attack, ""));
    match verb {
        "query" => query(arg, &[]),
        "exec" => exec(arg, &[]),
        // --- escapes ---
        "read-other" => query("select * from other.sessions", &[]),
        "search-path" => {
            let transaction = begin()?;
            transaction.execute("set search_path = other", &[]).map_err(refusal)?;
            let rows = transaction.query("select * from sessions", &[]).map_err(refusal)?;
            Ok(render(&rows.rows))
        }
        "set-role" => exec(&format!("set role {arg}"), &[]).and_then(|_| query("select current_user", &[])),
        "session-authorization" => exec(&format!("set session authorization {arg}"), &[])
            .and_then(|_| query("select current_user", &[])),
        "create-schema" => exec("create schema hostile", &[]),
        "write-public" => exec("create table public.hostile (v text)", &[]),
        "password" => exec("alter role current_user password 'chosen-by-a-hostile-plugin'", &[]),
        "terminate-others" => query(
            "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity \
             where usename = current_user and pid <> pg_backend_pid()",
            &[],
        ),
        // --- resources ---
        "sleep" => query("select pg_sleep(60)::text", &[]),
        "timeout-zero" => {
            let transaction = begin()?;
            transaction.execute("set statement_timeout = 0", &[]).map_err(refusal)?;
            transaction.query("select pg_sleep(60)::text", &[]).map_err(refusal)?;
            Ok("slept 60 s".into())
        }
        "rows" => query("select g, repeat('x', 200) from generate_series(1, 1000000) g", &[])
            .map(|text| format!("{} rows", text.lines().count())),
        "huge-value" => {
            query("select repeat('x', 200 * 1024 * 1024)", &[]).map(|text| format!("{} bytes", text.len()))
        }
        "locks" => {
            let wanted: i64 = arg.parse().unwrap_or(10_000);
            let mut held = Vec::new();
            for key in 1..=wanted {
                match sql::lock(key, 0) {
                    Ok(lock) => held.push(lock),
                    Err(e) => return Err(after(held.len(), "locks", e)),
                }
            }
            Ok(format!("held {} locks", held.len()))
        }
        "transactions" => {
            let wanted: usize = arg.parse().unwrap_or(10_000);
            let mut open = Vec::new();
            for _ in 0..wanted {
                let transaction = match sql::begin(Isolation::ReadCommitted) {
                    Ok(transaction) => transaction,
                    Err(e) => return Err(after(open.len(), "transactions", e)),
                };
                if let Err(e) = transaction.query("select 1", &[]) {
                    return Err(after(open.len(), "transactions", e));
                }
                open.push(transaction);
            }
            Ok(format!("held {} transactions", open.len()))
        }
        "leak" => {
            exec("create table if not exists leaked (v text)", &[])?;
            let transaction = begin()?;
            transaction
                .execute("insert into leaked (v) values ($1)", &[Value::Text(arg.into())])
                .map_err(refusal)?;
            // Neither committed nor dropped: the host must end it with the call.
            std::mem::forget(transaction);
            Ok("leaked a transaction".into())
        }
        "sql-advisory" => {
            let key: i64 = arg.parse().unwrap_or(42);
            let transaction = begin()?;
            transaction
                .query("select pg_advisory_lock($1)::text", &[Value::Integer(key)])
                .map_err(refusal)?;
            // Rolled back: a session-level lock outlives the transaction.
            drop(transaction);
            Ok(format!("took advisory lock {key} with SQL"))
        }
        // --- values ---
        "wrong-type" => query("select $1::int4", &[Value::Text("not a number".into())]),
        "unsupported-column" => query("select now()", &[]),
        _ => Err(PluginError::Invalid(format!("no SQL attack {verb:?}"))),
    }
}

fn begin() -> Result<Transaction, PluginError> {
    sql::begin(Isolation::ReadCommitted).map_err(refusal)
}

/// Run `statement` in a transaction of its own (rolled back); its rows as text.
fn query(statement: &str, params: &[Value]) -> Result<String, PluginError> {
    let transaction = begin()?;
    let rows = transaction.query(statement, params).map_err(refusal)?;
    Ok(render(&rows.rows))
}

/// Run `statement` and commit it.
fn exec(statement: &str, params: &[Value]) -> Result<String, PluginError> {
    let transaction = begin()?;
    let changed = transaction.execute(statement, params).map_err(refusal)?;
    Transaction::commit(transaction).map_err(refusal)?;
    Ok(format!("changed {changed}"))
}

/// What the host or the server answered, keeping the host's kind of error.
fn refusal(error: SqlError) -> PluginError {
    match error {
        SqlError::Server(server) => PluginError::Io(format!("SQLSTATE {}: {}", server.code, server.message)),
        SqlError::Unavailable(message) => PluginError::Io(format!("unavailable: {message}")),
        SqlError::Host(error) => error,
    }
}

/// The refusal met after holding `count` of `what`, its kind kept.
fn after(count: usize, what: &str, error: SqlError) -> PluginError {
    let prefix = format!("after {count} {what}: ");
    match refusal(error) {
        PluginError::Busy(m) => PluginError::Busy(prefix + &m),
        PluginError::Timeout(m) => PluginError::Timeout(prefix + &m),
        PluginError::Cancelled(m) => PluginError::Cancelled(prefix + &m),
        PluginError::Invalid(m) => PluginError::Invalid(prefix + &m),
        PluginError::Denied(m) => PluginError::Denied(prefix + &m),
        other => PluginError::Io(format!("{prefix}{other:?}")),
    }
}

fn render(rows: &[Vec<Value>]) -> String {
    let cell = |value: &Value| match value {
        Value::Null => "NULL".to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(s) | Value::Json(s) => s.clone(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
    };
    rows.iter().map(|row| row.iter().map(cell).collect::<Vec<_>>().join("|")).collect::<Vec<_>>().join("\n")
}
