//! Several Warden "hosts" sharing one PostgreSQL store (`storage-postgres`):
//! each host here is a real `warden serve` process with a state directory, a
//! CODEX_HOME and a turn-lock directory of its own, so nothing but the
//! database is shared between them, as between two machines. Every test
//! takes [`Postgres::required`] (or `required_exclusive`): without a server
//! it fails, it never skips.
//!
//! - [`hosts`]: a session continued on another host, one turn at a time
//!   across hosts, a host killed mid-turn;
//! - [`store_writers`]: processes doing read-modify-writes through the
//!   storage plugin, and saves across a server restart;
//! - [`migrate_to`]: `warden migrate --to` from a directory store.

mod hosts;
mod migrate_to;
mod store_writers;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use warden_tests::postgres::{Postgres, TestDb};
use warden_tests::{OBSERVE_FOR, codex_bin, warden_bin};

/// The test-only fake Codex CLI, written into each host: `codex exec --json
/// …` prints the JSON Lines agent-codex parses with a fresh thread id (the
/// same thread for `… resume -- <thread> …`), answering `done`. A prompt
/// starting with `[hold:<name>]` is a slow turn: it first writes
/// `<host>/started-<name>`, then waits until `<host>/release-<name>` exists
/// (two minutes at most). Every run appends its arguments (tab-separated) to
/// `<host>/codex.log`. As `host/benches/fake-codex/codex`, plus the hold and
/// the log.
const FAKE_CODEX: &str = r#"#!/bin/sh
read -r id </proc/sys/kernel/random/uuid
resume=
thread=
after=
prompt=
for arg; do
    if [ -n "$after" ]; then
        if [ -n "$resume" ] && [ -z "$thread" ]; then thread=$arg; id=$arg; continue; fi
        prompt=$arg
        continue
    fi
    case "$arg" in
    --) after=1 ;;
    resume) resume=1 ;;
    esac
done
line=
for arg; do line="$line$arg	"; done
printf '%s\n' "$line" >>'@HOST@/codex.log'
case "$prompt" in
'[hold:'*)
    name=${prompt#\[hold:}
    name=${name%%\]*}
    : >"@HOST@/started-$name"
    i=0
    while [ ! -e "@HOST@/release-$name" ] && [ $i -lt 6000 ]; do /bin/sleep 0.02; i=$((i + 1)); done
    ;;
esac
printf '%s\n' \
    "{\"type\":\"thread.started\",\"thread_id\":\"$id\"}" \
    '{"type":"turn.started"}' \
    '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"done"}}' \
    '{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":1,"reasoning_output_tokens":0}}'
"#;

/// One database and a directory (under the target directory: the real Codex
/// refuses helper binaries under /tmp) holding the hosts that share it and
/// the project directory every host knows by the same path.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    db: TestDb,
    password_file: PathBuf,
}

/// Which Codex a host runs.
pub(crate) enum Agent<'a> {
    /// [`FAKE_CODEX`].
    Fake,
    /// The real Codex CLI from npm, against this fake provider.
    RealCodex(&'a warden_tests::fake_provider::FakeProvider),
}

impl Cluster {
    pub(crate) fn new(pg: &Postgres, hint: &str) -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        std::fs::create_dir_all(dir.path().join("project")).unwrap();
        let db = pg.fresh_database(hint);
        let password_file = db.password_file(dir.path());
        Self { dir, db, password_file }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The project directory, the same path on every host.
    pub(crate) fn project(&self) -> String {
        self.path("project").to_str().unwrap().to_string()
    }

    /// The `[plugins.storage-backend]` sections naming this database.
    pub(crate) fn storage_section(&self) -> String {
        format!(
            "[plugins.storage-backend]\nplugin = \"storage-postgres\"\n\
             [plugins.storage-backend.database]\nurl = {url:?}\npassword-file = {password:?}\nschema = {schema:?}\n",
            url = self.db.url(),
            password = self.password_file,
            schema = self.db.schema(),
        )
    }

    /// A configuration file `<name>.toml` with the shared cache, this
    /// database as the store and a state directory `<name>-state`: for the
    /// store alone (no agent runs).
    pub(crate) fn store_config(&self, name: &str) -> PathBuf {
        let file = self.path(&format!("{name}.toml"));
        let text = format!(
            "cache-dir = {cache:?}\nstate-dir = {state:?}\n{storage}",
            cache = crate::cache_dir(),
            state = self.path(&format!("{name}-state")),
            storage = self.storage_section(),
        );
        std::fs::write(&file, text).unwrap();
        file
    }

