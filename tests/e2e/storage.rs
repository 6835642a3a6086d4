//! The directory-per-session store (`storage-dir`) through its plugin:
//! round trips, revisions, quarantine of corrupt files, hostile keys and
//! hostile layouts.

use std::os::unix::fs::symlink;
use std::path::Path;

use store_codec::{framed, key};
use warden::config::Config;
use warden::runtime::calls::StoragePlugin;
use warden::sessions::new_session;
use warden::types::{PluginError, Session, Turn};

pub fn store(root: &Path) -> (warden::runtime::Runtime, StoragePlugin) {
    let config = Config { cache_dir: Some(crate::cache_dir()), ..Config::default() };
    let runtime = warden::plugins::runtime(&config).unwrap();
    let storage = warden::plugins::load_storage_at(&runtime, &config, root).unwrap();
    (runtime, storage)
}

pub fn session(id: &str, last_accessed_ms: u64) -> Session {
    Session {
        turns: vec![Turn { prompt: "p".into(), response: "r".into(), timestamp_ms: 5 }],
        agent_thread_id: Some(format!("thread-{id}")),
        model: Some("m".into()),
        cwd: Some("/w".into()),
        extra_json: r#"{"color":"blue","nested":{"a":[1,2]}}"#.into(),
        ..new_session(id, last_accessed_ms)
    }
}

fn error_of<T: std::fmt::Debug>(result: Result<T, warden::runtime::loaded::CallError>) -> PluginError {
    let err = result.expect_err("expected an error");
    err.plugin_error().cloned().unwrap_or_else(|| panic!("expected a plugin error, got {err}"))
}

#[test]
fn round_trip_revisions_and_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    assert_eq!(store.save(&session("a", 10), Some(0)).unwrap(), 1);
    let loaded = store.load("a").unwrap();
    assert_eq!(loaded.revision, 1);
    assert_eq!(loaded.extra_json, r#"{"color":"blue","nested":{"a":[1,2]}}"#);
    assert_eq!(loaded.turns.len(), 1);
    assert!(matches!(error_of(store.save(&session("a", 11), Some(0))), PluginError::Conflict(_)));
    assert_eq!(store.save(&session("a", 11), Some(1)).unwrap(), 2);
    assert_eq!(store.save(&session("b", 12), None).unwrap(), 1);
    let mut ids: Vec<String> = store.list().unwrap().into_iter().map(|s| s.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(store.find_by_thread("thread-b").unwrap().unwrap().id, "b");
    assert!(store.find_by_thread("nope").unwrap().is_none());
    assert!(store.delete("a").unwrap());
    assert!(!store.delete("a").unwrap());
    assert!(matches!(error_of(store.load("a")), PluginError::NotFound(_)));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("sessions.d")).unwrap().collect();
    assert_eq!(files.len(), 1, "a delete removes exactly one file and a save writes one");
}

#[test]
fn a_corrupt_file_is_quarantined_and_the_rest_keep_loading() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    for id in ["good", "truncated", "notjson", "wrongshape", "empty"] {
        store.save(&session(id, 1), None).unwrap();
    }
    let d = dir.path().join("sessions.d");
    let full = std::fs::read(d.join("truncated.json")).unwrap();
    std::fs::write(d.join("truncated.json"), &full[..full.len() / 2]).unwrap();
    std::fs::write(d.join("notjson.json"), "hello").unwrap();
    std::fs::write(d.join("wrongshape.json"), "[1,2,3]").unwrap();
    std::fs::write(d.join("empty.json"), "").unwrap();
    let listed: Vec<String> = store.list().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed, ["good"]);
    for id in ["truncated", "notjson", "wrongshape", "empty"] {
        match error_of(store.load(id)) {
            PluginError::Corrupt(message) => assert!(message.contains("moved to"), "{message}"),
            other => panic!("{id}: {other:?}"),
        }
        assert!(d.join(format!("{id}.json.corrupt.1")).is_file(), "{id} was quarantined");
        assert!(matches!(error_of(store.load(id)), PluginError::NotFound(_)));
    }
    assert_eq!(store.load("good").unwrap().id, "good");
}

