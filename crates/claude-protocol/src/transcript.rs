//! Claude Code's transcripts: where a session's file is and how to read the
//! conversation back, so a session survives any server restart and one
//! started outside Warden can be continued.
//!
//! A transcript lives at `projects/<project>/<session id>.jsonl` under
//! `CLAUDE_CONFIG_DIR` (default `~/.claude`), where `<project>` is the
//! session's working directory with every character but ASCII letters and
//! digits replaced by `-` (longer names are cut at 200 characters and given
//! a hash, so they are found by looking in every project). One JSON object
//! per line; lines of type `user` and `assistant` carry `message`, `cwd`,
//! `sessionId` and `timestamp`, every other type is bookkeeping. A turn is a
//! user prompt and the last assistant text before the next prompt; tool
//! results (user lines of `tool_result` blocks), meta and side-chain lines
//! and API error messages are not turns.

use serde_json::Value;

/// The directory (relative to CLAUDE_CONFIG_DIR) that holds transcripts.
pub const ROOT: &str = "projects";
/// Longest project directory name Claude Code writes unhashed.
const MAX_PROJECT_NAME: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptTurn {
    pub prompt: String,
    pub response: String,
    pub timestamp_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    pub session_id: String,
    pub cwd: Option<String>,
    pub created_ms: u64,
    pub model: Option<String>,
    pub turns: Vec<TranscriptTurn>,
}

/// A session id must be a UUID in its hyphenated form (hex digits and
/// dashes), so it cannot name another file.
pub fn check_session_id(session_id: &str) -> Result<(), String> {
    match uuid::Uuid::try_parse(session_id) {
        Ok(_) if session_id.len() == 36 => Ok(()),
        _ => Err(format!("{session_id:?} is not a Claude Code session id (a UUID)")),
    }
}

/// The project directory Claude Code uses for `cwd`, when it is not hashed.
pub fn project_dir(cwd: &str) -> Option<String> {
    let name: String = cwd.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    (name.len() <= MAX_PROJECT_NAME).then_some(name)
}

/// The transcript's file name.
pub fn file_name(session_id: &str) -> String {
    format!("{session_id}.jsonl")
}

/// Rebuild a session from its transcript text.
pub fn parse(text: &str, session_id: &str) -> Result<Transcript, String> {
    let mut transcript = Transcript { session_id: session_id.to_string(), ..Transcript::default() };
    let mut named = false;
    let mut prompt: Option<String> = None;
    let mut answer: Option<(String, u64)> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        let kind = entry["type"].as_str().unwrap_or_default();
        if !matches!(kind, "user" | "assistant") {
            continue;
        }
        match entry["sessionId"].as_str() {
            Some(id) if id == session_id => named = true,
            Some(other) => return Err(format!("it holds lines of session {other}, not {session_id}")),
            None => {}
        }
        let timestamp_ms = entry["timestamp"].as_str().and_then(epoch_time::parse_rfc3339_ms).unwrap_or(0);
        if transcript.created_ms == 0 {
            transcript.created_ms = timestamp_ms;
        }
        if entry["isSidechain"] == true || entry["isMeta"] == true {
            continue;
        }
        let message = &entry["message"];
        if kind == "user" {
            if let Some(text) = prompt_text(&message["content"]) {
                close(&mut prompt, &mut answer, &mut transcript.turns);
                if transcript.cwd.is_none() {
                    transcript.cwd = entry["cwd"].as_str().map(String::from);
                }
                prompt = Some(text);
            }
        } else if entry["isApiErrorMessage"] != true {
            if let Some(model) = message["model"].as_str().filter(|m| !m.starts_with('<')) {
                transcript.model = Some(model.to_string());
            }
            let text = text_of(&message["content"]);
            if !text.trim().is_empty() {
                answer = Some((text, timestamp_ms));
            }
        }
    }
    close(&mut prompt, &mut answer, &mut transcript.turns);
    if !named {
        return Err(format!("no conversation line names session {session_id}"));
    }
    Ok(transcript)
}

