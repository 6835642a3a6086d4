//! The indexes that keep a turn's cost independent of the store's size:
//! which session holds an agent thread, which sessions were used when, and
//! how many there are. Session files stay the truth; every index entry is a
//! hint that is checked against the session it names before it is believed.
//!
//! ```text
//! index/ready                 written after a full build; absent: build first
//! index/threads/<thread>      appended lines: session file names holding the thread
//! index/recent/<hi>/<lo>      appended lines: sessions last used in that 65 s window
//! index/count                 "=N" then one "+" or "-" per session created or deleted
//! ```
//!
//! A save appends its index lines BEFORE it writes the session, so a process
//! killed in between leaves an extra line (checked and skipped), never a
//! missing one. A deleted `index/` (no `ready`) is rebuilt from the session
//! files before it is used; lines that do not decode are skipped.

use store_codec::key;
use store_codec::summary::SummaryView;
use warden_plugin::storage::log::{Level, log};
use warden_plugin::storage::{EntryKind, PluginError, store_fs};

use crate::{SESSIONS, path, read_summary};

const READY: &str = "index/ready";
const THREADS: &str = "index/threads";
const RECENT: &str = "index/recent";
const COUNT: &str = "index/count";
const COUNT_LOCK: &str = "count";
const REBUILD_LOCK: &str = "index";
/// A count file longer than this is folded back into one "=N".
const COUNT_FOLD_BYTES: u64 = 1024;
/// Bits of a millisecond time below a window (65.5 s) and below a window group (18.6 h).
const WINDOW_BITS: u32 = 16;
const GROUP_BITS: u32 = 26;

/// The append-only log of the window holding `ms`.
pub fn window_path(ms: u64) -> String {
    format!("{RECENT}/{:06x}/{:08x}", ms >> GROUP_BITS, ms >> WINDOW_BITS)
}

fn thread_path(thread: &str) -> Result<String, PluginError> {
    key::file_name(thread).map(|name| format!("{THREADS}/{name}")).map_err(PluginError::Invalid)
}

/// Append one line, creating the file's directory when it is missing.
fn append_line(file: &str, line: &str) -> Result<u64, PluginError> {
    let data = format!("{line}\n").into_bytes();
    match store_fs::append(file, &data) {
        Err(PluginError::NotFound(_)) => {
            let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir);
            store_fs::create_dir(dir)?;
            store_fs::append(file, &data)
        }
        other => other,
    }
}

/// What a save changes in the indexes: called with the stored session's
/// (thread, last use) and the new one's, before the new one is written.
pub fn before_save(
    name: &str,
    old: Option<(Option<&str>, u64)>,
    new_thread: Option<&str>,
    new_last_used: u64,
) -> Result<(), PluginError> {
    if let Some(thread) = new_thread
        && old.and_then(|(t, _)| t) != Some(thread)
    {
        append_line(&thread_path(thread)?, name)?;
    }
    if old.is_none_or(|(_, used)| window_path(used) != window_path(new_last_used)) {
        append_line(&window_path(new_last_used), name)?;
    }
    Ok(())
}

/// Count a session created (+1) or deleted (-1), after the session file changed.
pub fn counted(delta: i8) -> Result<(), PluginError> {
    let _lock = crate::lock(COUNT_LOCK, crate::LOCK_WAIT_MS)?;
    let length = append_raw(COUNT, if delta > 0 { b"+" } else { b"-" })?;
    if length > COUNT_FOLD_BYTES
        && let Some(n) = read_count()?
    {
        store_fs::write_atomic(COUNT, format!("={n}").as_bytes())?;
    }
    Ok(())
}

fn append_raw(file: &str, data: &[u8]) -> Result<u64, PluginError> {
    match store_fs::append(file, data) {
        Err(PluginError::NotFound(_)) => {
            store_fs::create_dir("index")?;
            store_fs::append(file, data)
        }
        other => other,
    }
}

/// The count file's value: "=N" then one mark per change; `None` if the
/// file is anything else (then a rebuild recounts).
fn read_count() -> Result<Option<u64>, PluginError> {
    let bytes = match store_fs::read(COUNT) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(rest) = bytes.strip_prefix(b"=") else { return Ok(None) };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let base: Option<i64> = std::str::from_utf8(&rest[..digits]).ok().and_then(|d| d.parse().ok());
    let marks = &rest[digits..];
    match base {
        Some(base) if marks.iter().all(|b| matches!(b, b'+' | b'-')) => {
            let delta: i64 = marks.iter().map(|&b| if b == b'+' { 1 } else { -1 }).sum();
            Ok(Some((base + delta).max(0) as u64))
        }
        _ => Ok(None),
    }
}

