//! Pre-instantiated storage and policy plugins. Their worlds gained exports
//! in later releases (`storage-catalog` and `task-store`, `admission` and
//! `principal-limits`): the role's first
//! export is required, an added one is looked up once at load time and used
//! when the plugin has it, so plugins built against earlier releases load.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::host_state::HostState;
use super::loaded::Instantiate;
use crate::contract::bindings::policy::exports::warden::plugin::{admission, policy, principal_limits};
use crate::contract::bindings::storage::exports::warden::plugin::{storage, storage_catalog, task_store};
use crate::contract::role::{CONTRACT_VERSION, PACKAGE};

pub struct StoragePre {
    instance_pre: InstancePre<HostState>,
    storage: storage::GuestIndices,
    catalog: Option<storage_catalog::GuestIndices>,
    tasks: Option<task_store::GuestIndices>,
}

pub struct StorageInstance {
    pub storage: storage::Guest,
    pub catalog: Option<storage_catalog::Guest>,
    pub tasks: Option<task_store::Guest>,
}

pub struct PolicyPre {
    instance_pre: InstancePre<HostState>,
    policy: policy::GuestIndices,
    admission: Option<admission::GuestIndices>,
    limits: Option<principal_limits::GuestIndices>,
}

pub struct PolicyInstance {
    pub policy: policy::Guest,
    pub admission: Option<admission::Guest>,
    pub limits: Option<principal_limits::Guest>,
}

/// The indices of an added export, `None` if the component does not export
/// the interface at all; an export of that name that does not match is an error.
fn added<I>(
    instance_pre: &InstancePre<HostState>,
    interface: &str,
    indices: impl FnOnce(&InstancePre<HostState>) -> wasmtime::Result<I>,
) -> wasmtime::Result<Option<I>> {
    let name = format!("{PACKAGE}/{interface}@{CONTRACT_VERSION}");
    match instance_pre.component().get_export_index(None, &name) {
        None => Ok(None),
        Some(_) => indices(instance_pre).map(Some),
    }
}

impl StoragePre {
    pub fn new(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        let storage = storage::GuestIndices::new(&instance_pre)?;
        let catalog = added(&instance_pre, "storage-catalog", storage_catalog::GuestIndices::new)?;
        let tasks = added(&instance_pre, "task-store", task_store::GuestIndices::new)?;
        Ok(Self { instance_pre, storage, catalog, tasks })
    }

    pub fn has_catalog(&self) -> bool {
        self.catalog.is_some()
    }

    pub fn has_task_store(&self) -> bool {
        self.tasks.is_some()
    }
}

impl PolicyPre {
    pub fn new(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        let policy = policy::GuestIndices::new(&instance_pre)?;
        let admission = added(&instance_pre, "admission", admission::GuestIndices::new)?;
        let limits = added(&instance_pre, "principal-limits", principal_limits::GuestIndices::new)?;
        Ok(Self { instance_pre, policy, admission, limits })
    }

    pub fn has_admission(&self) -> bool {
        self.admission.is_some()
    }

    pub fn has_principal_limits(&self) -> bool {
        self.limits.is_some()
    }
}

impl Instantiate for StoragePre {
    type Instance = StorageInstance;
    fn instantiate_in(&self, store: &mut Store<HostState>) -> wasmtime::Result<StorageInstance> {
        self.instantiate(store)
    }
}

impl Instantiate for PolicyPre {
    type Instance = PolicyInstance;
    fn instantiate_in(&self, store: &mut Store<HostState>) -> wasmtime::Result<PolicyInstance> {
        self.instantiate(store)
    }
}

impl StoragePre {
    pub fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<StorageInstance> {
        let instance = self.instance_pre.instantiate(&mut *store)?;
        let storage = self.storage.load(&mut *store, &instance)?;
        let catalog = self.catalog.as_ref().map(|c| c.load(&mut *store, &instance)).transpose()?;
        let tasks = self.tasks.as_ref().map(|t| t.load(&mut *store, &instance)).transpose()?;
        Ok(StorageInstance { storage, catalog, tasks })
    }
}

impl PolicyPre {
    pub fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<PolicyInstance> {
        let instance = self.instance_pre.instantiate(&mut *store)?;
        let policy = self.policy.load(&mut *store, &instance)?;
        let admission = self.admission.as_ref().map(|a| a.load(&mut *store, &instance)).transpose()?;
        let limits = self.limits.as_ref().map(|l| l.load(&mut *store, &instance)).transpose()?;
        Ok(PolicyInstance { policy, admission, limits })
    }
}
