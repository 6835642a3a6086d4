//! The `context-builder` role: plans each turn (resume the agent's own thread,
//! or start fresh with a composed prompt). Pure decisions: no capabilities.
//!
//! ```text
//! use warden_plugin::context::{Guest, PluginError};
//!
//! struct Plugin;
//!
//! impl Guest for Plugin { /* the `context` functions of wit/roles.wit */ }
//!
//! warden_plugin::context::export!(Plugin, manifest = "warden.toml");
//! ```

/// What `wit_bindgen::generate!` makes of the `context-builder` world; the items
/// below re-export it. The export macro is used through [`export!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "context-builder",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "warden_plugin::context::bindings",
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub use bindings::exports::warden::plugin::context::Guest;
pub use bindings::warden::plugin::types::*;
pub use bindings::warden::plugin::{config, log, types};

/// `export!(Plugin)` exports `Plugin`'s [`Guest`] as the plugin's `context`;
/// `export!(Plugin, manifest = "warden.toml")` also embeds that manifest,
/// checked at compile time (see the [crate] documentation).
#[doc(inline)]
pub use crate::__export_context as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_context {
    ($($arguments:tt)*) => {
        $crate::__export_role!(context, "context-builder", $($arguments)*);
    };
}
