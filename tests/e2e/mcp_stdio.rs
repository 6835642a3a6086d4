//! `warden serve` speaks MCP over stdio: initialize, tools/list, a tool
//! call, and a clear error for an unknown tool.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use warden_tests::warden_bin;

fn exchange(requests: &[Value]) -> Vec<Value> {
    exchange_with(requests, "")
}

fn exchange_with(requests: &[Value], extra_config: &str) -> Vec<Value> {
    exchange_logged(requests, extra_config).0
}

/// The responses, and what the server logged to stderr.
pub(crate) fn exchange_logged(requests: &[Value], extra_config: &str) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(&config, format!("cache-dir = {:?}\n{extra_config}", crate::cache_dir())).unwrap();
    let mut child = Command::new(warden_bin())
        .args(["serve", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg(&config)
        .env("CODEX_HOME", dir.path().join("codex"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
    }
    let expected = requests.iter().filter(|r| r.get("id").is_some()).count();
    let mut responses = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while responses.len() < expected {
        let line = lines.next().expect("the server answered every request").unwrap();
        let message: Value = serde_json::from_str(&line).unwrap();
        if message.get("id").is_some() {
            responses.push(message);
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "warden serve exited with {}", output.status);
    responses.sort_by_key(|r| r["id"].as_i64());
    (responses, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn initialize_list_tools_and_call() {
    let responses = exchange(&[
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ping","arguments":{}}}),
        json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"no-such-tool","arguments":{}}}),
    ]);
    assert_eq!(responses[0]["result"]["serverInfo"]["name"], "warden");
    assert_eq!(responses[0]["result"]["protocolVersion"], "2025-06-18");
    let tools = responses[1]["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().all(|t| t["inputSchema"]["type"] == "object"));
    assert!(tools.iter().any(|t| t["name"] == "ping"));
    let ping = &responses[2]["result"];
    assert_eq!(ping["structuredContent"]["status"], "pong");
    assert_eq!(ping["structuredContent"]["plugins"]["storage-backend"], "storage-dir");
    let error = &responses[3]["error"];
    assert_eq!(error["code"], -32602);
    assert!(error["message"].as_str().unwrap().contains("unknown tool `no-such-tool`"));
}

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(warden_bin()).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains("serve") && text.contains("plugins"), "{text}");
}

#[test]
fn a_configured_plugin_replaces_the_embedded_default() {
    let agent = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let responses = exchange_with(
        &[
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ping","arguments":{}}}),
            json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"codex","arguments":{"prompt":"harmless","sessionId":"s"}}}),
        ],
        &format!("[plugins.agent-driver]\npath = {agent:?}\n"),
    );
    assert_eq!(responses[1]["result"]["structuredContent"]["plugins"]["agent-driver"], "hostile_agent");
    assert_eq!(responses[2]["result"]["structuredContent"]["content"], "harmless", "{}", responses[2]);
    assert_eq!(
        responses[2]["result"]["structuredContent"]["threadId"],
        "0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f"
    );
}

/// Run `warden serve` with `plugin` configured for `role`; it must fail to
/// start. Returns what it printed.
fn start_up_error(role: &str, plugin: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!("cache-dir = {:?}\n[plugins.{role}]\npath = {plugin:?}\n", crate::cache_dir()),
    )
    .unwrap();
    let out = Command::new(warden_bin())
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "warden serve started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_plugin_of_the_wrong_role_stops_start_up_with_the_reason() {
    let storage = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_storage.wasm");
    let stderr = start_up_error("session-policy", &storage);
    assert!(
        stderr.contains(
            "plugin `hostile_storage` declares the role `storage-backend` but is configured as session-policy"
        ),
        "{stderr}"
    );
}

#[test]
fn a_plugin_for_a_newer_contract_is_refused_at_start_up_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let host = warden::contract::role::CONTRACT_VERSION;
    let wasm = warden_tests::guest_wasm("context_default.wasm");
    let plugin = dir.path().join("newer.wasm");
    std::fs::write(&plugin, warden_tests::patch_bytes(&wasm, &format!("@{host}"), "@0.1.9")).unwrap();
    let stderr = start_up_error("context-builder", &plugin);
    assert!(
        stderr.contains(&format!("is from contract 0.1.9, newer than the {host} this host speaks")),
        "{stderr}"
    );
}

