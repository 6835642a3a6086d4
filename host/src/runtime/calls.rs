//! Typed entry points of each role: every plugin call the host makes goes
//! through one of these, in a fresh Store (see [`Loaded::call`]). A caller
//! that can cancel binds its options first: `plugin.with(&call).load(id)`.

use std::time::Duration;

use super::host_state::HostState;
use super::loaded::{CallError, CallOptions, Instantiate, Loaded};
use super::pres::{PolicyPre, StoragePre};
use crate::contract::bindings::agent::exports::warden::plugin::agent::{TurnOptions, TurnOutcome};
use crate::contract::bindings::agent::{AgentDriver, AgentDriverPre};
use crate::contract::bindings::context::{ContextBuilder, ContextBuilderPre};
use crate::contract::bindings::policy::exports::warden::plugin::principal_limits::Limits;
use crate::contract::bindings::storage::exports::warden::plugin::storage::{MigrateOptions, MigrateReport};
use crate::contract::bindings::storage::exports::warden::plugin::storage_catalog::{
    SessionFilter, SessionPage,
};
use crate::contract::bindings::storage::exports::warden::plugin::task_store::TaskRecord;
use crate::types::{Plan, Session, SessionSummary};

pub type StoragePlugin = Loaded<StoragePre>;
pub type PolicyPlugin = Loaded<PolicyPre>;
pub type ContextPlugin = Loaded<ContextBuilderPre<HostState>>;
pub type AgentPlugin = Loaded<AgentDriverPre<HostState>>;

macro_rules! instantiate {
    ($($pre:ident => $instance:ident),*) => {$(
        impl Instantiate for $pre<HostState> {
            type Instance = $instance;
            fn instantiate_in(&self, store: &mut wasmtime::Store<HostState>) -> wasmtime::Result<$instance> {
                self.instantiate(store)
            }
        }
    )*};
}

instantiate!(ContextBuilderPre => ContextBuilder, AgentDriverPre => AgentDriver);

/// A plugin bound to one caller's [`CallOptions`]: its cancellation, and its
/// deadline if it sets one (else the plugin's `call_timeout`).
pub struct With<'a, P> {
    plugin: &'a Loaded<P>,
    call: CallOptions,
}

impl<P> Loaded<P> {
    /// Call this plugin on behalf of a caller that may cancel.
    pub fn with(&self, call: &CallOptions) -> With<'_, P> {
        With { plugin: self, call: call.clone() }
    }
}

/// A migration imports a whole legacy store in one call, a reindex reads
/// every session: each may take longer than an ordinary call, never less.
const BULK_TIMEOUT: Duration = Duration::from_secs(600);

