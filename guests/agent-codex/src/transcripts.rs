//! Finding and reading Codex's rollout files through the read-only view of
//! CODEX_HOME the operator granted.

use codex_protocol::rollout::{self, ROOTS};

use warden_plugin::agent::log::{Level, log};
use warden_plugin::agent::store_fs_readonly as fs;
use warden_plugin::agent::{EntryKind, PluginError, Session, Transcript, Turn, rehydrated};

/// Rebuild a session from the rollout of `thread_id`.
pub fn rehydrate(thread_id: &str) -> Result<Session, PluginError> {
    rollout::check_thread_id(thread_id).map_err(PluginError::Invalid)?;
    let Some((path, compressed)) = find(thread_id)? else {
        return Err(PluginError::NotFound(format!(
            "no rollout file for thread {thread_id}: looked for rollout-*-{thread_id}.jsonl(.zst) under \
             sessions/ and archived_sessions/ in CODEX_HOME"
        )));
    };
    let bytes = fs::read(&path)?;
    let bytes = if compressed { decompress(&bytes).map_err(|e| corrupt(&path, &e))? } else { bytes };
    let text = String::from_utf8(bytes).map_err(|_| corrupt(&path, "it is not UTF-8"))?;
    let found = rollout::parse(&text, thread_id).map_err(|e| corrupt(&path, &e))?;
    let turns = found
        .turns
        .into_iter()
        .map(|t| Turn { prompt: t.prompt, response: t.response, timestamp_ms: t.timestamp_ms })
        .collect();
    let transcript = Transcript { created_ms: found.created_ms, turns, model: found.model, cwd: found.cwd };
    Ok(rehydrated(thread_id, transcript, &path))
}

/// The rollout of `thread_id` relative to CODEX_HOME, and whether it is compressed.
/// The thread's creation date is tried first, then every date.
pub fn find(thread_id: &str) -> Result<Option<(String, bool)>, PluginError> {
    rollout::check_thread_id(thread_id).map_err(PluginError::Invalid)?;
    if let Some(date) = rollout::date_dir(thread_id) {
        for root in ROOTS {
            if let Some(found) = search(&format!("{root}/{date}"), thread_id)? {
                return Ok(Some(found));
            }
        }
    }
    for root in ROOTS {
        for year in subdirs(root)? {
            for month in subdirs(&year)? {
                for day in subdirs(&month)? {
                    if let Some(found) = search(&day, thread_id)? {
                        return Ok(Some(found));
                    }
                }
            }
        }
    }
    Ok(None)
}

/// A matching rollout in one directory; a plain file wins over its `.zst`.
fn search(dir: &str, thread_id: &str) -> Result<Option<(String, bool)>, PluginError> {
    let mut best: Option<(String, bool)> = None;
    for entry in entries(dir)? {
        if entry.kind != EntryKind::File {
            continue;
        }
        match rollout::rollout_file(&entry.name, thread_id) {
            Some(false) => return Ok(Some((format!("{dir}/{}", entry.name), false))),
            Some(true) => best = Some((format!("{dir}/{}", entry.name), true)),
            None => {}
        }
    }
    Ok(best)
}

fn subdirs(dir: &str) -> Result<Vec<String>, PluginError> {
    let mut dirs: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|e| e.kind == EntryKind::Directory)
        .map(|e| format!("{dir}/{}", e.name))
        .collect();
    dirs.sort_unstable_by(|a, b| b.cmp(a));
    Ok(dirs)
}

/// A directory's entries; a missing one is empty, a refused one is skipped with a log line.
fn entries(dir: &str) -> Result<Vec<warden_plugin::agent::DirEntry>, PluginError> {
    match fs::list_dir(dir) {
        Ok(entries) => Ok(entries),
        Err(PluginError::NotFound(_)) => Ok(Vec::new()),
        Err(PluginError::Denied(reason)) => {
            log(Level::Warn, &format!("skipping {dir}: {reason}"));
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut decoder = ruzstd::decoding::StreamingDecoder::new(bytes).map_err(|e| format!("not zstd: {e}"))?;
    let mut out = Vec::new();
    decoder.read_to_end(&mut out).map_err(|e| format!("bad zstd data: {e}"))?;
    Ok(out)
}

fn corrupt(path: &str, problem: &str) -> PluginError {
    PluginError::Corrupt(format!("the rollout {path} cannot be read: {problem}"))
}
