//! The `session-policy` role: which session ids are valid, which sessions are
//! evicted to admit a new one, which have expired. Pure decisions: no capabilities.
//!
//! ```text
//! use warden_plugin::policy::{Guest, PluginError};
//!
//! struct Plugin;
//!
//! impl Guest for Plugin { /* the `policy` functions of wit/roles.wit */ }
//! impl admission::Guest for Plugin { /* admission from a count (since 0.1.2) */ }
//! impl principal_limits::Guest for Plugin { /* limits per principal (since 0.1.4) */ }
//!
//! warden_plugin::policy::export!(Plugin, manifest = "warden.toml");
//! ```

/// What `wit_bindgen::generate!` makes of the `session-policy` world; the items
/// below re-export it. The export macro is used through [`export!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "session-policy",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "warden_plugin::policy::bindings",
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub use bindings::exports::warden::plugin::admission;
pub use bindings::exports::warden::plugin::policy::Guest;
pub use bindings::exports::warden::plugin::principal_limits;
pub use bindings::warden::plugin::types::*;
pub use bindings::warden::plugin::{config, log, types};

/// `export!(Plugin)` exports `Plugin`'s [`Guest`] as the plugin's `policy`;
/// `export!(Plugin, manifest = "warden.toml")` also embeds that manifest,
/// checked at compile time (see the [crate] documentation).
#[doc(inline)]
pub use crate::__export_policy as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_policy {
    ($($arguments:tt)*) => {
        $crate::__export_role!(policy, "session-policy", $($arguments)*);
    };
}

/// The limits the host applies to a principal when a policy exports no
/// `principal-limits`: a policy may start from them.
pub fn default_limits() -> principal_limits::Limits {
    principal_limits::Limits { max_running_turns: 32, max_sessions: None, task_ttl_ms: 60 * 60 * 1000 }
}
