//! Codex's rollout files: finding a thread's transcript by id and turning it
//! back into turns, so a thread survives any server restart.
//!
//! A rollout lives at `sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl`
//! (or `.jsonl.zst`; a plain file wins over its compressed sibling). Its first
//! line is `session_meta`, whose `id` must be the thread id. A turn is closed
//! by an `event_msg` of type `task_complete`; an aborted turn is not a turn.

use serde_json::Value;

/// Directories (relative to CODEX_HOME) that hold rollouts.
pub const ROOTS: [&str; 2] = ["sessions", "archived_sessions"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutTurn {
    pub prompt: String,
    pub response: String,
    pub timestamp_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    pub thread_id: String,
    pub cwd: Option<String>,
    pub created_ms: u64,
    pub model: Option<String>,
    pub turns: Vec<RolloutTurn>,
}

/// Whether `name` is a rollout of `thread_id`: `Some(true)` for `.jsonl.zst`.
pub fn rollout_file(name: &str, thread_id: &str) -> Option<bool> {
    let rest = name.strip_prefix("rollout-")?;
    if let Some(stem) = rest.strip_suffix(".jsonl") {
        return stem.ends_with(&format!("-{thread_id}")).then_some(false);
    }
    let stem = rest.strip_suffix(".jsonl.zst")?;
    stem.ends_with(&format!("-{thread_id}")).then_some(true)
}

/// A thread id must look like a UUID (hex digits and dashes).
pub fn check_thread_id(thread_id: &str) -> Result<(), String> {
    let valid = thread_id.len() == 36 && thread_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if valid { Ok(()) } else { Err(format!("{thread_id:?} is not a Codex thread id (a UUID)")) }
}

/// The `YYYY/MM/DD` directory a UUIDv7 thread id was created in (UTC), to
/// look there before walking every date.
pub fn date_dir(thread_id: &str) -> Option<String> {
    let hex: String = thread_id.chars().filter(|c| *c != '-').take(12).collect();
    let (y, m, d) = epoch_time::date_of_ms(u64::from_str_radix(&hex, 16).ok()?);
    Some(format!("{y:04}/{m:02}/{d:02}"))
}

/// Rebuild a thread from its rollout text.
pub fn parse(text: &str, thread_id: &str) -> Result<Rollout, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first: Value = serde_json::from_str(lines.next().ok_or("the rollout is empty")?)
        .map_err(|e| format!("the first line is not JSON: {e}"))?;
    if first["type"] != "session_meta" {
        return Err("the first line is not session_meta".into());
    }
    let meta = &first["payload"];
    if meta["id"].as_str() != Some(thread_id) {
        return Err(format!("its session_meta names thread {}, not {thread_id}", meta["id"]));
    }
    let mut rollout = Rollout {
        thread_id: thread_id.to_string(),
        cwd: meta["cwd"].as_str().map(String::from),
        created_ms: meta["timestamp"].as_str().and_then(epoch_time::parse_rfc3339_ms).unwrap_or(0),
        model: None,
        turns: Vec::new(),
    };
    let mut prompt: Option<String> = None;
    let mut last_answer: Option<String> = None;
    for line in lines {
        let Ok(event) = serde_json::from_str::<Value>(line) else { continue };
        let payload = &event["payload"];
        match (event["type"].as_str(), payload["type"].as_str()) {
            (Some("turn_context"), _) => {
                if let Some(model) = payload["model"].as_str() {
                    rollout.model = Some(model.to_string());
                }
            }
            (Some("response_item"), Some("message")) => {
                let text = message_text(payload);
                match payload["role"].as_str() {
                    Some("user") if !text.trim_start().starts_with('<') => prompt = Some(text),
                    Some("assistant") if !text.is_empty() => last_answer = Some(text),
                    _ => {}
                }
            }
            (Some("event_msg"), Some("task_started")) => last_answer = None,
            (Some("event_msg"), Some("task_complete")) => {
                let response =
                    payload["last_agent_message"].as_str().map(String::from).or(last_answer.take());
                if let (Some(prompt), Some(response)) = (prompt.take(), response) {
                    let timestamp_ms =
                        event["timestamp"].as_str().and_then(epoch_time::parse_rfc3339_ms).unwrap_or(0);
                    rollout.turns.push(RolloutTurn { prompt, response, timestamp_ms });
                }
            }
            _ => {}
        }
    }
    Ok(rollout)
}

fn message_text(payload: &Value) -> String {
    let parts = payload["content"].as_array().map(Vec::as_slice).unwrap_or_default();
    parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREAD: &str = "01a210ac-9e49-74e3-a8fd-3ccd8512cef9";

    #[test]
    fn a_recorded_rollout_gives_back_its_turn() {
        let text = include_str!("../tests/fixtures/rollout_new_thread.jsonl");
        let rollout = parse(text, THREAD).unwrap();
        assert_eq!(rollout.cwd.as_deref(), Some("/var/tmp/warden-e2e/work"));
        assert_eq!(rollout.model.as_deref(), Some("mock-model"));
        assert_eq!(rollout.turns.len(), 1);
        assert_eq!(rollout.turns[0].prompt, "hello");
        assert_eq!(rollout.turns[0].response, "echo: hello");
        assert!(rollout.created_ms > 1_700_000_000_000);
        let err = parse(text, "01a210ac-9e49-74e3-a8fd-000000000000").unwrap_err();
        assert!(err.contains("names thread"), "{err}");
    }

    #[test]
    fn file_names_and_dates() {
        let name = format!("rollout-2026-11-25T03-07-57-{THREAD}.jsonl");
        assert_eq!(rollout_file(&name, THREAD), Some(false));
        assert_eq!(rollout_file(&format!("{name}.zst"), THREAD), Some(true));
        assert_eq!(rollout_file(&name, "01a210ac-9e49-74e3-a8fd-3ccd8512cef8"), None);
        assert_eq!(date_dir(THREAD).as_deref(), Some("2026/11/25"));
        assert!(check_thread_id(THREAD).is_ok());
        assert!(check_thread_id("../../etc").is_err());
    }
}
