//! The one place that orchestrates a turn:
//!
//! ```text
//! policy (validate, expire, admit/evict) → storage (load) → context (plan)
//!   → agent (run the turn; progress) → storage (save, retried on conflict) → result
//! ```
//!
//! Every step gets what it needs as arguments and returns a value. Plugin
//! calls are blocking; callers run these methods on a blocking thread. Every
//! call has a deadline (the turn's for the agent, the plugin's `call-timeout-ms`
//! for the others) and the caller's cancellation reaches each of them.

mod checks;
mod listing;
mod owners;
mod quota;
pub mod turn_locks;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::Principal;
use crate::contract::bindings::agent::exports::warden::plugin::agent::{TurnOptions, Usage};
pub use crate::contract::bindings::policy::exports::warden::plugin::principal_limits::Limits;
use crate::control::CancelFlag;
use crate::plugins::{PluginSet, ServedAgent};
use crate::runtime::loaded::{AbortReason, CallError, CallOptions};
use crate::types::{Plan, PluginError, Session, SessionSummary, Turn};
use checks::{TurnLimits, check_plan, check_principal, check_thread};
pub use listing::{DEFAULT_PAGE, ListRequest, MAX_PAGE, SessionFilter, SessionPage, page_of};
pub use owners::Owners;
pub use quota::DEFAULT_LIMITS;
use quota::Quotas;
pub use turn_locks::TurnLocks;
use turn_locks::{HeldLock, NotLocked};

/// Answers longer than this are cut (clients cap a tool result near 25k tokens).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 80_000;

/// Most least-recently-used sessions a policy is shown to admit a new one.
const MAX_CANDIDATES: u32 = 64;

/// Sessions checked for expiry per storage call of a sweep, and batches
/// per sweep (the next sweep goes on where this one stopped).
const EXPIRY_BATCH: u32 = 64;
const MAX_EXPIRY_BATCHES: usize = 1000;

/// Storage pages one listing page may read while the caller's sessions are
/// interleaved with other principals' (beyond it, the page comes back short, with a cursor).
const MAX_STORAGE_PAGES_PER_LISTING: usize = 20;

/// Saves of one turn that may meet a `conflict` (another writer saved first)
/// before the turn gives up: honest writers converge in one or two.
const MAX_SAVE_ATTEMPTS: usize = 5;

/// A page of one principal's sessions (each summary's `id` is the caller's
/// key), each with the agent holding it.
pub struct ListedPage {
    pub sessions: Vec<(SessionSummary, String)>,
    pub next_cursor: Option<String>,
}

/// Which session a turn continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A session by key; created if `create` and absent, else it must exist.
    Session { id: String, create: bool },
    /// A new session with a generated key.
    New,
    /// The session holding this agent thread, rehydrated from the agent's own
    /// transcript if the store does not know it.
    Thread(String),
}

/// Per-turn agent settings; `None` keeps what the session had.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnSettings {
    pub model: Option<String>,
    pub reasoning_effort: Option<String>,
    pub sandbox: Option<String>,
    pub cwd: Option<String>,
    pub approval_policy: Option<String>,
    pub config: Vec<(String, String)>,
    pub base_instructions: Option<String>,
    pub developer_instructions: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TurnRequest {
    /// The served agent that runs the turn (the tool's name).
    pub agent: String,
    pub target: Target,
    pub prompt: String,
    pub reset: bool,
    pub settings: TurnSettings,
}

#[derive(Clone, Debug)]
pub struct TurnResult {
    /// The caller's key of the session.
    pub session_id: String,
    pub thread_id: String,
    pub content: String,
    /// Bytes of the full answer when `content` was cut.
    pub truncated_from: Option<usize>,
    pub usage: Option<Usage>,
    pub warnings: Vec<String>,
    /// The agent's full transcript on the host, if known.
    pub transcript: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Busy(String),
    #[error("the call was cancelled; the turn was not recorded")]
    Cancelled,
    #[error("{0}")]
    Timeout(String),
    /// The storage plugin kept refusing the save as a conflict.
    #[error("{0}")]
    Conflict(String),
    /// The agent ran and failed (its own message).
    #[error("{0}")]
    Agent(String),
    #[error("{0}")]
    Plugin(CallError),
}

