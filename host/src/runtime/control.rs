//! Per-call control shared by the host and a running plugin call: the
//! caller's cancellation, the call's wall-clock deadline, and the accounting
//! of the guest's own CPU time (the calling thread's CPU time, minus what the
//! host's functions used), so neither waiting in a host call nor being
//! descheduled on a loaded machine uses up a plugin's budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::types::PluginError;

/// A flag the caller (e.g. an MCP `notifications/cancelled`) raises to stop a call.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a call was interrupted from outside the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    Cancelled,
    DeadlinePassed(Duration),
}

/// CPU time the current thread has used. A call runs entirely on the thread
/// that created its Store, so differences of this clock are the call's CPU.
pub fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec.unsigned_abs(), now.tv_nsec as u32)
}

#[derive(Debug)]
pub struct CallControl {
    started_cpu: Duration,
    deadline: Option<(Instant, Duration)>,
    cancel: CancelFlag,
    /// CPU time the host's functions used during this call.
    host_cpu: Duration,
    /// Guest time at which the guest was first seen running after an interruption.
    interrupt_seen_at: Option<Duration>,
}

/// How long a guest may keep running after an interruption, to return the
/// host's `cancelled` / `timeout` error itself before it is trapped.
pub const INTERRUPT_GRACE: Duration = Duration::from_millis(100);

impl CallControl {
    pub fn new(timeout: Option<Duration>, cancel: CancelFlag) -> Self {
        let started = Instant::now();
        Self {
            started_cpu: thread_cpu_time(),
            deadline: timeout.map(|t| (started + t, t)),
            cancel,
            host_cpu: Duration::ZERO,
            interrupt_seen_at: None,
        }
    }

    /// CPU time the guest has spent running its own code in this call.
    pub fn guest_time(&self) -> Duration {
        thread_cpu_time().saturating_sub(self.started_cpu).saturating_sub(self.host_cpu)
    }

    pub fn add_host_cpu(&mut self, spent: Duration) {
        self.host_cpu += spent;
    }

    pub fn interrupted(&self) -> Option<Interruption> {
        if self.cancel.is_cancelled() {
            return Some(Interruption::Cancelled);
        }
        match self.deadline {
            Some((at, limit)) if Instant::now() >= at => Some(Interruption::DeadlinePassed(limit)),
            _ => None,
        }
    }

    /// Whether a guest still running after an interruption has used up its
    /// grace period and must be trapped.
    pub fn interruption_overdue(&mut self) -> Option<Interruption> {
        let interruption = self.interrupted()?;
        let now = self.guest_time();
        let seen = *self.interrupt_seen_at.get_or_insert(now);
        (now.saturating_sub(seen) >= INTERRUPT_GRACE).then_some(interruption)
    }

    /// The error a host call returns once the call is interrupted.
    pub fn interruption(&self) -> Option<PluginError> {
        self.interrupted().map(|i| match i {
            Interruption::Cancelled => PluginError::Cancelled("the call was cancelled by the client".into()),
            Interruption::DeadlinePassed(limit) => PluginError::Timeout(format!(
                "the call exceeded its wall-clock limit of {} s",
                limit.as_secs_f64()
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_the_thread_does_not_run_is_not_guest_time() {
        let control = CallControl::new(None, CancelFlag::new());
        std::thread::sleep(Duration::from_millis(200));
        assert!(control.guest_time() < Duration::from_millis(200), "{:?}", control.guest_time());
    }

    #[test]
    fn host_cpu_is_not_guest_time() {
        let mut control = CallControl::new(None, CancelFlag::new());
        let started = thread_cpu_time();
        while thread_cpu_time() - started < Duration::from_millis(50) {}
        let burnt = control.guest_time();
        assert!(burnt >= Duration::from_millis(50), "{burnt:?}");
        control.add_host_cpu(burnt);
        assert!(control.guest_time() < Duration::from_millis(50), "{:?}", control.guest_time());
    }
}
