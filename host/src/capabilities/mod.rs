//! The capabilities the host lends to plugins, one module per WIT interface.
//! Each module holds both the policy (what is allowed) and its enforcement.

pub mod log;
pub mod process;
pub mod progress;
pub mod reserved;
pub mod settings;
pub mod store_fs;
