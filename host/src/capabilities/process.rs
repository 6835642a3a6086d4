//! The `process` capability: running an approved program as a child, with
//! capped, line-oriented output, contained with everything it starts
//! ([`contain`]), held by a pidfd ([`pidfd`]), and counted against the
//! plugin's child caps ([`slots`]).
//!
//! On cancellation or timeout the child's process group is interrupted
//! (SIGINT, as Ctrl-C would, so an agent can record the aborted turn) and
//! the child killed if it has not exited after [`STOP_GRACE`]; on drop it is
//! killed outright. Killing the child ends every process it started (see
//! [`contain`] for how, and for the weaker fallback).
//!
//! Waiting is event-driven: `read_line` polls the output pipes, `wait` the
//! pidfd, each together with the call's cancellation descriptor and bounded
//! by the call's deadline; nothing sleeps. Threads per child: none for
//! output (the calling thread reads it, see [`output`]); one to write stdin,
//! only when the guest passes stdin bytes.

mod contain;
mod launch;
mod output;
mod pidfd;
mod slots;
mod standby;
#[cfg(test)]
mod testing;
mod wit;

use std::io::Write;
use std::time::{Duration, Instant};

use rustix::process::Signal;

pub use self::contain::{Containment, containment};
pub use self::slots::{LiveChildren, Slot};
pub use self::wit::{ChildLimits, Process, ProcessView};
use crate::control::CallControl;
use crate::types::PluginError;
use warden_permissions::ApprovedSpawn;

impl From<warden_permissions::Denial> for PluginError {
    fn from(denial: warden_permissions::Denial) -> Self {
        use warden_permissions::Denial;
        match denial {
            Denial::Denied(m) => PluginError::Denied(m),
            Denial::Invalid(m) => PluginError::Invalid(m),
            Denial::NotFound(m) => PluginError::NotFound(m),
        }
    }
}

pub use self::output::MAX_LINE;
/// How long an interrupted child may take to exit before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// Live children one plugin call may hold, unless configured.
pub const DEFAULT_MAX_CHILDREN_PER_CALL: usize = 4;
/// Live children one plugin may hold over all its calls, unless configured.
pub const DEFAULT_MAX_CHILDREN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What `read_line` returns.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadResult {
    Line { stream: Stream, text: String, truncated: bool },
    Pending,
    Closed,
}

/// A running child. Dropping it kills it (and so everything it started) and reaps it.
pub struct HostChild {
    process: pidfd::Process,
    /// The program, as errors name it.
    program: String,
    output: output::Output,
    /// Its places in the call's and the plugin's child caps.
    _slots: Vec<Slot>,
}

impl HostChild {
    /// Spawn an approved request; `stdin` of `None` is /dev/null. `slots`
    /// are held until the child is dropped.
    pub fn spawn(
        approved: ApprovedSpawn,
        stdin: Option<Vec<u8>>,
        output_cap: usize,
        slots: Vec<Slot>,
    ) -> Result<Self, PluginError> {
        let start = contain::Start { env: &approved.env, cwd: &approved.cwd, stdin: stdin.is_some() };
        let spawned = contain::spawn(&approved.executable, &approved.args, start);
        let spawned = spawned.map_err(|e| {
            PluginError::Failed(format!("could not start {}: {e}", approved.executable.display()))
        })?;
        let pid = spawned.pid.as_raw_nonzero().get();
        let process = pidfd::Process::new(
            spawned.pid,
            spawned.pidfd,
            spawned.init_stack,
            spawned.status,
            spawned.unconfirmed,
        );
        if let (Some(bytes), Some(pipe)) = (stdin, spawned.stdin) {
            let mut pipe = std::fs::File::from(pipe);
            std::thread::spawn(move || {
                if let Err(e) = pipe.write_all(&bytes) {
                    tracing::debug!(pid, error = %e, "child closed stdin before reading all input");
                }
            });
        }
        tracing::info!(pid, program = %approved.executable.display(), args = ?approved.args,
            cwd = %approved.cwd.display(), containment = containment().name(), "spawned child");
        let output = output::Output::new(spawned.stdout, spawned.stderr, output_cap);
        let program = approved.executable.display().to_string();
        Ok(Self { process, program, output, _slots: slots })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid().as_raw_nonzero().get() as u32
    }

