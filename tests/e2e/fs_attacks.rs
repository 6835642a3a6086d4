//! `store-fs` from the attacker's side: a storage plugin that tries to leave
//! its root, follow symlinks (pointing outside AND inside), or smuggle NUL
//! bytes is refused with `denied`; nothing outside the root (or inside it)
//! changes, and the plugin keeps working.

use std::os::unix::fs::symlink;
use std::path::Path;

use warden::capabilities::store_fs::FsRoot;
use warden::contract::role::Role;
use warden::runtime::calls::StoragePlugin;
use warden::types::PluginError;
use warden_tests::{guest_wasm, info, runtime, snapshot};

struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    /// root/real/file, root/linkout -> outside, root/linkin -> real,
    /// root/fileout -> outside/secret, root/filein -> real/file.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("real/file"), "inside").unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        symlink(&outside, root.join("linkout")).unwrap();
        symlink("real", root.join("linkin")).unwrap();
        symlink(outside.join("secret"), root.join("fileout")).unwrap();
        symlink("real/file", root.join("filein")).unwrap();
        Self { dir }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> std::path::PathBuf {
        self.dir.path().join("outside")
    }
}

fn plugin(root: &Path) -> (warden::runtime::Runtime, StoragePlugin) {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_storage.wasm");
    let fs = FsRoot::open(root, true, 1 << 20).unwrap();
    let plugin = runtime.load_storage(info(Role::StorageBackend, &wasm, Some(fs), None), &wasm).unwrap();
    (runtime, plugin)
}

const ATTACKS: &[&str] = &[
    "read:../outside/secret",
    "read:/etc/passwd",
    "read:linkout/secret",
    "read:linkin/file",
    "read:fileout",
    "read:filein",
    "read:real/./file",
    "read:real/../real/file",
    "read:real//file",
    "read:",
    "read:real/file\0.json",
    "range:linkout/secret|0|6",
    "range:fileout|0|6",
    "range:../outside/secret|0|6",
    "write:linkout/new",
    "write:linkin/new",
    "write:fileout",
    "write:filein",
    "write:../outside/new",
    "write:/tmp/warden-absolute",
    "append:linkout/new",
    "append:linkin/new",
    "append:fileout",
    "append:filein",
    "append:../outside/new",
    "append:/tmp/warden-absolute",
    "append-durable:linkout/new",
    "append-durable:linkin/new",
    "append-durable:fileout",
    "append-durable:filein",
    "append-durable:../outside/new",
    "append-durable:/tmp/warden-absolute",
    "remove:linkout/secret",
    "remove:fileout",
    "remove:filein",
    "rmdir:linkout",
    "rmdir:linkin",
    "rename:real/file|linkout/stolen",
    "rename:linkout/secret|real/stolen",
    "rename:fileout|real/moved",
    "rename:real/file|fileout",
    "rename:real/file|../outside/stolen",
    "list:linkout",
    "list:linkin",
    "list:..",
    "mkdir:linkout/sub",
    "mkdir:linkin/sub",
    "mkdir:../escape",
    "meta:linkout/secret",
    "meta:linkin/file",
    "lock:linkout/lock",
    "lock:fileout",
];

#[test]
fn every_escape_attempt_is_denied_and_changes_nothing() {
    let layout = Layout::new();
    let (_rt, plugin) = plugin(&layout.root());
    let outside_before = snapshot(&layout.outside());
    let root_before = snapshot(&layout.root());
    for attack in ATTACKS {
        let err = plugin.load(attack).expect_err(attack);
        match err.plugin_error() {
            Some(PluginError::Denied(message)) => assert!(!message.is_empty()),
            other => panic!("{attack:?}: expected denied, got {other:?} ({err})"),
        }
        assert_eq!(snapshot(&layout.outside()), outside_before, "{attack:?} changed a file outside the root");
        assert_eq!(snapshot(&layout.root()), root_before, "{attack:?} changed the root");
        plugin.load("harmless").expect("the plugin keeps working");
    }
    assert!(ATTACKS.len() >= 30);
}

