//! The directory store's indexes (thread → session, recency, count) through
//! its plugin and under real processes: writers SIGKILLed at random moments
//! never leave a thread pointing at the wrong session, a deleted or
//! corrupted index is rebuilt, hostile index lines escape nowhere and
//! mislead nobody, and pages cover every session once, most recent first.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use store_codec::record::StoredSession;
use store_codec::{framed, key};
use warden::contract::bindings::storage::exports::warden::plugin::storage_catalog::{
    SessionFilter, SessionPage,
};
use warden::runtime::calls::StoragePlugin;
use warden::runtime::loaded::CallOptions;
use warden::types::PluginError;

use crate::storage::{session, store};
use crate::storage_processes::{Lcg, writer};

fn no_filter() -> SessionFilter {
    SessionFilter { cwd: None, model: None, key_contains: None }
}

fn page(store: &StoragePlugin, filter: &SessionFilter, cursor: Option<&str>, limit: u32) -> SessionPage {
    store.with(&CallOptions::default()).list_page(filter, cursor, limit).unwrap()
}

/// Every session a filter shows, page by page; also how many pages it took.
fn all_pages(store: &StoragePlugin, filter: &SessionFilter, limit: u32) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let page = page(store, filter, cursor.as_deref(), limit);
        assert!(page.sessions.len() <= limit as usize);
        pages += 1;
        ids.extend(page.sessions.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (ids, pages),
        }
        assert!(pages < 10_000, "the listing never ends");
    }
}

fn count(store: &StoragePlugin) -> u64 {
    store.with(&CallOptions::default()).count().unwrap()
}

fn least_recent(store: &StoragePlugin, limit: u32) -> Vec<String> {
    store.with(&CallOptions::default()).least_recent(limit).unwrap().into_iter().map(|s| s.id).collect()
}

/// Sessions whose last use spans several hours, so they land in many windows and groups.
fn spread_store(store: &StoragePlugin, n: u64) -> Vec<String> {
    let base = 1_700_000_000_000u64;
    let mut newest_first = Vec::new();
    for i in 0..n {
        let mut s = session(&format!("s{i:03}"), base + i * 997_000);
        s.cwd = Some(if i % 3 == 0 { "/a".into() } else { "/b".into() });
        store.save(&s, None).unwrap();
        newest_first.insert(0, s.id);
    }
    newest_first
}

#[test]
fn pages_show_every_session_once_most_recent_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    let expected = spread_store(&store, 120);
    let (ids, pages) = all_pages(&store, &no_filter(), 7);
    assert_eq!(ids, expected);
    assert!(pages >= 120 / 7, "{pages} pages");
    // Two sessions used in the same millisecond are ordered by key, across a page break.
    let mut tie = session("tie-b", 1_800_000_000_000);
    store.save(&tie, None).unwrap();
    tie.id = "tie-a".into();
    store.save(&tie, None).unwrap();
    let first = page(&store, &no_filter(), None, 1);
    assert_eq!(first.sessions[0].id, "tie-a");
    let second = page(&store, &no_filter(), first.next_cursor.as_deref(), 1);
    assert_eq!(second.sessions[0].id, "tie-b");

    let only_a = SessionFilter { cwd: Some("/a".into()), ..no_filter() };
    let (ids, _) = all_pages(&store, &only_a, 5);
    let want: Vec<String> =
        expected.iter().filter(|id| id[1..].parse::<u64>().unwrap() % 3 == 0).cloned().collect();
    assert_eq!(ids, want);
    let text = SessionFilter { key_contains: Some("s11".into()), ..no_filter() };
    assert_eq!(
        all_pages(&store, &text, 50).0,
        ["s119", "s118", "s117", "s116", "s115", "s114", "s113", "s112", "s111", "s110"]
    );
    let model = SessionFilter { model: Some("other".into()), ..no_filter() };
    assert!(all_pages(&store, &model, 50).0.is_empty());

    for foreign in ["", "42", "v1.1", "v1.abc.00", "../../etc/passwd"] {
        let err = store.with(&CallOptions::default()).list_page(&no_filter(), Some(foreign), 5).unwrap_err();
        match err.plugin_error() {
            Some(PluginError::Invalid(message)) => assert!(message.contains("without a cursor"), "{message}"),
            other => panic!("{foreign:?}: {other:?}"),
        }
    }
}

