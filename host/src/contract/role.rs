//! The four plugin roles and the shape of their worlds in the contract.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The contract version this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.5";
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

    /// Interfaces the world exports beside [`Role::export`], added by later
    /// releases: the host uses them when a plugin has them and falls back to
    /// the first export for plugins built against an earlier release.
    pub fn added_exports(self) -> &'static [&'static str] {
        match self {
            Role::StorageBackend => &["storage-catalog", "task-store"],
            Role::SessionPolicy => &["admission", "principal-limits"],
            Role::ContextBuilder | Role::AgentDriver => &[],
        }
    }

    /// Every interface the world exports.
    pub fn exports(self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.export()).chain(self.added_exports().iter().copied())
    }

    /// The host interfaces the world imports (besides `types`).
    pub fn imports(self) -> &'static [&'static str] {
        match self {
            Role::StorageBackend => &["store-fs", "sql", "log", "config"],
            Role::SessionPolicy | Role::ContextBuilder => &["log", "config"],
            Role::AgentDriver => &["process", "store-fs-readonly", "progress", "log", "config"],
        }
    }

    /// The directory the world lets a plugin work in, if any (from its imports).
    pub fn root(self) -> Option<RootAccess> {
        let imports = self.imports();
        if imports.contains(&"store-fs") {
            Some(RootAccess::ReadWrite)
        } else if imports.contains(&"store-fs-readonly") {
            Some(RootAccess::ReadOnly)
        } else {
            None
        }
    }

    /// Whether the world lets a plugin run programs (it imports `process`).
    pub fn runs_programs(self) -> bool {
        self.imports().contains(&"process")
    }

    pub fn from_world(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.world() == name)
    }
}

/// How a role's plugin may use its granted directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootAccess {
    ReadOnly,
    ReadWrite,
}

impl RootAccess {
    pub fn name(self) -> &'static str {
        match self {
            RootAccess::ReadOnly => "read-only",
            RootAccess::ReadWrite => "read-write",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use wit_parser::{Resolve, WorldItem, WorldKey};

    use super::{CONTRACT_VERSION, PACKAGE, Role};

    /// The interface names of a world's imports or exports (`types`, which
    /// every world takes implicitly through `use`, aside).
    fn names(resolve: &Resolve, items: &wit_parser::IndexMap<WorldKey, WorldItem>) -> BTreeSet<String> {
        items
            .iter()
            .filter_map(|(key, item)| match (key, item) {
                (WorldKey::Interface(id), WorldItem::Interface { .. }) => {
                    resolve.interfaces[*id].name.clone()
                }
                (WorldKey::Name(name), WorldItem::Interface { .. }) => Some(name.clone()),
                _ => None,
            })
            .filter(|name| name != "types")
            .collect()
    }

    #[test]
    fn what_a_role_may_do_follows_from_its_imports() {
        use super::RootAccess;
        assert_eq!(Role::StorageBackend.root(), Some(RootAccess::ReadWrite));
        assert_eq!(Role::AgentDriver.root(), Some(RootAccess::ReadOnly));
        assert_eq!(Role::SessionPolicy.root(), None);
        let runners: Vec<Role> = Role::ALL.into_iter().filter(|role| role.runs_programs()).collect();
        assert_eq!(runners, [Role::AgentDriver]);
    }

    #[test]
    fn the_role_table_is_the_contract_in_wit() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut resolve = Resolve::new();
        let (package, _) = resolve.push_dir(&wit).expect("wit/ parses");
        let package = &resolve.packages[package];
        assert_eq!(package.name.to_string(), format!("{PACKAGE}@{CONTRACT_VERSION}"));
        let worlds: BTreeSet<&str> = package.worlds.keys().map(String::as_str).collect();
        let roles: BTreeSet<&str> = Role::ALL.iter().map(|role| role.world()).collect();
        assert_eq!(worlds, roles, "every world of wit/worlds.wit is a role of the table, and only those");
        for role in Role::ALL {
            let world = &resolve.worlds[package.worlds[role.world()]];
            let imports: BTreeSet<String> = role.imports().iter().map(|s| s.to_string()).collect();
            assert_eq!(names(&resolve, &world.imports), imports, "imports of {role}");
            let exports: BTreeSet<String> = role.exports().map(str::to_string).collect();
            assert_eq!(names(&resolve, &world.exports), exports, "exports of {role}");
        }
    }
}
