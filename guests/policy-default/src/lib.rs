//! Warden's default session policy.
//!
//! Settings (all optional): `idle-ttl-secs` (default 86400: a session unused
//! for a day expires), `max-sessions` (default 100: creating one more evicts
//! the least recently used), `max-id-bytes` (default 256).

use warden_plugin::policy::{Guest, PluginError, SessionSummary};

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct Settings {
    idle_ttl_secs: u64,
    max_sessions: u32,
    max_id_bytes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { idle_ttl_secs: 24 * 60 * 60, max_sessions: 100, max_id_bytes: 256 }
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
        let max = settings()?.max_sessions as usize;
        if max == 0 {
            return Err(PluginError::Invalid("max-sessions is 0: no session can be created".into()));
        }
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

warden_plugin::policy::export!(Policy, manifest = "warden.toml");
