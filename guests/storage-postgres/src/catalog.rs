//! The `storage-catalog` export, and the full listing `storage.list` gives:
//! keyset pages over the `sessions_by_use` index, most recently used first
//! and then by key (byte order, as [`store_codec::cursor`] compares), of
//! the summary columns only, never the bodies.

use store_codec::cursor;
use warden_plugin::storage::sql::{Isolation, Transaction, Value, begin};
use warden_plugin::storage::storage_catalog::{Guest, SessionFilter, SessionPage};
use warden_plugin::storage::{PluginError, SessionSummary};

use crate::Store;
use crate::db::{self, Cells};
use crate::error::{Error, run};
use crate::row::{self, SUMMARY_COLUMNS};

/// Largest page a caller gets, whatever it asks; also the rows of one
/// statement of a full listing.
const MAX_PAGE: u32 = 1000;

impl Guest for Store {
    fn list_page(
        filter: SessionFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SessionPage, PluginError> {
        let after = cursor.as_deref().map(parse_cursor).transpose()?;
        let texts = [&filter.cwd, &filter.model, &filter.key_contains];
        if texts.iter().any(|text| text.as_deref().is_some_and(|t| !db::storable(t))) {
            // No stored session holds a NUL.
            return Ok(SessionPage { sessions: Vec::new(), next_cursor: None });
        }
        let limit = limit.clamp(1, MAX_PAGE);
        // One row more than the page tells whether there is a next one.
        let page = Page::new(&filter, after.as_ref().map(|(ms, key)| (*ms, key.as_str())), limit + 1)?;
        let rows = run(|| db::read(&page.statement, &page.params))?;
        let mut sessions = rows.into_iter().map(row::summary).collect::<Result<Vec<_>, _>>()?;
        let more = sessions.len() > limit as usize;
        sessions.truncate(limit as usize);
        let next_cursor =
            sessions.last().filter(|_| more).map(|last| cursor::format(last.last_accessed_ms, &last.id));
        Ok(SessionPage { sessions, next_cursor })
    }

    /// The count every save that creates a session, and every delete, keeps
    /// (one row read, whatever the store's size).
    fn count() -> Result<u64, PluginError> {
        let found = run(|| db::first_row("select n from session_count", &[]))?;
        found.ok_or_else(|| "no row".to_string()).and_then(|mut cells: Cells| cells.unsigned("n")).map_err(
            |problem| {
                PluginError::Corrupt(format!(
                    "the session count is unreadable ({problem}); `warden sessions reindex` recounts"
                ))
            },
        )
    }

    fn least_recent(limit: u32) -> Result<Vec<SessionSummary>, PluginError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let statement =
            format!("select {SUMMARY_COLUMNS} from sessions order by last_accessed_ms, id limit $1");
        let params = [Value::Integer(limit.min(MAX_PAGE).into())];
        let rows = run(|| db::read(&statement, &params))?;
        rows.into_iter().map(row::summary).collect()
    }

    /// The database keeps its indexes itself; the count is taken again (rows
    /// written by hand, or by a plugin of an earlier schema, are not counted).
    fn reindex() -> Result<u64, PluginError> {
        let recount = "update session_count set n = (select count(*) from sessions) returning n";
        let found = run(|| {
            let transaction = db::begin()?;
            let rows = transaction.query(recount, &[])?.rows;
            Transaction::commit(transaction)?;
            Ok(rows.into_iter().next().map(Cells::new))
        })?;
        found
            .ok_or_else(|| "no row".to_string())
            .and_then(|mut cells: Cells| cells.unsigned("n"))
            .map_err(|problem| PluginError::Io(format!("recounting sessions: {problem}")))
    }
}

/// Every summary, a page of [`MAX_PAGE`] at a time, from one snapshot (a
/// repeatable-read transaction, rolled back when dropped: nothing to commit).
pub(crate) fn every_summary() -> Result<Vec<SessionSummary>, Error> {
    let transaction = begin(Isolation::RepeatableRead)?;
    let everything = SessionFilter { cwd: None, model: None, key_contains: None };
    let mut all: Vec<SessionSummary> = Vec::new();
    loop {
        let after = all.last().map(|last| (last.last_accessed_ms, last.id.as_str()));
        let page = Page::new(&everything, after, MAX_PAGE)?;
        let rows = transaction.query(&page.statement, &page.params)?.rows;
        let full = rows.len() == MAX_PAGE as usize;
        for row in rows {
            all.push(row::summary(row)?);
        }
        if !full {
            return Ok(all);
        }
    }
}

/// The position a cursor stands for; `invalid` unless this store could have issued it.
fn parse_cursor(text: &str) -> Result<(u64, String), PluginError> {
    let (ms, key) = cursor::parse(text).map_err(PluginError::Invalid)?;
    if i64::try_from(ms).is_err() || row::check_key(&key).is_err() {
        return Err(PluginError::Invalid(format!(
            "the cursor {text:?} is not one this store issued; list again without a cursor"
        )));
    }
    Ok((ms, key))
}

/// The query of one page: at most `limit` sessions after a position, that the filter passes.
struct Page {
    statement: String,
    params: Vec<Value>,
}

impl Page {
    fn new(filter: &SessionFilter, after: Option<(u64, &str)>, limit: u32) -> Result<Self, PluginError> {
        let mut params = Vec::new();
        let mut bind = |value: Value| {
            params.push(value);
            format!("${}", params.len())
        };
        let mut conditions = Vec::new();
        if let Some((ms, key)) = after {
            let ms = bind(db::bigint("the cursor's time", ms)?);
            let key = bind(Value::Text(key.to_string()));
            // The first test bounds the index scan; the second skips what the cursor's time already showed.
            conditions.push(format!("last_accessed_ms <= {ms} and (last_accessed_ms < {ms} or id > {key})"));
        }
        if let Some(cwd) = &filter.cwd {
            conditions.push(format!("cwd = {}", bind(Value::Text(cwd.clone()))));
        }
        if let Some(model) = &filter.model {
            conditions.push(format!("model = {}", bind(Value::Text(model.clone()))));
        }
        if let Some(text) = &filter.key_contains {
            conditions.push(format!("strpos(id, {}) > 0", bind(Value::Text(text.clone()))));
        }
        let limit = bind(Value::Integer(limit.into()));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" where {}", conditions.join(" and "))
        };
        let statement = format!(
            "select {SUMMARY_COLUMNS} from sessions{filter} order by last_accessed_ms desc, id limit {limit}"
        );
        Ok(Self { statement, params })
    }
}
