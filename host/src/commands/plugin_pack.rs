//! `warden plugin pack`: give a component built by another toolchain
//! (componentize-py, jco, …) its declaration, by appending the manifest as
//! the component's `warden-manifest` custom section. Nothing else in the
//! component changes. The manifest is checked first, and a component that
//! already carries one is refused (the host refuses two).

use std::path::Path;

use anyhow::{Context as _, bail};
use wasm_encoder::{ComponentSection, CustomSection};
use wasmtime::wasmparser::{Parser, Payload};

use crate::runtime::manifest::{FromWasm, Manifest, SECTION};

/// Write `input` with `manifest` embedded to `output`.
pub fn pack(input: &Path, manifest: &Path, output: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    if !Parser::is_component(&wasm) {
        bail!(
            "{} is not a WebAssembly component; build it as a component (for Python: componentize-py)",
            input.display()
        );
    }
    let text =
        std::fs::read_to_string(manifest).with_context(|| format!("reading {}", manifest.display()))?;
    Manifest::parse(&text).map_err(|e| anyhow::anyhow!("{} is {e}", manifest.display()))?;
    if has_manifest(&wasm).with_context(|| format!("reading {}", input.display()))? {
        bail!("{} already has a `{SECTION}` section; pack the component as it was built", input.display());
    }
    let packed = appended(wasm, &text);
    Manifest::from_wasm(&packed)
        .map_err(|e| anyhow::anyhow!("the packed component does not read back: {e}"))?;
    write_atomic(output, &packed)
}

/// Whether any section of `wasm`, at any depth, is a manifest.
fn has_manifest(wasm: &[u8]) -> anyhow::Result<bool> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CustomSection(section) = payload?
            && section.name() == SECTION
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `wasm` with the manifest section appended at its top level.
fn appended(mut wasm: Vec<u8>, manifest: &str) -> Vec<u8> {
    CustomSection { name: SECTION.into(), data: manifest.as_bytes().into() }.append_to_component(&mut wasm);
    wasm
}

/// Write `output` whole or not at all (a temporary file beside it, renamed).
fn write_atomic(output: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = output.file_name().with_context(|| format!("{} names no file", output.display()))?;
    let temp = output.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, output));
    if written.is_err() {
        std::fs::remove_file(&temp).ok();
    }
    written.with_context(|| format!("writing {}", output.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: its preamble alone.
    fn empty_component() -> Vec<u8> {
        wasm_encoder::Component::new().finish()
    }

    #[test]
    fn the_manifest_reads_back_and_nothing_else_changes() {
        let wasm = empty_component();
        let manifest = "role = \"context-builder\"\n";
        let packed = appended(wasm.clone(), manifest);
        assert_eq!(&packed[..wasm.len()], &wasm[..]);
        assert_eq!(Manifest::from_wasm(&packed).unwrap().role.as_deref(), Some("context-builder"));
        assert!(has_manifest(&packed).unwrap() && !has_manifest(&wasm).unwrap());
    }

    #[test]
    fn a_second_manifest_a_bad_manifest_and_a_module_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (input, manifest, output) =
            (dir.path().join("in.wasm"), dir.path().join("m.toml"), dir.path().join("out.wasm"));
        std::fs::write(&manifest, "role = \"context-builder\"\n").unwrap();
        std::fs::write(&input, appended(empty_component(), "role = \"storage-backend\"\n")).unwrap();
        let error = pack(&input, &manifest, &output).unwrap_err().to_string();
        assert!(error.contains("already has a `warden-manifest` section"), "{error}");

        std::fs::write(&input, empty_component()).unwrap();
        std::fs::write(&manifest, "rol = 1\n").unwrap();
        let error = pack(&input, &manifest, &output).unwrap_err().to_string();
        assert!(error.contains("not a valid manifest"), "{error}");

        std::fs::write(&input, wasm_encoder::Module::new().finish()).unwrap();
        let error = pack(&input, &manifest, &output).unwrap_err().to_string();
        assert!(error.contains("is not a WebAssembly component"), "{error}");
        assert!(!output.exists(), "nothing is written on a refusal");
    }
}
