//! The MCP server over stdio (rmcp): tool schemas and results only; the
//! session logic lives elsewhere.

mod args;
pub mod progress;
mod server;
mod tools;

pub use server::{WardenServer, serve_stdio};