#[test]
fn count_and_least_recent_follow_saves_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    assert_eq!((count(&store), least_recent(&store, 3)), (0, Vec::<String>::new()));
    let newest_first = spread_store(&store, 40);
    assert_eq!(count(&store), 40);
    assert_eq!(least_recent(&store, 3), ["s000", "s001", "s002"]);
    // Using the oldest makes it the most recent; saving again does not count twice.
    store.save(&session("s000", 1_900_000_000_000), None).unwrap();
    assert_eq!(count(&store), 40);
    assert_eq!(least_recent(&store, 2), ["s001", "s002"]);
    assert_eq!(page(&store, &no_filter(), None, 1).sessions[0].id, "s000");
    for id in &newest_first[..10] {
        assert!(store.delete(id).unwrap());
    }
    assert!(!store.delete("s039").unwrap());
    assert_eq!(count(&store), 30);
    assert_eq!(all_pages(&store, &no_filter(), 100).0.len(), 30);
    // Far more saves and deletes than the count file holds before it is folded.
    for round in 0..600u64 {
        let id = format!("churn-{}", round % 7);
        store.save(&session(&id, 2_000_000_000_000 + round), None).unwrap();
        if round % 2 == 1 {
            store.delete(&id).unwrap();
        }
    }
    let on_disk = std::fs::read_dir(dir.path().join("sessions.d")).unwrap().count() as u64;
    assert_eq!(count(&store), on_disk);
}

#[test]
fn a_deleted_or_corrupted_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    let expected = spread_store(&store, 30);
    let index = dir.path().join("index");
    std::fs::remove_dir_all(&index).unwrap();
    assert_eq!(store.find_by_thread("thread-s007").unwrap().unwrap().id, "s007");
    assert_eq!(count(&store), 30);
    assert_eq!(all_pages(&store, &no_filter(), 8).0, expected);

    // Garbage in every index file: lines are skipped, answers stay right.
    let mut files = Vec::new();
    collect_files(&index, &mut files);
    assert!(files.len() > 30, "{} index files", files.len());
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap();
        bytes.extend_from_slice(b"\xff\xfe garbage\n\0\0\0\n");
        bytes.splice(0..0, b"../../etc/passwd\nnot a session\n".iter().copied());
        std::fs::write(file, bytes).unwrap();
    }
    assert_eq!(store.find_by_thread("thread-s007").unwrap().unwrap().id, "s007");
    assert_eq!(all_pages(&store, &no_filter(), 8).0, expected);
    assert_eq!(count(&store), 30, "a garbled count is recounted by a rebuild, not guessed");

    // A thread's lines removed hide the thread until `reindex` rebuilds them.
    rewrite_thread_lines(&index.join("threads"), |line| !line.starts_with(&thread_name("thread-s008")));
    assert!(store.find_by_thread("thread-s008").unwrap().is_none());
    assert_eq!(store.with(&CallOptions::default()).reindex().unwrap(), 30);
    assert_eq!(store.find_by_thread("thread-s008").unwrap().unwrap().id, "s008");

    // Reindexing again adds no thread line a file already holds.
    let thread_lines = || -> Vec<String> {
        let mut lines: Vec<String> = std::fs::read_dir(index.join("threads"))
            .unwrap()
            .flat_map(|e| {
                String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap())
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|l| l.ends_with(".json") && l.starts_with("thread-s"))
            .collect();
        lines.sort();
        lines
    };
    let before = thread_lines();
    assert_eq!(before.len(), 30, "one line for each session's thread: {before:?}");
    store.with(&CallOptions::default()).reindex().unwrap();
    store.with(&CallOptions::default()).reindex().unwrap();
    assert_eq!(thread_lines(), before, "reindexing twice more added no line");
}

