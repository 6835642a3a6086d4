//! Rust bindings of the WIT contract, one module per plugin world. The first
//! world generates the shared interfaces; the others reuse them, so a type
//! such as `PluginError` is the same Rust type in every role.
//!
//! Host resources (`process.child`, `store-fs.lock`) keep the generated
//! marker types: the capability that serves one stores its own value in the
//! call's resource table under the same handle, so these bindings name no
//! capability type.
//!
//! The capability interfaces are trappable, and their `plugin-error` is
//! [`HostError`](super::HostError) on the host side: a refusal the guest gets as its own
//! `plugin-error`, or a host failure (a handle the table does not hold, a
//! full table) that traps instead.

pub mod agent {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "agent-driver",
        imports: {
            "warden:plugin/process": trappable,
            "warden:plugin/store-fs-readonly": trappable,
        },
        trappable_error_type: { "warden:plugin/types.plugin-error" => crate::contract::HostError },
    });
}

pub mod storage {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "storage-backend",
        imports: { "warden:plugin/store-fs": trappable, "warden:plugin/sql": trappable },
        trappable_error_type: { "warden:plugin/types.plugin-error" => crate::contract::HostError },
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