impl With<'_, StoragePre> {
    /// The options of a call that works through the whole store: a deadline
    /// of at least [`BULK_TIMEOUT`], and CPU up to that deadline.
    fn bulk(&self) -> CallOptions {
        let mut call = self.call.clone();
        let timeout = *call.timeout.get_or_insert(self.plugin.info.limits.call_timeout.max(BULK_TIMEOUT));
        call.cpu_budget.get_or_insert(timeout.max(self.plugin.info.limits.cpu_budget));
        call
    }

    /// The session stored as `id`; a plugin that answers with another one is refused.
    pub fn load(&self, id: &str) -> Result<Session, CallError> {
        let session = self
            .plugin
            .call("load", self.call.clone(), |instance, store| instance.storage.call_load(store, id))?;
        if session.id != id {
            let what = format!("asked for session {id:?}, it returned session {:?}", session.id);
            return Err(self.plugin.broke_contract("load", what));
        }
        Ok(session)
    }

    pub fn save(&self, session: &Session, expected_revision: Option<u64>) -> Result<u64, CallError> {
        self.plugin.call("save", self.call.clone(), |instance, store| {
            instance.storage.call_save(store, session, expected_revision)
        })
    }

    pub fn delete(&self, id: &str) -> Result<bool, CallError> {
        self.plugin
            .call("delete", self.call.clone(), |instance, store| instance.storage.call_delete(store, id))
    }

    pub fn list(&self) -> Result<Vec<SessionSummary>, CallError> {
        self.plugin.call("list", self.call.clone(), |instance, store| instance.storage.call_list(store))
    }

    pub fn find_by_thread(&self, thread_id: &str) -> Result<Option<Session>, CallError> {
        self.plugin.call("find-by-thread", self.call.clone(), |instance, store| {
            instance.storage.call_find_by_thread(store, thread_id)
        })
    }

    /// One page of a listing (plugins with `storage-catalog`; see [`StoragePlugin::has_catalog`]).
    pub fn list_page(
        &self,
        filter: &SessionFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<SessionPage, CallError> {
        self.plugin.call("list-page", self.call.clone(), |instance, store| {
            catalog(&instance)?.call_list_page(store, filter, cursor, limit)
        })
    }

    /// How many sessions are stored (plugins with `storage-catalog`).
    pub fn count(&self) -> Result<u64, CallError> {
        self.plugin.call("count", self.call.clone(), |instance, store| catalog(&instance)?.call_count(store))
    }

    /// The least recently used sessions (plugins with `storage-catalog`).
    pub fn least_recent(&self, limit: u32) -> Result<Vec<SessionSummary>, CallError> {
        self.plugin.call("least-recent", self.call.clone(), |instance, store| {
            catalog(&instance)?.call_least_recent(store, limit)
        })
    }

    /// Rebuild the plugin's indexes (plugins with `storage-catalog`).
    pub fn reindex(&self) -> Result<u64, CallError> {
        let call = self.bulk();
        self.plugin.call("reindex", call, |instance, store| catalog(&instance)?.call_reindex(store))
    }

    /// Store a task record (plugins with `task-store`; see [`StoragePlugin::has_task_store`]).
    pub fn save_task(&self, task: &TaskRecord) -> Result<(), CallError> {
        self.plugin.call("save-task", self.call.clone(), |instance, store| {
            tasks(&instance)?.call_save_task(store, task)
        })
    }

    /// The live task record `id` (plugins with `task-store`).
    pub fn load_task(&self, id: &str, now_ms: u64) -> Result<TaskRecord, CallError> {
        self.plugin.call("load-task", self.call.clone(), |instance, store| {
            tasks(&instance)?.call_load_task(store, id, now_ms)
        })
    }

    /// Remove expired task records (plugins with `task-store`).
    pub fn purge_tasks(&self, now_ms: u64) -> Result<u32, CallError> {
        self.plugin.call("purge-tasks", self.call.clone(), |instance, store| {
            tasks(&instance)?.call_purge_tasks(store, now_ms)
        })
    }

    pub fn migrate(&self, options: &MigrateOptions) -> Result<MigrateReport, CallError> {
        let call = self.bulk();
        self.plugin.call("migrate", call, |instance, store| instance.storage.call_migrate(store, options))
    }
}

impl With<'_, PolicyPre> {
    pub fn validate_id(&self, id: &str) -> Result<(), CallError> {
        self.plugin.call("validate-id", self.call.clone(), |instance, store| {
            instance.policy.call_validate_id(store, id)
        })
    }

    pub fn admit(
        &self,
        id: &str,
        existing: &[SessionSummary],
        now_ms: u64,
    ) -> Result<Vec<String>, CallError> {
        self.plugin.call("admit", self.call.clone(), |instance, store| {
            instance.policy.call_admit(store, id, existing, now_ms)
        })
    }

    pub fn expired(&self, sessions: &[SessionSummary], now_ms: u64) -> Result<Vec<String>, CallError> {
        self.plugin.call("expired", self.call.clone(), |instance, store| {
            instance.policy.call_expired(store, sessions, now_ms).map(Ok)
        })
    }

    /// How many least recently used sessions the admission of `id` needs
    /// (plugins with `admission`; see [`PolicyPlugin::has_admission`]).
    pub fn candidates(&self, id: &str, stored: u64, now_ms: u64) -> Result<u32, CallError> {
        self.plugin.call("candidates", self.call.clone(), |instance, store| {
            admission(&instance)?.call_candidates(store, id, stored, now_ms)
        })
    }

    /// The limits of `principal` (plugins with `principal-limits`; see
    /// [`PolicyPlugin::has_principal_limits`]).
    pub fn limits_for(&self, principal: &str) -> Result<Limits, CallError> {
        self.plugin.call("limits-for", self.call.clone(), |instance, store| {
            principal_limits(&instance)?.call_limits_for(store, principal).map(Ok)
        })
    }

    /// Admit `id` from the count and the least recently used few (plugins with `admission`).
    pub fn admit_counted(
        &self,
        id: &str,
        stored: u64,
        least_recent: &[SessionSummary],
        now_ms: u64,
    ) -> Result<Vec<String>, CallError> {
        self.plugin.call("admit", self.call.clone(), |instance, store| {
            admission(&instance)?.call_admit(store, id, stored, least_recent, now_ms)
        })
    }
}

fn catalog(
    instance: &super::pres::StorageInstance,
) -> wasmtime::Result<&crate::contract::bindings::storage::exports::warden::plugin::storage_catalog::Guest> {
    instance.catalog.as_ref().ok_or_else(|| wasmtime::format_err!("the plugin has no storage-catalog export"))
}

