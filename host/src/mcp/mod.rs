//! The MCP server over stdio and Streamable HTTP (rmcp): the tools, their
//! argument and result types (from which their schemas are derived), the
//! handler and the transports; the session logic lives elsewhere.

mod args;
pub mod http;
mod inputs;
mod outputs;
pub mod progress;
mod server;
mod stdio;
pub mod tasks;
mod tools;

pub use outputs::SessionItem;
pub use server::{WardenServer, serve_stdio};
