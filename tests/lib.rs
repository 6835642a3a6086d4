//! Helpers shared by the end-to-end tests: building a runtime with small
//! limits, loading test plugins with chosen grants, and finding the binary.

pub mod fake_provider;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::time::Duration;

use warden::capabilities::store_fs::FsRoot;
use warden::contract::role::Role;
use warden::runtime::embedded::GUEST_DIR;
use warden::runtime::loaded::{PluginInfo, PluginLimits, PluginSource};
use warden::runtime::manifest::{FromWasm, Manifest};
use warden::runtime::{EngineLimits, Runtime};
use warden_permissions::{
    ArgPattern, EnvDeclaration, EnvGrant, ProcessPolicy, ProgramGrant, RequestLimits, ResolvedProgram,
};

pub const TEST_MEMORY: usize = 32 << 20;
pub const TEST_CPU_BUDGET: Duration = Duration::from_millis(300);
/// Deadline of a test plugin's calls (an agent's turn sets its own).
pub const TEST_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls of one test plugin at once: half the test runtime's pool.
pub const TEST_CONCURRENT_CALLS: usize = 8;

/// The wasm of a guest built by the host's build script.
pub fn guest_wasm(file: &str) -> Vec<u8> {
    let path = Path::new(GUEST_DIR).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A runtime with a compiled-component cache shared by the whole test run.
pub fn runtime(cache_dir: &Path) -> Runtime {
    Runtime::new(EngineLimits { concurrent_instances: 16, max_memory_bytes: 128 << 20 }, Some(cache_dir))
        .expect("building the runtime")
}

/// Plugin info for tests: small limits, the given root and process policy.
pub fn info(role: Role, wasm: &[u8], fs_root: Option<FsRoot>, process: Option<ProcessPolicy>) -> PluginInfo {
    PluginInfo {
        name: format!("test-{role}"),
        role,
        source: PluginSource::Embedded("test"),
        sha256: String::new(),
        manifest: Manifest::from_wasm(wasm).expect("test plugins carry a manifest"),
        limits: PluginLimits {
            memory_bytes: TEST_MEMORY,
            cpu_budget: TEST_CPU_BUDGET,
            output_cap: 1 << 20,
            max_children_per_call: 4,
            max_children: 16,
            call_timeout: TEST_CALL_TIMEOUT,
            max_concurrent_calls: TEST_CONCURRENT_CALLS,
        },
        fs_root,
        database: None,
        process,
        settings_json: "{}".into(),
        audit: false,
        live_children: Default::default(),
    }
}

/// Whether some process holds a flock on `path` (read from /proc/locks, so
/// looking does not take the lock from its holder).
pub fn is_locked(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(path) else { return false };
    let inode = format!(":{}", meta.ino());
    std::fs::read_to_string("/proc/locks")
        .expect("reading /proc/locks")
        .lines()
        .any(|line| line.contains("FLOCK") && line.split_whitespace().any(|field| field.ends_with(&inode)))
}

/// Block until some process (a plugin's call) holds a flock on `path`.
pub fn wait_until_locked(path: &Path) {
    wait_for(&format!("a lock on {}", path.display()), || is_locked(path));
}

/// How long a test observes something it expects to happen before failing.
pub const OBSERVE_FOR: Duration = Duration::from_secs(60);

/// Poll `ready` until it holds; fail the test, naming `what`, after [`OBSERVE_FOR`].
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + OBSERVE_FOR;
    while !ready() {
        assert!(std::time::Instant::now() < until, "gave up after {OBSERVE_FOR:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`wait_for`] in an async test.
pub async fn wait_for_async(what: &str, mut ready: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + OBSERVE_FOR;
    while !ready() {
        assert!(std::time::Instant::now() < until, "gave up after {OBSERVE_FOR:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `warden` binary next to the test executable (`target/<profile>/warden`).
pub fn warden_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDEN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("warden");
    assert!(bin.is_file(), "{} is missing; build it with `cargo build` (or set WARDEN_BIN)", bin.display());
    bin
}

/// Snapshot of every file under `dir` (path and contents), to prove nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
            } else {
                out.push((entry.path(), b"<link>".to_vec()));
            }
        }
    }
    out.sort();
    out
}

/// The Codex CLI installed from npm by `scripts/test` (or `WARDEN_CODEX_BIN`).
pub fn codex_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDEN_CODEX_BIN") {
        return PathBuf::from(path);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/codex-cli/node_modules/.bin/codex");
    assert!(
        bin.exists(),
        "the Codex CLI is not installed at {}; run ./scripts/test (it runs `npm install --prefix target/codex-cli \
         @openai/codex@<pinned>`) or set WARDEN_CODEX_BIN",
        bin.display()
    );
    bin
}

/// Claude Code installed from npm by `scripts/test` (or `WARDEN_CLAUDE_BIN`).
pub fn claude_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDEN_CLAUDE_BIN") {
        return PathBuf::from(path);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/claude-cli/node_modules/.bin/claude");
    assert!(
        bin.exists(),
        "Claude Code is not installed at {}; run ./scripts/test (it runs `npm install --prefix target/claude-cli \
         @anthropic-ai/claude-code@<pinned>`) or set WARDEN_CLAUDE_BIN",
        bin.display()
    );
    bin
}

