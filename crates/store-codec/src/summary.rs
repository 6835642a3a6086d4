//! The fields a session listing (or a save) needs, read from a session file without
//! building its transcript: from a short prefix of a file written summary
//! first (the transcript is the last field, its count just before it), or
//! else from the whole file, counting the turns without keeping them.

use serde::Deserialize;

use crate::record::StoredSession;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub key: String,
    pub revision: u64,
    pub created_ms: u64,
    pub last_accessed_ms: u64,
    #[serde(default, deserialize_with = "count_items")]
    pub turns: u32,
    pub agent_thread_id: Option<String>,
    pub model: Option<String>,
    pub cwd: Option<String>,
}

/// How many bytes of a session file a listing reads first.
pub const PREFIX_BYTES: u32 = 16 << 10;

/// Where a summary-first file's transcript begins: a top-level key is the
/// only thing at a two-space indent after a raw newline (strings escape
/// their newlines, and nested keys are indented deeper).
const TRANSCRIPT: &[u8] = b",\n  \"turns\": ";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(flatten)]
    view: SummaryView,
    turn_count: u32,
}

impl SummaryView {
    /// Decode the summary of one session file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a session: {e}"))
    }

    /// Decode the summary from the first bytes of a file, if they hold it.
    /// `None` means they do not (an older layout, or summary fields longer
    /// than the prefix): read the whole file instead.
    pub fn from_prefix(prefix: &[u8]) -> Option<Result<Self, String>> {
        let end = prefix.windows(TRANSCRIPT.len()).position(|w| w == TRANSCRIPT)?;
        let mut header = prefix[..end].to_vec();
        header.extend_from_slice(b"\n}");
        let decoded: Result<Header, _> = serde_json::from_slice(&header);
        Some(match decoded {
            Ok(Header { view, turn_count }) => Ok(Self { turns: turn_count, ..view }),
            Err(e) if e.to_string().contains("turnCount") => return None,
            Err(e) => Err(format!("not a session: {e}")),
        })
    }

    pub fn of(s: &StoredSession) -> Self {
        Self {
            key: s.key.clone(),
            revision: s.revision,
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

    fn long_session(turns: usize) -> StoredSession {
        let mut extra = serde_json::Map::new();
        extra.insert(
            "nested".into(),
            serde_json::json!({"turns": [1, 2], "deeper": {"turns": "x\n  \"turns\": "}}),
        );
        StoredSession {
            format: 1,
            key: "k\n  \"turns\": [".into(),
            revision: 4,
            created_ms: 1,
            last_accessed_ms: 9,
            turns: vec![
                StoredTurn { prompt: "p".repeat(1000), response: "r".into(), timestamp_ms: 2 };
                turns
            ],
            agent_thread_id: Some("t".into()),
            cwd: Some("/w".into()),
            extra,
            ..Default::default()
        }
    }

    #[test]
    fn a_prefix_of_a_summary_first_file_gives_the_full_summary() {
        let session = long_session(100);
        let bytes = session.to_bytes();
        assert!(bytes.len() > PREFIX_BYTES as usize);
        let prefix = &bytes[..PREFIX_BYTES as usize];
        assert_eq!(SummaryView::from_prefix(prefix).unwrap().unwrap(), SummaryView::of(&session));
        let whole = SummaryView::from_prefix(&bytes).unwrap().unwrap();
        assert_eq!(whole, SummaryView::of(&session), "the whole file works as its own prefix");
    }

    #[test]
    fn a_prefix_without_the_summary_asks_for_the_whole_file() {
        let session = long_session(100);
        let older_layout = serde_json::to_vec_pretty(&session).unwrap();
        assert_eq!(SummaryView::from_prefix(&older_layout[..PREFIX_BYTES as usize]), None);
        assert_eq!(SummaryView::from_bytes(&older_layout).unwrap(), SummaryView::of(&session));
        let bytes = session.to_bytes();
        assert_eq!(SummaryView::from_prefix(&bytes[..40]), None, "cut before the transcript");
    }
}
