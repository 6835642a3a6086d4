//! A process that writes to the session store a Warden configuration file
//! names (any storage plugin: the directory store, PostgreSQL…), loaded as
//! `warden` loads it, for the tests of stores shared by several processes.
//! A counter is kept in one session (`extra.counter`); every increment is a
//! read-modify-write: load, add one, save with the loaded revision as the
//! expected one, and on `conflict` start over. It prints `ready` once the
//! plugin is loaded, then `ack <value>` after every save the plugin
//! acknowledged.
//!
//! `config-store-writer rmw <config> <key> <count> <coord>`: `count`
//! increments, retrying on `conflict` only. Before each load it takes the
//! highest value any writer acknowledged for `key` (kept in `<coord>`, under
//! a file lock); a load older than that exits with status 3 ("stale").
//!
//! `config-store-writer until-eof <config> <key>`: increments until standard
//! input is closed; `unavailable` / I/O errors, `busy` and `timeout` (a lost
//! or restarting server) are retried too, each printed as `retry <kind>
//! <message>`. A load older than its own last acknowledged value exits with
//! status 3; an increment failing for a minute exits with status 4.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use warden::config::Config;
use warden::contract::role::Role;
use warden::runtime::calls::StoragePlugin;
use warden::runtime::loaded::CallError;
use warden::sessions::new_session;
use warden::types::{PluginError, Session};

/// How long one increment may keep failing with retryable errors.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: config-store-writer rmw <config> <key> <count> <coord> | until-eof <config> <key>";
    let mode = args.get(1).expect(usage).as_str();
    let config = Config::from_file(Path::new(args.get(2).expect(usage))).expect("the configuration");
    let runtime = warden::plugins::runtime(&config).expect("the runtime");
    let (info, wasm) =
        warden::plugins::plugin_info(Role::StorageBackend, &config).expect("the storage plugin");
    let storage = runtime.load_storage(info, &wasm).expect("loading the storage plugin");
    let key = args.get(3).expect(usage);
    say("ready");
    match mode {
        "rmw" => {
            let count: u64 = args.get(4).expect(usage).parse().expect("a count");
            rmw(&storage, key, count, Path::new(args.get(5).expect(usage)));
        }
        "until-eof" => until_eof(&storage, key),
        _ => panic!("{usage}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The stored counter and revision of `key`; `(0, 0)` when there is no such session.
fn load(storage: &StoragePlugin, key: &str) -> Result<(u64, u64), CallError> {
    match storage.load(key) {
        Ok(session) => {
            let extra: serde_json::Value = serde_json::from_str(&session.extra_json).unwrap();
            Ok((extra["counter"].as_u64().expect("a counter"), session.revision))
        }
        Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => Ok((0, 0)),
        Err(e) => Err(e),
    }
}

/// Save `value` into `key` if it is still at `revision`.
fn save(storage: &StoragePlugin, key: &str, value: u64, revision: u64) -> Result<u64, CallError> {
    let session =
        Session { extra_json: format!(r#"{{"counter":{value}}}"#), revision, ..new_session(key, value) };
    storage.save(&session, Some(revision))
}

fn is_conflict(e: &CallError) -> bool {
    matches!(e.plugin_error(), Some(PluginError::Conflict(_)))
}

fn rmw(storage: &StoragePlugin, key: &str, count: u64, coord: &Path) {
    for _ in 0..count {
        loop {
            let floor = warden_tests::acknowledged(coord, None);
            let (value, revision) = load(storage, key).unwrap_or_else(|e| panic!("load {key}: {e}"));
            if value < floor {
                eprintln!("stale read of {key}: {value} after {floor} was acknowledged");
                std::process::exit(3);
            }
            match save(storage, key, value + 1, revision) {
                Ok(_) => {
                    warden_tests::acknowledged(coord, Some(value + 1));
                    say(&format!("ack {}", value + 1));
                    break;
                }
                Err(e) if is_conflict(&e) => continue,
                Err(e) => panic!("save {key}: {e}"),
            }
        }
    }
}

/// The kind of a retryable error, `None` for any other.
fn retryable(e: &CallError) -> Option<&'static str> {
    match e.plugin_error()? {
        PluginError::Conflict(_) => Some("conflict"),
        PluginError::Io(_) => Some("io"),
        PluginError::Busy(_) => Some("busy"),
        PluginError::Timeout(_) => Some("timeout"),
        _ => None,
    }
}

fn until_eof(storage: &StoragePlugin, key: &str) {
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        flag.store(true, Ordering::SeqCst);
    });
    let mut last_acked = 0;
    while !closed.load(Ordering::SeqCst) {
        let started = Instant::now();
        let fail = |what: &str, e: &CallError| {
            let Some(kind) = retryable(e) else { panic!("{what} {key}: {e}") };
            say(&format!("retry {kind} {}", e.to_string().replace('\n', " ")));
            if started.elapsed() > GIVE_UP_AFTER {
                eprintln!("an increment kept failing for {GIVE_UP_AFTER:?}: {e}");
                std::process::exit(4);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        loop {
            let (value, revision) = match load(storage, key) {
                Ok(loaded) => loaded,
                Err(e) => {
                    fail("load", &e);
                    continue;
                }
            };
            if value < last_acked {
                eprintln!("lost save: {key} holds {value} after {last_acked} was acknowledged");
                std::process::exit(3);
            }
            match save(storage, key, value + 1, revision) {
                Ok(_) => {
                    last_acked = value + 1;
                    say(&format!("ack {last_acked}"));
                    break;
                }
                Err(e) => fail("save", &e),
            }
        }
    }
}
