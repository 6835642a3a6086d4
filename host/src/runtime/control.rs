//! Per-call control shared by the host and a running plugin call: the
//! caller's cancellation, the call's wall-clock deadline, and the accounting
//! that separates guest CPU time from time spent waiting in host calls.

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

#[derive(Debug)]
pub struct CallControl {
    started: Instant,
    deadline: Option<(Instant, Duration)>,
    cancel: CancelFlag,
    /// Total time spent inside host functions during this call.
    host_time: Duration,
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
            started,
            deadline: timeout.map(|t| (started + t, t)),
            cancel,
            host_time: Duration::ZERO,
            interrupt_seen_at: None,
        }
    }

    /// Time the guest has spent running its own code in this call.
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    pub fn add_host_time(&mut self, spent: Duration) {
        self.host_time += spent;
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
