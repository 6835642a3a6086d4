//! Gemini CLI's transcripts: where a session's file is and how to read the
//! conversation back, so a session survives any server restart and one
//! started outside Warden can be continued.
//!
//! Sessions are kept per working directory, under `tmp/<project>/` of the
//! Gemini CLI home (`$GEMINI_CLI_HOME/.gemini`, default `~/.gemini`): the
//! directory's `.project_root` holds the working directory, and
//! `chats/session-<start time>-<first 8 characters of the id>.jsonl` each
//! session. A transcript is JSON lines: a header (`sessionId`, `startTime`),
//! message records (`type` `user` with `content` parts, `gemini` with its
//! `content` text and `model`), and `$set` records, whose `messages`
//! replaces the list so far. A turn is a user prompt and the last Gemini
//! text before the next prompt; the `<session_context>` part Gemini CLI
//! adds to the first prompt is not the user's.

use serde_json::Value;

/// The directory (relative to the Gemini CLI home) that holds transcripts.
pub const ROOT: &str = "tmp";
/// Where, in a project directory, the transcripts are.
pub const CHATS: &str = "chats";
/// The file of a project directory holding its working directory.
pub const PROJECT_ROOT: &str = ".project_root";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptTurn {
    pub prompt: String,
    pub response: String,
    pub timestamp_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    pub created_ms: u64,
    pub model: Option<String>,
    pub turns: Vec<TranscriptTurn>,
}

/// A session id must be a UUID in its hyphenated form (hex digits and
/// dashes), so it cannot name another file.
pub fn check_session_id(session_id: &str) -> Result<(), String> {
    match uuid::Uuid::try_parse(session_id) {
        Ok(_) if session_id.len() == 36 => Ok(()),
        _ => Err(format!("{session_id:?} is not a Gemini CLI session id (a UUID)")),
    }
}

/// Whether `file_name` may be the transcript of `session_id` (its header decides).
pub fn may_hold(file_name: &str, session_id: &str) -> bool {
    file_name.starts_with("session-") && file_name.ends_with(&format!("-{}.jsonl", &session_id[..8]))
}

/// A transcript's header (its first line), checked to name `session_id`.
pub fn header(first_line: &str, session_id: &str) -> Result<Value, String> {
    let header: Value = serde_json::from_str(first_line).map_err(|e| format!("its header: {e}"))?;
    if header["sessionId"] != session_id {
        return Err(format!("its header names session {}", header["sessionId"]));
    }
    Ok(header)
}

/// Rebuild a session from its transcript text; `Err` if the header names another session.
pub fn parse(text: &str, session_id: &str) -> Result<Transcript, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = header(lines.next().ok_or("it is empty")?, session_id)?;
    let created_ms = header["startTime"].as_str().and_then(epoch_time::parse_rfc3339_ms).unwrap_or(0);
    let mut messages: Vec<Value> = Vec::new();
    for line in lines {
        let Ok(record) = serde_json::from_str::<Value>(line) else { continue };
        if let Some(set) = record.get("$set") {
            if let Some(list) = set["messages"].as_array() {
                messages = list.clone();
            }
        } else if record.get("type").is_some() {
            messages.push(record);
        }
    }
    let mut transcript = Transcript { created_ms, ..Transcript::default() };
    for message in &messages {
        let timestamp_ms = message["timestamp"].as_str().and_then(epoch_time::parse_rfc3339_ms).unwrap_or(0);
        match message["type"].as_str() {
            Some("user") => {
                let prompt = user_text(&message["content"]);
                if !prompt.is_empty() {
                    transcript.turns.push(TranscriptTurn { prompt, response: String::new(), timestamp_ms });
                }
            }
            Some("gemini") => {
                let text = message["content"].as_str().unwrap_or_default();
                if let Some(model) = message["model"].as_str() {
                    transcript.model = Some(model.to_string());
                }
                if let Some(turn) = transcript.turns.last_mut().filter(|_| !text.trim().is_empty()) {
                    turn.response = text.to_string();
                    turn.timestamp_ms = timestamp_ms.max(turn.timestamp_ms);
                }
            }
            _ => {}
        }
    }
    Ok(transcript)
}

