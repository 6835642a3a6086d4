//! Warden at 100, 10 000 and 100 000 sessions, in one run: each store is
//! imported by `warden migrate` from a legacy `sessions.json` (timed), then
//! served by `warden serve` over MCP stdio with the instant fake Codex, and
//! each per-turn operation is timed call by call:
//!
//! - `codex-reply` by `threadId` of a random stored session;
//! - `codex` creating a session, with the LRU cap (`max-sessions`) above the
//!   store's size (nothing evicted) and below it (the least recently used go);
//! - `listSessions`, first page.
//!
//! With `WARDEN_BASELINE_PLUGINS=<dir>` holding `storage_dir.wasm` and
//! `policy_default.wasm` built from an earlier commit (say, contract 0.1.1's:
//! no catalog, no admission, every lookup reads the whole store), the
//! baseline migrates the same legacy store into its own layout and the same
//! calls run against it, with fewer rounds at the larger sizes.
//!
//! `cargo bench -p warden --bench store_scale`; `WARDEN_BENCH_ROUNDS`
//! (default 200) and `WARDEN_SCALE_SIZES` (default `100,10000,100000`).

#[path = "support/mcp_stdio.rs"]
mod mcp_stdio;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mcp_stdio::McpServer;
use serde_json::{Map, Value, json};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn main() {
    let rounds: usize = std::env::var("WARDEN_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let sizes: Vec<usize> = std::env::var("WARDEN_SCALE_SIZES")
        .unwrap_or_else(|_| "100,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("WARDEN_SCALE_SIZES: numbers separated by commas"))
        .collect();
    let baseline = std::env::var_os("WARDEN_BASELINE_PLUGINS").map(PathBuf::from);
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    println!("rounds {rounds}; medians and 95th percentiles per call, in ms");
    println!("{:<10} {:<48} {:>10} {:>10} {:>8}", "sessions", "operation", "median", "p95", "calls");
    for &n in &sizes {
        let bench = Bench::new(scratch.path(), n);
        bench.copy("legacy");
        let migrated = bench.migrate(None);
        println!("{n:<10} {:<48} {:>10.1} {:>10} {:>8}", "warden migrate (whole store)", ms(migrated), "", 1);
        bench.run("warden", None, rounds);
        if let Some(dir) = &baseline {
            // The baseline writes its own layout: it migrates the same legacy store itself.
            bench.restore("legacy");
            let migrated = bench.migrate(Some(dir));
            println!(
                "{n:<10} {:<48} {:>10.1} {:>10} {:>8}",
                "baseline migrate (whole store)",
                ms(migrated),
                "",
                1
            );
            let rounds = (rounds * 100 / n).clamp(5, rounds);
            bench.run("baseline", Some(dir), rounds);
        }
    }
}

struct Bench {
    dir: PathBuf,
    n: usize,
}

impl Bench {
    /// A state directory holding a legacy `sessions.json` of `n` sessions,
    /// used once a minute before now (newest last).
    fn new(scratch: &Path, n: usize) -> Self {
        let dir = scratch.join(format!("store-{n}"));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("codex-home")).unwrap();
        std::fs::create_dir_all(dir.join("project")).unwrap();
        let project = dir.join("project").display().to_string();
        let now = now_ms();
        let mut sessions = Map::new();
        for i in 0..n {
            let last = now - (n - i) as u64 * 60_000;
            sessions.insert(
                format!("session-{i}"),
                json!({
                    "createdAt": last - 1000, "lastAccessedAt": last, "threadId": thread(i),
                    "cwd": project, "model": "gpt-5",
                    "turns": [{"prompt": "x".repeat(200), "response": "y".repeat(200), "timestamp": last}],
                }),
            );
        }
        std::fs::write(
            dir.join("state/sessions.json"),
            serde_json::to_vec(&Value::Object(sessions)).unwrap(),
        )
        .unwrap();
        Self { dir, n }
    }

    /// Keep a copy of the state directory as `name`.
    fn copy(&self, name: &str) {
        let status =
            Command::new("cp").arg("-a").arg(self.dir.join("state")).arg(self.dir.join(name)).status();
        assert!(status.unwrap().success(), "copying the store failed");
    }

    /// Put the copy `name` back as the state directory.
    fn restore(&self, name: &str) {
        std::fs::remove_dir_all(self.dir.join("state")).unwrap();
        let status =
            Command::new("cp").arg("-a").arg(self.dir.join(name)).arg(self.dir.join("state")).status();
        assert!(status.unwrap().success(), "restoring the store failed");
    }

    fn migrate(&self, plugins: Option<&Path>) -> Duration {
        let started = Instant::now();
        // Parsing a legacy file of 100 000 sessions whole takes more than the default 128 MiB.
        let config = self.config("migrate", plugins, u64::MAX);
        let mut text = std::fs::read_to_string(&config).unwrap();
        let section = "[plugins.storage-backend]\n";
        if !text.contains(section) {
            text.push_str(section);
        }
        text = text.replace(section, &format!("{section}memory-mib = 1024\n"));
        std::fs::write(&config, text).unwrap();
        let status = self.warden(&config).arg("migrate").status().unwrap();
        assert!(status.success(), "warden migrate failed");
        started.elapsed()
    }

    /// A configuration with the LRU cap `max_sessions` (and no idle expiry
    /// within the store's age), optionally with the baseline plugins.
    fn config(&self, name: &str, plugins: Option<&Path>, max_sessions: u64) -> PathBuf {
        let ttl_secs = (self.n as u64 * 60 + 10 * DAY_MS / 1000) * 2;
        let max_sessions = max_sessions.min(u64::from(u32::MAX));
        let mut text = format!(
            "[plugins.session-policy]\nsettings = {{ max-sessions = {max_sessions}, idle-ttl-secs = {ttl_secs} }}\n"
        );
        if let Some(dir) = plugins {
            text.push_str(&format!("path = {:?}\n", dir.join("policy_default.wasm")));
            text.push_str(&format!(
                "[plugins.storage-backend]\npath = {:?}\nroot = {:?}\n",
                dir.join("storage_dir.wasm"),
                self.dir.join("state")
            ));
        }
        let project = self.dir.join("project");
        text.push_str(&format!("[plugins.agent-driver]\ncwd-roots = [{project:?}]\n"));
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn warden(&self, config: &Path) -> Command {
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fake-codex");
        let path = std::env::join_paths(
            std::iter::once(fake).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--config")
            .arg(config)
            .env("WARDEN_LOG", "error")
            .env("XDG_CACHE_HOME", self.dir.parent().unwrap().join("cache"))
            .env("CODEX_HOME", self.dir.join("codex-home"))
            .env("PATH", path);
        command
    }

    fn serve(&self, name: &str, plugins: Option<&Path>, max_sessions: u64) -> McpServer {
        let mut command = self.warden(&self.config(name, plugins, max_sessions));
        command.arg("serve");
        McpServer::start(command)
    }

    fn run(&self, label: &str, plugins: Option<&Path>, rounds: usize) {
        let n = self.n;
        let warmup = (rounds / 10).max(3);
        let mut rng = Lcg(n as u64);
        let mut server = self.serve(&format!("{label}-above"), plugins, (n as u64) * 4);
        let reply = measure(warmup, rounds, || {
            let i = rng.below(n as u64) as usize;
            let answer = server.call_tool("codex-reply", json!({"threadId": thread(i), "prompt": "next"}));
            expect_ok(&answer, "codex-reply");
        });
        let list = measure(warmup, rounds, || {
            let answer = server.call_tool("listSessions", json!({}));
            expect_ok(&answer, "listSessions");
        });
        let create_above = measure(warmup, rounds, || {
            let answer = server.call_tool("codex", json!({"prompt": "hi"}));
            expect_ok(&answer, "codex");
        });
        drop(server);
        // The store now holds `n + warmup + rounds` sessions: a cap 5 below
        // evicts 6 at the first admission (a warm-up) and one at each after.
        let stored = (n + warmup + rounds) as u64;
        let mut server = self.serve(&format!("{label}-below"), plugins, stored - 5);
        let create_below = measure(warmup, rounds, || {
            let answer = server.call_tool("codex", json!({"prompt": "hi"}));
            expect_ok(&answer, "codex");
        });
        drop(server);
        for (operation, times) in [
            ("codex-reply by threadId", reply),
            ("listSessions, first page", list),
            ("codex, new session, cap above", create_above),
            ("codex, new session, cap below", create_below),
        ] {
            println!(
                "{n:<10} {:<48} {:>10.2} {:>10.2} {:>8}",
                format!("{operation} [{label}]"),
                ms(percentile(&times, 50)),
                ms(percentile(&times, 95)),
                times.len()
            );
        }
    }
}

fn measure(warmup: usize, rounds: usize, mut call: impl FnMut()) -> Vec<Duration> {
    for _ in 0..warmup {
        call();
    }
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[((sorted.len() - 1) * p) / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn expect_ok(answer: &Value, what: &str) {
    assert!(answer.get("result").is_some() && answer["result"]["isError"] != true, "{what} failed: {answer}");
}

fn thread(i: usize) -> String {
    format!("019a0000-0000-7000-8000-{i:012}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A small deterministic generator, so runs pick the same sessions.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
