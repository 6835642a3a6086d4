//! The on-disk JSON form of one session. Field names are camelCase; fields
//! this version does not know are kept in `extra` and written back unchanged.

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

impl StoredSession {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a session always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Decode a file's bytes; the error says what is wrong with them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        let session: Self = serde_json::from_slice(bytes).map_err(|e| format!("not a session: {e}"))?;
        if session.format != FORMAT {
            return Err(format!("unknown format {} (this version reads {FORMAT})", session.format));
        }
        Ok(session)
    }
}

/// Parse an `extra-json` string from the contract into an object.
pub fn parse_extra(extra_json: &str) -> Result<Map<String, Value>, String> {
    if extra_json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(extra_json) {
        Ok(Value::Object(map)) => Ok(map),
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
    fn bad_bytes_say_why() {
        assert!(StoredSession::from_bytes(b"").unwrap_err().contains("empty"));
        assert!(StoredSession::from_bytes(b"{\"format\":1").unwrap_err().contains("not a session"));
        assert!(StoredSession::from_bytes(b"[1]").unwrap_err().contains("not a session"));
        let future = br#"{"format":9,"key":"k","revision":1,"createdMs":1,"lastAccessedMs":1}"#;
        assert!(StoredSession::from_bytes(future).unwrap_err().contains("unknown format"));
    }
}
