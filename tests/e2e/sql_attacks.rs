//! The `sql` capability from the attacker's side: the hostile storage
//! plugin, granted a database of its own (set up as docs/postgres-setup.md
//! tells an operator), tries to leave its schema, to become another role, to
//! outlast its call's deadline, to exhaust the host's memory and connection
//! pools, and to leave state behind on pooled connections; then
//! `storage-postgres` itself is given hostile keys, forged cursors and rows
//! an attacker wrote into its table. Every attack is refused or contained,
//! the host keeps answering, and the server runs nothing the attack left.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use warden::capabilities::sql::Database;
use warden::contract::bindings::storage::exports::warden::plugin::storage_catalog::SessionFilter;
use warden::contract::role::Role;
use warden::control::CancelFlag;
use warden::runtime::Runtime;
use warden::runtime::calls::StoragePlugin;
use warden::runtime::loaded::{AbortReason, CallError, PluginInfo};
use warden::sessions::turn_locks::{NotLocked, TurnLocks};
use warden::types::{PluginError, Session, Turn};
use warden_permissions::DatabaseGrant;
use warden_permissions::database::{
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_LOCK_POOL_SIZE, DEFAULT_MAX_RESULT_MIB, DEFAULT_MAX_ROWS,
    DEFAULT_PLUGIN_LOCK_POOL_SIZE, DEFAULT_POOL_SIZE, DEFAULT_STATEMENT_TIMEOUT_MS,
};
use warden_tests::postgres::{Postgres, TestDb};
use warden_tests::{guest_wasm, info, runtime};

const SECTION: &str = "plugins.storage-backend.database";
/// How long the server may take to show that an attack's statements stopped.
const SETTLE: Duration = Duration::from_secs(5);

/// One test's database (its Warden role owns schema `warden`), a directory
/// for password files, and a runtime.
struct Fixture {
    db: TestDb,
    dir: tempfile::TempDir,
    runtime: Runtime,
}

impl Fixture {
    fn new(test: &str) -> Self {
        let pg = Postgres::required(&format!("sql_attacks::{test}"));
        let db = pg.fresh_database(test);
        Self { db, dir: tempfile::tempdir().unwrap(), runtime: runtime(&crate::cache_dir()) }
    }

    /// The grant of the Warden role's schema, with the defaults an operator gets.
    fn grant(&self) -> DatabaseGrant {
        DatabaseGrant {
            url: self.db.url(),
            password_file: Some(self.db.password_file(self.dir.path())),
            password_env: None,
            locks_user: None,
            locks_password_file: None,
            locks_password_env: None,
            ca_file: None,
            schema: self.db.schema().into(),
            statement_timeout_ms: DEFAULT_STATEMENT_TIMEOUT_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            pool_size: DEFAULT_POOL_SIZE,
            lock_pool_size: DEFAULT_LOCK_POOL_SIZE,
            plugin_lock_pool_size: DEFAULT_PLUGIN_LOCK_POOL_SIZE,
            max_rows: DEFAULT_MAX_ROWS,
            max_result_mib: DEFAULT_MAX_RESULT_MIB,
        }
    }

    /// The grant of another role, confined to `schema` (see [`TestDb::add_confined_role`]).
    fn confined_grant(&self, schema: &str) -> DatabaseGrant {
        let (role, path) = self.other_role(schema);
        let url = self.db.url().replacen(&format!("//{}@", self.db.role()), &format!("//{role}@"), 1);
        DatabaseGrant { url, password_file: Some(path), schema: schema.into(), ..self.grant() }
    }

    /// Another login role (owning `schema`) and its password file.
    fn other_role(&self, schema: &str) -> (String, std::path::PathBuf) {
        use std::os::unix::fs::OpenOptionsExt as _;
        let (role, password) = self.db.add_confined_role(schema);
        let path = self.dir.path().join(format!("{role}.password"));
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
        std::io::Write::write_all(&mut file, password.as_bytes()).unwrap();
        (role, path)
    }

