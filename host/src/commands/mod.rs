//! The operator's subcommands besides `serve`: they work on the configured
//! store through the same plugins the server uses.

pub mod copy_store;
pub mod migrate;
pub mod plugin_check;
pub mod plugin_pack;
pub mod scaffold;
pub mod sessions;
