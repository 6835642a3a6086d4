//! Typed entry points of each role: every plugin call the host makes goes
//! through one of these, in a fresh Store (see [`Loaded::call`]).

use super::bindings::agent::exports::warden::plugin::agent::{TurnOptions, TurnOutcome};
use super::bindings::agent::{AgentDriver, AgentDriverPre};
use super::bindings::context::{ContextBuilder, ContextBuilderPre};
use super::bindings::policy::{SessionPolicy, SessionPolicyPre};
use super::bindings::storage::exports::warden::plugin::storage::{MigrateOptions, MigrateReport};
use super::bindings::storage::{StorageBackend, StorageBackendPre};
use super::host_state::HostState;
use super::plugin::{CallError, CallOptions, Instantiate, Loaded};
use crate::types::{Plan, Session, SessionSummary};

pub type StoragePlugin = Loaded<StorageBackendPre<HostState>>;
pub type PolicyPlugin = Loaded<SessionPolicyPre<HostState>>;
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

instantiate!(
    StorageBackendPre => StorageBackend,
    SessionPolicyPre => SessionPolicy,
    ContextBuilderPre => ContextBuilder,
    AgentDriverPre => AgentDriver
);

impl StoragePlugin {
    pub fn load(&self, id: &str) -> Result<Session, CallError> {
        self.call("load", CallOptions::default(), |instance, store| {
            instance.warden_plugin_storage().call_load(store, id)
        })
    }

    pub fn save(&self, session: &Session, expected_revision: Option<u64>) -> Result<u64, CallError> {
        self.call("save", CallOptions::default(), |instance, store| {
            instance.warden_plugin_storage().call_save(store, session, expected_revision)
        })
    }

    pub fn delete(&self, id: &str) -> Result<bool, CallError> {
        self.call("delete", CallOptions::default(), |instance, store| {
            instance.warden_plugin_storage().call_delete(store, id)
        })
    }

    pub fn list(&self) -> Result<Vec<SessionSummary>, CallError> {
        self.call("list", CallOptions::default(), |instance, store| {
            instance.warden_plugin_storage().call_list(store)
        })
    }

    pub fn find_by_thread(&self, thread_id: &str) -> Result<Option<Session>, CallError> {
        self.call("find-by-thread", CallOptions::default(), |instance, store| {
            instance.warden_plugin_storage().call_find_by_thread(store, thread_id)
        })
    }

    pub fn migrate(&self, options: &MigrateOptions) -> Result<MigrateReport, CallError> {
        self.call("migrate", CallOptions::default(), |instance, store| {
            instance.warden_plugin_storage().call_migrate(store, options)
        })
    }
}

impl PolicyPlugin {
    pub fn validate_id(&self, id: &str) -> Result<(), CallError> {
        self.call("validate-id", CallOptions::default(), |instance, store| {
            instance.warden_plugin_policy().call_validate_id(store, id)
        })
    }

    pub fn admit(
        &self,
        id: &str,
        existing: &[SessionSummary],
        now_ms: u64,
    ) -> Result<Vec<String>, CallError> {
        self.call("admit", CallOptions::default(), |instance, store| {
            instance.warden_plugin_policy().call_admit(store, id, existing, now_ms)
        })
    }

    pub fn expired(&self, sessions: &[SessionSummary], now_ms: u64) -> Result<Vec<String>, CallError> {
        self.call("expired", CallOptions::default(), |instance, store| {
            instance.warden_plugin_policy().call_expired(store, sessions, now_ms).map(Ok)
        })
    }
}

impl ContextPlugin {
    pub fn build(&self, session: Option<&Session>, prompt: &str, reset: bool) -> Result<Plan, CallError> {
        self.call("build", CallOptions::default(), |instance, store| {
            instance.warden_plugin_context().call_build(store, session, prompt, reset)
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
