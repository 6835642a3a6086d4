//! `warden plugin new`: a small plugin project that builds as it stands,
//! with the contract pinned at the version this host speaks: a Rust project
//! depends on the plugin SDK (`crates/warden-plugin`) by path, a Python one
//! carries the contract's WIT.

use std::path::{Path, PathBuf};

use crate::contract::WIT_FILES;
use crate::contract::role::{CONTRACT_VERSION, Role};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

const RUST_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml.tmpl")),
    ("warden.toml", include_str!("../../templates/rust/warden.toml.tmpl")),
    ("README.md", include_str!("../../templates/rust/README.md.tmpl")),
    ("src/lib.rs", include_str!("../../templates/rust/lib.rs.tmpl")),
    (".gitignore", "/target\n"),
];

/// The componentize-py a Python plugin is built with (also read by
/// `scripts/test` and `guests/context-redact-py/build.sh`).
const COMPONENTIZE_PY_VERSION: &str =
    include_str!("../../templates/python/componentize-py.version").trim_ascii();

const PYTHON_FILES: &[(&str, &str)] = &[
    ("warden.toml", include_str!("../../templates/rust/warden.toml.tmpl")),
    ("README.md", include_str!("../../templates/python/README.md.tmpl")),
    ("build.sh", include_str!("../../templates/python/build.sh.tmpl")),
    (".gitignore", "*.wasm\n__pycache__/\n"),
];

/// The role-specific Python files (`app.py`, `logic.py`, `test_logic.py`)
/// and a settings example for the README; `None` for roles without a
/// Python scaffold.
fn python_role_files(role: Role) -> Option<([&'static str; 3], &'static str)> {
    match role {
        Role::ContextBuilder => Some((
            [
                include_str!("../../templates/python/context-builder/app.py.tmpl"),
                include_str!("../../templates/python/context-builder/logic.py.tmpl"),
                include_str!("../../templates/python/context-builder/test_logic.py.tmpl"),
            ],
            "{ replay-turns = 1 }",
        )),
        Role::SessionPolicy => Some((
            [
                include_str!("../../templates/python/session-policy/app.py.tmpl"),
                include_str!("../../templates/python/session-policy/logic.py.tmpl"),
                include_str!("../../templates/python/session-policy/test_logic.py.tmpl"),
            ],
            "{ max-sessions = 50, idle-ttl-hours = 12 }",
        )),
        Role::StorageBackend | Role::AgentDriver => None,
    }
}

fn rust_role_files(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::StorageBackend => (
            include_str!("../../templates/rust/impl-storage-backend.tmpl"),
            include_str!("../../templates/rust/logic-storage-backend.tmpl"),
        ),
        Role::SessionPolicy => (
            include_str!("../../templates/rust/impl-session-policy.tmpl"),
            include_str!("../../templates/rust/logic-session-policy.tmpl"),
        ),
        Role::ContextBuilder => (
            include_str!("../../templates/rust/impl-context-builder.tmpl"),
            include_str!("../../templates/rust/logic-context-builder.tmpl"),
        ),
        Role::AgentDriver => (
            include_str!("../../templates/rust/impl-agent-driver.tmpl"),
            include_str!("../../templates/rust/logic-agent-driver.tmpl"),
        ),
    }
}

/// What each role's manifest asks for, and the configuration lines that grant it.
fn needs(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::StorageBackend => (
            "# The directory the store lives in; the operator grants it as `root`.\nroot = \"data\"",
            "root = \"/var/lib/warden/my-store\"   # the directory it declares",
        ),
        Role::AgentDriver => (
            "# Programs it may run, and variables they may receive, e.g.:\n# env = [\"HOME\", \"PATH\"]\n# [[programs]]\n# name = \"my-agent\"\n# args = [\"run\", \"**\"]",
            "# grant what warden.toml declares, with a typed argument policy, e.g.:\n# env = [\"HOME\", \"PATH\"]\n# cwd-roots = [\"/home/me/src\"]\n# [[plugins.agent-driver.programs]]\n# name = \"my-agent\"\n# [plugins.agent-driver.programs.arguments]\n# subcommands = [{ name = \"run\", positionals-after-separator = true, positionals = [{ name = \"prompt\", value = \"text\" }] }]",
        ),
        Role::SessionPolicy | Role::ContextBuilder => {
            ("# Nothing: this role works on its arguments alone.", "# nothing to grant")
        }
    }
}

/// Where the plugin SDK was when this binary was built (Warden is built from
/// its source, so the checkout is normally still there).
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/warden-plugin");

