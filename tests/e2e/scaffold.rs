//! `warden plugin new` for every role in Rust and for context-builder in
//! Python: each project builds as it stands, passes `warden plugin check`,
//! loads by configuration, and a real MCP tool call goes through all of them.
//! A Rust project whose manifest names another role does not compile.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use warden_tests::warden_bin;

const ROLES: [&str; 4] = ["storage-backend", "session-policy", "context-builder", "agent-driver"];

fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..")
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn warden(config: &Path) -> Command {
    let mut command = Command::new(warden_bin());
    command.arg("--config").arg(config).env("WARDEN_LOG", "error");
    command
}

/// Build a Rust scaffold for wasm32-wasip2 with a target directory shared by all of them.
fn cargo_build(project: &Path) -> PathBuf {
    run(&mut cargo_build_command(project));
    let name = project.file_name().unwrap().to_str().unwrap().replace('-', "_");
    target().join("scaffold-target/wasm32-wasip2/release").join(format!("{name}.wasm"))
}

fn cargo_build_command(project: &Path) -> Command {
    let shared = target().join("scaffold-target");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(project)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&shared);
    for var in [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    command
}

/// A `codex` call, then (once it answered) `listSessions`, over stdio.
fn call_codex(config: &Path, session_id: &str) -> (Value, Value) {
    let mut child = warden(config).arg("serve").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut request = |message: Value| {
        writeln!(stdin, "{message}").unwrap();
        let Some(id) = message["id"].as_i64() else { return Value::Null };
        loop {
            let reply: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
            if reply["id"].as_i64() == Some(id) {
                return reply;
            }
        }
    };
    request(
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
    );
    request(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let turn = request(
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"codex","arguments":{"prompt":"hello","sessionId":session_id}}}),
    );
    let listed = request(
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"listSessions","arguments":{}}}),
    );
    drop(stdin);
    child.wait().unwrap();
    (turn, listed)
}

#[test]
fn new_plugins_build_check_load_and_serve() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let cache = crate::cache_dir();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, format!("cache-dir = {cache:?}\n")).unwrap();
    let mut config = format!("cache-dir = {cache:?}\nstate-dir = {:?}\n", dir.path().join("state"));
    for role in ROLES {
        run(warden(&empty).args(["plugin", "new", role, &format!("my-{role}"), "--dir"]).arg(dir.path()));
        let wasm = cargo_build(&dir.path().join(format!("my-{role}")));
        config.push_str(&format!("[plugins.{role}]\npath = {wasm:?}\n"));
        if role == "storage-backend" {
            config.push_str(&format!("root = {:?}\n", dir.path().join("store")));
        }
    }
    let config_file = dir.path().join("warden.toml");
    std::fs::write(&config_file, &config).unwrap();
    for role in ROLES {
        let wasm = target()
            .join("scaffold-target/wasm32-wasip2/release")
            .join(format!("my_{}.wasm", role.replace('-', "_")));
        let report = run(warden(&config_file).args(["plugin", "check", "--json"]).arg(&wasm));
        let report: Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["role"], role);
        assert_eq!(report["problems"], json!([]), "{report}");
    }
    let (turn, listed) = call_codex(&config_file, "scaffolded");
    assert_eq!(turn["result"]["structuredContent"]["content"], "echo: hello", "{turn}");
    let sessions = &listed["result"]["structuredContent"]["sessions"];
    assert_eq!(sessions[0]["id"], "scaffolded", "the scaffolded store kept the session: {listed}");
    assert_eq!(sessions[0]["turnCount"], 1);

    // A Python context builder replaces the Rust one by configuration alone.
    let wasm = python_plugin("context-builder", "my-python", dir.path(), &empty, &config_file);
    let config = config.replace(&scaffolded_path("context-builder"), &format!("path = {wasm:?}"));
    std::fs::write(&config_file, &config).unwrap();
    let (turn, _) = call_codex(&config_file, "scaffolded");
    assert_eq!(turn["result"]["structuredContent"]["content"], "echo: hello", "{turn}");
    let plugins = run(warden(&config_file).arg("plugins"));
    assert!(plugins.contains("context-builder: my_python"), "{plugins}");

    // A Python session policy too, keeping one session: a new one evicts the old.
    let wasm = python_plugin("session-policy", "py-policy", dir.path(), &empty, &config_file);
    let config = config.replace(
        &scaffolded_path("session-policy"),
        &format!("path = {wasm:?}\nsettings = {{ max-sessions = 1 }}"),
    );
    std::fs::write(&config_file, config).unwrap();
    let (turn, listed) = call_codex(&config_file, "second");
    assert_eq!(turn["result"]["structuredContent"]["content"], "echo: hello", "{turn}");
    let sessions = &listed["result"]["structuredContent"]["sessions"];
    assert_eq!(
        sessions.as_array().map(Vec::len),
        Some(1),
        "the Python policy evicted the older session: {listed}"
    );
    assert_eq!(sessions[0]["id"], "second");

    // The SDK checks the manifest at compile time: a role the plugin does not export is refused.
    let project = dir.path().join("my-session-policy");
    let manifest = std::fs::read_to_string(project.join("warden.toml")).unwrap();
    let wrong = manifest.replace("role = \"session-policy\"", "role = \"context-builder\"");
    assert_ne!(wrong, manifest);
    std::fs::write(project.join("warden.toml"), wrong).unwrap();
    let out = cargo_build_command(&project).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a manifest naming another role compiled:\n{stderr}");
    assert!(stderr.contains("set role = \"session-policy\""), "{stderr}");
}

/// The configuration line loading the scaffolded Rust plugin of `role`.
fn scaffolded_path(role: &str) -> String {
    let file = format!("my_{}.wasm", role.replace('-', "_"));
    format!("path = {:?}", target().join("scaffold-target/wasm32-wasip2/release").join(file))
}

/// Scaffold a Python plugin `name` for `role` under `parent`, run its tests,
/// build it and check it clean against `config_file`; its component's path.
fn python_plugin(role: &str, name: &str, parent: &Path, empty: &Path, config_file: &Path) -> PathBuf {
    run(warden(empty).args(["plugin", "new", role, name, "--lang", "python", "--dir"]).arg(parent));
    let project = parent.join(name);
    run(Command::new("python3").arg("test_logic.py").current_dir(&project));
    let wasm = project.join(format!("{}.wasm", name.replace('-', "_")));
    let python = warden_tests::python_lock();
    run(Command::new(project.join("build.sh"))
        .arg(&wasm)
        .env("WARDEN_PY_VENV", target().join("py"))
        .env("WARDEN", warden_tests::warden_bin())
        .current_dir(&project));
    drop(python);
    let report: Value =
        serde_json::from_str(&run(warden(config_file).args(["plugin", "check", "--json"]).arg(&wasm)))
            .unwrap();
    assert_eq!(report["problems"], json!([]), "{report}");
    wasm
}
