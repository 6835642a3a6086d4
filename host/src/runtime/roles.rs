//! Typed entry points of each role: every plugin call the host makes goes
//! through one of these, in a fresh Store (see [`Loaded::call`]).

use super::bindings::agent::AgentDriverPre;
use super::bindings::agent::exports::warden::plugin::agent::{TurnOptions, TurnOutcome};
use super::bindings::context::ContextBuilderPre;
use super::bindings::policy::SessionPolicyPre;
use super::bindings::storage::StorageBackendPre;
use super::bindings::storage::exports::warden::plugin::storage::{MigrateOptions, MigrateReport};
use super::host_state::HostState;
use super::plugin::{CallError, CallOptions, Loaded, instantiation_failed};
use crate::types::{Plan, Session, SessionSummary};

pub type StoragePlugin = Loaded<StorageBackendPre<HostState>>;
pub type PolicyPlugin = Loaded<SessionPolicyPre<HostState>>;
pub type ContextPlugin = Loaded<ContextBuilderPre<HostState>>;
pub type AgentPlugin = Loaded<AgentDriverPre<HostState>>;

impl StoragePlugin {
    pub fn load(&self, id: &str) -> Result<Session, CallError> {
        self.call("load", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_storage()
                .call_load(store, id)
        })
    }

    pub fn save(&self, session: &Session, expected_revision: Option<u64>) -> Result<u64, CallError> {
        self.call("save", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store).map_err(instantiation_failed)?.warden_plugin_storage().call_save(
                store,
                session,
                expected_revision,
            )
        })
    }

    pub fn delete(&self, id: &str) -> Result<bool, CallError> {
        self.call("delete", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_storage()
                .call_delete(store, id)
        })
    }

    pub fn list(&self) -> Result<Vec<SessionSummary>, CallError> {
        self.call("list", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_storage()
                .call_list(store)
        })
    }

    pub fn find_by_thread(&self, thread_id: &str) -> Result<Option<Session>, CallError> {
        self.call("find-by-thread", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_storage()
                .call_find_by_thread(store, thread_id)
        })
    }

    pub fn migrate(&self, options: &MigrateOptions) -> Result<MigrateReport, CallError> {
        self.call("migrate", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_storage()
                .call_migrate(store, options)
        })
    }
}

impl PolicyPlugin {
    pub fn validate_id(&self, id: &str) -> Result<(), CallError> {
        self.call("validate-id", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_policy()
                .call_validate_id(store, id)
        })
    }

    pub fn admit(
        &self,
        id: &str,
        existing: &[SessionSummary],
        now_ms: u64,
    ) -> Result<Vec<String>, CallError> {
        self.call("admit", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_policy()
                .call_admit(store, id, existing, now_ms)
        })
    }

    pub fn expired(&self, sessions: &[SessionSummary], now_ms: u64) -> Result<Vec<String>, CallError> {
        self.call("expired", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_policy()
                .call_expired(store, sessions, now_ms)
                .map(Ok)
        })
    }
}

impl ContextPlugin {
    pub fn build(&self, session: Option<&Session>, prompt: &str, reset: bool) -> Result<Plan, CallError> {
        self.call("build", CallOptions::default(), |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_context()
                .call_build(store, session, prompt, reset)
        })
    }
}

impl AgentPlugin {
    pub fn run_turn(
        &self,
        plan: &Plan,
        options: &TurnOptions,
        call: CallOptions,
    ) -> Result<TurnOutcome, CallError> {
        self.call("run-turn", call, |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_agent()
                .call_run_turn(store, plan, options)
        })
    }

    pub fn rehydrate(&self, thread_id: &str, call: CallOptions) -> Result<Session, CallError> {
        self.call("rehydrate", call, |pre, store| {
            pre.instantiate(&mut *store)
                .map_err(instantiation_failed)?
                .warden_plugin_agent()
                .call_rehydrate(store, thread_id)
        })
    }
}
