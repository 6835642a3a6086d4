//! The Gemini CLI driver (`[agents.gemini]`, tools `gemini` and
//! `gemini-reply`), as a user meets it: `warden serve` over stdio running
//! the REAL Gemini CLI from npm, headless, against the fake Gemini API on
//! 127.0.0.1, under the embedded agent-gemini and its default grant. Gemini
//! CLI needs `selectedType = "gemini-api-key"` in its settings to use a
//! base URL with an API key; the test's Gemini CLI home has it.

use std::path::PathBuf;

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};
use serde_json::{Value, json};
use warden_permissions::value::check_uuid;
use warden_tests::fake_provider::FakeProvider;
use warden_tests::{gemini_bin, warden_bin};

use crate::codex_mcp::{Client, Connection, call, structured, text};

struct World {
    dir: tempfile::TempDir,
    provider: FakeProvider,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        for sub in ["gemini-home/.gemini", "home", "project", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let settings = json!({
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": false},
            "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false, "maxAttempts": 1},
        });
        std::fs::write(dir.path().join("gemini-home/.gemini/settings.json"), settings.to_string()).unwrap();
        Self { dir, provider: FakeProvider::start() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn project(&self) -> String {
        self.path("project").to_str().unwrap().to_string()
    }

    /// `warden serve` serving only the agent `gemini`, turns limited to `turn_timeout_secs`.
    async fn serve(&self, turn_timeout_secs: u64) -> (Connection, Client) {
        let config = self.path("warden.toml");
        std::fs::write(
            &config,
            format!(
                "cache-dir = {cache:?}\nstate-dir = {state:?}\n[agents.gemini]\ncwd-roots = [{project:?}]\n\
                 turn-timeout-secs = {turn_timeout_secs}\n",
                cache = crate::cache_dir(),
                state = self.path("state"),
                project = self.path("project"),
            ),
        )
        .unwrap();
        let bin_dir = gemini_bin().parent().unwrap().to_path_buf();
        let transport = TokioChildProcess::new(tokio::process::Command::new(warden_bin()).configure(|cmd| {
            // Only what the test chooses: none of the machine's own GEMINI_* or GOOGLE_* settings.
            cmd.env_clear()
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()))
                .env("HOME", self.path("home"))
                .env("TMPDIR", self.path("tmp"))
                .env("GEMINI_CLI_HOME", self.path("gemini-home"))
                .env("GEMINI_API_KEY", "test-key")
                .env("GOOGLE_GEMINI_BASE_URL", self.provider.gemini_base_url())
                .env("WARDEN_LOG", "warn");
        }))
        .unwrap();
        let client = Client::default();
        let connection = client.clone().serve(transport).await.unwrap();
        (connection, client)
    }

