//! A plugin whose world does not match its role is refused at load time with
//! a message naming the wrong import or export; so is a non-component.

use warden::contract::role::{CONTRACT_VERSION, Role};
use warden_tests::{guest_wasm, info, runtime};

#[test]
fn a_storage_plugin_cannot_serve_as_a_policy() {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_storage.wasm");
    let err = runtime.load_policy(info(Role::SessionPolicy, &wasm, None, None), &wasm).err().unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("cannot serve as session-policy"), "{message}");
    assert!(
        message.contains(&format!("does not export `warden:plugin/policy@{CONTRACT_VERSION}`")),
        "{message}"
    );
}

#[test]
fn an_agent_plugin_cannot_serve_as_storage() {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let err = runtime.load_storage(info(Role::StorageBackend, &wasm, None, None), &wasm).err().unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("cannot serve as storage-backend"), "{message}");
    assert!(
        message.contains(&format!("does not export `warden:plugin/storage@{CONTRACT_VERSION}`")),
        "{message}"
    );
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let runtime = runtime(&crate::cache_dir());
    let junk = b"\0asm\x01\0\0\0 definitely not a component".to_vec();
    let info = warden_tests::info(Role::ContextBuilder, &guest_wasm("context_default.wasm"), None, None);
    let err = runtime.load_context(info, &junk).err().unwrap();
    assert!(format!("{err:#}").contains("is not a loadable WebAssembly component"), "{err:#}");
}

#[test]
fn every_default_plugin_fits_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        warden::config::Config { state_dir: Some(dir.path().join("state")), ..Default::default() };
    config.cache_dir = Some(crate::cache_dir());
    let runtime = warden::plugins::runtime(&config).unwrap();
    let set = warden::plugins::load_all(&runtime, &config).unwrap();
    assert_eq!(set.storage.info.name, "storage-dir");
    let agents: Vec<(&str, &str)> =
        set.agents.iter().map(|a| (a.name.as_str(), a.plugin.info.name.as_str())).collect();
    assert_eq!(agents, [("codex", "agent-codex"), ("claude", "agent-claude"), ("gemini", "agent-gemini")]);
    assert_eq!(set.policy.validate_id("auth-review").map_err(|e| e.to_string()), Ok(()));
}

/// A plugin built from the frozen 0.1.0 contract keeps loading and answering
/// on this host, which speaks a later version of the 0.1 line.
#[test]
fn a_plugin_built_for_the_released_0_1_0_contract_still_works() {
    assert_ne!(CONTRACT_VERSION, "0.1.0", "this test proves compatibility with an earlier release");
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("frozen_policy.wasm");
    let policy = runtime.load_policy(info(Role::SessionPolicy, &wasm, None, None), &wasm).unwrap();
    policy.validate_id("fine").unwrap();
    let err = policy.validate_id("x-refused").unwrap_err();
    assert!(err.to_string().contains("ids starting with x- are refused"), "{err}");
    let existing = [
        warden::types::SessionSummary {
            id: "old".into(),
            created_ms: 0,
            last_accessed_ms: 1,
            turn_count: 0,
            agent_thread_id: None,
            model: None,
            cwd: None,
        },
        warden::types::SessionSummary {
            id: "new".into(),
            created_ms: 0,
            last_accessed_ms: 9,
            turn_count: 0,
            agent_thread_id: None,
            model: None,
            cwd: None,
        },
    ];
    assert_eq!(policy.admit("third", &existing, 10).unwrap(), ["old"]);
}

/// A storage plugin built from the frozen 0.1.1 contract, before
/// `storage-catalog`, keeps loading; the host pages its full listing itself.
#[test]
fn a_storage_plugin_built_for_0_1_1_still_loads_and_its_listing_pages() {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("frozen_storage.wasm");
    let root = tempfile::tempdir().unwrap();
    let fs = warden::capabilities::store_fs::FsRoot::open(root.path(), true, 1 << 20).unwrap();
    let storage = runtime.load_storage(info(Role::StorageBackend, &wasm, Some(fs), None), &wasm).unwrap();
    assert!(!storage.has_catalog());
    for i in 0..5u64 {
        let session = warden::sessions::new_session(&format!("s{i}"), 1_000 + i);
        storage.save(&session, Some(0)).unwrap();
    }
    let call = warden::runtime::loaded::CallOptions::default();
    let mut request = warden::sessions::ListRequest { limit: 2, ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = warden::sessions::page_of(&storage, &request, &call).unwrap();
        assert!(page.sessions.len() <= 2);
        seen.extend(page.sessions.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ["s4", "s3", "s2", "s1", "s0"]);
}