impl From<CallError> for TurnError {
    fn from(error: CallError) -> Self {
        let a_turn = error.function() == "run-turn";
        match error.abort_reason() {
            Some(AbortReason::Cancelled) => return TurnError::Cancelled,
            Some(AbortReason::Timeout(limit)) if a_turn => {
                return TurnError::Timeout(format!(
                    "the turn exceeded its limit of {} s (`turn-timeout-secs`); the agent was stopped and the turn was not recorded",
                    limit.as_secs()
                ));
            }
            Some(AbortReason::Timeout(_)) => return TurnError::Timeout(error.to_string()),
            _ => {}
        }
        if let CallError::AtCapacity { .. } = error {
            return TurnError::Busy(error.to_string());
        }
        match error.plugin_error() {
            Some(PluginError::Cancelled(_)) => TurnError::Cancelled,
            Some(PluginError::Timeout(m)) if a_turn => {
                TurnError::Timeout(format!("{m}; the agent was stopped and the turn was not recorded"))
            }
            Some(PluginError::Timeout(_)) => TurnError::Timeout(error.to_string()),
            Some(PluginError::NotFound(m)) => TurnError::NotFound(m.clone()),
            Some(PluginError::Invalid(m)) => TurnError::Invalid(m.clone()),
            Some(PluginError::Busy(m)) => TurnError::Busy(m.clone()),
            Some(PluginError::Failed(m)) => TurnError::Agent(m.clone()),
            _ => TurnError::Plugin(error),
        }
    }
}

pub struct Sessions {
    plugins: Arc<PluginSet>,
    running: Mutex<HashSet<String>>,
    /// So that Warden processes sharing a store (on this host, or on others
    /// through a shared database) never run one session's turns at once.
    turn_locks: TurnLocks,
    max_response_bytes: usize,
    /// What the operator lets a turn ask for, from each agent's grant.
    limits: HashMap<String, TurnLimits>,
    owners: Owners,
    quotas: Quotas,
    /// Agent threads whose transcripts this host has (it ran them, or rehydrated them).
    local_threads: LocalThreads,
}

/// Threads known to be resumable here, per agent; forgotten past a bound.
#[derive(Default)]
struct LocalThreads(Mutex<HashSet<(String, String)>>);

/// Threads [`LocalThreads`] remembers before it starts over.
const MAX_LOCAL_THREADS: usize = 10_000;

impl LocalThreads {
    fn is_here(&self, agent: &str, thread: &str) -> bool {
        self.0.lock().expect("local threads").contains(&(agent.to_string(), thread.to_string()))
    }

    fn ran_here(&self, agent: &str, thread: &str) {
        let mut known = self.0.lock().expect("local threads");
        if known.len() >= MAX_LOCAL_THREADS {
            known.clear();
        }
        known.insert((agent.to_string(), thread.to_string()));
    }
}

/// Marks a session busy in this process for as long as it lives.
struct Running<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
    _across_processes: Option<HeldLock>,
}

impl Running<'_> {
    fn lock_is_intact(&self) -> bool {
        self._across_processes.as_ref().is_none_or(HeldLock::is_intact)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("running-set lock").remove(&self.id);
    }
}

impl Sessions {
    pub fn new(
        plugins: Arc<PluginSet>,
        turn_locks: TurnLocks,
        max_response_bytes: usize,
        owners: Owners,
    ) -> Self {
        let limits = plugins
            .agents
            .iter()
            .map(|agent| {
                let limits = match &agent.plugin.info.process {
                    Some(policy) => {
                        TurnLimits { requests: policy.requests.clone(), cwd_roots: policy.cwd_roots.clone() }
                    }
                    None => TurnLimits::default(),
                };
                (agent.name.clone(), limits)
            })
            .collect();
        Self {
            plugins,
            running: Mutex::new(HashSet::new()),
            turn_locks,
            max_response_bytes,
            limits,
            owners,
            quotas: Quotas::default(),
            local_threads: LocalThreads::default(),
        }
    }

    pub fn plugins(&self) -> &PluginSet {
        &self.plugins
    }

    pub fn owners(&self) -> &Owners {
        &self.owners
    }

