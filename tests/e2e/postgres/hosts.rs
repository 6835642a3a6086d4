//! Hosts sharing one database: a session goes on from one host to another
//! (whose agent lacks the first one's transcript), two hosts never run one
//! session's turns at once, and a host killed mid-turn lets go of the session.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_tests::fake_provider::FakeProvider;
use warden_tests::postgres::Postgres;
use warden_tests::wait_for;

use super::{Agent, Cluster, ToolResult};

/// How long a killed host's session may stay locked before the test fails.
const RELEASE_DEADLINE: Duration = Duration::from_secs(10);

/// The warning of a turn that replayed the stored turns because the agent's
/// transcript of the session's thread is on another host.
fn replay_warning(result: &ToolResult) -> Option<String> {
    result.ok()["warnings"]
        .as_array()
        .expect("a result lists its warnings")
        .iter()
        .filter_map(Value::as_str)
        .find(|w| w.contains("not on this host"))
        .map(String::from)
}

fn thread_of(result: &ToolResult) -> String {
    result.ok()["threadId"].as_str().expect("a thread id").to_string()
}

/// The real Codex CLI on both hosts (so what B's Codex does without A's
/// rollout file is Codex's own behaviour): B sees A's turn, and its reply
/// works. B's Codex cannot resume A's thread natively, so Warden replays the
/// stored turns into a new thread on B and says so in `warnings`; B's next
/// turn resumes B's thread natively; going back to A replays again.
#[test]
fn a_session_started_on_one_host_continues_on_another() {
    let pg = Postgres::required("a_session_started_on_one_host_continues_on_another");
    let cluster = Cluster::new(&pg, "continues");
    let provider = FakeProvider::start();
    let a = cluster.host("a", Agent::RealCodex(&provider));
    let b = cluster.host("b", Agent::RealCodex(&provider));
    let (on_a, on_b) = (a.serve(), b.serve());
    for warden in [&on_a, &on_b] {
        let ping = warden.call("ping", json!({}));
        assert_eq!(ping.ok()["plugins"]["storage-backend"], "storage-postgres", "{}", ping.text());
    }

    let first = on_a.call("codex", json!({"prompt": "hello", "sessionId": "s", "cwd": cluster.project()}));
    assert_eq!(first.ok()["content"], "echo: hello");
    let thread_a = thread_of(&first);
    assert!(first.ok()["transcript"].as_str().unwrap().contains("/a/codex-home/"), "{:#}", first.ok());
    assert_eq!(replay_warning(&first), None);

    // B sees A's turn, and A's thread, before it runs one.
    let seen = &on_b.sessions()["s"];
    assert_eq!(seen["turnCount"], 1, "{seen}");
    assert_eq!(seen["threadId"], thread_a.as_str(), "{seen}");

    let reply = on_b.call("codex-reply", json!({"prompt": "again", "sessionId": "s"}));
    let warning = replay_warning(&reply).unwrap_or_else(|| {
        panic!("B's turn says nothing about A's transcript being elsewhere: {:#}", reply.ok())
    });
    assert_eq!(
        warning,
        format!(
            "the agent's transcript of thread {thread_a} is not on this host (the session ran elsewhere), \
             so this turn started a new thread from the session's stored turns (the context plugin \
             `context-default` chose how many to replay)"
        )
    );
    let thread_b = thread_of(&reply);
    assert_ne!(thread_b, thread_a, "B's Codex cannot resume A's thread: it runs a new one");
    assert!(reply.ok()["transcript"].as_str().unwrap().contains("/b/codex-home/"), "{:#}", reply.ok());
    let sent = provider.requests().last().unwrap()["input"].to_string();
    assert!(
        sent.contains("User: hello") && sent.contains("Assistant: echo: hello") && sent.contains("again"),
        "B's Codex was given A's turn: {sent}"
    );
    for warden in [&on_b, &on_a] {
        let listed = &warden.sessions()["s"];
        assert_eq!(listed["turnCount"], 2, "{listed}");
        assert_eq!(listed["threadId"], thread_b.as_str(), "{listed}");
    }

    // B's own thread now goes on natively on B: no replay.
    let native = on_b.call("codex", json!({"prompt": "third", "sessionId": "s"}));
    assert_eq!(native.ok()["content"], "echo: third", "{:#}", native.ok());
    assert_eq!(thread_of(&native), thread_b);
    assert_eq!(replay_warning(&native), None);

    // Back on A, whose Codex lacks B's thread: replayed again (context-default replays the last two turns).
    let back = on_a.call("codex-reply", json!({"prompt": "fourth", "sessionId": "s"}));
    let warning = replay_warning(&back).expect("A's turn says B's transcript is elsewhere");
    assert!(warning.contains(&thread_b) && warning.contains("started a new thread"), "{warning}");
    let sent = provider.requests().last().unwrap()["input"].to_string();
    assert!(
        sent.contains("User: again") && sent.contains("User: third") && sent.contains("fourth"),
        "{sent}"
    );
    let thread_back = thread_of(&back);
    assert!(thread_back != thread_a && thread_back != thread_b);
    let listed = &on_b.sessions()["s"];
    assert_eq!(listed["turnCount"], 4, "{listed}");
    assert_eq!(listed["threadId"], thread_back.as_str(), "{listed}");
}

