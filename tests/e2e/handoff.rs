//! Several agents from one Warden, and one session moving between them: the
//! REAL Codex CLI, Claude Code and Gemini CLI (all from npm) against one fake
//! provider on 127.0.0.1 that answers OpenAI's Responses API, Anthropic's
//! Messages API and the Gemini API and records every request, so the test
//! can see what history each agent was given.

use std::path::PathBuf;

use rmcp::ServiceExt;
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};
use serde_json::{Value, json};
use warden_tests::fake_provider::FakeProvider;
use warden_tests::{claude_bin, codex_bin, gemini_bin, warden_bin};

use crate::codex_mcp::{Client, Connection, call, structured, text};

struct World {
    dir: tempfile::TempDir,
    provider: FakeProvider,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let provider = FakeProvider::start();
        provider.write_codex_home(&dir.path().join("codex-home"));
        for sub in ["claude-config", "home", "project", "tmp", "gemini-home/.gemini"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // Gemini CLI uses a base URL with an API key only when its settings say so.
        let settings = json!({"security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": false}, "general": {"maxAttempts": 1}});
        std::fs::write(dir.path().join("gemini-home/.gemini/settings.json"), settings.to_string()).unwrap();
        Self { dir, provider }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn project(&self) -> String {
        self.path("project").to_str().unwrap().to_string()
    }

    /// `warden serve` with `agents` (a configuration's `[agents.*]` sections).
    async fn serve(&self, agents: &str) -> Connection {
        let config = self.path("warden.toml");
        let text = format!(
            "cache-dir = {cache:?}\nstate-dir = {state:?}\n{agents}",
            cache = crate::cache_dir(),
            state = self.path("state"),
        );
        std::fs::write(&config, text).unwrap();
        let claude_dir = claude_bin().parent().unwrap().to_path_buf();
        let gemini_dir = gemini_bin().parent().unwrap().to_path_buf();
        let transport = TokioChildProcess::new(tokio::process::Command::new(warden_bin()).configure(|cmd| {
            cmd.env_clear()
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .env("PATH", format!("{}:{}:/usr/bin:/bin", claude_dir.display(), gemini_dir.display()))
                .env("TMPDIR", self.path("tmp"))
                .env("GEMINI_CLI_HOME", self.path("gemini-home"))
                .env("GEMINI_API_KEY", "test-key")
                .env("GOOGLE_GEMINI_BASE_URL", self.provider.gemini_base_url())
                .env("HOME", self.path("home"))
                .env("CODEX_HOME", self.path("codex-home"))
                .env("MOCK_API_KEY", "test-key")
                .env("CLAUDE_CONFIG_DIR", self.path("claude-config"))
                .env("ANTHROPIC_BASE_URL", self.provider.anthropic_base_url())
                .env("ANTHROPIC_API_KEY", "test-key")
                .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                .env("CLAUDE_CODE_MAX_RETRIES", "0")
                .env("WARDEN_LOG", "warn");
        }))
        .unwrap();
        Client::default().serve(transport).await.unwrap()
    }

    /// The three agents, each with its own grant.
    fn all(&self) -> String {
        format!(
            r#"
[agents.codex]
root = {home:?}
env = ["HOME", "PATH", "CODEX_HOME", "MOCK_API_KEY"]
cwd-roots = [{project:?}]
[[agents.codex.programs]]
name = "codex"
path = {codex:?}
policy = "codex"

[agents.claude]
cwd-roots = [{project:?}]

[agents.gemini]
cwd-roots = [{project:?}]
"#,
            home = self.path("codex-home"),
            project = self.path("project"),
            codex = codex_bin(),
        )
    }
}

fn tool_names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

