//! The Claude Code driver (`[agents.claude]`, tools `claude` and `claude-reply`), as a user meets it:
//! `warden serve` over stdio running the REAL Claude Code from npm against
//! the fake Anthropic Messages API on 127.0.0.1, under the embedded
//! plugin's default grant (`claude` found on PATH under the built-in
//! `claude` policy, the provider's variables passed on, CLAUDE_CONFIG_DIR's
//! `projects` as the read-only root). The agent's tools are still `codex` and
//! `codex-reply` here. Then the grant from the attacker's side: a hostile
//! agent plugin cannot make `claude` load servers, settings or directories,
//! nor read Claude Code's credentials.

use std::path::{Path, PathBuf};

use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientRequest, Request, ServerResult};
use rmcp::service::PeerRequestOptions;
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};
use serde_json::{Value, json};
use warden::config::Config;
use warden::contract::role::Role;
use warden::runtime::loaded::CallOptions;
use warden::types::PluginError;
use warden_permissions::value::check_uuid;
use warden_permissions::{ArgumentCheck, ProgramGrant, RequestLimits};
use warden_tests::fake_provider::FakeProvider;
use warden_tests::{
    agent_turn, claude_bin, guest_wasm, info, patch_bytes, process_policy, runtime, warden_bin,
};

use crate::codex_mcp::{Client, Connection, call, structured, text};

/// A CLAUDE_CONFIG_DIR, a home, a state directory and a project, with the fake provider.
struct World {
    dir: tempfile::TempDir,
    provider: FakeProvider,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        for sub in ["claude-config", "home", "project"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Self { dir, provider: FakeProvider::start() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn project(&self) -> String {
        self.path("project").to_str().unwrap().to_string()
    }

    /// `warden serve` serving only the agent `claude`, with nothing else about it
    /// configured but the working root (and `extra` lines for its section);
    /// Claude Code retries a failed request `retries` times.
    async fn serve(&self, retries: u32, extra: &str) -> (Connection, Client) {
        self.serve_for(120, retries, extra).await
    }

    /// As [`World::serve`], with turns limited to `turn_timeout_secs`.
    async fn serve_for(&self, turn_timeout_secs: u64, retries: u32, extra: &str) -> (Connection, Client) {
        let config = self.path("warden.toml");
        std::fs::write(
            &config,
            format!(
                "cache-dir = {cache:?}\nstate-dir = {state:?}\n[agents.claude]\n\
                 cwd-roots = [{project:?}]\nturn-timeout-secs = {turn_timeout_secs}\n{extra}",
                cache = crate::cache_dir(),
                state = self.path("state"),
                project = self.path("project"),
            ),
        )
        .unwrap();
        let bin_dir = claude_bin().parent().unwrap().to_path_buf();
        let transport = TokioChildProcess::new(tokio::process::Command::new(warden_bin()).configure(|cmd| {
            // Only what the test chooses: none of the machine's own CLAUDE_* or ANTHROPIC_* settings.
            cmd.env_clear()
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
                .env("HOME", self.path("home"))
                .env("CLAUDE_CONFIG_DIR", self.path("claude-config"))
                .env("ANTHROPIC_BASE_URL", self.provider.anthropic_base_url())
                .env("ANTHROPIC_API_KEY", "test-key")
                .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                .env("CLAUDE_CODE_MAX_RETRIES", retries.to_string())
                .env("WARDEN_LOG", "warn");
        }))
        .unwrap();
        let client = Client::default();
        let connection = client.clone().serve(transport).await.unwrap();
        (connection, client)
    }

    /// Processes still running with this world's CLAUDE_CONFIG_DIR, other than Warden.
    fn claude_processes(&self) -> Vec<String> {
        let marker = format!("CLAUDE_CONFIG_DIR={}", self.path("claude-config").display());
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            if environ.split(|b| *b == 0).any(|var| var == marker.as_bytes()) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if !cmdline.contains("warden") {
                    found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
                }
            }
        }
        found
    }

    /// Bodies the provider received, as text, from request `from` on.
    fn requests_since(&self, from: usize) -> String {
        serde_json::to_string(&self.provider.messages_requests()[from..]).unwrap()
    }
}

fn progress(client: &Client) -> Vec<String> {
    client.progress.lock().unwrap().iter().filter_map(|p| p.message.clone()).collect()
}

