//! The one-way rule between Warden's modules, checked on the source: a
//! module may use its own submodules and modules of lower layers, never a
//! module of its own layer or above. A `use` upward is how import cycles
//! start; this test fails on one, naming the file, the reference and the
//! layer to move it to. ARCHITECTURE.md explains the layers.

use std::path::Path;

/// From the bottom up. `types` is the contract's re-export of its shared types.
const LAYERS: &[&[&str]] = &[
    &["contract", "types", "config_paths", "logging"],
    &["control"],
    &["capabilities"],
    &["config"],
    &["auth"],
    &["runtime"],
    &["plugins"],
    &["sessions"],
    &["mcp"],
    &["commands"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `crate::<module>` a source file names.
fn references(source: &str) -> Vec<&str> {
    source
        .match_indices("crate::")
        .map(|(at, found)| {
            let rest = &source[at + found.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn modules_only_use_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" || module == "layering" {
            continue;
        }
        let Some(own) = layer(module) else {
            violations
                .push(format!("{}: module `{module}` is in no layer; add it to LAYERS", relative.display()));
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap();
        for used in references(&source) {
            match layer(used) {
                _ if used == module => {}
                Some(theirs) if theirs < own => {}
                Some(_) => violations.push(format!(
                    "{}: `{module}` uses `crate::{used}`, which is not below it; move what it needs into a lower layer",
                    relative.display()
                )),
                None => violations
                    .push(format!("{}: `crate::{used}` is in no layer; add it to LAYERS", relative.display())),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn an_upward_use_is_caught() {
    assert_eq!(references("use crate::runtime::loaded; crate::types::Session"), ["runtime", "types"]);
    assert!(layer("capabilities") < layer("runtime"));
}