/// Keys an attacker (or an unlucky user) might choose. Each is stored and
/// read back as itself, in a file inside `sessions.d`, or refused clearly.
const HOSTILE_KEYS: &[&str] = &[
    "../escape",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "C:\\x",
    "..",
    ".",
    ".hidden",
    "trailing.",
    "trailing ",
    " leading",
    "con",
    "CON",
    "nul.txt",
    "com1",
    "LPT9",
    "aux.json",
    "prn",
    "a:b",
    "a*b",
    "a?b",
    "a\"b",
    "a<b>c",
    "a|b",
    "100%",
    "%2E%2E",
    "__proto__",
    "constructor",
    "Foo",
    "foo",
    "FOO",
    "ünïcödé",
    "emoji 🎉",
    "tab\there",
    "new\nline",
    "nul\0byte",
    "~hash-looking",
];

#[test]
fn hostile_keys_stay_inside_the_store_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let (_rt, store) = store(&root);
    let long = "x".repeat(1000);
    let mut keys: Vec<&str> = HOSTILE_KEYS.to_vec();
    keys.push(&long);
    for (i, key) in keys.iter().enumerate() {
        store.save(&session(key, i as u64), None).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(store.load(key).unwrap().id, *key, "{key:?} reads back as itself");
    }
    assert!(matches!(error_of(store.save(&session("", 1), None)), PluginError::Invalid(_)));
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), keys.len());
    let names: Vec<String> = std::fs::read_dir(root.join("sessions.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut lowered: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    lowered.sort();
    lowered.dedup();
    assert_eq!(lowered.len(), names.len(), "no two keys share a name on a case-insensitive file system");
    assert!(names.iter().all(|n| n.len() < 255 && !n.starts_with('.') && !n.contains(['/', '\\', ':'])));
    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["root"], "nothing was written beside the root");
    assert!(key::decode(&key::file_name("Foo").unwrap()).is_some());
}

#[test]
fn hostile_layouts_give_clear_errors_and_escape_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim.json"), "untouched").unwrap();
    let (_rt, store) = store(&root);

    // sessions.d is a symlink to a directory outside the root.
    symlink(&outside, root.join("sessions.d")).unwrap();
    assert!(matches!(error_of(store.save(&session("victim", 1), None)), PluginError::Denied(_)));
    assert!(matches!(error_of(store.load("victim")), PluginError::Denied(_)));
    assert!(matches!(error_of(store.list()), PluginError::Denied(_)));
    assert_eq!(std::fs::read_to_string(outside.join("victim.json")).unwrap(), "untouched");
    std::fs::remove_file(root.join("sessions.d")).unwrap();

    // A session file that is a symlink, pointing outside and inside.
    std::fs::create_dir(root.join("sessions.d")).unwrap();
    symlink(outside.join("victim.json"), root.join("sessions.d/victim.json")).unwrap();
    assert!(matches!(error_of(store.load("victim")), PluginError::Denied(_)));
    assert!(matches!(error_of(store.save(&session("victim", 1), None)), PluginError::Denied(_)));
    assert!(matches!(error_of(store.delete("victim")), PluginError::Denied(_)));
    store.save(&session("real", 1), None).unwrap();
    symlink("real.json", root.join("sessions.d/alias.json")).unwrap();
    assert!(matches!(error_of(store.load("alias")), PluginError::Denied(_)));
    assert_eq!(std::fs::read_to_string(outside.join("victim.json")).unwrap(), "untouched");

    // A directory where a session file should be.
    std::fs::create_dir(root.join("sessions.d/dir.json")).unwrap();
    assert!(matches!(error_of(store.load("dir")), PluginError::Invalid(_)));
    assert!(matches!(error_of(store.save(&session("dir", 1), None)), PluginError::Invalid(_)));
    assert!(root.join("sessions.d/dir.json").is_dir(), "the directory was not replaced");

    // The lock directory is a symlink.
    std::fs::rename(root.join("locks"), root.join("locks.real")).unwrap();
    symlink(&outside, root.join("locks")).unwrap();
    assert!(matches!(error_of(store.save(&session("other", 1), None)), PluginError::Denied(_)));
    let outside_names: Vec<_> =
        std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside_names, ["victim.json"], "no lock file was created outside");
    assert_eq!(store.load("real").unwrap().id, "real", "the rest of the store keeps working");
}