fn tasks(
    instance: &super::pres::StorageInstance,
) -> wasmtime::Result<&crate::contract::bindings::storage::exports::warden::plugin::task_store::Guest> {
    instance.tasks.as_ref().ok_or_else(|| wasmtime::format_err!("the plugin has no task-store export"))
}

fn principal_limits(
    instance: &super::pres::PolicyInstance,
) -> wasmtime::Result<&crate::contract::bindings::policy::exports::warden::plugin::principal_limits::Guest> {
    instance.limits.as_ref().ok_or_else(|| wasmtime::format_err!("the plugin has no principal-limits export"))
}

fn admission(
    instance: &super::pres::PolicyInstance,
) -> wasmtime::Result<&crate::contract::bindings::policy::exports::warden::plugin::admission::Guest> {
    instance.admission.as_ref().ok_or_else(|| wasmtime::format_err!("the plugin has no admission export"))
}

impl With<'_, ContextBuilderPre<HostState>> {
    pub fn build(&self, session: Option<&Session>, prompt: &str, reset: bool) -> Result<Plan, CallError> {
        self.plugin.call("build", self.call.clone(), |instance, store| {
            instance.warden_plugin_context().call_build(store, session, prompt, reset)
        })
    }
}

/// Calls made on no caller's behalf (commands, tests): nothing cancels them,
/// and each has the plugin's `call_timeout`.
impl StoragePlugin {
    /// Whether the plugin exports `storage-catalog` (built against 0.1.2 or later).
    pub fn has_catalog(&self) -> bool {
        self.pre.has_catalog()
    }

    /// Whether the plugin exports `task-store` (built against 0.1.4 or later).
    pub fn has_task_store(&self) -> bool {
        self.pre.has_task_store()
    }

    pub fn load(&self, id: &str) -> Result<Session, CallError> {
        self.with(&CallOptions::default()).load(id)
    }

    pub fn save(&self, session: &Session, expected_revision: Option<u64>) -> Result<u64, CallError> {
        self.with(&CallOptions::default()).save(session, expected_revision)
    }

    pub fn delete(&self, id: &str) -> Result<bool, CallError> {
        self.with(&CallOptions::default()).delete(id)
    }

    pub fn list(&self) -> Result<Vec<SessionSummary>, CallError> {
        self.with(&CallOptions::default()).list()
    }

    pub fn find_by_thread(&self, thread_id: &str) -> Result<Option<Session>, CallError> {
        self.with(&CallOptions::default()).find_by_thread(thread_id)
    }

    pub fn migrate(&self, options: &MigrateOptions) -> Result<MigrateReport, CallError> {
        self.with(&CallOptions::default()).migrate(options)
    }
}

impl PolicyPlugin {
    /// Whether the plugin exports `admission` (built against 0.1.2 or later).
    pub fn has_admission(&self) -> bool {
        self.pre.has_admission()
    }

    /// Whether the plugin exports `principal-limits` (built against 0.1.4 or later).
    pub fn has_principal_limits(&self) -> bool {
        self.pre.has_principal_limits()
    }

    pub fn validate_id(&self, id: &str) -> Result<(), CallError> {
        self.with(&CallOptions::default()).validate_id(id)
    }

    pub fn admit(
        &self,
        id: &str,
        existing: &[SessionSummary],
        now_ms: u64,
    ) -> Result<Vec<String>, CallError> {
        self.with(&CallOptions::default()).admit(id, existing, now_ms)
    }

    pub fn expired(&self, sessions: &[SessionSummary], now_ms: u64) -> Result<Vec<String>, CallError> {
        self.with(&CallOptions::default()).expired(sessions, now_ms)
    }
}

impl ContextPlugin {
    pub fn build(&self, session: Option<&Session>, prompt: &str, reset: bool) -> Result<Plan, CallError> {
        self.with(&CallOptions::default()).build(session, prompt, reset)
    }
}

impl AgentPlugin {
    pub fn run_turn(
        &self,
        plan: &Plan,
        options: &TurnOptions,
        call: CallOptions,
    ) -> Result<TurnOutcome, CallError> {
        self.call("run-turn", call, |instance, store| {
            instance.warden_plugin_agent().call_run_turn(store, plan, options)
        })
    }

    pub fn rehydrate(&self, thread_id: &str, call: CallOptions) -> Result<Session, CallError> {
        self.call("rehydrate", call, |instance, store| {
            instance.warden_plugin_agent().call_rehydrate(store, thread_id)
        })
    }
}
