//! Nothing a plugin starts outlives its turn, from the attacker's side: the
//! hostile agent starts a shell that leaves a `setsid` grandchild (its own
//! session and process group) and a double-forked orphan; each must die
//! when the call is cancelled, times out, drops the child, traps, and when
//! Warden itself is SIGKILLed. And no plugin can exhaust Warden with
//! children or output: the child caps refuse with the setting to raise, and
//! 30 MB of empty lines under a 1 MiB output cap leave Warden's memory flat.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use warden::contract::role::Role;
use warden::control::CancelFlag;
use warden::runtime::calls::AgentPlugin;
use warden::runtime::loaded::{AbortReason, CallError, CallOptions};
use warden::types::PluginError;
use warden_tests::{
    agent_turn, guest_wasm, info, process_policy, program, progress_recorder, runtime, warden_bin,
};

/// A shell that starts a `setsid` grandchild and a double-forked one, each
/// writing a file once running, then says `ready` and sleeps. Every process
/// of the tree sleeps far longer than a test. Pids inside a PID namespace are
/// not Warden's, so the test finds the tree by its working directory (the
/// test's own temporary directory) in /proc.
const TREE: &str = r#"read -r pid rest < /proc/self/stat; echo $pid > main.pid
/usr/bin/setsid /bin/sh -c 'read -r pid rest < /proc/self/stat; echo $pid > setsid.pid; exec /bin/sleep 300' &
/bin/sh -c '/bin/sh -c "read -r pid rest < /proc/self/stat; echo \$pid > double.pid; exec /bin/sleep 300" &'
while [ ! -s setsid.pid ] || [ ! -s double.pid ]; do /bin/sleep 0.01; done
echo ready
exec /bin/sleep 300
"#;

const TREE_PIDS: [&str; 3] = ["main.pid", "setsid.pid", "double.pid"];

/// A directory holding the tree script, and the command that runs it.
fn tree_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tree.sh"), TREE).unwrap();
    (dir, "sh\t-c\t/bin/sh tree.sh".to_string())
}

fn agent(cwd_root: &Path, per_call: usize, per_plugin: usize) -> (warden::runtime::Runtime, AgentPlugin) {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let mut info = info(Role::AgentDriver, &wasm, None, None);
    info.limits.max_children_per_call = per_call;
    info.limits.max_children = per_plugin;
    info.process = Some(process_policy(&info, vec![program("sh", "/bin/sh", &["-c", "*"])], &[], cwd_root));
    let plugin = runtime.load_agent(info, &wasm).unwrap();
    (runtime, plugin)
}

fn turn(plugin: &AgentPlugin, prompt: &str, call: CallOptions) -> Result<String, CallError> {
    agent_turn(plugin, prompt, call)
}

/// Live processes (not zombies) whose working directory is `dir`.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir) && !dead(pid) {
            found.push(pid);
        }
    }
    found
}

