//! Warden's own files inside a directory granted to a plugin, from the
//! attacker's side. The operator grants a storage plugin a directory that
//! also holds the turn locks, the component cache, the configuration and the
//! plugin's own wasm; the plugin can touch none of them, cannot move or
//! remove a directory above them, and does not see them listed, while the
//! rest of its root works as usual.

use std::path::Path;

use warden::config::Config;
use warden::contract::role::Role;
use warden::plugins;
use warden::types::PluginError;
use warden_tests::{guest_wasm, snapshot};

const ATTACKS: &[&str] = &[
    "read:warden.toml",
    "write:warden.toml",
    "append:warden.toml",
    "append-durable:warden.toml",
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
    "append:cache/entry.cwasm",
    "list:cache",
    "mkdir:cache/sub",
    "rename:cache|old-cache",
    "lock:turn-locks/session.lock",
    "write:turn-locks/session.lock",
    "append:turn-locks/session.lock",
    "append-durable:turn-locks/session.lock",
    "append-durable:cache/entry.cwasm",
    "append:plugins/storage.wasm",
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

/// The same files reached by other names: case variants on a case-insensitive
/// file system are covered below; here a hard link and (as root) a bind
/// mount give Warden's files a second name inside the root.
#[test]
fn warden_files_are_recognised_by_identity_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = config(root);
    std::fs::hard_link(root.join("warden.toml"), root.join("alias.toml")).unwrap();
    std::fs::hard_link(root.join("plugins/storage.wasm"), root.join("real/alias.wasm")).unwrap();
    let bound = Bind::new(&root.join("turn-locks"), &root.join("real/bound"));
    let runtime = plugins::runtime(&config).unwrap();
    let (info, wasm) = plugins::plugin_info(Role::StorageBackend, &config).unwrap();
    let plugin = runtime.load_storage(info, &wasm).unwrap();
    let mut attacks = vec!["read:alias.toml", "write:alias.toml", "meta:alias.toml", "read:real/alias.wasm"];
    if bound.is_some() {
        attacks.extend(["lock:real/bound/session.lock", "read:real/bound/held.lock", "list:real/bound"]);
    }
    let before = snapshot(root);
    for attack in attacks {
        let err = plugin.load(attack).expect_err(attack);
        assert!(
            matches!(err.plugin_error(), Some(PluginError::Denied(m)) if m.contains("Warden's")),
            "{attack}: {err}"
        );
        assert_eq!(snapshot(root), before, "{attack:?} changed something");
    }
    let listing = plugin.load("list:").unwrap().extra_json;
    assert!(!listing.contains("alias.toml") && listing.contains("real"), "{listing}");
    let listing = plugin.load("list:real").unwrap().extra_json;
    assert!(
        listing.contains("file") && !listing.contains("alias.wasm"),
        "a hard link is not listed: {listing}"
    );
}

/// A root inside one of Warden's directories is refused, not only one equal to it.
#[test]
fn a_root_inside_a_warden_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    std::fs::create_dir_all(dir.path().join("turn-locks/inner")).unwrap();
    config.plugins.get_mut(&Role::StorageBackend).unwrap().root = Some(dir.path().join("turn-locks/inner"));
    let err = plugins::plugin_info(Role::StorageBackend, &config).err().expect("refused");
    assert!(format!("{err:#}").contains("lies inside Warden's turn-lock directory"), "{err:#}");
}