#[test]
fn the_same_session_from_two_hosts_at_once_gives_one_busy() {
    let pg = Postgres::required("the_same_session_from_two_hosts_at_once_gives_one_busy");
    let cluster = Cluster::new(&pg, "one_busy");
    let a = cluster.host("a", Agent::Fake);
    let b = cluster.host("b", Agent::Fake);
    let (on_a, on_b) = (a.serve(), b.serve());
    let first = on_a.call("codex", json!({"prompt": "start", "sessionId": "s", "cwd": cluster.project()}));
    assert_eq!(first.ok()["content"], "done");

    let slow = on_a.start_call("codex", json!({"prompt": "[hold:one] slow", "sessionId": "s"}));
    wait_for("A's slow turn to start", || a.hold_started("one"));
    for (tool, args) in [
        ("codex-reply", json!({"prompt": "meanwhile", "sessionId": "s"})),
        ("codex", json!({"prompt": "meanwhile", "sessionId": "s"})),
    ] {
        let busy = on_b.call(tool, args);
        assert_eq!(busy.error_kind(), Some("busy"), "{tool} on B: {}", busy.text());
        assert!(busy.text().contains("another Warden process"), "{}", busy.text());
    }
    // Another session is not held up.
    let other =
        on_b.call("codex", json!({"prompt": "elsewhere", "sessionId": "t", "cwd": cluster.project()}));
    assert_eq!(other.ok()["content"], "done");
    assert!(
        b.codex_runs().iter().all(|run| !run.iter().any(|arg| arg == "meanwhile")),
        "B started no agent for the busy session: {:?}",
        b.codex_runs()
    );

    a.release("one");
    let done = on_a.result(slow);
    assert_eq!(done.ok()["content"], "done");
    // The lock was released before A answered: B runs at once.
    let after = on_b.call("codex", json!({"prompt": "now", "sessionId": "s"}));
    assert_eq!(after.ok()["content"], "done", "{}", after.text());
    let listed = &on_a.sessions()["s"];
    assert_eq!(listed["turnCount"], 3, "{listed}");
    assert_eq!(listed["threadId"], after.ok()["threadId"], "{listed}");
}