/// How the thread index writes `thread`: as a file name.
fn thread_name(thread: &str) -> String {
    key::file_name(thread).unwrap() + " "
}

/// Keep the lines `keep` accepts in every thread index file.
fn rewrite_thread_lines(threads: &Path, keep: impl Fn(&str) -> bool) {
    for entry in std::fs::read_dir(threads).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let kept: String = text.lines().filter(|l| keep(l)).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, kept).unwrap();
    }
}

/// Append `lines` to every thread index file (whichever holds a thread, they reach it).
fn append_to_thread_index(threads: &Path, lines: &str) {
    let files: Vec<_> = std::fs::read_dir(threads).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 256, "the thread index is 256 files");
    for path in files {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(lines.as_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn hostile_index_lines_escape_nowhere_and_mislead_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    store.save(&session("victim", 1_700_000_000_000), None).unwrap();
    store.save(&session("other", 1_700_001_000_000), None).unwrap();
    assert_eq!(count(&store), 2, "the index is built");
    let outside = dir.path().join("outside.json");
    std::fs::write(&outside, std::fs::read(dir.path().join("sessions.d/victim.json")).unwrap()).unwrap();
    let threads = dir.path().join("index/threads");
    // The thread of `victim` claimed by lines naming a path, a missing session,
    // a session holding another thread, and the file outside the store.
    rewrite_thread_lines(&threads, |_| false);
    let victim = thread_name("thread-victim");
    let claims: String =
        ["../outside.json", "/etc/passwd", "missing.json", "other.json", "%2E%2E%2Foutside.json"]
            .iter()
            .map(|name| format!("{victim}{name}\n"))
            .chain(["../outside.json victim.json\n".to_string(), "thread-victim.json\n".to_string()])
            .collect();
    append_to_thread_index(&threads, &claims);
    assert!(store.find_by_thread("thread-victim").unwrap().is_none(), "no line names the right session");
    // A thread nobody holds, pointed at a real session.
    append_to_thread_index(&threads, &format!("{}victim.json\n", thread_name("thread-ghost")));
    assert!(store.find_by_thread("thread-ghost").unwrap().is_none());
    // Recency lines naming sessions in the wrong window or outside the store add nothing.
    let window = dir.path().join("index/recent/000000/00000000");
    std::fs::create_dir_all(window.parent().unwrap()).unwrap();
    std::fs::write(&window, "victim.json\n../outside.json\nghost.json\n").unwrap();
    let (ids, _) = all_pages(&store, &no_filter(), 10);
    assert_eq!(ids, ["other", "victim"]);
    assert_eq!(least_recent(&store, 5), ["victim", "other"]);
    assert!(outside.exists(), "nothing outside the store was touched");
}

/// Writers killed at random moments of saves that move threads between
/// sessions: after every kill, every session's thread leads to it, and no
/// thread leads anywhere but to the session that holds it.
#[test]
fn sigkilled_writers_never_misdirect_a_thread() {
    let iterations: u64 =
        std::env::var("WARDEN_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_rt, store) = store(root);
    assert_eq!(count(&store), 0, "the index is built before the writers run");
    let mut rng = Lcg(0x1dea);
    let mut highest = 0u64;
    for _ in 0..iterations {
        highest = kill_a_thread_writer(root, &store, highest, |lines| {
            for _ in 0..rng.below(5) {
                lines.next().expect("the writer exited before it was killed").unwrap();
            }
            std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        });
    }
    let stored = sessions_on_disk(&root.join("sessions.d"));
    let mut newest_first: Vec<&StoredSession> = stored.values().collect();
    newest_first.sort_by(|a, b| b.last_accessed_ms.cmp(&a.last_accessed_ms).then_with(|| a.key.cmp(&b.key)));
    let expected: Vec<String> = newest_first.iter().map(|s| s.key.clone()).collect();
    assert_eq!(all_pages(&store, &no_filter(), 4).0, expected);
    // A kill between a new session's write and its count leaves the count
    // one short; a rebuild recounts.
    assert!(count(&store) as usize <= stored.len());
    assert_eq!(store.with(&CallOptions::default()).reindex().unwrap() as usize, stored.len());
    assert_eq!(count(&store) as usize, stored.len());
    println!("{iterations} kills over {highest} saves; {} sessions", stored.len());
}

/// A `thread-loop` writer whose threads go on from `t-<highest>`, SIGKILLed
/// once `meanwhile` (given its acknowledgements) returns; then every stored
/// session's thread must lead to it. Returns the highest thread acknowledged or stored.
fn kill_a_thread_writer(
    root: &Path,
    store: &StoragePlugin,
    mut highest: u64,
    meanwhile: impl FnOnce(&mut std::io::Lines<BufReader<std::process::ChildStdout>>),
) -> u64 {
    let mut child = writer(&["thread-loop", "6", &highest.to_string()], root);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    meanwhile(&mut lines);
    child.kill().unwrap();
    child.wait().unwrap();
    for line in lines {
        let value: u64 = line.unwrap().rsplit(' ').next().unwrap().parse().unwrap();
        highest = highest.max(value);
    }
    let stored = sessions_on_disk(&root.join("sessions.d"));
    let on_disk = stored.values().filter_map(|s| s.agent_thread_id.as_ref()?[2..].parse().ok()).max();
    highest = highest.max(on_disk.unwrap_or(0));
    check_threads(store, &stored, highest);
    highest
}

/// Each stored session's thread leads to it; every other thread up to
/// `t-<highest>` leads nowhere or to the session holding it.
fn check_threads(store: &StoragePlugin, stored: &BTreeMap<String, StoredSession>, highest: u64) {
    let held: HashSet<String> = stored.values().filter_map(|s| s.agent_thread_id.clone()).collect();
    for (key, session) in stored {
        let thread = session.agent_thread_id.as_ref().unwrap();
        let found = store.find_by_thread(thread).unwrap();
        assert_eq!(found.map(|s| s.id).as_deref(), Some(key.as_str()), "thread {thread} of {key}");
    }
    for value in highest.saturating_sub(20)..=highest {
        let thread = format!("t-{value}");
        match store.find_by_thread(&thread).unwrap() {
            None => assert!(!held.contains(&thread), "{thread} is held but not found"),
            Some(found) => assert_eq!(found.agent_thread_id.as_deref(), Some(thread.as_str())),
        }
    }
}

fn sessions_on_disk(dir: &Path) -> BTreeMap<String, StoredSession> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(key::Decoded::Key(key)) = key::decode(&name) {
            let session = StoredSession::from_bytes(
                framed::newest_json(&std::fs::read(dir.join(&name)).unwrap()).unwrap(),
            )
            .unwrap();
            out.insert(key, session);
        }
    }
    out
}