/// End the open turn, if it has both a prompt and an answer.
fn close(prompt: &mut Option<String>, answer: &mut Option<(String, u64)>, turns: &mut Vec<TranscriptTurn>) {
    if let (Some(prompt), Some((response, timestamp_ms))) = (prompt.take(), answer.take()) {
        turns.push(TranscriptTurn { prompt, response, timestamp_ms });
    }
}

/// A user line's prompt: its text, unless it feeds tool results back.
fn prompt_text(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(blocks) if blocks.iter().any(|b| b["type"] == "tool_result") => None,
        Value::Array(_) => Some(text_of(content)).filter(|t| !t.is_empty()),
        _ => None,
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SESSION: &str = "d161b726-b0e4-404b-86a9-403c597c0bfa";

    #[test]
    fn a_recorded_transcript_gives_back_its_turns() {
        let text = include_str!("../tests/fixtures/transcript_two_turns.jsonl");
        let transcript = parse(text, SESSION).unwrap();
        assert_eq!(transcript.cwd.as_deref(), Some("/tmp/ccwd"));
        assert_eq!(transcript.model.as_deref(), Some("claude-x-1"));
        let turns: Vec<(&str, &str)> =
            transcript.turns.iter().map(|t| (t.prompt.as_str(), t.response.as_str())).collect();
        assert_eq!(turns, [("first question", "ANSWER n=2"), ("second question", "ANSWER n=5")]);
        assert!(transcript.created_ms > 1_700_000_000_000);
        assert!(transcript.turns[1].timestamp_ms > transcript.turns[0].timestamp_ms);
        let err = parse(text, "d161b726-b0e4-404b-86a9-000000000000").unwrap_err();
        assert!(err.contains("not d161b726-b0e4-404b-86a9-000000000000"), "{err}");
    }

    #[test]
    fn tool_results_side_chains_and_errors_are_not_turns() {
        let line = |kind: &str, extra: Value, content: Value| {
            let mut entry = json!({
                "type": kind, "sessionId": SESSION, "cwd": "/w", "timestamp": "2026-11-29T20:35:15.903Z",
                "message": {"role": kind, "content": content},
            });
            entry.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            entry.to_string()
        };
        let text = [
            line("user", json!({}), json!("list the files")),
            line("assistant", json!({}), json!([{"type": "tool_use", "name": "Bash", "input": {}}])),
            line("user", json!({}), json!([{"type": "tool_result", "content": "a b"}])),
            line("assistant", json!({"isSidechain": true}), json!([{"type": "text", "text": "sub-agent"}])),
            line("assistant", json!({}), json!([{"type": "text", "text": "a and b"}])),
            line("user", json!({"isMeta": true}), json!("<command>")),
            line("user", json!({}), json!([{"type": "text", "text": "and now?"}])),
            line(
                "assistant",
                json!({"isApiErrorMessage": true}),
                json!([{"type": "text", "text": "API Error"}]),
            ),
        ]
        .join("\n");
        let transcript = parse(&text, SESSION).unwrap();
        assert_eq!(
            transcript.turns,
            [TranscriptTurn {
                prompt: "list the files".into(),
                response: "a and b".into(),
                timestamp_ms: 1_795_984_515_903
            }],
            "the failed last prompt is not a turn"
        );
        assert!(parse("", SESSION).unwrap_err().contains("no conversation line"));
    }

    #[test]
    fn names() {
        assert_eq!(project_dir("/tmp/cc_probe.x").as_deref(), Some("-tmp-cc-probe-x"));
        assert_eq!(project_dir(&format!("/{}", "a".repeat(200))), None);
        assert_eq!(file_name(SESSION), format!("{SESSION}.jsonl"));
        assert!(check_session_id(SESSION).is_ok());
        for bad in
            ["../../.credentials", "d161b726b0e4404b86a9403c597c0bfa", "d161b726-b0e4-404b-86a9-403c597c0bf/"]
        {
            assert!(check_session_id(bad).is_err(), "{bad}");
        }
    }
}
