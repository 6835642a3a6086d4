//! A plugin's declaration of what it needs (its manifest, TOML), as plain
//! data. The host reads it from the plugin's `warden-manifest` custom
//! section; the operator's grant and this declaration are intersected, so a
//! plugin gets neither more than it asked for nor more than it was given.

use serde::{Deserialize, Serialize};

use crate::process::DeclaredProgram;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Contract version the plugin was written against, e.g. "0.1.1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// The role the plugin says it implements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Environment variables it may pass to programs it runs.
    #[serde(default)]
    pub env: Vec<String>,
    /// The directory it needs, by name (e.g. "state"); the operator's
    /// configuration says where it is. Without it, no directory is granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// It keeps its data in a database (the `sql` interface, storage
    /// plugins only): the operator's `[plugins.<role>.database]` says which.
    /// Without it, no database is granted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub database: bool,
    /// Linear memory it needs, in MiB; loading fails if the operator's limit is lower.
    #[serde(default, rename = "memory-mib", skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Programs and argument patterns it may run.
    #[serde(default)]
    pub programs: Vec<DeclaredProgram>,
}

impl Manifest {
    /// Parse the manifest's TOML text; the error names the problem.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("not a valid manifest: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_declaration_and_refuses_unknown_keys() {
        let manifest = Manifest::parse(
            "contract = \"0.1.1\"\nrole = \"agent-driver\"\nenv = [\"HOME\"]\n[[programs]]\nname = \"codex\"\nargs = [\"exec\", \"**\"]\n",
        )
        .unwrap();
        assert_eq!(manifest.programs[0].name, "codex");
        assert_eq!(manifest.env, ["HOME"]);
        let err = Manifest::parse("programz = []\n").unwrap_err();
        assert!(err.contains("programz"), "{err}");
    }
}
