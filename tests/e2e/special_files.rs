//! FIFOs, sockets and device nodes inside a granted root, from the
//! attacker's side. Opening a FIFO blocks until a writer appears, so before
//! the fix one `read` hung the storage plugin (and its host thread) forever;
//! opening a device runs its driver. Every such entry is refused with an
//! error naming what it is, listings skip it, and the rest of the root keeps
//! working, through a hostile plugin and through the real `storage-dir`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use store_codec::key;
use warden::capabilities::store_fs::FsRoot;
use warden::contract::role::Role;
use warden::types::PluginError;
use warden_tests::{guest_wasm, info, runtime};

/// How long a call may stay blocked before the watchdog declares it hung and
/// frees it (so the test fails instead of hanging). Never reached when fixed.
const HUNG: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// A character device equal to /dev/null; `false` (with a message) where
/// creating device nodes is not permitted.
fn mknod_null(path: &Path) -> bool {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) } == 0;
    if !made {
        println!(
            "SKIPPED the device-node case: mknod is not permitted here ({}); run as root to cover it",
            std::io::Error::last_os_error()
        );
    }
    made
}

/// Run `call`; if it is still blocked after [`HUNG`], open `fifo`'s write end
/// so the blocked open returns, and report that it hung.
fn unless_hung<T>(fifo: &Path, what: &str, call: impl FnOnce() -> T) -> T {
    let (done, finished) = mpsc::channel::<()>();
    let fifo = fifo.to_path_buf();
    let watchdog = std::thread::spawn(move || match finished.recv_timeout(HUNG) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
            true
        }
        _ => false,
    });
    let out = call();
    let _ = done.send(());
    assert!(!watchdog.join().unwrap(), "{what} blocked on the FIFO until the test's watchdog opened it");
    out
}

struct Specials {
    dir: tempfile::TempDir,
    _socket: UnixListener,
    device: bool,
}

impl Specials {
    /// root/pipe (FIFO), root/sock (socket), root/null (device, as root),
    /// root/real/file; the same three inside root/sessions.d/ for storage-dir.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/file"), "inside").unwrap();
        mkfifo(&root.join("pipe"));
        let socket = UnixListener::bind(root.join("sock")).unwrap();
        let device = mknod_null(&root.join("null"));
        Self { dir, _socket: socket, device }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn denied_as(err: &warden::runtime::loaded::CallError, kind: &str, attack: &str) {
    match err.plugin_error() {
        Some(PluginError::Denied(message)) => {
            assert!(message.contains(kind) && message.contains("only regular files"), "{attack}: {message}")
        }
        other => panic!("{attack:?}: expected denied naming {kind:?}, got {other:?} ({err})"),
    }
}

#[test]
fn a_hostile_plugin_cannot_open_fifos_sockets_or_devices() {
    let specials = Specials::new();
    let root = specials.root();
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_storage.wasm");
    let fs = FsRoot::open(&root, true, 1 << 20).unwrap();
    let plugin = runtime.load_storage(info(Role::StorageBackend, &wasm, Some(fs), None), &wasm).unwrap();
    let mut attacks = vec![
        ("read:pipe", "FIFO"),
        ("range:pipe|0|4", "FIFO"),
        ("write:pipe", "FIFO"),
        ("append:pipe", "FIFO"),
        ("append-durable:pipe", "FIFO"),
        ("remove:pipe", "FIFO"),
        ("rename:pipe|moved", "FIFO"),
        ("lock:pipe", "FIFO"),
        ("read:sock", "socket"),
        ("range:sock|0|4", "socket"),
        ("write:sock", "socket"),
        ("append:sock", "socket"),
        ("append-durable:sock", "socket"),
        ("lock:sock", "socket"),
    ];
    if specials.device {
        attacks.extend([
            ("read:null", "device"),
            ("range:null|0|4", "device"),
            ("append:null", "device"),
            ("append-durable:null", "device"),
            ("lock:null", "device"),
        ]);
    }
    let fifo = root.join("pipe");
    for (attack, kind) in attacks {
        let err = unless_hung(&fifo, attack, || plugin.load(attack)).expect_err(attack);
        denied_as(&err, kind, attack);
        plugin.load("harmless").expect("the plugin keeps working");
    }
    let listing = plugin.load("list:").unwrap().extra_json;
    assert_eq!(listing, r#"{"result":"real"}"#, "listings skip FIFOs, sockets and devices");
    assert_eq!(plugin.load("read:real/file").unwrap().extra_json, r#"{"result":"inside"}"#);
    let kinds = |name: &str| std::fs::symlink_metadata(root.join(name)).unwrap().file_type();
    use std::os::unix::fs::FileTypeExt as _;
    assert!(kinds("pipe").is_fifo() && kinds("sock").is_socket(), "nothing was replaced or moved");
}

#[test]
fn the_storage_plugin_refuses_a_fifo_session_file_and_lists_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_rt, store) = crate::storage::store(root);
    store.save(&crate::storage::session("kept", 1), None).unwrap();
    let sessions = root.join("sessions.d");
    let fifo = sessions.join(key::file_name("piped").unwrap());
    mkfifo(&fifo);
    let _socket = UnixListener::bind(sessions.join(key::file_name("socketed").unwrap())).unwrap();
    let device = mknod_null(&sessions.join(key::file_name("device").unwrap()));

    let err = unless_hung(&fifo, "load", || store.load("piped")).expect_err("a FIFO is not a session");
    denied_as(&err, "FIFO", "load");
    let err = unless_hung(&fifo, "load", || store.load("socketed")).expect_err("a socket is not a session");
    denied_as(&err, "socket", "load");
    if device {
        let err = store.load("device").expect_err("a device is not a session");
        denied_as(&err, "device", "load");
    }
    let listed = unless_hung(&fifo, "list", || store.list()).unwrap();
    assert_eq!(listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["kept"]);
    let err = unless_hung(&fifo, "save", || store.save(&crate::storage::session("piped", 2), None))
        .expect_err("a FIFO is never replaced by a save");
    denied_as(&err, "FIFO", "save");
    use std::os::unix::fs::FileTypeExt as _;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was left alone");
    assert_eq!(store.load("kept").unwrap().id, "kept", "the rest of the store keeps working");
}