/// The tree's processes, once all are running (bounded: observation, not synchronisation).
fn tree_pids(dir: &Path) -> Vec<i32> {
    for _ in 0..1000 {
        if TREE_PIDS.iter().all(|file| std::fs::metadata(dir.join(file)).is_ok_and(|m| m.len() > 0)) {
            let pids = processes_in(dir);
            assert!(pids.len() >= 3, "the tree's processes are found by their directory: {pids:?}");
            return pids;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the process tree did not write its pid files in {}", dir.display());
}

/// Whether `pid` is gone or a zombie (dead, not yet reaped by whoever inherited it).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Every pid dies within a bounded while (signals are delivered asynchronously).
fn assert_all_gone(pids: &[i32]) {
    for _ in 0..500 {
        if pids.iter().all(|&pid| dead(pid)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let alive: Vec<String> = pids
        .iter()
        .filter(|&&pid| !dead(pid))
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{pid} ({})", String::from_utf8_lossy(&cmdline).replace('\0', " ").trim())
        })
        .collect();
    for pid in pids {
        // Clean up after a failed run; these are the test's own processes.
        // SAFETY: sending a signal.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    panic!("processes of the tree outlived the turn: {alive:?}");
}

/// The tree ran (its files are there) and none of its processes is left.
fn assert_tree_gone(dir: &Path) {
    assert!(
        TREE_PIDS.iter().all(|file| dir.join(file).exists()),
        "the tree was running before it was stopped"
    );
    for _ in 0..500 {
        if processes_in(dir).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_all_gone(&processes_in(dir));
}

#[test]
fn a_cancelled_call_kills_setsid_and_double_forked_grandchildren() {
    let (dir, command) = tree_dir();
    let (_rt, plugin) = agent(dir.path(), 4, 16);
    let cancel = CancelFlag::new();
    let call = CallOptions { cancel: cancel.clone(), ..CallOptions::default() };
    let (result, pids) = std::thread::scope(|scope| {
        let running = scope.spawn(|| turn(&plugin, &format!("tree:block|{command}"), call));
        let pids = tree_pids(dir.path());
        cancel.cancel();
        (running.join().unwrap(), pids)
    });
    assert!(matches!(&result, Err(CallError::Plugin { error: PluginError::Cancelled(_), .. })), "{result:?}");
    assert_all_gone(&pids);
}

#[test]
fn a_call_past_its_deadline_kills_the_whole_tree() {
    let (dir, command) = tree_dir();
    let (_rt, plugin) = agent(dir.path(), 4, 16);
    let call = CallOptions { timeout: Some(Duration::from_secs(3)), ..CallOptions::default() };
    let (result, pids) = std::thread::scope(|scope| {
        let running = scope.spawn(|| turn(&plugin, &format!("tree:block|{command}"), call));
        let pids = tree_pids(dir.path());
        (running.join().unwrap(), pids)
    });
    assert!(matches!(&result, Err(CallError::Plugin { error: PluginError::Timeout(_), .. })), "{result:?}");
    assert_all_gone(&pids);
}

#[test]
fn a_child_the_plugin_drops_takes_its_tree_with_it() {
    let (dir, command) = tree_dir();
    let (_rt, plugin) = agent(dir.path(), 4, 16);
    assert_eq!(turn(&plugin, &format!("tree:drop|{command}"), CallOptions::default()).unwrap(), "dropped");
    assert_tree_gone(dir.path());
}

#[test]
fn a_trapped_plugin_leaves_no_descendant_behind() {
    let (dir, command) = tree_dir();
    let (_rt, plugin) = agent(dir.path(), 4, 16);
    let err = turn(&plugin, &format!("tree:trap|{command}"), CallOptions::default()).unwrap_err();
    assert!(matches!(err.abort_reason(), Some(AbortReason::CpuBudget(_))), "{err}");
    assert_tree_gone(dir.path());
}

/// `warden serve` on stdio with the hostile agent, granted `sh -c *` in `dir`.
fn serve(dir: &Path, extra: &str) -> Child {
    serve_contained(dir, extra, None)
}

/// [`serve`], with `WARDEN_CONTAINMENT` set to `containment` if given.
fn serve_contained(dir: &Path, extra: &str, containment: Option<&str>) -> Child {
    let agent = Path::new(warden::runtime::embedded::GUEST_DIR).join("hostile_agent.wasm");
    let config = dir.join("warden.toml");
    let text = format!(
        r#"cache-dir = {cache:?}
state-dir = {state:?}
[plugins.agent-driver]
path = {agent:?}
cwd-roots = [{dir:?}]
{extra}
[[plugins.agent-driver.programs]]
name = "sh"
path = "/bin/sh"
args = ["-c", "*"]
unrestricted = true
"#,
        cache = crate::cache_dir(),
        state = dir.join("state"),
    );
    std::fs::write(&config, text).unwrap();
    let mut command = Command::new(warden_bin());
    if let Some(containment) = containment {
        command.env("WARDEN_CONTAINMENT", containment);
    }
    command
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("WARDEN_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Send the MCP handshake and one `codex` call with `prompt`.
fn call_codex(server: &mut Child, prompt: &str) {
    let stdin = server.stdin.as_mut().unwrap();
    for message in [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"codex","arguments":{"prompt":prompt}}}),
    ] {
        writeln!(stdin, "{message}").unwrap();
    }
}

/// The answer to request `id`.
fn response(server: &mut Child, id: i64) -> Value {
    let mut lines = BufReader::new(server.stdout.as_mut().unwrap()).lines();
    loop {
        let line = lines.next().expect("the server answered").unwrap();
        let message: Value = serde_json::from_str(&line).unwrap();
        if message["id"] == id {
            return message;
        }
    }
}

#[test]
fn a_sigkilled_warden_takes_every_descendant_with_it() {
    let (dir, command) = tree_dir();
    let mut server = serve(dir.path(), "");
    call_codex(&mut server, &format!("tree:block|{command}"));
    let pids = tree_pids(dir.path());
    server.kill().unwrap();
    server.wait().unwrap();
    assert_all_gone(&pids);
}

/// Peak resident memory of a process, from /proc/<pid>/status.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn thirty_megabytes_of_empty_lines_under_a_one_mebibyte_cap_keep_warden_small() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flood.sh"),
        "/usr/bin/head -c 30000000 /dev/zero | /usr/bin/tr '\\0' '\\n'\n",
    )
    .unwrap();
    let mut server = serve(dir.path(), "output-cap-mib = 1\ncpu-budget-ms = 60000");
    call_codex(&mut server, "spawn:|sh\t-c\t/bin/sh flood.sh");
    let answer = response(&mut server, 2);
    let peak = peak_rss_kib(server.id());
    server.kill().unwrap();
    server.wait().unwrap();
    let content = answer["result"]["structuredContent"]["content"].as_str().unwrap_or_default();
    assert!(content.starts_with("exit=Some(0)\n"), "the flood ran to its end: {:.200}", answer.to_string());
    assert!(peak < 256 << 10, "Warden's peak RSS was {} MiB", peak >> 10);
}

/// A namespace's PID 1 shares Warden's memory. The program runs as Warden's
/// user, so without more it could open `/proc/1/mem` (or ptrace PID 1) and
/// write into Warden. In a user namespace it holds no capability over
/// Warden's memory, and Warden is non-dumpable: every way in is refused.
#[test]
fn the_program_cannot_reach_warden_memory_through_its_pid_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probe.sh"),
        r#"read -r name < /proc/1/comm; echo "pid1=$name"
for file in mem environ maps; do
    if (exec 3</proc/1/$file) 2>/dev/null; then echo "opened $file"; else echo "refused $file"; fi
done
if (exec 3<>/proc/1/mem) 2>/dev/null; then echo "opened mem for writing"; fi
"#,
    )
    .unwrap();
    let mut server = serve_contained(dir.path(), "", Some("user-pid-namespace"));
    call_codex(&mut server, "spawn:|sh\t-c\t/bin/sh probe.sh");
    let answer = response(&mut server, 2);
    server.kill().unwrap();
    server.wait().unwrap();
    let content = answer["result"]["structuredContent"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("pid1=warden-init"), "the program ran under Warden's PID 1: {answer}");
    for file in ["mem", "environ", "maps"] {
        assert!(content.contains(&format!("refused {file}")), "/proc/1/{file} was not refused: {content}");
    }
    assert!(!content.contains("opened"), "{content}");
}

