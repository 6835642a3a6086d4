//! Many clients at once, in one run: 50 clients × 20 `codex` calls each
//! (agent-codex running the instant fake Codex of `fake-codex/`, every turn
//! saved durably), first through one `warden serve --http` (five principals,
//! ten clients each, bearer tokens, the session-based protocol), then the
//! same load over stdio, where each client runs its own `warden serve` (as
//! stdio clients do) on one shared store.
//!
//! Every answer is checked to be its own client's (its session key, and the
//! thread its first call started), and none may be missing. The report: wall
//! time, calls per second, per-call p50 and p99 latency, and peak RSS
//! (VmHWM; over stdio, the sum over the client processes).
//!
//! `cargo bench -p warden --bench http_load`; `WARDEN_LOAD_CLIENTS` (default
//! 50) and `WARDEN_LOAD_CALLS` (default 20) set the load.

#[path = "support/mcp_stdio.rs"]
mod mcp_stdio;
// Shared with the other benches; this one needs only its statistics.
#[allow(dead_code)]
#[path = "support/rounds.rs"]
mod rounds;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcp_stdio::McpServer;
use rounds::{ms, percentile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PRINCIPALS: usize = 5;

/// The environment every Warden of this bench runs in.
struct Setup {
    scratch: tempfile::TempDir,
    path: std::ffi::OsString,
}

impl Setup {
    fn new() -> Self {
        let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
        let fake_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fake-codex");
        let path = std::env::join_paths(
            std::iter::once(fake_dir)
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        std::fs::create_dir_all(scratch.path().join("codex-home")).unwrap();
        Self { scratch, path }
    }

    fn warden(&self, config: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .arg("--config")
            .arg(config)
            .arg("--state-dir")
            .arg(self.scratch.path().join("state"))
            .env("WARDEN_LOG", "error")
            .env("XDG_CACHE_HOME", self.scratch.path().join("cache"))
            .env("CODEX_HOME", self.scratch.path().join("codex-home"))
            .env("PATH", &self.path);
        command
    }

    fn config(&self, name: &str, text: &str) -> PathBuf {
        let file = self.scratch.path().join(name);
        std::fs::write(&file, text).unwrap();
        file
    }
}

/// What one load run measured.
struct Run {
    wall: Duration,
    latencies: Vec<Duration>,
    peak_rss_kib: u64,
}

/// One client's calls, through `call(arguments)`: the first starts session
/// `key`, the rest continue it; each answer must name the key and the
/// thread the first one started. Returns the latency of each call.
fn client_calls(key: &str, calls: usize, mut call: impl FnMut(Value) -> Value) -> Vec<Duration> {
    let mut thread = None;
    (0..calls)
        .map(|n| {
            let arguments = json!({"prompt": format!("call {n} of {key}"), "sessionId": key});
            let started = Instant::now();
            let answer = call(arguments);
            let took = started.elapsed();
            let out = &answer["structuredContent"];
            assert_eq!(out["sessionId"], key, "an answer for another client reached {key}: {answer}");
            assert_eq!(out["content"], "done", "{answer}");
            let seen =
                out["threadId"].as_str().unwrap_or_else(|| panic!("no thread in {answer}")).to_string();
            assert_eq!(thread.get_or_insert_with(|| seen.clone()), &seen, "{key} changed threads");
            took
        })
        .collect()
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

fn token(principal: usize) -> String {
    format!("load-token-of-p{principal}")
}

/// A minimal Streamable HTTP client (session-based protocol) over ureq.
struct HttpClient {
    agent: ureq::Agent,
    url: String,
    bearer: String,
    session: Option<String>,
    next_id: u64,
}

impl HttpClient {
    fn connect(addr: SocketAddr, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut client = Self {
            agent,
            url: format!("http://{addr}/mcp"),
            bearer: format!("Bearer {token}"),
            session: None,
            next_id: 0,
        };
        let init = client.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "load", "version": "0"}}),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        client.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        client
    }

    fn post(&mut self, body: &Value) -> (Option<String>, String) {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.bearer)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2025-06-18");
        if let Some(session) = &self.session {
            request = request.header("Mcp-Session-Id", session);
        }
        let mut response = request.send(body.to_string()).expect("an HTTP response");
        let session =
            response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        (session, response.body_mut().read_to_string().unwrap())
    }

    /// The reply to one request (from a JSON body or an event stream).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let (session, body) =
            self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        if self.session.is_none() {
            self.session = session;
        }
        let messages: Vec<Value> = if body.trim_start().starts_with('{') {
            serde_json::from_str(&body).into_iter().collect()
        } else {
            body.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str(d.trim()).ok())
                .collect()
        };
        messages.into_iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("no reply to {method}: {body}"))
    }
}

