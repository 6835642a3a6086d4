//! `process` from the attacker's side: only spawns that match the operator's
//! grant AND the plugin's declaration run; the environment and working
//! directory are confined; a deadline, a cancellation or a trapped guest
//! kills the child's whole process group.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use warden::capabilities::progress::ProgressEvent;
use warden::contract::role::Role;
use warden::control::CancelFlag;
use warden::runtime::calls::AgentPlugin;
use warden::runtime::loaded::{AbortReason, CallError, CallOptions};
use warden::types::PluginError;
use warden_permissions::ResolvedProgram;
use warden_tests::{agent_turn, guest_wasm, info, process_policy, program, progress_recorder, runtime};

fn grant(name: &str, path: &str, args: &[&str]) -> ResolvedProgram {
    program(name, path, args)
}

/// The hostile agent declares `sh -c *`, `echo **` and `sleep *`; the
/// operator here grants only `echo hello …` and `sleep *`, and only `LANG`.
fn agent(cwd_root: &Path) -> (warden::runtime::Runtime, AgentPlugin) {
    agent_granted(
        cwd_root,
        vec![grant("echo", "/bin/echo", &["hello", "**"]), grant("sleep", "/bin/sleep", &["*"])],
    )
}

fn agent_granted(cwd_root: &Path, granted: Vec<ResolvedProgram>) -> (warden::runtime::Runtime, AgentPlugin) {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let mut info = info(Role::AgentDriver, &wasm, None, None);
    info.process = Some(process_policy(&info, granted, &["LANG"], cwd_root));
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    (runtime, plugin)
}

fn turn(plugin: &AgentPlugin, prompt: &str, call: CallOptions) -> Result<String, CallError> {
    agent_turn(plugin, prompt, call)
}

fn denied(result: Result<String, CallError>) -> String {
    match result {
        Err(CallError::Plugin { error: PluginError::Denied(message), .. }) => message,
        other => panic!("expected denied, got {other:?}"),
    }
}

fn spawned_pid(events: &Mutex<Vec<ProgressEvent>>) -> i32 {
    let events = events.lock().unwrap();
    let event = events.iter().find(|e| e.kind == "spawned").expect("a spawn was reported");
    event.message.trim_start_matches("pid ").parse().unwrap()
}

/// The process is dead: gone, or a zombie its parent (init, for a
/// grandchild whose parent exited) has not reaped yet. A signal is delivered
/// asynchronously, so this waits a bounded while for it to take effect.
fn assert_gone(pid: i32) {
    let dead = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    };
    for _ in 0..500 {
        if dead() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("process {pid} is still alive");
}

#[test]
fn a_granted_and_declared_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    let out = turn(&plugin, "spawn:|echo hello world", CallOptions::default()).unwrap();
    assert_eq!(out, "exit=Some(0)\nhello world\n");
}

#[test]
fn a_declared_but_ungranted_program_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    let message = denied(turn(&plugin, "spawn:|sh -c id", CallOptions::default()));
    assert!(message.contains("not granted") && message.contains("[[plugins.<role>.programs]]"), "{message}");
    let message = denied(turn(&plugin, "spawn:|echo goodbye", CallOptions::default()));
    assert!(message.contains("do not match the granted"), "arguments beyond the pattern: {message}");
}

#[test]
fn an_undeclared_program_is_refused_even_if_granted() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let mut info = info(Role::AgentDriver, &wasm, None, None);
    info.process = Some(process_policy(&info, vec![grant("true", "/bin/true", &["**"])], &[], dir.path()));
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    let message = denied(turn(&plugin, "spawn:|true", CallOptions::default()));
    assert!(message.contains("does not declare"), "{message}");
}

#[test]
fn environment_and_working_directory_are_confined() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    let message = denied(turn(&plugin, "spawn-env:WARDEN_TEST_VALUE=x|echo hello", CallOptions::default()));
    assert!(message.contains("WARDEN_TEST_VALUE") && message.contains("env-patterns"), "{message}");
    let message = denied(turn(&plugin, "spawn:/|echo hello", CallOptions::default()));
    assert!(message.contains("outside the granted working-directory roots"), "{message}");
    let inner = dir.path().join("project");
    std::fs::create_dir(&inner).unwrap();
    let ok = turn(&plugin, &format!("spawn:{}|echo hello inside", inner.display()), CallOptions::default())
        .unwrap();
    assert!(ok.ends_with("hello inside\n"), "{ok}");
}

