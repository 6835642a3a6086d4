//! A session as a row of `sessions`: the summary columns a save writes
//! beside the body (the session's JSON form, [`StoredSession::to_bytes`],
//! as every Warden store keeps it), checked to fit; and the session or
//! summary decoded from a row read back, which is not trusted.

use store_codec::key;
use store_codec::record::StoredSession;
use warden_plugin::storage::sql::Value;
use warden_plugin::storage::{PluginError, Session, SessionSummary};

use crate::db::{self, Cells};
use crate::wit_convert;

/// The columns of a summary, in the order [`summary`] reads them.
pub(crate) const SUMMARY_COLUMNS: &str =
    "id, created_ms, last_accessed_ms, turn_count, agent_thread_id, model, cwd";
/// Longest key (and agent thread id) stored: what a listing cursor carries,
/// and short enough for the indexes.
const MAX_KEY_BYTES: usize = 1024;

/// Refuse a session key no store can hold, or this one cannot (NUL, too long).
pub(crate) fn check_key(id: &str) -> Result<(), PluginError> {
    key::file_name(id).map_err(PluginError::Invalid)?;
    check_indexed("a session key", id)
}

fn check_indexed(what: &str, value: &str) -> Result<(), PluginError> {
    if value.len() > MAX_KEY_BYTES {
        return Err(PluginError::Invalid(format!(
            "{what} is {} bytes; this store holds at most {MAX_KEY_BYTES}",
            value.len()
        )));
    }
    check_text(what, value)
}

fn check_text(what: &str, value: &str) -> Result<(), PluginError> {
    if db::storable(value) {
        Ok(())
    } else {
        Err(PluginError::Invalid(format!("{what} contains NUL, which PostgreSQL text cannot hold")))
    }
}

/// A session about to be saved.
pub(crate) struct Prepared {
    session: StoredSession,
    /// `$1` … `$7`: id, created_ms, last_accessed_ms, turn_count, agent_thread_id, model, cwd.
    columns: Vec<Value>,
}

impl Prepared {
    pub(crate) fn new(session: Session) -> Result<Self, PluginError> {
        check_key(&session.id)?;
        let session = wit_convert::from_wit(session)?;
        if let Some(thread) = &session.agent_thread_id {
            check_indexed("the agent thread id", thread)?;
        }
        let optional = |what: &str, value: &Option<String>| match value {
            Some(text) => check_text(what, text).map(|()| Value::Text(text.clone())),
            None => Ok(Value::Null),
        };
        let columns = vec![
            Value::Text(session.key.clone()),
            db::bigint("created-ms", session.created_ms)?,
            db::bigint("last-accessed-ms", session.last_accessed_ms)?,
            Value::Integer(session.turns.len() as i64),
            optional("the agent thread id", &session.agent_thread_id)?,
            optional("the model", &session.model)?,
            optional("the working directory", &session.cwd)?,
        ];
        Ok(Self { session, columns })
    }

    pub(crate) fn id(&self) -> &str {
        &self.session.key
    }

    /// The revision the caller's copy of the session carries.
    pub(crate) fn revision(&self) -> u64 {
        self.session.revision
    }

    /// The body of the session at `revision`.
    pub(crate) fn body(&mut self, revision: u64) -> Result<Value, PluginError> {
        self.session.revision = revision;
        String::from_utf8(self.session.to_bytes())
            .map(Value::Text)
            .map_err(|e| PluginError::Io(format!("encoding session {:?}: {e}", self.session.key)))
    }

    /// The parameters of a write: the columns, then `body` as `$8`.
    pub(crate) fn params(&self, body: Value) -> Vec<Value> {
        let mut params = self.columns.clone();
        params.push(body);
        params
    }
}

/// The session in a row whose key is `id`, from its cells `revision, body`.
/// The `revision` column wins over the body's copy: it is what saves compare.
pub(crate) fn session(id: &str, mut cells: Cells) -> Result<Session, PluginError> {
    let corrupt = |problem: String| {
        PluginError::Corrupt(format!(
            "session {id:?} is unreadable ({problem}); it was left in place: delete it or restore it from a backup"
        ))
    };
    let revision = cells.unsigned("revision").map_err(corrupt)?;
    let body = cells.text("body").map_err(corrupt)?;
    let mut stored = StoredSession::from_bytes(body.as_bytes()).map_err(corrupt)?;
    if stored.key != id {
        return Err(corrupt(format!("its body holds key {:?}", stored.key)));
    }
    stored.revision = revision;
    wit_convert::to_wit(stored)
}

/// The summary in a row of [`SUMMARY_COLUMNS`].
pub(crate) fn summary(row: Vec<Value>) -> Result<SessionSummary, PluginError> {
    let mut cells = Cells::new(row);
    let id = cells
        .text("id")
        .map_err(|problem| PluginError::Corrupt(format!("a row of sessions is unreadable: {problem}")))?;
    let corrupt = |problem: String| {
        PluginError::Corrupt(format!("the summary of session {id:?} is unreadable: {problem}"))
    };
    let created_ms = cells.unsigned("created_ms").map_err(corrupt)?;
    let last_accessed_ms = cells.unsigned("last_accessed_ms").map_err(corrupt)?;
    let turn_count = cells.unsigned("turn_count").map_err(corrupt)?;
    let turn_count = u32::try_from(turn_count).map_err(|_| corrupt(format!("turn_count is {turn_count}")))?;
    let agent_thread_id = cells.optional_text("agent_thread_id").map_err(corrupt)?;
    let model = cells.optional_text("model").map_err(corrupt)?;
    let cwd = cells.optional_text("cwd").map_err(corrupt)?;
    Ok(SessionSummary { id, created_ms, last_accessed_ms, turn_count, agent_thread_id, model, cwd })
}
