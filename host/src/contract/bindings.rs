//! Rust bindings of the WIT contract, one module per plugin world. The first
//! world generates the shared interfaces; the others reuse them, so a type
//! such as `PluginError` is the same Rust type in every role.
//!
//! Host resources (`process.child`, `store-fs.lock`) keep the generated
//! marker types: the capability that serves one stores its own value in the
//! call's resource table under the same handle, so these bindings name no
//! capability type.

pub mod agent {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "agent-driver",
        // A child handle the host's table does not hold is a host failure: it traps.
        imports: { "warden:plugin/process": trappable },
    });
}

pub mod storage {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "storage-backend",
        with: {
            "warden:plugin/types": crate::contract::bindings::agent::warden::plugin::types,
            "warden:plugin/log": crate::contract::bindings::agent::warden::plugin::log,
            "warden:plugin/config": crate::contract::bindings::agent::warden::plugin::config,
        },
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "session-policy",
        with: {
            "warden:plugin/types": crate::contract::bindings::agent::warden::plugin::types,
            "warden:plugin/log": crate::contract::bindings::agent::warden::plugin::log,
            "warden:plugin/config": crate::contract::bindings::agent::warden::plugin::config,
        },
    });
}

pub mod context {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "context-builder",
        with: {
            "warden:plugin/types": crate::contract::bindings::agent::warden::plugin::types,
            "warden:plugin/log": crate::contract::bindings::agent::warden::plugin::log,
            "warden:plugin/config": crate::contract::bindings::agent::warden::plugin::config,
        },
    });
}

pub use agent::warden::plugin::types;
