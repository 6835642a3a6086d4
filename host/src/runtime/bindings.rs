//! Rust bindings of the WIT contract, one module per plugin world. The first
//! world generates the shared interfaces; the others reuse them, so a type
//! such as `PluginError` is the same Rust type in every role.

pub mod agent {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "agent-driver",
        with: {
            "warden:plugin/process.child": crate::capabilities::process::HostChild,
        },
    });
}

pub mod storage {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "storage-backend",
        with: {
            "warden:plugin/types": crate::runtime::bindings::agent::warden::plugin::types,
            "warden:plugin/log": crate::runtime::bindings::agent::warden::plugin::log,
            "warden:plugin/config": crate::runtime::bindings::agent::warden::plugin::config,
            "warden:plugin/store-fs.lock": crate::capabilities::store_fs::FsLock,
        },
    });
}

pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "session-policy",
        with: {
            "warden:plugin/types": crate::runtime::bindings::agent::warden::plugin::types,
            "warden:plugin/log": crate::runtime::bindings::agent::warden::plugin::log,
            "warden:plugin/config": crate::runtime::bindings::agent::warden::plugin::config,
        },
    });
}

pub mod context {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "context-builder",
        with: {
            "warden:plugin/types": crate::runtime::bindings::agent::warden::plugin::types,
            "warden:plugin/log": crate::runtime::bindings::agent::warden::plugin::log,
            "warden:plugin/config": crate::runtime::bindings::agent::warden::plugin::config,
        },
    });
}

pub use agent::warden::plugin::types;
