//! One session file in `sessions.d/`: a log of framed records
//! ([`store_codec::framed`]), the newest whole record being the session. A
//! save of a session already on disk appends its record with one durable
//! write; a new session, a file in the earlier (unframed) layout, or a log
//! grown past [`compacts_at`] is replaced atomically with the record alone.
//! Readers look at the file's end first, so a long log costs no more to
//! read than its newest record.

use store_codec::framed::{self, Layout, Trailer};
use store_codec::key::{self, Decoded};
use store_codec::record::StoredSession;
use store_codec::summary::{PREFIX_BYTES, SummaryView};
use warden_plugin::storage::log::{Level, log};
use warden_plugin::storage::{PluginError, store_fs};

use crate::{SESSIONS, path};

/// How many bytes of a file's end are read first: the newest record of most
/// sessions, and the trailer of any.
const TAIL_BYTES: u32 = PREFIX_BYTES;
/// A log may grow to this size, or four times its newest record, before it is compacted.
const COMPACT_FLOOR: u64 = 256 << 10;

/// Where the newest record of a file was found.
enum Newest {
    /// Its JSON, checked against its trailer.
    Json(Vec<u8>),
    /// It starts at this offset and is too long to have been read with the tail.
    At(u64),
    /// The whole file had to be read: a short one, an earlier layout, a torn tail.
    Whole(Vec<u8>),
}

/// Read and decode one session file. A file that does not decode is moved
/// aside (`<name>.corrupt.<n>`) and reported as `corrupt`.
pub(crate) fn read_session(name: &str) -> Result<Option<StoredSession>, PluginError> {
    let decoded = read_newest(name, StoredSession::from_bytes, |session| &session.key)?;
    Ok(decoded.map(|(session, _)| session))
}

/// What a save or a migration needs of a stored session (its revision,
/// thread, last use) and the file's length if it is a log a save may append
/// to. The newest record is found and checked against its trailer as
/// [`read_session`] does, but only its summary fields are decoded, not its
/// transcript: a long session costs a save no more to decode than a short one.
pub(crate) fn read_stored_summary(name: &str) -> Result<Option<(SummaryView, Option<u64>)>, PluginError> {
    let summary =
        |json: &[u8]| SummaryView::from_prefix(json).unwrap_or_else(|| SummaryView::from_bytes(json));
    read_newest(name, summary, |view| &view.key)
}

/// The newest whole record of file `name`, decoded by `decode`, and the
/// file's length if it is a log; a record that does not decode, or holds
/// another key than the file's name, is quarantined and reported as `corrupt`.
fn read_newest<T>(
    name: &str,
    decode: impl Fn(&[u8]) -> Result<T, String>,
    key_of: impl Fn(&T) -> &str,
) -> Result<Option<(T, Option<u64>)>, PluginError> {
    let path = path(name);
    let (json, log_length) = match newest(&path, None)? {
        None => return Ok(None),
        Some((Newest::Json(json), length)) => (Ok(json), Some(length)),
        Some((Newest::Whole(bytes), length)) => whole_record(bytes, length),
        // Only a summary read leaves a record unread.
        Some((Newest::At(_), _)) => match read_whole(&path)? {
            None => return Ok(None),
            Some(bytes) => {
                let length = bytes.len() as u64;
                whole_record(bytes, length)
            }
        },
    };
    let problem = match json.and_then(|json| decode(&json)) {
        Ok(decoded) => match key::decode(name) {
            Some(Decoded::Key(k)) if k != key_of(&decoded) => format!("it holds key {:?}", key_of(&decoded)),
            _ => return Ok(Some((decoded, log_length))),
        },
        Err(problem) => problem,
    };
    let quarantine = quarantine(name)?;
    Err(PluginError::Corrupt(format!(
        "session file {SESSIONS}/{name} is unreadable ({problem}); it was moved to {quarantine}"
    )))
}

/// The newest record of a whole file, and its length if it is a log.
fn whole_record(bytes: Vec<u8>, length: u64) -> (Result<Vec<u8>, String>, Option<u64>) {
    let log = matches!(framed::layout(&bytes), Layout::Framed(_)).then_some(length);
    (framed::newest_json(&bytes).map(<[u8]>::to_vec), log)
}