#[test]
fn the_operator_cli_pages_and_reindexes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let (_rt, plugin) = store(&state);
    let expected = spread_store(&plugin, 5);
    let warden = |args: &[&str]| {
        let output = std::process::Command::new(warden_tests::warden_bin())
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    let ids = |json: &str| -> Vec<String> {
        let items: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        items.iter().map(|item| item["id"].as_str().unwrap().to_string()).collect()
    };
    let (first, note) = warden(&["sessions", "list", "--json", "--limit", "2"]);
    assert_eq!(ids(&first), expected[..2]);
    let cursor = note.trim().rsplit(' ').next().unwrap();
    assert!(note.contains("--after"), "{note}");
    let (rest, note) = warden(&["sessions", "list", "--json", "--after", cursor]);
    assert_eq!(ids(&rest), expected[2..]);
    assert!(!note.contains("--after"), "the listing ended: {note}");
    let (all, _) = warden(&["sessions", "list"]);
    assert_eq!(all.lines().count(), 5);
    assert!(all.lines().next().unwrap().starts_with("s004\t"), "{all}");
    std::fs::remove_dir_all(state.join("index")).unwrap();
    assert_eq!(warden(&["sessions", "reindex"]).0.trim(), "indexed 5 sessions");
    let (empty, _) = warden(&["sessions", "list", "--json", "--limit", "0"]);
    assert_eq!(ids(&empty), Vec::<String>::new());
}

