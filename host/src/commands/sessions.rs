//! `warden sessions list|show|rm`: see and repair a store without a server.

use serde_json::{Value, json};

use crate::runtime::roles::StoragePlugin;
use crate::types::{Session, SessionSummary};

pub fn list(storage: &StoragePlugin, as_json: bool) -> anyhow::Result<()> {
    let mut sessions = storage.list()?;
    sessions.sort_by(|a, b| b.last_accessed_ms.cmp(&a.last_accessed_ms).then_with(|| a.id.cmp(&b.id)));
    if as_json {
        let items: Vec<Value> = sessions.iter().map(summary_json).collect();
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

pub fn summary_json(s: &SessionSummary) -> Value {
    json!({
        "id": s.id,
        "createdAt": iso8601(s.created_ms),
        "lastAccessedAt": iso8601(s.last_accessed_ms),
        "turnCount": s.turn_count,
        "threadId": s.agent_thread_id,
        "model": s.model,
        "cwd": s.cwd,
    })
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

/// Epoch milliseconds as RFC 3339 UTC (civil-from-days, no time-zone database needed).
pub fn iso8601(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn formats_epoch_millis() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_001_500), "2023-11-14T22:13:21.500Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
