//! Warden's own files inside a directory granted to a plugin, from the
//! attacker's side. The operator grants a storage plugin a directory that
//! also holds the turn locks, the component cache, the configuration and the
//! plugin's own wasm; the plugin can touch none of them, cannot move or
//! remove a directory above them, and does not see them listed, while the
//! rest of its root works as usual.

use std::path::Path;

use warden::config::Config;
use warden::plugins;
use warden::runtime::role::Role;
use warden::types::PluginError;
use warden_tests::{guest_wasm, snapshot};

const ATTACKS: &[&str] = &[
    "read:warden.toml",
    "write:warden.toml",
    "remove:warden.toml",
    "rename:warden.toml|moved.toml",
    "rename:real/file|warden.toml",
    "meta:warden.toml",
    "write:plugins/storage.wasm",
    "remove:plugins/storage.wasm",
    "rename:plugins|elsewhere",
    "rmdir:plugins",
    "read:cache/entry.cwasm",
    "write:cache/entry.cwasm",
    "list:cache",
    "mkdir:cache/sub",
    "rename:cache|old-cache",
    "lock:turn-locks/session.lock",
    "write:turn-locks/session.lock",
    "remove:turn-locks/held.lock",
    "rmdir:turn-locks",
    "rename:real|turn-locks",
];

fn config(root: &Path) -> Config {
    std::fs::create_dir_all(root.join("real")).unwrap();
    std::fs::write(root.join("real/file"), "inside").unwrap();
    std::fs::create_dir_all(root.join("plugins")).unwrap();
    std::fs::write(root.join("plugins/storage.wasm"), guest_wasm("hostile_storage.wasm")).unwrap();
    std::fs::create_dir_all(root.join("turn-locks")).unwrap();
    std::fs::write(root.join("turn-locks/held.lock"), "").unwrap();
    let text = format!(
        "state-dir = {root:?}\ncache-dir = {cache:?}\n[plugins.storage-backend]\npath = {wasm:?}\nroot = {root:?}\n",
        cache = root.join("cache"),
        wasm = root.join("plugins/storage.wasm"),
    );
    std::fs::write(root.join("warden.toml"), text).unwrap();
    Config::from_file(&root.join("warden.toml")).unwrap()
}

#[test]
fn warden_files_inside_a_granted_root_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = config(root);
    let runtime = plugins::runtime(&config).unwrap();
    let (info, wasm) = plugins::plugin_info(Role::StorageBackend, &config).unwrap();
    let plugin = runtime.load_storage(info, &wasm).unwrap();
    std::fs::write(root.join("cache/entry.cwasm"), "compiled").unwrap();
    let before = snapshot(root);
    for attack in ATTACKS {
        let err = plugin.load(attack).expect_err(attack);
        match err.plugin_error() {
            Some(PluginError::Denied(message)) => {
                assert!(message.contains("Warden's"), "{attack}: {message}")
            }
            other => panic!("{attack:?}: expected denied, got {other:?} ({err})"),
        }
        assert_eq!(snapshot(root), before, "{attack:?} changed something");
    }
    let listing = |path: &str| plugin.load(&format!("list:{path}")).unwrap().extra_json;
    assert_eq!(
        listing(""),
        listing("").replace("turn-locks", "").replace("cache", "").replace("warden.toml", "")
    );
    assert!(listing("").contains("plugins") && listing("").contains("real"), "{}", listing(""));
    assert_eq!(listing("plugins"), r#"{"result":""}"#, "the plugin's own wasm is not listed");
    plugin.load("write:real/new").expect("the rest of the root works");
    plugin.load("rename:real/new|turn-locks-not-really").expect("a name that only starts alike is fine");
    assert!(root.join("turn-locks-not-really").is_file());
}

#[test]
fn a_root_that_is_a_warden_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.plugins.get_mut(&Role::StorageBackend).unwrap().root = Some(dir.path().join("cache"));
    let err = plugins::plugin_info(Role::StorageBackend, &config).err().expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("compiled-component cache") && message.contains("directory of its own"),
        "{message}"
    );
}

#[test]
fn warden_plugins_names_what_is_fenced_off() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let out = std::process::Command::new(warden_tests::warden_bin())
        .arg("--config")
        .arg(dir.path().join("warden.toml"))
        .arg("plugins")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "except:   turn-locks (Warden's turn-lock directory)",
        "except:   cache (Warden's compiled-component cache)",
        "except:   warden.toml (Warden's configuration file)",
        "except:   plugins/storage.wasm (Warden's storage-backend plugin)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}
