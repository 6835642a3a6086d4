//! The default session-policy and context-builder plugins, called through
//! the runtime with the settings an operator would give them.

use warden::contract::role::Role;
use warden::runtime::calls::{ContextPlugin, PolicyPlugin};
use warden::sessions::new_session;
use warden::types::{Plan, PluginError, Session, SessionSummary, Turn};
use warden_tests::{guest_wasm, info, runtime};

fn policy(settings: &str) -> (warden::runtime::Runtime, PolicyPlugin) {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("policy_default.wasm");
    let mut info = info(Role::SessionPolicy, &wasm, None, None);
    info.settings_json = settings.into();
    let plugin = runtime.load_policy(info, &wasm).unwrap();
    (runtime, plugin)
}

fn context(settings: &str) -> (warden::runtime::Runtime, ContextPlugin) {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("context_default.wasm");
    let mut info = info(Role::ContextBuilder, &wasm, None, None);
    info.settings_json = settings.into();
    let plugin = runtime.load_context(info, &wasm).unwrap();
    (runtime, plugin)
}

fn summary(id: &str, last_accessed_ms: u64) -> SessionSummary {
    SessionSummary {
        id: id.into(),
        created_ms: 0,
        last_accessed_ms,
        turn_count: 1,
        agent_thread_id: None,
        model: None,
        cwd: None,
    }
}

fn session(turns: &[(&str, &str)], thread: Option<&str>) -> Session {
    Session {
        turns: turns
            .iter()
            .map(|(p, r)| Turn { prompt: p.to_string(), response: r.to_string(), timestamp_ms: 0 })
            .collect(),
        agent_thread_id: thread.map(String::from),
        ..new_session("s", 0)
    }
}

fn invalid(result: Result<(), warden::runtime::loaded::CallError>) -> String {
    match result.unwrap_err().plugin_error() {
        Some(PluginError::Invalid(m)) => m.clone(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn ids_are_validated_with_reasons() {
    let (_rt, policy) = policy("{}");
    policy.validate_id("auth-review").unwrap();
    policy.validate_id("../weird but printable ключ").unwrap();
    assert!(invalid(policy.validate_id("")).contains("empty"));
    assert!(invalid(policy.validate_id(&"x".repeat(300))).contains("limit is 256"));
    assert!(invalid(policy.validate_id("a\nb")).contains("control character"));
}

#[test]
fn the_cap_evicts_the_least_recently_used_and_idle_sessions_expire() {
    let (_rt, policy) = policy(r#"{"max-sessions": 3, "idle-ttl-secs": 60}"#);
    let existing = [summary("old", 10), summary("newer", 30), summary("newest", 50)];
    assert_eq!(policy.admit("fresh", &existing, 100).unwrap(), ["old"]);
    assert!(policy.admit("fresh", &existing[1..], 100).unwrap().is_empty());
    let now = 100_000;
    let expired =
        policy.expired(&[summary("idle", now - 61_000), summary("recent", now - 59_000)], now).unwrap();
    assert_eq!(expired, ["idle"]);
    let (_rt, bad) = self::policy(r#"{"max-sesions": 3}"#);
    let err = bad.validate_id("x").unwrap_err();
    assert!(err.to_string().contains("max-sesions"), "a misspelt setting is named: {err}");
}

#[test]
fn admission_from_a_count_evicts_only_above_the_cap() {
    let (_rt, policy) = policy(r#"{"max-sessions": 3}"#);
    assert!(policy.has_admission());
    let call = policy.with(&Default::default());
    assert_eq!(call.candidates("fresh", 2, 100).unwrap(), 0, "room for one more");
    assert_eq!(call.candidates("fresh", 3, 100).unwrap(), 1);
    assert_eq!(call.candidates("fresh", 10, 100).unwrap(), 8);
    assert_eq!(call.candidates("fresh", u64::MAX, 100).unwrap(), u32::MAX, "no overflow");
    let oldest = [summary("old", 10), summary("older-still", 5)];
    assert_eq!(call.admit_counted("fresh", 3, &oldest, 100).unwrap(), ["old"]);
    assert_eq!(call.admit_counted("fresh", 4, &oldest, 100).unwrap(), ["old", "older-still"]);
    let (_rt, none) = self::policy(r#"{"max-sessions": 0}"#);
    let err = none.with(&Default::default()).candidates("fresh", 0, 100).unwrap_err();
    assert!(err.to_string().contains("max-sessions is 0"), "{err}");
}

#[test]
fn a_known_thread_resumes_natively() {
    let (_rt, context) = context("{}");
    match context.build(Some(&session(&[("p", "r")], Some("t-1"))), "next", false).unwrap() {
        Plan::Resume(plan) => {
            assert_eq!((plan.thread_id.as_str(), plan.prompt.as_str()), ("t-1", "next"));
        }
        other => panic!("{other:?}"),
    }
    match context.build(None, "first", false).unwrap() {
        Plan::Fresh(plan) => assert_eq!(plan.prompt, "first"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_thread_the_last_turns_are_replayed_within_the_budget() {
    let (_rt, context) = context("{}");
    let turns = [("one", "1"), ("two", "2"), ("three", "3")];
    let Plan::Fresh(plan) = context.build(Some(&session(&turns, None)), "four", false).unwrap() else {
        panic!()
    };
    assert!(
        plan.prompt.contains("User: two\nAssistant: 2") && plan.prompt.contains("User: three\nAssistant: 3")
    );
    assert!(!plan.prompt.contains("User: one"), "only the last 2 turns by default");
    assert!(plan.prompt.ends_with("Current request:\nfour"));
    assert_eq!(plan.recorded_prompt, "four");

    let (_rt, tight) = self::context(r#"{"max-context-bytes": 200, "replay-turns": 3}"#);
    let long = "x".repeat(500);
    let turns = [("a", long.as_str()), ("b", long.as_str())];
    let Plan::Fresh(plan) = tight.build(Some(&session(&turns, None)), "c", false).unwrap() else { panic!() };
    assert!(plan.prompt.len() <= 200, "{} bytes", plan.prompt.len());
    assert!(plan.prompt.contains("…[shortened]") && plan.prompt.ends_with("c"));

    let Plan::Fresh(plan) = context.build(Some(&session(&turns, Some("t"))), "again", true).unwrap() else {
        panic!("a reset never resumes")
    };
    assert_eq!(plan.prompt, "again");
}
