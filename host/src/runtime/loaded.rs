//! A loaded plugin: its identity and grants, its pre-instantiated
//! component, and the one way to call it: one of the plugin's call slots, then
//! a fresh Store per call with the plugin's memory cap, CPU budget and
//! wall-clock deadline, dropped afterwards (also after a trap).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::host_state::{HostState, MemoryLimitExceeded};
use super::manifest::Manifest;
use super::slots::{CallSlots, NoSlot};
use crate::capabilities::process::LiveChildren;
use crate::capabilities::progress::ProgressSink;
use crate::capabilities::sql::Database;
use crate::capabilities::store_fs::FsRoot;
pub use crate::contract::describe;
use crate::contract::role::Role;
use crate::control::{CallControl, CancelFlag, Interruption, Waiter};
use crate::types::PluginError;
use warden_permissions::ProcessPolicy;

/// Per-plugin limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    pub memory_bytes: usize,
    /// Guest CPU time allowed per call; time waiting in host calls is not counted.
    pub cpu_budget: Duration,
    /// Bytes of stdout and of stderr kept from each child process.
    pub output_cap: usize,
    /// Live children one call may hold.
    pub max_children_per_call: usize,
    /// Live children the plugin may hold over all its calls.
    pub max_children: usize,
    /// Wall-clock limit of a call that sets none itself (every call but an
    /// agent's turn), and the longest a call waits for a free slot.
    pub call_timeout: Duration,
    /// Calls of this plugin that may run at once.
    pub max_concurrent_calls: usize,
}

/// Where a plugin's code came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    Embedded(&'static str),
    File(std::path::PathBuf),
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Embedded(name) => write!(f, "embedded {name}"),
            PluginSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Who a plugin is and what it may touch.
pub struct PluginInfo {
    pub name: String,
    pub role: Role,
    pub source: PluginSource,
    pub sha256: String,
    pub manifest: Manifest,
    pub limits: PluginLimits,
    /// The directory `store-fs` (or `store-fs-readonly`) works in, if granted.
    pub fs_root: Option<FsRoot>,
    /// The database `sql` works in, if granted.
    pub database: Option<Arc<Database>>,
    /// What `process` may run; `None` grants nothing.
    pub process: Option<ProcessPolicy>,
    /// The plugin's settings as a JSON object.
    pub settings_json: String,
    /// Log every spawn and write, not only refusals.
    pub audit: bool,
    /// Children the plugin's calls hold now (against `limits.max_children`).
    pub live_children: LiveChildren,
}

/// How one call runs: its wall-clock limit, cancellation and progress sink.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// `None`: the plugin's `call_timeout`. Every call has a deadline.
    pub timeout: Option<Duration>,
    /// `None`: the plugin's `cpu_budget`. Bulk calls (a migration, a
    /// reindex) raise it to their deadline.
    pub cpu_budget: Option<Duration>,
    pub cancel: CancelFlag,
    pub progress: Option<ProgressSink>,
}

/// Why a call did not produce the plugin's own answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin ran and returned one of the contract's errors.
    #[error("plugin `{plugin}` ({role}) failed in `{function}`: {}{hint}", describe(error), hint = deadline_hint(*role, function, error))]
    Plugin { plugin: String, role: Role, function: &'static str, error: PluginError },
    /// The plugin was stopped or broke; the host discarded its instance.
    #[error("plugin `{plugin}` ({role}) was stopped in `{function}`: {reason}{hint}", hint = limit_hint(*role, function, reason))]
    Aborted { plugin: String, role: Role, function: &'static str, reason: AbortReason },
    /// Every one of the plugin's call slots stayed busy; the call never started.
    #[error(
        "plugin `{plugin}` ({role}) could not start `{function}`: its {limit} concurrent calls were all busy \
         for {} ms; try again when they finish, or raise `max-concurrent-calls` under [plugins.{role}] \
         (and the pool, the top-level `max-concurrent-calls`) if the load is legitimate",
        waited.as_millis()
    )]
    AtCapacity { plugin: String, role: Role, function: &'static str, limit: usize, waited: Duration },
}

/// Outside an agent's turn, a `timeout` can only be the call's deadline, which
/// the host's wait functions returned and the plugin passed on.
fn deadline_hint(role: Role, function: &str, error: &PluginError) -> String {
    match error {
        PluginError::Timeout(_) if function != "run-turn" => {
            format!("; raise `call-timeout-ms` under [plugins.{role}] if the work is legitimate")
        }
        _ => String::new(),
    }
}

