//! Warden's legacy storage backend: every session in one `sessions.json`
//! object (key → session), rewritten whole and atomically under one lock for
//! every change. It exists as a migration source and as the baseline the
//! directory store is measured against; it cannot migrate anything itself.
//! Its catalog reads the whole file for every page, as everything here does.

store_codec::wit_conversions!(warden_plugin::storage);

use serde_json::{Map, Value};
use store_codec::cursor;
use store_codec::legacy;
use store_codec::record::StoredSession;
use store_codec::summary::SummaryView;
use warden_plugin::storage::storage_catalog::{self, SessionFilter, SessionPage};
use warden_plugin::storage::{
    Guest, MigrateOptions, MigrateReport, PluginError, Session, SessionSummary, store_fs,
};
use wit_convert::{from_wit, summary_of, to_wit};

const FILE: &str = "sessions.json";
const LOCK: &str = "sessions.json.lock";
const LOCK_WAIT_MS: u32 = 30_000;

struct Store;

impl Guest for Store {
    fn load(id: String) -> Result<Session, PluginError> {
        let sessions = read_all()?;
        let stored = sessions.into_iter().find(|s| s.key == id);
        stored.map(to_wit).unwrap_or_else(|| Err(PluginError::NotFound(format!("no session {id:?}"))))
    }

    fn save(session: Session, expected_revision: Option<u64>) -> Result<u64, PluginError> {
        let _lock = store_fs::acquire_lock(LOCK, LOCK_WAIT_MS)?;
        let mut sessions = read_all()?;
        let position = sessions.iter().position(|s| s.key == session.id);
        let current = position.map_or(0, |i| sessions[i].revision);
        if let Some(expected) = expected_revision
            && expected != current
        {
            return Err(PluginError::Conflict(format!(
                "session {:?} is at revision {current}, not {expected}; reload and retry",
                session.id
            )));
        }
        let mut stored = from_wit(session)?;
        stored.revision = current + 1;
        let revision = stored.revision;
        match position {
            Some(i) => sessions[i] = stored,
            None => sessions.push(stored),
        }
        write_all(&sessions)?;
        Ok(revision)
    }

    fn delete(id: String) -> Result<bool, PluginError> {
        let _lock = store_fs::acquire_lock(LOCK, LOCK_WAIT_MS)?;
        let mut sessions = read_all()?;
        let before = sessions.len();
        sessions.retain(|s| s.key != id);
        if sessions.len() == before {
            return Ok(false);
        }
        write_all(&sessions)?;
        Ok(true)
    }

    fn list() -> Result<Vec<SessionSummary>, PluginError> {
        Ok(read_all()?.iter().map(summary_of).collect())
    }

    fn find_by_thread(thread_id: String) -> Result<Option<Session>, PluginError> {
        let found = read_all()?.into_iter().find(|s| s.agent_thread_id.as_deref() == Some(&thread_id));
        found.map(to_wit).transpose()
    }

    fn migrate(_options: MigrateOptions) -> Result<MigrateReport, PluginError> {
        Err(PluginError::Unsupported(
            "storage-json is the legacy layout; migrate with the storage-dir plugin instead".into(),
        ))
    }
}

impl storage_catalog::Guest for Store {
    fn list_page(
        filter: SessionFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SessionPage, PluginError> {
        let after = cursor.as_deref().map(cursor::parse).transpose().map_err(PluginError::Invalid)?;
        let views: Vec<SummaryView> = read_all()?.iter().map(SummaryView::of).collect();
        let (sessions, next_cursor) = cursor::cut_page(
            views,
            |v| (v.last_accessed_ms, v.key.clone()),
            after.as_ref(),
            |v| wit_convert::matches(&filter, v),
            limit.max(1) as usize,
        );
        Ok(SessionPage { sessions: sessions.into_iter().map(wit_convert::summary).collect(), next_cursor })
    }

    fn count() -> Result<u64, PluginError> {
        Ok(read_all()?.len() as u64)
    }

    fn least_recent(limit: u32) -> Result<Vec<SessionSummary>, PluginError> {
        let mut views: Vec<SummaryView> = read_all()?.iter().map(SummaryView::of).collect();
        views.sort_by(|a, b| a.last_accessed_ms.cmp(&b.last_accessed_ms).then_with(|| a.key.cmp(&b.key)));
        Ok(views.into_iter().take(limit as usize).map(wit_convert::summary).collect())
    }

    fn reindex() -> Result<u64, PluginError> {
        Ok(read_all()?.len() as u64)
    }
}

/// Every session in the file, in file order; a missing file is an empty store.
fn read_all() -> Result<Vec<StoredSession>, PluginError> {
    let bytes = match store_fs::read(FILE) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let corrupt = |problem: String| PluginError::Corrupt(format!("{FILE} cannot be read: {problem}"));
    let entries = legacy::parse_entries(&bytes).map_err(corrupt)?;
    let sessions: Vec<StoredSession> = entries
        .into_iter()
        .map(|(key, value)| legacy::to_session(&key, value))
        .collect::<Result<_, _>>()
        .map_err(corrupt)?;
    Ok(legacy::newest_per_key(sessions, false).0)
}

fn write_all(sessions: &[StoredSession]) -> Result<(), PluginError> {
    let mut object = Map::new();
    for session in sessions {
        let value = serde_json::to_value(session).map_err(|e| PluginError::Io(format!("encoding: {e}")))?;
        object.insert(session.key.clone(), value);
    }
    let bytes =
        serde_json::to_vec(&Value::Object(object)).map_err(|e| PluginError::Io(format!("encoding: {e}")))?;
    store_fs::write_atomic(FILE, &bytes)
}

// Task records in their own files, beside the store.
warden_plugin::storage::task_files::task_store_in_files!(Store);

warden_plugin::storage::export!(Store, manifest = "warden.toml");
