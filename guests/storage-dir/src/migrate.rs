//! Importing a legacy `sessions.json` into `sessions.d/`.
//!
//! A fresh import writes every session into `sessions.d.migrating/` and
//! renames it into place in one step, so a crash never leaves a half-filled
//! `sessions.d/`. Into an existing `sessions.d/`, each entry is written only
//! if the store has no newer one. The legacy file is then renamed to
//! `<file>.bak.<epoch-ms>`, so a second run finds nothing to do. A file that
//! does not parse, is empty, or has no valid entry is left untouched and
//! nothing is created.

use store_codec::legacy;
use store_codec::record::StoredSession;

use crate::{SESSIONS, file, file_name, lock_for};
use warden_plugin::storage::{EntryKind, MigrateOptions, MigrateReport, PluginError, store_fs};

const STAGING: &str = "sessions.d.migrating";

pub fn run(options: MigrateOptions) -> Result<MigrateReport, PluginError> {
    let source = options.source;
    let untouched = "it was left untouched and nothing was created";
    match store_fs::metadata(&source)? {
        None => {
            return Ok(MigrateReport {
                imported: 0,
                kept_existing: 0,
                superseded: 0,
                backup: None,
                notes: vec![format!("{source} does not exist; nothing to migrate")],
            });
        }
        Some(m) if m.kind == EntryKind::Symlink => {
            return Err(PluginError::Denied(format!(
                "{source} is a symbolic link; {untouched}. Point Warden at the real file"
            )));
        }
        Some(m) if m.kind != EntryKind::File => {
            return Err(PluginError::Invalid(format!("{source} is not a regular file; {untouched}")));
        }
        Some(_) => {}
    }
    let bytes = store_fs::read(&source)?;
    let entries = legacy::parse_entries(&bytes)
        .map_err(|problem| PluginError::Invalid(format!("{source}: {problem}; {untouched}")))?;
    let total = entries.len();
    let mut notes = Vec::new();
    let mut sessions = Vec::new();
    for (key, value) in entries {
        match legacy::to_session(&key, value)
            .and_then(|s| file_name(&s.key).map(|_| s).map_err(|e| format!("{e:?}")))
        {
            Ok(session) => sessions.push(session),
            Err(problem) => notes.push(format!("skipped an entry: {problem} (it stays in the backup)")),
        }
    }
    if sessions.is_empty() {
        return Err(PluginError::Invalid(format!(
            "{source} has {total} entries and none is a valid session; {untouched}"
        )));
    }
    let (winners, superseded) = legacy::newest_per_key(sessions, options.merge_case_variants);
    // Sessions are written below without their index lines; until the rebuild
    // after them, the index is marked unbuilt, so a crash in between leaves a
    // store that is indexed again on first use.
    crate::index::invalidate()?;
    let (imported, kept_existing) = if store_fs::metadata(SESSIONS)?.is_none() {
        (stage_and_swap(&winners)?, 0)
    } else {
        merge(&winners)?
    };
    crate::index::rebuild()?;
    let backup = format!("{source}.bak.{}", now_ms());
    store_fs::rename(&source, &backup)?;
    if superseded > 0 {
        notes.push(format!(
            "{superseded} older duplicate or case-variant entries were not imported (they stay in {backup})"
        ));
    }
    Ok(MigrateReport { imported, kept_existing, superseded, backup: Some(backup), notes })
}

/// Write every session into a staging directory, then rename it into place.
fn stage_and_swap(sessions: &[StoredSession]) -> Result<u32, PluginError> {
    if store_fs::metadata(STAGING)?.is_some() {
        for entry in store_fs::list_dir(STAGING)? {
            store_fs::remove_file(&format!("{STAGING}/{}", entry.name))?;
        }
        store_fs::remove_dir(STAGING)?;
    }
    store_fs::create_dir(STAGING)?;
    for session in sessions {
        let mut session = session.clone();
        session.revision = 1;
        store_fs::write_atomic(&format!("{STAGING}/{}", file_name(&session.key)?), &file::encode(&session))?;
    }
    store_fs::rename(STAGING, SESSIONS)?;
    Ok(sessions.len() as u32)
}

/// Write each session unless the store already has a newer (or equal) one.
fn merge(sessions: &[StoredSession]) -> Result<(u32, u32), PluginError> {
    let (mut imported, mut kept) = (0, 0);
    for session in sessions {
        let name = file_name(&session.key)?;
        let _lock = lock_for(&name)?;
        let existing = match file::read_stored_summary(&name) {
            Ok(existing) => existing,
            Err(PluginError::Corrupt(_)) => None,
            Err(e) => return Err(e),
        };
        match existing {
            Some((current, _)) if current.last_accessed_ms >= session.last_accessed_ms => kept += 1,
            current => {
                let mut session = session.clone();
                session.revision = current.map_or(0, |(c, _)| c.revision) + 1;
                file::write_session(&name, &session, None)?;
                imported += 1;
            }
        }
    }
    Ok((imported, kept))
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}
