//! Paths in the configuration: MCP clients start Warden from any directory,
//! so `~/sessions` (which TOML does not expand) used to create `./~/sessions`
//! wherever that was. `~/` is expanded to `$HOME`; relative paths are refused
//! with an error naming the setting, and nothing is created.

use std::path::Path;
use std::process::Output;

use warden_tests::warden_bin;

/// `warden plugins` with `config`, started in `dir/cwd` with HOME at `dir/home`.
fn plugins(dir: &Path, config: &str) -> Output {
    for sub in ["cwd", "home", "codex"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let file = dir.join("warden.toml");
    std::fs::write(&file, config).unwrap();
    std::process::Command::new(warden_bin())
        .arg("--config")
        .arg(&file)
        .arg("plugins")
        .current_dir(dir.join("cwd"))
        .env("HOME", dir.join("home"))
        .env("CODEX_HOME", dir.join("codex"))
        .env_remove("WARDEN_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap()
}

fn cwd_entries(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir.join("cwd")).unwrap().map(|e| e.unwrap().file_name()).collect()
}

#[test]
fn a_tilde_root_is_expanded_to_home() {
    let dir = tempfile::tempdir().unwrap();
    let cache = crate::cache_dir();
    let out = plugins(
        dir.path(),
        &format!(
            "cache-dir = {cache:?}\nstate-dir = \"~/state\"\n[plugins.storage-backend]\nroot = \"~/sessions\"\n"
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("home/sessions").is_dir(), "the root was created under $HOME");
    assert!(stdout.contains(&dir.path().join("home/sessions").display().to_string()), "{stdout}");
    assert!(cwd_entries(dir.path()).is_empty(), "nothing was created where Warden started");
}

#[test]
fn relative_paths_are_refused_naming_the_setting() {
    let cache = crate::cache_dir();
    let cases = [
        (
            "[plugins.storage-backend]\nroot = \"sessions\"\n",
            "root under [plugins.storage-backend] = \"sessions\"",
        ),
        (
            "[plugins.storage-backend]\nroot = \"./~/sessions\"\n",
            "root under [plugins.storage-backend] = \"./~/sessions\"",
        ),
        (
            "[plugins.agent-driver]\ncwd-roots = [\"src\"]\n",
            "cwd-roots under [plugins.agent-driver] = \"src\"",
        ),
        (
            "[plugins.context-builder]\npath = \"plugins/context.wasm\"\n",
            "path under [plugins.context-builder]",
        ),
        ("state-dir = \"state\"\n", "state-dir = \"state\""),
        ("[plugins.storage-backend]\nroot = \"~someone/sessions\"\n", "only `~/`"),
    ];
    for (setting, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = plugins(dir.path(), &format!("cache-dir = {cache:?}\n{setting}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{setting:?} was accepted");
        assert!(stderr.contains(expected) && stderr.contains("absolute path"), "{setting:?}: {stderr}");
        assert!(cwd_entries(dir.path()).is_empty(), "{setting:?} created something where Warden started");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = plugins(dir.path(), "cache-dir = \"cache\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cache-dir = \"cache\" is a relative path"), "{stderr}");
    assert!(cwd_entries(dir.path()).is_empty());
}