/// Which setting raises a limit the call ran into.
fn limit_hint(role: Role, function: &str, reason: &AbortReason) -> String {
    match reason {
        AbortReason::Timeout(_) if function == "run-turn" => {
            format!("; raise `turn-timeout-secs` under [plugins.{role}] if turns legitimately take longer")
        }
        AbortReason::Timeout(_) => {
            format!("; raise `call-timeout-ms` under [plugins.{role}] if the work is legitimate")
        }
        _ => String::new(),
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbortReason {
    #[error("it used more than its CPU budget of {} ms; raise `cpu-budget-ms` for this plugin if the work is legitimate", .0.as_millis())]
    CpuBudget(Duration),
    #[error("it exceeded its memory limit of {} MiB; raise `memory-mib` for this plugin if the work is legitimate", .0 >> 20)]
    MemoryLimit(usize),
    #[error("the call was cancelled")]
    Cancelled,
    #[error("the call exceeded its wall-clock limit of {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("it panicked: {0}")]
    Panic(String),
    #[error("it trapped: {0}")]
    Trap(String),
    /// It returned a value (or made a call) the contract does not allow,
    /// e.g. a string that is not UTF-8, a stale resource handle, or `exit`.
    #[error("it broke the contract: {0}")]
    Malformed(String),
    #[error("the host could not run it: {0}")]
    Host(String),
}

impl CallError {
    /// The contract error, if the plugin returned one.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            CallError::Plugin { error, .. } => Some(error),
            CallError::Aborted { .. } | CallError::AtCapacity { .. } => None,
        }
    }

    pub fn abort_reason(&self) -> Option<&AbortReason> {
        match self {
            CallError::Aborted { reason, .. } => Some(reason),
            CallError::Plugin { .. } | CallError::AtCapacity { .. } => None,
        }
    }

    /// The role of the plugin that was called.
    pub fn role(&self) -> Role {
        match self {
            CallError::Plugin { role, .. }
            | CallError::Aborted { role, .. }
            | CallError::AtCapacity { role, .. } => *role,
        }
    }

    /// The plugin function that was called.
    pub fn function(&self) -> &'static str {
        match self {
            CallError::Plugin { function, .. }
            | CallError::Aborted { function, .. }
            | CallError::AtCapacity { function, .. } => function,
        }
    }
}

/// A failure to instantiate, told apart from failures of the call itself.
#[derive(Debug, thiserror::Error)]
#[error("instantiating the plugin: {0:#}{hint}", hint = fix_for(.0))]
pub(crate) struct InstantiationFailed(wasmtime::Error);

/// What to do about an instantiation failure whose cause is the process's
/// environment rather than the plugin.
fn fix_for(error: &wasmtime::Error) -> &'static str {
    let too_large = error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error)
            == Some(rustix::io::Errno::FBIG.raw_os_error())
    });
    if too_large {
        "; plugin memory is backed by memory files, which count against the file-size limit: \
         raise `ulimit -f` (RLIMIT_FSIZE) for Warden to at least the plugins' memory size"
    } else {
        ""
    }
}

/// A world's pre-instantiated component (its generated `…Pre` type), made
/// into a live instance in a call's Store.
pub trait Instantiate {
    type Instance;
    fn instantiate_in(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Instance>;
}

/// Raised from the epoch callback when the guest ran past its CPU budget.
#[derive(Debug, thiserror::Error)]
#[error("CPU budget exhausted")]
struct CpuBudgetExhausted;

/// Raised from the epoch callback when the caller cancelled or the deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0:?}")]
struct Interrupted(Interruption);

/// A plugin ready to be called: `P` is the world's generated `…Pre` type.
pub struct Loaded<P> {
    pub info: Arc<PluginInfo>,
    pub(crate) engine: Engine,
    pub(crate) pre: P,
    pub(crate) slots: CallSlots,
}

impl<P: Instantiate> Loaded<P> {
    /// Instantiate in a fresh Store, run `body` on the instance, and turn
    /// every failure into a [`CallError`] that names the plugin and what happened.
    pub(crate) fn call<R>(
        &self,
        function: &'static str,
        options: CallOptions,
        body: impl FnOnce(P::Instance, &mut Store<HostState>) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Result<R, CallError> {
        let started = std::time::Instant::now();
        let timeout = options.timeout.unwrap_or(self.info.limits.call_timeout);
        let waiter = Waiter::new(Some(timeout), options.cancel);
        let _slot = match self.slots.acquire(&waiter, self.info.limits.call_timeout) {
            Ok(slot) => slot,
            Err(refusal) => return Err(self.no_slot(function, refusal)),
        };
        let budget = options.cpu_budget.unwrap_or(self.info.limits.cpu_budget);
        let mut store = self.store_for(CallControl::with_waiter(waiter), options.progress, budget);
        let outcome = match self.pre.instantiate_in(&mut store) {
            Ok(instance) => body(instance, &mut store),
            Err(error) => Err(InstantiationFailed(error).into()),
        };
        let stderr = store.data().stderr_text();
        tracing::debug!(plugin = %self.info.name, function, micros = started.elapsed().as_micros() as u64, "plugin call");
        if !stderr.is_empty() {
            tracing::info!(plugin = %self.info.name, function, stderr = %stderr.trim_end(), "plugin stderr");
        }
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(CallError::Plugin {
                plugin: self.info.name.clone(),
                role: self.info.role,
                function,
                error,
            }),
            Err(error) => {
                let reason = self.classify(&store, &error, &stderr, budget);
                // The error chain carries the guest's own backtrace; the host's
                // backtrace is for Warden's developers, at debug level. A caller's
                // cancel is routine, not an error.
                if matches!(reason, AbortReason::Cancelled) {
                    tracing::info!(plugin = %self.info.name, role = %self.info.role, function,
                        reason = %reason, "plugin call stopped");
                } else {
                    tracing::error!(plugin = %self.info.name, role = %self.info.role, function,
                        reason = %reason, detail = %format!("{error:#}"), "plugin call aborted");
                }
                tracing::debug!(plugin = %self.info.name, function, host_backtrace = %format!("{error:?}"),
                    "plugin call aborted (host detail)");
                Err(CallError::Aborted {
                    plugin: self.info.name.clone(),
                    role: self.info.role,
                    function,
                    reason,
                })
            }
        }
    }