#[test]
fn legitimate_operations_inside_the_root_work() {
    let layout = Layout::new();
    let (_rt, plugin) = plugin(&layout.root());
    let read = plugin.load("read:real/file").unwrap();
    assert_eq!(read.extra_json, r#"{"result":"inside"}"#);
    assert_eq!(plugin.load("range:real/file|2|3").unwrap().extra_json, r#"{"result":"sid"}"#);
    assert_eq!(plugin.load("range:real/file|4|100").unwrap().extra_json, r#"{"result":"de"}"#);
    assert_eq!(plugin.load("range:real/file|100|5").unwrap().extra_json, r#"{"result":""}"#);
    plugin.load("mkdir:a/b/c").unwrap();
    plugin.load("write:a/b/c/new.json").unwrap();
    assert_eq!(
        std::fs::read_to_string(layout.root().join("a/b/c/new.json")).unwrap(),
        "written by a hostile plugin"
    );
    let listing = plugin.load("list:a/b/c").unwrap();
    assert_eq!(listing.extra_json, r#"{"result":"new.json"}"#, "temporary files never show up");
    plugin.load("rename:a/b/c/new.json|a/moved.json").unwrap();
    assert!(layout.root().join("a/moved.json").is_file());
    plugin.load("remove:a/moved.json").unwrap();
    assert!(!layout.root().join("a/moved.json").exists());
    let line = "appended durably by a hostile plugin\n";
    for n in 1..=2 {
        let length = plugin.load("append-durable:a/log").unwrap().extra_json;
        assert_eq!(length, format!(r#"{{"result":"length {}"}}"#, n * line.len()));
    }
    assert_eq!(std::fs::read_to_string(layout.root().join("a/log")).unwrap(), line.repeat(2));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(layout.root().join("a/log")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let meta = plugin.load("meta:fileout").unwrap();
    assert!(
        meta.extra_json.contains("Symlink"),
        "metadata describes a link without following it: {}",
        meta.extra_json
    );
    let missing = plugin.load("read:real/absent").unwrap_err();
    assert!(matches!(missing.plugin_error(), Some(PluginError::NotFound(_))), "{missing}");
}

#[test]
fn a_symlinked_root_is_refused() {
    let layout = Layout::new();
    let link = layout.dir.path().join("root-link");
    symlink(layout.root(), &link).unwrap();
    let err = FsRoot::open(&link, true, 1 << 20).err().expect("a symlinked root is refused");
    assert!(matches!(err, PluginError::Denied(ref m) if m.contains("symbolic link")), "{err:?}");
}

#[test]
fn a_read_only_root_refuses_every_change() {
    let layout = Layout::new();
    let root = FsRoot::open(&layout.root(), false, 1 << 20).unwrap();
    assert_eq!(root.read("real/file").unwrap(), b"inside");
    for result in [
        root.write_atomic("real/new", b"x"),
        root.remove_file("real/file"),
        root.rename("real/file", "real/other"),
        root.create_dir("newdir"),
    ] {
        assert!(matches!(result, Err(PluginError::Denied(ref m)) if m.contains("read-only")), "{result:?}");
    }
    for appended in [root.append("real/file", b"x"), root.append_durable("real/file", b"x")] {
        assert!(
            matches!(appended, Err(PluginError::Denied(ref m)) if m.contains("read-only")),
            "{appended:?}"
        );
    }
    assert_eq!(root.read("real/file").unwrap(), b"inside");
}

/// A directory swapped for a symlink while writes are in flight: each write
/// lands inside the root or is refused, never outside.
#[test]
fn a_directory_swapped_for_a_symlink_mid_write_never_leaks() {
    let layout = Layout::new();
    let root_path = layout.root();
    let root = FsRoot::open(&root_path, true, 1 << 20).unwrap();
    std::fs::create_dir(root_path.join("swap")).unwrap();
    let outside = layout.outside();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let swap = root_path.join("swap");
            let parked = root_path.join("parked");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::rename(&swap, &parked).unwrap();
                symlink(&outside, &swap).unwrap();
                std::fs::remove_file(&swap).unwrap();
                std::fs::rename(&parked, &swap).unwrap();
            }
        });
        let mut refused = 0;
        for i in 0..2000 {
            match root.write_atomic(&format!("swap/f{i}"), b"data") {
                Ok(()) => {}
                Err(PluginError::Denied(_) | PluginError::NotFound(_) | PluginError::Invalid(_)) => {
                    refused += 1
                }
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        println!("{refused} of 2000 writes were refused during the swap");
    });
    let leaked: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "secret")
        .collect();
    assert!(leaked.is_empty(), "files escaped the root: {leaked:?}");
}

/// Temporary files a killed writer left are hidden from listings, and
/// removed once stale; a fresh one (a write in flight) is left alone.
#[test]
fn stale_temporary_files_are_cleaned_up_fresh_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = FsRoot::open(dir.path(), true, 1 << 20).unwrap();
    std::fs::write(dir.path().join("kept.json"), "x").unwrap();
    let stale = dir.path().join(".warden-tmp.stale");
    let fresh = dir.path().join(".warden-tmp.fresh");
    std::fs::write(&stale, "half a session").unwrap();
    std::fs::write(&fresh, "a write in flight").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(two_hours_ago).unwrap();
    let names: Vec<String> = root.list_dir("").unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["kept.json"]);
    assert!(!stale.exists(), "the stale temporary file was removed");
    assert!(fresh.exists(), "a recent one may belong to a write in progress");
}
