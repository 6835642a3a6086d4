//! The stored sessions the storage benches fill their stores with.

use serde_json::Map;
use store_codec::record::{FORMAT, StoredSession, StoredTurn};

/// Session `i` of a store: used one millisecond after session `i - 1`, with its own thread.
pub fn session(i: usize, turns: impl Iterator<Item = StoredTurn>) -> StoredSession {
    StoredSession {
        format: FORMAT,
        key: format!("session-{i}"),
        revision: 1,
        created_ms: 1_700_000_000_000,
        last_accessed_ms: 1_700_000_000_000 + i as u64,
        turns: turns.collect(),
        agent_thread_id: Some(format!("019a0000-0000-7000-8000-{i:012}")),
        model: None,
        reasoning_effort: None,
        cwd: Some("/home/user/project".into()),
        sandbox: None,
        extra: Map::new(),
    }
}

/// Session `i` with two short turns.
pub fn stored(i: usize) -> StoredSession {
    let text = "x".repeat(200);
    session(i, (0..2).map(|t| StoredTurn { prompt: text.clone(), response: text.clone(), timestamp_ms: t }))
}
