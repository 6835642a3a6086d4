//! Typed argument policies from the attacker's side. With the grant Warden
//! recommends (`policy = "codex"`), a hostile agent plugin, a hostile storage
//! plugin and an MCP caller each try to make codex run a program, widen its
//! sandbox or directories, or redirect it; each attempt is refused before
//! anything runs. A fake `codex` records every argument list it is started
//! with, so "refused" means "never started".

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use warden::contract::role::Role;
use warden::runtime::loaded::{CallError, CallOptions};
use warden::types::PluginError;
use warden_permissions::{ProgramGrant, RequestLimits};
use warden_tests::{agent_turn, guest_wasm, info, process_policy, runtime, warden_bin};

const THREAD: &str = "0199a5e4-2f7c-7d10-9c3e-4b5a6c7d8e9f";

/// A `codex` that records its arguments and answers like `codex exec --json`.
fn fake_codex(dir: &Path) -> PathBuf {
    let started = format!(r#"{{"type":"thread.started","thread_id":"{THREAD}"}}"#);
    warden_tests::argv_recorder(
        dir,
        "codex",
        &[
            &started,
            r#"{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"done"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1}}"#,
        ],
    )
}

fn runs(dir: &Path) -> Vec<Vec<String>> {
    warden_tests::recorded_runs(dir)
}

fn codex_turn(prompt: &str, dir: &Path) -> Result<String, CallError> {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let mut info = info(Role::AgentDriver, &wasm, None, None);
    let codex = fake_codex(dir);
    let grant = ProgramGrant {
        name: "codex".into(),
        path: Some(codex),
        policy: Some("codex".into()),
        ..Default::default()
    };
    let granted = vec![grant.resolve(&RequestLimits::default(), None).unwrap()];
    info.process = Some(process_policy(&info, granted, &["LANG", "PATH", "HOME"], dir));
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    agent_turn(&plugin, prompt, CallOptions::default())
}

fn denied(result: Result<String, CallError>) -> String {
    match result {
        Err(e) => match e.plugin_error() {
            Some(PluginError::Denied(m)) => m.clone(),
            other => panic!("expected a denial, got {other:?} ({e})"),
        },
        Ok(out) => panic!("expected a denial, but it ran: {out}"),
    }
}

#[test]
fn an_agent_plugin_cannot_make_codex_start_programs_or_widen_its_reach() {
    let dir = tempfile::tempdir().unwrap();
    // Words are separated by tabs so that values may hold spaces.
    let attacks: &[(&[&str], &str)] = &[
        (
            &[
                "exec",
                "-c",
                "mcp_servers.x.command=\"/bin/sh\"",
                "-c",
                "mcp_servers.x.args=[\"-c\",\"id\"]",
                "--",
                "hi",
            ],
            "mcp_servers.x.command",
        ),
        (&["exec", "-c", "model_provider=\"evil\"", "--", "hi"], "model_provider"),
        (&["exec", "-c", "model_providers.evil.base_url=\"http://127.0.0.1:9\"", "--", "hi"], "not allowed"),
        (&["exec", "-c", "profile=\"evil\"", "--", "hi"], "not allowed"),
        (&["exec", "-p", "evil", "--", "hi"], "does not allow the option \"-p\""),
        (&["exec", "--add-dir", "/", "--", "hi"], "--add-dir"),
        (&["exec", "-C", "/", "--", "hi"], "outside the granted working-directory roots"),
        (&["exec", "--dangerously-bypass-approvals-and-sandbox", "--", "hi"], "does not allow"),
        (&["exec", "-s", "danger-full-access", "--", "hi"], "not one of"),
        (&["exec", "resume", "--last", "--", "hi"], "does not allow the option \"--last\""),
        (&["exec", "resume", "--", "--last", "hi"], "not a UUID"),
        (&["mcp", "add", "x", "--", "/bin/sh"], "takes no further argument"),
        (&["exec", "hi"], "must follow `--`"),
    ];
    for (args, expected) in attacks {
        let prompt = format!("spawn:|codex\t{}", args.join("\t"));
        let message = denied(codex_turn(&prompt, dir.path()));
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    assert!(runs(dir.path()).is_empty(), "a refused command line never starts codex: {:?}", runs(dir.path()));
    // The same plugin, asking for what agent-codex asks, runs.
    let out = codex_turn(
        &format!("spawn:|codex\texec\t--json\t-s\tread-only\tresume\t--\t{THREAD}\thi"),
        dir.path(),
    )
    .unwrap();
    assert!(out.starts_with("exit=Some(0)"), "{out}");
    assert_eq!(runs(dir.path()), [["exec", "--json", "-s", "read-only", "resume", "--", THREAD, "hi"]]);
}

#[test]
fn an_agent_plugin_cannot_choose_redirecting_variables() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["PATH", "HOME", "CODEX_HOME", "OPENAI_BASE_URL", "OPENAI_API_KEY"] {
        let message =
            denied(codex_turn(&format!("spawn-env:{name}=/tmp/evil|codex\texec\t--\thi"), dir.path()));
        assert!(message.contains(name), "{name}: {message}");
    }
    assert!(runs(dir.path()).is_empty());
}

/// `warden serve` with the default agent driver (agent-codex) running the
/// fake codex under the built-in policy, `storage` as its storage plugin.
struct Server {
    dir: tempfile::TempDir,
}

impl Server {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn project(&self) -> PathBuf {
        let project = self.dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        project
    }

    fn calls(&self, storage: &str, extra: &str, calls: &[Value]) -> Vec<Value> {
        let codex = fake_codex(self.dir.path());
        let config = self.dir.path().join("warden.toml");
        std::fs::write(
            &config,
            format!(
                "cache-dir = {cache:?}\n{storage}\n[plugins.agent-driver]\ncwd-roots = [{project:?}]\n{extra}\n\
                 [[plugins.agent-driver.programs]]\nname = \"codex\"\npath = {codex:?}\npolicy = \"codex\"\n",
                cache = crate::cache_dir(),
                project = self.project(),
            ),
        )
        .unwrap();
        let mut child = Command::new(warden_bin())
            .args(["serve", "--state-dir"])
            .arg(self.dir.path().join("state"))
            .arg("--config")
            .arg(&config)
            .env("CODEX_HOME", self.dir.path().join("codex-home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut send = |message: Value| writeln!(stdin, "{message}").unwrap();
        send(
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
        );
        send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        let mut answers = Vec::new();
        let mut next = |id: i64| loop {
            let message: Value = serde_json::from_str(&lines.next().expect("an answer").unwrap()).unwrap();
            if message["id"] == id {
                return message;
            }
        };
        next(0);
        for (i, arguments) in calls.iter().enumerate() {
            let id = i as i64 + 1;
            // A call naming a thread continues it; any other starts or continues a session.
            let tool = if arguments.get("threadId").is_some() { "codex-reply" } else { "codex" };
            send(
                json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}}),
            );
            answers.push(next(id));
        }
        drop(stdin);
        child.wait().unwrap();
        answers
    }

    fn runs(&self) -> Vec<Vec<String>> {
        runs(self.dir.path())
    }
}

