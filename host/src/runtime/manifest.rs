//! A plugin's declaration of what it needs, read from the `warden-manifest`
//! custom section of its wasm without running it. The operator's grant and
//! this declaration are intersected: a plugin gets neither more than it asked
//! for nor more than it was given.

use serde::{Deserialize, Serialize};
use wasmtime::wasmparser::{Parser, Payload};

use warden_permissions::DeclaredProgram;

/// Name of the custom section holding the TOML manifest.
pub const SECTION: &str = "warden-manifest";

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
    /// Linear memory it needs, in MiB; loading fails if the operator's limit is lower.
    #[serde(default, rename = "memory-mib", skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Programs and argument patterns it may run.
    #[serde(default)]
    pub programs: Vec<DeclaredProgram>,
}

impl Manifest {
    /// Read the manifest from a component's bytes; a plugin without one declares nothing.
    pub fn from_wasm(wasm: &[u8]) -> Result<Self, String> {
        let mut text: Option<Vec<u8>> = None;
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
            if let Payload::CustomSection(section) = payload
                && section.name() == SECTION
            {
                if text.is_some() {
                    return Err(format!("more than one `{SECTION}` section"));
                }
                text = Some(section.data().to_vec());
            }
        }
        let Some(text) = text else { return Ok(Self::default()) };
        let text = String::from_utf8(text).map_err(|_| format!("the `{SECTION}` section is not UTF-8"))?;
        toml::from_str(&text).map_err(|e| format!("the `{SECTION}` section is not a valid manifest: {e}"))
    }
}
