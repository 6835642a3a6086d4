//! The fields a session listing needs, read from a session file without
//! building its transcript (turns are counted, not kept).

use serde::Deserialize;

use crate::record::StoredSession;

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub key: String,
    pub created_ms: u64,
    pub last_accessed_ms: u64,
    #[serde(default, deserialize_with = "count_items")]
    pub turns: u32,
    pub agent_thread_id: Option<String>,
    pub model: Option<String>,
    pub cwd: Option<String>,
}

impl SummaryView {
    /// Decode the summary of one session file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a session: {e}"))
    }

    pub fn of(s: &StoredSession) -> Self {
        Self {
            key: s.key.clone(),
            created_ms: s.created_ms,
            last_accessed_ms: s.last_accessed_ms,
            turns: s.turns.len() as u32,
            agent_thread_id: s.agent_thread_id.clone(),
            model: s.model.clone(),
            cwd: s.cwd.clone(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::StoredTurn;

    #[test]
    fn summary_matches_the_full_session() {
        let session = StoredSession {
            format: 1,
            key: "k".into(),
            revision: 2,
            created_ms: 1,
            last_accessed_ms: 3,
            turns: vec![StoredTurn::default(), StoredTurn::default()],
            model: Some("m".into()),
            ..Default::default()
        };
        assert_eq!(SummaryView::from_bytes(&session.to_bytes()).unwrap(), SummaryView::of(&session));
    }
}
