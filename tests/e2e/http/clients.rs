//! Third-party MCP clients against `warden serve --http`, both pinned and
//! installed by `scripts/test`:
//! - the official Python SDK (`mcp`, tests/clients/requirements.txt, in
//!   target/py-mcp) runs tests/clients/python_client.py: tools/list, a call
//!   with progress and a cancelled call, at 2025-11-25 (the `initialize`
//!   handshake; the SDK POSTs `notifications/cancelled`) and at 2026-07-28
//!   (its default; the cancel closes the call's POST);
//! - the MCP Inspector CLI (in target/mcp-inspector) lists and calls tools in
//!   each protocol era. It shows no progress and cannot cancel a call.
//!
//! The agent is the hostile test agent with a CPU budget of a minute, so its
//! `loop` spins until the cancel stops it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{Server, TOKEN, start_with, tokens};

/// Warden with alice's token, logging at info (the cancels are logged).
fn serve() -> Server {
    // Right after the agent's `path`, so in `[agents.codex]`.
    start_with(&format!("cpu-budget-ms = 60000\n{}", tokens(&[("alice", TOKEN)])), "info")
}

/// A file scripts/test installs under the repository root, or a failure naming the install step.
fn installed(relative: &str, install: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    assert!(path.exists(), "{} is missing; run ./scripts/test (it runs `{install}`)", path.display());
    path
}

#[test]
fn the_python_sdk_lists_tools_gets_progress_and_cancels_a_call() {
    let python = installed(
        "target/py-mcp/bin/python",
        "python3 -m venv target/py-mcp && target/py-mcp/bin/pip install -r tests/clients/requirements.txt",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python_client.py");
    let server = serve();
    let out = Command::new(python)
        .arg(script)
        .arg(format!("http://{}/mcp", server.addr))
        .arg(TOKEN)
        .output()
        .expect("running tests/clients/python_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python_client.py: {}\n{stdout}\n{stderr}", out.status);
    let seen: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(seen["legacy"]["protocolVersion"], "2025-11-25", "{seen}");
    assert_eq!(seen["legacy"]["cancelled"]["reason"], "caller cancelled", "{seen}");
    assert_eq!(seen["auto"]["protocolVersion"], "2026-07-28", "{seen}");

    // Each cancel stopped its turn: the plugin call ended as cancelled, not on its CPU budget.
    let log = server.dir.path().join("stderr.log");
    let count = |line: &str| std::fs::read_to_string(&log).unwrap().matches(line).count();
    warden_tests::wait_for("both cancelled calls to end", || count("the cancelled call has ended") == 2);
    assert_eq!(count("the client cancelled a call; stopping its plugin calls"), 2);
    assert_eq!(count("reason=the call was cancelled"), 2);
    assert_eq!(count("CPU budget"), 0);
}

/// The Inspector CLI's JSON answer to `args`, negotiating `era` (legacy or modern).
fn inspector(server: &Server, era: &str, args: &[&str]) -> Value {
    let bin = installed(
        "target/mcp-inspector/node_modules/.bin/mcp-inspector",
        "npm install --prefix target/mcp-inspector @modelcontextprotocol/inspector@$MCP_INSPECTOR_VERSION",
    );
    let out = Command::new(bin)
        .arg("--cli")
        .arg(format!("http://{}/mcp", server.addr))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--protocol-era", era, "--format", "json"])
        .args(args)
        .env("HOME", server.dir.path()) // it keeps a catalog and OAuth state in ~/.mcp-inspector
        .output()
        .expect("running the MCP Inspector CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inspector {args:?} at {era}: {}\n{stdout}\n{stderr}", out.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn inspector_lists_and_calls_tools(era: &str) {
    let server = serve();
    let listed = inspector(&server, era, &["--method", "tools/list"]);
    let tools: Vec<&str> =
        listed["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    for tool in ["codex", "codex-reply", "listSessions", "ping"] {
        assert!(tools.contains(&tool), "{tool} in {tools:?}");
    }
    let session = format!("inspector-{era}");
    let arguments = format!(r#"{{"prompt": "harmless", "sessionId": "{session}"}}"#);
    let called = inspector(
        &server,
        era,
        &["--method", "tools/call", "--tool-name", "codex", "--tool-args-json", &arguments],
    );
    assert_eq!(called["result"]["structuredContent"]["content"], "harmless", "{called}");
    assert_eq!(called["result"]["structuredContent"]["sessionId"], session.as_str(), "{called}");
    let pong = inspector(&server, era, &["--method", "tools/call", "--tool-name", "ping"]);
    assert_eq!(pong["result"]["structuredContent"]["status"], "pong", "{pong}");
}

/// The CLI's default for a URL. It declares the tasks extension, which is
/// not defined before 2026-07-28: the call must answer as a plain call.
#[test]
fn the_inspector_cli_lists_and_calls_tools_at_2025_11_25() {
    inspector_lists_and_calls_tools("legacy");
}

/// At 2026-07-28 the CLI's tasks extension holds: the turn runs as a task
/// the CLI polls to its result.
#[test]
fn the_inspector_cli_lists_and_calls_tools_at_2026_07_28() {
    inspector_lists_and_calls_tools("modern");
}
