//! `storage-postgres` beside `storage-dir`, in one run, each through its
//! plugin in this process as Warden calls it:
//!
//! - one update (load, change, compare-and-swap save: durable in both) of a
//!   random session in stores of 100, 10 000 and 100 000 sessions;
//! - 1 writer against 8 concurrent writers (updates per second);
//! - listing 1 000 long sessions (40 turns of 2 KiB each), page by page.
//!
//! Needs a PostgreSQL server it may create a database in, as the `postgres`
//! superuser over a unix socket: `WARDEN_BENCH_PG_SOCKET=<dir>` (what
//! `scripts/postgres start <dir>` prints). The database and its role are
//! made as docs/postgres-setup.md says, and dropped at the end.
//!
//! `cargo bench -p warden --bench shared_store`; `WARDEN_BENCH_ROUNDS`
//! (default 300) and `WARDEN_SCALE_SIZES` (default `100,10000,100000`).

#[path = "support/sessions.rs"]
mod sessions;
#[path = "support/storage_plugin.rs"]
mod storage_plugin;
#[path = "support/update.rs"]
mod update;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessions::{session, stored};
use store_codec::record::{StoredSession, StoredTurn};
use store_codec::{framed, key};
use update::update;
use warden::capabilities::sql::Database;
use warden::capabilities::store_fs::FsRoot;
use warden::contract::bindings::storage::exports::warden::plugin::storage_catalog::SessionFilter;
use warden::contract::role::Role;
use warden::runtime::calls::StoragePlugin;
use warden::runtime::embedded::plugin_named;
use warden::runtime::loaded::CallOptions;
use warden::runtime::{EngineLimits, Runtime};
use warden_permissions::DatabaseGrant;

const WRITERS: usize = 8;
const LONG_SESSIONS: usize = 1_000;
const LONG_TURNS: usize = 40;

fn main() {
    let socket = PathBuf::from(std::env::var_os("WARDEN_BENCH_PG_SOCKET").expect(
        "WARDEN_BENCH_PG_SOCKET: the socket directory of a PostgreSQL server (`scripts/postgres start <dir>` prints it)",
    ));
    let rounds: usize = std::env::var("WARDEN_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let sizes: Vec<usize> = std::env::var("WARDEN_SCALE_SIZES")
        .unwrap_or_else(|_| "100,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("WARDEN_SCALE_SIZES: numbers separated by commas"))
        .collect();
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    let runtime =
        Runtime::new(EngineLimits { concurrent_instances: 32, max_memory_bytes: 512 << 20 }, None).unwrap();
    println!("{rounds} rounds; per call: median and 95th percentile in ms");
    println!("{:<44} {:>16} {:>16}", "", "storage-dir", "storage-postgres");
    for &n in &sizes {
        let pg = Postgres::create(&socket, scratch.path(), &format!("bench_{n}"));
        let dir_store = directory_store(&runtime, &scratch.path().join(format!("dir-{n}")), n, stored);
        let pg_store = pg.store(&runtime, n, stored);
        let (d, p) = interleaved(rounds, n, &dir_store, &pg_store);
        println!("{:<44} {:>16} {:>16}", format!("update one session, {n} stored"), d, p);
    }
    let n = 1_000;
    let pg = Postgres::create(&socket, scratch.path(), "bench_writers");
    let dir_store = directory_store(&runtime, &scratch.path().join("dir-writers"), n, stored);
    let pg_store = pg.store(&runtime, n, stored);
    for writers in [1, WRITERS] {
        let total = rounds.max(WRITERS * 20);
        let d = throughput(&dir_store, writers, total, n);
        let p = throughput(&pg_store, writers, total, n);
        println!(
            "{:<44} {:>16} {:>16}",
            format!("updates/s, {writers} writer(s), {n} stored"),
            format!("{d:.0}"),
            format!("{p:.0}")
        );
    }
    let pg = Postgres::create(&socket, scratch.path(), "bench_long");
    let dir_store = directory_store(&runtime, &scratch.path().join("dir-long"), LONG_SESSIONS, long);
    let pg_store = pg.store(&runtime, LONG_SESSIONS, long);
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        d.push(list_all(&dir_store));
        p.push(list_all(&pg_store));
    }
    println!(
        "{:<44} {:>16} {:>16}",
        format!("list {LONG_SESSIONS} sessions of {} KiB (pages of 100)", LONG_TURNS * 2 * 2),
        summary(&mut d),
        summary(&mut p)
    );
}

/// Updates of random sessions, the two stores alternating call by call.
fn interleaved(rounds: usize, n: usize, dir: &StoragePlugin, pg: &StoragePlugin) -> (String, String) {
    let (mut d, mut p) = (Vec::new(), Vec::new());
    let mut i = 1usize;
    for round in 0..rounds + rounds / 10 {
        i = (i * 7919 + 13) % n;
        let id = format!("session-{i}");
        let (a, b) = (timed(|| update(dir, &id)), timed(|| update(pg, &id)));
        if round >= rounds / 10 {
            d.push(a);
            p.push(b);
        }
    }
    (summary(&mut d), summary(&mut p))
}

fn throughput(store: &StoragePlugin, writers: usize, total: usize, n: usize) -> f64 {
    let per_writer = total / writers;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                for k in 0..per_writer {
                    update(store, &format!("session-{}", (w * per_writer + k) % n));
                }
            });
        }
    });
    (per_writer * writers) as f64 / started.elapsed().as_secs_f64()
}

