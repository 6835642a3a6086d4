//! Per-call control shared by the host and a running plugin call: the
//! caller's cancellation, the call's wall-clock deadline, and the accounting
//! of the guest's own CPU time (the calling thread's CPU time, minus what the
//! host's functions used), so neither waiting in a host call nor being
//! descheduled on a loaded machine uses up a plugin's budget.
//!
//! Host functions that wait (a lock, a free call slot) wait through a
//! [`Waiter`]: in steps no longer than the time left, woken at once by a
//! cancellation, so no wait outlives the call's deadline or its caller.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::EventfdFlags;

use crate::types::PluginError;

/// A flag the caller (e.g. an MCP `notifications/cancelled`) raises to stop a
/// call; raising it wakes every wait in [`CancelFlag::wait`], and makes its
/// [`waker`](CancelFlag::waker) readable for host calls that `poll` (a
/// child's output or exit).
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    /// An eventfd, made on first request, readable once the flag is raised.
    waker: OnceLock<OwnedFd>,
}

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let _held = self.0.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.0.wake.notify_all();
        if let Some(fd) = self.0.waker.get() {
            wake(fd);
        }
    }

    /// A descriptor that becomes (and stays) readable when the flag is raised.
    pub fn waker(&self) -> std::io::Result<BorrowedFd<'_>> {
        if let Some(fd) = self.0.waker.get() {
            return Ok(fd.as_fd());
        }
        // Under the lock `cancel` takes, so neither misses the other.
        let _held = self.0.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.0.waker.get().is_none() {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            if self.is_cancelled() {
                wake(&fd);
            }
            // Only set here, under the lock, so this cannot fail.
            self.0.waker.set(fd).ok();
        }
        Ok(self.0.waker.get().expect("set above").as_fd())
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Sleep for at most `duration`, returning early (with `true`) if the flag is raised.
    pub fn wait(&self, duration: Duration) -> bool {
        let held = self.0.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (_held, _) = self
            .0
            .wake
            .wait_timeout_while(held, duration, |_| !self.is_cancelled())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.is_cancelled()
    }
}

fn wake(fd: &OwnedFd) {
    if let Err(e) = rustix::io::write(fd, &1u64.to_ne_bytes()) {
        tracing::error!(error = %e, "could not wake the waiters of a cancelled call");
    }
}

/// Why a call was interrupted from outside the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    Cancelled,
    DeadlinePassed(Duration),
}

/// A call's deadline and cancellation, for host code that waits on its behalf.
#[derive(Clone, Debug)]
pub struct Waiter {
    deadline: Option<(Instant, Duration)>,
    cancel: CancelFlag,
}

impl Waiter {
    pub fn new(timeout: Option<Duration>, cancel: CancelFlag) -> Self {
        Self { deadline: timeout.map(|t| (Instant::now() + t, t)), cancel }
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

    /// The caller's cancellation, for host code that waits on something else (a server).
    pub fn cancel_flag(&self) -> &CancelFlag {
        &self.cancel
    }

    /// Time left before the deadline (`None`: the call has none).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|(at, _)| at.saturating_duration_since(Instant::now()))
    }

    /// Wait for at most `step`, never past the deadline, waking at once on a
    /// cancellation; then the interruption's error, if the call is interrupted.
    pub fn pause(&self, step: Duration) -> Result<(), PluginError> {
        self.check()?;
        self.cancel.wait(self.remaining().map_or(step, |left| left.min(step)));
        self.check()
    }

    /// The error a host call returns once the call is interrupted.
    pub fn check(&self) -> Result<(), PluginError> {
        match self.interrupted() {
            None => Ok(()),
            Some(Interruption::Cancelled) => {
                Err(PluginError::Cancelled("the call was cancelled by the client".into()))
            }
            Some(Interruption::DeadlinePassed(limit)) => Err(PluginError::Timeout(format!(
                "the call exceeded its wall-clock limit of {} s",
                limit.as_secs_f64()
            ))),
        }
    }
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
    waiter: Waiter,
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
        Self::with_waiter(Waiter::new(timeout, cancel))
    }

    /// Control for a call whose deadline and cancellation `waiter` already carries
    /// (e.g. a call that first waited for a free slot).
    pub fn with_waiter(waiter: Waiter) -> Self {
        Self { started_cpu: thread_cpu_time(), waiter, host_cpu: Duration::ZERO, interrupt_seen_at: None }
    }

    /// CPU time the guest has spent running its own code in this call.
    pub fn guest_time(&self) -> Duration {
        thread_cpu_time().saturating_sub(self.started_cpu).saturating_sub(self.host_cpu)
    }

    pub fn add_host_cpu(&mut self, spent: Duration) {
        self.host_cpu += spent;
    }

    pub fn interrupted(&self) -> Option<Interruption> {
        self.waiter.interrupted()
    }

    /// The call's deadline and cancellation, for host code that waits.
    pub fn waiter(&self) -> &Waiter {
        &self.waiter
    }

    /// Time left until the call's deadline, if it has one.
    pub fn time_left(&self) -> Option<Duration> {
        self.waiter.remaining()
    }

    /// A descriptor that becomes readable when the call is cancelled (see [`CancelFlag::waker`]).
    pub fn cancel_waker(&self) -> std::io::Result<BorrowedFd<'_>> {
        self.waiter.cancel.waker()
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
        self.waiter.check().err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_wakes_a_pause_at_once() {
        let cancel = CancelFlag::new();
        let waiter = Waiter::new(None, cancel.clone());
        std::thread::scope(|scope| {
            scope.spawn(|| cancel.cancel());
            let outcome = waiter.pause(Duration::from_secs(24 * 3600));
            assert!(matches!(outcome, Err(PluginError::Cancelled(_))), "{outcome:?}");
        });
    }

    #[test]
    fn a_pause_never_outlives_the_deadline() {
        let waiter = Waiter::new(Some(Duration::from_millis(20)), CancelFlag::new());
        let mut outcome = Ok(());
        while outcome.is_ok() {
            outcome = waiter.pause(Duration::from_secs(24 * 3600));
        }
        assert!(matches!(&outcome, Err(PluginError::Timeout(m)) if m.contains("0.02 s")), "{outcome:?}");
    }

    #[test]
    fn cancelling_wakes_a_poll_on_the_waker_made_before_or_after() {
        let readable = |flag: &CancelFlag| {
            let waker = flag.waker().unwrap();
            let mut fds = [rustix::event::PollFd::from_borrowed_fd(waker, rustix::event::PollFlags::IN)];
            rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })).unwrap()
                == 1
        };
        let before = CancelFlag::new();
        assert!(!readable(&before));
        before.cancel();
        assert!(readable(&before));
        let after = CancelFlag::new();
        after.cancel();
        assert!(readable(&after));
    }

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
