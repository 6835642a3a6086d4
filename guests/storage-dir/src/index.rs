//! The indexes that keep a turn's cost independent of the store's size:
//! which session holds an agent thread, which sessions were used when, and
//! how many there are. Session files stay the truth; every index entry is a
//! hint that is checked against the session it names before it is believed.
//!
//! ```text
//! index/ready                 "2": written after a full build; absent or older: build first
//! index/threads/<bb>          appended lines "<thread> <name>": the session in file <name> holds
//!                             <thread> (as a file name); <bb>: two hex digits of its hash
//! index/recent/<hi>/<lo>      appended lines "<name> <ms>": a session used at ms, in that 65 s
//!                             window; "<name> -<ms>": that session was deleted
//! index/count                 "=N" then one "+" or "-" per session created or deleted
//! ```
//!
//! A save appends its index lines BEFORE it writes the session, so a process
//! killed in between leaves an extra line (checked and skipped), never a
//! missing one. A deleted `index/` (no `ready`) is rebuilt from the session
//! files before it is used; lines that do not decode are skipped.
//!
//! The thread index is 256 append-only files, all created with the first
//! one: a turn that starts a thread appends a line to a file that exists,
//! instead of creating a file per thread (on ext4 without a journal a
//! creation costs three to five appends, and more after many deletions). A
//! lookup reads one of them, and skips the lines of threads their sessions
//! have since moved on from. A file a lookup finds longer than 64 KiB and
//! twice its length after its last compaction is compacted: rewritten with
//! only the lines whose session still holds their thread, under every save
//! lock (a save appends its line holding its session's), so what it drops
//! is bounded by what it keeps and no line a save adds meanwhile is lost.
//! Layout 1 kept one file per thread; a store indexed that way is rebuilt
//! when first looked up.

use std::collections::{BTreeMap, BTreeSet};

use store_codec::key;
use store_codec::summary::SummaryView;
use warden_plugin::storage::log::{Level, log};
use warden_plugin::storage::{EntryKind, PluginError, store_fs};

use crate::{SESSIONS, path, read_summary};

const READY: &str = "index/ready";
/// What `ready` holds: the layout the index was built in.
const LAYOUT: &[u8] = b"2\n";
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

/// Threads' index files: two lower-case hex digits.
const BUCKETS: u32 = 256;
/// A thread index file a lookup finds longer than this, and than twice its
/// length after its last compaction, is compacted.
const COMPACT_FLOOR: usize = 64 << 10;
/// The first line of a compacted thread index file, before its length then
/// (no thread is written as `#`: they are written as file names).
const COMPACTED: &str = "# compacted";
/// How long a compaction waits for each save lock before it gives up (the lookup goes on).
const COMPACT_LOCK_WAIT_MS: u32 = 1_000;

/// `thread` as it is written in the index: a file name (no space, no newline).
fn thread_name(thread: &str) -> Result<String, PluginError> {
    key::file_name(thread).map_err(PluginError::Invalid)
}

/// The index file holding `thread_name`'s lines: a stable hash (FNV-1a) picks one of [`BUCKETS`].
fn bucket_path(thread_name: &str) -> String {
    let hash = thread_name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("{THREADS}/{:02x}", hash % BUCKETS)
}

/// The line saying that the session in file `name` holds `thread`, and the
/// thread index file it goes in.
fn thread_line(thread: &str, name: &str) -> Result<(String, String), PluginError> {
    let thread_name = thread_name(thread)?;
    let bucket = bucket_path(&thread_name);
    Ok((bucket, format!("{thread_name} {name}")))
}