    /// The locks that keep turns and tasks apart across processes and hosts.
    pub fn turn_locks(&self) -> &TurnLocks {
        &self.turn_locks
    }

    /// `principal`'s limits, refusing now if it runs as many turns as it
    /// may: a task is not made (and stored) for a turn that could not start.
    pub fn room_for_turn(&self, principal: &Principal, call: &CallOptions) -> Result<Limits, TurnError> {
        let limits = self.quotas.limits(&self.plugins, principal, call)?;
        self.quotas.check_room(principal, &limits, &self.plugins.policy.info.name)?;
        Ok(limits)
    }

    /// Run one turn for `principal`. `call` carries cancellation and
    /// progress; its timeout is this service's turn timeout.
    pub fn run_turn(
        &self,
        principal: &Principal,
        request: TurnRequest,
        mut call: CallOptions,
    ) -> Result<TurnResult, TurnError> {
        let p = &self.plugins;
        let now = now_ms();
        let (agent, limits) = match (p.agent(&request.agent), self.limits.get(&request.agent)) {
            (Some(agent), Some(limits)) => (agent, limits),
            _ => {
                return Err(TurnError::Invalid(format!(
                    "this Warden serves no agent {:?}; it serves {}",
                    request.agent,
                    p.agent_names().join(", ")
                )));
            }
        };
        if let Some(why) = agent.unavailable() {
            return Err(TurnError::Invalid(format!("the agent `{}` is unavailable: {why}", agent.name)));
        }
        limits.check_caller(&request.settings)?;
        // Storage, policy and context calls: the caller's cancellation, each plugin's own deadline.
        let step =
            CallOptions { timeout: None, cpu_budget: None, cancel: call.cancel.clone(), progress: None };
        let quota = self.quotas.limits(p, principal, &step)?;
        let _slot = self.quotas.start_turn(principal, &quota, &p.policy.info.name)?;
        let (key, id, existing) = self.resolve(principal, agent, &request.target, &call, &step, now)?;
        let running = self.mark_running(&key, &id, &call.cancel)?;
        let existing = match (existing, &request.target) {
            (Some(session), _) => Some(session),
            // A key generated for this call names no stored session.
            (None, Target::New) => None,
            (None, _) => self.load_live(&id, &step, now)?,
        };
        if let Some(session) = &existing {
            limits.check_session(session, &format!("storage plugin `{}`", p.storage.info.name))?;
        }
        if existing.is_none() {
            if matches!(request.target, Target::Session { create: false, .. }) {
                return Err(TurnError::NotFound(format!(
                    "no session {key:?}; start one with the `{}` tool (listSessions shows the live ones)",
                    agent.name
                )));
            }
            // A client-chosen key is validated when it creates a session; an
            // existing session's key was accepted then.
            if matches!(request.target, Target::Session { .. }) {
                p.policy.with(&step).validate_id(&key)?;
            }
            self.quotas.check_new_session(p, &self.owners, principal, &quota, &step)?;
            self.admit(&id, &step, now)?;
        }
        // The thread as stored before this turn: a save conflict that finds another one
        // means another process ran a turn meanwhile.
        let stored_thread = existing.as_ref().and_then(|s| s.agent_thread_id.clone());
        let mut session = existing.unwrap_or_else(|| new_session(&id, now));
        if request.reset {
            session.turns.clear();
            session.agent_thread_id = None;
        }
        let held_by = agent_of(&session);
        if held_by != agent.name && (session.agent_thread_id.is_some() || !session.turns.is_empty()) {
            // A handoff: no native resume exists across agents, so the new agent
            // starts a thread with the history replayed; the model was the other agent's.
            tracing::info!(session = %key, from = %held_by, to = %agent.name, "handing the session over");
            session.agent_thread_id = None;
            session.model = None;
            session.reasoning_effort = None;
        }
        let bounds = self.owners.bounds(principal);
        if let Some(bounds) = bounds {
            check_principal(principal.as_str(), bounds, &request.settings, &session)?;
        }
        apply_settings(&mut session, &request.settings);
        if session.cwd.is_none() {
            // An agent resumes in whatever directory it is started in: pin the
            // first granted one (the principal's own, if the operator gave it some).
            let roots = bounds.and_then(|b| b.cwd_roots.as_ref()).unwrap_or(&limits.cwd_roots);
            session.cwd = roots.first().map(|root| root.display().to_string());
        }
        if session.sandbox.is_none() {
            // No sandbox asked for: a principal with a ceiling gets its ceiling, not the agent's default.
            session.sandbox = bounds
                .and_then(|b| b.max_sandbox)
                .map(|max| max.min(limits.requests.max_sandbox).as_str().to_string());
        }
        let replayed = self.replay_if_elsewhere(agent, &mut session, &step);
        let plan = p.context.with(&step).build(
            Some(&session).filter(|s| !s.turns.is_empty() || s.agent_thread_id.is_some()),
            &request.prompt,
            request.reset,
        )?;
        check_plan(&plan, &p.context.info.name)?;
        let recorded_prompt = match &plan {
            Plan::Resume(r) => r.recorded_prompt.clone(),
            Plan::Fresh(f) => f.recorded_prompt.clone(),
        };
        call.timeout = Some(agent.turn_timeout);
        let options = turn_options(&session, &request.settings);
        let mut outcome = agent.plugin.run_turn(&plan, &options, call)?;
        check_thread(&outcome.thread_id, &format!("agent plugin `{}`", agent.plugin.info.name))?;
        self.local_threads.ran_here(&agent.name, &outcome.thread_id);
        outcome.warnings.extend(replayed);
        let turn =
            Turn { prompt: recorded_prompt, response: outcome.response.clone(), timestamp_ms: now_ms() };
        if !running.lock_is_intact() {
            tracing::warn!(session = %key, "the database connection holding this turn's lock broke while the turn ran; \
                another host may have run a turn on the session meanwhile");
        }
        set_agent(&mut session, &agent.name);
        outcome.warnings.extend(self.record(session, turn, (&outcome.thread_id, stored_thread), &step)?);
        let transcript = outcome
            .transcript_path
            .as_ref()
            .and_then(|relative| agent.plugin.info.fs_root.as_ref().map(|root| root.path().join(relative)));
        let (content, truncated_from) =
            fit_answer(&outcome.response, self.max_response_bytes, transcript.as_ref());
        Ok(TurnResult {
            session_id: key,
            thread_id: outcome.thread_id,
            content,
            truncated_from,
            usage: outcome.usage,
            warnings: outcome.warnings,
            transcript,
        })
    }