    /// A host `name` on this database: its own state directory and CODEX_HOME.
    pub(crate) fn host(&self, name: &str, agent: Agent) -> Host {
        Host::new(self.path(name), Some(&self.storage_section()), &self.project(), agent)
    }
}

/// One host's directories, configuration and environment.
pub(crate) struct Host {
    root: PathBuf,
    config: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Host {
    /// A host in `root` storing in `storage` (configuration sections), or in
    /// its state directory's directory store when `None`.
    pub(crate) fn new(root: PathBuf, storage: Option<&str>, project: &str, agent: Agent) -> Self {
        for sub in ["state", "codex-home", "home"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let mut env = vec![
            ("HOME", root.join("home").to_str().unwrap().to_string()),
            ("CODEX_HOME", root.join("codex-home").to_str().unwrap().to_string()),
            ("PATH", "/usr/bin:/bin".to_string()),
            ("WARDEN_LOG", "warn".to_string()),
        ];
        let codex = match agent {
            Agent::Fake => {
                let fake = root.join("codex");
                std::fs::write(&fake, FAKE_CODEX.replace("@HOST@", root.to_str().unwrap())).unwrap();
                std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
                fake
            }
            Agent::RealCodex(provider) => {
                provider.write_codex_home(&root.join("codex-home"));
                env.push(("MOCK_API_KEY", "test-key".to_string()));
                codex_bin()
            }
        };
        let config = root.join("warden.toml");
        let text = format!(
            r#"cache-dir = {cache:?}
state-dir = {state:?}
{storage}
[agents.codex]
root = {home:?}
env = ["HOME", "PATH", "CODEX_HOME", "MOCK_API_KEY"]
cwd-roots = [{project:?}]
turn-timeout-secs = 300
[[agents.codex.programs]]
name = "codex"
path = {codex:?}
policy = "codex"
"#,
            cache = crate::cache_dir(),
            state = root.join("state"),
            storage = storage.unwrap_or_default(),
            home = root.join("codex-home"),
        );
        std::fs::write(&config, text).unwrap();
        Self { root, config, env }
    }

    pub(crate) fn config(&self) -> &Path {
        &self.config
    }

    /// `warden --config <this host's> …` with this host's environment.
    pub(crate) fn warden(&self) -> Command {
        let mut command = Command::new(warden_bin());
        command.env_clear().envs(self.env.iter().map(|(k, v)| (k, v))).arg("--config").arg(&self.config);
        command
    }

    /// `warden serve` on this host, initialised.
    pub(crate) fn serve(&self) -> Warden {
        let mut command = self.warden();
        command.arg("serve");
        Warden::start(command, self.codex_home_var())
    }

    fn codex_home_var(&self) -> String {
        format!("CODEX_HOME={}", self.root.join("codex-home").display())
    }

    /// The arguments of every run of [`FAKE_CODEX`] on this host, oldest first.
    pub(crate) fn codex_runs(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.root.join("codex.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| line.split('\t').filter(|a| !a.is_empty()).map(String::from).collect())
            .collect()
    }

    /// The processes running this host's [`FAKE_CODEX`].
    pub(crate) fn fake_codex_processes(&self) -> Vec<i32> {
        let script = self.root.join("codex");
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).any(|arg| arg == script.as_os_str().as_encoded_bytes()) {
                found.push(pid);
            }
        }
        found
    }

    /// Whether the turn of `[hold:<name>]` has started on this host.
    pub(crate) fn hold_started(&self, name: &str) -> bool {
        self.root.join(format!("started-{name}")).exists()
    }

    /// Let the turn of `[hold:<name>]` finish.
    pub(crate) fn release(&self, name: &str) {
        std::fs::write(self.root.join(format!("release-{name}")), "").unwrap();
    }
}

/// Replies by request id, filled by the reader thread; `None` once stdout closed.
type Replies = Arc<(Mutex<Option<HashMap<u64, Value>>>, Condvar)>;

/// A running `warden serve` spoken to over stdio (MCP 2025-06-18, so a tool
/// call is answered when its turn is over). Requests may overlap. Killed,
/// with every process left running with its host's CODEX_HOME, when dropped
/// (so one Warden per host at a time).
pub(crate) struct Warden {
    child: Child,
    stdin: Mutex<ChildStdin>,
    replies: Replies,
    next_id: Mutex<u64>,
    codex_home_var: String,
}

impl Warden {
    fn start(mut command: Command, codex_home_var: String) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let replies: Replies = Arc::new((Mutex::new(Some(HashMap::new())), Condvar::new()));
        let sink = replies.clone();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
                let Some(id) = message.get("id").and_then(Value::as_u64) else { continue };
                if message.get("result").is_some() || message.get("error").is_some() {
                    let (map, ready) = &*sink;
                    if let Some(map) = map.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        map.insert(id, message);
                    }
                    ready.notify_all();
                }
            }
            let (map, ready) = &*sink;
            *map.lock().unwrap_or_else(|e| e.into_inner()) = None;
            ready.notify_all();
        });
        let stdin = Mutex::new(child.stdin.take().unwrap());
        let warden = Self { child, stdin, replies, next_id: Mutex::new(0), codex_home_var };
        let init = warden.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        warden.notify("notifications/initialized");
        warden
    }

    fn notify(&self, method: &str) {
        let mut stdin = self.stdin.lock().unwrap();
        writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "method": method})).unwrap();
    }

    /// Send a request; its id, for [`Warden::reply`].
    fn send(&self, method: &str, params: Value) -> u64 {
        let id = {
            let mut next = self.next_id.lock().unwrap();
            *next += 1;
            *next
        };
        let mut stdin = self.stdin.lock().unwrap();
        writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .unwrap();
        stdin.flush().unwrap();
        id
    }

    /// The reply to request `id` (with `result` or `error`); fails the test
    /// after [`OBSERVE_FOR`] or when the server closed its output.
    fn reply(&self, id: u64) -> Value {
        let until = Instant::now() + OBSERVE_FOR;
        let (map, ready) = &*self.replies;
        let mut guard = map.lock().unwrap();
        loop {
            let Some(replies) = guard.as_mut() else {
                panic!("warden (pid {}) closed its output before answering request {id}", self.child.id())
            };
            if let Some(reply) = replies.remove(&id) {
                return reply;
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no reply to request {id} after {OBSERVE_FOR:?}");
            guard = ready.wait_timeout(guard, left).unwrap().0;
        }
    }

    fn request(&self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        self.reply(id)
    }

    /// Start `tools/call` of `tool`; answered by [`Warden::result`].
    pub(crate) fn start_call(&self, tool: &str, arguments: Value) -> Pending {
        Pending(self.send("tools/call", json!({"name": tool, "arguments": arguments})))
    }

    /// The result of a call [`Warden::start_call`] started (a protocol error fails the test).
    pub(crate) fn result(&self, pending: Pending) -> ToolResult {
        let reply = self.reply(pending.0);
        match reply.get("result") {
            Some(result) => ToolResult(result.clone()),
            None => panic!("the tool call failed at the protocol level: {reply}"),
        }
    }

    /// `tools/call` of `tool`, waiting for its result.
    pub(crate) fn call(&self, tool: &str, arguments: Value) -> ToolResult {
        let pending = self.start_call(tool, arguments);
        self.result(pending)
    }

    /// The sessions `listSessions` shows, by key.
    pub(crate) fn sessions(&self) -> HashMap<String, Value> {
        let listed = self.call("listSessions", json!({}));
        listed.ok()["sessions"]
            .as_array()
            .expect("listSessions lists sessions")
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
            .collect()
    }

    /// SIGKILL this Warden, as a host dying would, and reap it. The agents it
    /// runs end with it (Warden's containment); whatever did not is killed
    /// on drop.
    pub(crate) fn kill(&mut self) {
        // SAFETY: kill(2) on this test's own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        self.child.wait().unwrap();
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in processes_with_env(&self.codex_home_var) {
            // SAFETY: kill(2) on a process started for this test's host.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The processes whose environment holds `var` (`NAME=value`), this one excepted.
fn processes_with_env(var: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if pid != me && environ.split(|b| *b == 0).any(|v| v == var.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// A tool call under way.
pub(crate) struct Pending(u64);

/// A `tools/call` result.
#[derive(Debug)]
pub(crate) struct ToolResult(Value);

impl ToolResult {
    pub(crate) fn is_error(&self) -> bool {
        self.0["isError"] == true
    }

    pub(crate) fn structured(&self) -> &Value {
        self.0.get("structuredContent").expect("every result carries structuredContent")
    }

    pub(crate) fn text(&self) -> String {
        self.0["content"][0]["text"].as_str().unwrap_or_default().to_string()
    }

    /// The structured result of a call that succeeded.
    pub(crate) fn ok(&self) -> &Value {
        assert!(!self.is_error(), "the call failed: {}", self.text());
        self.structured()
    }

    /// The error kind of a call that failed.
    pub(crate) fn error_kind(&self) -> Option<&str> {
        if !self.is_error() {
            return None;
        }
        self.structured()["error"]["kind"].as_str()
    }
}

/// Run `command` to its end; its stdout, failing the test with its output if it failed.
pub(crate) fn run(command: &mut Command) -> String {
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
