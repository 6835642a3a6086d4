//! A storage-backend plugin written against the frozen contract 0.1.1
//! (`wit/released/0.1.1`), before `storage-catalog`: the host must keep
//! loading it and page its full listing itself. It remembers a session's
//! key, times and thread only (one line each, in a file named by the key's
//! hex under `sessions/`), which is all the listing tests need.

wit_bindgen::generate!({ world: "storage-backend", path: "../../../wit/released/0.1.1" });

use exports::warden::plugin::storage::{Guest, MigrateOptions, MigrateReport};
use warden::plugin::store_fs;
use warden::plugin::types::{PluginError, Session, SessionSummary};

#[unsafe(link_section = "warden-manifest")]
#[used]
static MANIFEST: [u8; include_bytes!("../warden.toml").len()] = *include_bytes!("../warden.toml");

struct Frozen;

const DIR: &str = "sessions";

fn file(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{DIR}/{hex}")
}

fn read(path: &str) -> Result<Option<Session>, PluginError> {
    let bytes = match store_fs::read(path) {
        Ok(bytes) => bytes,
        Err(PluginError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes).map_err(|_| PluginError::Corrupt(path.into()))?;
    let mut lines = text.lines();
    let mut next = || lines.next().ok_or_else(|| PluginError::Corrupt(path.into()));
    let (id, created, last, revision, thread) = (next()?, next()?, next()?, next()?, next()?);
    let number = |s: &str| s.parse::<u64>().map_err(|_| PluginError::Corrupt(path.into()));
    Ok(Some(Session {
        id: id.into(),
        created_ms: number(created)?,
        last_accessed_ms: number(last)?,
        turns: Vec::new(),
        agent_thread_id: (!thread.is_empty()).then(|| thread.into()),
        model: None,
        reasoning_effort: None,
        cwd: None,
        sandbox: None,
        revision: number(revision)?,
        extra_json: "{}".into(),
    }))
}

impl Guest for Frozen {
    fn load(id: String) -> Result<Session, PluginError> {
        read(&file(&id))?.ok_or_else(|| PluginError::NotFound(format!("no session {id:?}")))
    }

    fn save(session: Session, expected_revision: Option<u64>) -> Result<u64, PluginError> {
        let current = read(&file(&session.id))?.map_or(0, |s| s.revision);
        if expected_revision.is_some_and(|expected| expected != current) {
            return Err(PluginError::Conflict(format!("{:?} is at revision {current}", session.id)));
        }
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n",
            session.id,
            session.created_ms,
            session.last_accessed_ms,
            current + 1,
            session.agent_thread_id.unwrap_or_default()
        );
        store_fs::create_dir(DIR)?;
        store_fs::write_atomic(&file(&session.id), text.as_bytes())?;
        Ok(current + 1)
    }

    fn delete(id: String) -> Result<bool, PluginError> {
        match store_fs::remove_file(&file(&id)) {
            Ok(()) => Ok(true),
            Err(PluginError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list() -> Result<Vec<SessionSummary>, PluginError> {
        let mut out = Vec::new();
        let entries = match store_fs::list_dir(DIR) {
            Ok(entries) => entries,
            Err(PluginError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            if let Some(s) = read(&format!("{DIR}/{}", entry.name))? {
                out.push(SessionSummary {
                    id: s.id,
                    created_ms: s.created_ms,
                    last_accessed_ms: s.last_accessed_ms,
                    turn_count: 0,
                    agent_thread_id: s.agent_thread_id,
                    model: None,
                    cwd: None,
                });
            }
        }
        Ok(out)
    }

    fn find_by_thread(thread_id: String) -> Result<Option<Session>, PluginError> {
        let found = Self::list()?.into_iter().find(|s| s.agent_thread_id.as_deref() == Some(&thread_id));
        found.map(|s| Self::load(s.id)).transpose()
    }

    fn migrate(_options: MigrateOptions) -> Result<MigrateReport, PluginError> {
        Err(PluginError::Unsupported("test plugin".into()))
    }
}

export!(Frozen);
