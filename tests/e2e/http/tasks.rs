//! Durable MCP tasks over Streamable HTTP, from a client that declares the
//! tasks extension: a turn answers at once with a task, `tasks/get` reports
//! it to its owner only, the result survives a restart, a turn a crash
//! interrupted reads as failed, and `tasks/cancel` stops a running turn.
//! A client without the extension, or of a protocol before 2026-07-28,
//! still gets its answer in the call.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Client, start_with, tokens, with_tasks};

fn config() -> String {
    tokens(&[("alice", "token-of-alice"), ("bob", "token-of-bob")])
}

/// Start a turn as a task; returns its id.
fn start_task(client: &mut Client, prompt: &str, session: &str) -> String {
    let reply = client.request(
        "tools/call",
        json!({"name": "codex", "arguments": {"prompt": prompt, "sessionId": session}}),
    );
    let task = &reply["result"];
    assert_eq!(task["resultType"], "task", "{reply}");
    assert_eq!(task["status"], "working", "{reply}");
    assert!(task["pollIntervalMs"].as_u64().is_some() && task["ttlMs"].as_u64().is_some(), "{reply}");
    task["taskId"].as_str().unwrap().to_string()
}

fn get(client: &mut Client, id: &str) -> Value {
    client.request("tasks/get", json!({"taskId": id}))
}

/// Poll until the task leaves `working`.
fn settled(client: &mut Client, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let reply = get(client, id);
        let status = reply["result"]["status"].as_str().unwrap_or_else(|| panic!("{reply}")).to_string();
        if status != "working" {
            return reply["result"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "task {id} never settled: {reply}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_task_answers_its_owner_and_outlives_a_restart() {
    let server = start_with(&config(), "info");
    let mut alice = Client::stateless(server.addr, "token-of-alice", with_tasks());
    let id = start_task(&mut alice, "harmless", "tasked");
    let done = settled(&mut alice, &id);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["structuredContent"]["content"], "harmless", "{done}");
    assert_eq!(done["result"]["structuredContent"]["sessionId"], "tasked", "{done}");

    // Another principal's task answers exactly as a missing one.
    let mut bob = Client::stateless(server.addr, "token-of-bob", with_tasks());
    let theirs = get(&mut bob, &id);
    let missing = get(&mut bob, "0199a5e4-0000-7000-8000-000000000000");
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    assert_eq!(
        theirs["error"]["message"].as_str().unwrap().replace(&id, "X"),
        missing["error"]["message"].as_str().unwrap().replace("0199a5e4-0000-7000-8000-000000000000", "X")
    );
    assert_eq!(bob.request("tasks/cancel", json!({"taskId": id}))["error"]["code"], -32602);

    // Without the extension, the call answers when the turn is done; so it
    // does for a client of an earlier protocol that declares it (the
    // extension exists from 2026-07-28 on).
    let mut earlier = Client::connect_with(server.addr, "token-of-alice", with_tasks());
    let answered = earlier.call("codex", json!({"prompt": "harmless", "sessionId": "earlier"}));
    assert_eq!(answered["structuredContent"]["content"], "harmless", "{answered}");
    let mut plain = Client::stateless(server.addr, "token-of-alice", json!({}));
    let answered = plain.call("codex", json!({"prompt": "harmless", "sessionId": "blocking"}));
    assert_eq!(answered["structuredContent"]["content"], "harmless", "{answered}");
    let refused = plain.request("tasks/get", json!({"taskId": id}));
    assert!(refused["error"].is_object(), "a client that did not declare tasks cannot poll them: {refused}");

    let server = server.restart(libc::SIGTERM);
    let mut alice = Client::stateless(server.addr, "token-of-alice", with_tasks());
    let after = get(&mut alice, &id);
    assert_eq!(after["result"], done, "the stored result is the one reported before the restart");
}

#[test]
fn a_crash_fails_the_running_task_and_a_cancel_stops_one() {
    let server = start_with(&config(), "info");
    let mut alice = Client::stateless(server.addr, "token-of-alice", with_tasks());

    let cancelled = start_task(&mut alice, "loop", "to-cancel");
    assert_eq!(get(&mut alice, &cancelled)["result"]["status"], "working");
    let ack = alice.request("tasks/cancel", json!({"taskId": cancelled}));
    assert!(ack["result"].is_object(), "{ack}");
    assert_eq!(settled(&mut alice, &cancelled)["status"], "cancelled");
    let listed = alice.call("listSessions", json!({}));
    assert_eq!(listed["structuredContent"]["sessions"], json!([]), "a cancelled turn records nothing");

    let interrupted = start_task(&mut alice, "loop", "to-crash");
    assert_eq!(get(&mut alice, &interrupted)["result"]["status"], "working");
    let server = server.restart(libc::SIGKILL);
    let mut alice = Client::stateless(server.addr, "token-of-alice", with_tasks());
    let failed = settled(&mut alice, &interrupted);
    assert_eq!(failed["status"], "failed", "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains("Warden stopped while this task's turn was running"), "{message}");
    assert_eq!(get(&mut alice, &interrupted)["result"], failed, "the verdict is recorded");
    assert_eq!(settled(&mut alice, &cancelled)["status"], "cancelled", "finished tasks stay as they ended");
}

#[test]
fn a_task_record_a_storage_plugin_forged_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let storage = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_storage.wasm");
    let root = dir.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    let config = format!("{}[plugins.storage-backend]\npath = {storage:?}\nroot = {root:?}\n", config());
    let server = start_with(&config, "warn");
    let mut bob = Client::stateless(server.addr, "token-of-bob", with_tasks());
    let id = "0199a5e4-1111-7000-8000-000000000000";
    let forged = |body: &str| std::fs::write(root.join("forged-task"), body).unwrap();

    // Alice's task, served for any id: bob sees no task at all.
    forged(
        r#"{"owner":"alice","tool":"codex","status":"completed","createdMs":1,"updatedMs":1,"ttlMs":1,
            "result":{"content":[{"type":"text","text":"alice's secret"}]}}"#,
    );
    let theirs = get(&mut bob, id);
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    assert!(!theirs.to_string().contains("secret"), "{theirs}");

    // Bob's own, well-formed task, but under another task's id.
    std::fs::write(root.join("forged-task-id"), "0199a5e4-2222-7000-8000-000000000000").unwrap();
    forged(r#"{"owner":"bob","tool":"codex","status":"cancelled","createdMs":1,"updatedMs":1,"ttlMs":1}"#);
    let swapped = get(&mut bob, id);
    let message = swapped["error"]["message"].as_str().unwrap_or_else(|| panic!("{swapped}"));
    assert!(message.contains("not one Warden wrote"), "{message}");
    std::fs::remove_file(root.join("forged-task-id")).unwrap();

    for body in [
        "not json",
        r#"{"owner":"bob","tool":"codex","status":"completed","createdMs":1,"updatedMs":1,"ttlMs":1}"#,
        r#"{"owner":"bob","tool":"codex","status":"working","createdMs":1,"updatedMs":1,"ttlMs":1,"shell":"rm -rf"}"#,
    ] {
        forged(body);
        let refused = get(&mut bob, id);
        let message = refused["error"]["message"].as_str().unwrap_or_else(|| panic!("{refused}"));
        assert!(
            message.contains("storage plugin `hostile_storage`") && message.contains("not one Warden wrote"),
            "{message}"
        );
    }
}
