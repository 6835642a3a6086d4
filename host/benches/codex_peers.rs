//! Warden beside its peer, in one run: a `codex` `tools/call` round trip
//! through `warden serve` over MCP stdio (fresh state dir, the default
//! embedded plugins, the durable save of every turn on disk), the same call
//! to the Node `codex-mcp-server` (npm, pinned), and the bare spawn of the
//! agent program, which is the instant fake Codex in `fake-codex/codex` (it
//! answers each caller in the form that caller parses). Both servers find
//! the fake through PATH, as they would find the real `codex`.
//!
//! The rows are interleaved round by round (rotating their order), so a
//! noisy neighbour costs every row alike, and each call is timed on its own
//! to report per-call medians and 95th percentiles. Warden's overhead is its
//! round trip minus the bare spawn with its argv, also taken per round.
//!
//! `cargo bench -p warden --bench codex_peers`; `WARDEN_BENCH_ROUNDS` (default
//! 400) sets the number of measured rounds. The Node server is installed by
//! `scripts/test` under `target/node-codex-mcp`; without it its rows are
//! skipped with the command that installs it.

#[path = "support/mcp_stdio.rs"]
mod mcp_stdio;
#[path = "support/rounds.rs"]
mod rounds;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcp_stdio::McpServer;
use rounds::{Row, ms, overhead, percentile, print_table, timed};
use serde_json::{Value, json};

/// The Node server's version this comparison is pinned to (as in `scripts/test`).
const NODE_SERVER_VERSION: &str = "1.4.10";
const PROMPT: &str = "say done";
/// What the fake agent answers.
const ANSWER: &str = "done";