/// Say that the session in file `name` holds `thread`, creating every
/// thread index file first if there are none.
fn append_thread(thread: &str, name: &str) -> Result<(), PluginError> {
    let (bucket, line) = thread_line(thread, name)?;
    let line = format!("{line}\n").into_bytes();
    match store_fs::append(&bucket, &line) {
        Err(PluginError::NotFound(_)) => {
            create_thread_files()?;
            store_fs::append(&bucket, &line).map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Create the thread index's directory and those of its files that are missing.
fn create_thread_files() -> Result<(), PluginError> {
    store_fs::create_dir(THREADS)?;
    for b in 0..BUCKETS {
        store_fs::append(&format!("{THREADS}/{b:02x}"), b"")?;
    }
    Ok(())
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
        append_thread(thread, name)?;
    }
    let _ = old;
    append_line(&window_path(new_last_used), &format!("{name} {new_last_used}"))?;
    Ok(())
}

/// Record that the session in file `name`, last used at `last_used`, was
/// deleted: walks then skip its lines without reading its (absent) file.
pub fn deleted(name: &str, last_used: u64) -> Result<(), PluginError> {
    append_line(&window_path(last_used), &format!("{name} -{last_used}"))?;
    counted(-1)
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
    if is_built()? {
        return Ok(());
    }
    let lock = crate::lock(REBUILD_LOCK, 60_000)?;
    // Calls that found no index at once wait here; the first one builds it.
    if is_built()? {
        return Ok(());
    }
    rebuild_locked(lock).map(|_| ())
}

/// Whether the index was built, in this layout.
fn is_built() -> Result<bool, PluginError> {
    match store_fs::read(READY) {
        Ok(layout) => Ok(layout == LAYOUT),
        Err(PluginError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Mark the index unbuilt: the next call that needs it rebuilds it first.
pub fn invalidate() -> Result<(), PluginError> {
    match store_fs::remove_file(READY) {
        Ok(()) | Err(PluginError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Index every session file again. Lines are only added, so saves running
/// meanwhile lose nothing (a thread line already there is not added again);
/// the count is recomputed.
pub fn rebuild() -> Result<u64, PluginError> {
    rebuild_locked(crate::lock(REBUILD_LOCK, 60_000)?)
}

/// [`rebuild`], holding the rebuild lock `_lock`.
fn rebuild_locked(_lock: store_fs::Lock) -> Result<u64, PluginError> {
    remove_layout_1_threads()?;
    create_thread_files()?;
    let entries = match store_fs::list_dir(SESSIONS) {
        Ok(entries) => entries,
        Err(PluginError::NotFound(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut indexed = 0u64;
    // The lines each thread index file holds now, read once it is first needed.
    let mut present: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in entries {
        if entry.kind != EntryKind::File || key::decode(&entry.name).is_none() {
            continue;
        }
        let Some(summary) = summary_of(&entry.name)? else { continue };
        if let Some(thread) = &summary.agent_thread_id {
            let (bucket, line) = thread_line(thread, &entry.name)?;
            let lines = match present.entry(bucket) {
                std::collections::btree_map::Entry::Occupied(held) => held.into_mut(),
                std::collections::btree_map::Entry::Vacant(unread) => {
                    let lines = match store_fs::read(unread.key()) {
                        Ok(bytes) => String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect(),
                        Err(PluginError::NotFound(_)) => BTreeSet::new(),
                        Err(e) => return Err(e),
                    };
                    unread.insert(lines)
                }
            };
            if !lines.contains(&line) {
                append_thread(thread, &entry.name)?;
            }
        }
        append_line(
            &window_path(summary.last_accessed_ms),
            &format!("{} {}", entry.name, summary.last_accessed_ms),
        )?;
        indexed += 1;
    }
    store_fs::create_dir("index")?;
    let _count = crate::lock(COUNT_LOCK, crate::LOCK_WAIT_MS)?;
    store_fs::write_atomic(COUNT, format!("={indexed}").as_bytes())?;
    store_fs::write_atomic(READY, LAYOUT)?;
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

/// Remove the thread index files of layout 1 (one per thread): every file
/// in the threads directory but the buckets.
fn remove_layout_1_threads() -> Result<(), PluginError> {
    let entries = match store_fs::list_dir(THREADS) {
        Ok(entries) => entries,
        Err(PluginError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let is_bucket =
        |name: &str| name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    for entry in entries.iter().filter(|e| e.kind == EntryKind::File && !is_bucket(&e.name)) {
        match store_fs::remove_file(&format!("{THREADS}/{}", entry.name)) {
            Ok(()) | Err(PluginError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The session file names that lines of `thread`'s index file give it, last
/// line first, each once; its lines not naming a session file are skipped
/// (other threads' lines are only compared, never decoded).
fn sessions_said_to_hold(thread: &str) -> Result<Vec<String>, PluginError> {
    let thread_name = thread_name(thread)?;
    let bucket = bucket_path(&thread_name);
    let bytes = match store_fs::read(&bucket) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut names: Vec<String> = Vec::new();
    let mut skipped = false;
    for line in text.split('\n').rev().filter(|l| !l.is_empty()) {
        match line.split_once(' ') {
            Some((t, _)) if t != thread_name => {}
            Some((_, name)) if key::decode(name).is_some() => {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
            _ => skipped = true,
        }
    }
    if skipped {
        log(Level::Warn, &format!("{bucket}: skipping lines that name no thread and session"));
    }
    if bytes.len() > COMPACT_FLOOR.max(compacted_length(&text).saturating_mul(2))
        && let Err(e) = compact(&bucket)
    {
        log(Level::Warn, &format!("{bucket} was not compacted: {e:?}"));
    }
    Ok(names)
}

/// The length a thread index file had after its last compaction (0: never compacted).
fn compacted_length(text: &str) -> usize {
    text.lines()
        .next()
        .and_then(|first| first.strip_prefix(COMPACTED))
        .and_then(|length| length.trim().parse().ok())
        .unwrap_or(0)
}

/// Rewrite thread index file `bucket` with only its lines whose session
/// still holds their thread (each once, in order), holding every save lock
/// so that no line is appended meanwhile; skipped while a rebuild appends.
fn compact(bucket: &str) -> Result<(), PluginError> {
    let _rebuild = match crate::lock(REBUILD_LOCK, 0) {
        Ok(lock) => lock,
        Err(PluginError::Busy(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let _saves = crate::lock_every_stripe(COMPACT_LOCK_WAIT_MS)?;
    let bytes = match store_fs::read(bucket) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    // Each session's current thread, as the index writes it, read once
    // (`None`: unknown, the session could not be read).
    let mut holds: BTreeMap<&str, Option<Option<String>>> = BTreeMap::new();
    let mut kept: Vec<&str> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut lines = 0;
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        lines += 1;
        let Some((thread, name)) = line.split_once(' ') else { continue };
        if thread == "#" || key::decode(name).is_none() || !seen.insert(line) {
            continue;
        }
        if !holds.contains_key(name) {
            // A session that cannot be read now keeps its lines: dropping a
            // line is only right when its session is known to hold another thread.
            let current = match summary_of(name) {
                Ok(summary) => Some(
                    summary
                        .filter(|summary| key_matches(name, &summary.key))
                        .and_then(|summary| summary.agent_thread_id)
                        .and_then(|t| thread_name(&t).ok()),
                ),
                Err(e) => {
                    log(
                        Level::Warn,
                        &format!("{bucket}: keeping the lines of {name}, unreadable now: {e:?}"),
                    );
                    None
                }
            };
            holds.insert(name, current);
        }
        if holds[name].as_ref().is_none_or(|current| current.as_deref() == Some(thread)) {
            kept.push(line);
        }
    }
    let body: String = kept.iter().map(|line| format!("{line}\n")).collect();
    store_fs::write_atomic(bucket, format!("{COMPACTED} {}\n{body}", body.len()).as_bytes())?;
    log(Level::Info, &format!("compacted {bucket}: kept {} of {lines} lines", kept.len()));
    Ok(())
}

/// The key of the session holding `thread`, checked against the session file.
pub fn session_for_thread(thread: &str) -> Result<Option<String>, PluginError> {
    ensure_built()?;
    for name in sessions_said_to_hold(thread)? {
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

/// Visit the windows of the recency index in order (newest or oldest
/// first), skipping those beyond `bound` (a time the walk starts from),
/// until `visit` returns false. A group's windows are listed only when the
/// walk reaches it, so a walk that stops early reads few directories.
fn each_window(
    newest_first: bool,
    bound: Option<u64>,
    mut visit: impl FnMut(&str) -> Result<bool, PluginError>,
) -> Result<(), PluginError> {
    let beyond = |value: u64, limit: Option<u64>| {
        limit.is_some_and(|limit| if newest_first { value > limit } else { value < limit })
    };
    let mut groups = hex_entries(RECENT, 6, EntryKind::Directory)?;
    groups.sort_unstable();
    if newest_first {
        groups.reverse();
    }
    for group in groups {
        if beyond(group, bound.map(|ms| ms >> GROUP_BITS)) {
            continue;
        }
        let dir = format!("{RECENT}/{group:06x}");
        let mut windows = hex_entries(&dir, 8, EntryKind::File)?;
        windows.sort_unstable();
        if newest_first {
            windows.reverse();
        }
        for window in windows {
            if beyond(window, bound.map(|ms| ms >> WINDOW_BITS)) {
                continue;
            }
            if !visit(&format!("{dir}/{window:08x}"))? {
                return Ok(());
            }
        }
    }
    Ok(())
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

/// The sessions a window's lines name, each at the latest time a line gives
/// it, in walk order: newest first (then by key), or oldest first.
fn lines_in(window: &str, newest_first: bool) -> Result<Vec<(u64, String)>, PluginError> {
    let bytes = match store_fs::read(window) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut latest: BTreeMap<String, u64> = BTreeMap::new();
    let mut deleted: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&bytes).split('\n').filter(|l| !l.is_empty()) {
        let parsed = line.split_once(' ').and_then(|(name, ms)| match ms.strip_prefix('-') {
            Some(ms) => Some((name, ms.parse::<u64>().ok()?, &mut deleted)),
            None => Some((name, ms.parse::<u64>().ok()?, &mut latest)),
        });
        match parsed {
            Some((name, ms, into)) if key::decode(name).is_some() => {
                let slot = into.entry(name.to_string()).or_insert(ms);
                *slot = (*slot).max(ms);
            }
            _ => log(Level::Warn, &format!("{window}: skipping a line that names no session")),
        }
    }
    let mut lines: Vec<(u64, String)> = latest
        .into_iter()
        .filter(|(name, ms)| deleted.get(name).is_none_or(|gone| gone < ms))
        .map(|(name, ms)| (ms, name))
        .collect();
    sort(&mut lines, newest_first);
    Ok(lines)
}

fn sort(entries: &mut [(u64, String)], newest_first: bool) {
    entries.sort_by(|a, b| {
        let order = if newest_first { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
        order.then_with(|| a.1.cmp(&b.1))
    });
}

/// Visit the live sessions of `window` in walk order until `visit` returns
/// false; returns whether the walk should go on. A line is checked against
/// its session only when the walk reaches it: a session used later lives in
/// a later window (skipped here), and a save killed after its line was
/// written leaves the session at an earlier time, where it is put back in
/// order. Newest first this order is exact (a session's time is never above
/// its line's); oldest first, such a session comes a little late. A window
/// walked to its end with no live session, other than the current ones, is removed.
fn walk_window(
    window: &str,
    newest_first: bool,
    now_ms: u64,
    visit: &mut dyn FnMut(&SummaryView) -> bool,
) -> Result<bool, PluginError> {
    // A stack: the next session in walk order is last.
    let mut pending = lines_in(window, newest_first)?;
    pending.reverse();
    let mut live = 0;
    while let Some((ms, name)) = pending.pop() {
        let Some(summary) = summary_of(&name)? else { continue };
        if window_path(summary.last_accessed_ms) != window || !key_matches(&name, &summary.key) {
            continue;
        }
        if summary.last_accessed_ms != ms && newest_first {
            pending.push((summary.last_accessed_ms, name));
            sort(&mut pending, newest_first);
            pending.reverse();
            continue;
        }
        live += 1;
        if !visit(&summary) {
            return Ok(false);
        }
    }
    if live == 0 && window < window_path(now_ms.saturating_sub(2 << WINDOW_BITS)).as_str() {
        remove_window(window)?;
    }
    Ok(true)
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
    let mut stopped = false;
    each_window(true, after.map(|(ms, _)| ms), |window| {
        walk_window(window, true, now_ms, &mut |summary| {
            let (ms, key) = position(summary);
            if after.is_some_and(|cursor| !store_codec::cursor::is_after((ms, key), cursor)) {
                return true;
            }
            seen += 1;
            last = Some((ms, key.to_string()));
            stopped = !visit(summary) || seen >= budget;
            !stopped
        })
    })?;
    Ok((last, stopped))
}

/// At most `limit` least recently used sessions, least recent first.
pub fn least_recent(limit: usize, now_ms: u64) -> Result<Vec<SummaryView>, PluginError> {
    ensure_built()?;
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    each_window(false, None, |window| {
        walk_window(window, false, now_ms, &mut |summary| {
            out.push(summary.clone());
            out.len() < limit
        })
    })?;
    Ok(out)
}
