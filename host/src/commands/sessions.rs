//! `warden sessions list|show|rm`: see and repair a store without a server.

use epoch_time::format_rfc3339_ms as iso8601;
use serde_json::{Value, json};

use crate::mcp::SessionItem;
use crate::runtime::calls::StoragePlugin;
use crate::types::Session;

pub fn list(storage: &StoragePlugin, as_json: bool) -> anyhow::Result<()> {
    let mut sessions = storage.list()?;
    sessions.sort_by(|a, b| b.last_accessed_ms.cmp(&a.last_accessed_ms).then_with(|| a.id.cmp(&b.id)));
    if as_json {
        let items: Vec<SessionItem> = sessions.iter().map(SessionItem::from).collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if sessions.is_empty() {
        println!("no sessions");
    }
    for s in &sessions {
        println!(
            "{}\t{} turns\tlast used {}\tthread {}\tmodel {}\tcwd {}",
            s.id,
            s.turn_count,
            iso8601(s.last_accessed_ms),
            s.agent_thread_id.as_deref().unwrap_or("-"),
            s.model.as_deref().unwrap_or("-"),
            s.cwd.as_deref().unwrap_or("-"),
        );
    }
    Ok(())
}

pub fn show(storage: &StoragePlugin, key: &str) -> anyhow::Result<()> {
    let session = storage.load(key)?;
    println!("{}", serde_json::to_string_pretty(&session_json(&session))?);
    Ok(())
}

pub fn remove(storage: &StoragePlugin, key: &str) -> anyhow::Result<()> {
    if !storage.delete(key)? {
        anyhow::bail!("no session {key:?} in the store; `warden sessions list` shows the keys");
    }
    println!("removed {key:?}");
    Ok(())
}

pub fn session_json(s: &Session) -> Value {
    let extra: Value = serde_json::from_str(&s.extra_json).unwrap_or(Value::Null);
    json!({
        "id": s.id,
        "createdAt": iso8601(s.created_ms),
        "lastAccessedAt": iso8601(s.last_accessed_ms),
        "threadId": s.agent_thread_id,
        "model": s.model,
        "reasoningEffort": s.reasoning_effort,
        "cwd": s.cwd,
        "sandbox": s.sandbox,
        "revision": s.revision,
        "turns": s.turns.iter().map(|t| json!({
            "prompt": t.prompt, "response": t.response, "at": iso8601(t.timestamp_ms)
        })).collect::<Vec<_>>(),
        "extra": extra,
    })
}