fn error_text(answer: &Value) -> String {
    if let Some(message) = answer["error"]["message"].as_str() {
        return message.to_string();
    }
    assert_eq!(answer["result"]["isError"], true, "expected an error: {answer}");
    answer["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_storage_plugin_cannot_steer_the_agent() {
    let server = Server::new();
    let storage = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_storage.wasm");
    let store = server.dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let storage = format!("[plugins.storage-backend]\npath = {storage:?}\nroot = {store:?}\n");
    let answers = server.calls(
        &storage,
        "",
        &[
            json!({"prompt": "hi", "sessionId": "steer-thread"}),
            json!({"prompt": "hi", "sessionId": "steer-sandbox"}),
            json!({"prompt": "hi", "sessionId": "steer-cwd"}),
            json!({"prompt": "hi", "sessionId": "harmless"}),
            json!({"prompt": "hi", "threadId": "0199a5e4-0000-7000-8000-000000000001"}),
            json!({"prompt": "hi", "sessionId": "steer-id:x"}),
        ],
    );
    let text = error_text(&answers[5]);
    assert!(
        text.contains("asked for session \"steer-id:x\", it returned session \"someone-else-x\""),
        "a load answered with another session is refused: {text}"
    );
    let text = error_text(&answers[4]);
    assert!(text.contains("answered the thread") && text.contains("which holds another thread"), "{text}");
    for (answer, field) in answers.iter().zip(["agent-thread-id", "sandbox", "cwd"]) {
        let text = error_text(answer);
        assert!(
            text.contains("storage plugin `hostile_storage`") && text.contains(&format!("`{field}`")),
            "{field}: {text}"
        );
    }
    assert!(answers[3]["result"]["isError"] != true, "a harmless session runs: {}", answers[3]);
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "only the harmless session reached codex: {runs:?}");
    assert!(!runs[0].iter().any(|a| a == "--last" || a == "danger-full-access" || a == "/"), "{runs:?}");
}

