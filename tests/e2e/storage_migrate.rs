//! Migrating a legacy `sessions.json` into `sessions.d/`: staged and
//! renamed, backed up, idempotent, never overwriting newer entries, merging
//! case variants on request, and leaving bad files untouched.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use warden::commands::migrate::{expand, migrate_one};
use warden::config::Config;
use warden_tests::{snapshot, warden_bin};

use crate::storage::{session, store};

fn config() -> Config {
    Config { cache_dir: Some(crate::cache_dir()), ..Config::default() }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

const LEGACY: &str = r#"{
  "telegram:1:2": {"updatedAt": 1700000000000, "sessionId": "s1", "chatType": "direct"},
  "Auth-Review": {"updatedAt": 5, "codexConversationId": "019a-thread", "model": "gpt-5"},
  "auth-review": {"updatedAt": 9, "note": "newest case variant"},
  "dup": {"updatedAt": 1, "v": "old"},
  "gone": null,
  "dup": {"updatedAt": 2, "v": "new"}
}"#;

#[test]
fn fresh_migration_is_staged_backed_up_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessions.json"), LEGACY).unwrap();
    let runtime = warden::plugins::runtime(&config()).unwrap();
    let report = migrate_one(&runtime, &config(), &dir.path().join("sessions.json"), false).unwrap();
    assert_eq!((report.imported, report.kept_existing, report.superseded), (4, 0, 1));
    assert!(report.notes.iter().any(|n| n.contains("\"gone\" is null")), "{:?}", report.notes);
    let backup = report.backup.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join(&backup)).unwrap(),
        LEGACY,
        "the original is kept whole"
    );
    assert!(!dir.path().join("sessions.json").exists());
    assert!(!dir.path().join("sessions.d.migrating").exists());

    let (_rt, store) = store(dir.path());
    let dup = store.load("dup").unwrap();
    assert!(dup.extra_json.contains(r#""v":"new""#), "a duplicated key keeps the newest: {}", dup.extra_json);
    let auth = store.load("Auth-Review").unwrap();
    assert_eq!(auth.agent_thread_id.as_deref(), Some("019a-thread"));
    assert_eq!(auth.model.as_deref(), Some("gpt-5"));
    assert!(store.load("auth-review").is_ok(), "keys are case-sensitive by default");
    assert!(store.load("telegram:1:2").unwrap().extra_json.contains(r#""chatType":"direct""#));

    let before = snapshot(dir.path());
    let again = migrate_one(&runtime, &config(), &dir.path().join("sessions.json"), false).unwrap();
    assert_eq!(again.backup, None, "a second run finds nothing to do");
    assert_eq!(snapshot(dir.path()), before, "and changes nothing");
}

#[test]
fn merging_never_overwrites_a_newer_entry_and_can_merge_case_variants() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    store.save(&session("dup", 100), None).unwrap();
    store.save(&session("auth-review", 1), None).unwrap();
    std::fs::write(dir.path().join("sessions.json"), LEGACY).unwrap();
    let runtime = warden::plugins::runtime(&config()).unwrap();
    let report = migrate_one(&runtime, &config(), &dir.path().join("sessions.json"), true).unwrap();
    assert_eq!((report.imported, report.kept_existing, report.superseded), (2, 1, 2));
    assert_eq!(store.load("dup").unwrap().last_accessed_ms, 100, "the store's newer entry won");
    let merged = store.load("auth-review").unwrap();
    assert_eq!(merged.last_accessed_ms, 9, "the newest case variant replaced an older stored entry");
    assert!(merged.extra_json.contains("newest case variant"));
    assert!(store.load("Auth-Review").is_err(), "the older variant was merged away");
    assert!(
        std::fs::read_to_string(dir.path().join(report.backup.unwrap())).unwrap().contains("Auth-Review")
    );
}

#[test]
fn bad_legacy_files_are_left_untouched() {
    let runtime = warden::plugins::runtime(&config()).unwrap();
    for (content, problem) in [
        ("", "empty"),
        ("{\"a\": {\"updatedAt\": 1}", "not a session store"),
        ("[1, 2]", "not a session store"),
        ("{\"a\": null, \"b\": 7}", "none is a valid session"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sessions.json"), content).unwrap();
        let err = migrate_one(&runtime, &config(), &dir.path().join("sessions.json"), false).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("sessions.json") && message.contains(problem), "{content:?}: {message}");
        assert!(message.contains("left untouched"), "{message}");
        assert_eq!(names(dir.path()), ["sessions.json"], "{content:?}: nothing was created");
        assert_eq!(std::fs::read_to_string(dir.path().join("sessions.json")).unwrap(), content);
    }
}

#[test]
fn symlinked_legacy_files_and_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, LEGACY).unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    symlink(&real, store_dir.join("sessions.json")).unwrap();
    let runtime = warden::plugins::runtime(&config()).unwrap();
    let err = migrate_one(&runtime, &config(), &store_dir.join("sessions.json"), false).unwrap_err();
    assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
    assert_eq!(names(&store_dir), ["sessions.json"]);

    let linked_root = dir.path().join("linked-store");
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::fs::write(dir.path().join("elsewhere/sessions.json"), LEGACY).unwrap();
    symlink(dir.path().join("elsewhere"), &linked_root).unwrap();
    let err = migrate_one(&runtime, &config(), &linked_root.join("sessions.json"), false).unwrap_err();
    assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
    assert_eq!(names(&dir.path().join("elsewhere")), ["sessions.json"]);
}

