//! The `agent-driver` role: runs a turn with an agent program (`process`),
//! reports progress, and reads the agent's own files (`store_fs_readonly`).
//!
//! ```text
//! use warden_plugin::agent::{Guest, PluginError};
//!
//! struct Plugin;
//!
//! impl Guest for Plugin { /* the `agent` functions of wit/roles.wit */ }
//!
//! warden_plugin::agent::export!(Plugin, manifest = "warden.toml");
//! ```

/// What `wit_bindgen::generate!` makes of the `agent-driver` world; the items
/// below re-export it. The export macro is used through [`export!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "agent-driver",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "warden_plugin::agent::bindings",
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub mod lines;

pub use bindings::exports::warden::plugin::agent::{Guest, TurnOptions, TurnOutcome, Usage};
pub use bindings::warden::plugin::types::*;
pub use bindings::warden::plugin::{config, log, process, progress, store_fs_readonly, types};

/// What an agent's own transcript of a thread says, for [`rehydrated`].
pub struct Transcript {
    pub created_ms: u64,
    pub turns: Vec<Turn>,
    pub model: Option<String>,
    pub cwd: Option<String>,
}

/// The session a driver's `rehydrate` returns: the thread `thread_id`, as
/// its transcript at `source` (a path in the driver's read-only root) tells
/// it, last used now; the host gives it its key and revision.
pub fn rehydrated(thread_id: &str, transcript: Transcript, source: &str) -> Session {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Session {
        id: thread_id.to_string(),
        created_ms: transcript.created_ms,
        last_accessed_ms: now,
        turns: transcript.turns,
        agent_thread_id: Some(thread_id.to_string()),
        model: transcript.model,
        reasoning_effort: None,
        cwd: transcript.cwd,
        sandbox: None,
        revision: 0,
        extra_json: serde_json::json!({ "rehydratedFrom": source }).to_string(),
    }
}

/// The plugin's settings (the operator's `settings` table), parsed; a bad
/// one is `invalid`, naming the plugin.
pub fn parse_settings<T: serde::de::DeserializeOwned>(plugin: &str) -> Result<T, PluginError> {
    serde_json::from_str(&config::settings())
        .map_err(|e| PluginError::Invalid(format!("{plugin} settings: {e}")))
}

/// A plan's parts: the thread to resume (none for a fresh one) and the prompt to send.
pub fn plan_parts(plan: Plan) -> (Option<String>, String) {
    match plan {
        Plan::Resume(p) => (Some(p.thread_id), p.prompt),
        Plan::Fresh(p) => (None, p.prompt),
    }
}

/// The transcript path a lookup found; a failed lookup is logged (a turn
/// that ran is not failed for want of its transcript's path).
pub fn located(thread_id: &str, found: Result<Option<String>, PluginError>) -> Option<String> {
    found.unwrap_or_else(|e| {
        log::log(log::Level::Warn, &format!("cannot locate the transcript of {thread_id}: {e:?}"));
        None
    })
}

/// `export!(Plugin)` exports `Plugin`'s [`Guest`] as the plugin's `agent`;
/// `export!(Plugin, manifest = "warden.toml")` also embeds that manifest,
/// checked at compile time (see the [crate] documentation).
#[doc(inline)]
pub use crate::__export_agent as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_agent {
    ($($arguments:tt)*) => {
        $crate::__export_role!(agent, "agent-driver", $($arguments)*);
    };
}
