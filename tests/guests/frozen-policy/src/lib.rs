//! A session-policy plugin written against the frozen contract 0.1.0
//! (`wit/released/0.1.0`). It must keep loading and answering on every later
//! host of the 0.1 line: ids starting with `x-` are refused, the cap is two
//! sessions (evicting the least recently used), and nothing expires.

wit_bindgen::generate!({ world: "session-policy", path: "../../../wit/released/0.1.0" });

use exports::warden::plugin::policy::Guest;
use warden::plugin::types::{PluginError, SessionSummary};

#[unsafe(link_section = "warden-manifest")]
#[used]
static MANIFEST: [u8; include_bytes!("../warden.toml").len()] = *include_bytes!("../warden.toml");

struct Frozen;

impl Guest for Frozen {
    fn validate_id(id: String) -> Result<(), PluginError> {
        if id.starts_with("x-") {
            return Err(PluginError::Invalid(format!("{id:?}: ids starting with x- are refused")));
        }
        Ok(())
    }

    fn admit(
        _id: String,
        mut existing: Vec<SessionSummary>,
        _now_ms: u64,
    ) -> Result<Vec<String>, PluginError> {
        existing.sort_by_key(|s| s.last_accessed_ms);
        let excess = (existing.len() + 1).saturating_sub(2);
        Ok(existing.into_iter().take(excess).map(|s| s.id).collect())
    }

    fn expired(_sessions: Vec<SessionSummary>, _now_ms: u64) -> Vec<String> {
        Vec::new()
    }
}

export!(Frozen);