#[test]
fn templated_paths_migrate_every_agent_store() {
    let dir = tempfile::tempdir().unwrap();
    for agent in ["main", "helper", "ops"] {
        std::fs::create_dir_all(dir.path().join(format!("agents/{agent}"))).unwrap();
        std::fs::write(dir.path().join(format!("agents/{agent}/sessions.json")), r#"{"k":{"updatedAt":1}}"#)
            .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("agents/empty")).unwrap();
    let template = dir.path().join("agents/{agentId}/sessions.json");
    assert_eq!(expand(&template).unwrap().len(), 3);

    let config_file = dir.path().join("warden.toml");
    std::fs::write(&config_file, format!("cache-dir = {:?}\n", crate::cache_dir())).unwrap();
    let out = Command::new(warden_bin())
        .args(["--config"])
        .arg(&config_file)
        .args(["migrate", "--store"])
        .arg(&template)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for agent in ["main", "helper", "ops"] {
        assert!(
            dir.path().join(format!("agents/{agent}/sessions.d/k.json")).is_file(),
            "{agent} was migrated"
        );
    }
    assert_eq!(names(&dir.path().join("agents/empty")), Vec::<String>::new());
}

#[test]
fn the_operator_cli_lists_shows_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, store) = store(dir.path());
    store.save(&session("alpha", 1_700_000_000_000), None).unwrap();
    let config_file = dir.path().join("warden.toml");
    std::fs::write(&config_file, format!("cache-dir = {:?}\n", crate::cache_dir())).unwrap();
    let warden = |args: &[&str]| {
        let out = Command::new(warden_bin())
            .arg("--config")
            .arg(&config_file)
            .arg("--state-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, listing, _) = warden(&["sessions", "list", "--json"]);
    assert!(ok);
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing[0]["id"], "alpha");
    assert_eq!(listing[0]["turnCount"], 1);
    assert_eq!(listing[0]["lastAccessedAt"], "2023-11-14T22:13:20.000Z");
    let (ok, shown, _) = warden(&["sessions", "show", "alpha"]);
    assert!(ok && shown.contains("\"threadId\": \"thread-alpha\""), "{shown}");
    let (ok, _, err) = warden(&["sessions", "show", "missing"]);
    assert!(!ok && err.contains("no session \"missing\""), "{err}");
    let (ok, _, _) = warden(&["sessions", "rm", "alpha"]);
    assert!(ok);
    let (ok, _, err) = warden(&["sessions", "rm", "alpha"]);
    assert!(!ok && err.contains("no session"), "{err}");
}