    /// `wasm` loaded as the storage backend, granted `grant`, its calls ending after `call_timeout`.
    fn load(&self, file: &str, grant: &DatabaseGrant, call_timeout: Duration) -> StoragePlugin {
        let wasm = guest_wasm(file);
        let database = Database::open(grant, SECTION).expect("a valid grant");
        let mut info =
            PluginInfo { database: Some(database), ..info(Role::StorageBackend, &wasm, None, None) };
        info.limits.call_timeout = call_timeout;
        self.runtime.load_storage(info, &wasm).unwrap()
    }

    fn hostile(&self, grant: &DatabaseGrant, call_timeout: Duration) -> StoragePlugin {
        self.load("hostile_storage.wasm", grant, call_timeout)
    }

    fn superuser(&self, sql: &str) -> String {
        self.db.psql_as_superuser(sql)
    }

    /// Poll until no connection to this database runs a statement (but the
    /// poll's own), or fail naming what still runs.
    fn assert_nothing_runs(&self) {
        let until = Instant::now() + SETTLE;
        let running = "select coalesce(string_agg(usename || ' ' || state || ': ' || query, E'\\n'), '') \
             from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() \
             and backend_type = 'client backend' and state <> 'idle'";
        loop {
            let left = self.superuser(running);
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < until, "still running {SETTLE:?} after the attack:\n{left}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The plugin answers an ordinary call and a query, and the server runs nothing left over.
    fn assert_healthy(&self, plugin: &StoragePlugin) {
        assert_eq!(plugin.load("harmless").unwrap().extra_json, r#"{"result":"harmless"}"#);
        assert_eq!(attack(plugin, "query:select 1").expect("an ordinary query still works"), "1");
        self.assert_nothing_runs();
    }
}

/// `sql:<what>` through the hostile plugin: what the plugin observed, or the error it met.
fn attack(plugin: &StoragePlugin, what: &str) -> Result<String, CallError> {
    plugin.load(&format!("sql:{what}")).map(|session| {
        serde_json::from_str::<serde_json::Value>(&session.extra_json)
            .ok()
            .and_then(|json| json["result"].as_str().map(String::from))
            .unwrap_or(session.extra_json)
    })
}

/// The plugin error an attack ended with (never an abort: the host answered, the plugin passed it on).
fn refused(what: &str, outcome: Result<String, CallError>) -> PluginError {
    match outcome {
        Ok(observed) => panic!("{what} was let through: {observed}"),
        Err(err) => err.plugin_error().cloned().unwrap_or_else(|| panic!("{what}: not a refusal: {err}")),
    }
}

/// The SQLSTATE and message of a statement the server refused.
fn server_refusal(what: &str, outcome: Result<String, CallError>) -> String {
    match refused(what, outcome) {
        PluginError::Io(message) if message.starts_with("SQLSTATE ") => message,
        other => panic!("{what}: expected the server's refusal, got {other:?}"),
    }
}

fn ended_by_deadline(err: &CallError) -> bool {
    matches!(err.abort_reason(), Some(AbortReason::Timeout(_)))
        || matches!(err.plugin_error(), Some(PluginError::Timeout(_)))
}

/// The largest growth of this process's resident memory while `work` runs, in MiB.
fn peak_growth_mib<T>(work: impl FnOnce() -> T) -> (T, u64) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let kib = |field: &str| -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // Resets VmHWM to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak resident size");
    let before = kib("VmRSS:");
    let out = work();
    (out, kib("VmHWM:").saturating_sub(before) >> 10)
}

#[test]
fn a_plugin_confined_to_its_schema_cannot_reach_another() {
    let f = Fixture::new("confined_schemas");
    let mine = f.hostile(&f.grant(), Duration::from_secs(30));
    let theirs = f.hostile(&f.confined_grant("other"), Duration::from_secs(30));
    // Each plugin makes a `sessions` table in its own schema (its search_path).
    for (plugin, secret) in [(&mine, "secret of warden"), (&theirs, "secret of other")] {
        attack(plugin, "exec:create table sessions (id text primary key, body text)").unwrap();
        attack(plugin, &format!("exec:insert into sessions values ('s', '{secret}')")).unwrap();
        assert_eq!(attack(plugin, "query:select body from sessions").unwrap(), secret);
    }
    assert_eq!(f.superuser("select body from other.sessions"), "secret of other");

    let message = server_refusal("read-other", attack(&mine, "read-other"));
    assert!(message.starts_with("SQLSTATE 42501") && message.contains("permission denied for schema other"));
    // A schema without USAGE is skipped by the search path: no `sessions` is found at all.
    let message = server_refusal("search-path", attack(&mine, "search-path"));
    assert!(message.starts_with("SQLSTATE 42P01"), "{message}");
    let message = server_refusal("the other way", attack(&theirs, "query:select body from warden.sessions"));
    assert!(message.contains("permission denied for schema warden"), "{message}");

    for plugin in [&mine, &theirs] {
        f.assert_healthy(plugin);
    }
}

#[test]
fn a_plugin_cannot_become_another_role_nor_write_outside_its_schema() {
    let f = Fixture::new("escapes");
    f.superuser("CREATE TABLE public.victim (v text); INSERT INTO public.victim VALUES ('untouched')");
    let plugin = f.hostile(&f.grant(), Duration::from_secs(30));
    let other = f.db.add_confined_role("other").0;
    for role in ["postgres", other.as_str()] {
        let message = server_refusal("set role", attack(&plugin, &format!("set-role:{role}")));
        assert!(message.starts_with("SQLSTATE 42501") && message.contains("permission denied to set role"));
        let message = server_refusal(
            "set session authorization",
            attack(&plugin, &format!("session-authorization:{role}")),
        );
        assert!(
            message.starts_with("SQLSTATE 42501")
                && message.contains("permission denied to set session authorization"),
            "{message}"
        );
    }
    let message = server_refusal("create schema", attack(&plugin, "create-schema"));
    assert!(message.starts_with("SQLSTATE 42501") && message.contains("permission denied for database"));
    let message = server_refusal("write public", attack(&plugin, "write-public"));
    assert!(message.contains("permission denied for schema public"), "{message}");
    let message = server_refusal(
        "insert into public",
        attack(&plugin, "exec:insert into public.victim values ('written by a plugin')"),
    );
    assert!(message.contains("permission denied for schema public"), "{message}");
    let message =
        server_refusal("temporary table", attack(&plugin, "exec:create temporary table t (v text)"));
    assert!(message.contains("permission denied to create temporary tables"), "{message}");

    assert_eq!(f.superuser("SELECT string_agg(v, ',') FROM public.victim"), "untouched");
    assert_eq!(f.superuser("SELECT count(*) FROM pg_namespace WHERE nspname = 'hostile'"), "0");
    assert_eq!(f.superuser("SELECT count(*) FROM pg_tables WHERE tablename = 'hostile'"), "0");
    assert_eq!(attack(&plugin, "query:select current_user").unwrap(), f.db.role(), "still its own role");
    f.assert_healthy(&plugin);
}

#[test]
fn a_statement_past_the_calls_deadline_is_stopped_on_the_server() {
    let f = Fixture::new("deadline");
    // The server's own limit is far away: only the call's deadline can stop the sleep.
    let grant = DatabaseGrant { statement_timeout_ms: 600_000, ..f.grant() };
    let deadline = Duration::from_secs(2);
    let plugin = f.hostile(&grant, deadline);
    let started = Instant::now();
    let err = attack(&plugin, "sleep").unwrap_err();
    let took = started.elapsed();
    assert!(ended_by_deadline(&err), "{err}");
    assert!(err.to_string().contains("2 s"), "the error names the deadline: {err}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(3), "the call took {took:?}");
    f.assert_healthy(&plugin);
}

#[test]
fn a_plugin_that_lifts_the_statement_timeout_is_still_stopped_by_the_deadline() {
    let f = Fixture::new("timeout_zero");
    // The server would stop a statement after 1 s; the plugin lifts that limit first.
    let grant = DatabaseGrant { statement_timeout_ms: 1_000, pool_size: 1, ..f.grant() };
    let deadline = Duration::from_secs(3);
    let plugin = f.hostile(&grant, deadline);
    let started = Instant::now();
    let err = attack(&plugin, "timeout-zero").unwrap_err();
    let took = started.elapsed();
    assert!(ended_by_deadline(&err), "{err}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(3), "the call took {took:?}");
    f.assert_healthy(&plugin);

    // Settings a plugin commits do not outlive its transaction: the one pooled
    // connection comes back to the next call as the grant set it up.
    for setting in [
        "set statement_timeout = 0",
        "set lock_timeout = 0",
        "set idle_in_transaction_session_timeout = 0",
        "set search_path = other, public",
        "set default_transaction_read_only = on",
    ] {
        attack(&plugin, &format!("exec:{setting}")).unwrap_or_else(|e| panic!("{setting}: {e}"));
    }
    let shown = attack(
        &plugin,
        "query:select current_setting('statement_timeout') || ' ' || current_setting('lock_timeout') || ' ' \
         || current_setting('search_path') || ' ' || current_setting('default_transaction_read_only')",
    )
    .unwrap();
    assert_eq!(shown, "1s 1s warden off");
}

#[test]
fn a_million_rows_stop_at_max_rows() {
    let f = Fixture::new("million_rows");
    let plugin = f.hostile(&f.grant(), Duration::from_secs(30));
    let (outcome, grew) = peak_growth_mib(|| attack(&plugin, "rows"));
    match refused("a million rows", outcome) {
        PluginError::Invalid(message) => assert!(
            message.contains(&format!("more than {DEFAULT_MAX_ROWS} rows")) && message.contains("max-rows"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    // 1,000,000 rows of 200 bytes, were they kept, would be over 200 MiB.
    assert!(grew < 100, "the host grew by {grew} MiB reading a capped result");
    f.assert_healthy(&plugin);
}

#[test]
fn one_huge_value_is_refused_by_max_result_mib() {
    let f = Fixture::new("huge_value");
    let grant = DatabaseGrant { max_result_mib: 16, ..f.grant() };
    let plugin = f.hostile(&grant, Duration::from_secs(30));
    let (outcome, grew) = peak_growth_mib(|| attack(&plugin, "huge-value"));
    match refused("a value of 200 MiB", outcome) {
        PluginError::Invalid(message) => assert!(
            message.contains(&format!("more than {} bytes", 16 << 20)) && message.contains("max-result-mib"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    f.assert_healthy(&plugin);
    // The driver receives one row whole before the host sees it (PostgreSQL
    // sends a row as one message); past that message nothing is decoded or
    // copied, so the host holds the row as received and no more (it held
    // twice that, 401 MiB, when it decoded before checking the cap).
    assert!(grew < 200 + 48, "the host grew by {grew} MiB refusing a row of 200 MiB");
}

#[test]
fn holding_every_pooled_connection_answers_busy_at_once() {
    let f = Fixture::new("pool_exhaustion");
    let grant = DatabaseGrant { pool_size: 2, lock_pool_size: 1, plugin_lock_pool_size: 3, ..f.grant() };
    let plugin = f.hostile(&grant, Duration::from_secs(20));
    for (what, setting, held) in [("locks", "plugin-lock-pool-size", 3), ("transactions", "pool-size", 2)] {
        let started = Instant::now();
        let outcome = attack(&plugin, &format!("{what}:10000"));
        let took = started.elapsed();
        match refused(what, outcome) {
            PluginError::Busy(message) => assert!(
                message.starts_with(&format!("after {held} {what}: ")) && message.contains(setting),
                "{message}"
            ),
            other => panic!("{what}: expected busy naming `{setting}`, got {other:?} after {took:?}"),
        }
        assert!(took < Duration::from_secs(5), "{what}: the refusal took {took:?}");
        f.assert_healthy(&plugin);
    }
    let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'";
    warden_tests::wait_for("the plugin's locks to go with its call", || f.superuser(advisory) == "0");
}

/// The plugin's locks come from a pool of their own: a plugin holding all
/// of them leaves the host's turn locks their connections.
#[test]
fn a_plugin_holding_all_its_locks_leaves_the_turn_locks_theirs() {
    let f = Fixture::new("lock_pools");
    let grant = DatabaseGrant { lock_pool_size: 1, plugin_lock_pool_size: 2, ..f.grant() };
    let database = Database::open(&grant, SECTION).unwrap();
    let cancel = CancelFlag::new();
    let mut held = Vec::new();
    let waiter = warden::control::Waiter::new(Some(Duration::from_secs(5)), cancel.clone());
    for key in 0..2 {
        held.push(
            warden::capabilities::sql::locks::plugin_lock(&database, key, Duration::ZERO, &waiter).unwrap(),
        );
    }
    let third = warden::capabilities::sql::locks::plugin_lock(&database, 9, Duration::ZERO, &waiter);
    assert!(third.is_err(), "the plugin's pool is full");
    let turns = TurnLocks::new(None, Some(database));
    let turn = turns.lock_turn("a-session", &cancel);
    assert!(turn.is_ok(), "a turn still gets its lock while the plugin holds all of its own");
    drop(held);
}

#[test]
fn a_leaked_transaction_is_rolled_back_and_its_connection_returned() {
    let f = Fixture::new("leaked_transaction");
    // One connection: the next call gets it only if the leaked transaction gave it back.
    let grant = DatabaseGrant { pool_size: 1, ..f.grant() };
    let plugin = f.hostile(&grant, Duration::from_secs(10));
    assert_eq!(attack(&plugin, "leak:never committed").unwrap(), "leaked a transaction");
    assert_eq!(attack(&plugin, "query:select count(*) from leaked").unwrap(), "0");
    assert_eq!(f.superuser("SELECT count(*) FROM warden.leaked"), "0");
    let stuck = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state LIKE 'idle in transaction%'";
    warden_tests::wait_for("no connection to stay in a transaction", || f.superuser(stuck) == "0");
    f.assert_healthy(&plugin);
}

/// Statements a plugin prepares with SQL would pile up on a pooled
/// connection (the cleaning cannot drop them without the host's own): the
/// connection is closed instead, and the next call starts on a fresh one.
#[test]
fn statements_a_plugin_prepares_with_sql_go_with_its_connection() {
    let f = Fixture::new("sql_prepare");
    let grant = DatabaseGrant { pool_size: 1, ..f.grant() };
    let plugin = f.hostile(&grant, Duration::from_secs(10));
    let backend = || attack(&plugin, "query:select pg_backend_pid()").unwrap();
    let first = backend();
    assert_eq!(backend(), first, "one pooled connection serves call after call");
    attack(&plugin, "exec:prepare hoard as select 1").unwrap();
    let prepared = "query:select count(*) from pg_catalog.pg_prepared_statements where from_sql";
    assert_eq!(attack(&plugin, prepared).unwrap(), "0", "no call inherits the statement");
    assert_ne!(backend(), first, "the connection that held it was closed");
    f.assert_healthy(&plugin);
}

#[test]
fn an_advisory_lock_taken_with_sql_is_not_inherited_by_the_next_user() {
    let f = Fixture::new("sql_advisory");
    let grant = DatabaseGrant { pool_size: 1, ..f.grant() };
    let plugin = f.hostile(&grant, Duration::from_secs(10));
    assert_eq!(attack(&plugin, "sql-advisory:1").unwrap(), "took advisory lock 1 with SQL");
    // The connection's cleaning, which runs before it goes back to the pool, released it.
    let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'";
    warden_tests::wait_for("the lock to go with the transaction", || f.superuser(advisory) == "0");
    // The next call, given the same (only) connection, holds no lock of the last one.
    let held_here =
        "query:select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()";
    assert_eq!(attack(&plugin, held_here).unwrap(), "0");
    assert_eq!(f.superuser("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
    // And the key is free for the plugin's own lock.
    assert_eq!(attack(&plugin, "locks:1").unwrap(), "held 1 locks");
    f.assert_healthy(&plugin);
}

#[test]
fn values_that_do_not_fit_are_refused_naming_the_types() {
    let f = Fixture::new("value_types");
    let plugin = f.hostile(&f.grant(), Duration::from_secs(10));
    match refused("wrong-type", attack(&plugin, "wrong-type")) {
        PluginError::Invalid(message) => {
            assert!(message.contains("a text value does not fit a parameter of type int4"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match refused("unsupported-column", attack(&plugin, "unsupported-column")) {
        PluginError::Invalid(message) => assert!(
            message.contains("columns of type timestamptz are not supported") && message.contains("::text"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    f.assert_healthy(&plugin);
}

/// The host's turn locks are advisory locks on connections logged in as the
/// plugin's role: the plugin must not be able to end them.
#[test]
fn a_plugin_cannot_release_the_hosts_turn_locks() {
    let f = Fixture::new("turn_locks");
    // As docs/postgres-setup.md says: the locks are held as a role of their own.
    let (locks_role, locks_password) = f.other_role("locks");
    let grant = DatabaseGrant {
        locks_user: Some(locks_role),
        locks_password_file: Some(locks_password),
        ..f.grant()
    };
    let plugin = f.hostile(&grant, Duration::from_secs(10));
    let open = || Database::open(&grant, SECTION).unwrap();
    // Two Warden processes sharing the store.
    let (here, elsewhere) = (TurnLocks::new(None, Some(open())), TurnLocks::new(None, Some(open())));
    let cancel = CancelFlag::new();
    let _turn = here.lock_turn("shared-session", &cancel).expect("the first turn locks its session");
    assert!(matches!(elsewhere.lock_turn("shared-session", &cancel), Err(NotLocked::Busy)));

    // The host's locks take two keys, the first naming the kind (a turn's: 0x5744_0001).
    let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 \
                AND classid = 1464074241 AND granted";
    assert_eq!(f.superuser(held), "1");

    let ended = attack(&plugin, "terminate-others");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        f.superuser(held),
        "1",
        "after `terminate-others` ({ended:?}) the turn's lock is gone while its turn still runs"
    );
    let second = match elsewhere.lock_turn("shared-session", &cancel) {
        Ok(_) => "taken".to_string(),
        Err(NotLocked::Busy) => "busy".to_string(),
        Err(NotLocked::Failed(why)) => format!("failed: {why}"),
        Err(NotLocked::Cancelled) => "cancelled".to_string(),
    };
    assert_eq!(second, "busy", "another process asked for the lock of a session whose turn still runs");
}

/// A role may change its own password, which no grant takes away: a plugin
/// can lock every Warden process that has yet to connect out of the
/// database. What the host owes then is a clear answer, naming the login
/// that failed.
#[test]
fn a_plugin_that_changes_its_login_password_leaves_a_clear_error() {
    let f = Fixture::new("password_change");
    let grant = f.grant();
    let plugin = f.hostile(&grant, Duration::from_secs(10));
    match attack(&plugin, "password") {
        Ok(_) => {
            // A process starting now cannot log in (nor can this one, once it needs a new connection).
            let restarted = f.hostile(&grant, Duration::from_secs(10));
            match refused("a new process", attack(&restarted, "query:select 1")) {
                // Not retryable: the operator's grant needs fixing, and the error says where.
                PluginError::Denied(message) => assert!(
                    message.contains("refused Warden's login")
                        && message.contains("28P01")
                        && message.contains("password authentication failed")
                        && message.contains("password-file"),
                    "{message}"
                ),
                other => panic!("{other:?}"),
            }
        }
        Err(err) => assert!(err.plugin_error().is_some(), "{err}"),
    }
    f.assert_nothing_runs();
}

// --- storage-postgres itself ---

fn session(id: &str, last_accessed_ms: u64) -> Session {
    Session {
        turns: vec![Turn { prompt: "p".into(), response: "r".into(), timestamp_ms: 5 }],
        model: Some("m".into()),
        cwd: Some("/w".into()),
        ..warden::sessions::new_session(id, last_accessed_ms)
    }
}

fn error_of<T: std::fmt::Debug>(what: &str, result: Result<T, CallError>) -> PluginError {
    let err = result.expect_err(what);
    err.plugin_error().cloned().unwrap_or_else(|| panic!("{what}: the plugin did not answer: {err}"))
}

fn everything() -> SessionFilter {
    SessionFilter { cwd: None, model: None, key_contains: None }
}

/// How many relations `role` owns outside its schema `warden` (and the
/// TOAST tables of its own) — there must be none.
fn owned_elsewhere(role: &str) -> String {
    format!(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('warden', 'pg_toast') AND pg_get_userbyid(c.relowner) = '{role}'"
    )
}

#[test]
fn storage_postgres_keeps_hostile_keys_and_cursors_inside_its_schema() {
    let f = Fixture::new("store_hostile_keys");
    let store = f.load("storage_postgres.wasm", &f.grant(), Duration::from_secs(30));
    store.save(&session("first", 1), Some(0)).unwrap();

    let long = "k".repeat(10 * 1024);
    for (key, why) in [("nul\0byte", "NUL"), (long.as_str(), "1024")] {
        for err in [
            error_of("save", store.save(&session(key, 2), None)),
            error_of("load", store.load(key)),
            error_of("delete", store.delete(key)),
        ] {
            assert!(matches!(&err, PluginError::Invalid(m) if m.contains(why)), "{key:.20?}: {err:?}");
        }
    }
    let injected = "'; drop table sessions; --";
    let keys = [
        injected,
        "x' or '1'='1",
        "$1",
        "\\",
        "%_",
        "ünïcödé 🎉",
        "\u{202e}rtl",
        "a\"b",
        "new\nline",
        "tab\there",
        &"m".repeat(1024),
    ];
    for (i, key) in keys.iter().enumerate() {
        store.save(&session(key, 10 + i as u64), None).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(store.load(key).unwrap().id, *key, "{key:?} reads back as itself");
    }
    assert!(store.find_by_thread(injected).unwrap().is_none());
    assert!(store.find_by_thread("nul\0").unwrap().is_none());
    let filter = SessionFilter { key_contains: Some(injected.into()), ..everything() };
    let page = store.with(&Default::default()).list_page(&filter, None, 10).unwrap();
    assert_eq!(page.sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [injected]);
    let filter = SessionFilter { key_contains: Some("%".into()), ..everything() };
    let page = store.with(&Default::default()).list_page(&filter, None, 10).unwrap();
    assert_eq!(page.sessions.len(), 1, "`%` is text, not a pattern: {:?}", page.sessions);

    // Cursors come back from callers: only one this store could issue is taken.
    let call = store.with(&Default::default());
    for forged in [
        "garbage".to_string(),
        "v1.1.".to_string(),
        "v1.-1.61".to_string(),
        store_codec::cursor::format(u64::MAX, "first"),
        store_codec::cursor::format(1, "nul\0"),
        store_codec::cursor::format(1, &"k".repeat(1025)),
        format!("v1.1.{}", hex::encode([0xff, 0xfe])),
        format!("v1.1.{}", "a".repeat(100_000)),
    ] {
        let err = error_of("list-page", call.list_page(&everything(), Some(&forged), 10));
        assert!(matches!(&err, PluginError::Invalid(m) if m.contains("cursor")), "{forged:.40}: {err:?}");
    }
    // A well-formed cursor holding SQL is a position, nothing more.
    let page =
        call.list_page(&everything(), Some(&store_codec::cursor::format(1 << 40, injected)), 100).unwrap();
    assert_eq!(page.sessions.len(), keys.len() + 1);

    assert_eq!(f.superuser("SELECT count(*) FROM warden.sessions"), (keys.len() + 1).to_string());
    let owned = f.superuser(&owned_elsewhere(f.db.role()));
    assert_eq!(owned, "0", "the plugin created nothing outside its schema");
    assert_eq!(f.superuser("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), keys.len() + 1);
    f.assert_nothing_runs();
}

/// `count` reads one row that every creating save and every delete keep,
/// exact through inserts, upserts, conflicts and deletes; a store of the
/// first schema (no count) is migrated and counted on first use.
#[test]
fn storage_postgres_counts_without_reading_the_store() {
    let f = Fixture::new("store_count");
    let store = f.load("storage_postgres.wasm", &f.grant(), Duration::from_secs(30));
    let count = || store.with(&Default::default()).count().unwrap();
    assert_eq!(count(), 0);
    for i in 0..5 {
        store.save(&session(&format!("new-{i}"), 1_000 + i), Some(0)).unwrap();
    }
    store.save(&session("upserted", 2_000), None).unwrap();
    store.save(&session("upserted", 2_001), None).unwrap();
    let conflict = store.save(&session("new-0", 3_000), Some(0)).unwrap_err();
    assert!(matches!(conflict.plugin_error(), Some(PluginError::Conflict(_))), "{conflict}");
    assert_eq!(count(), 6, "five inserted, one upserted twice, one conflict");
    assert!(store.delete("new-1").unwrap());
    assert!(!store.delete("new-1").unwrap());
    assert_eq!(count(), 5);

    // Back to the first schema, as an earlier plugin left it: no count table, version 1.
    f.superuser("DROP TABLE warden.session_count; UPDATE warden.warden_schema SET version = 1");
    assert_eq!(count(), 5, "migrated on first use, counted from the rows");
    assert_eq!(f.superuser("SELECT version FROM warden.warden_schema"), "2");
    f.assert_nothing_runs();
}

#[test]
fn storage_postgres_answers_corrupt_for_rows_an_attacker_wrote() {
    let f = Fixture::new("store_hostile_rows");
    let store = f.load("storage_postgres.wasm", &f.grant(), Duration::from_secs(30));
    let ids = [
        "good",
        "undecodable",
        "wrong-key",
        "negative-revision",
        "huge-turns",
        "negative-turns",
        "null-body",
        "null-created",
    ];
    for (i, id) in ids.iter().enumerate() {
        store.save(&session(id, 100 + i as u64), Some(0)).unwrap();
    }
    f.superuser(
        "ALTER TABLE warden.sessions ALTER COLUMN body DROP NOT NULL, ALTER COLUMN created_ms DROP NOT NULL;
         UPDATE warden.sessions SET body = 'not json {' WHERE id = 'undecodable';
         UPDATE warden.sessions SET body = (SELECT body FROM warden.sessions WHERE id = 'good') WHERE id = 'wrong-key';
         UPDATE warden.sessions SET revision = -1 WHERE id = 'negative-revision';
         UPDATE warden.sessions SET turn_count = 2147483647 WHERE id = 'huge-turns';
         UPDATE warden.sessions SET turn_count = -1 WHERE id = 'negative-turns';
         UPDATE warden.sessions SET body = NULL WHERE id = 'null-body';
         UPDATE warden.sessions SET created_ms = NULL WHERE id = 'null-created';",
    );
    for id in ["undecodable", "wrong-key", "negative-revision", "null-body"] {
        match error_of(id, store.load(id)) {
            PluginError::Corrupt(message) => assert!(message.contains(&format!("{id:?}")), "{id}: {message}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    // Their bodies are sound: the summary columns are not what a load reads.
    for id in ["good", "huge-turns", "negative-turns", "null-created"] {
        assert_eq!(store.load(id).unwrap().id, id);
    }
    for (what, err) in [
        ("list", error_of("list", store.list())),
        (
            "list-page",
            error_of("list-page", store.with(&Default::default()).list_page(&everything(), None, 100)),
        ),
        ("least-recent", error_of("least-recent", store.with(&Default::default()).least_recent(100))),
    ] {
        assert!(
            matches!(&err, PluginError::Corrupt(m) if m.contains("negative-turns") || m.contains("null-created")),
            "{what}: {err:?}"
        );
    }
    f.superuser("DELETE FROM warden.sessions WHERE id IN ('negative-turns', 'null-created')");
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), ids.len() - 2);
    let huge = listed.iter().find(|s| s.id == "huge-turns").unwrap();
    assert_eq!(huge.turn_count, i32::MAX as u32);
    // Rows written behind the plugin's back are not in its count until a reindex recounts.
    let counted = store.with(&Default::default()).count().unwrap();
    assert_eq!(
        store.with(&Default::default()).reindex().unwrap(),
        (ids.len() - 2) as u64,
        "counted {counted}"
    );
    assert_eq!(store.with(&Default::default()).count().unwrap(), (ids.len() - 2) as u64);
    f.assert_nothing_runs();
}

#[test]
fn attacks_on_one_database_leave_the_next_ones_working() {
    // A plugin's calls that failed in every way above still leave it serving.
    let f = Fixture::new("after_attacks");
    let grant = DatabaseGrant { pool_size: 2, lock_pool_size: 2, ..f.grant() };
    let plugin = f.hostile(&grant, Duration::from_secs(2));
    for what in ["sleep", "rows", "wrong-type", "unsupported-column", "leak:x", "sql-advisory:7", "locks:3"] {
        let _ = attack(&plugin, what);
    }
    f.assert_healthy(&plugin);
    assert_eq!(attack(&plugin, "query:select count(*) from leaked").unwrap(), "0");
}
