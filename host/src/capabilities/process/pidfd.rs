//! A child process held by a pidfd: signals go to that process and no
//! other (never to a recycled pid), and waiting for its exit is a `poll` on
//! the pidfd, woken by the kernel, with an extra file descriptor that can
//! wake it early (the call's cancellation).
//!
//! The exit status is read without reaping (`WNOWAIT`): until the handle is
//! dropped the process stays a zombie, so its pid, which is also its
//! process group's id, cannot be reused, and signalling the group stays safe
//! after the leader exited. A namespace's PID 1 also writes the program's
//! exit code on a pipe before it exits: that code is read from the pipe, so
//! a caller need not wait for the namespace's teardown to learn it (reaping
//! still waits for it). A PID 1 handed its program ahead of time writes one
//! byte on that pipe first, once the program has exec'd; if it exits
//! without, the program never started, and [`Process::start_failure`] says why.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus};

use super::launch::{InitStack, Unconfirmed};

pub struct Process {
    pid: Pid,
    pidfd: OwnedFd,
    exit: Option<i32>,
    reaped: bool,
    /// The stack of a namespace's PID 1, unmapped once it is reaped.
    init_stack: Option<InitStack>,
    /// Non-blocking: where a namespace's PID 1 writes the program's exit
    /// code; dropped once read, or once it closed without one.
    status: Option<OwnedFd>,
    /// The launch of a program whose exec PID 1 has not reported yet.
    unconfirmed: Option<Unconfirmed>,
    /// Why the program did not start, if PID 1 exited without starting it.
    start_failure: Option<String>,
}

/// What a non-blocking read of one whole `N`-byte message from a status pipe gave.
enum Message<const N: usize> {
    Whole([u8; N]),
    NotYet,
    /// Closed without one: PID 1 exited (or was killed) before writing it.
    Closed,
}

impl Process {
    /// `pid` must be an unreaped child of this process, and `pidfd` a pidfd
    /// on it; `init_stack` the stack it runs on and `status` its status
    /// pipe, if it is a namespace's PID 1; `unconfirmed` the launch of a
    /// program PID 1 has not reported started yet.
    pub fn new(
        pid: Pid,
        pidfd: OwnedFd,
        init_stack: Option<InitStack>,
        status: Option<OwnedFd>,
        unconfirmed: Option<Unconfirmed>,
    ) -> Self {
        let status = status.filter(|pipe| rustix::io::ioctl_fionbio(pipe, true).is_ok());
        Self { pid, pidfd, exit: None, reaped: false, init_stack, status, unconfirmed, start_failure: None }
    }

    /// Why the program did not start, once PID 1 is known to have exited without starting it.
    pub fn start_failure(&self) -> Option<&str> {
        self.start_failure.as_deref()
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The exit code (128 + the signal for a killed process), if it exited.
    pub fn exit_code(&mut self) -> io::Result<Option<i32>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        if let (Some(unconfirmed), Some(pipe)) = (&self.unconfirmed, &self.status) {
            // One byte: the program has exec'd.
            match read_message::<1>(pipe)? {
                Message::NotYet => return Ok(None),
                Message::Whole(_) => self.unconfirmed.take().expect("checked above").release(),
                Message::Closed => {
                    // Kept until PID 1 is reaped: the program's process may still read it.
                    self.start_failure = Some(unconfirmed.failure().to_string());
                    self.status = None;
                }
            }
        }
        if let Some(pipe) = &self.status {
            match read_message::<4>(pipe)? {
                Message::Whole(code) => {
                    self.status = None;
                    self.exit = Some(i32::from_ne_bytes(code));
                    return Ok(self.exit);
                }
                Message::NotYet => return Ok(None),
                Message::Closed => self.status = None,
            }
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        let status = rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), options)?;
        self.exit = status.as_ref().and_then(code);
        Ok(self.exit)
    }

    /// Wait until it exits, `wake` becomes readable, or `timeout` passes;
    /// returns the exit code if it exited.
    pub fn wait(&mut self, timeout: Duration, wake: Option<BorrowedFd<'_>>) -> io::Result<Option<i32>> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(code) = self.exit_code()? {
                return Ok(Some(code));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // A status pipe that closed without a code (its PID 1 was killed)
            // is gone after `exit_code`: the pidfd is watched then.
            let watched = self.status.as_ref().unwrap_or(&self.pidfd);
            let mut fds = vec![PollFd::new(watched, PollFlags::IN)];
            if let Some(wake) = wake {
                fds.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
            }
            poll(&mut fds, left)?;
            if fds.get(1).is_some_and(|fd| !fd.revents().is_empty()) {
                return self.exit_code();
            }
        }
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
            if let Some(launch) = self.unconfirmed.take() {
                launch.release();
            }
        }
        Ok(())
    }
}

/// Read one `N`-byte message from a status pipe without blocking. PID 1
/// writes each message in one write of at most 4 bytes, which a pipe keeps whole.
fn read_message<const N: usize>(pipe: &OwnedFd) -> io::Result<Message<N>> {
    let mut bytes = [0u8; N];
    loop {
        match rustix::io::read(pipe, &mut bytes) {
            Ok(n) if n == N => return Ok(Message::Whole(bytes)),
            Ok(_) => return Ok(Message::Closed),
            Err(rustix::io::Errno::AGAIN) => return Ok(Message::NotYet),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::contain::{self, Start};
    use super::super::testing::read_to_end;
    use super::*;

    fn start(script: &str) -> (Process, OwnedFd) {
        let start = Start { env: &[], cwd: Path::new("/"), stdin: false };
        let spawned = contain::spawn(Path::new("/bin/sh"), &["-c".into(), script.into()], start).unwrap();
        let process =
            Process::new(spawned.pid, spawned.pidfd, spawned.init_stack, spawned.status, spawned.unconfirmed);
        (process, spawned.stdout)
    }

    #[test]
    fn the_programs_exit_code_and_the_end_of_its_output_come_with_its_exit() {
        let (mut process, stdout) = start("echo out; exit 7");
        assert_eq!(read_to_end(&stdout), b"out\n");
        assert_eq!(process.wait(Duration::from_secs(30), None).unwrap(), Some(7));
        process.reap().unwrap();
        assert_eq!(process.exit_code().unwrap(), Some(7), "reaping keeps the program's code");
    }

    #[test]
    fn a_child_killed_before_its_program_exits_reports_the_kill() {
        let (mut process, _stdout) = start("exec sleep 30");
        assert_eq!(process.exit_code().unwrap(), None);
        process.signal(Signal::KILL).unwrap();
        assert_eq!(process.wait(Duration::from_secs(30), None).unwrap(), Some(128 + 9));
        process.reap().unwrap();
    }
}