    /// When the store is shared with other hosts, a session's agent thread may
    /// have run on another one, whose agent keeps its transcript: if this
    /// host's agent cannot resume it natively (it cannot rehydrate it), the
    /// thread is dropped so the context plugin replays the stored turns into a
    /// new one. Returns the warning saying so.
    fn replay_if_elsewhere(
        &self,
        agent: &ServedAgent,
        session: &mut Session,
        step: &CallOptions,
    ) -> Option<String> {
        let thread = session.agent_thread_id.clone()?;
        if !self.turn_locks.is_shared() || self.local_threads.is_here(&agent.name, &thread) {
            return None;
        }
        match agent.plugin.rehydrate(&thread, step.clone()) {
            Ok(_) => {
                self.local_threads.ran_here(&agent.name, &thread);
                None
            }
            Err(e) => {
                tracing::info!(session = %session.id, thread = %thread, reason = %e,
                    "the thread's transcript is not on this host; replaying the stored turns");
                session.agent_thread_id = None;
                Some(format!(
                    "the agent's transcript of thread {thread} is not on this host (the session ran elsewhere), so \
                     this turn started a new thread from the session's stored turns (the context plugin `{}` chose \
                     how many to replay)",
                    self.plugins.context.info.name
                ))
            }
        }
    }

