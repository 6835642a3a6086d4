//! `warden migrate --to <config>`: copy every session of this
//! configuration's store into the store another configuration names (say,
//! the directory store into a PostgreSQL one), each through its own storage
//! plugin and grant. Idempotent: a session the target holds as recently
//! used or more recently is kept as it is, so running it again, or after
//! the target has moved on, overwrites nothing newer. Task records are not
//! copied: they live an hour and belong to the process that ran them.
//!
//! Copy from a store no Warden serves meanwhile: the source is read page by
//! page, most recently used first, so a session used during the copy can move
//! past the reading and be missed (run it again). A session deleted from the
//! target but still in the source comes back.

use crate::contract::bindings::storage::exports::warden::plugin::storage_catalog::SessionFilter;
use crate::runtime::calls::StoragePlugin;
use crate::runtime::loaded::{CallError, CallOptions};
use crate::types::{PluginError, Session};

/// Sessions read per page of the source's listing.
const PAGE: u32 = 200;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Written to the target (new there, or older there).
    pub copied: u64,
    /// Left as they were: the target's copy is as recent or more.
    pub kept: u64,
    /// Gone or unreadable in the source, or refused by the target (each named on stderr).
    pub skipped: u64,
}

/// Copy `from`'s sessions into `to`.
pub fn copy(from: &StoragePlugin, to: &StoragePlugin) -> anyhow::Result<CopyReport> {
    let mut report = CopyReport::default();
    for id in session_ids(from)? {
        let session = match from.load(&id) {
            Ok(session) => session,
            Err(e) => {
                eprintln!("warden: skipped session {id:?}: {e}");
                report.skipped += 1;
                continue;
            }
        };
        match copy_one(to, session) {
            Ok(true) => report.copied += 1,
            Ok(false) => report.kept += 1,
            // One session the target cannot hold (its key, its size) does not stop the others.
            Err(e) => {
                eprintln!("warden: skipped session {id:?}: {e:#}");
                report.skipped += 1;
            }
        }
    }
    Ok(report)
}

/// Every stored id of `store`, by its pages when it has them.
fn session_ids(store: &StoragePlugin) -> anyhow::Result<Vec<String>> {
    if !store.has_catalog() {
        return Ok(store.list()?.into_iter().map(|s| s.id).collect());
    }
    let (mut ids, mut cursor) = (Vec::new(), None);
    let every = SessionFilter { cwd: None, model: None, key_contains: None };
    loop {
        let page = store.with(&CallOptions::default()).list_page(&every, cursor.as_deref(), PAGE)?;
        ids.extend(page.sessions.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
}

/// Write `session` unless the target holds it as recently used; whether it was written.
fn copy_one(to: &StoragePlugin, session: Session) -> anyhow::Result<bool> {
    for _ in 0..3 {
        let expected = match to.load(&session.id) {
            Ok(current) if current.last_accessed_ms >= session.last_accessed_ms => return Ok(false),
            Ok(current) => current.revision,
            Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => 0,
            Err(e) => return Err(e.into()),
        };
        match to.save(&session, Some(expected)) {
            Ok(_) => return Ok(true),
            // Changed meanwhile (a serving Warden): look again.
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(anyhow::anyhow!("session {:?}: {e}", session.id)),
        }
    }
    anyhow::bail!("session {:?} kept changing in the target store while it was copied; run again", session.id)
}

fn is_conflict(error: &CallError) -> bool {
    matches!(error.plugin_error(), Some(PluginError::Conflict(_)))
}