/// The summary of one session file, read from its newest record's first
/// bytes when the record is long; `None` if the file has gone.
pub(crate) fn read_summary(path: &str) -> Result<Option<Result<SummaryView, String>>, PluginError> {
    let view = match newest(path, Some(PREFIX_BYTES))? {
        None => return Ok(None),
        Some((Newest::Json(json), _)) => SummaryView::from_bytes(&json),
        Some((Newest::At(start), _)) => {
            let prefix = match store_fs::read_range(path, start, PREFIX_BYTES) {
                Ok(prefix) => prefix,
                Err(PluginError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            // A long record's transcript is not checked here; `load` checks it.
            match SummaryView::from_prefix(&prefix) {
                Some(view) => view,
                None => return read_summary_whole(path),
            }
        }
        Some((Newest::Whole(bytes), _)) => summary_of_whole(&bytes),
    };
    Ok(Some(view))
}

fn read_summary_whole(path: &str) -> Result<Option<Result<SummaryView, String>>, PluginError> {
    Ok(read_whole(path)?.map(|bytes| summary_of_whole(&bytes)))
}

fn summary_of_whole(bytes: &[u8]) -> Result<SummaryView, String> {
    framed::newest_json(bytes).and_then(SummaryView::from_bytes)
}

/// Find the newest record of the file at `path` and its length: from the
/// file's end when its trailer is whole (a record longer than `record_limit`
/// is not read but answered as `Newest::At`), else the whole file. The size
/// comes first, so a log longer than the tail costs two reads of what it
/// needs, not a read of its first bytes too.
fn newest(path: &str, record_limit: Option<u32>) -> Result<Option<(Newest, u64)>, PluginError> {
    let size = match store_fs::metadata(path) {
        Ok(Some(meta)) => meta.size,
        Ok(None) | Err(PluginError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if size > u64::from(TAIL_BYTES)
        && let Some(found) = newest_from_tail(path, size, record_limit)?
    {
        return Ok(Some((found, size)));
    }
    // Short, an earlier layout, torn, or changed since `metadata`: read it in one piece.
    Ok(read_whole(path)?.map(|bytes| {
        let length = bytes.len() as u64;
        (Newest::Whole(bytes), length)
    }))
}

fn newest_from_tail(path: &str, size: u64, record_limit: Option<u32>) -> Result<Option<Newest>, PluginError> {
    let tail_start = size - u64::from(TAIL_BYTES);
    let tail = match store_fs::read_range(path, tail_start, TAIL_BYTES) {
        Ok(tail) if tail.len() == TAIL_BYTES as usize => tail,
        Ok(_) | Err(PluginError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(trailer) = framed::trailer_at_end(&tail) else { return Ok(None) };
    let json_end = size - trailer.len as u64;
    let Some(start) = json_end.checked_sub(trailer.json_len) else { return Ok(None) };
    if start >= tail_start {
        let json = &tail[(start - tail_start) as usize..tail.len() - trailer.len];
        return Ok(trailer.closes(json).then(|| Newest::Json(json.to_vec())));
    }
    if let Some(limit) = record_limit
        && trailer.json_len > u64::from(limit)
    {
        return Ok(Some(Newest::At(start)));
    }
    read_record(path, start, &trailer)
}

fn read_record(path: &str, start: u64, trailer: &Trailer) -> Result<Option<Newest>, PluginError> {
    let Ok(length) = u32::try_from(trailer.json_len) else { return Ok(None) };
    match store_fs::read_range(path, start, length) {
        Ok(json) if trailer.closes(&json) => Ok(Some(Newest::Json(json))),
        Ok(_) | Err(PluginError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_whole(path: &str) -> Result<Option<Vec<u8>>, PluginError> {
    match store_fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(PluginError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `session` as the newest record of file `name`, whose current
/// length as a log is `log_length` (`None`: new, or not a log).
pub(crate) fn write_session(
    name: &str,
    session: &StoredSession,
    log_length: Option<u64>,
) -> Result<(), PluginError> {
    let record = encode(session);
    match log_length {
        Some(length) if length + (record.len() as u64) <= compacts_at(record.len()) => {
            store_fs::append_durable(&path(name), &record).map(drop)
        }
        _ => store_fs::write_atomic(&path(name), &record),
    }
}

/// A session file holding `session` alone.
pub(crate) fn encode(session: &StoredSession) -> Vec<u8> {
    framed::frame(&session.to_bytes())
}

/// The length past which a log whose newest record is `record` bytes is
/// rewritten with that record alone.
pub(crate) fn compacts_at(record: usize) -> u64 {
    COMPACT_FLOOR.max(4 * record as u64)
}

fn quarantine(name: &str) -> Result<String, PluginError> {
    for n in 1..1000 {
        let target = format!("{SESSIONS}/{name}.corrupt.{n}");
        if store_fs::metadata(&target)?.is_none() {
            store_fs::rename(&path(name), &target)?;
            log(Level::Warn, &format!("quarantined {SESSIONS}/{name} as {target}"));
            return Ok(target);
        }
    }
    Err(PluginError::Io(format!("too many quarantined copies of {name}; clean up {SESSIONS}/")))
}
