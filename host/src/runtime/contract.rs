//! The contract's WIT text, embedded so `warden plugin new` can pin it into
//! a new plugin's project.

/// The WIT files of the contract version this host speaks, by file name.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("roles.wit", include_str!("../../../wit/roles.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];
