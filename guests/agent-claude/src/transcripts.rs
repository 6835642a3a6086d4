//! Finding and reading Claude Code's transcripts through the read-only view
//! of CLAUDE_CONFIG_DIR the operator granted (its `projects` directory).

use claude_protocol::transcript::{self, ROOT};

use warden_plugin::agent::log::{Level, log};
use warden_plugin::agent::store_fs_readonly as fs;
use warden_plugin::agent::{EntryKind, PluginError, Session, Transcript, Turn, rehydrated};

/// Rebuild a session from the transcript of `session_id`.
pub fn rehydrate(session_id: &str) -> Result<Session, PluginError> {
    let Some(path) = find(session_id, None)? else {
        return Err(PluginError::NotFound(format!(
            "no transcript for Claude Code session {session_id}: looked for {} in every directory of \
             {ROOT}/ in CLAUDE_CONFIG_DIR",
            transcript::file_name(session_id)
        )));
    };
    let text = String::from_utf8(fs::read(&path)?).map_err(|_| corrupt(&path, "it is not UTF-8"))?;
    let found = transcript::parse(&text, session_id).map_err(|e| corrupt(&path, &e))?;
    let turns = found
        .turns
        .into_iter()
        .map(|t| Turn { prompt: t.prompt, response: t.response, timestamp_ms: t.timestamp_ms })
        .collect();
    let transcript = Transcript { created_ms: found.created_ms, turns, model: found.model, cwd: found.cwd };
    Ok(rehydrated(session_id, transcript, &path))
}

/// The transcript of `session_id` relative to CLAUDE_CONFIG_DIR: first in
/// the project directory of `cwd` (when known), then in every project.
pub fn find(session_id: &str, cwd: Option<&str>) -> Result<Option<String>, PluginError> {
    transcript::check_session_id(session_id).map_err(PluginError::Invalid)?;
    let name = transcript::file_name(session_id);
    let likely = cwd.and_then(transcript::project_dir);
    let mut projects: Vec<String> = likely.iter().cloned().collect();
    projects.extend(project_dirs()?.into_iter().filter(|p| Some(p) != likely.as_ref()));
    for project in projects {
        let path = format!("{ROOT}/{project}/{name}");
        match fs::metadata(&path) {
            Ok(Some(meta)) if meta.kind == EntryKind::File => return Ok(Some(path)),
            Ok(_) | Err(PluginError::NotFound(_)) => {}
            Err(PluginError::Denied(reason)) => log(Level::Warn, &format!("skipping {path}: {reason}")),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The project directories; none when `projects/` is missing, skipped with a
/// log line when it is refused.
fn project_dirs() -> Result<Vec<String>, PluginError> {
    match fs::list_dir(ROOT) {
        Ok(entries) => {
            Ok(entries.into_iter().filter(|e| e.kind == EntryKind::Directory).map(|e| e.name).collect())
        }
        Err(PluginError::NotFound(_)) => Ok(Vec::new()),
        Err(PluginError::Denied(reason)) => {
            log(Level::Warn, &format!("cannot look in {ROOT}/: {reason}"));
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

fn corrupt(path: &str, problem: &str) -> PluginError {
    PluginError::Corrupt(format!("the Claude Code transcript {path} cannot be read: {problem}"))
}
