//! Reading a monolithic `sessions.json`: an object mapping session key to
//! entry, as written by Warden's legacy store or by the seed layout (entries
//! with `updatedAt` in epoch milliseconds). Duplicate keys in the text are
//! kept (in order) so the newest can win; nothing here drops an entry
//! silently — every loser is counted and stays in the caller's backup.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::record::{FORMAT, RECORD_FIELDS, StoredSession, StoredTurn, TURN_COUNT};

/// The entries of a legacy file in text order, duplicates included.
pub fn parse_entries(bytes: &[u8]) -> Result<Vec<(String, Value)>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object mapping session keys to entries")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                out.push((key, value));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let entries = de.deserialize_map(Entries).map_err(|e| format!("not a session store: {e}"))?;
    de.end().map_err(|e| format!("trailing data after the session store: {e}"))?;
    Ok(entries)
}

/// Turn one legacy entry into a session. Our own format is taken as is; a
/// seed-layout entry maps `updatedAt` to the last access, `createdAt` to the
/// creation time, `codexConversationId` / `threadId` to the agent thread, and
/// keeps every other field.
pub fn to_session(key: &str, entry: Value) -> Result<StoredSession, String> {
    let Value::Object(mut fields) = entry else {
        return Err(format!("entry {key:?} is {}, not an object", kind(&entry)));
    };
    if fields.get("format").and_then(Value::as_u64) == Some(FORMAT as u64) {
        let mut session: StoredSession = serde_json::from_value(Value::Object(fields))
            .map_err(|e| format!("entry {key:?} is not a session: {e}"))?;
        session.key = key.to_string();
        session.extra.remove(TURN_COUNT);
        return Ok(session);
    }
    let mut take_ms = |names: &[&str]| names.iter().find_map(|n| fields.remove(*n).as_ref().and_then(millis));
    let updated = take_ms(&["updatedAt", "lastAccessedAt", "lastAccessedMs"]);
    let created = take_ms(&["createdAt", "createdMs"]);
    let last_accessed_ms = updated.or(created).unwrap_or(0);
    let take_string = |fields: &mut Map<String, Value>, names: &[&str]| {
        names.iter().find_map(|n| match fields.get(*n) {
            Some(Value::String(_)) => fields.remove(*n).and_then(|v| v.as_str().map(String::from)),
            _ => None,
        })
    };
    let agent_thread_id = take_string(&mut fields, &["codexConversationId", "agentThreadId", "threadId"]);
    let model = take_string(&mut fields, &["model"]);
    let reasoning_effort = take_string(&mut fields, &["reasoningEffort"]);
    let cwd = take_string(&mut fields, &["cwd", "workingDirectory"]);
    let sandbox = take_string(&mut fields, &["sandbox"]);
    let turns = match fields.get("turns") {
        Some(Value::Array(items)) => {
            let parsed: Option<Vec<StoredTurn>> = items.iter().map(turn).collect();
            match parsed {
                Some(turns) => {
                    fields.remove("turns");
                    turns
                }
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    // A record field left over had a shape we could not use; keep it under
    // another name rather than write the field twice.
    for field in RECORD_FIELDS {
        if let Some(value) = fields.remove(*field) {
            fields.insert(format!("legacy_{field}"), value);
        }
    }
    Ok(StoredSession {
        format: FORMAT,
        key: key.to_string(),
        revision: 0,
        created_ms: created.unwrap_or(last_accessed_ms),
        last_accessed_ms,
        turns,
        agent_thread_id,
        model,
        reasoning_effort,
        cwd,
        sandbox,
        extra: fields,
    })
}

/// Keep the most recently used entry per key — per exact key, or per
/// lower-cased key when `merge_case_variants`. Returns the winners in first-
/// seen order and how many entries lost.
pub fn newest_per_key(sessions: Vec<StoredSession>, merge_case_variants: bool) -> (Vec<StoredSession>, u32) {
    let mut order: Vec<String> = Vec::new();
    let mut winners: HashMap<String, StoredSession> = HashMap::new();
    let mut superseded = 0;
    for session in sessions {
        let slot = if merge_case_variants { session.key.to_lowercase() } else { session.key.clone() };
        match winners.get(&slot) {
            Some(current) => {
                superseded += 1;
                if session.last_accessed_ms >= current.last_accessed_ms {
                    winners.insert(slot, session);
                }
            }
            None => {
                order.push(slot.clone());
                winners.insert(slot, session);
            }
        }
    }
    let kept = order.into_iter().filter_map(|slot| winners.remove(&slot)).collect();
    (kept, superseded)
}

fn turn(v: &Value) -> Option<StoredTurn> {
    Some(StoredTurn {
        prompt: v.get("prompt")?.as_str()?.to_string(),
        response: v.get("response")?.as_str()?.to_string(),
        timestamp_ms: v.get("timestamp").or_else(|| v.get("timestampMs")).and_then(millis).unwrap_or(0),
    })
}

/// Epoch milliseconds from a number or an RFC 3339 UTC string ("2026-01-02T03:04:05.678Z").
fn millis(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => epoch_time::parse_rfc3339_ms(s),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_all_seen_in_order() {
        let entries = parse_entries(br#"{"a":{"updatedAt":1},"b":null,"a":{"updatedAt":5}}"#).unwrap();
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
    }

    #[test]
    fn bad_files_say_why() {
        assert!(parse_entries(b"").unwrap_err().contains("empty"));
        assert!(parse_entries(b"  \n").unwrap_err().contains("empty"));
        assert!(parse_entries(b"[1,2]").unwrap_err().contains("not a session store"));
        assert!(parse_entries(b"{\"a\":").unwrap_err().contains("not a session store"));
        assert!(parse_entries(b"{} {}").unwrap_err().contains("trailing"));
    }

    #[test]
    fn seed_entries_map_known_fields_and_keep_the_rest() {
        let entry = serde_json::json!({
            "updatedAt": 1700000000123u64, "createdAt": "2023-11-14T22:13:20.000Z",
            "codexConversationId": "019a-thread", "model": "gpt-5", "chatType": "direct",
            "turns": [{"prompt": "p", "response": "r", "timestamp": "2023-11-14T22:13:21.5Z"}]
        });
        let s = to_session("telegram:1:2", entry).unwrap();
        assert_eq!(s.last_accessed_ms, 1_700_000_000_123);
        assert_eq!(s.created_ms, 1_700_000_000_000);
        assert_eq!(s.agent_thread_id.as_deref(), Some("019a-thread"));
        assert_eq!(s.model.as_deref(), Some("gpt-5"));
        assert_eq!(s.turns[0].timestamp_ms, 1_700_000_001_500);
        assert_eq!(s.extra["chatType"], "direct");
        assert!(to_session("k", Value::Null).unwrap_err().contains("null"));
    }

    #[test]
    fn record_fields_of_an_unusable_shape_are_kept_under_another_name() {
        let entry = serde_json::json!({"updatedAt": 5, "turns": "not a list", "model": 5, "turnCount": 2});
        let s = to_session("k", entry).unwrap();
        assert!(s.turns.is_empty() && s.model.is_none());
        assert_eq!(s.extra["legacy_turns"], "not a list");
        assert_eq!(s.extra["legacy_model"], 5);
        assert_eq!(s.extra["legacy_turnCount"], 2);
        assert_eq!(StoredSession::from_bytes(&s.to_bytes()).unwrap(), s, "written once, read back whole");
    }

    #[test]
    fn newest_wins_and_losers_are_counted() {
        let at = |key: &str, ms: u64| StoredSession {
            key: key.into(),
            last_accessed_ms: ms,
            ..Default::default()
        };
        let (kept, lost) = newest_per_key(vec![at("Foo", 5), at("foo", 9), at("bar", 1), at("FOO", 2)], true);
        assert_eq!(lost, 2);
        assert_eq!(
            kept.iter().map(|s| (s.key.as_str(), s.last_accessed_ms)).collect::<Vec<_>>(),
            [("foo", 9), ("bar", 1)]
        );
        let (kept, lost) = newest_per_key(vec![at("Foo", 5), at("foo", 9)], false);
        assert_eq!((kept.len(), lost), (2, 0), "keys are case-sensitive unless merging is asked for");
    }
}