    /// The world's pre-instantiated component (for benchmarks that reuse an instance).
    pub fn pre(&self) -> &P {
        &self.pre
    }

    /// The error for an answer the plugin gave that the contract does not allow
    /// (a call that returned, but with something other than what was asked for).
    pub fn broke_contract(&self, function: &'static str, what: String) -> CallError {
        let error = CallError::Aborted {
            plugin: self.info.name.clone(),
            role: self.info.role,
            function,
            reason: AbortReason::Malformed(what),
        };
        tracing::warn!(error = %error, "plugin answer refused");
        error
    }

    /// Why a call got no slot, as the error its caller sees.
    fn no_slot(&self, function: &'static str, refusal: NoSlot) -> CallError {
        let (plugin, role) = (self.info.name.clone(), self.info.role);
        let error = match refusal {
            NoSlot::Full { limit, waited } => CallError::AtCapacity { plugin, role, function, limit, waited },
            NoSlot::Interrupted(interruption) => {
                let reason = match interruption {
                    Interruption::Cancelled => AbortReason::Cancelled,
                    Interruption::DeadlinePassed(limit) => AbortReason::Timeout(limit),
                };
                CallError::Aborted { plugin, role, function, reason }
            }
        };
        tracing::warn!(error = %error, "plugin call not started");
        error
    }

    /// A fresh Store armed with this plugin's memory cap, CPU budget and the
    /// call's deadline (the plugin's `call_timeout` unless `options` sets one).
    pub fn new_store(&self, options: CallOptions) -> Store<HostState> {
        let timeout = options.timeout.unwrap_or(self.info.limits.call_timeout);
        let budget = options.cpu_budget.unwrap_or(self.info.limits.cpu_budget);
        self.store_for(CallControl::new(Some(timeout), options.cancel), options.progress, budget)
    }

    fn store_for(
        &self,
        control: CallControl,
        progress: Option<ProgressSink>,
        budget: Duration,
    ) -> Store<HostState> {
        let state = HostState::new(self.info.clone(), control, progress);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(move |mut ctx| {
            let control = &mut ctx.data_mut().control;
            if let Some(interruption) = control.interruption_overdue() {
                return Err(Interrupted(interruption).into());
            }
            if control.guest_time() >= budget {
                return Err(CpuBudgetExhausted.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);
        store
    }

    fn classify(
        &self,
        store: &Store<HostState>,
        error: &wasmtime::Error,
        stderr: &str,
        budget: Duration,
    ) -> AbortReason {
        if store.data().memory.exceeded.is_some() || error.downcast_ref::<MemoryLimitExceeded>().is_some() {
            return AbortReason::MemoryLimit(self.info.limits.memory_bytes);
        }
        if error.downcast_ref::<CpuBudgetExhausted>().is_some() {
            return AbortReason::CpuBudget(budget);
        }
        if let Some(Interrupted(interruption)) = error.downcast_ref::<Interrupted>() {
            return match interruption {
                Interruption::Cancelled => AbortReason::Cancelled,
                Interruption::DeadlinePassed(limit) => AbortReason::Timeout(*limit),
            };
        }
        if let Some(message) = panic_message(stderr) {
            return AbortReason::Panic(message);
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            return AbortReason::Trap(trap.to_string());
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return AbortReason::Malformed(format!("it called exit({}) instead of returning", exit.0));
        }
        if error.downcast_ref::<InstantiationFailed>().is_some() {
            return AbortReason::Host(format!("{error:#}"));
        }
        // Past instantiation, a non-trap error is the canonical ABI refusing
        // what the guest handed over, or a host function refusing its handle.
        AbortReason::Malformed(format!("{error:#}"))
    }
}

/// The message of a Rust panic as printed to stderr by the guest's std.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let after = &stderr[start..];
    let message: Vec<&str> = after.lines().skip(1).take_while(|line| !line.starts_with("note: ")).collect();
    let location =
        after.lines().next().unwrap_or_default().trim_start_matches("panicked at ").trim_end_matches(':');
    Some(format!("{} (at {location})", message.join(" ").trim()))
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn extracts_the_panic_message() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:40:24:\nboom on purpose\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(stderr).unwrap(), "boom on purpose (at src/lib.rs:40:24)");
        assert_eq!(panic_message("just logging"), None);
    }
}
