//! `warden sessions list|show|rm`: see and repair a store without a server.

use epoch_time::format_rfc3339_ms as iso8601;
use serde_json::{Value, json};

use std::io::Write as _;

use crate::mcp::SessionItem;
use crate::runtime::calls::StoragePlugin;
use crate::runtime::loaded::CallOptions;
use crate::sessions::{ListRequest, Owners, SessionPage};
use crate::types::{Session, SessionSummary};

/// Sessions fetched per storage call.
const PAGE: u32 = 200;

/// Print sessions page by page: at most `limit`, after the cursor `after`.
/// When `limit` stops the listing early, the cursor that continues it goes to stderr.
pub fn list(
    storage: &StoragePlugin,
    owners: &Owners,
    as_json: bool,
    limit: Option<u64>,
    after: Option<String>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut request = ListRequest { cursor: after, ..ListRequest::default() };
    let mut shown = 0u64;
    // Opened once the first page is read, so a store that cannot be read leaves no half document.
    let mut opened = false;
    loop {
        let left = limit.map_or(u64::from(PAGE), |limit| (limit - shown).min(u64::from(PAGE)));
        if left == 0 {
            break;
        }
        request.limit = left as u32;
        let page = page(storage, &request)?;
        if as_json && !opened {
            write!(out, "[")?;
            opened = true;
        }
        for s in &page.sessions {
            let (owner, key) = match owners.split(&s.id) {
                Some((owner, key)) => (owner.to_string(), key.to_string()),
                None => ("?".to_string(), s.id.clone()),
            };
            if as_json {
                let separator = if shown == 0 { "\n" } else { ",\n" };
                let mut item = serde_json::to_value(SessionItem::new(s, None))?;
                item["id"] = key.into();
                item["owner"] = owner.into();
                write!(out, "{separator}{item}")?;
            } else {
                writeln!(out, "{}", line(&owner, &key, s))?;
            }
            shown += 1;
        }
        out.flush()?;
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => {
                request.cursor = None;
                break;
            }
        }
    }
    if as_json {
        writeln!(out, "{}{}]", if opened { "" } else { "[" }, if shown == 0 { "" } else { "\n" })?;
    } else if shown == 0 {
        writeln!(out, "no sessions")?;
    }
    if let Some(cursor) = request.cursor {
        eprintln!("more sessions follow; continue with --after {cursor}");
    }
    Ok(())
}

/// One page, from the plugin's catalog or cut from its full listing.
fn page(storage: &StoragePlugin, request: &ListRequest) -> anyhow::Result<SessionPage> {
    Ok(crate::sessions::page_of(storage, request, &CallOptions::default())?)
}

/// A session as one line; `owner` is `?` for an id no principal could have made.
fn line(owner: &str, key: &str, s: &SessionSummary) -> String {
    format!(
        "{key}\towner {owner}\t{} turns\tlast used {}\tthread {}\tmodel {}\tcwd {}",
        s.turn_count,
        iso8601(s.last_accessed_ms),
        s.agent_thread_id.as_deref().unwrap_or("-"),
        s.model.as_deref().unwrap_or("-"),
        s.cwd.as_deref().unwrap_or("-"),
    )
}

pub fn reindex(storage: &StoragePlugin) -> anyhow::Result<()> {
    if !storage.has_catalog() {
        anyhow::bail!(
            "storage plugin `{}` keeps no indexes (it was built against a contract before 0.1.2)",
            storage.info.name
        );
    }
    let indexed = storage.with(&CallOptions::default()).reindex()?;
    println!("indexed {indexed} sessions");
    Ok(())
}

pub fn show(storage: &StoragePlugin, owners: &Owners, id: &str) -> anyhow::Result<()> {
    let session = storage.load(id)?;
    let mut shown = session_json(&session);
    if let Some((owner, key)) = owners.split(id) {
        shown["id"] = key.into();
        shown["owner"] = owner.to_string().into();
    }
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

/// Delete the session stored as `id`.
pub fn remove(storage: &StoragePlugin, id: &str) -> anyhow::Result<()> {
    if !storage.delete(id)? {
        anyhow::bail!(
            "no session {id:?} in the store; `warden sessions list` shows the keys and owners (--owner picks another principal's)"
        );
    }
    println!("removed {id:?}");
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
