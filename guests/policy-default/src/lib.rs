//! Warden's default session policy.
//!
//! Settings (all optional): `idle-ttl-secs` (default 86400: a session unused
//! for a day expires), `max-sessions` (default 100: creating one more evicts
//! the least recently used), `max-id-bytes` (default 256), and per principal:
//! `max-running-turns-per-principal` (default 32), `max-sessions-per-principal`
//! (default: none of its own), `task-ttl-secs` (default 3600: how long a
//! finished task's result is kept), each overridden for one principal in
//! `principals.<name>` (`max-running-turns`, `max-sessions`, `task-ttl-secs`).

use std::collections::BTreeMap;

use warden_plugin::policy::{Guest, PluginError, SessionSummary, admission, principal_limits};

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct Settings {
    idle_ttl_secs: u64,
    max_sessions: u32,
    max_id_bytes: u32,
    max_running_turns_per_principal: u32,
    max_sessions_per_principal: Option<u64>,
    task_ttl_secs: u64,
    principals: BTreeMap<String, PrincipalSettings>,
}

/// One principal's own limits; what is not set comes from the settings above.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct PrincipalSettings {
    max_running_turns: Option<u32>,
    max_sessions: Option<u64>,
    task_ttl_secs: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            idle_ttl_secs: 24 * 60 * 60,
            max_sessions: 100,
            max_id_bytes: 256,
            max_running_turns_per_principal: 32,
            max_sessions_per_principal: None,
            task_ttl_secs: 60 * 60,
            principals: BTreeMap::new(),
        }
    }
}

fn settings() -> Result<Settings, PluginError> {
    serde_json::from_str(&warden_plugin::policy::config::settings())
        .map_err(|e| PluginError::Invalid(format!("policy-default settings: {e}")))
}

struct Policy;

impl Guest for Policy {
    fn validate_id(id: String) -> Result<(), PluginError> {
        let max = settings()?.max_id_bytes as usize;
        if id.is_empty() {
            return Err(PluginError::Invalid("a session id may not be empty".into()));
        }
        if id.len() > max {
            return Err(PluginError::Invalid(format!(
                "session id is {} bytes long; the limit is {max} (setting max-id-bytes)",
                id.len()
            )));
        }
        if let Some(c) = id.chars().find(|c| c.is_control()) {
            return Err(PluginError::Invalid(format!(
                "session id contains the control character {c:?}; use printable characters"
            )));
        }
        Ok(())
    }

    fn admit(id: String, existing: Vec<SessionSummary>, _now_ms: u64) -> Result<Vec<String>, PluginError> {
        let max = max_sessions()? as usize;
        let mut others: Vec<&SessionSummary> = existing.iter().filter(|s| s.id != id).collect();
        let excess = (others.len() + 1).saturating_sub(max);
        others.sort_by(|a, b| a.last_accessed_ms.cmp(&b.last_accessed_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(others.into_iter().take(excess).map(|s| s.id.clone()).collect())
    }

    fn expired(sessions: Vec<SessionSummary>, now_ms: u64) -> Vec<String> {
        let ttl_ms = match settings() {
            Ok(s) => s.idle_ttl_secs.saturating_mul(1000),
            Err(e) => {
                warden_plugin::policy::log::log(
                    warden_plugin::policy::log::Level::Error,
                    &format!("{e:?}; expiring nothing"),
                );
                return Vec::new();
            }
        };
        sessions
            .into_iter()
            .filter(|s| now_ms.saturating_sub(s.last_accessed_ms) > ttl_ms)
            .map(|s| s.id)
            .collect()
    }
}

/// Admission from the count: evict the least recently used sessions above
/// `max-sessions`. The host offers at most 64 per new session, so a store far
/// above a lowered cap shrinks over the next admissions.
impl admission::Guest for Policy {
    fn candidates(_id: String, stored: u64, _now_ms: u64) -> Result<u32, PluginError> {
        let excess = stored.saturating_add(1).saturating_sub(u64::from(max_sessions()?));
        Ok(excess.min(u64::from(u32::MAX)) as u32)
    }

    fn admit(
        id: String,
        stored: u64,
        least_recent: Vec<SessionSummary>,
        _now_ms: u64,
    ) -> Result<Vec<String>, PluginError> {
        let excess = stored.saturating_add(1).saturating_sub(u64::from(max_sessions()?));
        Ok(least_recent.into_iter().filter(|s| s.id != id).take(excess as usize).map(|s| s.id).collect())
    }
}

fn max_sessions() -> Result<u32, PluginError> {
    match settings()?.max_sessions {
        0 => Err(PluginError::Invalid("max-sessions is 0: no session can be created".into())),
        max => Ok(max),
    }
}

impl principal_limits::Guest for Policy {
    fn limits_for(principal: String) -> principal_limits::Limits {
        let settings = match settings() {
            Ok(settings) => settings,
            // Settings that do not parse were reported by every other call; the host's defaults hold.
            Err(_) => return warden_plugin::policy::default_limits(),
        };
        let own = settings.principals.get(&principal);
        let own = own.unwrap_or(&PrincipalSettings {
            max_running_turns: None,
            max_sessions: None,
            task_ttl_secs: None,
        });
        principal_limits::Limits {
            max_running_turns: own.max_running_turns.unwrap_or(settings.max_running_turns_per_principal),
            max_sessions: own.max_sessions.or(settings.max_sessions_per_principal),
            task_ttl_ms: own.task_ttl_secs.unwrap_or(settings.task_ttl_secs).saturating_mul(1000),
        }
    }
}

warden_plugin::policy::export!(Policy, manifest = "warden.toml");