#[test]
fn refused_capability_calls_are_logged_with_the_missing_grant() {
    let agent = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let (responses, log) = exchange_logged(
        &[
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"codex","arguments":{"prompt":"spawn:|sh -c id"}}}),
        ],
        &format!("[plugins.agent-driver]\npath = {agent:?}\n"),
    );
    assert_eq!(responses[1]["result"]["isError"], true);
    assert!(
        responses[1]["result"]["structuredContent"]["content"].as_str().unwrap().contains("is not granted")
    );
    let refusal = log
        .lines()
        .find(|l| l.contains("capability refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    for field in [
        "plugin=hostile_agent",
        "role=agent-driver",
        "operation=\"spawn\"",
        "target=\"sh -c id\"",
        "is not granted",
    ] {
        assert!(refusal.contains(field), "{field} missing from {refusal}");
    }
}

#[test]
fn a_listing_page_is_as_long_as_asked_whatever_the_storage_plugin_returns() {
    let store = tempfile::tempdir().unwrap();
    let hostile = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_storage.wasm");
    // Its sessions were last used at the epoch: keep them from expiring.
    let config = format!(
        "[plugins.storage-backend]\npath = {hostile:?}\nroot = {:?}\n\
         [plugins.session-policy]\nsettings = {{ idle-ttl-secs = 4000000000 }}\n",
        store.path()
    );
    let list = |id: i64, arguments: Value| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"listSessions","arguments":arguments}});
    let responses = exchange_with(
        &[
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            list(2, json!({"limit": 3})),
            list(3, json!({})),
            list(4, json!({"limit": 0})),
            list(5, json!({"limit": 501})),
            list(6, json!({"agent": "codex", "limit": 2})),
            list(7, json!({"agent": "aider"})),
        ],
        &config,
    );
    // The plugin returns 5 more than asked; the client gets what it asked for.
    let page = &responses[1]["result"]["structuredContent"];
    assert_eq!(page["sessions"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(page["nextCursor"], "8");
    assert_eq!(responses[2]["result"]["structuredContent"]["sessions"].as_array().unwrap().len(), 50);
    for response in &responses[3..5] {
        let error = &response["error"];
        assert_eq!(error["code"], -32602, "{response}");
        assert!(error["message"].as_str().unwrap().contains("use 1 to 500"), "{error}");
    }
    // The hostile store's sessions record no agent, so they are codex's; an agent not served is a mistake.
    assert_eq!(responses[5]["result"]["structuredContent"]["sessions"].as_array().unwrap().len(), 2);
    let error = &responses[6]["error"];
    assert!(
        error["message"].as_str().unwrap().contains("this Warden serves codex, claude, gemini"),
        "{error}"
    );
}

fn serve_command(dir: &std::path::Path) -> Command {
    let config = dir.join("warden.toml");
    std::fs::write(&config, format!("cache-dir = {:?}\n", crate::cache_dir())).unwrap();
    let mut command = Command::new(warden_bin());
    command
        .args(["serve", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--config")
        .arg(&config)
        .env("CODEX_HOME", dir.join("codex"))
        .stderr(Stdio::null());
    command
}

fn initialize_and_ping() -> [Value; 3] {
    [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ping","arguments":{}}}),
    ]
}

/// Node's child processes get a socket, not a pipe, for stdin and stdout.
#[test]
fn a_socket_for_stdin_and_stdout_is_served_like_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let theirs = std::os::fd::OwnedFd::from(theirs);
    let mut child = serve_command(dir.path())
        .stdin(Stdio::from(theirs.try_clone().unwrap()))
        .stdout(Stdio::from(theirs))
        .spawn()
        .unwrap();
    let mut writer = ours.try_clone().unwrap();
    let mut lines = BufReader::new(ours).lines();
    for request in initialize_and_ping() {
        writeln!(writer, "{request}").unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let message: Value = serde_json::from_str(&lines.next().expect("an answer").unwrap()).unwrap();
        if message.get("id").is_some() {
            answers.push(message);
        }
    }
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "warden");
    assert_eq!(answers[1]["result"]["structuredContent"]["status"], "pong");
    writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(child.wait().unwrap().success(), "warden serve ends when the socket's input ends");
}

/// Requests read from a file (not a pipe or socket) go through the fallback reader.
#[test]
fn requests_from_a_file_are_served_and_end_of_file_ends_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.jsonl");
    let text: String = initialize_and_ping().iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&requests, text).unwrap();
    let output = serve_command(dir.path())
        .stdin(std::fs::File::open(&requests).unwrap())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(output.status.success(), "warden serve exited with {}", output.status);
    let answers: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|m: &Value| m.get("id").is_some())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[1]["result"]["structuredContent"]["status"], "pong");
}