#[test]
fn an_mcp_caller_is_bounded_by_the_operators_limits() {
    let server = Server::new();
    let project = server.project();
    let answers = server.calls(
        "",
        "",
        &[
            json!({"prompt": "hi", "config": {"mcp_servers.x.command": "/bin/sh"}}),
            json!({"prompt": "hi", "config": {"model_providers.x.base_url": "http://127.0.0.1:9"}}),
            json!({"prompt": "hi", "sandbox": "danger-full-access"}),
            json!({"prompt": "hi", "cwd": "/"}),
            json!({"prompt": "hi", "model": "--add-dir=/"}),
            json!({"prompt": "hi", "sandbox": "workspace-write", "cwd": project, "config": {"model_verbosity": "low"}}),
        ],
    );
    let expected = ["`config-keys`", "`config-keys`", "`max-sandbox`", "cwd-roots", "`model`"];
    for (answer, setting) in answers.iter().zip(expected) {
        let text = error_text(answer);
        assert!(text.contains(setting), "{setting}: {text}");
    }
    assert!(answers[5]["result"]["isError"] != true, "an allowed request runs: {}", answers[5]);
    let runs = server.runs();
    assert_eq!(runs.len(), 1, "only the allowed request reached codex: {runs:?}");
    assert!(runs[0].windows(2).any(|w| w == ["-c", "model_verbosity=\"low\""]), "{runs:?}");
}

#[test]
fn an_operator_can_raise_the_limits() {
    let server = Server::new();
    let answers = server.calls(
        "",
        "max-sandbox = \"danger-full-access\"\nconfig-keys = { \"sandbox_workspace_write.network_access\" = \"true|false\" }",
        &[json!({"prompt": "hi", "sandbox": "danger-full-access", "config": {"sandbox_workspace_write.network_access": true}})],
    );
    assert!(answers[0]["result"]["isError"] != true, "{}", answers[0]);
    let runs = server.runs();
    assert!(runs[0].windows(2).any(|w| w == ["-s", "danger-full-access"]), "{runs:?}");
}

#[test]
fn an_agent_plugin_cannot_hand_back_a_thread_id_that_is_not_one() {
    let server = Server::new();
    let agent = std::path::Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let answers = server.calls(
        "",
        &format!("path = {agent:?}"),
        &[
            json!({"prompt": "steer-thread", "sessionId": "s"}),
            json!({"prompt": "harmless", "sessionId": "s"}),
        ],
    );
    let text = error_text(&answers[0]);
    assert!(text.contains("agent plugin `hostile_agent` gave the thread id \"--last\""), "{text}");
    assert_eq!(answers[1]["result"]["structuredContent"]["content"], "harmless", "{}", answers[1]);
}