/// The `Cargo.toml` line on the SDK for a project at `project`: a relative
/// path when the project is inside the SDK's source tree (so the tree can
/// move), else an absolute one. `sdk` overrides where the SDK is.
fn sdk_dependency(project: &Path, sdk: Option<&Path>) -> anyhow::Result<String> {
    let sdk = sdk.unwrap_or(Path::new(BUILT_SDK));
    let found = sdk.canonicalize().ok().filter(|dir| dir.join("Cargo.toml").is_file());
    let Some(sdk) = found else {
        anyhow::bail!(
            "the plugin SDK is not at {}: pass --sdk <the crates/warden-plugin directory of Warden's source>",
            sdk.display()
        );
    };
    // The project's parent is created now rather than with the files, to resolve it.
    let parent = project.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
    let project = parent.canonicalize()?.join(project.file_name().unwrap_or_default());
    let source = sdk.ancestors().nth(2).unwrap_or(&sdk);
    let path = match (project.strip_prefix(source), sdk.strip_prefix(source)) {
        (Ok(below), Ok(sdk_below)) => {
            let mut relative: PathBuf = below.components().map(|_| "..").collect();
            relative.push(sdk_below);
            relative
        }
        _ => sdk.clone(),
    };
    let path = path.to_str().ok_or_else(|| anyhow::anyhow!("{} is not a UTF-8 path", path.display()))?;
    Ok(format!("warden-plugin = {{ path = {} }}", toml::Value::String(path.into())))
}

/// Write a new plugin project `name` for `role` under `parent`; returns its
/// directory. `sdk` is where the plugin SDK is (default: where it was when
/// this binary was built); only Rust projects use it.
pub fn new_plugin(
    role: Role,
    name: &str,
    lang: Lang,
    parent: &Path,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        anyhow::bail!("plugin name {name:?} must start with a lower-case letter and use only a-z, 0-9 and -");
    }
    let python = python_role_files(role);
    if lang == Lang::Python && python.is_none() {
        anyhow::bail!(
            "Python scaffolds are available for context-builder and session-policy; use --lang rust for {role}"
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        anyhow::bail!("{} already exists; choose another name or remove it", dir.display());
    }
    let sdk = match lang {
        Lang::Rust => sdk_dependency(&dir, sdk)?,
        Lang::Python => String::new(),
    };
    let (needs, config_hint) = needs(role);
    let (implementation, logic) = rust_role_files(role);
    let settings_example = python.map_or("", |(_, example)| example);
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{role}}", role.world())
            .replace("{{export}}", role.export())
            .replace("{{contract}}", CONTRACT_VERSION)
            .replace("{{needs}}", needs)
            .replace("{{config_hint}}", config_hint)
            .replace("{{impl}}", implementation.trim_end())
            .replace("{{settings_example}}", settings_example)
            .replace("{{sdk}}", &sdk)
            .replace("{{componentize_py}}", COMPONENTIZE_PY_VERSION)
    };
    let files: Vec<(String, String)> = match lang {
        Lang::Rust => {
            let mut files: Vec<(String, String)> =
                RUST_FILES.iter().map(|(p, t)| (p.to_string(), fill(t))).collect();
            files.push(("src/logic.rs".into(), logic.to_string()));
            files
        }
        Lang::Python => {
            let mut files: Vec<(String, String)> =
                PYTHON_FILES.iter().map(|(p, t)| (p.to_string(), fill(t))).collect();
            let ([app, logic, test], _) = python.expect("checked above");
            for (path, text) in [("app.py", app), ("logic.py", logic), ("test_logic.py", test)] {
                files.push((path.into(), fill(text)));
            }
            files.extend(WIT_FILES.iter().map(|(file, text)| (format!("wit/{file}"), text.to_string())));
            files
        }
    };
    for (relative, text) in files {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        if relative.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake Warden source tree with an SDK, and the SDK's directory.
    fn source_tree() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let sdk = root.path().join("warden/crates/warden-plugin");
        std::fs::create_dir_all(&sdk).unwrap();
        std::fs::write(sdk.join("Cargo.toml"), "").unwrap();
        (root, sdk)
    }

    #[test]
    fn depends_on_the_sdk_relatively_inside_its_tree_and_absolutely_outside() {
        let (root, sdk) = source_tree();
        let inside = root.path().join("warden/target/plugins/my-policy");
        assert_eq!(
            sdk_dependency(&inside, Some(&sdk)).unwrap(),
            r#"warden-plugin = { path = "../../../crates/warden-plugin" }"#
        );
        let outside = root.path().join("elsewhere/my-policy");
        let absolute = sdk.canonicalize().unwrap();
        assert_eq!(
            sdk_dependency(&outside, Some(&sdk)).unwrap(),
            format!("warden-plugin = {{ path = {:?} }}", absolute.to_str().unwrap())
        );
    }

    #[test]
    fn a_missing_sdk_is_refused_naming_the_option() {
        let (root, _) = source_tree();
        let missing = root.path().join("nowhere");
        let err = sdk_dependency(&root.path().join("p"), Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("--sdk") && err.contains("nowhere"), "{err}");
        assert!(!root.path().join("p").exists());
    }
}