    /// One page of `principal`'s live sessions, most recently used first,
    /// each with the agent holding it; the expired ones met on the page are
    /// removed. The agent is in each session's record, so each listed
    /// session is loaded. The storage plugin is asked for the principal's
    /// prefix (or, for the local principal, the caller's key text), and the
    /// host keeps exactly the principal's sessions matching the caller's
    /// filter, reading on until the page is full.
    pub fn list_page(
        &self,
        principal: &Principal,
        request: &ListRequest,
        call: &CallOptions,
    ) -> Result<ListedPage, TurnError> {
        let wanted_text = request.filter.key_contains.clone();
        let mut asked = request.clone();
        if let Some(prefix) = self.owners.prefix(principal) {
            asked.filter.key_contains = Some(prefix);
        }
        let limit = request.limit.clamp(1, MAX_PAGE) as usize;
        let is_mine = |s: &SessionSummary| {
            self.owners
                .key_for(principal, &s.id)
                .is_some_and(|key| wanted_text.as_deref().is_none_or(|text| key.contains(text)))
        };
        // The storage plugin's pages may hold other principals' sessions: read
        // on, asking each time for no more than the page still lacks, so the
        // page fills without ever running past `limit` (and its cursor stays exact).
        let mut mine: Vec<SessionSummary> = Vec::new();
        let mut next_cursor = request.cursor.clone();
        for _ in 0..MAX_STORAGE_PAGES_PER_LISTING {
            asked.cursor = next_cursor.take();
            asked.limit = (limit - mine.len()) as u32;
            let page = listing::page_of(&self.plugins.storage, &asked, call)?;
            mine.extend(page.sessions.into_iter().filter(|s| is_mine(s)));
            next_cursor = page.next_cursor;
            if next_cursor.is_none() || mine.len() >= limit {
                break;
            }
        }
        let expired = self.remove_expired(&mine, call)?;
        let storage = self.plugins.storage.with(call);
        let mut sessions = Vec::with_capacity(mine.len());
        for mut summary in mine.into_iter().filter(|s| !expired.contains(&s.id)) {
            let agent = match storage.load(&summary.id) {
                Ok(session) => agent_of(&session),
                // Removed since the page was read.
                Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => continue,
                Err(e) => return Err(e.into()),
            };
            if request.agent.as_ref().is_none_or(|wanted| *wanted == agent) {
                let key = self.owners.key_for(principal, &summary.id).expect("filtered above").to_string();
                summary.id = key;
                sessions.push((summary, agent));
            }
        }
        Ok(ListedPage { sessions, next_cursor })
    }

    /// Remove expired sessions; returns how many went. With a catalog, the
    /// least recently used are checked in batches until a batch holds a live
    /// one; otherwise every stored summary is.
    pub fn expire(&self, call: &CallOptions) -> Result<usize, TurnError> {
        let storage = self.plugins.storage.with(call);
        if !self.plugins.storage.has_catalog() {
            return Ok(self.remove_expired(&storage.list()?, call)?.len());
        }
        let mut removed = HashSet::new();
        for _ in 0..MAX_EXPIRY_BATCHES {
            let mut batch = storage.least_recent(EXPIRY_BATCH)?;
            batch.truncate(EXPIRY_BATCH as usize);
            if let Some(again) = batch.iter().find(|s| removed.contains(&s.id)) {
                tracing::error!(plugin = %self.plugins.storage.info.name, session = %again.id,
                    "the storage plugin still lists a session it deleted; the expiry sweep stopped");
                break;
            }
            let expired = self.remove_expired(&batch, call)?;
            let done = expired.len() < batch.len();
            removed.extend(expired);
            if done {
                break;
            }
        }
        Ok(removed.len())
    }

    /// Delete the sessions among `sessions` the policy says have expired;
    /// returns their ids.
    fn remove_expired(
        &self,
        sessions: &[SessionSummary],
        call: &CallOptions,
    ) -> Result<Vec<String>, TurnError> {
        let expired = self.plugins.policy.with(call).expired(sessions, now_ms())?;
        let expired: Vec<String> =
            expired.into_iter().filter(|id| sessions.iter().any(|s| &s.id == id)).collect();
        for id in &expired {
            self.plugins.storage.with(call).delete(id)?;
        }
        Ok(expired)
    }

