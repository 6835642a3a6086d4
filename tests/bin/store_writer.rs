//! A process that writes to a session store through the storage plugin, for
//! the crash-safety and cross-process tests. It prints `ready` once loaded
//! and `ack <key> <value>` after every save the plugin acknowledged.
//!
//! `store-writer save-loop <root> <cache> <keys> <start>`: save `k0..k<keys>`
//! round robin forever, each with an increasing `counter` above `start`.
//!
//! `store-writer thread-loop <root> <cache> <keys> <start>`: like
//! `save-loop`, but each save gives its session a new agent thread
//! `t-<value>` and a last use of `<value>` seconds, so the thread index and
//! the recency index change with every save.
//!
//! `store-writer save-big <root> <cache> <key> <kib>`: one save of `key`
//! with a prompt of `kib` KiB; prints `saved` or `error <message>`.
//!
//! `store-writer rmw <root> <cache> <coord> <id> <count>`: `count` read-
//! modify-write increments, alternating the shared key `shared` and the own
//! key `own-<id>`, retrying on `conflict`. Before each read it takes the
//! highest value any process acknowledged for the key (from `<coord>`); a
//! read older than that exits with status 3 ("stale").

use std::io::Write;
use std::path::{Path, PathBuf};

use warden::config::Config;
use warden::runtime::calls::StoragePlugin;
use warden::sessions::new_session;
use warden::types::{PluginError, Session, Turn};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let storage = || {
        let config = Config { cache_dir: Some(PathBuf::from(&args[3])), ..Config::default() };
        let runtime = Box::leak(Box::new(warden::plugins::runtime(&config).expect("runtime")));
        warden::plugins::load_storage_at(runtime, &config, Path::new(&args[2])).expect("storage plugin")
    };
    match args.get(1).map(String::as_str) {
        Some("save-loop") => save_loop(&storage(), args[4].parse().unwrap(), args[5].parse().unwrap()),
        Some("thread-loop") => thread_loop(&storage(), args[4].parse().unwrap(), args[5].parse().unwrap()),
        Some("save-big") => save_big(&storage(), &args[4], args[5].parse().unwrap()),
        Some("rmw") => rmw(&storage(), Path::new(&args[4]), &args[5], args[6].parse().unwrap()),
        _ => panic!("usage: store-writer save-loop|thread-loop|save-big|rmw …"),
    }
}

fn session(key: &str, counter: u64, revision: u64) -> Session {
    Session { revision, extra_json: format!(r#"{{"counter":{counter}}}"#), ..new_session(key, counter) }
}

pub fn counter(session: &Session) -> u64 {
    let extra: serde_json::Value = serde_json::from_str(&session.extra_json).unwrap();
    extra["counter"].as_u64().unwrap()
}

fn save_loop(storage: &StoragePlugin, keys: u64, start: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for value in start + 1.. {
        let key = format!("k{}", value % keys);
        storage.save(&session(&key, value, 0), None).expect("save");
        writeln!(out, "ack {key} {value}").unwrap();
        out.flush().unwrap();
    }
}

fn thread_loop(storage: &StoragePlugin, keys: u64, start: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for value in start + 1.. {
        let key = format!("k{}", value % keys);
        let mut session = session(&key, value, 0);
        session.agent_thread_id = Some(format!("t-{value}"));
        session.last_accessed_ms = value * 1000;
        storage.save(&session, None).expect("save");
        writeln!(out, "ack {key} {value}").unwrap();
        out.flush().unwrap();
    }
}

fn save_big(storage: &StoragePlugin, key: &str, kib: usize) {
    let mut session = session(key, 2, 0);
    session.turns.push(Turn { prompt: "x".repeat(kib << 10), response: "r".into(), timestamp_ms: 2 });
    match storage.save(&session, None) {
        Ok(_) => println!("saved"),
        Err(e) => println!("error {e}"),
    }
}

fn rmw(storage: &StoragePlugin, coord: &Path, id: &str, count: u64) {
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let key = if i % 2 == 0 { "shared".to_string() } else { format!("own-{id}") };
        loop {
            let floor = warden_tests::acknowledged(&coord.join(format!("acked-{key}")), None);
            let (value, revision) = match storage.load(&key) {
                Ok(s) => (counter(&s), s.revision),
                Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => (0, 0),
                Err(e) => panic!("load {key}: {e}"),
            };
            if value < floor {
                eprintln!("stale read of {key}: {value} after {floor} was acknowledged");
                std::process::exit(3);
            }
            match storage.save(&session(&key, value + 1, 0), Some(revision)) {
                Ok(_) => {
                    warden_tests::acknowledged(&coord.join(format!("acked-{key}")), Some(value + 1));
                    writeln!(out, "ack {key} {}", value + 1).unwrap();
                    break;
                }
                Err(e) if matches!(e.plugin_error(), Some(PluginError::Conflict(_))) => continue,
                Err(e) => panic!("save {key}: {e}"),
            }
        }
    }
}