fn list_all(store: &StoragePlugin) -> Duration {
    let every = SessionFilter { cwd: None, model: None, key_contains: None };
    let started = Instant::now();
    let (mut seen, mut cursor) = (0, None);
    loop {
        let page = store.with(&CallOptions::default()).list_page(&every, cursor.as_deref(), 100).unwrap();
        seen += page.sessions.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, LONG_SESSIONS);
    started.elapsed()
}

fn timed(op: impl FnOnce()) -> Duration {
    let started = Instant::now();
    op();
    started.elapsed()
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    format!("{:.2} / {:.2}", at(0.5), at(0.95))
}

fn long(i: usize) -> StoredSession {
    let text = "y".repeat(1024);
    session(
        i,
        (0..LONG_TURNS as u64).map(|t| StoredTurn {
            prompt: text.clone(),
            response: text.clone(),
            timestamp_ms: t,
        }),
    )
}

fn load(
    runtime: &Runtime,
    name: &str,
    fs_root: Option<FsRoot>,
    database: Option<Arc<Database>>,
) -> StoragePlugin {
    storage_plugin::load(runtime, plugin_named(Role::StorageBackend, name).unwrap(), fs_root, database)
}

/// A directory store of `n` sessions, its index built.
fn directory_store(
    runtime: &Runtime,
    root: &Path,
    n: usize,
    make: fn(usize) -> StoredSession,
) -> StoragePlugin {
    let dir = root.join("sessions.d");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let s = make(i);
        // As storage-dir writes it: one framed record.
        std::fs::write(dir.join(key::file_name(&s.key).unwrap()), framed::frame(&s.to_bytes())).unwrap();
    }
    let store = load(runtime, "storage-dir", Some(FsRoot::open(root, true, 1 << 30).unwrap()), None);
    assert_eq!(store.with(&CallOptions::default()).reindex().unwrap(), n as u64);
    store
}

/// A throwaway database with a login role owning schema `warden` only.
struct Postgres {
    socket: PathBuf,
    db: String,
    grant: DatabaseGrant,
}

impl Postgres {
    fn create(socket: &Path, scratch: &Path, name: &str) -> Self {
        let db = format!("{name}_{}", std::process::id());
        let role = format!("{db}_warden");
        let password = format!("pw{}", std::process::id());
        psql(
            socket,
            "postgres",
            &[
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                &format!("DROP ROLE IF EXISTS {role}"),
                &format!("CREATE DATABASE {db}"),
                &format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
            ],
        );
        psql(
            socket,
            &db,
            &[
                &format!("CREATE SCHEMA warden AUTHORIZATION {role}"),
                &format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
                &format!("GRANT CONNECT ON DATABASE {db} TO {role}"),
                "REVOKE ALL ON SCHEMA public FROM PUBLIC",
            ],
        );
        let password_file = scratch.join(format!("{db}.password"));
        std::fs::write(&password_file, &password).unwrap();
        std::fs::set_permissions(&password_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let grant: DatabaseGrant = toml::from_str(&format!(
            "url = \"postgresql://{role}@/{db}?host={}\"\npassword-file = \"{}\"\npool-size = 16\n",
            socket.display(),
            password_file.display()
        ))
        .unwrap();
        Self { socket: socket.to_path_buf(), db, grant }
    }

    /// A storage-postgres store of `n` sessions: its schema made by the
    /// plugin, the rows copied in as the superuser.
    fn store(&self, runtime: &Runtime, n: usize, make: fn(usize) -> StoredSession) -> StoragePlugin {
        let database = Database::open(&self.grant, "bench").unwrap();
        let store = load(runtime, "storage-postgres", None, Some(database));
        assert_eq!(store.with(&CallOptions::default()).count().unwrap(), 0);
        let mut csv = String::new();
        for i in 0..n {
            let s = make(i);
            let body = String::from_utf8(s.to_bytes()).unwrap();
            csv.push_str(&format!(
                "{},{},{},{},{},{},,{},\"{}\"\n",
                s.key,
                s.revision,
                s.created_ms,
                s.last_accessed_ms,
                s.turns.len(),
                s.agent_thread_id.as_deref().unwrap_or(""),
                s.cwd.as_deref().unwrap_or(""),
                body.replace('"', "\"\"")
            ));
        }
        let copy = "\\copy warden.sessions (id, revision, created_ms, last_accessed_ms, turn_count, agent_thread_id, \
                    model, cwd, body) FROM STDIN WITH (FORMAT csv)";
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", &self.db, "-h"])
            .arg(&self.socket)
            .args(["-c", copy])
            .stdin(Stdio::piped())
            .spawn()
            .expect("psql runs");
        child.stdin.take().unwrap().write_all(csv.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "copying the sessions in failed");
        psql(&self.socket, &self.db, &["ANALYZE warden.sessions"]);
        // Rows copied in behind the plugin's back: a reindex counts them.
        assert_eq!(store.with(&CallOptions::default()).reindex().unwrap(), n as u64);
        store
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let role = format!("{}_warden", self.db);
        psql(
            &self.socket,
            "postgres",
            &[
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
                &format!("DROP ROLE IF EXISTS {role}"),
            ],
        );
    }
}

/// Run each statement on its own (CREATE DATABASE cannot share a transaction), as the superuser.
fn psql(socket: &Path, db: &str, statements: &[&str]) {
    let mut command = Command::new("psql");
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", db, "-h"]).arg(socket);
    for statement in statements {
        command.args(["-c", statement]);
    }
    let out = command.output().expect("psql runs");
    assert!(out.status.success(), "psql {statements:?}: {}", String::from_utf8_lossy(&out.stderr));
}
