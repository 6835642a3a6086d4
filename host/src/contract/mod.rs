//! The bottom layer: the WIT contract as Rust. The generated bindings, the
//! table of roles (each role's world, its export and its imports), and the
//! check of a component against its role's world. Nothing here knows how a
//! capability is implemented or how a plugin is run; every other module may
//! use this one, and this one uses none of them.

pub mod bindings;
mod host_error;
pub use host_error::{HostError, describe};
pub mod role;
pub mod world_check;

/// The contract's WIT text, embedded so `warden plugin new` can pin it into
/// a new plugin's project.
/// The WIT files of the contract version this host speaks, by file name.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("roles.wit", include_str!("../../../wit/roles.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];
