//! The `session-policy` role: which session ids are valid, which sessions are
//! evicted to admit a new one, which have expired. Pure decisions: no capabilities.
//!
//! ```text
//! use warden_plugin::policy::{Guest, PluginError};
//!
//! struct Plugin;
//!
//! impl Guest for Plugin { /* the `policy` functions of wit/roles.wit */ }
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

pub use bindings::exports::warden::plugin::policy::Guest;
pub use bindings::warden::plugin::types::*;
pub use bindings::warden::plugin::{config, log, types};

#[doc(inline)]
pub use crate::__export_policy as export;

/// `export!(Plugin)` exports `Plugin`'s [`Guest`] implementation as this
/// plugin's `policy`; `export!(Plugin, manifest = "warden.toml")` also
/// embeds that manifest (a path relative to the crate's directory), checked
/// at compile time: it must parse, and its `role` and `contract`, when given,
/// must be `session-policy` and the contract this SDK speaks.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_policy {
    ($ty:ident) => {
        $crate::policy::bindings::export_bindings!($ty with_types_in $crate::policy::bindings);
    };
    ($ty:ident, manifest = $file:literal) => {
        $crate::policy::export!($ty);
        $crate::__private::embed_manifest!(role = "session-policy", file = $file);
    };
}
