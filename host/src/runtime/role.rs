//! The four plugin roles and the shape of their worlds in the contract.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The contract version this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.1";
/// The contract's package name.
pub const PACKAGE: &str = "warden:plugin";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    StorageBackend,
    SessionPolicy,
    ContextBuilder,
    AgentDriver,
}

impl Role {
    pub const ALL: [Role; 4] =
        [Role::StorageBackend, Role::SessionPolicy, Role::ContextBuilder, Role::AgentDriver];

    /// The world's name in the WIT, also the role's name in configuration.
    pub fn world(self) -> &'static str {
        match self {
            Role::StorageBackend => "storage-backend",
            Role::SessionPolicy => "session-policy",
            Role::ContextBuilder => "context-builder",
            Role::AgentDriver => "agent-driver",
        }
    }

    /// The one interface the world exports.
    pub fn export(self) -> &'static str {
        match self {
            Role::StorageBackend => "storage",
            Role::SessionPolicy => "policy",
            Role::ContextBuilder => "context",
            Role::AgentDriver => "agent",
        }
    }

    /// The host interfaces the world imports (besides `types`).
    pub fn imports(self) -> &'static [&'static str] {
        match self {
            Role::StorageBackend => &["store-fs", "log", "config"],
            Role::SessionPolicy | Role::ContextBuilder => &["log", "config"],
            Role::AgentDriver => &["process", "store-fs-readonly", "progress", "log", "config"],
        }
    }

    pub fn from_world(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.world() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}