#[test]
fn a_host_killed_mid_turn_releases_its_lock() {
    let pg = Postgres::required("a_host_killed_mid_turn_releases_its_lock");
    let cluster = Cluster::new(&pg, "killed");
    let a = cluster.host("a", Agent::Fake);
    let b = cluster.host("b", Agent::Fake);
    let (mut on_a, on_b) = (a.serve(), b.serve());
    let first = on_a.call("codex", json!({"prompt": "start", "sessionId": "s", "cwd": cluster.project()}));
    assert_eq!(first.ok()["content"], "done");
    let _never_answered =
        on_a.start_call("codex", json!({"prompt": "[hold:forever] slow", "sessionId": "s"}));
    wait_for("A's slow turn to start", || a.hold_started("forever"));
    let busy = on_b.call("codex", json!({"prompt": "while A lives", "sessionId": "s"}));
    assert_eq!(busy.error_kind(), Some("busy"), "{}", busy.text());

    assert!(!a.fake_codex_processes().is_empty(), "A's agent is running");

    on_a.kill();
    let killed_at = Instant::now();
    wait_for("A's agent to end with A", || a.fake_codex_processes().is_empty());
    let after = loop {
        let attempt = on_b.call("codex", json!({"prompt": "after the kill", "sessionId": "s"}));
        if attempt.error_kind() != Some("busy") {
            break attempt;
        }
        assert!(
            killed_at.elapsed() < RELEASE_DEADLINE,
            "the session is still locked {RELEASE_DEADLINE:?} after its host was killed: {}",
            attempt.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("B ran the session {:?} after A was killed", killed_at.elapsed());
    assert_eq!(after.ok()["content"], "done", "{}", after.text());
    let listed = &on_b.sessions()["s"];
    assert_eq!(listed["turnCount"], 2, "the killed turn was not recorded: {listed}");
}

/// The warning of a turn that was recorded beside another host's turn that
/// ran at the same time (its lock lost), leaving the session without a thread.
const BOTH_RECORDED: &str = "another Warden process ran a turn on this session while this one ran; both are \
                             recorded, and the next turn replays the stored turns into a new agent thread";

/// How long after a restart a host may fail to run a turn before the test fails.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(30);

/// Everything [`super::FAKE_CODEX`] logged on `host` (a replayed prompt spans
/// several lines, which [`super::Host::codex_runs`] would split).
fn codex_log(host: &super::Host) -> String {
    std::fs::read_to_string(host.root.join("codex.log")).unwrap_or_default()
}

fn warnings(result: &ToolResult) -> Vec<String> {
    result.ok()["warnings"]
        .as_array()
        .expect("a result lists its warnings")
        .iter()
        .map(|w| w.as_str().expect("a warning is a string").to_string())
        .collect()
}

/// A server restart drops the advisory lock of A's running turn, so B runs a
/// turn on the same session meanwhile. A's turn, saved after B's, is recorded
/// beside it, without a thread (neither A's thread nor B's holds both turns),
/// and A's result says so; the next turn replays the stored turns into a new
/// thread.
#[test]
fn a_lock_lost_to_a_server_restart_records_both_turns_and_replays_next() {
    let pg =
        Postgres::required_exclusive("a_lock_lost_to_a_server_restart_records_both_turns_and_replays_next");
    let cluster = Cluster::new(&pg, "lock_lost");
    let a = cluster.host("a", Agent::Fake);
    let b = cluster.host("b", Agent::Fake);
    let (on_a, on_b) = (a.serve(), b.serve());
    let first = on_a.call("codex", json!({"prompt": "start", "sessionId": "s", "cwd": cluster.project()}));
    assert_eq!(first.ok()["content"], "done");
    let thread_a = thread_of(&first);

    let held = on_a.start_call("codex-reply", json!({"prompt": "[hold:lost] slow", "sessionId": "s"}));
    wait_for("A's held turn to start", || a.hold_started("lost"));
    let busy = on_b.call("codex-reply", json!({"prompt": "before the restart", "sessionId": "s"}));
    assert_eq!(busy.error_kind(), Some("busy"), "A's turn holds the session: {}", busy.text());

    let before = pg.psql("SELECT pg_postmaster_start_time()");
    pg.restart();
    assert_ne!(pg.psql("SELECT pg_postmaster_start_time()"), before, "the server was not restarted");
    let restarted_at = Instant::now();
    // A's turn still runs, but its lock went with its connection: B gets the
    // session once its own connections are back.
    let mut failures: Vec<String> = Vec::new();
    let during = loop {
        let attempt = on_b.call("codex-reply", json!({"prompt": "while A ran", "sessionId": "s"}));
        if !attempt.is_error() {
            break attempt;
        }
        let kind = attempt.error_kind().unwrap_or_default().to_string();
        assert!(
            kind == "busy"
                || kind == "plugin"
                || (kind == "invalid" && attempt.text().contains("cannot lock session")),
            "B's turn failed otherwise than for the server coming back ({kind}): {}",
            attempt.text()
        );
        assert!(
            restarted_at.elapsed() < RECOVERY_DEADLINE,
            "B could not run a turn on the session {RECOVERY_DEADLINE:?} after the restart, \
             though A's lock went with it: {}",
            attempt.text()
        );
        failures.push(format!("{kind}: {}", attempt.text()));
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "B ran its turn {:?} after the restart, after {} failed attempt(s): {failures:#?}",
        restarted_at.elapsed(),
        failures.len()
    );
    assert!(a.hold_started("lost") && !a.fake_codex_processes().is_empty(), "A's turn still runs");
    assert_eq!(during.ok()["content"], "done");
    let thread_b = thread_of(&during);
    assert_ne!(thread_b, thread_a, "B's agent cannot resume A's thread");
    assert!(replay_warning(&during).is_some(), "B's turn replayed A's stored turn: {:#}", during.ok());
    let listed = &on_a.sessions()["s"];
    assert_eq!(listed["turnCount"], 2, "B's turn is recorded before A's ends: {listed}");
    assert_eq!(listed["threadId"], thread_b.as_str(), "{listed}");

    a.release("lost");
    let late = on_a.result(held);
    assert_eq!(late.ok()["content"], "done", "A's turn is recorded, not lost: {}", late.text());
    assert_eq!(thread_of(&late), thread_a, "A's turn went on in A's thread");
    assert!(
        warnings(&late).iter().any(|w| w == BOTH_RECORDED),
        "A's result says B ran a turn meanwhile: {:?}",
        warnings(&late)
    );
    for warden in [&on_a, &on_b] {
        let listed = &warden.sessions()["s"];
        assert_eq!(listed["turnCount"], 3, "both turns are recorded: {listed}");
        assert!(
            listed.get("threadId").is_none_or(Value::is_null),
            "neither A's thread nor B's holds all three turns: {listed}"
        );
    }

    // The next turn (on A, which ran the session's first thread) resumes
    // neither thread: the stored turns are replayed into a new one.
    let logged = codex_log(&a).len();
    let next = on_a.call("codex-reply", json!({"prompt": "next", "sessionId": "s"}));
    assert_eq!(next.ok()["content"], "done", "{}", next.text());
    let thread_next = thread_of(&next);
    assert!(thread_next != thread_a && thread_next != thread_b, "a new thread: {thread_next}");
    let run = codex_log(&a)[logged..].to_string();
    eprintln!("the next turn's run of the fake Codex: {run:?}");
    assert!(!run.split('\t').any(|arg| arg == "resume"), "the next turn resumed no thread: {run:?}");
    // context-default replays the last two stored turns (its `replay-turns`):
    // B's, then A's, the two turns no thread holds together.
    let replayed = "Context from earlier turns of this session (oldest first):\n\n\
                    [Turn 1]\nUser: while A ran\nAssistant: done\n\n\
                    [Turn 2]\nUser: [hold:lost] slow\nAssistant: done\n\n\
                    Current request:\nnext";
    assert!(run.contains(replayed), "the agent was given B's turn, then A's: {run:?}");
    let listed = &on_b.sessions()["s"];
    assert_eq!(listed["turnCount"], 4, "{listed}");
    assert_eq!(listed["threadId"], thread_next.as_str(), "{listed}");
}
