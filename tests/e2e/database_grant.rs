//! `[plugins.storage-backend.database]`, the operator's grant of a PostgreSQL
//! database to `storage-postgres`, as the `warden` binary reads it: a good
//! grant is shown by `warden plugins` (role, socket, database, schema, pool
//! sizes, the locks role) and every bad one is refused at start-up with an
//! error naming the setting and its fix. No password, from a file, the
//! environment or a URL, is ever printed. Only the last test needs a server
//! (`warden plugins` opens no connection); it takes [`Postgres::required`].

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use warden::config::Config;
use warden::contract::role::Role;
use warden::runtime::embedded::GUEST_DIR;
use warden_tests::postgres::Postgres;
use warden_tests::warden_bin;

use crate::storage::session;

/// The main role's password, in `main.password` (mode 0600).
const SECRET: &str = "main-pw-8c1f0e7a";
/// The locks role's password, in `locks.password` (mode 0600).
const LOCKS_SECRET: &str = "locks-pw-5b92d4e3";
/// The section every database error names.
const SECTION: &str = "[plugins.storage-backend.database]";

/// A directory holding a configuration, the password files and a HOME.
struct Setup {
    dir: tempfile::TempDir,
}

/// What one run of `warden` printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn both(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    /// The run failed and its error names each of `needles`.
    fn refused(&self, what: &str, needles: &[&str]) {
        assert!(!self.ok, "{what} was accepted:\n{}", self.both());
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{what}: the error does not name {needle:?}:\n{}",
                self.both()
            );
        }
    }

    /// Nothing printed, on either stream, holds `secret`.
    fn keeps(&self, what: &str, secret: &str) {
        assert!(!self.both().contains(secret), "{what}: {secret:?} was printed:\n{}", self.both());
    }
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "socket"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let setup = Self { dir };
        setup.secret_file("main.password", SECRET, 0o600);
        setup.secret_file("locks.password", LOCKS_SECRET, 0o600);
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `name` holding `secret` (and a newline), with `mode`.
    fn secret_file(&self, name: &str, secret: &str, mode: u32) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// A socket directory (no server behind it: nothing here connects).
    fn socket(&self) -> String {
        self.path("socket").display().to_string()
    }

    /// The grant's URL: role `warden_app`, database `wardendb`, on [`Setup::socket`].
    fn url(&self) -> String {
        format!("postgresql://warden_app@/wardendb?host={}", self.socket())
    }

    /// `storage-postgres` granted `url` and then the settings `extra`.
    fn storage(&self, url: &str, extra: &str) -> String {
        format!("[plugins.storage-backend]\nplugin = \"storage-postgres\"\n{SECTION}\nurl = {url:?}\n{extra}")
    }

    /// [`Setup::storage`] with [`Setup::url`] and the main password file.
    fn granted(&self, extra: &str) -> String {
        self.storage(&self.url(), &format!("password-file = {:?}\n{extra}", self.path("main.password")))
    }

    /// `warden --config <config> <args>` with a clean environment plus `env`.
    fn warden(&self, config: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let file = self.path("warden.toml");
        let text = format!(
            "cache-dir = {cache:?}\nstate-dir = {state:?}\n{config}",
            cache = crate::cache_dir(),
            state = self.path("state"),
        );
        std::fs::write(&file, text).unwrap();
        let out = Command::new(warden_bin())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.path("home"))
            .env("WARDEN_LOG", "warn")
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&file)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `warden plugins`.
    fn plugins(&self, config: &str, env: &[(&str, &str)]) -> Run {
        self.warden(config, &["plugins"], env)
    }
}

/// The built `storage-postgres` guest.
fn storage_postgres_wasm() -> String {
    Path::new(GUEST_DIR).join("storage_postgres.wasm").display().to_string()
}

/// The `database:` line of `warden plugins`' storage-backend entry.
fn database_line(run: &Run) -> &str {
    let mut lines = run.stdout.lines().skip_while(|l| !l.starts_with("storage-backend: storage-postgres"));
    assert!(lines.next().is_some(), "storage-postgres is not the storage backend:\n{}", run.both());
    lines
        .take_while(|l| l.starts_with("  "))
        .find(|l| l.starts_with("  database: "))
        .unwrap_or_else(|| panic!("no database line under storage-backend:\n{}", run.both()))
}

