//! Plugin runtime costs, side by side in one run: a no-op guest call on a
//! live instance, the same call with per-call instantiation (what Warden
//! does), a guest-mediated 1 KiB atomic write against the same write done
//! natively through cap-std, and start-up with a cold vs a warm
//! compiled-component cache.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::capabilities::store_fs::FsRoot;
use warden::config::Config;
use warden::contract::role::Role;
use warden::runtime::embedded::GUEST_DIR;
use warden::runtime::loaded::{CallOptions, PluginInfo, PluginLimits, PluginSource};
use warden::runtime::manifest::{FromWasm, Manifest};
use warden::runtime::{EngineLimits, Runtime};

fn storage_info(wasm: &[u8], root: &Path) -> PluginInfo {
    PluginInfo {
        name: "bench".into(),
        role: Role::StorageBackend,
        source: PluginSource::Embedded("bench"),
        sha256: String::new(),
        manifest: Manifest::from_wasm(wasm).unwrap(),
        limits: PluginLimits {
            memory_bytes: 64 << 20,
            // The live-instance benchmark reuses one Store, whose budget clock keeps running.
            cpu_budget: Duration::from_secs(3600),
            output_cap: 1 << 20,
            max_children_per_call: 4,
            max_children: 16,
            call_timeout: Duration::from_secs(3600),
            max_concurrent_calls: 16,
        },
        fs_root: Some(FsRoot::open(root, true, 1 << 20).unwrap()),
        database: None,
        process: None,
        settings_json: "{}".into(),
        audit: false,
        live_children: Default::default(),
    }
}

fn calls(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runtime =
        Runtime::new(EngineLimits { concurrent_instances: 16, max_memory_bytes: 64 << 20 }, None).unwrap();
    let wasm = std::fs::read(Path::new(GUEST_DIR).join("hostile_storage.wasm")).unwrap();
    let plugin = runtime.load_storage(storage_info(&wasm, dir.path()), &wasm).unwrap();

    let mut group = c.benchmark_group("guest-call");
    let mut store = plugin.new_store(CallOptions::default());
    let instance = plugin.pre().instantiate(&mut store).unwrap();
    group.bench_function("no-op call, live instance", |b| {
        b.iter(|| instance.storage.call_delete(&mut store, "x").unwrap().unwrap())
    });
    group.bench_function("fresh store only (no instance)", |b| {
        b.iter(|| plugin.new_store(CallOptions::default()))
    });
    group.bench_function("fresh store + instantiate, no call", |b| {
        b.iter(|| {
            let mut store = plugin.new_store(CallOptions::default());
            plugin.pre().instantiate(&mut store).unwrap();
        })
    });
    group.bench_function("no-op call, fresh store + instantiate", |b| b.iter(|| plugin.delete("x").unwrap()));
    group.finish();

    let mut group = c.benchmark_group("atomic-write-1KiB");
    group.bench_function("guest via store-fs", |b| b.iter(|| plugin.load("write-kib:guest.bin").unwrap()));
    let native = FsRoot::open(dir.path(), true, 1 << 20).unwrap();
    let data = [b'x'; 1024];
    group.bench_function("native cap-std", |b| b.iter(|| native.write_atomic("native.bin", &data).unwrap()));
    group.finish();
}

fn startup(c: &mut Criterion) {
    let state = tempfile::tempdir().unwrap();
    let warm_cache = tempfile::tempdir().unwrap();
    let config_for = |cache: &Path| Config {
        state_dir: Some(state.path().to_path_buf()),
        cache_dir: Some(cache.to_path_buf()),
        ..Config::default()
    };
    let load = |config: &Config| {
        let runtime = Arc::new(warden::plugins::runtime(config).unwrap());
        warden::plugins::load_all(&runtime, config).unwrap();
    };
    load(&config_for(warm_cache.path()));

    let mut group = c.benchmark_group("startup-4-plugins");
    group.sample_size(10);
    group.bench_function("cold cache (compile)", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |cold| load(&config_for(cold.path())),
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("warm cache", |b| b.iter(|| load(&config_for(warm_cache.path()))));
    group.finish();
}

criterion_group!(benches, calls, startup);
criterion_main!(benches);