fn over_http(setup: &Setup, clients: usize, calls: usize) -> Run {
    let tokens: String = (0..PRINCIPALS)
        .map(|p| {
            format!(
                "[[auth.tokens]]\nprincipal = \"p{p}\"\nsha256 = \"{}\"\n",
                hex::encode(Sha256::digest(token(p).as_bytes()))
            )
        })
        .collect();
    let config = setup.config("http.toml", &tokens);
    let addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut server: Child = setup
        .warden(&config)
        .args(["serve", "--http", &addr.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(120), "warden never listened on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut connected: Vec<HttpClient> =
        (0..clients).map(|c| HttpClient::connect(addr, &token(c % PRINCIPALS))).collect();
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let running: Vec<_> = connected
            .iter_mut()
            .enumerate()
            .map(|(c, client)| {
                scope.spawn(move || {
                    client_calls(&format!("client-{c}"), calls, |a| {
                        client.request("tools/call", json!({"name": "codex", "arguments": a}))["result"]
                            .clone()
                    })
                })
            })
            .collect();
        running.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    let peak_rss_kib = peak_rss_kib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    Run { wall, latencies, peak_rss_kib }
}

fn over_stdio(setup: &Setup, clients: usize, calls: usize) -> Run {
    let config = setup.config("stdio.toml", "");
    let mut servers: Vec<McpServer> = (0..clients)
        .map(|_| {
            let mut command = setup.warden(&config);
            command.arg("serve").stderr(Stdio::null());
            McpServer::start(command)
        })
        .collect();
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let running: Vec<_> = servers
            .iter_mut()
            .enumerate()
            .map(|(c, server)| {
                scope.spawn(move || {
                    client_calls(&format!("stdio-{c}"), calls, |a| {
                        server.call_tool("codex", a)["result"].clone()
                    })
                })
            })
            .collect();
        running.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    let peak_rss_kib = servers.iter().map(|s| peak_rss_kib(s.pid())).sum();
    drop(servers);
    Run { wall, latencies, peak_rss_kib }
}

fn main() {
    let clients: usize = std::env::var("WARDEN_LOAD_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let calls: usize = std::env::var("WARDEN_LOAD_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let setup = Setup::new();
    let runs = [
        ("HTTP, one server", over_http(&setup, clients, calls)),
        ("stdio, a server per client", over_stdio(&setup, clients, calls)),
    ];
    println!("{clients} clients x {calls} calls each, every answer checked (none lost or misdelivered)");
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10} {:>14}",
        "transport", "wall s", "calls/s", "p50 ms", "p99 ms", "peak RSS MiB"
    );
    for (name, run) in runs {
        assert_eq!(run.latencies.len(), clients * calls, "{name}: answers missing");
        let latencies = ms(&run.latencies);
        println!(
            "{name:<28} {:>8.2} {:>10.0} {:>10.2} {:>10.2} {:>14.1}",
            run.wall.as_secs_f64(),
            latencies.len() as f64 / run.wall.as_secs_f64(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            run.peak_rss_kib as f64 / 1024.0
        );
    }
}