/// Long sessions are listed from the start of their files; files in the
/// earlier layout (transcript first, no count) are still listed correctly.
#[test]
fn long_sessions_list_from_either_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    let long = |id: &str| Session {
        turns: vec![Turn { prompt: "p".repeat(4096), response: "r".repeat(4096), timestamp_ms: 5 }; 10],
        ..session(id, 7)
    };
    store.save(&long("summary-first"), None).unwrap();
    store.save(&long("earlier-layout"), None).unwrap();
    let file = dir.path().join("sessions.d/earlier-layout.json");
    let bytes = std::fs::read(&file).unwrap();
    let stored =
        store_codec::record::StoredSession::from_bytes(framed::newest_json(&bytes).unwrap()).unwrap();
    std::fs::write(&file, serde_json::to_vec_pretty(&stored).unwrap()).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.find("\"turns\"").unwrap() < text.find("\"agentThreadId\"").unwrap()
            && !text.contains("turnCount")
    );
    let mut listed = store.list().unwrap();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    for (summary, id) in listed.iter().zip(["earlier-layout", "summary-first"]) {
        assert_eq!(summary.id, id);
        assert_eq!(summary.turn_count, 10);
        assert_eq!(summary.agent_thread_id.as_deref(), Some(format!("thread-{id}").as_str()));
        assert_eq!(
            (summary.model.as_deref(), summary.cwd.as_deref(), summary.last_accessed_ms),
            (Some("m"), Some("/w"), 7)
        );
    }
    assert_eq!(listed.len(), 2);
    assert_eq!(store.load("earlier-layout").unwrap().turns.len(), 10, "an earlier-layout file loads");
}

/// A save of a stored session appends one record; the file is compacted
/// before it grows past its bound; a torn tail (a crash in the middle of an
/// append) leaves the previous record readable and the next save lands after
/// it; a file in the earlier layout is rewritten as a log on its next save.
#[test]
fn saves_append_to_a_bounded_log_that_survives_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    let file = dir.path().join("sessions.d/log.json");
    let turn =
        |n: usize| Turn { prompt: format!("p{n}"), response: "r".repeat(2000), timestamp_ms: n as u64 };
    let mut current = session("log", 1);
    current.revision = store.save(&current, Some(0)).unwrap();
    let mut lengths = Vec::new();
    let mut compacted = false;
    for n in 0..300 {
        current.turns.push(turn(n));
        if current.turns.len() > 20 {
            current.turns.remove(0);
        }
        current.revision = store.save(&current, Some(current.revision)).unwrap();
        let length = std::fs::metadata(&file).unwrap().len();
        let record = framed::frame(
            &std::fs::read(&file)
                .ok()
                .and_then(|bytes| framed::newest_json(&bytes).ok().map(<[u8]>::to_vec))
                .unwrap(),
        );
        assert!(
            length <= (256 << 10).max(4 * record.len() as u64),
            "save {n}: the log grew to {length} bytes"
        );
        compacted |= lengths.last().is_some_and(|&last| length < last);
        lengths.push(length);
    }
    assert!(compacted, "the log was never compacted: {lengths:?}");
    assert!(lengths.windows(2).filter(|w| w[1] > w[0]).count() > 250, "most saves appended: {lengths:?}");
    assert_eq!(dbg_of(&store.load("log").unwrap()), dbg_of(&current));

    // A torn append: half of a record after the newest whole one.
    let whole = std::fs::read(&file).unwrap();
    let mut next = current.clone();
    next.turns.push(turn(1000));
    next.revision += 1;
    let stored =
        store_codec::record::StoredSession::from_bytes(framed::newest_json(&whole).unwrap()).unwrap();
    let torn_record = framed::frame(&stored.to_bytes());
    for cut in [1, torn_record.len() / 2, torn_record.len() - 1] {
        std::fs::write(&file, [&whole[..], &torn_record[..cut]].concat()).unwrap();
        assert_eq!(dbg_of(&store.load("log").unwrap()), dbg_of(&current), "cut at {cut}");
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].turn_count, current.turns.len() as u32, "cut at {cut}");
    }
    next.revision = store.save(&next, Some(current.revision)).unwrap();
    assert_eq!(dbg_of(&store.load("log").unwrap()), dbg_of(&next), "the save after a torn tail is read back");
    assert!(std::fs::read(&file).unwrap().starts_with(&whole), "the append kept every earlier byte");

    // A flipped byte in the newest record: the one before it is the session.
    let mut flipped = std::fs::read(&file).unwrap();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x20;
    std::fs::write(&file, &flipped).unwrap();
    assert_eq!(dbg_of(&store.load("log").unwrap()), dbg_of(&current));

    // The earlier layout (the JSON alone) is read, then rewritten as a log.
    std::fs::write(&file, stored.to_bytes()).unwrap();
    assert_eq!(dbg_of(&store.load("log").unwrap()), dbg_of(&current));
    store.save(&next, Some(current.revision)).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(matches!(framed::layout(&bytes), framed::Layout::Framed(range) if range.start == 0));
}

fn dbg_of(session: &Session) -> String {
    format!("{session:?}")
}
