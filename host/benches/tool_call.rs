//! A `codex` tool call with an instant fake agent (the test plugin
//! `hostile-agent`, which answers without running anything), side by side:
//! the MCP `tools/call` round trip through `warden serve` over stdio, a
//! `ping` round trip as the protocol baseline, and the same turn called
//! in-process (every plugin call of a turn: policy, storage load, context,
//! agent, storage save) with the store on disk and on tmpfs, where the
//! difference is the fsyncs of the save. Every call resets its session so
//! the session does not grow across iterations.

#[path = "support/mcp_stdio.rs"]
mod mcp_stdio;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_stdio::McpServer;
use serde_json::json;
use warden::auth::{Principal, Principals};
use warden::config::Config;
use warden::runtime::embedded::GUEST_DIR;
use warden::runtime::loaded::CallOptions;
use warden::sessions::{
    DEFAULT_MAX_RESPONSE_BYTES, Owners, Sessions, Target, TurnLocks, TurnRequest, TurnSettings,
};

fn config_text(state: &Path) -> String {
    format!(
        "state-dir = {state:?}\ncache-dir = {cache:?}\n[plugins.agent-driver]\npath = {agent:?}\n",
        cache = state.join("cache"),
        agent = Path::new(GUEST_DIR).join("hostile_agent.wasm"),
    )
}

fn start_server(config: &Path) -> McpServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command.arg("--config").arg(config).arg("serve").env("WARDEN_LOG", "error");
    McpServer::start(command)
}

fn in_process(state: &Path) -> Sessions {
    let config = Config::from_file(&write_config(state)).unwrap();
    let runtime = Box::leak(Box::new(warden::plugins::runtime(&config).unwrap()));
    let set = warden::plugins::load_all(runtime, &config).unwrap();
    Sessions::new(
        Arc::new(set),
        TurnLocks::default(),
        DEFAULT_MAX_RESPONSE_BYTES,
        Owners::new(Principals::local_only("bench")),
    )
}

fn write_config(state: &Path) -> PathBuf {
    std::fs::create_dir_all(state).unwrap();
    let file = state.join("warden.toml");
    std::fs::write(&file, config_text(state)).unwrap();
    file
}

fn local() -> Principal {
    Principal::new("bench").unwrap()
}

fn turn(id: &str) -> TurnRequest {
    TurnRequest {
        agent: "codex".into(),
        target: Target::Session { id: id.into(), create: true },
        prompt: "harmless".into(),
        reset: true,
        settings: TurnSettings::default(),
    }
}

fn tool_call(c: &mut Criterion) {
    let disk = tempfile::tempdir_in("/var/tmp").unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let mut group = c.benchmark_group("codex-tool-call-instant-agent");

    let mut server = start_server(&write_config(&disk.path().join("served")));
    group.bench_function("MCP tools/call round trip (stdio, disk store)", |b| {
        b.iter(|| {
            let reply = server.call_tool(
                "codex",
                json!({"prompt": "harmless", "sessionId": "bench", "resetSession": true}),
            );
            assert_eq!(reply["result"]["structuredContent"]["content"], "harmless", "{reply}");
        })
    });
    group.bench_function("MCP ping round trip (stdio)", |b| b.iter(|| server.call_tool("ping", json!({}))));
    drop(server);

    let sessions = in_process(&disk.path().join("in-process"));
    group.bench_function("in-process turn, disk store", |b| {
        b.iter(|| sessions.run_turn(&local(), turn("bench"), CallOptions::default()).unwrap())
    });
    let sessions = in_process(shm.path());
    group.bench_function("in-process turn, tmpfs store", |b| {
        b.iter(|| sessions.run_turn(&local(), turn("bench"), CallOptions::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tool_call);
criterion_main!(benches);
