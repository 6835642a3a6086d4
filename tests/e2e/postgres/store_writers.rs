//! Processes writing one PostgreSQL store through the storage plugin
//! (`config-store-writer`, loading it from a configuration file as `warden`
//! does): concurrent read-modify-writes lose no increment and never read a
//! value older than one acknowledged, and a server restarted mid-run loses
//! no acknowledged save.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use warden::config::Config;
use warden::contract::role::Role;
use warden::runtime::Runtime;
use warden::runtime::calls::StoragePlugin;
use warden_tests::OBSERVE_FOR;
use warden_tests::postgres::Postgres;

use super::Cluster;

const WRITER: &str = env!("CARGO_BIN_EXE_config-store-writer");

fn writer(args: &[&Path]) -> Child {
    Command::new(WRITER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The lines a writer prints, as they come (the channel closes at its end).
fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// The next line from a writer; fails the test after [`OBSERVE_FOR`] or at its end.
fn next_line(lines: &Receiver<String>, waiting_for: &str) -> String {
    match lines.recv_timeout(OBSERVE_FOR) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => {
            panic!("no line from the writer in {OBSERVE_FOR:?} ({waiting_for})")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("the writer ended while {waiting_for}"),
    }
}

fn ack(line: &str) -> Option<u64> {
    line.strip_prefix("ack ").map(|value| value.parse().unwrap())
}

/// The store `config` names, loaded in this process.
fn store(config: &Path) -> (Runtime, StoragePlugin) {
    let config = Config::from_file(config).unwrap();
    let runtime = warden::plugins::runtime(&config).unwrap();
    let (info, wasm) = warden::plugins::plugin_info(Role::StorageBackend, &config).unwrap();
    let storage = runtime.load_storage(info, &wasm).unwrap();
    (runtime, storage)
}

fn counter(storage: &StoragePlugin, key: &str) -> (u64, u64) {
    let session = storage.load(key).unwrap();
    let extra: serde_json::Value = serde_json::from_str(&session.extra_json).unwrap();
    (extra["counter"].as_u64().unwrap(), session.revision)
}

#[test]
fn four_hosts_times_500_read_modify_writes_lose_nothing() {
    const PROCESSES: usize = 4;
    const UPDATES: u64 = 500;
    let pg = Postgres::required("four_hosts_times_500_read_modify_writes_lose_nothing");
    let cluster = Cluster::new(&pg, "rmw");
    let coord = cluster.path("acknowledged");
    let count = UPDATES.to_string();
    // A configuration (and a state directory) per writer, as on four hosts;
    // none has created the tables yet: the first statements race to.
    let mut writers: Vec<(Child, Receiver<String>)> = (0..PROCESSES)
        .map(|i| {
            let config = cluster.store_config(&format!("host-{i}"));
            let mut child =
                writer(&[Path::new("rmw"), &config, Path::new("counter"), Path::new(&count), &coord]);
            let lines = lines(child.stdout.take().unwrap());
            (child, lines)
        })
        .collect();
    for (_, lines) in &writers {
        assert_eq!(next_line(lines, "loading the plugin"), "ready");
    }
    let started = Instant::now();
    let mut written = Vec::new();
    for (child, lines) in &mut writers {
        let mut own = Vec::new();
        for line in lines.iter() {
            own.push(ack(&line).unwrap_or_else(|| panic!("unexpected line {line:?}")));
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "a writer failed ({status}); status 3 means it read a stale value");
        assert_eq!(own.len() as u64, UPDATES, "each writer acknowledged each of its increments");
        assert!(own.windows(2).all(|w| w[0] < w[1]), "a writer's own values only grow: {own:?}");
        written.extend(own);
    }
    let took = started.elapsed();
    written.sort_unstable();
    let total = PROCESSES as u64 * UPDATES;
    assert_eq!(
        written,
        (1..=total).collect::<Vec<_>>(),
        "every value from 1 to {total} written once: no two increments read the same value"
    );
    let (_runtime, storage) = store(&cluster.store_config("check"));
    assert_eq!(counter(&storage, "counter"), (total, total), "the counter, and one revision per increment");
    eprintln!("{PROCESSES} writers x {UPDATES} read-modify-writes in {took:?}");
}

#[test]
fn a_postgres_restart_mid_run_loses_no_acknowledged_save() {
    /// Acknowledged saves wanted before the restart, and after it.
    const ACKS: usize = 20;
    let pg = Postgres::required_exclusive("a_postgres_restart_mid_run_loses_no_acknowledged_save");
    let cluster = Cluster::new(&pg, "restart");
    let config = cluster.store_config("writer");
    let mut child = writer(&[Path::new("until-eof"), &config, Path::new("counter")]);
    let lines = lines(child.stdout.take().unwrap());
    assert_eq!(next_line(&lines, "loading the plugin"), "ready");
    let mut acked = Vec::new();
    let mut retries = Vec::new();
    let mut record = |line: String| match ack(&line) {
        Some(value) => acked.push(value),
        None if line.starts_with("retry ") => retries.push(line),
        None => panic!("unexpected line {line:?}"),
    };
    let mut saved = 0;
    while saved < ACKS {
        let line = next_line(&lines, "saving before the restart");
        saved += usize::from(line.starts_with("ack "));
        record(line);
    }
    pg.restart();
    // Lines printed before the restart may still be queued: read on until the
    // writer has met the broken connections, then saved ACKS times since.
    let until = Instant::now() + OBSERVE_FOR;
    let (mut met_restart, mut saved_since) = (false, 0);
    while !met_restart || saved_since < ACKS {
        assert!(Instant::now() < until, "the writer did not meet the restart, or never recovered from it");
        let line = next_line(&lines, "saving after the restart");
        if line.starts_with("retry ") {
            (met_restart, saved_since) = (true, 0);
        } else {
            saved_since += 1;
        }
        record(line);
    }
    drop(child.stdin.take());
    lines.iter().for_each(&mut record);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the writer failed ({status}); 3: a load lost an acknowledged save, 4: it gave up"
    );
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "acknowledged values only grow: {acked:?}");
    let last = *acked.last().unwrap();
    let (_runtime, storage) = store(&config);
    let (stored, _) = counter(&storage, "counter");
    assert_eq!(stored, last, "the store holds the last acknowledged save (so every earlier one was kept)");
    eprintln!(
        "{} saves acknowledged across the restart, {} errors retried, the first: {:?}",
        acked.len(),
        retries.len(),
        retries.first()
    );
}
