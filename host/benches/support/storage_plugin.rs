//! A storage plugin loaded as the storage benches call it: embedded, with
//! roomy limits, granted a directory or a database.

use std::sync::Arc;
use std::time::Duration;

use warden::capabilities::sql::Database;
use warden::capabilities::store_fs::FsRoot;
use warden::contract::role::Role;
use warden::runtime::Runtime;
use warden::runtime::calls::StoragePlugin;
use warden::runtime::loaded::{PluginInfo, PluginLimits, PluginSource};
use warden::runtime::manifest::{FromWasm, Manifest};

pub fn load(
    runtime: &Runtime,
    (name, wasm): (&'static str, &'static [u8]),
    fs_root: Option<FsRoot>,
    database: Option<Arc<Database>>,
) -> StoragePlugin {
    let info = PluginInfo {
        name: name.into(),
        role: Role::StorageBackend,
        source: PluginSource::Embedded(name),
        sha256: String::new(),
        manifest: Manifest::from_wasm(wasm).unwrap(),
        limits: PluginLimits {
            memory_bytes: 512 << 20,
            cpu_budget: Duration::from_secs(60),
            output_cap: 1 << 20,
            max_children_per_call: 4,
            max_children: 16,
            call_timeout: Duration::from_secs(600),
            max_concurrent_calls: 16,
        },
        fs_root,
        database,
        process: None,
        settings_json: "{}".into(),
        audit: false,
        live_children: Default::default(),
    };
    runtime.load_storage(info, wasm).unwrap()
}
