//! `warden serve` under hostile plugins, from the attacker's side: a progress
//! flood to a client that does not read keeps Warden's memory bounded (peak
//! RSS under 256 MiB, read from /proc), a storage plugin that hangs in a lock
//! wait or always answers `conflict` ends the call with an error (a deadline
//! error, or the client's cancellation), and agent turns hung up to the
//! plugin's limit leave other sessions answering and refuse the next turn,
//! naming the limit.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_tests::{wait_until_locked, warden_bin};

/// Peak resident memory Warden may reach under any attack here.
const RSS_LIMIT_KIB: u64 = 256 * 1024;

/// Longest a test here may keep one `warden serve`: past it the server is
/// killed, so a wait for a message that never comes fails instead of hanging.
const SERVE_LIMIT: Duration = Duration::from_secs(180);

/// Kills the server at [`SERVE_LIMIT`] unless dropped first.
struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    fn arm(pid: u32) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                if started.elapsed() > SERVE_LIMIT {
                    eprintln!(
                        "warden serve (pid {pid}) outlived {SERVE_LIMIT:?}; killing it so the test fails"
                    );
                    Command::new("kill").args(["-KILL", &pid.to_string()]).status().ok();
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Self(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn guest(file: &str) -> PathBuf {
    Path::new(warden::runtime::embedded::GUEST_DIR).join(file)
}

/// A running `warden serve`; stdout is read only when asked, stderr always
/// (so Warden never blocks on its log), line by line.
struct Serve {
    dir: tempfile::TempDir,
    child: Child,
    stdin: ChildStdin,
    stdout: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
    log: mpsc::Receiver<String>,
    _watchdog: Watchdog,
}

impl Serve {
    /// Start with `config` (a `{dir}` in it is replaced by a private directory)
    /// and finish the MCP handshake.
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config.replace("{dir}", dir.path().to_str().unwrap());
        let file = dir.path().join("warden.toml");
        std::fs::write(&file, format!("cache-dir = {:?}\n{config}", crate::cache_dir())).unwrap();
        let mut child = Command::new(warden_bin())
            .args(["serve", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--config")
            .arg(&file)
            .env("CODEX_HOME", dir.path().join("codex"))
            .env("WARDEN_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line, log) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for text in stderr.lines().map_while(Result::ok) {
                line.send(text).ok();
            }
        });
        let stdin = child.stdin.take().unwrap();
        let stdout = Some(BufReader::new(child.stdout.take().unwrap()).lines());
        let _watchdog = Watchdog::arm(child.id());
        let mut serve = Self { dir, child, stdin, stdout, log, _watchdog };
        serve.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}));
        serve.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        serve.response(0);
        serve
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message from Warden.
    fn next(&mut self) -> Value {
        let line = self.stdout.as_mut().unwrap().next().expect("warden keeps answering").unwrap();
        serde_json::from_str(&line).unwrap()
    }

    /// Read until the response to `id`; the messages passed on the way are dropped.
    fn response(&mut self, id: u64) -> Value {
        loop {
            let message = self.next();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// Wait until Warden logs a line containing `text`.
    fn wait_for_log(&self, text: &str) {
        loop {
            let line = self.log.recv().unwrap_or_else(|_| panic!("warden exited before logging {text:?}"));
            if line.contains(text) {
                return;
            }
        }
    }

    /// Warden's peak resident memory so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) {
        self.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}}));
    }

    fn finish(mut self) {
        drop(self.stdin);
        if let Some(lines) = self.stdout.take() {
            lines.for_each(drop);
        }
        assert!(self.child.wait().unwrap().success(), "warden serve exits cleanly");
    }
}

/// The error a failed tool call carries: (kind, message).
fn tool_error(response: &Value) -> (String, String) {
    let result = &response["result"];
    assert_eq!(result["isError"], true, "expected an error: {response}");
    let error = &result["structuredContent"]["error"];
    (error["kind"].as_str().unwrap().into(), error["message"].as_str().unwrap().into())
}

fn hostile_storage(extra: &str) -> String {
    format!(
        "[plugins.storage-backend]\npath = {:?}\nroot = \"{{dir}}/store\"\n{extra}\n\
         [plugins.agent-driver]\npath = {:?}\n",
        guest("hostile_storage.wasm"),
        guest("hostile_agent.wasm")
    )
}

#[test]
fn a_progress_flood_to_a_client_that_does_not_read_keeps_memory_bounded() {
    let config =
        format!("[plugins.agent-driver]\npath = {:?}\ncpu-budget-ms = 60000\n", guest("hostile_agent.wasm"));
    let mut serve = Serve::start(&config);
    // 6000 events of 64 KiB: 375 MiB if Warden kept them all for the client.
    serve.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"codex","arguments":{"prompt":"flood:6000|65536"},"_meta":{"progressToken":"flood"}}}));
    serve.wait_for_log("flood done");
    let peak = serve.peak_rss_kib();
    assert!(peak < RSS_LIMIT_KIB, "warden reached {} MiB while the client did not read", peak >> 10);
    let (mut progress, mut dropped) = (0, false);
    let answer = loop {
        let message = serve.next();
        if message["id"] == 1 {
            break message;
        }
        let text = message["params"]["message"].as_str().unwrap_or_default();
        assert!(text.len() <= 4096 + 16, "a progress message of {} bytes reached the client", text.len());
        dropped |= text.contains("progress events dropped");
        progress += 1;
    };
    assert_eq!(answer["result"]["structuredContent"]["content"], "reported 6000 events of 65536 bytes");
    assert!(dropped && progress < 6000, "the client is told what it missed ({progress} notifications)");
    serve.finish();
}