/// Every text a provider request carries, as one string.
fn request_text(request: &Value) -> String {
    request.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_session_moves_from_codex_to_claude_back_and_on_to_gemini() {
    let world = World::new();
    let server = world.serve(&world.all()).await;
    let tools = tool_names(&server.list_all_tools().await.unwrap());
    for tool in [
        "codex",
        "codex-reply",
        "claude",
        "claude-reply",
        "gemini",
        "gemini-reply",
        "listSessions",
        "endSession",
        "ping",
    ] {
        assert!(tools.contains(&tool.to_string()), "{tool} in {tools:?}");
    }
    let ping = structured(&call(&server, "ping", json!({})).await).clone();
    let agents: Vec<(String, bool)> = ping["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["available"].as_bool().unwrap()))
        .collect();
    let expected = ["codex", "claude", "gemini"].map(|a| (a.to_string(), true));
    assert_eq!(agents, expected, "{ping}");

    let first = call(
        &server,
        "codex",
        json!({"prompt": "remember the word zebra", "sessionId": "shared", "cwd": world.project()}),
    )
    .await;
    assert_eq!(first.is_error, Some(false), "{}", text(&first));
    let codex_thread = structured(&first)["threadId"].as_str().unwrap().to_string();
    let codex_answer = structured(&first)["content"].as_str().unwrap().to_string();
    assert_eq!(codex_answer, "echo: remember the word zebra");
    let anthropic_before = world.provider.messages_requests().len();

    // Claude continues the Codex session: its first request carries the Codex turn.
    let second =
        call(&server, "claude", json!({"prompt": "what was the word?", "sessionId": "shared"})).await;
    assert_eq!(second.is_error, Some(false), "{}", text(&second));
    let claude_thread = structured(&second)["threadId"].as_str().unwrap().to_string();
    assert_ne!(claude_thread, codex_thread, "Claude Code started a thread of its own");
    let sent = world.provider.messages_requests();
    let first_claude_request = request_text(&sent[anthropic_before]);
    for carried in ["remember the word zebra", &codex_answer, "what was the word?"] {
        assert!(first_claude_request.contains(carried), "{carried:?} not in {first_claude_request}");
    }
    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(
        (&sessions[0]["id"], &sessions[0]["agent"], &sessions[0]["turnCount"], &sessions[0]["threadId"]),
        (&json!("shared"), &json!("claude"), &json!(2), &json!(claude_thread)),
        "the session now holds Claude's thread and both turns"
    );
    let only_codex = call(&server, "listSessions", json!({"agent": "codex"})).await;
    assert_eq!(structured(&only_codex)["sessions"], json!([]), "{}", text(&only_codex));

    // Claude continues natively by its thread id.
    let third =
        call(&server, "claude-reply", json!({"threadId": claude_thread, "prompt": "and again"})).await;
    assert_eq!(structured(&third)["threadId"], claude_thread.as_str(), "{}", text(&third));

    // Back to Codex: a new Codex thread that is given both agents' turns.
    let openai_before = world.provider.requests().len();
    let fourth = call(&server, "codex", json!({"prompt": "back to you", "sessionId": "shared"})).await;
    assert_eq!(fourth.is_error, Some(false), "{}", text(&fourth));
    let new_codex_thread = structured(&fourth)["threadId"].as_str().unwrap().to_string();
    assert_ne!(new_codex_thread, codex_thread, "no native resume across agents: Codex starts a new thread");
    let first_codex_request = request_text(&world.provider.requests()[openai_before]);
    for carried in ["remember the word zebra", "what was the word?", "and again", "back to you"] {
        assert!(first_codex_request.contains(carried), "{carried:?} not in {first_codex_request}");
    }
    let listed = call(&server, "listSessions", json!({"agent": "codex"})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(
        (&sessions[0]["agent"], &sessions[0]["turnCount"]),
        (&json!("codex"), &json!(4)),
        "{sessions:?}"
    );
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_whose_program_is_missing_is_unavailable_not_fatal() {
    let world = World::new();
    let missing = r#"
[agents.codex]
[[agents.codex.programs]]
name = "codex"
policy = "codex"
path = "/nonexistent/codex"

[agents.claude]
"#;
    let server = world.serve(missing).await;
    let ping = structured(&call(&server, "ping", json!({})).await).clone();
    let codex = &ping["agents"][0];
    assert_eq!((&codex["name"], &codex["available"]), (&json!("codex"), &json!(false)), "{ping}");
    assert!(codex["problem"].as_str().unwrap().contains("/nonexistent/codex"), "{ping}");
    assert_eq!(ping["agents"][1]["available"], true, "{ping}");
    let refused = call(&server, "codex", json!({"prompt": "hi"})).await;
    assert_eq!(refused.is_error, Some(true));
    let message = text(&refused);
    assert!(
        message.contains("`codex` is unavailable") && message.contains("/nonexistent/codex"),
        "{message}"
    );
    server.cancel().await.unwrap();
}
