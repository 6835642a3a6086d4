//! Each agent driver's per-turn overhead, side by side in one run: a
//! `tools/call` of `codex`, `claude` and `gemini` through one `warden serve`
//! (the default embedded plugins and agents, the durable save of every turn
//! on disk), each beside the bare spawn of its instant fake program
//! (`fake-codex/codex`, `fake-claude/claude`, `fake-gemini/gemini`) with the
//! argv its driver uses.
//! Rows are interleaved round by round, their order rotating.
//!
//! `cargo bench -p warden --bench agent_drivers`; `WARDEN_BENCH_ROUNDS`
//! (default 300) sets the number of measured rounds.

#[path = "support/mcp_stdio.rs"]
mod mcp_stdio;
#[path = "support/rounds.rs"]
mod rounds;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcp_stdio::McpServer;
use rounds::{Row, overhead, print_table, timed};
use serde_json::{Value, json};

const PROMPT: &str = "say done";

fn main() {
    let rounds: usize = std::env::var("WARDEN_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let warmup = (rounds / 10).max(20);
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    let benches = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
    let (codex, claude, gemini) = (
        benches.join("fake-codex/codex"),
        benches.join("fake-claude/claude"),
        benches.join("fake-gemini/gemini"),
    );
    let path = std::env::join_paths(
        [benches.join("fake-codex"), benches.join("fake-claude"), benches.join("fake-gemini")]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    for dir in ["codex-home", "claude-config", "gemini-home"] {
        std::fs::create_dir_all(scratch.path().join(dir)).unwrap();
    }
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
            .env("CODEX_HOME", scratch.path().join("codex-home"))
            .env("CLAUDE_CONFIG_DIR", scratch.path().join("claude-config"))
            .env("GEMINI_CLI_HOME", scratch.path().join("gemini-home"))
            .env("PATH", &path);
        McpServer::start(command)
    };
    let pong = warden.call_tool("ping", json!({}));
    let agents = &pong["result"]["structuredContent"]["agents"];
    assert!(agents.as_array().is_some_and(|a| a.iter().all(|a| a["available"] == true)), "{pong}");

    // As the drivers run them: the session's cwd is pinned to the first granted root, $HOME.
    let home_arg = home.to_str().expect("HOME is UTF-8");
    let codex_args = ["exec", "--json", "--skip-git-repo-check", "-C", home_arg, "--", PROMPT];
    let claude_args = ["-p", "--output-format", "stream-json", "--verbose"];
    let gemini_args =
        ["--skip-trust", "--allowed-mcp-server-names", "warden-allows-no-mcp-server", "-o", "stream-json"];
    let call =
        |agent: &str| json!({"prompt": PROMPT, "sessionId": format!("bench-{agent}"), "resetSession": true});
    let mut rows = [
        Row::new("Warden `tools/call codex` (agent-codex)"),
        Row::new("bare spawn of the fake codex, agent-codex's argv"),
        Row::new("Warden `tools/call claude` (agent-claude)"),
        Row::new("bare spawn of the fake claude, agent-claude's argv, prompt on stdin"),
        Row::new("Warden `tools/call gemini` (agent-gemini)"),
        Row::new("bare spawn of the fake gemini, agent-gemini's argv, prompt on stdin"),
    ];
    for round in 0..warmup + rounds {
        for k in 0..rows.len() {
            let which = (round + k) % rows.len();
            let took = match which {
                0 => timed(|| check_turn(&warden.call_tool("codex", call("codex")))),
                1 => timed(|| bare(&codex, &codex_args, &home, None, 4)),
                2 => timed(|| check_turn(&warden.call_tool("claude", call("claude")))),
                3 => timed(|| bare(&claude, &claude_args, &home, Some(PROMPT), 3)),
                4 => timed(|| check_turn(&warden.call_tool("gemini", call("gemini")))),
                _ => timed(|| bare(&gemini, &gemini_args, &home, Some(PROMPT), 3)),
            };
            if round >= warmup {
                rows[which].samples.push(took);
            }
        }
    }
    drop(warden);
    print_table(&rows, rounds);
    for (name, call, bare) in [
        ("agent-codex", &rows[0], &rows[1]),
        ("agent-claude", &rows[2], &rows[3]),
        ("agent-gemini", &rows[4], &rows[5]),
    ] {
        let (median, p95) = overhead(call, bare);
        println!(
            "{name}: Warden's overhead above the bare spawn (per round): median {median:.2} ms, p95 {p95:.2} ms"
        );
    }
}

fn check_turn(reply: &Value) {
    assert!(reply["result"].is_object() && reply["result"]["isError"] != true, "call failed: {reply}");
    let result = &reply["result"]["structuredContent"];
    assert_eq!(result["content"], "done", "{reply}");
    assert_eq!(result["threadId"].as_str().map(str::len), Some(36), "no thread id: {reply}");
}

/// spawn/wait of a fake, writing its stdin and reading all of its output, as a caller must.
fn bare(fake: &Path, args: &[&str], cwd: &Path, stdin: Option<&str>, lines: usize) {
    let mut child = Command::new(fake)
        .args(args)
        .current_dir(cwd)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout.iter().filter(|b| **b == b'\n').count(), lines);
}