/// The user's own text of a prompt: its text parts but the session context.
fn user_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .filter(|t| !t.trim_start().starts_with("<session_context>"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "94421dc3-8887-42dc-b7db-320a3955b1e4";

    #[test]
    fn turns_come_back_from_a_real_transcript() {
        let text = format!(
            r#"{{"sessionId":"{ID}","projectHash":"4e4f","startTime":"2026-11-30T01:55:44.099Z","kind":"main"}}
{{"$set":{{"messages":[{{"id":"a","timestamp":"2026-11-30T01:55:44.100Z","type":"user","content":[{{"text":"<session_context>\nThis is the Gemini CLI.\n</session_context>"}}]}}]}}}}
{{"id":"b","timestamp":"2026-11-30T01:55:44.132Z","type":"user","content":[{{"text":"hello"}}]}}
{{"$set":{{"lastUpdated":"2026-11-30T01:55:44.133Z"}}}}
{{"id":"c","timestamp":"2026-11-30T01:55:44.209Z","type":"gemini","content":"echo: hello","thoughts":[],"model":"gemini-2.5-flash"}}
{{"id":"d","timestamp":"2026-11-30T01:56:00.000Z","type":"user","content":[{{"text":"again"}}]}}
{{"id":"e","timestamp":"2026-11-30T01:56:01.000Z","type":"gemini","content":"","toolCalls":[{{}}]}}
{{"id":"f","timestamp":"2026-11-30T01:56:02.000Z","type":"gemini","content":"echo: again"}}
"#
        );
        let found = parse(&text, ID).unwrap();
        assert_eq!(found.model.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(found.created_ms, epoch_time::parse_rfc3339_ms("2026-11-30T01:55:44.099Z").unwrap());
        let turns: Vec<(&str, &str)> =
            found.turns.iter().map(|t| (t.prompt.as_str(), t.response.as_str())).collect();
        assert_eq!(turns, [("hello", "echo: hello"), ("again", "echo: again")]);
        assert!(parse(&text, "11111111-2222-4333-8444-555555555555").unwrap_err().contains("names session"));
        assert!(parse("", ID).is_err());
    }

    /// A resume (as Gemini CLI 0.61.0 writes it) appends a second header and
    /// sets the messages twice: the new context alone, then the whole history.
    #[test]
    fn a_resumed_transcript_keeps_every_turn() {
        let context = r#"{"id":"a","timestamp":"2026-11-30T05:26:31.635Z","type":"user","content":[{"text":"<session_context>
ctx
</session_context>"}]}"#;
        let hello =
            r#"{"id":"b","timestamp":"2026-11-30T05:26:31.712Z","type":"user","content":[{"text":"hello"}]}"#;
        let echo =
            r#"{"id":"c","timestamp":"2026-11-30T05:26:31.735Z","type":"gemini","content":"echo: hello"}"#;
        let header =
            format!(r#"{{"sessionId":"{ID}","startTime":"2026-11-30T05:26:31.635Z","kind":"main"}}"#);
        let text = [
            header.clone(),
            format!(r#"{{"$set":{{"messages":[{context}]}}}}"#),
            hello.to_string(),
            echo.to_string(),
            header.replace("05:26:31", "05:26:33"),
            format!(r#"{{"$set":{{"messages":[{context}]}}}}"#),
            format!(r#"{{"$set":{{"sessionId":"{ID}"}}}}"#),
            format!(r#"{{"$set":{{"messages":[{context},{hello},{echo}]}}}}"#),
            r#"{"id":"d","timestamp":"2026-11-30T05:26:33.738Z","type":"user","content":[{"text":"again"}]}"#
                .into(),
            r#"{"id":"e","timestamp":"2026-11-30T05:26:33.753Z","type":"gemini","content":"echo: again"}"#
                .into(),
        ]
        .join("\n");
        let turns: Vec<(String, String)> =
            parse(&text, ID).unwrap().turns.into_iter().map(|t| (t.prompt, t.response)).collect();
        assert_eq!(turns, [("hello".into(), "echo: hello".into()), ("again".into(), "echo: again".into())]);
    }

    #[test]
    fn file_names_and_ids() {
        assert!(may_hold(&format!("session-2026-11-30T01-55-{}.jsonl", &ID[..8]), ID));
        assert!(!may_hold("session-2026-11-30T01-55-11111111.jsonl", ID));
        check_session_id(ID).unwrap();
        assert!(check_session_id("../../etc/passwd-0000-0000-0000000000").is_err());
    }
}
