//! A child process held by a pidfd: signals go to that process and no
//! other (never to a recycled pid), and waiting for its exit is a `poll` on
//! the pidfd, woken by the kernel, with an extra file descriptor that can
//! wake it early (the call's cancellation).
//!
//! The exit status is read without reaping (`WNOWAIT`): until the handle is
//! dropped the process stays a zombie, so its pid, which is also its
//! process group's id, cannot be reused, and signalling the group stays safe
//! after the leader exited.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus};

use super::launch::InitStack;

pub struct Process {
    pid: Pid,
    pidfd: OwnedFd,
    exit: Option<i32>,
    reaped: bool,
    /// The stack of a namespace's PID 1, unmapped once it is reaped.
    init_stack: Option<InitStack>,
}

impl Process {
    /// `pid` must be an unreaped child of this process, and `pidfd` a pidfd
    /// on it; `init_stack` the stack it runs on, if it is a namespace's PID 1.
    pub fn new(pid: Pid, pidfd: OwnedFd, init_stack: Option<InitStack>) -> Self {
        Self { pid, pidfd, exit: None, reaped: false, init_stack }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The exit code (128 + the signal for a killed process), if it exited.
    pub fn exit_code(&mut self) -> io::Result<Option<i32>> {
        if self.exit.is_none() {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
            let status = rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), options)?;
            self.exit = status.as_ref().and_then(code);
        }
        Ok(self.exit)
    }

    /// Wait until it exits, `wake` becomes readable, or `timeout` passes;
    /// returns the exit code if it exited.
    pub fn wait(&mut self, timeout: Duration, wake: Option<BorrowedFd<'_>>) -> io::Result<Option<i32>> {
        if let Some(code) = self.exit_code()? {
            return Ok(Some(code));
        }
        let mut fds = vec![PollFd::new(&self.pidfd, PollFlags::IN)];
        if let Some(wake) = wake {
            fds.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
        }
        poll(&mut fds, timeout)?;
        self.exit_code()
    }

    /// Signal the process itself.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        match rustix::process::pidfd_send_signal(&self.pidfd, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Signal its process group (whose id is its pid); an empty group is not an error.
    pub fn signal_group(&self, signal: Signal) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        match rustix::process::kill_process_group(self.pid, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Wait for it to exit and release its pid.
    pub fn reap(&mut self) -> io::Result<()> {
        if !self.reaped {
            loop {
                match rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED) {
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                    Ok(status) => {
                        self.exit = self.exit.or(status.as_ref().and_then(code));
                        break;
                    }
                }
            }
            self.reaped = true;
            if let Some(stack) = self.init_stack.take() {
                stack.release();
            }
        }
        Ok(())
    }
}

fn code(status: &WaitIdStatus) -> Option<i32> {
    status.exit_status().or_else(|| status.terminating_signal().map(|signal| 128 + signal))
}

/// `poll` for at most `timeout`, retrying on EINTR; `Ok` also on timeout.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Duration) -> io::Result<()> {
    let timeout = Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    loop {
        match rustix::event::poll(fds, Some(&timeout)) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
