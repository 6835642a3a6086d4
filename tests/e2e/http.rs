//! `warden serve --http` from a client's side, over plain HTTP/1.1 on
//! loopback with a raw client (every byte of the exchange visible): bearer
//! authentication, Host and Origin checks, the MCP exchange with progress
//! over SSE, health endpoints, the refusal of a public address without
//! authentication, and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_tests::warden_bin;

const TOKEN: &str = "s3cret-token-of-alice";

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let agent = Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let text = format!(
        "state-dir = {state:?}\ncache-dir = {cache:?}\n[agents.codex]\npath = {agent:?}\n\
         [[auth.tokens]]\nprincipal = \"alice\"\nsha256 = \"{digest}\"\n{extra}",
        state = dir.join("state"),
        cache = crate::cache_dir(),
        digest = hex::encode(Sha256::digest(TOKEN.as_bytes())),
    );
    let file = dir.join("warden.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn start(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(warden_bin())
        .arg("--config")
        .arg(config(dir.path(), extra))
        .args(["serve", "--http", &addr.to_string()])
        .env("WARDEN_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, addr, _dir: dir };
    let started = Instant::now();
    while get(addr, "/healthz").map(|r| r.status) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(60), "warden never answered /healthz on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC messages of the body: one JSON value, or the `data:` lines of an event stream.
    fn messages(&self) -> Vec<Value> {
        if self.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")) {
            self.body
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        } else {
            serde_json::from_str(&self.body).into_iter().collect()
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<Response> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    exchange(stream, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"))
}

fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &Value) -> Response {
    let body = body.to_string();
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let stream = TcpStream::connect(addr).unwrap();
    exchange(stream, &format!("{head}\r\n{body}")).expect("a response")
}

fn exchange(mut stream: TcpStream, request: &str) -> Option<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let chunked =
        headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).ok()?;
    }
    Some(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}})
}

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
    let two = dir.path().join("two.toml");
    std::fs::write(
        &two,
        format!(
            "[[auth.tokens]]\nprincipal = \"alice\"\nsha256 = \"{}\"\n[[auth.tokens]]\nprincipal = \"bob\"\nsha256 = \"{}\"\n",
            "a".repeat(64),
            "b".repeat(64)
        ),
    )
    .unwrap();
    let refused = Command::new(warden_bin())
        .arg("--config")
        .arg(&two)
        .args(["serve", "--http", "127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("2 principals"), "{stderr}");

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
