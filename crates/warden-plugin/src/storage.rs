//! The `storage-backend` role: keeps sessions durable, in the one directory the
//! operator grants (`store_fs`), or in the one database schema the operator
//! grants (`sql`, since 0.1.5).
//!
//! ```text
//! use warden_plugin::storage::{Guest, PluginError};
//!
//! struct Plugin;
//!
//! impl Guest for Plugin { /* the `storage` functions of wit/roles.wit */ }
//! impl storage_catalog::Guest for Plugin { /* paged listings, counts (since 0.1.2) */ }
//! impl task_store::Guest for Plugin { /* durable task records (since 0.1.4): see [`task_files`] */ }
//!
//! warden_plugin::storage::export!(Plugin, manifest = "warden.toml");
//! ```

/// What `wit_bindgen::generate!` makes of the `storage-backend` world; the items
/// below re-export it. The export macro is used through [`export!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "storage-backend",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "warden_plugin::storage::bindings",
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub use bindings::exports::warden::plugin::storage::{Guest, MigrateOptions, MigrateReport};
pub use bindings::exports::warden::plugin::storage_catalog;
pub use bindings::exports::warden::plugin::task_store;

pub mod task_files;
pub use bindings::warden::plugin::types::*;
pub use bindings::warden::plugin::{config, log, sql, store_fs, types};

/// `export!(Plugin)` exports `Plugin`'s [`Guest`] as the plugin's `storage`;
/// `export!(Plugin, manifest = "warden.toml")` also embeds that manifest,
/// checked at compile time (see the [crate] documentation).
#[doc(inline)]
pub use crate::__export_storage as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_storage {
    ($($arguments:tt)*) => {
        $crate::__export_role!(storage, "storage-backend", $($arguments)*);
    };
}
