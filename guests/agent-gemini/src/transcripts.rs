//! Finding and reading Gemini CLI's transcripts through the read-only view
//! of its home the operator granted (its `tmp` directory).

use gemini_protocol::transcript::{self, CHATS, PROJECT_ROOT, ROOT};

use warden_plugin::agent::log::{Level, log};
use warden_plugin::agent::store_fs_readonly as fs;
use warden_plugin::agent::{EntryKind, PluginError, Session, Transcript, Turn, rehydrated};

/// The longest transcript header read to tell whose transcript a file is.
const HEADER_BYTES: u32 = 4096;

/// Rebuild a session from the transcript of `session_id`.
pub fn rehydrate(session_id: &str) -> Result<Session, PluginError> {
    let Some((project, path)) = find(session_id)? else {
        return Err(PluginError::NotFound(format!(
            "no transcript for Gemini CLI session {session_id}: looked for {ROOT}/*/{CHATS}/session-*-{}.jsonl \
             in the Gemini CLI home",
            &session_id[..8]
        )));
    };
    let text = String::from_utf8(fs::read(&path)?).map_err(|_| corrupt(&path, "it is not UTF-8"))?;
    let found = transcript::parse(&text, session_id).map_err(|e| corrupt(&path, &e))?;
    let cwd = fs::read(&format!("{ROOT}/{project}/{PROJECT_ROOT}"))
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(|root| root.trim().to_string())
        .filter(|root| root.starts_with('/'));
    let turns = found
        .turns
        .into_iter()
        .map(|t| Turn { prompt: t.prompt, response: t.response, timestamp_ms: t.timestamp_ms })
        .collect();
    let transcript = Transcript { created_ms: found.created_ms, turns, model: found.model, cwd };
    Ok(rehydrated(session_id, transcript, &path))
}

/// The transcript of `session_id`: its project directory and its path
/// relative to the Gemini CLI home. Only each candidate's header is read;
/// if several files hold the session (Gemini CLI keeps one, but a copied or
/// restored home may hold more), the one written last is the transcript.
pub fn find(session_id: &str) -> Result<Option<(String, String)>, PluginError> {
    transcript::check_session_id(session_id).map_err(PluginError::Invalid)?;
    let mut newest: Option<(u64, String, String)> = None;
    for project in dirs(ROOT)? {
        let chats = format!("{ROOT}/{project}/{CHATS}");
        let names = match fs::list_dir(&chats) {
            Ok(entries) => entries.into_iter().filter(|e| e.kind == EntryKind::File).map(|e| e.name),
            Err(PluginError::NotFound(_)) => continue,
            Err(PluginError::Denied(reason)) => {
                log(Level::Warn, &format!("skipping {chats}: {reason}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        for name in names.filter(|n| transcript::may_hold(n, session_id)) {
            let path = format!("{chats}/{name}");
            let start = fs::read_range(&path, 0, HEADER_BYTES)?;
            let first_line = start.split(|b| *b == b'\n').next().unwrap_or_default();
            // Another session whose id starts alike has another header.
            if std::str::from_utf8(first_line).is_ok_and(|line| transcript::header(line, session_id).is_ok())
            {
                let modified = fs::metadata(&path)?.map_or(0, |m| m.modified_ns);
                if newest.as_ref().is_none_or(|(seen, _, _)| modified > *seen) {
                    newest = Some((modified, project.clone(), path));
                }
            }
        }
    }
    Ok(newest.map(|(_, project, path)| (project, path)))
}

/// The directories in `path`; none when it is missing, skipped with a log line when refused.
fn dirs(path: &str) -> Result<Vec<String>, PluginError> {
    match fs::list_dir(path) {
        Ok(entries) => {
            Ok(entries.into_iter().filter(|e| e.kind == EntryKind::Directory).map(|e| e.name).collect())
        }
        Err(PluginError::NotFound(_)) => Ok(Vec::new()),
        Err(PluginError::Denied(reason)) => {
            log(Level::Warn, &format!("cannot look in {path}/: {reason}"));
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

fn corrupt(path: &str, problem: &str) -> PluginError {
    PluginError::Corrupt(format!("the Gemini CLI transcript {path} cannot be read: {problem}"))
}
