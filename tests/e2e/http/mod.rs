//! `warden serve --http` from a client's side, over plain HTTP/1.1 on
//! loopback with a raw client (every byte of the exchange visible):
//! - `transport`: bearer tokens, Host and Origin checks, the MCP exchange
//!   with progress over SSE, health endpoints, the refusal of a public
//!   address without authentication, and SIGTERM;
//! - `principals`: each principal sees and continues only its own sessions;
//! - `jwt`: OAuth 2.1 access tokens checked against a key set, and the
//!   protected resource metadata;
//! - `tasks`: durable MCP tasks, across reconnects, restarts and crashes;
//! - `tls`: HTTPS with the operator's certificate;
//! - `clients`: the official Python SDK and the MCP Inspector CLI.

mod clients;
mod jwt;
mod principals;
mod tasks;
mod tls;
mod transport;

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
    dir: tempfile::TempDir,
    log: String,
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

/// `[[auth.tokens]]` entries for (principal, token) pairs.
fn tokens(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(principal, token)| {
            format!(
                "[[auth.tokens]]\nprincipal = {principal:?}\nsha256 = \"{}\"\n",
                hex::encode(Sha256::digest(token.as_bytes()))
            )
        })
        .collect()
}

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let agent = Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let text = format!(
        "state-dir = {state:?}\ncache-dir = {cache:?}\n[agents.codex]\npath = {agent:?}\n{extra}",
        state = dir.join("state"),
        cache = crate::cache_dir(),
    );
    let file = dir.join("warden.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Alice's token and `extra` configuration.
fn start(extra: &str) -> Server {
    start_with(&format!("{}{extra}", tokens(&[("alice", TOKEN)])), "warn")
}

/// A server with exactly `config` (beyond the state, cache and the hostile
/// agent), logging at `log` into `<dir>/stderr.log`.
fn start_with(config_text: &str, log: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), config_text);
    launch(dir, log)
}

/// Serve the configuration in `dir` on a free port.
fn launch(dir: tempfile::TempDir, log: &str) -> Server {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let stderr =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("stderr.log")).unwrap();
    let child = Command::new(warden_bin())
        .arg("--config")
        .arg(dir.path().join("warden.toml"))
        .args(["serve", "--http", &addr.to_string()])
        .env("WARDEN_LOG", log)
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let server = Server { child, addr, dir, log: log.to_string() };
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

impl Server {
    /// Stop this server with `signal` and start another on the same state.
    fn restart(mut self, signal: i32) -> Server {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
        self.child.wait().unwrap();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        launch(dir, &self.log.clone())
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

fn exchange(stream: TcpStream, request: &str) -> Option<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    exchange_over(stream, request)
}

/// Send `request` over any byte stream (plain or TLS) and read the response.
fn exchange_over(mut stream: impl Read + Write, request: &str) -> Option<Response> {
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
    initialize_with(json!({}))
}

fn initialize_with(capabilities: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": capabilities, "clientInfo": {"name": "e2e", "version": "0"}}})
}

/// A client's capabilities declaring the MCP tasks extension.
fn with_tasks() -> Value {
    json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
}

/// A client of one principal: initialises, then calls tools.
/// A client of one principal: the session-based protocol (2025-06-18, after
/// `initialize`), or the stateless 2026-07-28 one, whose every request
/// carries its protocol version and the client's capabilities.
struct Client {
    addr: SocketAddr,
    bearer: String,
    session: Option<String>,
    /// The 2026-07-28 protocol, with these client capabilities.
    stateless: Option<Value>,
    next_id: u64,
}

/// The protocol version of the stateless protocol (the MCP tasks extension needs it).
const STATELESS: &str = "2026-07-28";

impl Client {
    fn connect(addr: SocketAddr, token: &str) -> Self {
        Self::connect_with(addr, token, json!({}))
    }

    fn connect_with(addr: SocketAddr, token: &str, capabilities: Value) -> Self {
        let bearer = format!("Bearer {token}");
        let init = post(addr, &[("Authorization", &bearer)], &initialize_with(capabilities));
        assert_eq!(init.status, 200, "{}", init.body);
        let session = init.header("mcp-session-id").map(str::to_string);
        let client = Client { addr, bearer, session, stateless: None, next_id: 10 };
        let done = client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert!(done.status == 202 || done.status == 200, "{}", done.body);
        client
    }

    /// A client of the stateless 2026-07-28 protocol: no handshake.
    fn stateless(addr: SocketAddr, token: &str, capabilities: Value) -> Self {
        Client {
            addr,
            bearer: format!("Bearer {token}"),
            session: None,
            stateless: Some(capabilities),
            next_id: 10,
        }
    }

    fn send(&self, body: &Value) -> Response {
        let version = if self.stateless.is_some() { STATELESS } else { "2025-06-18" };
        let mut headers = vec![("Authorization", self.bearer.as_str()), ("MCP-Protocol-Version", version)];
        if let Some(id) = &self.session {
            headers.push(("Mcp-Session-Id", id));
        }
        // The stateless protocol's routing headers: the method, and the tool or task it names.
        let method = body["method"].as_str().unwrap_or_default().to_string();
        let name = ["name", "taskId"]
            .iter()
            .find_map(|k| body["params"][k].as_str())
            .unwrap_or_default()
            .to_string();
        if self.stateless.is_some() {
            headers.push(("Mcp-Method", &method));
            if !name.is_empty() {
                headers.push(("Mcp-Name", &name));
            }
        }
        let mut body = body.clone();
        if let (Some(capabilities), Some(_)) = (&self.stateless, body.get("id")) {
            body["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientCapabilities": capabilities,
                "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "0"},
            });
        }
        post(self.addr, &headers, &body)
    }

    /// The `result` of a tool call (its `isError` says whether it failed).
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))["result"].clone()
    }

    /// The whole JSON-RPC reply to a request.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let answer = self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        // The stateless protocol answers a JSON-RPC error with an HTTP error status too.
        assert!(answer.status == 200 || answer.status == 400, "{}: {}", answer.status, answer.body);
        let messages = answer.messages();
        messages.into_iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no reply to {method}"))
    }
}

/// The text of a tool result.
fn text(result: &Value) -> String {
    result["content"][0]["text"].as_str().unwrap_or_default().to_string()
}
