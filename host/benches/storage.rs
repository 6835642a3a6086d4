//! Session storage, side by side in one run: one read-modify-write update of
//! a session in stores of 100, 1 000 and 10 000 sessions with the directory
//! store (`storage-dir`) vs the monolithic file (`storage-json`); 8
//! concurrent writers vs 1 on the directory store; and listing 1 000 long
//! sessions written summary first (a prefix read each) vs in the earlier
//! layout (a whole-file read each); and a lookup by thread whose index file
//! holds the lines of many threads since moved on from, compacted or not.

#[path = "support/sessions.rs"]
mod sessions;
#[path = "support/storage_plugin.rs"]
mod storage_plugin;
#[path = "support/update.rs"]
mod update;

use std::path::Path;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value};
use sessions::stored;
use store_codec::key;
use store_codec::record::StoredTurn;
use update::update;
use warden::capabilities::store_fs::FsRoot;
use warden::contract::role::Role;
use warden::runtime::calls::StoragePlugin;
use warden::runtime::embedded::{default_plugin, legacy_storage};
use warden::runtime::{EngineLimits, Runtime};

const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn populate_dir(root: &Path, n: usize) {
    let dir = root.join("sessions.d");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let s = stored(i);
        std::fs::write(dir.join(key::file_name(&s.key).unwrap()), s.to_bytes()).unwrap();
    }
}

/// `n` sessions of `turns` turns with 1 KiB prompts and answers, summary
/// first, or in the earlier layout (transcript before the other fields).
fn populate_long(root: &Path, n: usize, turns: usize, summary_first: bool) {
    let dir = root.join("sessions.d");
    std::fs::create_dir_all(&dir).unwrap();
    let text = "y".repeat(1024);
    for i in 0..n {
        let mut s = stored(i);
        s.turns = (0..turns as u64)
            .map(|t| StoredTurn { prompt: text.clone(), response: text.clone(), timestamp_ms: t })
            .collect();
        let bytes = if summary_first { s.to_bytes() } else { serde_json::to_vec_pretty(&s).unwrap() };
        std::fs::write(dir.join(key::file_name(&s.key).unwrap()), bytes).unwrap();
    }
}

fn populate_json(root: &Path, n: usize) {
    let map: Map<String, Value> =
        (0..n).map(|i| (format!("session-{i}"), serde_json::to_value(stored(i)).unwrap())).collect();
    std::fs::write(root.join("sessions.json"), serde_json::to_vec(&Value::Object(map)).unwrap()).unwrap();
}

fn load(runtime: &Runtime, plugin: (&'static str, &'static [u8]), root: &Path) -> StoragePlugin {
    storage_plugin::load(runtime, plugin, Some(FsRoot::open(root, true, 1 << 30).unwrap()), None)
}

fn runtime() -> Runtime {
    Runtime::new(EngineLimits { concurrent_instances: 16, max_memory_bytes: 512 << 20 }, None).unwrap()
}

fn update_by_size(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("update-one-session");
    group.sample_size(20);
    for n in SIZES {
        let dir = tempfile::tempdir().unwrap();
        populate_dir(dir.path(), n);
        let store = load(&runtime, default_plugin(Role::StorageBackend), dir.path());
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("storage-dir", n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 7919) % n;
                update(&store, &format!("session-{i}"))
            })
        });
        let dir = tempfile::tempdir().unwrap();
        populate_json(dir.path(), n);
        let store = load(&runtime, legacy_storage(), dir.path());
        group.bench_with_input(BenchmarkId::new("storage-json", n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 7919) % n;
                update(&store, &format!("session-{i}"))
            })
        });
    }
    group.finish();
}

fn concurrent_writers(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    populate_dir(dir.path(), 1_000);
    let store = load(&runtime, default_plugin(Role::StorageBackend), dir.path());
    let mut group = c.benchmark_group("storage-dir-writers-per-update");
    group.sample_size(10);
    for writers in [1usize, 8] {
        group.bench_function(BenchmarkId::from_parameter(writers), |b| {
            b.iter_custom(|iters| {
                let per_writer = (iters as usize).div_ceil(writers);
                let started = Instant::now();
                std::thread::scope(|scope| {
                    for w in 0..writers {
                        let store = &store;
                        scope.spawn(move || {
                            for k in 0..per_writer {
                                update(store, &format!("session-{}", (w * 100 + k) % 1_000));
                            }
                        });
                    }
                });
                started.elapsed().div_f64((per_writer * writers) as f64 / iters as f64)
            })
        });
    }
    group.finish();
}

