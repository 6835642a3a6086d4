//! The MCP server over stdio (rmcp): the tools, their argument and result
//! types (from which their schemas are derived), and the handler; the
//! session logic lives elsewhere.

mod args;
mod inputs;
mod outputs;
pub mod progress;
mod server;
mod tools;

pub use outputs::SessionItem;
pub use server::{WardenServer, serve_stdio};