/// How many sessions are stored.
pub fn count() -> Result<u64, PluginError> {
    ensure_built()?;
    if let Some(n) = read_count()? {
        return Ok(n);
    }
    log(Level::Warn, &format!("{COUNT} is unreadable; recounting"));
    rebuild()
}

/// Build the indexes if they are not (a store written before them, or an
/// `index/` deleted by hand).
pub fn ensure_built() -> Result<(), PluginError> {
    if store_fs::metadata(READY)?.is_some() {
        return Ok(());
    }
    rebuild().map(|_| ())
}

/// Index every session file again. Lines are only added, so saves running
/// meanwhile lose nothing; the count is recomputed.
pub fn rebuild() -> Result<u64, PluginError> {
    let _lock = crate::lock(REBUILD_LOCK, 60_000)?;
    let entries = match store_fs::list_dir(SESSIONS) {
        Ok(entries) => entries,
        Err(PluginError::NotFound(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut indexed = 0u64;
    for entry in entries {
        if entry.kind != EntryKind::File || key::decode(&entry.name).is_none() {
            continue;
        }
        let Some(summary) = summary_of(&entry.name)? else { continue };
        if let Some(thread) = &summary.agent_thread_id {
            append_line(&thread_path(thread)?, &entry.name)?;
        }
        append_line(&window_path(summary.last_accessed_ms), &entry.name)?;
        indexed += 1;
    }
    store_fs::create_dir("index")?;
    let _count = crate::lock(COUNT_LOCK, crate::LOCK_WAIT_MS)?;
    store_fs::write_atomic(COUNT, format!("={indexed}").as_bytes())?;
    store_fs::write_atomic(READY, b"1\n")?;
    log(Level::Info, &format!("indexed {indexed} sessions"));
    Ok(indexed)
}

/// The summary of session file `name`; `None` if it is gone or unreadable.
pub fn summary_of(name: &str) -> Result<Option<SummaryView>, PluginError> {
    match read_summary(&path(name))? {
        Some(Ok(view)) => Ok(Some(view)),
        Some(Err(problem)) => {
            log(Level::Warn, &format!("skipping {SESSIONS}/{name}: {problem}"));
            Ok(None)
        }
        None => Ok(None),
    }
}

/// The session file names on the lines of an index file, last line first,
/// each once; lines that are not session file names are skipped.
fn names_in(file: &str) -> Result<Option<Vec<String>>, PluginError> {
    let bytes = match store_fs::read(file) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut names: Vec<String> = Vec::new();
    for line in text.split('\n').rev() {
        let valid = key::decode(line).is_some();
        if valid && !names.iter().any(|n| n == line) {
            names.push(line.to_string());
        } else if !valid && !line.is_empty() {
            log(Level::Warn, &format!("{file}: skipping a line that names no session"));
        }
    }
    Ok(Some(names))
}

/// The key of the session holding `thread`, checked against the session file.
pub fn session_for_thread(thread: &str) -> Result<Option<String>, PluginError> {
    ensure_built()?;
    let Some(names) = names_in(&thread_path(thread)?)? else { return Ok(None) };
    for name in names {
        if let Some(summary) = summary_of(&name)?
            && summary.agent_thread_id.as_deref() == Some(thread)
            && key_matches(&name, &summary.key)
        {
            return Ok(Some(summary.key));
        }
    }
    Ok(None)
}

/// Whether file `name` is where `key` belongs (a hashed name holds its key inside).
fn key_matches(name: &str, key: &str) -> bool {
    key::file_name(key).is_ok_and(|n| n == name)
}

/// Where a session sits in a listing: most recently used first, then by key.
pub fn position(summary: &SummaryView) -> (u64, &str) {
    (summary.last_accessed_ms, &summary.key)
}

/// The windows of the recency index, oldest first: (group, window) paths.
fn windows(newest_first: bool, bound: Option<u64>) -> Result<Vec<String>, PluginError> {
    let mut groups = hex_entries(RECENT, 6, EntryKind::Directory)?;
    groups.sort_unstable();
    if newest_first {
        groups.reverse();
    }
    let mut out = Vec::new();
    for group in groups {
        if let Some(ms) = bound {
            let limit = ms >> GROUP_BITS;
            if (newest_first && group > limit) || (!newest_first && group < limit) {
                continue;
            }
        }
        let dir = format!("{RECENT}/{group:06x}");
        let mut windows = hex_entries(&dir, 8, EntryKind::File)?;
        windows.sort_unstable();
        if newest_first {
            windows.reverse();
        }
        for window in windows {
            if let Some(ms) = bound {
                let limit = ms >> WINDOW_BITS;
                if (newest_first && window > limit) || (!newest_first && window < limit) {
                    continue;
                }
            }
            out.push(format!("{dir}/{window:08x}"));
        }
    }
    Ok(out)
}

/// Entries of `dir` whose names are `width` lower-case hex digits, as numbers.
fn hex_entries(dir: &str, width: usize, kind: EntryKind) -> Result<Vec<u64>, PluginError> {
    let entries = match store_fs::list_dir(dir) {
        Ok(entries) => entries,
        Err(PluginError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .into_iter()
        .filter(|e| e.kind == kind && e.name.len() == width && e.name.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter_map(|e| u64::from_str_radix(&e.name, 16).ok())
        .collect())
}

/// The sessions whose last use falls in `window` (they are listed there and
/// not in a later window), sorted by `newest_first`. A window that lists no
/// such session and is not the current one is removed.
fn live_in(window: &str, newest_first: bool, now_ms: u64) -> Result<Vec<SummaryView>, PluginError> {
    let names = names_in(window)?.unwrap_or_default();
    let mut live = Vec::new();
    for name in names {
        if let Some(summary) = summary_of(&name)?
            && window_path(summary.last_accessed_ms) == window
            && key_matches(&name, &summary.key)
        {
            live.push(summary);
        }
    }
    if live.is_empty() && window < window_path(now_ms.saturating_sub(2 << WINDOW_BITS)).as_str() {
        remove_window(window)?;
    }
    live.sort_by(|a, b| {
        let order = a.last_accessed_ms.cmp(&b.last_accessed_ms);
        let order = if newest_first { order.reverse() } else { order };
        order.then_with(|| a.key.cmp(&b.key))
    });
    Ok(live)
}

/// Drop a window with no live session, and its group once empty; not while
/// a rebuild may be appending to it.
fn remove_window(window: &str) -> Result<(), PluginError> {
    let _rebuild = match crate::lock(REBUILD_LOCK, 0) {
        Ok(lock) => lock,
        Err(PluginError::Busy(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    match store_fs::remove_file(window) {
        Ok(()) | Err(PluginError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    if let Some((group, _)) = window.rsplit_once('/') {
        // Fails while the group still holds a window; that is fine.
        let _ = store_fs::remove_dir(group);
    }
    Ok(())
}

/// Walk the sessions most recently used first, starting after `after`,
/// calling `visit` until it returns false or `budget` sessions were seen;
/// returns the position of the last session seen, and whether the walk
/// stopped before the end.
pub fn walk_recent(
    after: Option<(u64, &str)>,
    budget: usize,
    now_ms: u64,
    mut visit: impl FnMut(&SummaryView) -> bool,
) -> Result<(Option<(u64, String)>, bool), PluginError> {
    ensure_built()?;
    let mut seen = 0;
    let mut last = None;
    for window in windows(true, after.map(|(ms, _)| ms))? {
        for summary in live_in(&window, true, now_ms)? {
            let (ms, key) = position(&summary);
            if after.is_some_and(|cursor| !store_codec::cursor::is_after((ms, key), cursor)) {
                continue;
            }
            seen += 1;
            last = Some((ms, key.to_string()));
            if !visit(&summary) || seen >= budget {
                return Ok((last, true));
            }
        }
    }
    Ok((last, false))
}

/// At most `limit` least recently used sessions, least recent first.
pub fn least_recent(limit: usize, now_ms: u64) -> Result<Vec<SummaryView>, PluginError> {
    ensure_built()?;
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for window in windows(false, None)? {
        out.extend(live_in(&window, false, now_ms)?);
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}
