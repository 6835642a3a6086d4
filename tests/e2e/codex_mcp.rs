//! The product as a user meets it: `warden serve` driven by a real MCP
//! client (rmcp) over stdio, running the REAL Codex CLI from npm against a
//! fake Responses-API provider on 127.0.0.1.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use warden_tests::fake_provider::FakeProvider;
use warden_tests::{codex_bin, warden_bin};

/// Collects progress notifications.
#[derive(Clone, Default)]
pub(crate) struct Client {
    pub(crate) progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

pub(crate) type Connection = RunningService<RoleClient, Client>;

/// A CODEX_HOME, a state directory and a project directory, with the fake
/// provider, all outside /tmp (Codex refuses helper binaries there).
pub(crate) struct World {
    dir: tempfile::TempDir,
    pub(crate) provider: FakeProvider,
}

impl World {
    pub(crate) fn new() -> Self {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tempfile::tempdir_in(base).unwrap();
        let provider = FakeProvider::start();
        provider.write_codex_home(&dir.path().join("codex-home"));
        std::fs::create_dir_all(dir.path().join("project")).unwrap();
        Self { dir, provider }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, turn_timeout_secs: u64, extra: &str) -> PathBuf {
        let codex = codex_bin();
        let text = format!(
            r#"cache-dir = {cache:?}
state-dir = {state:?}

[plugins.agent-driver]
root = {home:?}
env = ["HOME", "PATH", "CODEX_HOME", "MOCK_API_KEY"]
cwd-roots = [{project:?}]
turn-timeout-secs = {turn_timeout_secs}
[[plugins.agent-driver.programs]]
name = "codex"
path = {codex:?}
policy = "codex"
{extra}
"#,
            cache = crate::cache_dir(),
            state = self.path("state"),
            home = self.path("codex-home"),
            project = self.path("project"),
        );
        let file = self.path(&format!("warden-{turn_timeout_secs}.toml"));
        std::fs::write(&file, text).unwrap();
        file
    }

    pub(crate) async fn serve(&self, turn_timeout_secs: u64) -> (Connection, Client) {
        self.serve_with(turn_timeout_secs, "").await
    }

    /// Serve with extra configuration lines (e.g. another plugin for a role).
    async fn serve_with(&self, turn_timeout_secs: u64, extra: &str) -> (Connection, Client) {
        let config = self.config(turn_timeout_secs, extra);
        // Codex snapshots the user's login shell; an empty home keeps the
        // machine's own shell start-up files out of the test.
        let home = self.path("home");
        std::fs::create_dir_all(&home).unwrap();
        let transport = TokioChildProcess::new(tokio::process::Command::new(warden_bin()).configure(|cmd| {
            cmd.arg("--config")
                .arg(&config)
                .arg("serve")
                .env("CODEX_HOME", self.path("codex-home"))
                .env("HOME", &home)
                .env("MOCK_API_KEY", "test-key")
                .env("WARDEN_LOG", "warn");
        }))
        .unwrap();
        let client = Client::default();
        let connection = client.clone().serve(transport).await.unwrap();
        (connection, client)
    }

    pub(crate) fn project(&self) -> String {
        self.path("project").to_str().unwrap().to_string()
    }

    /// Codex processes still running with this world's CODEX_HOME.
    fn codex_processes(&self) -> Vec<String> {
        let home = format!("CODEX_HOME={}", self.path("codex-home").display());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            if environ.split(|b| *b == 0).any(|var| var == home.as_bytes()) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains("codex") && !cmdline.contains("warden") {
                    found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
                }
            }
        }
        found
    }

    /// How many of Codex's rollout files record an aborted turn (Codex writes
    /// `turn_aborted` when it is interrupted with SIGINT, not when killed).
    fn aborted_turns_in_rollouts(&self) -> usize {
        let mut stack = vec![self.path("codex-home/sessions")];
        let mut aborted = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if std::fs::read_to_string(&path).unwrap().contains(r#""type":"turn_aborted""#) {
                    aborted += 1;
                }
            }
        }
        aborted
    }

    /// Wait (bounded) for every codex process of this world to be gone.
    async fn assert_no_codex_left(&self) {
        for _ in 0..200 {
            if self.codex_processes().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("codex processes were left behind: {:?}", self.codex_processes());
    }
}

pub(crate) async fn call(connection: &Connection, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else { panic!("arguments are an object") };
    connection.call_tool(CallToolRequestParams::new(tool).with_arguments(args)).await.unwrap()
}

