//! Pages of the session listing: from the storage plugin's catalog when it
//! has one, else cut from its full listing. A page from a plugin is checked:
//! never longer than asked, and its cursor bounded.

use crate::contract::bindings::storage::exports::warden::plugin::storage_catalog;
pub use crate::contract::bindings::storage::exports::warden::plugin::storage_catalog::SessionFilter;
use crate::runtime::calls::StoragePlugin;
use crate::runtime::loaded::CallOptions;
use crate::types::SessionSummary;

use super::TurnError;

/// Sessions on a page when the caller does not say (fits a client's context).
pub const DEFAULT_PAGE: u32 = 50;
/// Most sessions on one page.
pub const MAX_PAGE: u32 = 500;
/// Longest cursor a storage plugin may hand out.
const MAX_CURSOR_BYTES: usize = 4096;

#[derive(Clone, Debug)]
pub struct ListRequest {
    pub filter: SessionFilter,
    pub cursor: Option<String>,
    pub limit: u32,
    /// Only sessions this agent holds; the host filters each page (the
    /// storage contract's filter does not know agents).
    pub agent: Option<String>,
}

impl Default for ListRequest {
    fn default() -> Self {
        let filter = SessionFilter { cwd: None, model: None, key_contains: None };
        Self { filter, cursor: None, limit: DEFAULT_PAGE, agent: None }
    }
}

#[derive(Clone, Debug)]
pub struct SessionPage {
    /// Most recently used first.
    pub sessions: Vec<SessionSummary>,
    /// Where the next page starts; none after the last.
    pub next_cursor: Option<String>,
}

/// One page from `plugin`, checked.
pub fn page_of(
    plugin: &StoragePlugin,
    request: &ListRequest,
    call: &CallOptions,
) -> Result<SessionPage, TurnError> {
    let storage = plugin.with(call);
    let limit = request.limit.clamp(1, MAX_PAGE);
    let storage_catalog::SessionPage { mut sessions, next_cursor } = if plugin.has_catalog() {
        storage.list_page(&request.filter, request.cursor.as_deref(), limit)?
    } else {
        cut(storage.list()?, request, limit)?
    };
    sessions.truncate(limit as usize);
    if next_cursor.as_ref().is_some_and(|c| c.len() > MAX_CURSOR_BYTES) {
        return Err(TurnError::Invalid(format!(
            "storage plugin `{}` returned a cursor longer than {MAX_CURSOR_BYTES} bytes; the listing stopped",
            plugin.info.name
        )));
    }
    Ok(SessionPage { sessions, next_cursor })
}

/// A page of a full listing, for storage plugins without a catalog.
fn cut(
    all: Vec<SessionSummary>,
    request: &ListRequest,
    limit: u32,
) -> Result<storage_catalog::SessionPage, TurnError> {
    let after =
        request.cursor.as_deref().map(store_codec::cursor::parse).transpose().map_err(TurnError::Invalid)?;
    let (sessions, next_cursor) = store_codec::cursor::cut_page(
        all,
        |s| (s.last_accessed_ms, s.id.clone()),
        after.as_ref(),
        |s| matches(&request.filter, s),
        limit as usize,
    );
    Ok(storage_catalog::SessionPage { sessions, next_cursor })
}

fn matches(filter: &SessionFilter, s: &SessionSummary) -> bool {
    filter.cwd.as_ref().is_none_or(|cwd| s.cwd.as_ref() == Some(cwd))
        && filter.model.as_ref().is_none_or(|model| s.model.as_ref() == Some(model))
        && filter.key_contains.as_ref().is_none_or(|text| s.id.contains(text.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, last: u64) -> SessionSummary {
        SessionSummary {
            id: id.into(),
            created_ms: 0,
            last_accessed_ms: last,
            turn_count: 0,
            agent_thread_id: None,
            model: None,
            cwd: Some(if last.is_multiple_of(2) { "/even" } else { "/odd" }.into()),
        }
    }

    #[test]
    fn a_full_listing_is_cut_into_pages_most_recent_first() {
        let all: Vec<SessionSummary> = (0..7).map(|i| summary(&format!("s{i}"), 100 + i)).collect();
        let mut request = ListRequest { limit: 3, ..ListRequest::default() };
        let mut seen = Vec::new();
        loop {
            let page = cut(all.clone(), &request, request.limit).unwrap();
            seen.extend(page.sessions.iter().map(|s| s.id.clone()));
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(seen, ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]);
        request.cursor = None;
        request.filter.cwd = Some("/odd".into());
        let odd = cut(all.clone(), &request, 10).unwrap();
        assert_eq!(odd.sessions.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s5", "s3", "s1"]);
        request.cursor = Some("not a cursor".into());
        assert!(matches!(cut(all, &request, 3), Err(TurnError::Invalid(_))));
    }
}
