//! The compiled-component cache: a warm start reuses the entry; a corrupt or
//! foreign entry is recompiled, never trusted.

use warden::runtime::CacheOutcome;
use warden::runtime::role::Role;
use warden_tests::{guest_wasm, runtime};

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

#[test]
fn corrupt_entries_are_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest_wasm("policy_default.wasm");
    let runtime = runtime(dir.path());
    let (_, first) = runtime.prepare(Role::SessionPolicy, "p", &wasm).unwrap();
    assert_eq!(first, CacheOutcome::Compiled);
    let (_, second) = runtime.prepare(Role::SessionPolicy, "p", &wasm).unwrap();
    assert_eq!(second, CacheOutcome::Hit);

    let entry = entries(dir.path()).pop().expect("one cache entry");
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let (_, third) = runtime.prepare(Role::SessionPolicy, "p", &wasm).unwrap();
    assert_eq!(third, CacheOutcome::Compiled, "a flipped byte forces a recompile");

    std::fs::write(&entry, b"WARDENC1").unwrap();
    let (_, fourth) = runtime.prepare(Role::SessionPolicy, "p", &wasm).unwrap();
    assert_eq!(fourth, CacheOutcome::Compiled, "a truncated entry forces a recompile");
    let (_, fifth) = runtime.prepare(Role::SessionPolicy, "p", &wasm).unwrap();
    assert_eq!(fifth, CacheOutcome::Hit, "the recompiled entry was written back");
}

#[test]
fn different_wasm_gets_a_different_entry() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path());
    runtime.prepare(Role::SessionPolicy, "p", &guest_wasm("policy_default.wasm")).unwrap();
    runtime.prepare(Role::ContextBuilder, "c", &guest_wasm("context_default.wasm")).unwrap();
    assert_eq!(entries(dir.path()).len(), 2);
}