fn list_long_sessions(c: &mut Criterion) {
    const SESSIONS: usize = 1_000;
    const TURNS: usize = 40;
    let runtime = runtime();
    let mut group = c.benchmark_group("storage-dir-list-1000-sessions-of-80-KiB");
    group.sample_size(10);
    for (name, summary_first) in [("summary-first", true), ("whole-file", false)] {
        let dir = tempfile::tempdir().unwrap();
        populate_long(dir.path(), SESSIONS, TURNS, summary_first);
        let store = load(&runtime, default_plugin(Role::StorageBackend), dir.path());
        group.bench_function(name, |b| b.iter(|| assert_eq!(store.list().unwrap().len(), SESSIONS)));
    }
    group.finish();
}

/// A save of a session of 40 turns (80 KiB of JSON): what the save reads
/// of the stored one. With `WARDEN_BASELINE_PLUGINS=<dir>` holding a
/// `storage_dir.wasm` built from an earlier commit, it runs beside it.
fn save_long_session(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("storage-dir-save-a-session-of-80-KiB");
    group.sample_size(20);
    let mut plugins = vec![("current", default_plugin(Role::StorageBackend))];
    if let Some(dir) = std::env::var_os("WARDEN_BASELINE_PLUGINS") {
        let wasm: &'static [u8] = Vec::leak(std::fs::read(Path::new(&dir).join("storage_dir.wasm")).unwrap());
        plugins.push(("baseline", ("storage_dir", wasm)));
    }
    for (name, plugin) in plugins {
        let dir = tempfile::tempdir().unwrap();
        populate_long(dir.path(), 1, 40, true);
        let store = load(&runtime, plugin, dir.path());
        let mut session = store.load("session-0").unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                session.last_accessed_ms += 1;
                session.revision = store.save(&session, Some(session.revision)).unwrap();
            })
        });
    }
    group.finish();
}

/// The thread index file (`index/threads/<bb>`) holding `thread`'s line.
fn thread_index_file(root: &Path, thread: &str) -> std::path::PathBuf {
    let name = key::file_name(thread).unwrap();
    let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    root.join(format!("index/threads/{:02x}", hash % 256))
}

/// `find-by-thread` of one session whose thread index file also holds
/// `kib` KiB of lines of threads moved on from (~90 bytes each, as UUID
/// threads are written): before compaction every lookup read them all; a
/// file whose header says it was compacted at more than half its length is
/// read as it is, which is what every lookup did before compaction existed.
fn find_by_thread_after_many_threads(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("storage-dir-find-by-thread");
    group.sample_size(20);
    let cases = [
        ("360-KiB-index-file-read-whole-as-before", 360, Some(200 << 10)),
        ("60-KiB-index-file-under-the-compaction-floor", 60, None),
        ("360-KiB-index-file-compacted", 360, None),
    ];
    for (name, kib, header) in cases {
        let dir = tempfile::tempdir().unwrap();
        populate_dir(dir.path(), 1);
        let store = load(&runtime, default_plugin(Role::StorageBackend), dir.path());
        let thread = stored(0).agent_thread_id.unwrap();
        assert!(store.find_by_thread(&thread).unwrap().is_some(), "the index is built");
        let file = thread_index_file(dir.path(), &thread);
        let mut bytes =
            header.map_or_else(Vec::new, |length: usize| format!("# compacted {length}\n").into_bytes());
        bytes.extend(std::fs::read(&file).unwrap());
        for j in 0.. {
            if bytes.len() >= kib << 10 {
                break;
            }
            let gone = key::file_name(&format!("019a0000-0000-7000-8000-{j:012}-gone")).unwrap();
            bytes.extend(format!("{gone} session-0.json\n").into_bytes());
        }
        std::fs::write(&file, bytes).unwrap();
        // The first lookup compacts what it may.
        let started = Instant::now();
        assert!(store.find_by_thread(&thread).unwrap().is_some());
        let first = started.elapsed();
        let length = std::fs::metadata(&file).unwrap().len();
        println!("{name}: the first lookup took {first:?}; the index file is then {length} bytes");
        group.bench_function(name, |b| b.iter(|| assert!(store.find_by_thread(&thread).unwrap().is_some())));
    }
    group.finish();
}

criterion_group!(
    benches,
    update_by_size,
    concurrent_writers,
    list_long_sessions,
    save_long_session,
    find_by_thread_after_many_threads
);
criterion_main!(benches);
