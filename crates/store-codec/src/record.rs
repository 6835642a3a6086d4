//! The on-disk JSON form of one session. Field names are camelCase; fields
//! this version does not know are kept in `extra` and written back unchanged.
//!
//! A file is written summary first: every field but the transcript, then
//! `turnCount`, then `turns` as the last top-level field, so a listing can
//! read a short prefix instead of the whole file (see [`crate::summary`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of this layout, written into every file.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredTurn {
    pub prompt: String,
    pub response: String,
    pub timestamp_ms: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredSession {
    pub format: u32,
    pub key: String,
    pub revision: u64,
    pub created_ms: u64,
    pub last_accessed_ms: u64,
    #[serde(default)]
    pub turns: Vec<StoredTurn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_thread_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Names a file gives its own fields; `extra` may not use them.
pub const RECORD_FIELDS: &[&str] = &[
    "format",
    "key",
    "revision",
    "createdMs",
    "lastAccessedMs",
    "agentThreadId",
    "model",
    "reasoningEffort",
    "cwd",
    "sandbox",
    TURN_COUNT,
    "turns",
];

/// The derived count written just before the transcript.
pub const TURN_COUNT: &str = "turnCount";

/// The on-disk field order: summary fields, unknown fields, the count, the transcript.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryFirst<'a> {
    format: u32,
    key: &'a str,
    revision: u64,
    created_ms: u64,
    last_accessed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_thread_id: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: &'a Option<String>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
    turn_count: usize,
    turns: &'a [StoredTurn],
}

impl StoredSession {
    pub fn to_bytes(&self) -> Vec<u8> {
        let on_disk = SummaryFirst {
            format: self.format,
            key: &self.key,
            revision: self.revision,
            created_ms: self.created_ms,
            last_accessed_ms: self.last_accessed_ms,
            agent_thread_id: &self.agent_thread_id,
            model: &self.model,
            reasoning_effort: &self.reasoning_effort,
            cwd: &self.cwd,
            sandbox: &self.sandbox,
            extra: &self.extra,
            turn_count: self.turns.len(),
            turns: &self.turns,
        };
        let mut bytes = serde_json::to_vec_pretty(&on_disk).expect("a session always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Decode a file's bytes; the error says what is wrong with them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        let mut session: Self = serde_json::from_slice(bytes).map_err(|e| format!("not a session: {e}"))?;
        if session.format != FORMAT {
            return Err(format!("unknown format {} (this version reads {FORMAT})", session.format));
        }
        // Derived from `turns`; written afresh on every save.
        session.extra.remove(TURN_COUNT);
        Ok(session)
    }
}

/// Parse an `extra-json` string from the contract into an object.
pub fn parse_extra(extra_json: &str) -> Result<Map<String, Value>, String> {
    if extra_json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(extra_json) {
        Ok(Value::Object(map)) => match map.keys().find(|k| RECORD_FIELDS.contains(&k.as_str())) {
            Some(field) => Err(format!(
                "extra-json may not contain {field:?}, a field of the session record; set the record's own field"
            )),
            None => Ok(map),
        },
        Ok(_) => Err("extra-json must be a JSON object".into()),
        Err(e) => Err(format!("extra-json is not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = br#"{"format":1,"key":"k","revision":3,"createdMs":1,"lastAccessedMs":2,
            "turns":[],"color":"blue","nested":{"a":[1,2]}}"#;
        let session = StoredSession::from_bytes(text).unwrap();
        assert_eq!(session.extra["color"], "blue");
        let again = StoredSession::from_bytes(&session.to_bytes()).unwrap();
        assert_eq!(again, session);
    }

    #[test]
    fn the_transcript_is_written_last_after_its_count() {
        let mut session = StoredSession::from_bytes(
            br#"{"format":1,"key":"k","revision":1,"createdMs":1,
            "lastAccessedMs":2,"turns":[],"turnCount":7,"color":"blue"}"#,
        )
        .unwrap();
        assert!(!session.extra.contains_key(TURN_COUNT), "a stale count is not kept");
        session.turns = vec![StoredTurn { prompt: "p".into(), response: "r".into(), timestamp_ms: 3 }; 2];
        let text = String::from_utf8(session.to_bytes()).unwrap();
        let color = text.find("\"color\"").unwrap();
        let count = text.find("\n  \"turnCount\": 2,\n  \"turns\": [").expect(&text);
        assert!(color < count, "{text}");
        assert_eq!(StoredSession::from_bytes(text.as_bytes()).unwrap(), session);
    }

    #[test]
    fn extra_fields_cannot_shadow_record_fields() {
        assert_eq!(parse_extra(r#"{"color":"blue"}"#).unwrap()["color"], "blue");
        for field in ["model", "turns", "turnCount", "key"] {
            let err = parse_extra(&format!(r#"{{"{field}":1}}"#)).unwrap_err();
            assert!(err.contains(field) && err.contains("record"), "{err}");
        }
    }

    #[test]
    fn bad_bytes_say_why() {
        assert!(StoredSession::from_bytes(b"").unwrap_err().contains("empty"));
        assert!(StoredSession::from_bytes(b"{\"format\":1").unwrap_err().contains("not a session"));
        assert!(StoredSession::from_bytes(b"[1]").unwrap_err().contains("not a session"));
        let future = br#"{"format":9,"key":"k","revision":1,"createdMs":1,"lastAccessedMs":1}"#;
        assert!(StoredSession::from_bytes(future).unwrap_err().contains("unknown format"));
    }
}