/// Warden's files on a real case-insensitive file system (exFAT: the kernel
/// driver on a loop device where it exists, else exfat-fuse): `WARDEN.TOML`,
/// `CACHE/…`, `TURN-LOCKS/…` and `Plugins/Storage.wasm` are the reserved
/// files themselves and stay out of reach.
#[test]
fn on_a_case_insensitive_file_system_warden_files_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = ExFat::mount(dir.path()) else { return };
    let root = mount.path();
    let config = config(root);
    let runtime = plugins::runtime(&config).unwrap();
    let (info, wasm) = plugins::plugin_info(Role::StorageBackend, &config).unwrap();
    let plugin = runtime.load_storage(info, &wasm).unwrap();
    std::fs::write(root.join("cache/entry.cwasm"), "compiled").unwrap();
    assert_eq!(
        std::fs::read(root.join("WARDEN.TOML")).unwrap(),
        std::fs::read(root.join("warden.toml")).unwrap()
    );
    let before = snapshot(root);
    for attack in [
        "read:WARDEN.TOML",
        "write:Warden.toml",
        "append:WARDEN.toml",
        "append-durable:Warden.TOML",
        "remove:WARDEN.toml",
        "rename:WARDEN.TOML|moved.toml",
        "rename:real/file|WARDEN.TOML",
        "meta:Warden.Toml",
        "read:CACHE/entry.cwasm",
        "write:Cache/entry.cwasm",
        "append:CACHE/entry.cwasm",
        "list:CACHE",
        "mkdir:CACHE/sub",
        "rename:Cache|old-cache",
        "lock:TURN-LOCKS/session.lock",
        "write:Turn-Locks/session.lock",
        "remove:TURN-LOCKS/held.lock",
        "rmdir:TURN-LOCKS",
        "rename:real|TURN-LOCKS",
        "read:Plugins/Storage.wasm",
        "write:PLUGINS/STORAGE.WASM",
        "remove:plugins/STORAGE.wasm",
        "rename:PLUGINS|elsewhere",
        "rmdir:Plugins",
    ] {
        let err = plugin.load(attack).expect_err(attack);
        match err.plugin_error() {
            Some(PluginError::Denied(message)) => {
                assert!(message.contains("Warden's"), "{attack}: {message}")
            }
            other => panic!("{attack:?}: expected denied, got {other:?} ({err})"),
        }
        assert_eq!(snapshot(root), before, "{attack:?} changed something");
    }
    plugin.load("write:REAL/new").expect("the rest of the root works");
    assert!(root.join("real/new").is_file());
}

/// A bind mount of `from` at `to` (created), unmounted on drop; `None` with a
/// message where mounting is not permitted.
struct Bind(std::path::PathBuf);

impl Bind {
    fn new(from: &Path, to: &Path) -> Option<Self> {
        std::fs::create_dir_all(to).unwrap();
        let ok = std::process::Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(to)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!(
                "SKIPPED the bind-mount case: mount --bind is not permitted here; run as root to cover it"
            );
        }
        ok.then(|| Self(to.to_path_buf()))
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A fresh exFAT image on a loop device, mounted at `dir/mnt` (owner-only
/// permissions); unmounted and detached on drop.
struct ExFat {
    mnt: std::path::PathBuf,
    loop_device: Option<String>,
}

impl ExFat {
    /// `None`, with a message naming what is missing, where it cannot be made.
    fn mount(dir: &Path) -> Option<Self> {
        let skip = |why: &str| {
            println!(
                "SKIPPED the case-insensitive file system test: {why}. It needs mkfs.exfat (Debian exfatprogs) and \
                 either the kernel's exfat driver with loop devices or mount.exfat-fuse (exfat-fuse), as root; \
                 scripts/test installs the packages"
            );
            None
        };
        let image = dir.join("exfat.img");
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        std::fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            std::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run("mkfs.exfat", &[image.as_os_str()]) {
            return skip("mkfs.exfat is missing or failed");
        }
        let options = "loop,umask=077".as_ref();
        if run(
            "mount",
            &["-t".as_ref(), "exfat".as_ref(), "-o".as_ref(), options, image.as_os_str(), mnt.as_os_str()],
        ) {
            println!("mounted an exFAT image with the kernel driver");
            return Some(Self { mnt, loop_device: None });
        }
        let attached = std::process::Command::new("losetup").arg("--find").arg("--show").arg(&image).output();
        let Some(device) = attached
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        else {
            return skip("the kernel has no exfat driver and no loop device could be attached");
        };
        let mounted = Self { mnt: mnt.clone(), loop_device: Some(device.clone()) };
        if !run("mount.exfat-fuse", &["-o".as_ref(), "umask=077".as_ref(), device.as_ref(), mnt.as_os_str()])
        {
            return skip("exfat-fuse could not mount the loop device");
        }
        println!("mounted an exFAT image on {device} with exfat-fuse");
        Some(mounted)
    }

    fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for ExFat {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.mnt).status();
        if let Some(device) = &self.loop_device {
            let _ = std::process::Command::new("losetup").arg("-d").arg(device).status();
        }
    }
}
