//! The Python redaction context builder vs the default Rust one, side by
//! side: instantiation with a warm compiled cache, and a `build` call (fresh
//! instance, two turns replayed into a fresh prompt), which is what every
//! turn pays. The Python plugin must be built first:
//! `guests/context-redact-py/build.sh target/context_redact_py.wasm`.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::config::Config;
use warden::contract::role::Role;
use warden::plugins;
use warden::runtime::loaded::CallOptions;
use warden::sessions::new_session;
use warden::types::{Session, Turn};

fn session() -> Session {
    let turn = |n: u64| Turn {
        prompt: format!(
            "step {n}: refactor the parser and keep the token sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7cDe out"
        ),
        response: "done; tests pass".repeat(10),
        timestamp_ms: n,
    };
    Session { turns: vec![turn(1), turn(2)], ..new_session("bench", 0) }
}

fn context_plugins(c: &mut Criterion) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/context_redact_py.wasm");
    assert!(
        python.is_file(),
        "build it first: guests/context-redact-py/build.sh target/context_redact_py.wasm"
    );
    let cache = tempfile::tempdir().unwrap();
    let rust_config = Config { cache_dir: Some(cache.path().to_path_buf()), ..Config::default() };
    let mut python_config = rust_config.clone();
    python_config.plugins.entry(Role::ContextBuilder).or_default().path = Some(python);
    let session = session();

    let mut group = c.benchmark_group("context-builder");
    for (name, config) in
        [("rust context-default", &rust_config), ("python context-redact-py", &python_config)]
    {
        let runtime = plugins::runtime(config).unwrap();
        let (info, wasm) = plugins::plugin_info(Role::ContextBuilder, config).unwrap();
        let plugin = runtime.load_context(info, &wasm).unwrap();
        group.bench_function(format!("{name}: instantiate"), |b| {
            b.iter(|| {
                let mut store = plugin.new_store(CallOptions::default());
                plugin.pre().instantiate(&mut store).unwrap();
            })
        });
        group.bench_function(format!("{name}: build call (fresh instance)"), |b| {
            b.iter(|| plugin.build(Some(&session), "next step", false).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, context_plugins);
criterion_main!(benches);