/// The program starts with its stdin, stdout and stderr and nothing else:
/// nothing of Warden's (no other child's pipe, no locked file, no report
/// pipe) and nothing Warden inherited without close-on-exec from whatever
/// started it (this test's harness passes a few), in each containment mode.
/// The shell lists its own descriptors (no pipeline: the shell would hold its pipe).
#[test]
fn the_program_holds_only_its_stdio() {
    // A descriptor without close-on-exec, as a careless MCP client might pass to Warden.
    let inherited = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: clearing FD_CLOEXEC on a descriptor this test owns.
    assert_eq!(unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&inherited), libc::F_SETFD, 0) }, 0);
    for containment in [None, Some("user-pid-namespace"), Some("process-group")] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = serve_contained(dir.path(), "", containment);
        call_codex(&mut server, "spawn:|sh\t-c\tls /proc/$$/fd");
        let answer = response(&mut server, 2);
        server.kill().unwrap();
        server.wait().unwrap();
        let content = answer["result"]["structuredContent"]["content"].as_str().unwrap_or_default();
        assert_eq!(content.trim(), "exit=Some(0)\n0\n1\n2", "{containment:?}: {answer}");
    }
    drop(inherited);
}

/// A namespace's PID 1 never execs, so close-on-exec does nothing for it: it
/// starts with a copy of every descriptor Warden holds (other children's
/// pipes, locked files, the client's connection) and must close them, or a
/// long turn would keep another child's output from reaching end of file
/// and a released lock held. It closes its stdio too, once the program has
/// it, so the program's output ends when the program's processes exit, not
/// when the namespace is torn down. Read from outside: only its report pipe,
/// once the program has started (a namespace set up ahead of the spawn is
/// handed the program after the spawn returned: until it has started it, its
/// PID 1 also holds the program's stdio and the socket they came on).
#[test]
fn the_namespace_init_holds_none_of_wardens_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path(), 4, 16);
    let (mut call, events) = progress_recorder();
    let cancel = CancelFlag::new();
    call.cancel = cancel.clone();
    let (name, descriptors) = std::thread::scope(|scope| {
        let running = scope.spawn(|| turn(&plugin, "spawn:|sh\t-c\t/bin/sleep 30", call));
        warden_tests::wait_for("the spawn's progress event", || !events.lock().unwrap().is_empty());
        let pid = events.lock().unwrap()[0].message.trim_start_matches("pid ").to_string();
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        let mut descriptors = Vec::new();
        warden_tests::wait_for("PID 1 to have started the program", || {
            descriptors = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .expect("the test runs as Warden's user with CAP_SYS_PTRACE (root), as the suite does")
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            descriptors.sort();
            let handing_over = ["0", "1", "2", "3", "4"];
            assert!(descriptors.iter().all(|fd| handing_over.contains(&fd.as_str())), "{descriptors:?}");
            descriptors == ["3"]
        });
        cancel.cancel();
        running.join().unwrap().unwrap_err();
        (name, descriptors)
    });
    assert_eq!(name.trim(), "warden-init", "the child held is the namespace's PID 1");
    assert_eq!(descriptors, ["3"], "the report pipe only");
}