    /// Processes still running in this world's project directory (every
    /// turn's cwd), other than Warden. (Gemini CLI's environment cannot be
    /// read back from /proc: Node rewrites the memory it was in.)
    fn gemini_processes(&self) -> Vec<String> {
        let project = self.path("project");
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if std::fs::read_link(entry.path().join("cwd")).ok().as_ref() != Some(&project) {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if !cmdline.starts_with(warden_bin().to_str().unwrap()) {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
        found
    }
}

fn progress(client: &Client) -> Vec<String> {
    client.progress.lock().unwrap().iter().filter_map(|p| p.message.clone()).collect()
}

fn contents(request: &Value) -> String {
    request["contents"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gemini_session_survives_replies_restarts_and_a_wiped_store() {
    let world = World::new();
    let (server, client) = world.serve(120).await;
    let ping = call(&server, "ping", json!({})).await;
    let agents = &structured(&ping)["agents"];
    assert_eq!(agents, &json!([{"name": "gemini", "plugin": "agent-gemini", "available": true}]), "{agents}");

    let first = call(&server, "gemini", json!({"prompt": "hello", "cwd": world.project()})).await;
    assert_eq!(first.is_error, Some(false), "{}", text(&first));
    let out = structured(&first);
    assert_eq!(out["content"], "echo: hello");
    let thread = out["threadId"].as_str().unwrap().to_string();
    check_uuid(&thread).expect("Gemini CLI's session id is the thread id");
    assert!(out["usage"]["inputTokens"].as_u64().unwrap() > 0, "{out}");
    let transcript = PathBuf::from(out["transcript"].as_str().unwrap());
    assert!(transcript.is_file(), "{}", transcript.display());
    assert!(transcript.starts_with(world.path("gemini-home/.gemini/tmp")), "{}", transcript.display());

    let second = call(&server, "gemini-reply", json!({"threadId": thread, "prompt": "again"})).await;
    assert_eq!(structured(&second)["content"], "echo: again", "{}", text(&second));
    assert_eq!(structured(&second)["threadId"], thread.as_str(), "gemini resumed its own session");
    let last = contents(world.provider.gemini_requests().last().unwrap());
    assert!(
        last.contains("hello") && last.contains("echo: hello"),
        "the resumed turn carries the history: {last}"
    );
    let shown = progress(&client);
    for expected in ["turn-started: gemini started", "message: echo: again", "turn-completed: turn completed"]
    {
        assert!(shown.iter().any(|m| m.starts_with(expected)), "{expected}: {shown:?}");
    }
    server.cancel().await.unwrap();

    // A new server process continues the same session from the store.
    let (server, _) = world.serve(120).await;
    let third = call(&server, "gemini-reply", json!({"threadId": thread, "prompt": "after restart"})).await;
    assert_eq!(structured(&third)["content"], "echo: after restart", "{}", text(&third));
    server.cancel().await.unwrap();

    // Wipe Warden's store: the session is rebuilt from Gemini CLI's transcript.
    std::fs::remove_dir_all(world.path("state/sessions.d")).unwrap();
    let (server, _) = world.serve(120).await;
    let fourth = call(&server, "gemini-reply", json!({"threadId": thread, "prompt": "after wipe"})).await;
    assert_eq!(structured(&fourth)["content"], "echo: after wipe", "{}", text(&fourth));
    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], thread.as_str(), "a rehydrated session is keyed by its thread id");
    assert_eq!(sessions[0]["agent"], "gemini");
    assert_eq!(sessions[0]["turnCount"], 4, "three turns recovered from the transcript plus this one");
    assert_eq!(sessions[0]["cwd"], world.project().as_str(), "the cwd came back from the Gemini CLI home");

    let unknown = call(
        &server,
        "gemini-reply",
        json!({"threadId": "7385f697-0000-4000-8000-000000000000", "prompt": "x"}),
    )
    .await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(text(&unknown).contains("no transcript for Gemini CLI session"), "{}", text(&unknown));
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_error_is_the_turns_error_and_a_cancelled_turn_leaves_no_gemini() {
    let world = World::new();
    let (server, _) = world.serve(120).await;
    let failed = call(&server, "gemini", json!({"prompt": "please [fail400]", "cwd": world.project()})).await;
    assert_eq!(failed.is_error, Some(true));
    let message = text(&failed);
    assert!(
        message.contains("gemini failed") && message.contains("induced failure ([fail400])"),
        "{message}"
    );
    let refused = call(
        &server,
        "gemini",
        json!({"prompt": "x", "cwd": world.project(), "sandbox": "danger-full-access"}),
    )
    .await;
    assert_eq!(structured(&refused)["error"]["kind"], "invalid", "{}", text(&refused));

    let params = CallToolRequestParams::new("gemini").with_arguments(
        json!({"prompt": "take your time [slow]", "sessionId": "slow", "cwd": world.project()})
            .as_object()
            .unwrap()
            .clone(),
    );
    let before = world.provider.gemini_requests().len();
    let handle = server
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    warden_tests::wait_for_async("gemini to reach the provider", || {
        world.provider.gemini_requests().len() > before
    })
    .await;
    assert!(!world.gemini_processes().is_empty(), "gemini is running the slow turn");
    let busy = call(&server, "gemini", json!({"prompt": "meanwhile", "sessionId": "slow"})).await;
    assert_eq!(structured(&busy)["error"]["kind"], "busy", "{}", text(&busy));
    handle.cancel(Some("user pressed stop".into())).await.unwrap();
    for _ in 0..200 {
        if world.gemini_processes().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(world.gemini_processes(), Vec::<String>::new(), "gemini outlived its cancelled turn");
    server.cancel().await.unwrap();
}