fn message_count(request: &Value) -> usize {
    request["messages"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claude_session_survives_replies_restarts_and_a_wiped_store() {
    let world = World::new();
    let (server, client) = world.serve(0, "").await;
    let ping = call(&server, "ping", json!({})).await;
    assert_eq!(structured(&ping)["plugins"]["agent-driver"], "agent-claude");
    let agents = &structured(&ping)["agents"];
    assert_eq!(agents, &json!([{"name": "claude", "plugin": "agent-claude", "available": true}]), "{agents}");

    let first = call(&server, "claude", json!({"prompt": "hello", "cwd": world.project()})).await;
    assert_eq!(first.is_error, Some(false), "{}", text(&first));
    let out = structured(&first);
    assert_eq!(out["content"], "echo: hello");
    let thread = out["threadId"].as_str().unwrap().to_string();
    check_uuid(&thread).expect("Claude's session id is the thread id");
    assert!(out["usage"]["inputTokens"].as_u64().unwrap() > 0, "{out}");
    let transcript = PathBuf::from(out["transcript"].as_str().unwrap());
    assert!(transcript.is_file(), "{}", transcript.display());
    assert!(transcript.starts_with(world.path("claude-config/projects")), "{}", transcript.display());
    assert!(transcript.ends_with(format!("{thread}.jsonl")), "{}", transcript.display());
    let first_messages = message_count(world.provider.messages_requests().last().unwrap());

    let second = call(&server, "claude-reply", json!({"threadId": thread, "prompt": "again"})).await;
    assert_eq!(structured(&second)["content"], "echo: again", "{}", text(&second));
    assert_eq!(structured(&second)["threadId"], thread.as_str(), "claude resumed its own session");
    let last = world.provider.messages_requests().last().unwrap().clone();
    assert!(message_count(&last) > first_messages, "the resumed turn carries the history: {last}");
    let history = last["messages"].to_string();
    assert!(history.contains("hello") && history.contains("echo: hello"), "{history}");
    let shown = progress(&client);
    for expected in
        ["turn-started: claude started", "message: echo: again", "turn-completed: turn completed ($"]
    {
        assert!(shown.iter().any(|m| m.starts_with(expected)), "{expected}: {shown:?}");
    }
    server.cancel().await.unwrap();

    // A new server process continues the same session from the store.
    let (server, _) = world.serve(0, "").await;
    let third = call(&server, "claude-reply", json!({"threadId": thread, "prompt": "after restart"})).await;
    assert_eq!(structured(&third)["content"], "echo: after restart", "{}", text(&third));
    server.cancel().await.unwrap();

    // Wipe Warden's store: the session is rebuilt from Claude Code's transcript.
    std::fs::remove_dir_all(world.path("state/sessions.d")).unwrap();
    let (server, _) = world.serve(0, "").await;
    let fourth = call(&server, "claude-reply", json!({"threadId": thread, "prompt": "after wipe"})).await;
    assert_eq!(structured(&fourth)["content"], "echo: after wipe", "{}", text(&fourth));
    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], thread.as_str(), "a rehydrated session is keyed by its thread id");
    assert_eq!(sessions[0]["agent"], "claude");
    assert_eq!(sessions[0]["turnCount"], 4, "three turns recovered from the transcript plus this one");
    assert_eq!(sessions[0]["cwd"], world.project().as_str(), "the cwd came back from the transcript");

    let unknown = call(
        &server,
        "claude-reply",
        json!({"threadId": "7385f697-0000-4000-8000-000000000000", "prompt": "x"}),
    )
    .await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(text(&unknown).contains("no transcript for Claude Code session"), "{}", text(&unknown));
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_errors_retries_and_permission_modes() {
    let world = World::new();
    let (server, client) = world.serve(1, "max-sandbox = \"danger-full-access\"\n").await;

    let failed = call(&server, "claude", json!({"prompt": "please [fail400]", "cwd": world.project()})).await;
    assert_eq!(failed.is_error, Some(true));
    assert_eq!(structured(&failed)["error"]["kind"], "agent", "{}", text(&failed));
    assert!(
        text(&failed).contains("API Error: 400") && text(&failed).contains("induced failure ([fail400])"),
        "Claude's own message: {}",
        text(&failed)
    );

    let retried =
        call(&server, "claude", json!({"prompt": "please [fail500]", "cwd": world.project()})).await;
    assert_eq!(structured(&retried)["error"]["kind"], "agent", "{}", text(&retried));
    assert!(text(&retried).contains("API Error: 500"), "{}", text(&retried));
    let shown = progress(&client);
    assert!(
        shown.iter().any(|m| m.starts_with("retry: the provider answered HTTP 500; retry 1 of 1 in ")),
        "each api_retry line is a progress event: {shown:?}"
    );

    // A tool use is a progress event. In the default mode a headless Claude may not change
    // files; workspace-write (acceptEdits) lets it, inside the working directory.
    let made = world.path("project/made-by-claude");
    let asked = call(&server, "claude", json!({"prompt": "run it [command]", "cwd": world.project()})).await;
    assert_eq!(asked.is_error, Some(false), "{}", text(&asked));
    assert!(
        text(&asked).starts_with("tool said: ") && text(&asked).contains("needs approval"),
        "{}",
        text(&asked)
    );
    assert!(!made.exists());
    let shown = progress(&client);
    assert!(shown.iter().any(|m| m == "command-started: running `touch made-by-claude`"), "{shown:?}");
    let edited = call(
        &server,
        "claude",
        json!({"prompt": "run it [command]", "cwd": world.project(), "sandbox": "workspace-write"}),
    )
    .await;
    assert_eq!(
        structured(&edited)["content"],
        "tool said: (Bash completed with no output)",
        "{}",
        text(&edited)
    );
    assert!(made.is_file(), "acceptEdits let claude run the command");

    // A sandbox level becomes the matching permission mode.
    let before = world.provider.messages_requests().len();
    let planned = call(
        &server,
        "claude",
        json!({"prompt": "look only", "cwd": world.project(), "sandbox": "read-only"}),
    )
    .await;
    assert_eq!(structured(&planned)["content"], "echo: look only", "{}", text(&planned));
    assert!(
        world.requests_since(before).contains("Plan mode is active"),
        "read-only runs Claude in plan mode"
    );

    // The operator raised the sandbox limit but did not list bypassPermissions: refused before claude runs.
    let before = world.provider.messages_requests().len();
    let bypass = call(
        &server,
        "claude",
        json!({"prompt": "do anything", "cwd": world.project(), "sandbox": "danger-full-access"}),
    )
    .await;
    assert_eq!(bypass.is_error, Some(true));
    assert!(
        text(&bypass).contains("\"bypassPermissions\" is not one of"),
        "the claude policy refuses the mode: {}",
        text(&bypass)
    );
    assert_eq!(world.provider.messages_requests().len(), before, "claude never ran");
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_past_its_timeout_leaves_no_claude_behind() {
    let world = World::new();
    // Long enough for claude to reach the provider on a loaded machine; the
    // provider never answers, so the turn always ends by its timeout.
    let (server, _) = world.serve_for(10, 0, "").await;
    let params = CallToolRequestParams::new("claude").with_arguments(
        json!({"prompt": "never ends [slow]", "cwd": world.project()}).as_object().unwrap().clone(),
    );
    let handle = server
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    warden_tests::wait_for_async("claude to reach the provider", || {
        !world.provider.messages_requests().is_empty()
    })
    .await;
    assert!(!world.claude_processes().is_empty(), "claude is running the slow turn");
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("a tool call answers with a tool result")
    };
    assert_eq!(result.is_error, Some(true));
    assert_eq!(structured(&result)["error"]["kind"], "timeout", "{}", text(&result));
    assert_eq!(world.provider.messages_requests().len(), 1, "claude was waiting on the provider");
    // Observation, bounded: the kill is done when the call returns, /proc may lag a little.
    for _ in 0..200 {
        if world.claude_processes().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(world.claude_processes(), Vec::<String>::new(), "claude outlived its turn");
    let after = call(&server, "claude", json!({"prompt": "quick now", "cwd": world.project()})).await;
    assert_eq!(structured(&after)["content"], "echo: quick now", "{}", text(&after));
    server.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_turn_leaves_no_claude_and_a_running_session_is_busy() {
    let world = World::new();
    let (server, _) = world.serve(0, "").await;
    let params = CallToolRequestParams::new("claude").with_arguments(
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
    warden_tests::wait_for_async("claude to reach the provider", || {
        !world.provider.messages_requests().is_empty()
    })
    .await;
    assert!(!world.claude_processes().is_empty(), "claude is running the slow turn");
    let busy = call(&server, "claude", json!({"prompt": "meanwhile", "sessionId": "slow"})).await;
    assert_eq!(structured(&busy)["error"]["kind"], "busy", "{}", text(&busy));
    handle.cancel(Some("user pressed stop".into())).await.unwrap();
    for _ in 0..200 {
        if world.claude_processes().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(world.claude_processes(), Vec::<String>::new(), "claude outlived its cancelled turn");
    // Cancellation is asynchronous: the session is free once the cancelled turn has wound down.
    let mut after = call(
        &server,
        "claude",
        json!({"prompt": "now quickly", "sessionId": "slow", "cwd": world.project()}),
    )
    .await;
    for _ in 0..100 {
        if structured(&after)["error"]["kind"] != "busy" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        after = call(
            &server,
            "claude",
            json!({"prompt": "now quickly", "sessionId": "slow", "cwd": world.project()}),
        )
        .await;
    }
    assert_eq!(structured(&after)["content"], "echo: now quickly", "{}", text(&after));
    let listed = call(&server, "listSessions", json!({})).await;
    let sessions = structured(&listed)["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["turnCount"], 1, "the cancelled turn was not recorded: {sessions:?}");
    server.cancel().await.unwrap();
}

/// A `claude` that records its arguments and answers like `claude -p --output-format stream-json`.
fn fake_claude(dir: &Path) -> PathBuf {
    warden_tests::argv_recorder(
        dir,
        "claude",
        &[
            r#"{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"7385f697-9eaf-4feb-9c88-05395ce60429"}"#,
        ],
    )
}

fn runs(dir: &Path) -> Vec<Vec<String>> {
    warden_tests::recorded_runs(dir)
}

#[test]
fn an_agent_plugin_granted_claude_cannot_load_servers_settings_or_directories() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let mut info = info(Role::AgentDriver, &wasm, None, None);
    let grant = ProgramGrant {
        name: "claude".into(),
        path: Some(fake_claude(dir.path())),
        policy: Some("claude".into()),
        ..Default::default()
    };
    let granted = vec![grant.resolve(&RequestLimits::default(), None).unwrap()];
    info.process = Some(process_policy(&info, granted, &["PATH", "HOME"], dir.path()));
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    let base = "claude\t-p\t--output-format\tstream-json\t--verbose";
    let attacks: &[(&str, &str)] = &[
        ("--mcp-config\t{\"mcpServers\":{\"x\":{\"command\":\"/bin/sh\"}}}", "--mcp-config"),
        ("--mcp-config=/tmp/servers.json", "--mcp-config"),
        ("--settings\t{\"apiKeyHelper\":\"/bin/sh -c id\"}", "--settings"),
        ("--plugin-dir\t/tmp", "--plugin-dir"),
        ("--agents\t{}", "--agents"),
        ("--add-dir\t/", "--add-dir"),
        ("--dangerously-skip-permissions", "--dangerously-skip-permissions"),
        ("--permission-mode\tbypassPermissions", "not one of"),
        ("--resume\t--mcp-config", "not a UUID"),
        ("--model\t--settings", "does not match"),
        ("--append-system-prompt\t--hard-fail", "attached"),
        ("--\t--mcp-config", "takes no further argument"),
        ("mcp\tadd\tx\t/bin/sh", "takes no further argument"),
    ];
    for (extra, expected) in attacks {
        let prompt = format!("spawn:|{base}\t{extra}");
        match agent_turn(&plugin, &prompt, CallOptions::default()) {
            Err(e) => match e.plugin_error() {
                Some(PluginError::Denied(message)) => {
                    assert!(message.contains(expected), "{extra}: {message}")
                }
                other => panic!("{extra}: expected a denial, got {other:?} ({e})"),
            },
            Ok(out) => panic!("{extra}: expected a denial, but it ran: {out}"),
        }
    }
    assert!(
        runs(dir.path()).is_empty(),
        "a refused command line never starts claude: {:?}",
        runs(dir.path())
    );
    // The same plugin, asking for what agent-claude asks, runs.
    let out = agent_turn(&plugin, &format!("spawn:|{base}\t--permission-mode\tplan"), CallOptions::default())
        .unwrap();
    assert!(out.starts_with("exit=Some(0)"), "{out}");
    assert_eq!(
        runs(dir.path()),
        [["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "plan"]]
    );
}

/// The hostile agent with a manifest that also declares a read-only root.
fn hostile_agent_with_root(dir: &Path) -> PathBuf {
    let wasm = guest_wasm("hostile_agent.wasm");
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/hostile-agent/warden.toml"),
    )
    .unwrap();
    let manifest = "contract = \"0.1.1\"\nrole = \"agent-driver\"\nroot = \"claude-config\"\n";
    let padded = format!("{manifest}#{}", " ".repeat(original.len() - manifest.len() - 1));
    let path = dir.join("hostile-agent.wasm");
    std::fs::write(&path, patch_bytes(&wasm, &original, &padded)).unwrap();
    path
}

#[test]
fn the_default_claude_grant_reaches_transcripts_not_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("claude-config");
    std::fs::create_dir_all(config_dir.join("projects/-w")).unwrap();
    std::fs::write(
        config_dir.join(".credentials.json"),
        r#"{"claudeAiOauth":{"accessToken":"sk-ant-secret"}}"#,
    )
    .unwrap();
    std::fs::write(config_dir.join("settings.json"), r#"{"apiKeyHelper":"/bin/sh"}"#).unwrap();
    std::fs::write(config_dir.join("projects/-w/s.jsonl"), "transcript").unwrap();
    let base = format!(
        "cache-dir = {:?}\n[plugins.agent-driver]\nplugin = \"agent-claude\"\nroot = {config_dir:?}\n",
        crate::cache_dir()
    );
    let (info, _) = warden::plugins::plugin_info(Role::AgentDriver, &Config::parse(&base).unwrap()).unwrap();
    assert_eq!(info.name, "agent-claude");
    let root = info.fs_root.expect("CLAUDE_CONFIG_DIR is granted");
    assert_eq!(root.entries().unwrap(), ["projects"]);
    assert!(matches!(root.read(".credentials.json"), Err(PluginError::Denied(_))));
    assert!(matches!(root.read("projects/../settings.json"), Err(PluginError::Denied(_))));
    assert_eq!(root.read("projects/-w/s.jsonl").unwrap(), b"transcript");
    let process = info.process.expect("an agent driver has a process policy");
    assert_eq!(process.granted.len(), 1);
    assert_eq!(process.granted[0].name, "claude");
    assert!(
        matches!(&process.granted[0].check, ArgumentCheck::Typed { source, .. } if source == "built-in policy \"claude\""),
        "{:?}",
        process.granted[0].check
    );
    for name in ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_MAX_RETRIES"] {
        assert!(process.env.reaches(&process.env_declared, name), "{name} is passed on");
    }
    assert!(!process.env.reaches(&process.env_declared, "OPENAI_API_KEY"));
    assert!(process.env.patterns.is_empty() && process.env.fixed.is_empty(), "the plugin chooses no value");

    // A hostile plugin given the same directory as its root reaches no more.
    let hostile = hostile_agent_with_root(dir.path());
    let config = Config::parse(&format!(
        "cache-dir = {:?}\n[plugins.agent-driver]\npath = {hostile:?}\nroot = {config_dir:?}\nroot-entries = [\"projects\"]\n",
        crate::cache_dir()
    ))
    .unwrap();
    let runtime = warden::plugins::runtime(&config).unwrap();
    let (info, wasm) = warden::plugins::plugin_info(Role::AgentDriver, &config).unwrap();
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    for attack in
        ["read-ro:.credentials.json", "read-ro:projects/../.credentials.json", "read-ro:settings.json"]
    {
        match agent_turn(&plugin, attack, CallOptions::default()) {
            Err(e) => match e.plugin_error() {
                Some(PluginError::Denied(message)) => {
                    assert!(!message.contains("sk-ant"), "{attack}: {message}")
                }
                other => panic!("{attack}: expected a denial, got {other:?}"),
            },
            Ok(out) => panic!("{attack}: read {out}"),
        }
    }
}