#[test]
fn sessions_migrated_into_an_indexed_store_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    spread_store(&store, 3);
    assert_eq!(count(&store), 3, "the index is built");
    let legacy = serde_json::json!({
        "imported": {"lastAccessedAt": 1_600_000_000_000u64, "threadId": "thread-imported", "cwd": "/w"},
        "s001": {"lastAccessedAt": 1u64, "threadId": "thread-older"},
    });
    std::fs::write(dir.path().join("sessions.json"), legacy.to_string()).unwrap();
    let options = warden::contract::bindings::storage::exports::warden::plugin::storage::MigrateOptions {
        source: "sessions.json".into(),
        merge_case_variants: false,
    };
    let report = store.migrate(&options).unwrap();
    assert_eq!((report.imported, report.kept_existing), (1, 1), "{report:?}");
    assert_eq!(store.find_by_thread("thread-imported").unwrap().unwrap().id, "imported");
    assert!(store.find_by_thread("thread-older").unwrap().is_none(), "the newer s001 was kept");
    assert_eq!(count(&store), 4);
    assert_eq!(least_recent(&store, 1), ["imported"]);
}

#[test]
fn a_store_indexed_one_file_per_thread_is_reindexed_when_first_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    spread_store(&store, 4);
    assert_eq!(count(&store), 4, "the index is built");
    // The index as the first layout left it: one file per thread, naming its sessions.
    let index = dir.path().join("index");
    let threads = index.join("threads");
    std::fs::remove_dir_all(&threads).unwrap();
    std::fs::create_dir(&threads).unwrap();
    for i in 0..4 {
        let file = threads.join(key::file_name(&format!("thread-s{i:03}")).unwrap());
        std::fs::write(file, format!("s{i:03}.json\n")).unwrap();
    }
    std::fs::write(index.join("ready"), "1\n").unwrap();

    assert_eq!(store.find_by_thread("thread-s002").unwrap().unwrap().id, "s002");
    assert_eq!(std::fs::read(index.join("ready")).unwrap(), b"2\n", "rebuilt in the current layout");
    let names: HashSet<String> =
        std::fs::read_dir(&threads).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 256, "only the 256 thread files remain: {names:?}");
    assert!(names.iter().all(|n| n.len() == 2), "{names:?}");
    for i in 0..4 {
        let thread = format!("thread-s{i:03}");
        assert_eq!(store.find_by_thread(&thread).unwrap().unwrap().id, format!("s{i:03}"));
    }
}

/// The thread index file (`index/threads/<bb>`) holding `thread`'s lines.
fn bucket_of(threads: &Path, thread: &str) -> std::path::PathBuf {
    let name = key::file_name(thread).unwrap();
    let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    threads.join(format!("{:02x}", hash % 256))
}

