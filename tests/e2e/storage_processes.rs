//! The directory store under real processes: writers killed with SIGKILL at
//! random moments lose no acknowledged save and leave only parseable files;
//! four processes doing read-modify-write lose no update and never read a
//! value older than one another process already acknowledged; a save the
//! file system refuses half-way is reported and leaves the old session and
//! no temporary file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use store_codec::record::StoredSession;
use store_codec::{framed, key};

use crate::storage::store;

const WRITER: &str = env!("CARGO_BIN_EXE_store-writer");

pub fn writer(args: &[&str], root: &Path) -> Child {
    Command::new(WRITER)
        .arg(args[0])
        .arg(root)
        .arg(crate::cache_dir())
        .args(&args[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A small deterministic generator, so a failing run can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn sigkilled_writers_lose_no_acknowledged_save() {
    let iterations: u64 =
        std::env::var("WARDEN_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut rng = Lcg(0x5eed);
    let mut highest = 0u64;
    let mut acknowledged = 0usize;
    for _ in 0..iterations {
        let start = highest.to_string();
        let mut child = writer(&["save-loop", "8", &start], root);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        // Kill at a random moment of a save: after a random number of
        // acknowledged saves, a random delay into the next one.
        let mut acked: HashMap<String, u64> = HashMap::new();
        let mut record = |line: String, acked: &mut HashMap<String, u64>| {
            let mut parts = line.split(' ').skip(1);
            let (key, value) =
                (parts.next().unwrap().to_string(), parts.next().unwrap().parse::<u64>().unwrap());
            acked.insert(key, value);
            highest = highest.max(value);
            acknowledged += 1;
        };
        for _ in 0..rng.below(6) {
            let line = lines.next().expect("the writer exited before it was killed").unwrap();
            record(line, &mut acked);
        }
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in lines {
            record(line.unwrap(), &mut acked);
        }
        let stored = check_files(&root.join("sessions.d"));
        for (key, value) in acked {
            let found = stored.get(&key).copied().unwrap_or(0);
            assert!(found >= value, "{key}: save {value} was acknowledged but the store holds {found}");
        }
        // A killed save may have landed without its ack; the next run counts from above it.
        highest = highest.max(stored.values().copied().max().unwrap_or(0));
    }
    let (_rt, store) = store(root);
    let listed = store.list().unwrap();
    assert!(
        !listed.is_empty() && listed.iter().all(|s| s.id.starts_with('k')),
        "no temp file is mistaken for a session"
    );
    let torn = temp_files(&root.join("sessions.d"));
    println!("{iterations} kills, {acknowledged} acknowledged saves, {torn} kills mid-write");
}

/// How many temporary files interrupted writes left behind in `dir`.
fn temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".warden-tmp.")).count()
}

/// Every visible session file parses and holds the key its name encodes;
/// returns each key's stored counter.
fn check_files(dir: &Path) -> HashMap<String, u64> {
    let mut counters = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return counters };
    for entry in entries {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with('.') {
            continue;
        }
        let Some(key::Decoded::Key(key)) = key::decode(&name) else { panic!("unexpected file {name}") };
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let session = framed::newest_json(&bytes)
            .and_then(StoredSession::from_bytes)
            .unwrap_or_else(|e| panic!("{name} is torn: {e}"));
        assert_eq!(session.key, key);
        counters.insert(key, session.extra["counter"].as_u64().unwrap());
    }
    counters
}

#[test]
fn concurrent_read_modify_write_loses_nothing_and_never_reads_stale() {
    const PROCESSES: usize = 4;
    const UPDATES: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let coord = tempfile::tempdir().unwrap();
    let coord_path = coord.path().to_str().unwrap().to_string();
    let children: Vec<Child> = (0..PROCESSES)
        .map(|id| writer(&["rmw", &coord_path, &id.to_string(), &UPDATES.to_string()], dir.path()))
        .collect();
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a writer failed ({status}); status 3 means it read a stale value");
    }
    let stored = check_files(&dir.path().join("sessions.d"));
    assert_eq!(stored["shared"], PROCESSES as u64 * UPDATES / 2, "no lost update on the shared session");
    for id in 0..PROCESSES {
        assert_eq!(stored[&format!("own-{id}")], UPDATES / 2, "no lost update on own-{id}");
    }
}

#[test]
fn a_save_the_file_system_refuses_midway_loses_nothing_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, storage) = store(dir.path());
    let before = crate::storage::session("big", 1);
    storage.save(&before, None).unwrap();
    // The child may write files of a few MiB (enough to instantiate plugins,
    // whose memory images count too); SIGXFSZ is ignored, so the 16 MiB
    // session's write fails with EFBIG half-way through the temp file.
    let stdout = save_big_under_file_size_limit(dir.path(), 8192, "big", 16384);
    assert!(
        stdout.contains("failed in `save`: I/O error") && stdout.contains("File too large"),
        "the save itself failed, and says why: {stdout}"
    );
    let after = storage.load("big").unwrap();
    assert_eq!(after.revision, 1, "the stored session is the one before the failed save");
    assert_eq!(after.turns.len(), 1);
    assert_eq!(after.turns[0].prompt, before.turns[0].prompt);
    assert_eq!(temp_files(&dir.path().join("sessions.d")), 0, "the partial temp file was removed");
}

#[test]
fn a_file_size_limit_too_low_for_plugin_memory_is_named_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = save_big_under_file_size_limit(dir.path(), 16, "small", 1);
    assert!(
        stdout.contains("instantiating the plugin") && stdout.contains("raise `ulimit -f`"),
        "the cause and the fix are named: {stdout}"
    );
}

/// Run `store-writer save-big` with files limited to `blocks` (`ulimit -f`)
/// and SIGXFSZ ignored, so an oversized write fails with EFBIG; its stdout.
fn save_big_under_file_size_limit(root: &Path, blocks: u32, key: &str, kib: u32) -> String {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(r#"trap "" XFSZ; ulimit -f {blocks}; exec "$0" "$@""#))
        .arg(WRITER)
        .arg("save-big")
        .arg(root)
        .arg(crate::cache_dir())
        .args([key, &kib.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}