    /// Next line from either stream, waiting at most `timeout`; cancellation
    /// and the call's deadline stop the child and end the wait with an error.
    pub fn read_line(&mut self, timeout: Duration, control: &CallControl) -> Result<ReadResult, PluginError> {
        let until = Instant::now() + timeout;
        loop {
            self.check_control(control)?;
            let waker = control.cancel_waker().map_err(io_error("waiting for child output"))?;
            let left = until.saturating_duration_since(Instant::now());
            let wait = control.time_left().map_or(left, |deadline| deadline.min(left));
            match self.output.next_line(wait, Some(waker)).map_err(io_error("reading child output"))? {
                output::Next::Line(line) => {
                    let text = String::from_utf8(line.text)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    return Ok(ReadResult::Line { stream: line.stream, text, truncated: line.truncated });
                }
                output::Next::Closed => return Ok(ReadResult::Closed),
                output::Next::Pending if Instant::now() >= until => {
                    self.check_control(control)?;
                    return Ok(ReadResult::Pending);
                }
                output::Next::Pending => {}
            }
        }
    }

    /// Wait for exit at most `timeout`; `None` if still running.
    pub fn wait(&mut self, timeout: Duration, control: &CallControl) -> Result<Option<i32>, PluginError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(code) = self.exit_code()? {
                // A program handed to a namespace set up ahead of it is known
                // not to have started only once its PID 1 has exited.
                if let Some(why) = self.process.start_failure() {
                    return Err(PluginError::Failed(format!("could not start {}: {why}", self.program)));
                }
                return Ok(Some(code));
            }
            self.check_control(control)?;
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            let waker = control.cancel_waker().map_err(io_error("waiting for a child"))?;
            let wait = control.time_left().map_or(until - now, |deadline| deadline.min(until - now));
            self.process.wait(wait, Some(waker)).map_err(io_error("waiting for a child"))?;
        }
    }

    /// SIGKILL the child, and so everything it started.
    pub fn kill(&mut self) -> Result<(), PluginError> {
        self.process.signal(Signal::KILL).map_err(io_error("killing a child"))?;
        self.process.signal_group(Signal::KILL).map_err(io_error("killing a child's process group"))
    }

    /// SIGINT the child's process group, wait up to [`STOP_GRACE`] for the
    /// child to exit, then kill it if it has not.
    pub fn stop(&mut self) -> Result<(), PluginError> {
        if self.exit_code()?.is_some() {
            return Ok(());
        }
        self.process.signal_group(Signal::INT).map_err(io_error("interrupting a child"))?;
        let code = self.process.wait(STOP_GRACE, None).map_err(io_error("waiting for a child"))?;
        if code.is_none() {
            tracing::warn!(
                pid = self.pid(),
                grace_ms = STOP_GRACE.as_millis() as u64,
                "child did not exit after SIGINT; killing it"
            );
            self.kill()?;
        }
        Ok(())
    }

    fn exit_code(&mut self) -> Result<Option<i32>, PluginError> {
        self.process.exit_code().map_err(io_error("waiting for a child"))
    }

    fn check_control(&mut self, control: &CallControl) -> Result<(), PluginError> {
        if let Some(error) = control.interruption() {
            if let Err(e) = self.stop() {
                tracing::error!(pid = self.pid(), error = %e, "could not stop child on interruption");
            }
            return Err(error);
        }
        Ok(())
    }
}

impl Drop for HostChild {
    fn drop(&mut self) {
        // The group may outlive the child (where containment is by group), so signal it too.
        if let Err(e) = self.kill() {
            tracing::error!(pid = self.pid(), error = %e, "could not kill child");
        }
        if let Err(e) = self.process.reap() {
            tracing::error!(pid = self.pid(), error = %e, "could not reap child");
        }
    }
}

fn io_error(doing: &'static str) -> impl Fn(std::io::Error) -> PluginError {
    move |e| PluginError::Io(format!("{doing}: {e}"))
}