    /// Make room for the new session `id`. With a catalog and an admission
    /// policy the decision takes the count and at most [`MAX_CANDIDATES`]
    /// least recently used sessions; plugins built against 0.1.1 get every
    /// summary. The policy may evict only sessions it was shown.
    fn admit(&self, id: &str, step: &CallOptions, now: u64) -> Result<(), TurnError> {
        let p = &self.plugins;
        let (storage, policy) = (p.storage.with(step), p.policy.with(step));
        let (offered, evict) = if p.storage.has_catalog() && p.policy.has_admission() {
            let stored = storage.count()?;
            let wanted = policy.candidates(id, stored, now)?.min(MAX_CANDIDATES);
            if wanted == 0 {
                return Ok(());
            }
            let mut offered = storage.least_recent(wanted)?;
            offered.truncate(wanted as usize);
            let evict = policy.admit_counted(id, stored, &offered, now)?;
            (offered, evict)
        } else {
            let offered = storage.list()?;
            let evict = policy.admit(id, &offered, now)?;
            (offered, evict)
        };
        if let Some(stranger) = evict.iter().find(|e| !offered.iter().any(|s| &s.id == *e)) {
            return Err(TurnError::Invalid(format!(
                "policy plugin `{}` chose to evict {stranger:?}, which is not among the sessions it was shown; \
                 nothing was evicted and the new session was not created",
                p.policy.info.name
            )));
        }
        for evicted in evict {
            tracing::info!(session = %evicted, "evicting to admit a new session");
            storage.delete(&evicted)?;
        }
        Ok(())
    }

    /// Remove `principal`'s session `key`; the agent's own transcript is left alone.
    pub fn end(&self, principal: &Principal, key: &str, call: &CallOptions) -> Result<bool, TurnError> {
        let id = self.owners.storage_id(principal, key)?;
        if self.running.lock().expect("running-set lock").contains(&id) {
            return Err(TurnError::Busy(format!(
                "session {key:?} has a turn running; end it when the turn is over"
            )));
        }
        Ok(self.plugins.storage.with(call).delete(&id)?)
    }

    /// The caller's key and the storage id of the session a target names,
    /// and the session if resolving loaded it. A thread held by another
    /// principal's session answers exactly as one no session holds.
    fn resolve(
        &self,
        principal: &Principal,
        agent: &ServedAgent,
        target: &Target,
        call: &CallOptions,
        step: &CallOptions,
        now: u64,
    ) -> Result<(String, String, Option<Session>), TurnError> {
        let p = &self.plugins;
        match target {
            Target::New => {
                let key = uuid::Uuid::new_v4().to_string();
                Ok((key.clone(), self.owners.storage_id(principal, &key)?, None))
            }
            Target::Session { id: key, .. } => {
                Ok((key.clone(), self.owners.storage_id(principal, key)?, None))
            }
            Target::Thread(thread) => {
                check_thread(thread, "the caller")?;
                let storage = p.storage.with(step);
                let unknown = || {
                    TurnError::NotFound(format!(
                        "no session of yours holds thread {thread}; start one with the `{}` tool",
                        agent.name
                    ))
                };
                if let Some(session) = storage.find_by_thread(thread)? {
                    if session.agent_thread_id.as_deref() != Some(thread.as_str()) {
                        return Err(TurnError::Invalid(format!(
                            "storage plugin `{}` answered the thread {thread} with session {:?}, which holds another thread",
                            p.storage.info.name, session.id
                        )));
                    }
                    let Some(key) = self.owners.key_for(principal, &session.id) else {
                        tracing::info!(thread = %thread, "a thread held by another principal's session was asked for");
                        return Err(unknown());
                    };
                    return Ok((key.to_string(), session.id.clone(), Some(session)));
                }
                if !self.owners.owns_transcripts(principal) {
                    return Err(unknown());
                }
                let mut session =
                    agent.plugin.rehydrate(thread, CallOptions { timeout: None, ..call.clone() })?;
                let key = session.id.clone();
                session.id = self.owners.storage_id(principal, &key)?;
                let limits = self.limits.get(&agent.name).expect("every served agent has limits");
                limits.check_session(&session, &format!("agent plugin `{}`", agent.plugin.info.name))?;
                set_agent(&mut session, &agent.name);
                session.last_accessed_ms = now;
                session.revision = 0;
                match storage.save(&session, Some(0)) {
                    Ok(revision) => session.revision = revision,
                    Err(e) if matches!(e.plugin_error(), Some(PluginError::Conflict(_))) => {
                        session = storage.load(&session.id)?;
                    }
                    Err(e) => return Err(e.into()),
                }
                tracing::info!(thread = %thread, session = %key, turns = session.turns.len(),
                    "rehydrated a thread from the agent's transcript");
                Ok((key, session.id.clone(), Some(session)))
            }
        }
    }