#[test]
fn waiting_in_a_host_call_does_not_use_the_cpu_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    // The budget is 300 ms of guest CPU; the child runs for a second.
    let out = turn(&plugin, "spawn:|sleep 1", CallOptions::default()).unwrap();
    assert_eq!(out, "exit=Some(0)\n");
}

#[test]
fn the_wall_clock_limit_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    let (mut call, events) = progress_recorder();
    call.timeout = Some(Duration::from_millis(500));
    let err = turn(&plugin, "spawn:|sleep 30", call).unwrap_err();
    assert!(
        matches!(&err, CallError::Plugin { error: PluginError::Timeout(m), .. } if m.contains("0.5 s")),
        "{err:?}"
    );
    assert_gone(spawned_pid(&events));
}

#[test]
fn cancellation_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    let (mut call, events) = progress_recorder();
    let cancel = CancelFlag::new();
    call.cancel = cancel.clone();
    let result = std::thread::scope(|scope| {
        let running = scope.spawn(|| turn(&plugin, "spawn:|sleep 30", call));
        warden_tests::wait_for("the spawn's progress event", || !events.lock().unwrap().is_empty());
        cancel.cancel();
        running.join().unwrap()
    });
    assert!(matches!(&result, Err(CallError::Plugin { error: PluginError::Cancelled(_), .. })), "{result:?}");
    assert_gone(spawned_pid(&events));
}

/// Cancel a shell script running in `dir` once `ready` exists there; return the call's result.
fn cancel_script_when_ready(dir: &Path, script: &str) -> (Result<String, CallError>, i32) {
    let (_rt, plugin) = agent_granted(dir, vec![grant("sh", "/bin/sh", &["-c", "*"])]);
    let (mut call, events) = progress_recorder();
    let cancel = CancelFlag::new();
    call.cancel = cancel.clone();
    let prompt = format!("spawn:{}|sh\t-c\t{script}", dir.display());
    let result = std::thread::scope(|scope| {
        let running = scope.spawn(|| turn(&plugin, &prompt, call));
        warden_tests::wait_for("the script to write `ready`", || dir.join("ready").exists());
        cancel.cancel();
        running.join().unwrap()
    });
    (result, spawned_pid(&events))
}

#[test]
fn a_cancelled_child_is_interrupted_first_and_its_group_killed_after() {
    // As when Warden runs in the background: SIGINT ignored, which exec would
    // pass on to the child (so it could not trap it) unless the host resets it.
    // SAFETY: setting a signal disposition; no handler runs.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let script = "trap 'echo interrupted > got-sigint; exit 0' INT; \
                  /bin/sleep 30 & touch ready; wait";
    let (result, shell) = cancel_script_when_ready(dir.path(), script);
    assert!(matches!(&result, Err(CallError::Plugin { error: PluginError::Cancelled(_), .. })), "{result:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("got-sigint")).unwrap(), "interrupted\n");
    assert_gone(shell);
    // The sleeper's pid inside the child's PID namespace is not Warden's:
    // it is found by its working directory.
    for _ in 0..500 {
        if crate::containment::processes_in(dir.path()).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the sleeper outlived the cancelled call: {:?}", crate::containment::processes_in(dir.path()));
}

#[test]
fn a_child_ignoring_sigint_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (result, shell) = cancel_script_when_ready(dir.path(), "trap '' INT; touch ready; /bin/sleep 30");
    assert!(matches!(&result, Err(CallError::Plugin { error: PluginError::Cancelled(_), .. })), "{result:?}");
    assert_gone(shell);
}

#[test]
fn a_trapped_guest_leaves_no_child_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path());
    let (call, events) = progress_recorder();
    let err = turn(&plugin, "spawn-then-loop:sleep 30", call).unwrap_err();
    assert!(matches!(err.abort_reason(), Some(AbortReason::CpuBudget(_))), "{err}");
    assert_gone(spawned_pid(&events));
    assert_eq!(turn(&plugin, "harmless", CallOptions::default()).unwrap(), "harmless");
}
