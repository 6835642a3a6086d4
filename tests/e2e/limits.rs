//! A guest that spins, hoards memory or panics is stopped with an error that
//! names the plugin and the cause; the next call on the same plugin works,
//! and finds nothing an earlier call left in memory.

use warden::contract::role::Role;
use warden::control::CancelFlag;
use warden::runtime::calls::StoragePlugin;
use warden::runtime::loaded::AbortReason;
use warden::runtime::loaded::CallOptions;
use warden_tests::{TEST_CPU_BUDGET, TEST_MEMORY, agent_turn, guest_wasm, info, runtime};

fn hostile_storage() -> (warden::runtime::Runtime, StoragePlugin) {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_storage.wasm");
    let plugin = runtime.load_storage(info(Role::StorageBackend, &wasm, None, None), &wasm).unwrap();
    (runtime, plugin)
}

fn assert_next_call_works(plugin: &StoragePlugin) {
    let session = plugin.load("harmless").expect("the plugin keeps serving after an abort");
    assert_eq!(session.extra_json, r#"{"result":"harmless"}"#);
}

#[test]
fn an_infinite_loop_is_trapped_by_the_cpu_budget() {
    let (_rt, plugin) = hostile_storage();
    let err = plugin.load("loop").unwrap_err();
    assert_eq!(err.abort_reason(), Some(&AbortReason::CpuBudget(TEST_CPU_BUDGET)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("test-storage-backend") && message.contains("CPU budget of 300 ms"),
        "{message}"
    );
    assert_next_call_works(&plugin);
}

#[test]
fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    let (_rt, plugin) = hostile_storage();
    let err = plugin.load("bomb").unwrap_err();
    assert_eq!(err.abort_reason(), Some(&AbortReason::MemoryLimit(TEST_MEMORY)), "{err}");
    assert!(err.to_string().contains("memory limit of 32 MiB"), "{err}");
    assert_next_call_works(&plugin);
}

#[test]
fn a_panic_reports_its_message() {
    let (_rt, plugin) = hostile_storage();
    let err = plugin.load("panic").unwrap_err();
    match err.abort_reason() {
        Some(AbortReason::Panic(message)) => {
            assert!(message.contains("hostile plugin panicked on purpose"), "{message}")
        }
        other => panic!("expected a panic, got {other:?}: {err}"),
    }
    assert_next_call_works(&plugin);
}

#[test]
fn a_result_the_contract_does_not_allow_is_refused() {
    let (_rt, plugin) = hostile_storage();
    let err = plugin.load("bad-utf8").unwrap_err();
    match err.abort_reason() {
        Some(AbortReason::Malformed(message)) => assert!(message.contains("utf-8"), "{message}"),
        other => panic!("expected a malformed result, got {other:?}: {err}"),
    }
    assert!(
        err.to_string().contains("test-storage-backend") && err.to_string().contains("broke the contract")
    );
    assert_next_call_works(&plugin);
}

#[test]
fn calls_run_concurrently_in_separate_instances() {
    let (_rt, plugin) = hostile_storage();
    std::thread::scope(|scope| {
        let spinner = scope.spawn(|| plugin.load("loop"));
        for _ in 0..20 {
            assert_next_call_works(&plugin);
        }
        assert!(spinner.join().unwrap().is_err());
    });
}

/// Freed instances' pages are kept resident and zeroed for the next call, not
/// handed back to the kernel: a call must still find its memory as the module
/// starts it, in its statics and in pages it grows, whatever an earlier call
/// (on the same pool slot, or another) wrote there.
#[test]
fn a_call_finds_nothing_an_earlier_call_left_in_memory() {
    let runtime = runtime(&crate::cache_dir());
    let wasm = guest_wasm("hostile_agent.wasm");
    let plugin = runtime.load_agent(info(Role::AgentDriver, &wasm, None, None), &wasm).unwrap();
    let call = || CallOptions { timeout: None, cpu_budget: None, cancel: CancelFlag::new(), progress: None };
    for round in 0..20 {
        let answer = agent_turn(&plugin, &format!("remember:secret-{round}"), call()).unwrap();
        assert_eq!(answer, "static= grown-nonzero=0", "round {round} found an earlier call's memory");
    }
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|n| {
                let plugin = &plugin;
                scope.spawn(move || agent_turn(plugin, &format!("remember:parallel-{n}"), call()).unwrap())
            })
            .collect();
        for answer in calls {
            assert_eq!(answer.join().unwrap(), "static= grown-nonzero=0");
        }
    });
}
