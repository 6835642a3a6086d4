//! What each principal may use at once: turns running and sessions stored.
//! The session policy decides the numbers (its `principal-limits`, asked
//! once per principal); the host counts and refuses with the limit named.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Owners, TurnError, listing};
use crate::auth::Principal;
use crate::contract::bindings::policy::exports::warden::plugin::principal_limits::Limits;
use crate::plugins::PluginSet;
use crate::runtime::loaded::CallOptions;

/// The limits of a principal when the policy exports no `principal-limits`.
pub const DEFAULT_LIMITS: Limits =
    Limits { max_running_turns: 32, max_sessions: None, task_ttl_ms: 60 * 60 * 1000 };

/// Sessions counted per storage call when a principal's are counted.
const COUNT_PAGE: u32 = 500;

#[derive(Default)]
pub struct Quotas {
    limits: Mutex<HashMap<Principal, Limits>>,
    running: Mutex<HashMap<Principal, u32>>,
}

/// One of a principal's running turns, given back when dropped.
pub struct TurnSlot<'a> {
    quotas: &'a Quotas,
    principal: Principal,
}

impl Drop for TurnSlot<'_> {
    fn drop(&mut self) {
        let mut running = self.quotas.running.lock().expect("quota lock");
        if let Some(count) = running.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.principal);
            }
        }
    }
}

impl Quotas {
    /// The limits of `principal`: the policy's answer, asked once.
    pub fn limits(
        &self,
        plugins: &PluginSet,
        principal: &Principal,
        call: &CallOptions,
    ) -> Result<Limits, TurnError> {
        if let Some(limits) = self.limits.lock().expect("quota lock").get(principal) {
            return Ok(*limits);
        }
        let limits = if plugins.policy.has_principal_limits() {
            plugins.policy.with(call).limits_for(principal.as_str())?
        } else {
            DEFAULT_LIMITS
        };
        self.limits.lock().expect("quota lock").insert(principal.clone(), limits);
        Ok(limits)
    }

    /// Refuse now if `principal` already runs as many turns as its limit
    /// (before a task is made for a turn that could not start).
    pub fn check_room(&self, principal: &Principal, limits: &Limits, policy: &str) -> Result<(), TurnError> {
        drop(self.start_turn(principal, limits, policy)?);
        Ok(())
    }

    /// Count a turn of `principal`, unless it already runs as many as its limit.
    pub fn start_turn(
        &self,
        principal: &Principal,
        limits: &Limits,
        policy: &str,
    ) -> Result<TurnSlot<'_>, TurnError> {
        let mut running = self.running.lock().expect("quota lock");
        let count = running.entry(principal.clone()).or_default();
        if *count >= limits.max_running_turns {
            return Err(TurnError::Busy(format!(
                "{principal} already runs {count} turns at once, the most its limits allow (`max-running-turns` \
                 from policy plugin `{policy}`); wait for one to finish"
            )));
        }
        *count += 1;
        Ok(TurnSlot { quotas: self, principal: principal.clone() })
    }

    /// Refuse a new session of a principal that keeps its limit of sessions
    /// already. The local principal's sessions are bounded by the store's own
    /// admission (`max-sessions`) instead: its keys carry no prefix to count by.
    pub fn check_new_session(
        &self,
        plugins: &PluginSet,
        owners: &Owners,
        principal: &Principal,
        limits: &Limits,
        call: &CallOptions,
    ) -> Result<(), TurnError> {
        let (Some(max), Some(prefix)) = (limits.max_sessions, owners.prefix(principal)) else {
            return Ok(());
        };
        let mut request = listing::ListRequest { limit: COUNT_PAGE, ..listing::ListRequest::default() };
        request.filter.key_contains = Some(prefix);
        let mut stored = 0u64;
        loop {
            let page = listing::page_of(&plugins.storage, &request, call)?;
            stored +=
                page.sessions.iter().filter(|s| owners.key_for(principal, &s.id).is_some()).count() as u64;
            if stored >= max {
                return Err(TurnError::Busy(format!(
                    "{principal} keeps {stored} sessions, the most its limits allow (`max-sessions` from policy \
                     plugin `{}`); end one with `endSession` first",
                    plugins.policy.info.name
                )));
            }
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => return Ok(()),
            }
        }
    }
}
