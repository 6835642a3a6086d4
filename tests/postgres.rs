//! A throwaway PostgreSQL server for the tests of PostgreSQL storage, started by
//! `scripts/postgres start <dir>` (as `scripts/test` does) and found through
//! [`SOCKET_ENV`], the socket directory it prints (`<dir>/socket`; the cluster
//! is in `<dir>/data`). The server is reached on its unix socket only, through
//! `psql` run as a subprocess: the superuser `postgres` is trusted there, every
//! other role logs in with its password.
//!
//! A test needing PostgreSQL takes [`Postgres::required`] (it fails, loudly,
//! when there is no server: it never passes without one), then a database of
//! its own set up as an operator would for Warden, [`Postgres::fresh_database`]:
//!
//! ```text
//! let pg = Postgres::required("storage_survives_reopen");
//! let db = pg.fresh_database("survives_reopen");
//! let password = db.password_file(dir.path());
//! // [plugins.storage-backend.database] url = db.url(), password-file = password, schema = db.schema()
//! ```
//!
//! The database and its roles are dropped with the [`TestDb`]. Tests share one
//! server, so [`Postgres::restart`] is for a test holding it alone
//! ([`Postgres::required_exclusive`]): every other handle on the server, in this
//! process or another, holds a shared lock that an exclusive one waits out.
//!
//! Only `std`: the module is compiled, and its tests run, on its own too:
//! `CARGO_MANIFEST_DIR=$PWD/tests rustc --edition 2024 --test tests/postgres.rs -o /tmp/pg-tests`.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment variable naming the server's socket directory.
pub const SOCKET_ENV: &str = "WARDEN_TEST_PG_SOCKET";
/// The schema the Warden role of a [`TestDb`] owns.
pub const WARDEN_SCHEMA: &str = "warden";
/// How long [`Postgres::restart`] waits for the server to accept connections again.
const RESTART_WAIT: Duration = Duration::from_secs(60);
/// The longest identifier PostgreSQL keeps whole.
const MAX_IDENTIFIER: usize = 63;

/// The running test server: its socket, and a lock on it (shared, or exclusive
/// for a test that restarts it) held as long as this handle or a clone lives.
#[derive(Debug, Clone)]
pub struct Postgres {
    socket_dir: PathBuf,
    port: u16,
    psql: PathBuf,
    exclusive: bool,
    _lock: Arc<File>,
}

impl Postgres {
    /// The server named by [`SOCKET_ENV`], or `None` when it is unset. Waits
    /// while a test holds the server alone.
    pub fn from_env() -> Option<Postgres> {
        Self::open(false)
    }

    /// The server named by [`SOCKET_ENV`]; fails the test `test_name` when it
    /// is unset or the server does not answer.
    pub fn required(test_name: &str) -> Postgres {
        Self::check(test_name, Self::open(false))
    }

    /// [`Postgres::required`], holding the server alone (until this handle and
    /// every clone of it, [`TestDb`]s included, are dropped): for a test that
    /// calls [`Postgres::restart`]. Take no other handle in the same test.
    pub fn required_exclusive(test_name: &str) -> Postgres {
        Self::check(test_name, Self::open(true))
    }