pub(crate) fn structured(result: &CallToolResult) -> &Value {
    result.structured_content.as_ref().expect("every result carries structuredContent")
}

pub(crate) fn text(result: &CallToolResult) -> String {
    result.content[0].as_text().expect("a text item").text.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thread_survives_replies_restarts_and_a_wiped_store() {
    let world = World::new();
    let (server, client) = world.serve(120).await;

    let tools = server.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in ["codex", "codex-reply", "listSessions", "endSession", "ping"] {
        assert!(names.contains(&tool), "{tool} is listed: {names:?}");
    }
    assert!(tools.iter().filter(|t| t.name.starts_with("codex")).all(|t| t.output_schema.is_some()));

    let first = call(&server, "codex", json!({"prompt": "hello", "cwd": world.project()})).await;
    assert_eq!(first.is_error, Some(false), "{}", text(&first));
    let out = structured(&first);
    assert_eq!(out["content"], "echo: hello");
    assert_eq!(text(&first), "echo: hello");
    let thread = out["threadId"].as_str().unwrap().to_string();
    let session = out["sessionId"].as_str().unwrap().to_string();
    assert_eq!(thread.len(), 36, "a Codex thread id: {thread}");
    assert!(out["usage"]["inputTokens"].as_u64().unwrap() > 0);
    assert!(out["transcript"].as_str().unwrap().contains(&thread), "the rollout path is reported: {out}");

    let second = call(&server, "codex-reply", json!({"threadId": thread, "prompt": "again"})).await;
    assert_eq!(structured(&second)["content"], "echo: again", "{}", text(&second));
    assert_eq!(structured(&second)["threadId"], thread.as_str());
    let history = world.provider.requests().last().unwrap()["input"].to_string();
    assert!(
        history.contains("hello") && history.contains("echo: hello"),
        "codex resumed its own thread natively"
    );
    // rmcp's client attaches a progress token to every request.
    assert!(
        client.progress.lock().unwrap().iter().any(|p| p.message.as_deref() == Some("message: echo: again"))
    );
    server.cancel().await.unwrap();

    // A new server process continues the same thread from the store.
    let (server, _) = world.serve(120).await;
    let third =
        call(&server, "codex-reply", json!({"conversationId": thread, "prompt": "after restart"})).await;
    assert_eq!(structured(&third)["content"], "echo: after restart", "{}", text(&third));
    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], session.as_str());
    assert_eq!(sessions[0]["threadId"], thread.as_str());
    assert_eq!(sessions[0]["turnCount"], 3);
    assert_eq!(sessions[0]["cwd"], world.project().as_str());
    server.cancel().await.unwrap();

    // Wipe Warden's store: the thread is rebuilt from Codex's rollout file.
    std::fs::remove_dir_all(world.path("state/sessions.d")).unwrap();
    let (server, _) = world.serve(120).await;
    let fourth = call(&server, "codex-reply", json!({"threadId": thread, "prompt": "after wipe"})).await;
    assert_eq!(structured(&fourth)["content"], "echo: after wipe", "{}", text(&fourth));
    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions[0]["id"], thread.as_str(), "a rehydrated thread is keyed by its thread id");
    assert_eq!(sessions[0]["turnCount"], 4, "three turns recovered from the rollout plus this one");
    assert_eq!(sessions[0]["cwd"], world.project().as_str(), "the cwd came back from the rollout");

    let unknown = call(
        &server,
        "codex-reply",
        json!({"threadId": "01a210ac-0000-7000-8000-000000000000", "prompt": "x"}),
    )
    .await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(
        text(&unknown).contains("no rollout file") && text(&unknown).contains("sessions/"),
        "{}",
        text(&unknown)
    );
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_by_key_progress_and_provider_errors() {
    let world = World::new();
    let (server, client) = world.serve(120).await;

    let result = call(
        &server,
        "codex",
        json!({"prompt": "run it [command]", "sessionId": "Review #1", "cwd": world.project(), "sandbox": "read-only"}),
    )
    .await;
    assert_eq!(structured(&result)["content"], "ran command", "{}", text(&result));
    assert_eq!(structured(&result)["sessionId"], "Review #1");
    let progress: Vec<String> =
        client.progress.lock().unwrap().iter().filter_map(|p| p.message.clone()).collect();
    assert!(progress.iter().any(|m| m.starts_with("turn-started")), "{progress:?}");
    assert!(progress.iter().any(|m| m.starts_with("command:") && m.contains("(exit 0)")), "{progress:?}");
    assert!(progress.iter().any(|m| m.starts_with("message: ran command")), "{progress:?}");

    let again = call(&server, "codex", json!({"prompt": "second", "sessionId": "Review #1"})).await;
    assert_eq!(structured(&again)["content"], "echo: second");
    assert_eq!(
        structured(&again)["threadId"],
        structured(&result)["threadId"],
        "the session resumed its thread"
    );

    let failed = call(&server, "codex", json!({"prompt": "please [fail500]", "cwd": world.project()})).await;
    assert_eq!(failed.is_error, Some(true));
    assert!(text(&failed).contains("high demand"), "codex's own message: {}", text(&failed));
    assert_eq!(structured(&failed)["error"]["kind"], "agent");

    let reset = call(
        &server,
        "codex",
        json!({"prompt": "fresh start", "sessionId": "Review #1", "resetSession": true}),
    )
    .await;
    assert_ne!(
        structured(&reset)["threadId"],
        structured(&result)["threadId"],
        "a reset starts a new thread"
    );

    let ended = call(&server, "endSession", json!({"sessionId": "Review #1"})).await;
    assert_eq!(structured(&ended)["removed"], true);
    let transcript = structured(&reset)["transcript"].as_str().unwrap().to_string();
    assert!(
        std::path::Path::new(&transcript).is_file(),
        "ending a session keeps Codex's rollout: {transcript}"
    );
    let missing = call(&server, "codex-reply", json!({"sessionId": "Review #1", "prompt": "x"})).await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).contains("no session"), "{}", text(&missing));

    let bad = server
        .call_tool(
            CallToolRequestParams::new("codex")
                .with_arguments(json!({"prompt": "x", "sandbox": "yolo"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("`sandbox`"), "{bad}");
    let unknown = server.call_tool(CallToolRequestParams::new("nope")).await.unwrap_err();
    assert!(unknown.to_string().contains("unknown tool `nope`"), "{unknown}");
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_slow_turn_leaves_no_codex_behind() {
    let world = World::new();
    let (server, _) = world.serve(120).await;
    let params = CallToolRequestParams::new("codex").with_arguments(
        json!({"prompt": "take your time [slow]", "sessionId": "slow", "cwd": world.project()})
            .as_object()
            .unwrap()
            .clone(),
    );
    let handle = server
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    warden_tests::wait_for_async("codex to reach the provider", || !world.provider.requests().is_empty())
        .await;
    assert!(!world.codex_processes().is_empty(), "codex is running the slow turn");
    let busy = call(&server, "codex", json!({"prompt": "meanwhile", "sessionId": "slow"})).await;
    assert_eq!(busy.is_error, Some(true));
    assert_eq!(structured(&busy)["error"]["kind"], "busy", "{}", text(&busy));
    // A second Warden process sharing the store refuses the same session too.
    let (other, _) = world.serve(120).await;
    let elsewhere = call(&other, "codex", json!({"prompt": "meanwhile", "sessionId": "slow"})).await;
    assert_eq!(structured(&elsewhere)["error"]["kind"], "busy", "{}", text(&elsewhere));
    assert!(text(&elsewhere).contains("another Warden process"), "{}", text(&elsewhere));
    let invalid = call(&other, "codex", json!({"prompt": "x", "sessionId": "bad\nid"})).await;
    assert_eq!(structured(&invalid)["error"]["kind"], "invalid", "{}", text(&invalid));
    assert!(text(&invalid).contains("control character"), "{}", text(&invalid));
    other.cancel().await.unwrap();
    handle.cancel(Some("user pressed stop".into())).await.unwrap();
    world.assert_no_codex_left().await;
    assert_eq!(world.aborted_turns_in_rollouts(), 1, "codex was interrupted, and recorded the aborted turn");

    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert!(
        sessions.iter().all(|s| s["id"] != "slow"),
        "a cancelled first turn records nothing: {sessions:?}"
    );
    let after =
        call(&server, "codex", json!({"prompt": "now quickly", "sessionId": "slow", "cwd": world.project()}))
            .await;
    assert_eq!(structured(&after)["content"], "echo: now quickly", "{}", text(&after));
    let lock_files: Vec<_> = std::fs::read_dir(world.path("state/turn-locks"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(lock_files, ["sessions.lock"], "turn locks share one file, however many sessions");
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_past_its_timeout_is_stopped() {
    let world = World::new();
    let (server, _) = world.serve(2).await;
    let result = call(&server, "codex", json!({"prompt": "never ends [slow]", "cwd": world.project()})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(structured(&result)["error"]["kind"], "timeout", "{}", text(&result));
    assert!(text(&result).contains("2 s"), "{}", text(&result));
    world.assert_no_codex_left().await;
    assert_eq!(world.aborted_turns_in_rollouts(), 1, "codex was interrupted, and recorded the aborted turn");
    server.cancel().await.unwrap();
}

/// The Python redaction plugin swapped in by configuration alone: secrets in
/// a prompt reach neither codex (its argv, hence the provider) nor the store.
#[tokio::test(flavor = "multi_thread")]
async fn the_redacting_context_plugin_keeps_secrets_from_codex_and_the_store() {
    let secret_key = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7cDe";
    let secret_token = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
    let world = World::new();
    let plugin = warden_tests::redact_plugin();
    let (server, _) = world.serve_with(120, &format!("[plugins.context-builder]\npath = {plugin:?}\n")).await;
    let ping = call(&server, "ping", json!({})).await;
    assert_eq!(structured(&ping)["plugins"]["context-builder"], "context_redact_py");

    let first = call(
        &server,
        "codex",
        json!({"prompt": format!("use {secret_key} to deploy"), "sessionId": "secret", "cwd": world.project()}),
    )
    .await;
    assert_eq!(first.is_error, Some(false), "{}", text(&first));
    assert_eq!(structured(&first)["content"], "echo: use [REDACTED:openai-key] to deploy");
    let second =
        call(&server, "codex", json!({"prompt": format!("and {secret_token}"), "sessionId": "secret"})).await;
    assert_eq!(structured(&second)["content"], "echo: and [REDACTED:github-token]", "{}", text(&second));

    let sent = serde_json::to_string(&world.provider.requests()).unwrap();
    for secret in [secret_key, secret_token] {
        assert!(!sent.contains(secret), "the provider (so codex's argv) saw {secret}");
        let mut stored = String::new();
        for entry in std::fs::read_dir(world.path("state/sessions.d")).unwrap() {
            stored.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        assert!(stored.contains("[REDACTED:"), "the stored session holds the redacted prompts");
        assert!(!stored.contains(secret), "the stored session holds {secret}");
    }
    server.cancel().await.unwrap();
}

/// The parent pid of `pid`, from /proc (None once it is gone).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The field after the command name, which is in parentheses and may hold spaces.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Processes whose command line contains `token`.
fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(token) && !cmdline.contains("cargo") {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// An MCP server from Codex's own configuration is started by codex in a
/// process group of its own, outside its sandbox; this one also leaves a
/// `setsid` double-forked sleeper behind, which neither codex's own clean-up
/// nor a death signal reaches. Warden is killed with SIGKILL mid-turn, and
/// the sleeper must still end with the turn.
#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_server_codex_starts_ends_when_warden_is_killed() {
    let world = World::new();
    let token = format!("86400.{}", std::process::id());
    let mut config = std::fs::read_to_string(world.path("codex-home/config.toml")).unwrap();
    config.push_str(&format!(
        "\n[mcp_servers.escapee]\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"(setsid sleep {token} &); exec sleep 86401\"]\nstartup_timeout_sec = 2\n"
    ));
    std::fs::write(world.path("codex-home/config.toml"), config).unwrap();
    let (server, _) = world.serve(120).await;
    let params = CallToolRequestParams::new("codex").with_arguments(
        json!({"prompt": "hold on [slow]", "cwd": world.project()}).as_object().unwrap().clone(),
    );
    let _pending = server
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Observation, bounded: codex starts its MCP servers before the model call.
    for _ in 0..600 {
        if !processes_with(&token).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!processes_with(&token).is_empty(), "codex started the configured MCP server");
    let world_dir = world.dir.path().to_str().unwrap().to_string();
    // Each namespace's PID 1 shares Warden's memory, so its command line too: Warden is this test's child.
    let wardens: Vec<i32> = processes_with(&world_dir)
        .iter()
        .filter(|p| p.contains(" serve") && !p.contains("codex"))
        .map(|p| p.split(':').next().unwrap().parse().unwrap())
        .filter(|pid| parent_of(*pid) == Some(std::process::id() as i32))
        .collect();
    assert_eq!(wardens.len(), 1, "one warden serves this world: {wardens:?}");
    // SAFETY: kill(2) on a pid this test found and owns.
    assert_eq!(unsafe { libc::kill(wardens[0], libc::SIGKILL) }, 0);
    for _ in 0..200 {
        if processes_with(&token).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the MCP server codex started outlived a SIGKILLed Warden: {:?}", processes_with(&token));
}
