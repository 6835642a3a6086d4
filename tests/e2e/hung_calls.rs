//! Plugin calls that hang in the host, from the attacker's side: a storage
//! plugin that takes a lock and then waits for it again with the longest wait
//! the contract allows (`wait-ms = u32::MAX`). Each such call ends with its
//! deadline or its caller's cancellation, and a plugin whose calls all hang
//! cannot take the instances the other plugins need: past its own limit its
//! calls are refused with an error naming the limit and the setting.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use warden::capabilities::store_fs::FsRoot;
use warden::contract::role::Role;
use warden::control::CancelFlag;
use warden::runtime::Runtime;
use warden::runtime::calls::{PolicyPlugin, StoragePlugin};
use warden::runtime::loaded::{AbortReason, CallError, CallOptions};
use warden::types::PluginError;
use warden_tests::{TEST_CONCURRENT_CALLS, guest_wasm, info, is_locked, runtime, wait_until_locked};

/// The hostile storage plugin on `root`, with this call timeout (also the
/// longest a call waits for a free slot).
fn storage(runtime: &Runtime, root: &Path, call_timeout: Duration) -> StoragePlugin {
    let wasm = guest_wasm("hostile_storage.wasm");
    let mut info = info(Role::StorageBackend, &wasm, Some(FsRoot::open(root, true, 1 << 20).unwrap()), None);
    info.limits.call_timeout = call_timeout;
    runtime.load_storage(info, &wasm).unwrap()
}

fn policy(runtime: &Runtime) -> PolicyPlugin {
    let wasm = guest_wasm("policy_default.wasm");
    runtime.load_policy(info(Role::SessionPolicy, &wasm, None, None), &wasm).unwrap()
}

fn ended_by_deadline(err: &CallError) -> bool {
    matches!(err.abort_reason(), Some(AbortReason::Timeout(_)))
        || matches!(err.plugin_error(), Some(PluginError::Timeout(_)))
}

fn ended_by_cancellation(err: &CallError) -> bool {
    matches!(err.abort_reason(), Some(AbortReason::Cancelled))
        || matches!(err.plugin_error(), Some(PluginError::Cancelled(_)))
}

#[test]
fn an_endless_lock_wait_ends_with_the_call_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(&crate::cache_dir());
    let plugin = storage(&runtime, dir.path(), Duration::from_millis(300));
    let err = plugin.load("lock-hang:held.lock").unwrap_err();
    assert!(ended_by_deadline(&err), "{err}");
    assert!(err.to_string().contains("0.3 s"), "the error names the limit: {err}");
    assert!(!is_locked(&dir.path().join("held.lock")), "the plugin's locks went with its call");
    assert_eq!(plugin.load("harmless").unwrap().extra_json, r#"{"result":"harmless"}"#);
}

#[test]
fn an_endless_lock_wait_ends_when_the_caller_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(&crate::cache_dir());
    let plugin = storage(&runtime, dir.path(), Duration::from_secs(24 * 3600));
    let call = CallOptions { cancel: CancelFlag::new(), ..CallOptions::default() };
    let err = std::thread::scope(|scope| {
        let hung = scope.spawn(|| plugin.with(&call).load("lock-hang:held.lock"));
        wait_until_locked(&dir.path().join("held.lock"));
        call.cancel.cancel();
        hung.join().unwrap().unwrap_err()
    });
    assert!(ended_by_cancellation(&err), "{err}");
    assert!(!is_locked(&dir.path().join("held.lock")));
    assert_eq!(plugin.load("harmless").unwrap().extra_json, r#"{"result":"harmless"}"#);
}

#[test]
fn hung_calls_of_one_plugin_cannot_take_the_pool_from_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(&crate::cache_dir());
    // A short wait for a slot; the hung calls themselves have a day.
    let plugin = storage(&runtime, dir.path(), Duration::from_millis(300));
    let policy = policy(&runtime);
    let call = CallOptions { timeout: Some(Duration::from_secs(24 * 3600)), ..CallOptions::default() };
    // Twice the plugin's limit: as many calls as the whole test pool holds.
    let attempts = 2 * TEST_CONCURRENT_CALLS;
    std::thread::scope(|scope| {
        let (done, results) = mpsc::channel();
        for n in 0..attempts {
            let (plugin, call, done) = (&plugin, &call, done.clone());
            scope.spawn(move || done.send(plugin.with(call).load(&format!("lock-hang:{n}.lock"))).unwrap());
        }
        let refused: Vec<CallError> =
            (0..attempts - TEST_CONCURRENT_CALLS).map(|_| results.recv().unwrap().unwrap_err()).collect();
        for err in &refused {
            let message = err.to_string();
            assert!(
                matches!(err, CallError::AtCapacity { limit, .. } if *limit == TEST_CONCURRENT_CALLS),
                "{message}"
            );
            assert!(
                message.contains(&format!("its {TEST_CONCURRENT_CALLS} concurrent calls were all busy"))
                    && message.contains("`max-concurrent-calls` under [plugins.storage-backend]"),
                "{message}"
            );
        }
        let locks: Vec<_> = (0..attempts).map(|n| dir.path().join(format!("{n}.lock"))).collect();
        warden_tests::wait_for("every call slot to hold its lock", || {
            locks.iter().filter(|lock| is_locked(lock)).count() >= TEST_CONCURRENT_CALLS
        });
        // Another plugin on the same engine still gets an instance.
        policy.validate_id("another-session").expect("the policy plugin keeps answering");
        call.cancel.cancel();
        for _ in 0..TEST_CONCURRENT_CALLS {
            let err = results.recv().unwrap().unwrap_err();
            assert!(ended_by_cancellation(&err), "{err}");
        }
    });
    let ran = (0..attempts).filter(|n| dir.path().join(format!("{n}.lock")).exists()).count();
    assert_eq!(ran, TEST_CONCURRENT_CALLS, "only the plugin's own limit of calls ever ran");
    assert_eq!(plugin.load("harmless").unwrap().extra_json, r#"{"result":"harmless"}"#);
}
