//! Warden: an MCP server that gives coding-agent CLIs durable, resumable
//! sessions. Session policy, context building, storage and agent drivers are
//! sandboxed WebAssembly components; the host lends them only the
//! capabilities an operator grants.

pub mod auth;
pub mod capabilities;
pub mod commands;
pub mod config;
pub mod config_paths;
pub mod contract;
pub mod control;
#[cfg(test)]
mod layering;
pub mod logging;
pub mod mcp;
pub mod plugins;
pub mod runtime;
pub mod sessions;

/// The contract's shared types (`session`, `plugin-error`, …) as Rust types.
pub use contract::bindings::types;