fn main() {
    let rounds: usize = std::env::var("WARDEN_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let warmup = (rounds / 10).max(20);
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    let fake_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fake-codex");
    let fake = fake_dir.join("codex");
    let path = std::env::join_paths(
        std::iter::once(fake_dir.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let codex_home = scratch.path().join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));

    let mut warden = {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .arg("--state-dir")
            .arg(scratch.path().join("state"))
            .arg("serve")
            .env_remove("WARDEN_CONFIG")
            .env("WARDEN_LOG", "error")
            .env("XDG_CACHE_HOME", scratch.path().join("cache"))
            .env("CODEX_HOME", &codex_home)
            .env("PATH", &path);
        McpServer::start(command)
    };
    let node_log = scratch.path().join("node-server.stderr");
    let mut node = node_server().map(|script| {
        let mut command = Command::new("node");
        command
            .arg(script)
            .env("CODEX_HOME", &codex_home)
            .env("PATH", &path)
            .stderr(std::fs::File::create(&node_log).unwrap());
        McpServer::start(command)
    });

    // As agent-codex runs it: the session's cwd is pinned to the first granted root, $HOME.
    let home_arg = home.to_str().expect("HOME is UTF-8");
    let warden_args = ["exec", "--json", "--skip-git-repo-check", "-C", home_arg, "--", PROMPT];
    let node_args = ["exec", "--model", "gpt-5.3-codex", "--skip-git-repo-check", PROMPT];
    let codex_call = json!({"prompt": PROMPT, "sessionId": "bench", "resetSession": true});

    let mut rows: Vec<Row> = vec![
        Row::new("Warden `tools/call codex` (stdio, durable save on disk)"),
        Row::new("bare spawn of the fake, Warden's argv (`exec --json …`)"),
        Row::new("Warden `tools/call ping` (protocol baseline)"),
    ];
    if node.is_some() {
        rows.push(Row::new(&format!("Node codex-mcp-server {NODE_SERVER_VERSION} `tools/call codex`")));
        rows.push(Row::new("bare spawn of the fake, Node's argv (human mode)"));
        rows.push(Row::new(&format!("Node codex-mcp-server {NODE_SERVER_VERSION} `tools/call ping`")));
    }
    for round in 0..warmup + rounds {
        for k in 0..rows.len() {
            let which = (round + k) % rows.len();
            let took = match which {
                0 => timed(|| check_warden(&warden.call_tool("codex", codex_call.clone()))),
                1 => timed(|| check_bare(&fake, &warden_args, &home, true)),
                2 => timed(|| check_ok(&warden.call_tool("ping", json!({})))),
                3 => timed(|| check_node(&node.as_mut().unwrap().call_tool("codex", codex_call.clone()))),
                4 => timed(|| check_bare(&fake, &node_args, &home, false)),
                _ => timed(|| check_ok(&node.as_mut().unwrap().call_tool("ping", json!({})))),
            };
            if round >= warmup {
                rows[which].samples.push(took);
            }
        }
    }
    if let Some(node) = &mut node {
        check_node_resumes(node, &node_log);
    }
    drop(warden);
    drop(node);
    report(&rows, rounds);
}

/// The Node server's entry point, if installed at the pinned version.
fn node_server() -> Option<PathBuf> {
    let package =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/node-codex-mcp/node_modules/codex-mcp-server");
    let manifest: Option<Value> =
        std::fs::read(package.join("package.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    match manifest {
        Some(m) if m["version"] == NODE_SERVER_VERSION => Some(package.join("dist/index.js")),
        found => {
            eprintln!(
                "skipping the Node codex-mcp-server rows: {NODE_SERVER_VERSION} is not installed at {} \
                 (found {}); install it with `npm install --prefix target/node-codex-mcp \
                 codex-mcp-server@{NODE_SERVER_VERSION}` from the repository root (scripts/test does)",
                package.display(),
                found.map_or("nothing".to_string(), |m| m["version"].to_string()),
            );
            None
        }
    }
}

fn check_ok(reply: &Value) {
    assert!(reply["result"].is_object() && reply["result"]["isError"] != true, "call failed: {reply}");
}

fn check_warden(reply: &Value) {
    check_ok(reply);
    let result = &reply["result"]["structuredContent"];
    assert_eq!(result["content"], ANSWER, "{reply}");
    assert_eq!(result["threadId"].as_str().map(str::len), Some(36), "no thread id: {reply}");
}

fn check_node(reply: &Value) {
    check_ok(reply);
    assert_eq!(reply["result"]["content"][0]["text"].as_str().map(str::trim), Some(ANSWER), "{reply}");
}

/// fork/exec/wait of the fake, reading all of its output, as a caller must.
fn check_bare(fake: &Path, args: &[&str], cwd: &Path, json: bool) {
    let output = Command::new(fake).args(args).current_dir(cwd).stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success());
    let expected = if json { 4 } else { 1 };
    assert_eq!(output.stdout.iter().filter(|b| **b == b'\n').count(), expected);
}

/// The fake must satisfy the Node server too: a second call on a session
/// resumes the thread whose id it scraped from the first call's banner.
fn check_node_resumes(node: &mut McpServer, log: &Path) {
    check_node(&node.call_tool("codex", json!({"prompt": PROMPT, "sessionId": "resume-check"})));
    check_node(&node.call_tool("codex", json!({"prompt": PROMPT, "sessionId": "resume-check"})));
    let text = std::fs::read_to_string(log).unwrap();
    let resumed = text.lines().any(|l| l.contains("Executing:") && l.contains(" resume ") && l.len() > 36);
    assert!(resumed, "the Node server did not resume the fake's thread; its log:\n{text}");
}

fn report(rows: &[Row], rounds: usize) {
    print_table(rows, rounds);
    let (median, p95) = overhead(&rows[0], &rows[1]);
    println!("\nWarden's overhead above the bare spawn (per round): median {median:.2} ms, p95 {p95:.2} ms");
    if rows.len() > 3 {
        let (median, p95) = overhead(&rows[3], &rows[4]);
        println!(
            "Node server's overhead above the bare spawn (per round): median {median:.2} ms, p95 {p95:.2} ms"
        );
        let warden = percentile(&ms(&rows[0].samples), 0.5);
        let node = percentile(&ms(&rows[3].samples), 0.5);
        println!("Warden's round trip / Node's: {:.2}× (medians)", warden / node);
    }
}
