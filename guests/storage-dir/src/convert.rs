//! Between the contract's session record and the on-disk form.

use serde::Deserialize;
use store_codec::record::{self, FORMAT, StoredSession, StoredTurn};

use crate::warden::plugin::types::{PluginError, Session, SessionSummary, Turn};

pub fn from_wit(s: Session) -> Result<StoredSession, PluginError> {
    let extra = record::parse_extra(&s.extra_json).map_err(PluginError::Invalid)?;
    Ok(StoredSession {
        format: FORMAT,
        key: s.id,
        revision: s.revision,
        created_ms: s.created_ms,
        last_accessed_ms: s.last_accessed_ms,
        turns: s
            .turns
            .into_iter()
            .map(|t| StoredTurn { prompt: t.prompt, response: t.response, timestamp_ms: t.timestamp_ms })
            .collect(),
        agent_thread_id: s.agent_thread_id,
        model: s.model,
        reasoning_effort: s.reasoning_effort,
        cwd: s.cwd,
        sandbox: s.sandbox,
        extra,
    })
}

pub fn to_wit(s: StoredSession) -> Result<Session, PluginError> {
    Ok(Session {
        id: s.key,
        created_ms: s.created_ms,
        last_accessed_ms: s.last_accessed_ms,
        turns: s
            .turns
            .into_iter()
            .map(|t| Turn { prompt: t.prompt, response: t.response, timestamp_ms: t.timestamp_ms })
            .collect(),
        agent_thread_id: s.agent_thread_id,
        model: s.model,
        reasoning_effort: s.reasoning_effort,
        cwd: s.cwd,
        sandbox: s.sandbox,
        revision: s.revision,
        extra_json: serde_json::to_string(&s.extra)
            .map_err(|e| PluginError::Corrupt(format!("extra fields: {e}")))?,
    })
}

/// The summary fields of a session file, counting turns without keeping them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryView {
    key: String,
    created_ms: u64,
    last_accessed_ms: u64,
    #[serde(default, deserialize_with = "count_items")]
    turns: u32,
    agent_thread_id: Option<String>,
    model: Option<String>,
    cwd: Option<String>,
}

fn count_items<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = u32;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of turns")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<u32, A::Error> {
            let mut n = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    d.deserialize_seq(Count)
}

pub fn summary(bytes: &[u8]) -> Result<SessionSummary, String> {
    let v: SummaryView = serde_json::from_slice(bytes).map_err(|e| format!("not a session: {e}"))?;
    Ok(SessionSummary {
        id: v.key,
        created_ms: v.created_ms,
        last_accessed_ms: v.last_accessed_ms,
        turn_count: v.turns,
        agent_thread_id: v.agent_thread_id,
        model: v.model,
        cwd: v.cwd,
    })
}