/// Append lines of threads nobody holds, naming session `s000`, until `file` is over 64 KiB.
fn pad_with_stale_lines(file: &Path, tag: &str) {
    let mut bytes = std::fs::read(file).unwrap();
    let mut j = 0;
    while bytes.len() <= 70 << 10 {
        bytes.extend_from_slice(format!("{}s000.json\n", thread_name(&format!("gone-{tag}-{j}"))).as_bytes());
        j += 1;
    }
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_long_thread_index_file_is_compacted_to_the_threads_still_held() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    let threads = dir.path().join("index/threads");
    for i in 0..6 {
        let mut s = session(&format!("s{i:03}"), 1_700_000_000_000 + i);
        store.save(&s, None).unwrap();
        // Each session moves on to another thread: its first thread's line goes stale.
        s.agent_thread_id = Some(format!("moved-s{i:03}"));
        s.revision = 1;
        store.save(&s, Some(1)).unwrap();
    }
    assert_eq!(count(&store), 6, "the index is built");
    let file = bucket_of(&threads, "moved-s002");
    pad_with_stale_lines(&file, "a");
    std::fs::write(
        &file,
        [std::fs::read(&file).unwrap(), format!("{}s001.json\n", thread_name("thread-s001")).into_bytes()]
            .concat(),
    )
    .unwrap();

    assert_eq!(store.find_by_thread("moved-s002").unwrap().unwrap().id, "s002");
    let text = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    assert_eq!(header, format!("# compacted {}", body.len()), "{text}");
    let held: Vec<String> = (0..6).map(|i| thread_name(&format!("moved-s{i:03}"))).collect();
    assert!(body.lines().any(|l| l.starts_with(&held[2])), "the thread looked up stays: {body}");
    for line in body.lines() {
        assert!(
            held.iter().any(|h| line.starts_with(h.as_str())),
            "a line of a thread no session holds: {line}"
        );
    }
    for i in 0..6 {
        let found = store.find_by_thread(&format!("moved-s{i:03}")).unwrap().map(|s| s.id);
        assert_eq!(
            found.as_deref(),
            Some(format!("s{i:03}").as_str()),
            "every thread still leads to its session"
        );
        assert!(
            store.find_by_thread(&format!("thread-s{i:03}")).unwrap().is_none(),
            "a thread moved on from leads nowhere"
        );
    }

    // Compacted and still short: read as it is, not rewritten.
    let inode = |path: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
    let before = inode(&file);
    assert!(store.find_by_thread("moved-s002").unwrap().is_some());
    assert_eq!(inode(&file), before, "a compacted file under 64 KiB is not rewritten");
    // Grown past 64 KiB again: compacted again.
    pad_with_stale_lines(&file, "b");
    assert!(store.find_by_thread("moved-s002").unwrap().is_some());
    assert!(std::fs::metadata(&file).unwrap().len() < 4096, "compacted again once it grew");
    // A new thread's line appended after the compaction is found.
    let mut s = store.load("s002").unwrap();
    s.agent_thread_id = Some("again-s002".into());
    store.save(&s, Some(s.revision)).unwrap();
    assert_eq!(store.find_by_thread("again-s002").unwrap().unwrap().id, "s002");
}

/// Compactions run while writers move threads and are SIGKILLed at random
/// moments: no thread a session holds is ever lost from the index.
#[test]
fn compactions_beside_sigkilled_writers_lose_no_thread() {
    let iterations: u64 =
        std::env::var("WARDEN_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100) / 10;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_rt, store) = store(root);
    assert_eq!(count(&store), 0, "the index is built before the writers run");
    let threads = root.join("index/threads");
    let mut rng = Lcg(0xc0de);
    let mut highest = 0u64;
    let mut compacted = 0;
    for iteration in 0..iterations.max(3) {
        // The files the writer's next threads land in, each over 64 KiB.
        let ahead: Vec<String> = (highest + 1..=highest + 30).map(|v| format!("t-{v}")).collect();
        let files: HashSet<std::path::PathBuf> = ahead.iter().map(|t| bucket_of(&threads, t)).collect();
        for file in &files {
            pad_with_stale_lines(file, &iteration.to_string());
        }
        // Lookups (each compacting the file it reads) while the writer saves.
        let lookups = 5 + rng.below(20) as usize;
        highest = kill_a_thread_writer(root, &store, highest, |_| {
            for thread in ahead.iter().take(lookups) {
                store.find_by_thread(thread).unwrap();
            }
        });
        compacted += files.iter().filter(|f| std::fs::read(f).unwrap().starts_with(b"# compacted")).count();
    }
    assert!(compacted > 0, "no file was compacted");
    println!("{compacted} files compacted beside writers, over {highest} saves");
}

/// The save lock (`locks/<nn>`) a save of session file `name` takes.
fn save_lock_of(root: &Path, name: &str) -> std::path::PathBuf {
    let stripe =
        name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) % 64;
    root.join(format!("locks/{stripe:02}"))
}

