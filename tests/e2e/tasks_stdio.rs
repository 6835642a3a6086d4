//! Durable tasks over stdio: a client that starts a turn as a task and goes
//! away gets its result from the next Warden it starts on the same store.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use warden_tests::warden_bin;

/// Run one `warden serve` on `dir`'s configuration: send `requests`, read
/// the replies to those with an id, close stdin and wait for the exit.
fn session(dir: &Path, requests: &[Value]) -> Vec<Value> {
    let mut child = Command::new(warden_bin())
        .arg("--config")
        .arg(dir.join("warden.toml"))
        .arg("serve")
        .env("WARDEN_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut replies = Vec::new();
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
        if request.get("id").is_some() {
            let reply = loop {
                let message: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
                if message.get("id") == request.get("id") {
                    break message;
                }
            };
            replies.push(reply);
        }
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    replies
}

/// A request of the stateless 2026-07-28 protocol (the one the tasks
/// extension belongs to): no handshake, the version and the client's
/// capabilities in every request.
fn request(id: u64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "0"},
    });
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[test]
fn a_task_started_over_stdio_is_answered_by_the_next_warden() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    std::fs::write(
        dir.path().join("warden.toml"),
        format!(
            "state-dir = {:?}\ncache-dir = {:?}\n[agents.codex]\npath = {agent:?}\n",
            dir.path().join("state"),
            crate::cache_dir()
        ),
    )
    .unwrap();
    let call = json!({"name": "codex", "arguments": {"prompt": "flood:20000|100", "sessionId": "away"}});
    let replies = session(dir.path(), &[request(2, "tools/call", call)]);
    let task = &replies[0]["result"];
    assert_eq!(task["resultType"], "task", "{replies:?}");
    let id = task["taskId"].as_str().unwrap();

    let replies = session(dir.path(), &[request(2, "tasks/get", json!({"taskId": id}))]);
    let got = &replies[0]["result"];
    assert_eq!(got["status"], "completed", "{got}");
    assert_eq!(got["result"]["structuredContent"]["content"], "reported 20000 events of 100 bytes", "{got}");
}
