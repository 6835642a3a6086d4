//! The default plugins, built by `build.rs` and embedded in the binary so
//! `warden serve` works with no configuration, and the other plugins an
//! operator can select by name (`plugin = "agent-claude"`).

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

/// The embedded plugins an operator may choose for a role by name
/// (`plugin = "<name>"` under `[plugins.<role>]`), the default first.
pub fn plugins(role: Role) -> Vec<(&'static str, &'static [u8])> {
    let mut all = vec![default_plugin(role)];
    if role == Role::StorageBackend {
        all.push(("storage-postgres", guest!("storage_postgres.wasm")));
    }
    if role == Role::AgentDriver {
        all.push(("agent-claude", guest!("agent_claude.wasm")));
        all.push(("agent-gemini", guest!("agent_gemini.wasm")));
    }
    all
}

/// The embedded plugin `name` for `role`; the error lists the choices.
pub fn plugin_named(role: Role, name: &str) -> Result<(&'static str, &'static [u8]), String> {
    let all = plugins(role);
    all.iter().find(|(n, _)| *n == name).copied().ok_or_else(|| {
        format!(
            "there is no embedded {role} plugin {name:?} (embedded: {}); give a `.wasm` file with `path` instead",
            all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )
    })
}

/// The legacy single-file storage plugin (a migration source and benchmark baseline).
pub fn legacy_storage() -> (&'static str, &'static [u8]) {
    ("storage-json", guest!("storage_json.wasm"))
}

/// Where the build put every guest, including the test suite's.
pub const GUEST_DIR: &str = env!("WARDEN_GUEST_DIR");