#[test]
fn a_storage_call_hung_in_a_lock_wait_ends_with_its_deadline() {
    let mut serve = Serve::start(&hostile_storage("call-timeout-ms = 500"));
    serve.call(1, "codex", json!({"prompt":"harmless","sessionId":"lock-hang:held.lock"}));
    serve.call(2, "ping", json!({}));
    assert_eq!(serve.response(2)["result"]["structuredContent"]["status"], "pong");
    let (kind, message) = tool_error(&serve.response(1));
    assert_eq!(kind, "timeout", "{message}");
    assert!(
        message.contains("hostile_storage")
            && message.contains("0.5 s")
            && message.contains("call-timeout-ms"),
        "the error names the plugin, the limit and its setting: {message}"
    );
    let peak = serve.peak_rss_kib();
    assert!(peak < RSS_LIMIT_KIB, "warden reached {} MiB", peak >> 10);
    serve.finish();
}

#[test]
fn a_client_cancellation_ends_a_storage_call_hung_in_a_lock_wait() {
    let mut serve = Serve::start(&hostile_storage("call-timeout-ms = 86400000"));
    serve.call(1, "codex", json!({"prompt":"harmless","sessionId":"lock-hang:held.lock"}));
    // The plugin holds the lock, then waits for it again.
    wait_until_locked(&serve.path("store/held.lock"));
    let lock = std::fs::File::open(serve.path("store/held.lock")).unwrap();
    serve.send(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}));
    // Returns once the hung call has ended and its locks went with it.
    lock.lock().unwrap();
    lock.unlock().unwrap();
    serve.call(2, "listSessions", json!({}));
    assert!(serve.response(2)["result"]["structuredContent"]["sessions"].is_array());
    serve.finish();
}

#[test]
fn a_store_that_always_answers_conflict_ends_the_turn_with_an_error() {
    let mut serve = Serve::start(&hostile_storage(""));
    serve.call(1, "codex", json!({"prompt":"harmless","sessionId":"conflict-forever"}));
    let (kind, message) = tool_error(&serve.response(1));
    assert_eq!(kind, "conflict", "{message}");
    assert!(
        message.contains("not recorded")
            && message.contains("5 saves")
            && message.contains("hostile_storage"),
        "{message}"
    );
    serve.call(2, "codex", json!({"prompt":"harmless","sessionId":"conflict-forever"}));
    assert_eq!(tool_error(&serve.response(2)).0, "conflict", "the session's turn lock was released");
    serve.finish();
}

#[test]
fn hung_agent_turns_up_to_the_limit_leave_other_calls_answering() {
    let config = format!(
        "[plugins.agent-driver]\npath = {:?}\nmax-concurrent-calls = 2\ncall-timeout-ms = 300\n\
         cwd-roots = [\"{{dir}}\"]\n[[plugins.agent-driver.programs]]\nname = \"sleep\"\npath = \"/bin/sleep\"\nargs = [\"*\"]\nunrestricted = true\n",
        guest("hostile_agent.wasm")
    );
    let mut serve = Serve::start(&config);
    for (id, session) in [(1, "hung-a"), (2, "hung-b")] {
        serve.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{
            "name":"codex","arguments":{"prompt":"spawn:|sleep 86400","sessionId":session},
            "_meta":{"progressToken":session}}}));
    }
    // Each hung turn reports its child's pid once it waits on it.
    let mut spawned = 0;
    while spawned < 2 {
        let message = serve.next();
        spawned +=
            usize::from(message["params"]["message"].as_str().is_some_and(|m| m.starts_with("spawned")));
    }
    serve.call(3, "codex", json!({"prompt":"harmless","sessionId":"third"}));
    serve.call(4, "listSessions", json!({}));
    assert!(serve.response(4)["result"]["structuredContent"]["sessions"].is_array(), "other calls answer");
    let (kind, message) = tool_error(&serve.response(3));
    assert_eq!(kind, "busy", "{message}");
    assert!(
        message.contains("its 2 concurrent calls were all busy")
            && message.contains("`max-concurrent-calls` under [plugins.agent-driver]"),
        "the refusal names the limit and its setting: {message}"
    );
    for id in [1, 2] {
        serve.send(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":id}}));
    }
    // A cancelled call gets no response; Warden logs when it has ended.
    serve.wait_for_log("the cancelled call has ended");
    serve.wait_for_log("the cancelled call has ended");
    serve.call(5, "codex", json!({"prompt":"harmless","sessionId":"after"}));
    assert_eq!(serve.response(5)["result"]["structuredContent"]["content"], "harmless");
    let peak = serve.peak_rss_kib();
    assert!(peak < RSS_LIMIT_KIB, "warden reached {} MiB", peak >> 10);
    serve.finish();
}
