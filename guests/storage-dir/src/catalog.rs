//! The `storage-catalog` export: paged listings, counts and the least
//! recently used sessions, all from [`crate::index`].

use store_codec::cursor;
use warden_plugin::storage::storage_catalog::{Guest, SessionFilter, SessionPage};
use warden_plugin::storage::{PluginError, SessionSummary};

use crate::{Store, index, wit_convert};

/// Largest page a caller gets, whatever it asks.
const MAX_PAGE: u32 = 1000;
/// Sessions one page may examine before it returns what it found (with a
/// cursor), so a filter that matches little never reads the whole store at once.
const EXAMINE_PER_PAGE: usize = 5000;

impl Guest for Store {
    fn list_page(
        filter: SessionFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SessionPage, PluginError> {
        let after = cursor.as_deref().map(cursor::parse).transpose().map_err(PluginError::Invalid)?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut sessions = Vec::new();
        let (last, stopped) = index::walk_recent(
            after.as_ref().map(|(ms, key)| (*ms, key.as_str())),
            EXAMINE_PER_PAGE,
            now_ms(),
            |summary| {
                if wit_convert::matches(&filter, summary) {
                    sessions.push(wit_convert::summary(summary.clone()));
                }
                sessions.len() < limit
            },
        )?;
        let next_cursor = if stopped { last.map(|(ms, key)| cursor::format(ms, &key)) } else { None };
        Ok(SessionPage { sessions, next_cursor })
    }

    fn count() -> Result<u64, PluginError> {
        index::count()
    }

    fn least_recent(limit: u32) -> Result<Vec<SessionSummary>, PluginError> {
        Ok(index::least_recent(limit.min(MAX_PAGE) as usize, now_ms())?
            .into_iter()
            .map(wit_convert::summary)
            .collect())
    }

    fn reindex() -> Result<u64, PluginError> {
        index::rebuild()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
