//! End-to-end tests: hostile plugins against the real runtime and
//! capabilities, and the `warden` binary over stdio.

mod argument_policy;
mod cache;
mod claude;
mod codex_drop_in;
mod codex_home;
mod codex_mcp;
mod config_paths;
mod containment;
mod database_grant;
mod fs_attacks;
mod gemini;
mod handoff;
mod host_paths;
mod http;
mod hung_calls;
mod limits;
mod log_lines;
mod mcp_stdio;
mod plugin_check;
mod policy_context;
mod postgres;
mod process_attacks;
mod redaction;
mod scaffold;
mod serve_limits;
mod special_files;
mod sql_attacks;
mod storage;
mod storage_migrate;
mod storage_processes;
mod store_index;
mod tasks_stdio;
mod world;

use std::path::PathBuf;

/// One compiled-component cache for the whole run (compiling is the slow part).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}