#[test]
fn a_good_grant_is_shown_without_its_passwords() {
    let s = Setup::new();
    let config = s.granted(&format!(
        "locks-user = \"warden_locks\"\nlocks-password-file = {locks:?}\nschema = \"store_x\"\n\
         statement-timeout-ms = 2500\npool-size = 3\nlock-pool-size = 5\nmax-rows = 100\nmax-result-mib = 2\n",
        locks = s.path("locks.password"),
    ));
    let run = s.plugins(&config, &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(
        database_line(&run),
        format!(
            "  database: warden_app@{}/wardendb (schema `store_x`, statement timeout 2500 ms, 3 + 5 + 8 connections, \
             locks held as `warden_locks`, at most 100 rows / 2 MiB per result)",
            s.socket()
        )
    );
    assert!(!run.stderr.contains("locks-user"), "a locks role is set: no warning\n{}", run.both());
    run.keeps("warden plugins", SECRET);
    run.keeps("warden plugins", LOCKS_SECRET);

    // The password from the environment, no locks role: the defaults, the
    // main role holds the locks, and the operator is told how to change that.
    let env_secret = "env-pw-31d7aa90";
    let config = s.storage(&s.url(), "password-env = \"WARDEN_TEST_DB_PASSWORD\"\n");
    let run = s.plugins(&config, &[("WARDEN_TEST_DB_PASSWORD", env_secret)]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(
        database_line(&run),
        format!(
            "  database: warden_app@{}/wardendb (schema `warden`, statement timeout 5000 ms, 8 + 32 + 8 connections, \
             locks held as `warden_app`, at most 10000 rows / 64 MiB per result)",
            s.socket()
        )
    );
    assert!(
        run.stderr.contains(&format!("set locks-user under {SECTION} (docs/postgres-setup.md)")),
        "no warning that the plugin's own role holds the locks:\n{}",
        run.both()
    );
    run.keeps("warden plugins, password-env", env_secret);
}

#[test]
fn a_password_in_the_url_is_refused_and_not_echoed() {
    let s = Setup::new();
    let socket = s.socket();
    let secret = "url-pw-0d4e61bc";
    let urls = [
        format!("postgresql://warden_app:{secret}@/wardendb?host={socket}"),
        format!("postgresql://warden_app@/wardendb?host={socket}&password={secret}"),
        format!("user=warden_app password={secret} host={socket} dbname=wardendb"),
    ];
    for url in &urls {
        let run = s.plugins(&s.storage(url, ""), &[]);
        run.refused(url, &[SECTION, "carries a password", "`password-file` (mode 0600)", "`password-env`"]);
        run.keeps(url, secret);
    }
    // `serve` stops before serving anything.
    let run = s.warden(&s.storage(&urls[0], ""), &["serve"], &[]);
    run.refused("serve", &[SECTION, "carries a password", "`password-file`"]);
    run.keeps("serve", secret);
    assert!(run.stdout.is_empty(), "serve answered something:\n{}", run.both());

    // `plugin check` lists the same problem (its `granted:` line shows the URL without the password).
    let config = s.storage(&urls[0], "");
    let run = s.warden(&config, &["plugin", "check", &storage_postgres_wasm()], &[]);
    assert!(!run.ok, "{}", run.both());
    assert!(
        run.stdout.contains(&format!(
            "problem:  plugin `storage_postgres` (storage-backend): {SECTION}: `url` carries a password: remove \
             it and give it in `password-file` (mode 0600) or `password-env`"
        )),
        "{}",
        run.both()
    );
    run.keeps("plugin check", secret);
}

#[test]
fn a_password_file_others_can_read_is_refused() {
    let s = Setup::new();
    for mode in [0o644, 0o640, 0o604] {
        let file = s.secret_file("main.password", SECRET, mode);
        let run = s.plugins(&s.granted(""), &[]);
        run.refused(
            &format!("mode {mode:o}"),
            &[
                SECTION,
                &format!("password-file {} is readable by other users", file.display()),
                "`chmod 600` it",
            ],
        );
        run.keeps(&format!("mode {mode:o}"), SECRET);
    }
    std::fs::set_permissions(s.path("main.password"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = s.plugins(&s.granted(""), &[]);
    assert!(run.ok, "after chmod 600 it is accepted:\n{}", run.both());

    // A missing or empty file is named too.
    let missing = s.storage(&s.url(), &format!("password-file = {:?}\n", s.path("nowhere")));
    s.plugins(&missing, &[])
        .refused("a missing file", &[&format!("password-file {}", s.path("nowhere").display())]);
    s.secret_file("main.password", "", 0o600);
    s.plugins(&s.granted(""), &[]).refused(
        "an empty file",
        &[&format!("password-file {} is empty", s.path("main.password").display())],
    );
}

#[test]
fn bad_settings_are_refused_naming_the_key() {
    let s = Setup::new();
    let run = s.plugins(&s.granted(""), &[]);
    assert!(run.ok, "the grant every case below spoils is good:\n{}", run.both());
    let cases: &[(&str, &[&str])] = &[
        ("schema = \"public\"", &[SECTION, "`schema` \"public\"", "give the plugin a schema of its own"]),
        ("schema = \"pg_catalog\"", &[SECTION, "`schema` \"pg_catalog\"", "a schema of its own"]),
        (
            "schema = \"Bad-Name\"",
            &[SECTION, "`schema` \"Bad-Name\" is not a plain identifier", "lower-case"],
        ),
        ("schema = \"a;drop\"", &[SECTION, "`schema` \"a;drop\" is not a plain identifier"]),
        ("pool-size = 0", &[SECTION, "`pool-size` = 0", "give 1 to 1000 connections"]),
        ("lock-pool-size = 1001", &[SECTION, "`lock-pool-size` = 1001", "give 1 to 1000 connections"]),
        ("statement-timeout-ms = 0", &[SECTION, "`statement-timeout-ms` = 0", "give a limit"]),
        ("max-rows = 0", &[SECTION, "`max-rows`", "at least 1"]),
        (
            "password-env = \"WARDEN_TEST_DB_PASSWORD\"",
            &[SECTION, "both `password-file` and `password-env` are set", "keep one"],
        ),
        (
            "locks-password-env = \"WARDEN_TEST_DB_PASSWORD\"",
            &[SECTION, "a locks password is set without `locks-user`", "name the role"],
        ),
        ("passwd = \"x\"", &["unknown field `passwd`", "expected one of `url`, `password-file`"]),
    ];
    for (extra, needles) in cases {
        let run = s.plugins(&s.granted(&format!("{extra}\n")), &[("WARDEN_TEST_DB_PASSWORD", SECRET)]);
        run.refused(extra, needles);
        run.keeps(extra, SECRET);
    }
    let run = s.plugins(&s.storage("", ""), &[]);
    run.refused("an empty url", &[SECTION, "`url` is empty", "postgresql://"]);
    let run = s.plugins(&s.storage("postgresql://warden_app@/wardendb?bogus=1", ""), &[]);
    run.refused("an unknown URL option", &[SECTION, "url is not a libpq connection string or URL"]);
}

#[test]
fn only_a_storage_backend_may_be_granted_a_database() {
    let s = Setup::new();
    for role in ["session-policy", "context-builder"] {
        let config = format!("[plugins.{role}.database]\nurl = {:?}\n", s.url());
        let run = s.plugins(&config, &[]);
        run.refused(
            role,
            &[&format!(
                "a database is granted to the {role} plugin: only storage-backend plugins can use one; \
                 remove the `database` table from its section"
            )],
        );
    }
    // `plugin check` of a session-policy plugin says so too.
    let config = format!("[plugins.session-policy.database]\nurl = {:?}\n", s.url());
    let policy = Path::new(GUEST_DIR).join("policy_default.wasm").display().to_string();
    let run = s.warden(&config, &["plugin", "check", &policy], &[]);
    assert!(!run.ok, "{}", run.both());
    assert!(
        run.stdout.contains(
            "problem:  the configuration is invalid: a database is granted to the session-policy plugin: \
             only storage-backend plugins can use one"
        ),
        "{}",
        run.both()
    );
}

#[test]
fn a_database_granted_to_the_directory_store_is_refused() {
    let s = Setup::new();
    let config = format!("[plugins.storage-backend.database]\nurl = {:?}\n", s.url());
    s.plugins(&config, &[]).refused(
        "a grant storage-dir cannot use",
        &["declares no database", "plugin = \"storage-postgres\"", "remove the database grant"],
    );
}

#[test]
fn storage_postgres_without_a_grant_is_refused_naming_the_section_and_the_guide() {
    let s = Setup::new();
    let bare = "[plugins.storage-backend]\nplugin = \"storage-postgres\"\n";
    let needles = [
        "plugin `storage-postgres` (storage-backend)",
        "it keeps its data in a database, and none is granted",
        "give one under [plugins.storage-backend.database]",
        "docs/postgres-setup.md",
    ];
    s.plugins(bare, &[]).refused("warden plugins", &needles);
    let run = s.warden(bare, &["serve"], &[]);
    run.refused("warden serve", &needles);
    assert!(run.stdout.is_empty(), "serve answered something:\n{}", run.both());
    s.warden(bare, &["sessions", "list"], &[]).refused("warden sessions list", &needles);

    let wasm = storage_postgres_wasm();
    let run = s.warden("", &["plugin", "check", &wasm], &[]);
    assert!(!run.ok, "{}", run.both());
    assert!(
        run.stdout.contains(
            "problem:  it keeps its data in a database, which the configuration does not grant: \
             add [plugins.storage-backend.database] (see docs/postgres-setup.md)"
        ) && run.stdout.contains("result:   refused"),
        "{}",
        run.both()
    );
    let run = s.warden("", &["plugin", "check", "--json", &wasm], &[]);
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.both()));
    assert!(
        report["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .contains("add [plugins.storage-backend.database] (see docs/postgres-setup.md)")),
        "{report}"
    );

    // With the grant, the same check passes and shows it (without the password).
    let run = s.warden(&s.granted(""), &["plugin", "check", &wasm], &[]);
    assert!(run.ok, "{}", run.both());
    assert!(
        run.stdout.contains(&format!(
            "granted:  database {} (schema `warden`, statement timeout 5000 ms, 8 + 32 + 8 connections",
            s.url()
        )) && run.stdout.contains("result:   ok"),
        "{}",
        run.both()
    );
    run.keeps("plugin check", SECRET);
}

#[test]
fn an_unset_password_variable_is_refused_naming_it() {
    let s = Setup::new();
    let config = s.storage(&s.url(), "password-env = \"WARDEN_TEST_UNSET_DB_PASSWORD\"\n");
    let needles = [
        SECTION,
        "password-env names WARDEN_TEST_UNSET_DB_PASSWORD, which is not set in Warden's environment",
    ];
    s.plugins(&config, &[]).refused("unset", &needles);
    // Empty is as good as unset.
    s.plugins(&config, &[("WARDEN_TEST_UNSET_DB_PASSWORD", "")]).refused("empty", &needles);
    let run = s.plugins(&config, &[("WARDEN_TEST_UNSET_DB_PASSWORD", SECRET)]);
    assert!(run.ok, "once set it is accepted:\n{}", run.both());
    run.keeps("password-env", SECRET);
}

#[test]
fn plugin_check_never_prints_a_password_in_the_url() {
    let s = Setup::new();
    let socket = s.socket();
    let secret = "url-pw-0d4e61bc";
    let wasm = storage_postgres_wasm();
    for url in [
        format!("postgresql://warden_app:{secret}@/wardendb?host={socket}"),
        format!("postgresql://warden_app@/wardendb?host={socket}&password={secret}"),
        format!("user=warden_app password={secret} host={socket} dbname=wardendb"),
    ] {
        for json in [false, true] {
            let args: &[&str] =
                if json { &["plugin", "check", "--json", &wasm] } else { &["plugin", "check", &wasm] };
            let run = s.warden(&s.storage(&url, ""), args, &[]);
            assert!(!run.ok, "{}", run.both());
            run.keeps(&format!("plugin check (json: {json}) of {url}"), secret);
        }
    }
}

#[test]
fn locks_password_errors_name_the_locks_settings() {
    let s = Setup::new();
    let shared = s.secret_file("shared-locks.password", LOCKS_SECRET, 0o644);
    let config = s.granted(&format!("locks-user = \"warden_locks\"\nlocks-password-file = {shared:?}\n"));
    s.plugins(&config, &[])
        .refused("a shared locks password file", &["locks-password-file", "`chmod 600` it"]);
    let config =
        s.granted("locks-user = \"warden_locks\"\nlocks-password-env = \"WARDEN_TEST_UNSET_LOCKS\"\n");
    s.plugins(&config, &[])
        .refused("an unset locks variable", &["locks-password-env names WARDEN_TEST_UNSET_LOCKS"]);
}

#[test]
fn sessions_on_a_fresh_database() {
    let pg = Postgres::required("database_grant::sessions_on_a_fresh_database");
    let db = pg.fresh_database("database_grant");
    let s = Setup::new();
    let password = db.password_file(s.dir.path());
    let config = s.storage(
        &db.url(),
        &format!("password-file = {password:?}\nschema = {:?}\nlocks-user = {:?}\nlocks-password-file = {password:?}\n",
            db.schema(), db.role()),
    );
    let tables = || {
        db.psql_as_superuser(&format!(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}'",
            db.schema()
        ))
    };
    assert_eq!(tables(), "0", "the database starts empty");

    let run = s.warden(&config, &["sessions", "list"], &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(run.stdout, "no sessions\n", "{}", run.both());
    assert_ne!(tables(), "0", "the plugin made its tables on first use");
    let run = s.warden(&config, &["sessions", "list", "--json"], &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(run.stdout.trim(), "[]", "{}", run.both());
    let run = s.warden(&config, &["sessions", "reindex"], &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(run.stdout, "indexed 0 sessions\n", "{}", run.both());
    run.keeps("sessions reindex", db.password());

    // Two sessions saved through the plugin: listed, and counted by reindex.
    {
        std::fs::write(s.path("warden.toml"), format!("cache-dir = {:?}\n{config}", crate::cache_dir()))
            .unwrap();
        let parsed = Config::from_file(&s.path("warden.toml")).unwrap();
        let runtime = warden::plugins::runtime(&parsed).unwrap();
        let (info, wasm) = warden::plugins::plugin_info(Role::StorageBackend, &parsed).unwrap();
        let storage = runtime.load_storage(info, &wasm).unwrap();
        storage.save(&session("alpha", 1_700_000_000_000), None).unwrap();
        storage.save(&session("beta", 1_700_000_001_000), None).unwrap();
    }
    let run = s.warden(&config, &["sessions", "list"], &[]);
    assert!(run.ok, "{}", run.both());
    let keys: Vec<&str> = run.stdout.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(keys, ["beta", "alpha"], "most recently used first:\n{}", run.both());
    let run = s.warden(&config, &["sessions", "reindex"], &[]);
    assert!(run.ok, "{}", run.both());
    assert_eq!(run.stdout, "indexed 2 sessions\n", "{}", run.both());

    // A wrong password: refused by the server, named, and neither password printed.
    let wrong = "wrong-pw-77c0a1d2";
    let wrong_file = s.secret_file("wrong.password", wrong, 0o600);
    let config =
        s.storage(&db.url(), &format!("password-file = {wrong_file:?}\nschema = {:?}\n", db.schema()));
    let run = s.warden(&config, &["sessions", "list"], &[]);
    run.refused(
        "a wrong password",
        &[
            &format!("password authentication failed for user \"{}\"", db.role()),
            db.name(),
            "refused Warden's login",
            "password-file",
        ],
    );
    assert!(!run.both().contains("retry"), "a wrong password is not worth retrying:\n{}", run.both());
    let json = s.warden(&config, &["sessions", "list", "--json"], &[]);
    assert!(!json.ok && json.stdout.is_empty(), "no half JSON document on failure:\n{}", json.both());
    run.keeps("a wrong password", wrong);
    run.keeps("a wrong password", db.password());
}
