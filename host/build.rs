//! Builds the default plugins (and the test suite's hostile plugins) for
//! `wasm32-wasip2` with a nested cargo, once per build, into
//! `<target>/wasm-guests`, and tells the host crate where they are.
//!
//! The nested cargo uses its own target directory (sharing the outer one
//! would deadlock on its lock), drops the outer build's compiler flags and
//! wrappers (they are for the host, not for wasm), and names its packages
//! explicitly so it never recurses into this crate.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the guest packages live: every directory with a Cargo.toml below
/// these is a plugin (the same rule as the workspace's `members`).
const GUEST_ROOTS: &[&str] = &["guests", "tests/guests"];

const PROFILE: &str = "guest";
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ lives in the workspace").to_path_buf();
    let target_root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { workspace.join(p) })
        .unwrap_or_else(|| workspace.join("target"));
    let guest_target = target_root.join("wasm-guests");
    let guests = guest_packages(&workspace);

    for watched in ["wit", "guests", "crates", "tests/guests", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--target", TARGET, "--profile", PROFILE, "--target-dir"])
        .arg(&guest_target);
    for package in &guests {
        command.args(["-p", package]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command.status().unwrap_or_else(|e| panic!("could not run cargo for the guests: {e}"));
    if !status.success() {
        panic!(
            "building the wasm32-wasip2 guest plugins failed ({status}); if the target is missing, \
             run `rustup target add {TARGET}`"
        );
    }
    let out = guest_target.join(TARGET).join(PROFILE);
    for package in &guests {
        let wasm = out.join(format!("{}.wasm", package.replace('-', "_")));
        assert!(wasm.is_file(), "guest {} was not produced at {}", package, wasm.display());
    }
    println!("cargo:rustc-env=WARDEN_GUEST_DIR={}", display(&out));
}

/// The package names of the guests, sorted: each `GUEST_ROOTS/<dir>/Cargo.toml`'s `name`.
fn guest_packages(workspace: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for root in GUEST_ROOTS {
        let entries =
            std::fs::read_dir(workspace.join(root)).unwrap_or_else(|e| panic!("reading {root}: {e}"));
        for entry in entries {
            let manifest = entry.expect("a directory entry").path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
            let name = text
                .lines()
                .find_map(|line| line.strip_prefix("name = \"").and_then(|rest| rest.strip_suffix('"')))
                .unwrap_or_else(|| panic!("{} has no package name", manifest.display()));
            names.push(name.to_string());
        }
    }
    names.sort();
    names
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn display(path: &Path) -> String {
    path.to_str().expect("the target directory path is UTF-8").to_string()
}
