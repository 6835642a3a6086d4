//! One linker per role: deny-all WASI, the contract's `types`, and each
//! interface of the role's import list (`Role::imports`, the table in
//! `contract::role`), linked one at a time to its capability's view of the
//! call's state. A world importing an interface no capability serves is a
//! host bug, refused here by name.

use anyhow::bail;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::host_state::HostState;
use crate::capabilities::config::Config;
use crate::capabilities::log::Log;
use crate::capabilities::process::Process;
use crate::capabilities::progress::Progress;
use crate::capabilities::sql::Sql;
use crate::capabilities::store_fs::StoreFs;
use crate::contract::HostError;
use crate::contract::bindings::agent::warden::plugin as shared;
use crate::contract::bindings::storage::warden::plugin::{sql, store_fs};
use crate::contract::role::Role;
use crate::types::PluginError;

/// A linker providing exactly `role`'s host interfaces, over deny-all WASI.
pub fn for_role(engine: &Engine, role: Role) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    shared::types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    for interface in role.imports() {
        link(&mut linker, interface)?;
    }
    Ok(linker)
}

/// Link one contract interface to the capability that serves it.
fn link(linker: &mut Linker<HostState>, interface: &str) -> anyhow::Result<()> {
    match interface {
        "log" => shared::log::add_to_linker::<HostState, Log>(linker, HostState::log)?,
        "config" => shared::config::add_to_linker::<HostState, Config>(linker, HostState::config)?,
        "progress" => shared::progress::add_to_linker::<HostState, Progress>(linker, HostState::progress)?,
        "process" => shared::process::add_to_linker::<HostState, Process>(linker, HostState::process)?,
        "store-fs" => store_fs::add_to_linker::<HostState, StoreFs>(linker, HostState::store_fs)?,
        "sql" => sql::add_to_linker::<HostState, Sql>(linker, HostState::sql)?,
        "store-fs-readonly" => {
            shared::store_fs_readonly::add_to_linker::<HostState, StoreFs>(linker, HostState::store_fs)?
        }
        other => bail!("no capability serves the contract interface `{other}`"),
    }
    Ok(())
}

impl shared::types::Host for HostState {
    fn convert_plugin_error(&mut self, error: HostError) -> wasmtime::Result<PluginError> {
        error.into_plugin_error()
    }
}
