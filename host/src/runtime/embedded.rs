//! The default plugins, built by `build.rs` and embedded in the binary so
//! `warden serve` works with no configuration.

use crate::contract::role::Role;

macro_rules! guest {
    ($file:literal) => {
        include_bytes!(concat!(env!("WARDEN_GUEST_DIR"), "/", $file))
    };
}

/// The default plugin for a role: its name and its wasm.
pub fn default_plugin(role: Role) -> (&'static str, &'static [u8]) {
    match role {
        Role::StorageBackend => ("storage-dir", guest!("storage_dir.wasm")),
        Role::SessionPolicy => ("policy-default", guest!("policy_default.wasm")),
        Role::ContextBuilder => ("context-default", guest!("context_default.wasm")),
        Role::AgentDriver => ("agent-codex", guest!("agent_codex.wasm")),
    }
}

/// The legacy single-file storage plugin (a migration source and benchmark baseline).
pub fn legacy_storage() -> (&'static str, &'static [u8]) {
    ("storage-json", guest!("storage_json.wasm"))
}

/// Where the build put every guest, including the test suite's.
pub const GUEST_DIR: &str = env!("WARDEN_GUEST_DIR");