/// Gemini CLI, installed by `scripts/test` (pinned).
pub fn gemini_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDEN_GEMINI_BIN") {
        return PathBuf::from(path);
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/gemini-cli/node_modules/.bin/gemini");
    assert!(
        bin.exists(),
        "Gemini CLI is not installed at {}; run ./scripts/test (it runs `npm install --prefix target/gemini-cli \
         @google/gemini-cli@<pinned>`) or set WARDEN_GEMINI_BIN",
        bin.display()
    );
    bin
}

/// Build the Python redaction plugin (guests/context-redact-py) once per test
/// run into `target/`, with the shared componentize-py virtualenv.
pub fn redact_plugin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let _python = python_lock();
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let out = repo.join("target/context_redact_py.wasm");
            let status = std::process::Command::new(repo.join("guests/context-redact-py/build.sh"))
                .arg(&out)
                .env("WARDEN_PY_VENV", repo.join("target/py"))
                .env("WARDEN", warden_bin())
                .status()
                .expect("running guests/context-redact-py/build.sh");
            assert!(status.success(), "building the Python redaction plugin failed");
            out
        })
        .clone()
}

/// Serialises Python builds (they share one virtualenv).
pub fn python_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Replace every occurrence of `from` in `wasm` by the same-length `to`
/// (keeps the binary's layout; used to forge broken plugins).
pub fn patch_bytes(wasm: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "patches keep the binary's layout");
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut out = wasm.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "{:?} not found", String::from_utf8_lossy(from));
    out
}

/// A program grant as an operator would write it: `args` patterns, marked
/// `unrestricted` when they use a wildcard (as the configuration requires).
pub fn program(name: &str, path: &str, args: &[&str]) -> ResolvedProgram {
    let args = ArgPattern(args.iter().map(|s| s.to_string()).collect());
    let grant = ProgramGrant {
        name: name.into(),
        path: Some(path.into()),
        unrestricted: args.has_wildcard(),
        args: Some(args),
        ..ProgramGrant::default()
    };
    grant.resolve(&RequestLimits::default(), None).expect("a valid test grant")
}

/// The process policy of `info`'s plugin: `granted` programs, variables in
/// `inherit` passed on from the test's environment, one working root.
pub fn process_policy(
    info: &PluginInfo,
    granted: Vec<ResolvedProgram>,
    inherit: &[&str],
    cwd_root: &Path,
) -> ProcessPolicy {
    ProcessPolicy {
        plugin: info.name.clone(),
        granted,
        declared: info.manifest.programs.clone(),
        env: EnvGrant { inherit: inherit.iter().map(|s| s.to_string()).collect(), ..EnvGrant::default() },
        env_declared: EnvDeclaration(info.manifest.env.clone()),
        cwd_roots: vec![cwd_root.canonicalize().expect("the working root exists")],
        requests: RequestLimits::default(),
    }
}

/// One fresh turn of an agent plugin with default options; its answer.
pub fn agent_turn(
    plugin: &warden::runtime::calls::AgentPlugin,
    prompt: &str,
    call: warden::runtime::loaded::CallOptions,
) -> Result<String, warden::runtime::loaded::CallError> {
    use warden::contract::bindings::agent::exports::warden::plugin::agent::TurnOptions;
    use warden::types::{FreshPlan, Plan};
    let plan = Plan::Fresh(FreshPlan { prompt: prompt.into(), recorded_prompt: prompt.into() });
    let options = TurnOptions {
        model: None,
        reasoning_effort: None,
        sandbox: None,
        cwd: None,
        approval_policy: None,
        config_overrides: Vec::new(),
        base_instructions: None,
        developer_instructions: None,
    };
    plugin.run_turn(&plan, &options, call).map(|outcome| outcome.response)
}

/// Call options that record every progress event; the hostile agent reports
/// "pid N" after each spawn.
pub fn progress_recorder() -> (
    warden::runtime::loaded::CallOptions,
    std::sync::Arc<std::sync::Mutex<Vec<warden::capabilities::progress::ProgressEvent>>>,
) {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let call = warden::runtime::loaded::CallOptions {
        progress: Some(std::sync::Arc::new(move |event| sink.lock().unwrap().push(event))),
        ..Default::default()
    };
    (call, events)
}

/// A fake `program` in `dir` that appends its arguments (one per line, then
/// a blank line) to `dir/argv.log`, then prints `answer` (shell-quoted
/// lines): the argument lists a policy let through, read with [`recorded_runs`].
pub fn argv_recorder(dir: &Path, program: &str, answer: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(program);
    let log = dir.join("argv.log");
    let mut script =
        format!("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> {log:?}\necho >> {log:?}\n");
    for line in answer {
        script.push_str(&format!("echo '{line}'\n"));
    }
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The argument lists an [`argv_recorder`] in `dir` was run with, oldest first.
pub fn recorded_runs(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("argv.log")).unwrap_or_default();
    text.split("\n\n").filter(|r| !r.is_empty()).map(|r| r.lines().map(String::from).collect()).collect()
}

/// The highest value a store writer had acknowledged, kept in the file
/// `path` under a file lock (so several writer processes share it), raised
/// to `update` if that is higher. Returns the value before the update.
pub fn acknowledged(path: &Path, update: Option<u64>) -> u64 {
    use std::io::{Read as _, Seek as _, Write as _};
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap();
    file.lock().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let current: u64 = text.trim().parse().unwrap_or(0);
    if let Some(new) = update
        && new > current
    {
        file.set_len(0).unwrap();
        file.rewind().unwrap();
        write!(file, "{new}").unwrap();
    }
    current
}