    /// Load a session unless it is absent or expired (an expired one is removed).
    fn load_live(&self, id: &str, step: &CallOptions, now: u64) -> Result<Option<Session>, TurnError> {
        let storage = self.plugins.storage.with(step);
        let session = match storage.load(id) {
            Ok(session) => session,
            Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let summary = summary_of(&session);
        if self.plugins.policy.with(step).expired(std::slice::from_ref(&summary), now)?.contains(&session.id)
        {
            tracing::info!(session = %id, "session expired; starting over");
            storage.delete(id)?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Mark the session stored as `id` (the caller's `key`) busy.
    fn mark_running(&self, key: &str, id: &str, cancel: &CancelFlag) -> Result<Running<'_>, TurnError> {
        let mut running = self.running.lock().expect("running-set lock");
        if !running.insert(id.to_string()) {
            return Err(TurnError::Busy(format!(
                "session {key:?} already has a turn running; wait for it to finish or use another sessionId"
            )));
        }
        // Registered first, so the guard below releases the in-process mark on any early return.
        let mut guard = Running { set: &self.running, id: id.to_string(), _across_processes: None };
        drop(running);
        guard._across_processes = Some(self.turn_locks.lock_turn(id, cancel).map_err(|e| match e {
            NotLocked::Busy => TurnError::Busy(format!(
                "session {key:?} has a turn running in another Warden process; wait for it to finish"
            )),
            NotLocked::Failed(why) => TurnError::Invalid(format!("cannot lock session {key:?}: {why}")),
            NotLocked::Cancelled => TurnError::Cancelled,
        })?);
        Ok(guard)
    }

    /// Append the turn and save, reloading and re-applying on a conflict, at
    /// most [`MAX_SAVE_ATTEMPTS`] times: a store that always answers `conflict`
    /// ends the turn with an error instead of holding its session forever.
    fn record(
        &self,
        mut session: Session,
        turn: Turn,
        (thread_id, stored_thread): (&str, Option<String>),
        step: &CallOptions,
    ) -> Result<Option<String>, TurnError> {
        let storage = self.plugins.storage.with(step);
        let settings = session.clone();
        let mut thread = Some(thread_id.to_string());
        let mut warning = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            session.turns.push(turn.clone());
            session.agent_thread_id = thread.clone();
            session.last_accessed_ms = turn.timestamp_ms;
            match storage.save(&session, Some(session.revision)) {
                Ok(_) => return Ok(warning),
                Err(e)
                    if matches!(e.plugin_error(), Some(PluginError::Conflict(_)))
                        && attempt >= MAX_SAVE_ATTEMPTS =>
                {
                    return Err(TurnError::Conflict(format!(
                        "the turn ran but was not recorded: {e} (the last of {attempt} saves of session {:?}, each \
                         reloaded and re-applied after a conflict); the agent's own transcript keeps the answer. \
                         Another writer keeps changing this session, or the storage plugin `{}` answers `conflict` \
                         to every save",
                        session.id, self.plugins.storage.info.name
                    )));
                }
                Err(e) if matches!(e.plugin_error(), Some(PluginError::Conflict(_))) => {
                    tracing::info!(session = %session.id, "another writer saved this session; re-applying the turn");
                    session = match storage.load(&session.id) {
                        Ok(current) => current,
                        Err(e) if matches!(e.plugin_error(), Some(PluginError::NotFound(_))) => {
                            let mut fresh = settings.clone();
                            fresh.revision = 0;
                            fresh.turns.clear();
                            fresh
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if thread.is_some() && session.agent_thread_id != stored_thread {
                        // Another process ran a turn in another thread meanwhile (a lost
                        // cross-host lock): neither thread holds both turns, so the next
                        // turn replays the stored ones instead of resuming either.
                        tracing::warn!(session = %session.id, "another process ran a turn on this session at the same time");
                        thread = None;
                        warning = Some(
                            "another Warden process ran a turn on this session while this one ran; both are \
                             recorded, and the next turn replays the stored turns into a new agent thread"
                                .to_string(),
                        );
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Cut an answer longer than `max` bytes (on a character boundary) and say
/// where the full answer is; returns the text and, if cut, the full length.
pub fn fit_answer(response: &str, max: usize, transcript: Option<&PathBuf>) -> (String, Option<usize>) {
    if response.len() <= max {
        return (response.to_string(), None);
    }
    let cut = (0..=max).rev().find(|&i| response.is_char_boundary(i)).unwrap_or(0);
    let place = match transcript {
        Some(path) => format!("the full answer is in {}", path.display()),
        None => "the agent's transcript holds the full answer".to_string(),
    };
    let note = format!(
        "\n\n[Warden truncated this answer: showing the first {cut} of {} bytes; {place}.]",
        response.len()
    );
    (format!("{}{note}", &response[..cut]), Some(response.len()))
}

/// The field of a session's `extra-json` that names the agent holding its thread.
const AGENT_FIELD: &str = "agent";
/// The agent of a session recorded before Warden served several.
const FIRST_AGENT: &str = "codex";

/// The agent whose thread `session` holds.
pub fn agent_of(session: &Session) -> String {
    serde_json::from_str::<serde_json::Value>(&session.extra_json)
        .ok()
        .and_then(|extra| extra.get(AGENT_FIELD)?.as_str().map(str::to_string))
        .unwrap_or_else(|| FIRST_AGENT.to_string())
}

/// Record that `agent` holds the session's thread.
fn set_agent(session: &mut Session, agent: &str) {
    let mut extra = match serde_json::from_str::<serde_json::Value>(&session.extra_json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    extra.insert(AGENT_FIELD.into(), agent.into());
    session.extra_json = serde_json::Value::Object(extra).to_string();
}

/// An empty session, as a turn creates it.
pub fn new_session(id: &str, now: u64) -> Session {
    Session {
        id: id.to_string(),
        created_ms: now,
        last_accessed_ms: now,
        turns: Vec::new(),
        agent_thread_id: None,
        model: None,
        reasoning_effort: None,
        cwd: None,
        sandbox: None,
        revision: 0,
        extra_json: "{}".into(),
    }
}

fn apply_settings(session: &mut Session, settings: &TurnSettings) {
    let keep = |slot: &mut Option<String>, new: &Option<String>| {
        if new.is_some() {
            slot.clone_from(new);
        }
    };
    keep(&mut session.model, &settings.model);
    keep(&mut session.reasoning_effort, &settings.reasoning_effort);
    keep(&mut session.sandbox, &settings.sandbox);
    keep(&mut session.cwd, &settings.cwd);
}

fn turn_options(session: &Session, settings: &TurnSettings) -> TurnOptions {
    TurnOptions {
        model: session.model.clone(),
        reasoning_effort: session.reasoning_effort.clone(),
        sandbox: session.sandbox.clone(),
        cwd: session.cwd.clone(),
        approval_policy: settings.approval_policy.clone(),
        config_overrides: settings.config.clone(),
        base_instructions: settings.base_instructions.clone(),
        developer_instructions: settings.developer_instructions.clone(),
    }
}

pub fn summary_of(s: &Session) -> SessionSummary {
    SessionSummary {
        id: s.id.clone(),
        created_ms: s.created_ms,
        last_accessed_ms: s.last_accessed_ms,
        turn_count: s.turns.len() as u32,
        agent_thread_id: s.agent_thread_id.clone(),
        model: s.model.clone(),
        cwd: s.cwd.clone(),
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_answers_are_cut_on_a_character_boundary_with_a_pointer() {
        let (text, cut) = fit_answer("short", 10, None);
        assert_eq!((text.as_str(), cut), ("short", None));
        let answer = "é".repeat(10);
        let path = PathBuf::from("/home/u/.codex/sessions/rollout.jsonl");
        let (text, cut) = fit_answer(&answer, 5, Some(&path));
        assert_eq!(cut, Some(20));
        assert!(
            text.starts_with("éé\n\n[Warden truncated this answer: showing the first 4 of 20 bytes"),
            "{text}"
        );
        assert!(text.ends_with("the full answer is in /home/u/.codex/sessions/rollout.jsonl.]"), "{text}");
    }
}
