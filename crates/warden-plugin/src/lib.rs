//! Write a Warden plugin in Rust: the contract's bindings for each role, and
//! the macros that export a plugin and embed its manifest.
//!
//! Each role has a module ([`storage`], [`policy`], [`context`], [`agent`])
//! holding its `Guest` trait, the contract's types, the host interfaces the
//! role may import, and an `export!` macro. A whole plugin:
//!
//! ```
//! use warden_plugin::policy::{Guest, PluginError, SessionSummary, admission, principal_limits};
//!
//! struct Policy;
//!
//! impl Guest for Policy {
//!     fn validate_id(id: String) -> Result<(), PluginError> {
//!         if id.is_empty() { Err(PluginError::Invalid("an empty id".into())) } else { Ok(()) }
//!     }
//!     fn admit(_id: String, _existing: Vec<SessionSummary>, _now_ms: u64) -> Result<Vec<String>, PluginError> {
//!         Ok(Vec::new())
//!     }
//!     fn expired(_sessions: Vec<SessionSummary>, _now_ms: u64) -> Vec<String> {
//!         Vec::new()
//!     }
//! }
//!
//! // Since contract 0.1.2: admission from the number of stored sessions.
//! impl admission::Guest for Policy {
//!     fn candidates(_id: String, _stored: u64, _now_ms: u64) -> Result<u32, PluginError> {
//!         Ok(0)
//!     }
//!     fn admit(_id: String, _stored: u64, _oldest: Vec<SessionSummary>, _now_ms: u64) -> Result<Vec<String>, PluginError> {
//!         Ok(Vec::new())
//!     }
//! }
//!
//! // Since contract 0.1.4: limits per principal (here the host's defaults).
//! impl principal_limits::Guest for Policy {
//!     fn limits_for(_principal: String) -> principal_limits::Limits {
//!         warden_plugin::policy::default_limits()
//!     }
//! }
//!
//! warden_plugin::policy::export!(Policy);
//! ```
//!
//! `export!(Policy, manifest = "warden.toml")` also embeds the manifest
//! `warden.toml` of the plugin's crate directory, and checks it at compile
//! time: it must parse as a manifest, and its `role` and `contract`, when
//! given, must be the role exported and [`CONTRACT_VERSION`]. A mistake is a
//! compile error naming the file and the fix.
//!
//! The bindings are generated from `wit/` at [`CONTRACT_VERSION`]; a
//! plugin built with this crate imports and exports that version. The
//! manifest (what the plugin needs from the host, TOML) is embedded as the
//! `warden-manifest` custom section the host reads; it is checked while the
//! plugin compiles, and the host checks it again, as the authority, when it
//! loads the plugin. Every contract type derives `serde`'s `Serialize` and
//! `Deserialize`.

pub mod agent;
pub mod context;
pub mod policy;
pub mod storage;

/// The version of the `warden:plugin` contract these bindings speak; set it
/// as `contract` in the manifest.
pub const CONTRACT_VERSION: &str = warden_plugin_macros::contract_version!();

/// `manifest!("warden.toml")`: embed a manifest without exporting through
/// this crate (for a plugin whose bindings come from elsewhere). It is
/// checked as TOML and as a manifest; role and contract are checked only by
/// a role's `export!`, which knows them.
#[macro_export]
macro_rules! manifest {
    ($file:literal) => {
        $crate::__private::embed_manifest!(file = $file);
    };
}

/// What each role's `export!` expands to: wit-bindgen's export macro for the
/// role's bindings, and with a manifest, the manifest checked for the role.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_role {
    ($role:ident, $world:literal, $ty:ident) => {
        $crate::$role::bindings::export_bindings!($ty with_types_in $crate::$role::bindings);
    };
    ($role:ident, $world:literal, $ty:ident, manifest = $file:literal) => {
        $crate::__export_role!($role, $world, $ty);
        $crate::__private::embed_manifest!(role = $world, file = $file);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use warden_plugin_macros::embed_manifest;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pinned_version_is_the_wit_package_version() {
        let worlds = include_str!("../../../wit/worlds.wit");
        assert!(worlds.contains(&format!("package warden:plugin@{};", super::CONTRACT_VERSION)));
    }
}
