//! Principals kept apart: the same key names two sessions, a listing shows
//! only the caller's, and another principal's session or thread answers
//! exactly as one that does not exist. The operator's `warden sessions`
//! shows the owners; the log names the principal of each call.

use std::process::Command;

use serde_json::{Value, json};
use warden_tests::warden_bin;

use super::{Client, start_with, text, tokens};

/// The thread id the test agent gives every thread.
const THREAD: &str = "0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f";
const UNKNOWN_THREAD: &str = "0199a5e4-0000-7000-8000-000000000000";

fn keys(listing: &Value) -> Vec<(String, u64)> {
    listing["structuredContent"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["turnCount"].as_u64().unwrap()))
        .collect()
}

#[test]
fn each_principal_sees_and_continues_only_its_own_sessions() {
    let config = format!(
        "{}[auth]\ntranscript-owner = \"alice\"\n",
        tokens(&[("alice", "token-of-alice"), ("bob", "token-of-bob"), ("alice", "second-of-alice")])
    );
    let server = start_with(&config, "info");
    let mut alice = Client::connect(server.addr, "token-of-alice");
    let mut bob = Client::connect(server.addr, "token-of-bob");

    let first = alice.call("codex", json!({"prompt": "harmless", "sessionId": "shared"}));
    assert_eq!(first["isError"], false, "{first}");
    assert_eq!(first["structuredContent"]["threadId"], THREAD);

    // Another principal's session, by key or by thread, is indistinguishable from none.
    let theirs = bob.call("codex-reply", json!({"prompt": "harmless", "sessionId": "shared"}));
    let none = bob.call("codex-reply", json!({"prompt": "harmless", "sessionId": "nothing"}));
    assert_eq!(theirs["isError"], true, "{theirs}");
    assert_eq!(text(&theirs).replace("shared", "nothing"), text(&none), "{theirs} vs {none}");
    let theirs = bob.call("codex-reply", json!({"prompt": "harmless", "threadId": THREAD}));
    let none = bob.call("codex-reply", json!({"prompt": "harmless", "threadId": UNKNOWN_THREAD}));
    assert_eq!(theirs["isError"], true, "{theirs}");
    assert_eq!(text(&theirs).replace(THREAD, UNKNOWN_THREAD), text(&none), "{theirs} vs {none}");
    assert!(text(&none).contains("no session of yours"), "{none}");
    let ended = bob.call("endSession", json!({"sessionId": "shared"}));
    assert_eq!(ended["structuredContent"]["removed"], false, "{ended}");
    assert_eq!(bob.call("listSessions", json!({}))["structuredContent"]["sessions"], json!([]));

    // Only the transcripts' owner reaches the agent's rehydration.
    let rehydrating = alice.call("codex-reply", json!({"prompt": "harmless", "threadId": UNKNOWN_THREAD}));
    assert!(text(&rehydrating).contains("test plugin has no thread"), "{rehydrating}");

    // The same key from bob is bob's own session.
    let own = bob.call("codex", json!({"prompt": "harmless", "sessionId": "shared"}));
    assert_eq!(own["isError"], false, "{own}");
    assert_eq!(own["structuredContent"]["sessionId"], "shared");
    let again = alice.call("codex-reply", json!({"prompt": "harmless", "sessionId": "shared"}));
    assert_eq!(again["isError"], false, "{again}");

    assert_eq!(keys(&alice.call("listSessions", json!({}))), [("shared".to_string(), 2)]);
    assert_eq!(keys(&bob.call("listSessions", json!({}))), [("shared".to_string(), 1)]);
    let mut alice_again = Client::connect(server.addr, "second-of-alice");
    let filtered = alice_again.call("listSessions", json!({"query": "alice"}));
    assert_eq!(keys(&filtered), [], "a principal's name is not part of its keys");
    assert_eq!(keys(&alice_again.call("listSessions", json!({}))), [("shared".to_string(), 2)]);

    // The operator sees every session with its owner.
    let listed = Command::new(warden_bin())
        .arg("--config")
        .arg(server.dir.path().join("warden.toml"))
        .args(["sessions", "list"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let mut owners: Vec<&str> = out.lines().map(|l| l.split('\t').take(2).collect::<Vec<_>>()[1]).collect();
    owners.sort();
    assert_eq!(owners, ["owner alice", "owner bob"], "{out}");
    let shown = Command::new(warden_bin())
        .arg("--config")
        .arg(server.dir.path().join("warden.toml"))
        .args(["sessions", "show", "shared", "--owner", "bob"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!((shown["owner"].as_str(), shown["turns"].as_array().map(Vec::len)), (Some("bob"), Some(1)));

    // Every call's log lines name its principal.
    let log = std::fs::read_to_string(server.dir.path().join("stderr.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("principal=bob") && l.contains("held by another principal")),
        "{log}"
    );
}

#[test]
fn each_principal_is_held_to_the_limits_the_policy_gives_it() {
    let config = format!(
        "{}[plugins.session-policy]\nsettings = {{ max-running-turns-per-principal = 1, \
         principals = {{ bob = {{ max-sessions = 1 }} }} }}\n",
        tokens(&[("alice", "token-of-alice"), ("bob", "token-of-bob")])
    );
    let server = start_with(&config, "warn");
    let mut bob = Client::connect(server.addr, "token-of-bob");
    assert_eq!(bob.call("codex", json!({"prompt": "harmless", "sessionId": "one"}))["isError"], false);
    assert_eq!(bob.call("codex-reply", json!({"prompt": "harmless", "sessionId": "one"}))["isError"], false);
    let refused = bob.call("codex", json!({"prompt": "harmless", "sessionId": "two"}));
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        text(&refused).contains("bob keeps 1 sessions") && text(&refused).contains("`max-sessions`"),
        "{refused}"
    );
    assert_eq!(bob.call("endSession", json!({"sessionId": "one"}))["structuredContent"]["removed"], true);
    assert_eq!(bob.call("codex", json!({"prompt": "harmless", "sessionId": "two"}))["isError"], false);

    let mut alice = Client::stateless(server.addr, "token-of-alice", super::with_tasks());
    let running = alice.request("tools/call", json!({"name": "codex", "arguments": {"prompt": "loop"}}));
    let task = running["result"]["taskId"].as_str().unwrap_or_else(|| panic!("{running}")).to_string();
    let refused = alice.request("tools/call", json!({"name": "codex", "arguments": {"prompt": "harmless"}}));
    assert!(
        refused["result"]["resultType"] != "task"
            && text(&refused["result"]).contains("already runs 1 turns"),
        "no task is made (nor stored) for a turn over the limit: {refused}"
    );
    let mut alice_plain = Client::connect(server.addr, "token-of-alice");
    let busy = alice_plain.call("codex", json!({"prompt": "harmless"}));
    assert!(
        text(&busy).contains("already runs 1 turns") && text(&busy).contains("`max-running-turns`"),
        "{busy}"
    );
    assert_eq!(
        bob.call("codex", json!({"prompt": "harmless", "sessionId": "two"}))["isError"],
        false,
        "bob's own limit"
    );
    alice.request("tasks/cancel", json!({"taskId": task}));
    warden_tests::wait_for("the cancelled turn to end", || {
        alice.request("tasks/get", json!({"taskId": task}))["result"]["status"] == "cancelled"
    });
    assert_eq!(alice_plain.call("codex", json!({"prompt": "harmless"}))["isError"], false);
}

#[test]
fn a_principal_asks_no_more_than_the_operator_set_for_it() {
    let work = tempfile::tempdir().unwrap();
    let mine = work.path().join("bob");
    std::fs::create_dir_all(&mine).unwrap();
    // The first line lands in the test agent's own section: its working directories.
    let config = format!(
        "cwd-roots = [{work:?}]\n{}[principals.bob]\nmax-sandbox = \"read-only\"\n\
         approval-policies = [\"never\"]\nconfig-keys = {{}}\ncwd-roots = [{mine:?}]\n",
        tokens(&[("alice", "token-of-alice"), ("bob", "token-of-bob")]),
        work = work.path(),
    );
    let server = start_with(&config, "warn");
    let mut bob = Client::connect(server.addr, "token-of-bob");
    for (arguments, field) in [
        (json!({"prompt": "harmless", "sandbox": "workspace-write"}), "`sandbox`"),
        (json!({"prompt": "harmless", "approval-policy": "on-request"}), "`approval-policy`"),
        (json!({"prompt": "harmless", "config": {"model_verbosity": "low"}}), "`config.model_verbosity`"),
        (json!({"prompt": "harmless", "cwd": work.path()}), "`cwd`"),
    ] {
        let refused = bob.call("codex", arguments.clone());
        assert_eq!(refused["isError"], true, "{arguments}: {refused}");
        assert!(
            text(&refused).contains(field) && text(&refused).contains("[principals.\"bob\"]"),
            "{refused}"
        );
    }
    let allowed = bob.call("codex", json!({"prompt": "harmless", "sessionId": "narrow", "cwd": mine}));
    assert_eq!(allowed["isError"], false, "{allowed}");
    let shown = Command::new(warden_bin())
        .arg("--config")
        .arg(server.dir.path().join("warden.toml"))
        .args(["sessions", "show", "narrow", "--owner", "bob"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["sandbox"], "read-only", "bob's turns get his ceiling when they ask for none: {shown}");

    let mut alice = Client::connect(server.addr, "token-of-alice");
    let wider = alice.call("codex", json!({"prompt": "harmless", "sandbox": "workspace-write"}));
    assert_eq!(wider["isError"], false, "alice has no section of her own: {wider}");
}

#[test]
fn a_listing_page_fills_with_the_callers_sessions_past_other_principals() {
    // alice is the local principal (her keys are stored as they are), so the storage plugin cannot
    // filter her sessions by a prefix: bob's newer ones come first in its pages.
    let config = format!(
        "{}[auth]\nlocal-principal = \"alice\"\n",
        tokens(&[("alice", "token-of-alice"), ("bob", "token-of-bob")])
    );
    let server = start_with(&config, "warn");
    let mut alice = Client::connect(server.addr, "token-of-alice");
    let mut bob = Client::connect(server.addr, "token-of-bob");
    for key in ["a1", "a2"] {
        assert_eq!(alice.call("codex", json!({"prompt": "harmless", "sessionId": key}))["isError"], false);
    }
    for n in 0..5 {
        assert_eq!(
            bob.call("codex", json!({"prompt": "harmless", "sessionId": format!("b{n}")}))["isError"],
            false
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut arguments = json!({"limit": 1});
        if let Some(c) = &cursor {
            arguments["cursor"] = json!(c);
        }
        let page = alice.call("listSessions", arguments);
        let out = &page["structuredContent"];
        let ids: Vec<String> = out["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        match out["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(ids.len(), 1, "a page with a cursor is full: {page}");
                cursor = Some(next.to_string());
            }
            None => {
                seen.extend(ids);
                break;
            }
        }
        seen.extend(ids);
    }
    assert_eq!(seen, ["a2", "a1"], "alice's sessions only, most recent first");
}