/// The race compaction must not lose: a save has appended its session's new
/// thread line and not yet written the session when a lookup compacts that
/// file. The compaction waits for the save's lock, so it keeps the line.
#[test]
fn a_compaction_keeps_the_line_of_a_save_still_writing_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_rt, store) = store(root);
    store.save(&session("s000", 1_700_000_000_000), None).unwrap();
    let file = bucket_of(&root.join("index/threads"), "moved-s000");
    pad_with_stale_lines(&file, "a");

    // The save's first half, as another process's save does it: its lock, then its line.
    let lock = std::fs::File::open(save_lock_of(root, "s000.json")).unwrap();
    lock.lock().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(format!("{}s000.json\n", thread_name("moved-s000")).as_bytes());
    std::fs::write(&file, bytes).unwrap();
    std::thread::scope(|scope| {
        let lookup = scope.spawn(|| store.find_by_thread("moved-s000").unwrap());
        // Time for the lookup to reach its compaction, which waits for the lock.
        std::thread::sleep(Duration::from_millis(300));
        // The save's second half: the session, holding its new thread.
        let mut stored = sessions_on_disk(&root.join("sessions.d")).remove("s000").unwrap();
        stored.agent_thread_id = Some("moved-s000".into());
        stored.revision += 1;
        let temp = root.join("sessions.d/.s000.tmp");
        std::fs::write(&temp, framed::frame(&stored.to_bytes())).unwrap();
        std::fs::rename(&temp, root.join("sessions.d/s000.json")).unwrap();
        lock.unlock().unwrap();
        lookup.join().unwrap();
    });
    assert!(std::fs::read(&file).unwrap().starts_with(b"# compacted"), "the lookup compacted the file");
    assert_eq!(store.find_by_thread("moved-s000").unwrap().unwrap().id, "s000", "the save's line was kept");
}

/// Hostile thread index contents meet compaction: a header claiming an
/// absurd compacted length, and lines naming paths outside the store.
#[test]
fn compaction_of_a_hostile_thread_index_file_escapes_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_rt, store) = store(root);
    store.save(&session("s000", 1_700_000_000_000), None).unwrap();
    let file = bucket_of(&root.join("index/threads"), "thread-s000");
    let outside = root.join("outside.json");
    std::fs::write(&outside, std::fs::read(root.join("sessions.d/s000.json")).unwrap()).unwrap();

    // A header no compaction wrote, claiming the most a length can be in the
    // plugin (32-bit): doubling it must not overflow; the file is never compacted.
    let held = std::fs::read(&file).unwrap();
    std::fs::write(&file, [format!("# compacted {}\n", u32::MAX).into_bytes(), held.clone()].concat())
        .unwrap();
    pad_with_stale_lines(&file, "a");
    let padded = std::fs::read(&file).unwrap();
    assert_eq!(store.find_by_thread("thread-s000").unwrap().unwrap().id, "s000");
    assert!(
        std::fs::read(&file).unwrap() == padded,
        "a file claiming to be compacted long enough is left as it is"
    );

    // Lines naming files outside the store, and a header that does not parse: dropped by the compaction.
    let mut hostile = b"# compacted not-a-number\n".to_vec();
    hostile.extend_from_slice(&held);
    let thread = thread_name("thread-s000");
    for name in ["../outside.json", "/etc/passwd", "%2E%2E%2Foutside.json", "missing.json"] {
        hostile.extend_from_slice(format!("{thread}{name}\n").as_bytes());
    }
    std::fs::write(&file, hostile).unwrap();
    pad_with_stale_lines(&file, "b");
    assert_eq!(store.find_by_thread("thread-s000").unwrap().unwrap().id, "s000");
    let text = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    assert_eq!(header, format!("# compacted {}", body.len()));
    assert_eq!(body, format!("{thread}s000.json\n"), "only the line of the thread its session holds stays");
    assert!(outside.exists(), "nothing outside the store was touched");
}
