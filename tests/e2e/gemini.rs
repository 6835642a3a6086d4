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
                .env("WARDEN_LOG", "info");
        }))
        .unwrap();
        let client = Client::default();
        let connection = client.clone().serve(transport).await.unwrap();
        (connection, client)
    }

    /// Every file under Gemini CLI's `tmp/` (its transcripts), with its contents.
    fn transcripts(&self) -> String {
        let mut out = String::new();
        let mut dirs = vec![self.path("gemini-home/.gemini/tmp")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    out.push_str(&format!("--- {}\n{text}\n", path.display()));
                }
            }
        }
        out
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
    assert_eq!(
        sessions[0]["turnCount"],
        4,
        "three turns recovered from the transcript plus this one; the transcripts:\n{}",
        world.transcripts()
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_past_its_timeout_leaves_no_gemini_behind() {
    let world = World::new();
    // Long enough for gemini to reach the provider on a loaded machine; the
    // provider never answers, so the turn always ends by its timeout.
    let (server, _) = world.serve(15).await;
    let timed_out =
        call(&server, "gemini", json!({"prompt": "never ends [slow]", "cwd": world.project()})).await;
    assert_eq!(timed_out.is_error, Some(true));
    assert_eq!(structured(&timed_out)["error"]["kind"], "timeout", "{}", text(&timed_out));
    assert_eq!(world.provider.gemini_requests().len(), 1, "gemini was waiting on the provider");
    // Observation, bounded: the kill is done when the call returns, /proc may lag a little.
    for _ in 0..200 {
        if world.gemini_processes().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(world.gemini_processes(), Vec::<String>::new(), "gemini outlived its turn");
    let after = call(&server, "gemini", json!({"prompt": "quick now", "cwd": world.project()})).await;
    assert_eq!(structured(&after)["content"], "echo: quick now", "{}", text(&after));
    server.cancel().await.unwrap();
}

/// A `gemini` that records its arguments.
fn fake_gemini(dir: &std::path::Path) -> PathBuf {
    warden_tests::argv_recorder(dir, "gemini", &[])
}

fn runs(dir: &std::path::Path) -> Vec<Vec<String>> {
    warden_tests::recorded_runs(dir)
}

/// A hostile agent plugin granted `gemini` under the built-in policy cannot
/// make it trust the directory's settings, load MCP servers, extensions,
/// policies or files, or approve everything.
#[test]
fn an_agent_plugin_granted_gemini_cannot_load_servers_settings_or_extensions() {
    use warden::contract::role::Role;
    use warden::runtime::loaded::CallOptions;
    use warden::types::PluginError;
    use warden_permissions::{ProgramGrant, RequestLimits};
    use warden_tests::{agent_turn, guest_wasm, info, process_policy, runtime};

    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let mut info = info(Role::AgentDriver, &wasm, None, None);
    let grant = ProgramGrant {
        name: "gemini".into(),
        path: Some(fake_gemini(dir.path())),
        policy: Some("gemini".into()),
        ..Default::default()
    };
    let granted = vec![grant.resolve(&RequestLimits::default(), None).unwrap()];
    info.process = Some(process_policy(&info, granted, &["PATH", "HOME"], dir.path()));
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    let base =
        "gemini\t--skip-trust\t--allowed-mcp-server-names\twarden-allows-no-mcp-server\t-o\tstream-json";
    let attacks: &[(&str, &str)] = &[
        ("--yolo", "--yolo"),
        ("--approval-mode\tyolo", "not one of"),
        ("--extensions\tevil", "--extensions"),
        ("--policy\t/tmp/evil.toml", "--policy"),
        ("--session-file\t/etc/shadow", "--session-file"),
        ("--include-directories\t/", "--include-directories"),
        ("--sandbox", "--sandbox"),
        ("--fake-responses\t/tmp/x", "--fake-responses"),
        ("--allowed-mcp-server-names\tevil", "only once"),
        ("-p\t--yolo", "-p"),
        ("--resume\tlatest", "not a UUID"),
        ("--\t--yolo", "takes no further argument"),
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
    // Without the trust flag, or with a real MCP allow-list, nothing runs either.
    for line in [
        "gemini\t--allowed-mcp-server-names\twarden-allows-no-mcp-server\t-o\tstream-json",
        "gemini\t--skip-trust\t-o\tstream-json",
    ] {
        let refused = agent_turn(&plugin, &format!("spawn:|{line}"), CallOptions::default());
        assert!(
            matches!(refused.as_ref().map_err(|e| e.plugin_error()), Err(Some(PluginError::Denied(_)))),
            "{line}"
        );
    }
    assert!(
        runs(dir.path()).is_empty(),
        "a refused command line never starts gemini: {:?}",
        runs(dir.path())
    );
    let out = agent_turn(&plugin, &format!("spawn:|{base}\t--approval-mode\tplan"), CallOptions::default())
        .unwrap();
    assert!(out.starts_with("exit=Some(0)"), "{out}");
    assert_eq!(runs(dir.path()).len(), 1);
}

/// The default grant reaches Gemini CLI's transcripts, not its settings or credentials.
#[test]
fn the_default_gemini_grant_reaches_transcripts_not_credentials() {
    use warden::config::Config;
    use warden::contract::role::Role;
    use warden::types::PluginError;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join(".gemini");
    std::fs::create_dir_all(home.join("tmp/project/chats")).unwrap();
    std::fs::write(home.join("oauth_creds.json"), r#"{"access_token":"ya29.secret"}"#).unwrap();
    std::fs::write(home.join("settings.json"), r#"{"mcpServers":{"x":{"command":"/bin/sh"}}}"#).unwrap();
    std::fs::write(home.join("tmp/project/chats/session-x.jsonl"), "transcript").unwrap();
    let config = format!("cache-dir = {:?}\n[agents.gemini]\nroot = {home:?}\n", crate::cache_dir());
    let config = Config::parse(&config).unwrap();
    let spec = warden::plugins::agents::served(&config).unwrap().remove(0);
    let (info, _) = warden::plugins::plugin_info(Role::AgentDriver, &spec.config).unwrap();
    assert_eq!(info.name, "agent-gemini");
    let root = info.fs_root.expect("the Gemini CLI home is granted");
    assert_eq!(root.entries().unwrap(), ["tmp"]);
    for secret in ["oauth_creds.json", "settings.json", "tmp/../oauth_creds.json"] {
        assert!(matches!(root.read(secret), Err(PluginError::Denied(_))), "{secret}");
    }
    assert_eq!(root.read("tmp/project/chats/session-x.jsonl").unwrap(), b"transcript");
    let process = info.process.expect("an agent driver has a process policy");
    assert_eq!(process.granted[0].name, "gemini");
    for name in ["GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GEMINI_CLI_HOME"] {
        assert!(process.env.reaches(&process.env_declared, name), "{name} is passed on");
    }
    for name in [
        "GEMINI_CLI_TRUST_WORKSPACE",
        "GEMINI_SYSTEM_MD",
        "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
        "OPENAI_API_KEY",
    ] {
        assert!(!process.env.reaches(&process.env_declared, name), "{name} is not passed on");
    }
    assert_eq!(process.env.fixed.get("GEMINI_CLI_NO_RELAUNCH").map(String::as_str), Some("true"));
}