fn busy(result: Result<String, CallError>) -> String {
    match result {
        Err(CallError::Plugin { error: PluginError::Busy(message), .. }) => message,
        other => panic!("expected busy, got {other:?}"),
    }
}

#[test]
fn one_call_cannot_hold_more_children_than_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path(), 2, 16);
    let message = busy(turn(&plugin, "spawn-many:3|sh\t-c\ttrue", CallOptions::default()));
    assert!(
        message.contains("2 live children in this call") && message.contains("max-children-per-call"),
        "{message}"
    );
    assert_eq!(turn(&plugin, "spawn-many:2|sh\t-c\ttrue", CallOptions::default()).unwrap(), "ran 2");
}

#[test]
fn a_plugin_cannot_hold_more_children_than_its_cap_over_all_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, plugin) = agent(dir.path(), 4, 2);
    let (mut holding, events) = progress_recorder();
    let cancel = CancelFlag::new();
    holding.cancel = cancel.clone();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| turn(&plugin, "spawn-many:2|sh\t-c\texec /bin/sleep 300", holding));
        for _ in 0..1000 {
            if events.lock().unwrap().len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let message = busy(turn(&plugin, "spawn:|sh\t-c\ttrue", CallOptions::default()));
        assert!(
            message.contains("2 live children over all its calls") && message.contains("`max-children`"),
            "{message}"
        );
        cancel.cancel();
        assert!(running.join().unwrap().is_err());
    });
    assert_eq!(turn(&plugin, "spawn:|sh\t-c\ttrue", CallOptions::default()).unwrap(), "exit=Some(0)\n");
}
