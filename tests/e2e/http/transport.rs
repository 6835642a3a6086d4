//! The transport: tokens, Host and Origin, progress over SSE, health, SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use warden_tests::warden_bin;

use super::{TOKEN, get, initialize, post, start};

#[test]
fn only_a_configured_token_reaches_mcp_and_hosts_and_origins_are_checked() {
    let server = start("");
    let addr = server.addr;
    assert_eq!(get(addr, "/readyz").unwrap().status, 200);

    let missing = post(addr, &[], &initialize());
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer realm=\"warden\""));
    let wrong = post(addr, &[("Authorization", "Bearer not-the-token")], &initialize());
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").unwrap().contains("error=\"invalid_token\""));
    let digest = hex::encode(Sha256::digest(TOKEN.as_bytes()));
    let as_digest = post(addr, &[("Authorization", &format!("Bearer {digest}"))], &initialize());
    assert_eq!(as_digest.status, 401, "the configured digest is not itself a token");

    let bearer = format!("Bearer {TOKEN}");
    let rebinding = post(addr, &[("Authorization", &bearer), ("Host", "evil.example:80")], &initialize());
    assert_eq!(rebinding.status, 403, "{}", rebinding.body);
    let browser =
        post(addr, &[("Authorization", &bearer), ("Origin", "https://evil.example")], &initialize());
    assert_eq!(browser.status, 403, "{}", browser.body);

    let init = post(addr, &[("Authorization", &bearer)], &initialize());
    assert_eq!(init.status, 200, "{}", init.body);
    let info = &init.messages()[0]["result"]["serverInfo"];
    assert_eq!(info["name"], "warden", "{}", init.body);
}

#[test]
fn a_tool_call_with_progress_over_streamable_http() {
    let server = start("");
    let addr = server.addr;
    let bearer = format!("Bearer {TOKEN}");
    let init = post(addr, &[("Authorization", &bearer)], &initialize());
    assert_eq!(init.status, 200, "{}", init.body);
    let session = init.header("mcp-session-id").map(str::to_string);
    let mut headers = vec![("Authorization", bearer.as_str()), ("MCP-Protocol-Version", "2025-06-18")];
    if let Some(id) = &session {
        headers.push(("Mcp-Session-Id", id));
    }
    let initialized = post(addr, &headers, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    assert!(initialized.status == 202 || initialized.status == 200, "{}", initialized.body);

    let listed = post(addr, &headers, &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let tools: Vec<String> = listed.messages()[0]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for tool in ["codex", "codex-reply", "listSessions", "ping"] {
        assert!(tools.contains(&tool.to_string()), "{tool} in {tools:?}");
    }

    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "codex", "arguments": {"prompt": "flood:3|10", "sessionId": "over-http"},
        "_meta": {"progressToken": "p1"}}});
    let answered = post(addr, &headers, &call);
    assert_eq!(answered.status, 200, "{}", answered.body);
    let messages = answered.messages();
    let progress = messages.iter().filter(|m| m["method"] == "notifications/progress").count();
    assert!(progress >= 3, "three progress events reached the client: {messages:?}");
    let result = messages.iter().find(|m| m["id"] == 3).expect("the call's result");
    assert_eq!(result["result"]["structuredContent"]["content"], "reported 3 events of 10 bytes", "{result}");
    assert_eq!(result["result"]["structuredContent"]["sessionId"], "over-http");

    let listed = post(
        addr,
        &headers,
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "listSessions", "arguments": {}}}),
    );
    let sessions = &listed.messages()[0]["result"]["structuredContent"]["sessions"];
    assert_eq!(sessions[0]["id"], "over-http", "{sessions}");
}

#[test]
fn a_public_address_needs_authentication_and_sigterm_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open.toml");
    std::fs::write(
        &open,
        format!("state-dir = {:?}\ncache-dir = {:?}\n", dir.path().join("state"), crate::cache_dir()),
    )
    .unwrap();
    let refused = Command::new(warden_bin())
        .arg("--config")
        .arg(&open)
        .args(["serve", "--http", "0.0.0.0:1"])
        .env("WARDEN_LOG", "warn")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("without authentication") && stderr.contains("[[auth.tokens]]"), "{stderr}");
    let mut server = start("[http]\nshutdown-grace-secs = 5\n");
    let pid = server.child.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "warden did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(get(server.addr, "/healthz").is_none(), "nothing answers once it stopped");
}