    fn open(exclusive: bool) -> Option<Postgres> {
        let socket_dir = PathBuf::from(std::env::var_os(SOCKET_ENV).filter(|dir| !dir.is_empty())?);
        assert!(
            socket_dir.is_absolute() && socket_dir.is_dir(),
            "{SOCKET_ENV}={} is not the absolute path of a directory: start a server with \
             `scripts/postgres start /tmp/pgtest` and export {SOCKET_ENV}=<the socket directory it prints>",
            socket_dir.display()
        );
        let lock_path = socket_dir.parent().expect("the socket directory has a parent").join("tests.lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
        let locked = if exclusive { lock.lock() } else { lock.lock_shared() };
        locked.unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
        Some(Postgres {
            port: socket_port(&socket_dir),
            socket_dir,
            psql: psql_bin(),
            exclusive,
            _lock: Arc::new(lock),
        })
    }

    fn check(test_name: &str, pg: Option<Postgres>) -> Postgres {
        let pg = pg.unwrap_or_else(|| {
            panic!(
                "{test_name} needs a PostgreSQL server and {SOCKET_ENV} is not set: start one with \
                 `scripts/postgres start /tmp/pgtest` and export {SOCKET_ENV}=<the socket directory it \
                 prints> (scripts/test does both)"
            )
        });
        if let Err(e) = pg.try_psql("postgres", None, "postgres", "SELECT 1") {
            panic!(
                "{test_name} needs a PostgreSQL server, and none answers on {SOCKET_ENV}={} (port {}): {e}\n\
                 start it with `scripts/postgres start {}`",
                pg.socket_dir.display(),
                pg.port,
                pg.socket_dir.parent().unwrap_or(&pg.socket_dir).display()
            );
        }
        pg
    }

    /// The socket directory, as given in [`SOCKET_ENV`].
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server's port (the number in its socket's name).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Run `sql` (any number of statements) as the superuser in the database
    /// `postgres`; its rows, unaligned, `|` between columns. Panics with psql's
    /// error when a statement fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// [`Postgres::psql`] in the database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        self.try_psql("postgres", None, db, sql)
            .unwrap_or_else(|e| panic!("psql as postgres in {db}: {e}\n{sql}"))
    }

    /// Run `sql` as `user` (logging in with `password`, if any) in `db`: its
    /// rows, or psql's error output when it could not connect or a statement failed.
    pub fn try_psql(
        &self,
        user: &str,
        password: Option<&str>,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let mut command = Command::new(&self.psql);
        // Nothing of the caller's libpq environment (PGHOST, PGUSER, PGPASSFILE, PGOPTIONS...).
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|name| name.starts_with("PG")) {
                command.env_remove(name);
            }
        }
        if let Some(password) = password {
            command.env("PGPASSWORD", password);
        }
        command
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGAPPNAME", "warden-tests")
            .args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-f", "-", "-h"])
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", user, "-d", db])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("running {}: {e}", self.psql.display()));
        let mut stdin = child.stdin.take().expect("psql's stdin");
        let sql = sql.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(sql.as_bytes()));
        let output = child.wait_with_output().expect("waiting for psql");
        // psql stops reading when a statement fails; its exit status tells.
        let _ = writer.join();
        if output.status.success() {
            let mut stdout = String::from_utf8(output.stdout).expect("psql's output is UTF-8");
            stdout.truncate(stdout.trim_end_matches('\n').len());
            Ok(stdout)
        } else {
            Err(format!("{}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim_end()))
        }
    }

    /// A database of its own (named after `name_hint`, plus a random suffix)
    /// set up as docs/postgres-setup.md tells an operator: a login role
    /// `<db>_warden` with a random password, owning schema `warden` and
    /// nothing else; it may connect to this database only, and may neither
    /// create a schema nor use `public`.
    pub fn fresh_database(&self, name_hint: &str) -> TestDb {
        let name = format!("{}_{}", identifier_part(name_hint, 30), random_hex(6));
        self.psql(&format!("CREATE DATABASE {name}"));
        let db = TestDb {
            pg: self.clone(),
            role: format!("{name}_warden"),
            password: random_hex(16),
            roles: Mutex::new(Vec::new()),
            name,
        };
        db.create_role(&db.role, &db.password);
        db.psql_as_superuser(&format!(
            "CREATE SCHEMA {schema} AUTHORIZATION {role};
             REVOKE ALL ON DATABASE {db} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {db} TO {role};
             REVOKE ALL ON SCHEMA public FROM PUBLIC;",
            schema = WARDEN_SCHEMA,
            role = db.role,
            db = db.name,
        ));
        db
    }

    /// Restart the server as a crash would (`scripts/postgres restart`: an
    /// immediate-mode stop, then a start), and wait until it accepts
    /// connections. Every connection to it breaks, hence
    /// [`Postgres::required_exclusive`].
    pub fn restart(&self) {
        assert!(
            self.exclusive,
            "restarting the shared test server: take it with Postgres::required_exclusive"
        );
        let dir = self.socket_dir.parent().expect("the socket directory has a parent");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres");
        let output = Command::new(&script)
            .arg("restart")
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "`scripts/postgres restart {}` failed ({}): {}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let until = Instant::now() + RESTART_WAIT;
        loop {
            match self.try_psql("postgres", None, "postgres", "SELECT 1") {
                Ok(_) => return,
                Err(e) if Instant::now() >= until => {
                    panic!("the server did not accept connections {RESTART_WAIT:?} after a restart: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// A database of one test, with its least-privilege Warden role; dropped, with
/// every role made for it, when this is.
#[derive(Debug)]
pub struct TestDb {
    pg: Postgres,
    name: String,
    role: String,
    password: String,
    /// Every role made for this database, dropped with it.
    roles: Mutex<Vec<String>>,
}

impl TestDb {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Warden role: it logs in with [`TestDb::password`] and owns [`TestDb::schema`].
    pub fn role(&self) -> &str {
        &self.role
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The schema the Warden role owns, [`WARDEN_SCHEMA`].
    pub fn schema(&self) -> &str {
        WARDEN_SCHEMA
    }

    /// The server this database is on.
    pub fn server(&self) -> &Postgres {
        &self.pg
    }

    /// The Warden role's libpq connection URL, without its password:
    /// `postgresql://<role>@/<db>?host=<socket dir>` (and `&port=` when not 5432).
    pub fn url(&self) -> String {
        let mut url = format!(
            "postgresql://{}@/{}?host={}",
            self.role,
            self.name,
            url_encode(&self.pg.socket_dir.to_string_lossy())
        );
        if self.pg.port != 5432 {
            url.push_str(&format!("&port={}", self.pg.port));
        }
        url
    }

    /// Write the Warden role's password (alone, no newline) to
    /// `<dir>/<db>.password`, mode 0600; its path.
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.password", self.name));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).expect("making the password file 0600");
        file.write_all(self.password.as_bytes()).expect("writing the password file");
        path
    }

    /// Run `sql` as the superuser in this database (see [`Postgres::psql`]).
    pub fn psql_as_superuser(&self, sql: &str) -> String {
        self.pg.psql_in(&self.name, sql)
    }

    /// Run `sql` as the Warden role in this database: its rows, or psql's error.
    pub fn psql_as_warden(&self, sql: &str) -> Result<String, String> {
        self.psql_as(&self.role, &self.password, sql)
    }

    /// Run `sql` as `role`, logging in with `password`, in this database.
    pub fn psql_as(&self, role: &str, password: &str, sql: &str) -> Result<String, String> {
        self.pg.try_psql(role, Some(password), &self.name, sql)
    }

    /// Another login role (`<db>_<schema>`, random password) owning a new
    /// schema `schema` of this database and nothing else, as a second plugin
    /// confined to its own schema would have: `(role, password)`.
    pub fn add_confined_role(&self, schema: &str) -> (String, String) {
        assert!(is_identifier(schema), "schema {schema:?}: lower-case letters, digits and _, a letter first");
        let role = format!("{}_{schema}", self.name);
        assert!(
            role.len() <= MAX_IDENTIFIER,
            "role name {role} is over {MAX_IDENTIFIER} bytes: shorten {schema}"
        );
        let password = random_hex(16);
        self.create_role(&role, &password);
        self.psql_as_superuser(&format!(
            "CREATE SCHEMA {schema} AUTHORIZATION {role};
             GRANT CONNECT ON DATABASE {db} TO {role};",
            db = self.name,
        ));
        (role, password)
    }

    fn create_role(&self, role: &str, password: &str) {
        assert!(is_identifier(role) && role.len() <= MAX_IDENTIFIER, "role name {role:?}");
        // Recorded first: should CREATE fail halfway, dropping what does not exist is harmless.
        self.roles.lock().unwrap_or_else(|e| e.into_inner()).push(role.to_owned());
        self.pg.psql(&format!("CREATE ROLE {role} LOGIN PASSWORD {}", literal(password)));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let roles = std::mem::take(self.roles.get_mut().unwrap_or_else(|e| e.into_inner()));
        let mut sql = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
               WHERE datname = {db} AND pid <> pg_backend_pid();
             DROP DATABASE IF EXISTS {name} WITH (FORCE);",
            db = literal(&self.name),
            name = self.name,
        );
        for role in roles {
            sql.push_str(&format!("\nDROP ROLE IF EXISTS {role};"));
        }
        // Errors are ignored (the server may be gone), statement by statement.
        let _ = self.pg.try_psql("postgres", None, "postgres", &format!("\\set ON_ERROR_STOP 0\n{sql}"));
    }
}

/// The port of the server whose socket is in `dir` (`.s.PGSQL.<port>`), else
/// `PGPORT`, else 5432.
fn socket_port(dir: &Path) -> u16 {
    let from_socket = std::fs::read_dir(dir).ok().and_then(|entries| {
        entries
            .flatten()
            .find_map(|entry| entry.file_name().to_str()?.strip_prefix(".s.PGSQL.")?.parse().ok())
    });
    from_socket.or_else(|| std::env::var("PGPORT").ok()?.parse().ok()).unwrap_or(5432)
}

/// `psql`: on PATH, else in the newest /usr/lib/postgresql/*/bin (Debian's layout).
fn psql_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).map(|dir| dir.join("psql")).find(|psql| psql.is_file())
    });
    if let Some(psql) = on_path {
        return psql;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin/psql"))))
        .filter(|(_, psql)| psql.is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, psql)| psql).unwrap_or_else(|| {
        panic!(
            "psql is not installed (not on PATH nor in /usr/lib/postgresql/*/bin): apt-get install postgresql"
        )
    })
}

/// `hint` made a valid, lower-case identifier of at most `max` bytes.
fn identifier_part(hint: &str, max: usize) -> String {
    let mut part: String =
        hint.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if !part.starts_with(|c: char| c.is_ascii_lowercase()) {
        part.insert_str(0, "t_");
    }
    part.truncate(max);
    part
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `value` as an SQL string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `bytes` random bytes, in hex.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encoding for a URL's query value, `/` kept (as libpq reads it).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warden_role_owns_its_schema_and_nothing_else() {
        let pg = Postgres::required("postgres::tests::warden_role_owns_its_schema_and_nothing_else");
        let db = pg.fresh_database("least_privilege");
        assert!(db.name().starts_with("least_privilege_"), "{}", db.name());
        assert_eq!(db.role(), format!("{}_warden", db.name()));
        assert_eq!(
            db.url(),
            format!(
                "postgresql://{}@/{}?host={}",
                db.role(),
                db.name(),
                url_encode(&pg.socket_dir().to_string_lossy())
            ) + &if pg.port() == 5432 { String::new() } else { format!("&port={}", pg.port()) }
        );

        db.psql_as_warden("CREATE TABLE warden.sessions (id text PRIMARY KEY, body text)").unwrap();
        db.psql_as_warden("INSERT INTO warden.sessions VALUES ('a', 'x')").unwrap();
        assert_eq!(db.psql_as_warden("SELECT body FROM warden.sessions").unwrap(), "x");

        let err = db.psql_as_warden("CREATE TABLE public.sessions (id text)").unwrap_err();
        assert!(err.contains("permission denied for schema public"), "{err}");
        let err = db.psql_as_warden("CREATE SCHEMA other").unwrap_err();
        assert!(err.contains("permission denied for database"), "{err}");
        let err = db.psql_as_warden("CREATE TEMPORARY TABLE scratch (id text)").unwrap_err();
        assert!(err.contains("permission denied to create temporary tables"), "{err}");
        // Its password is required: a wrong one is refused.
        let err = db.psql_as(db.role(), "wrong", "SELECT 1").unwrap_err();
        assert!(err.contains("password authentication failed"), "{err}");
    }

    #[test]
    fn warden_role_connects_to_its_database_only() {
        let pg = Postgres::required("postgres::tests::warden_role_connects_to_its_database_only");
        let (a, b) = (pg.fresh_database("connect_a"), pg.fresh_database("connect_b"));
        let err = pg.try_psql(a.role(), Some(a.password()), b.name(), "SELECT 1").unwrap_err();
        assert!(err.contains("permission denied for database"), "{err}");
        // A database the operator left open to PUBLIC (as `postgres` is by default) it may enter,
        // and create nothing in (see docs/postgres-setup.md: pg_hba.conf closes this door).
        let err = pg
            .try_psql(a.role(), Some(a.password()), "postgres", "CREATE TABLE public.t (v text)")
            .unwrap_err();
        assert!(err.contains("permission denied for schema public"), "{err}");
    }

    #[test]
    fn confined_role_cannot_read_another_schema() {
        let pg = Postgres::required("postgres::tests::confined_role_cannot_read_another_schema");
        let db = pg.fresh_database("confined");
        db.psql_as_warden("CREATE TABLE warden.secrets (v text); INSERT INTO warden.secrets VALUES ('s')")
            .unwrap();
        let (other, password) = db.add_confined_role("other");
        assert_eq!(other, format!("{}_other", db.name()));
        db.psql_as(&other, &password, "CREATE TABLE other.mine (v text)").unwrap();

        let err = db.psql_as(&other, &password, "SELECT v FROM warden.secrets").unwrap_err();
        assert!(err.contains("permission denied for schema warden"), "{err}");
        let err = db.psql_as_warden("SELECT v FROM other.mine").unwrap_err();
        assert!(err.contains("permission denied for schema other"), "{err}");
        // Even a grant on the table is no way in without the schema's.
        db.psql_as_warden(&format!("GRANT SELECT ON warden.secrets TO {other}")).unwrap();
        let err = db.psql_as(&other, &password, "SELECT v FROM warden.secrets").unwrap_err();
        assert!(err.contains("permission denied for schema warden"), "{err}");
    }

    #[test]
    fn dropping_a_test_db_drops_its_database_and_roles() {
        let pg = Postgres::required("postgres::tests::dropping_a_test_db_drops_its_database_and_roles");
        let db = pg.fresh_database("dropped");
        let (name, role) = (db.name().to_owned(), db.role().to_owned());
        let (other, password) = db.add_confined_role("other");
        // A connection left open does not keep the database alive.
        let mut open = Command::new(&pg.psql)
            .env("PGPASSWORD", &password)
            .args(["-X", "-q", "-w", "-h"])
            .arg(pg.socket_dir())
            .args(["-p", &pg.port().to_string(), "-U", &other, "-d", &name, "-c", "SELECT pg_sleep(60)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let count = |sql: &str| pg.psql(sql);
        let until = Instant::now() + Duration::from_secs(10);
        while count(&format!("SELECT count(*) FROM pg_stat_activity WHERE datname = {}", literal(&name)))
            == "0"
        {
            assert!(Instant::now() < until, "the held connection never showed");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(db);
        let _ = open.wait();
        let roles = literal(&role) + "," + &literal(&other);
        assert_eq!(
            count(&format!("SELECT count(*) FROM pg_database WHERE datname = {}", literal(&name))),
            "0"
        );
        assert_eq!(count(&format!("SELECT count(*) FROM pg_roles WHERE rolname IN ({roles})")), "0");
    }

    #[test]
    fn password_file_holds_the_password_alone() {
        let pg = Postgres::required("postgres::tests::password_file_holds_the_password_alone");
        let db = pg.fresh_database("password_file");
        let dir = std::env::temp_dir().join(format!("warden-pg-{}", random_hex(6)));
        std::fs::create_dir(&dir).unwrap();
        let path = db.password_file(&dir);
        let contents = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(contents, db.password());
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_restart_keeps_a_committed_row() {
        let pg = Postgres::required_exclusive("postgres::tests::a_restart_keeps_a_committed_row");
        let db = pg.fresh_database("restart");
        db.psql_as_warden(
            "CREATE TABLE warden.kept (v text); INSERT INTO warden.kept VALUES ('acknowledged')",
        )
        .unwrap();
        let before = pg.psql("SELECT pg_postmaster_start_time()");
        pg.restart();
        assert_ne!(pg.psql("SELECT pg_postmaster_start_time()"), before, "the server was not restarted");
        assert_eq!(db.psql_as_warden("SELECT v FROM warden.kept").unwrap(), "acknowledged");
    }

    #[test]
    fn names_are_identifiers() {
        assert_eq!(identifier_part("postgres::tests::Restart", 30), "postgres__tests__restart");
        assert_eq!(identifier_part("9lives", 30), "t_9lives");
        assert_eq!(identifier_part(&"a".repeat(50), 30).len(), 30);
        assert!(is_identifier(&format!("{}_{}", identifier_part("Ünïcode-hint", 30), random_hex(6))));
        assert_eq!(url_encode("/tmp/a b&c"), "/tmp/a%20b%26c");
    }
}
