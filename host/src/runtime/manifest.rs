//! Reading a plugin's declaration (its manifest, a TOML document in the
//! `warden-manifest` custom section of its wasm) without running it. The
//! declaration itself is plain data in `warden-permissions`.

use wasmtime::wasmparser::{Parser, Payload};

pub use warden_permissions::Manifest;

/// Name of the custom section holding the TOML manifest.
pub const SECTION: &str = "warden-manifest";

/// `Manifest::from_wasm`: the manifest of a component's bytes.
pub trait FromWasm: Sized {
    /// A plugin without a manifest declares nothing.
    fn from_wasm(wasm: &[u8]) -> Result<Self, String>;
}

impl FromWasm for Manifest {
    fn from_wasm(wasm: &[u8]) -> Result<Self, String> {
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
        Manifest::parse(&text).map_err(|e| format!("the `{SECTION}` section is {e}"))
    }
}
