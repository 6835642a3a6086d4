//! The `process` capability: running an approved program as a child in its
//! own process group, with capped, line-oriented output. On cancellation or
//! timeout the group is interrupted (SIGINT, as Ctrl-C would, so an agent can
//! record the aborted turn) and killed if it has not exited after
//! [`STOP_GRACE`]; on drop it is killed outright.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::runtime::control::CallControl;
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

/// Longest line handed to a guest in one piece; longer lines arrive in chunks.
const MAX_LINE: usize = 1 << 20;
/// How often blocking waits re-check cancellation and the call deadline.
const POLL: Duration = Duration::from_millis(20);
/// How long an interrupted child may take to exit before its group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// What a child's output readers send to the child resource.
enum Output {
    Line { stream: Stream, text: Vec<u8>, truncated: bool },
    Closed,
}

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

/// A running child. Dropping it kills the whole process group and reaps it.
pub struct HostChild {
    child: Child,
    pid: u32,
    output: Receiver<Output>,
    open_streams: u8,
    exit: Option<i32>,
}

impl HostChild {
    /// Spawn an approved request; `stdin` of `None` is /dev/null.
    pub fn spawn(
        approved: ApprovedSpawn,
        stdin: Option<Vec<u8>>,
        output_cap: usize,
    ) -> Result<Self, PluginError> {
        let mut command = Command::new(&approved.executable);
        command
            .args(&approved.args)
            .env_clear()
            .envs(approved.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&approved.cwd)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: between fork and exec only async-signal-safe `signal` runs.
        unsafe { command.pre_exec(default_signal_dispositions) };
        let mut child = command.spawn().map_err(|e| {
            PluginError::Failed(format!("could not start {}: {e}", approved.executable.display()))
        })?;
        let pid = child.id();
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::thread::spawn(move || {
                if let Err(e) = pipe.write_all(&bytes) {
                    tracing::debug!(pid, error = %e, "child closed stdin before reading all input");
                }
            });
        }
        let (tx, rx) = channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        spawn_reader(stdout, Stream::Stdout, output_cap, tx.clone());
        spawn_reader(stderr, Stream::Stderr, output_cap, tx);
        tracing::info!(pid, program = %approved.executable.display(), args = ?approved.args,
            cwd = %approved.cwd.display(), "spawned child");
        Ok(Self { child, pid, output: rx, open_streams: 2, exit: None })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Next line from either stream, waiting at most `timeout`; cancellation
    /// and the call's deadline kill the group and end the wait with an error.
    pub fn read_line(&mut self, timeout: Duration, control: &CallControl) -> Result<ReadResult, PluginError> {
        let until = Instant::now() + timeout;
        loop {
            if self.open_streams == 0 {
                return Ok(ReadResult::Closed);
            }
            self.check_control(control)?;
            let now = Instant::now();
            if now >= until {
                return Ok(ReadResult::Pending);
            }
            match self.output.recv_timeout(POLL.min(until - now)) {
                Ok(Output::Line { stream, text, truncated }) => {
                    let text = String::from_utf8(text)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    return Ok(ReadResult::Line { stream, text, truncated });
                }
                Ok(Output::Closed) => self.open_streams -= 1,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.open_streams = 0,
            }
        }
    }

    /// Wait for exit at most `timeout`; `None` if still running.
    pub fn wait(&mut self, timeout: Duration, control: &CallControl) -> Result<Option<i32>, PluginError> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(code) = self.try_exit()? {
                return Ok(Some(code));
            }
            self.check_control(control)?;
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5).min(until - now));
        }
    }

    /// SIGKILL the whole process group.
    pub fn kill(&mut self) -> Result<(), PluginError> {
        if self.exit.is_some() {
            return Ok(());
        }
        self.signal(Signal::KILL)
    }

    /// SIGINT the process group, wait up to [`STOP_GRACE`] for the child to
    /// exit, then SIGKILL the group if it has not. Whatever of the group is
    /// left once the child exited is killed when the resource is dropped.
    pub fn stop(&mut self) -> Result<(), PluginError> {
        if self.exit.is_some() {
            return Ok(());
        }
        self.signal(Signal::INT)?;
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if self.try_exit()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::warn!(
            pid = self.pid,
            grace_ms = STOP_GRACE.as_millis() as u64,
            "child did not exit after SIGINT; killing its process group"
        );
        self.kill()
    }

    fn signal(&self, signal: Signal) -> Result<(), PluginError> {
        signal_group(self.pid, signal)
            .map_err(|e| PluginError::Io(format!("signalling process group {} ({signal:?}): {e}", self.pid)))
    }

    fn try_exit(&mut self) -> Result<Option<i32>, PluginError> {
        if self.exit.is_none() {
            let status = self
                .child
                .try_wait()
                .map_err(|e| PluginError::Io(format!("waiting for child {}: {e}", self.pid)))?;
            self.exit = status.map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)));
        }
        Ok(self.exit)
    }

    fn check_control(&mut self, control: &CallControl) -> Result<(), PluginError> {
        if let Some(error) = control.interruption() {
            if let Err(e) = self.stop() {
                tracing::error!(pid = self.pid, error = %e, "could not stop child on interruption");
            }
            return Err(error);
        }
        Ok(())
    }
}

impl Drop for HostChild {
    fn drop(&mut self) {
        // The group may outlive the leader (grandchildren), so always signal it.
        if let Err(e) = signal_group(self.pid, Signal::KILL)
            && e != rustix::io::Errno::SRCH
        {
            tracing::error!(pid = self.pid, error = %e, "could not kill child process group");
        }
        if let Err(e) = self.child.wait() {
            tracing::error!(pid = self.pid, error = %e, "could not reap child");
        }
    }
}

/// A child starts with every signal at its default action. Signals ignored
/// in Warden (a service started in the background ignores SIGINT, and exec
/// keeps that) would otherwise stay ignored in the child, which could then
/// neither be interrupted nor trap the interruption to stop cleanly.
fn default_signal_dispositions() -> std::io::Result<()> {
    for signal in 1..32 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: `signal` is async-signal-safe; a failure leaves that one signal as it was.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
    Ok(())
}

fn signal_group(pid: u32, signal: Signal) -> Result<(), rustix::io::Errno> {
    let pid = rustix::process::Pid::from_raw(pid as i32).ok_or(rustix::io::Errno::INVAL)?;
    rustix::process::kill_process_group(pid, signal)
}

/// Read lines from a pipe into the channel, at most `cap` bytes in total; the
/// rest is drained and dropped with one truncation notice.
fn spawn_reader(pipe: impl Read + Send + 'static, stream: Stream, cap: usize, tx: Sender<Output>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut sent = 0usize;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line);
            match read {
                Ok(0) => break,
                Ok(_) => {
                    let complete = line.last() == Some(&b'\n');
                    if complete {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if sent >= cap {
                        continue;
                    }
                    sent += line.len();
                    let over = sent > cap;
                    if over {
                        line.truncate(line.len() - (sent - cap));
                    }
                    let split = !complete && line.len() >= MAX_LINE;
                    let message = Output::Line { stream, text: line.clone(), truncated: split || over };
                    if tx.send(message).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(?stream, error = %e, "child output pipe failed");
                    break;
                }
            }
        }
        // A send error only means the child resource is gone; nobody is listening.
        tx.send(Output::Closed).ok();
    });
}

mod wit {
    //! The `process` interface: approve, spawn, and operate children held in the resource table.

    use std::time::Duration;

    use wasmtime::component::Resource;

    use super::{HostChild, ReadResult, Stream};
    use crate::runtime::bindings::agent::warden::plugin::process::{
        self, OutputLine, OutputStream, ReadResult as WitReadResult, SpawnRequest, StdinSource,
    };
    use crate::runtime::host_state::HostState;
    use crate::types::PluginError;

    impl process::Host for HostState {
        fn spawn(&mut self, request: SpawnRequest) -> Result<Resource<HostChild>, PluginError> {
            let shown = format!("{} {}", request.program, request.args.join(" "));
            self.timed(|state| {
                let Some(policy) = &state.plugin.process else {
                    return Err(state.refused(
                        "spawn",
                        &shown,
                        PluginError::Denied(format!(
                            "plugin `{}` may not run programs: no program is granted under [plugins.{}]",
                            state.plugin.name, state.plugin.role
                        )),
                    ));
                };
                let approved = policy
                    .approve(
                        &request.program,
                        &request.args,
                        &request.env,
                        request.cwd.as_deref(),
                        std::env::vars(),
                    )
                    .map_err(|e| state.refused("spawn", &shown, e.into()))?;
                if state.plugin.audit {
                    tracing::info!(plugin = %state.plugin.name, program = %approved.executable.display(),
                        args = ?approved.args, cwd = %approved.cwd.display(), "audit: spawn");
                }
                let stdin = match request.stdin {
                    StdinSource::Null => None,
                    StdinSource::Bytes(bytes) => Some(bytes),
                };
                let child = HostChild::spawn(approved, stdin, state.plugin.limits.output_cap)?;
                state.table.push(child).map_err(|e| PluginError::Io(format!("tracking the child: {e}")))
            })
        }
    }

    impl HostState {
        fn child<R>(
            &mut self,
            child: &Resource<HostChild>,
            op: impl FnOnce(&mut HostChild, &crate::runtime::control::CallControl) -> Result<R, PluginError>,
        ) -> Result<R, PluginError> {
            self.timed(|state| {
                let HostState { table, control, .. } = state;
                let child = table
                    .get_mut(child)
                    .map_err(|e| PluginError::Invalid(format!("unknown child handle: {e}")))?;
                op(child, control)
            })
        }
    }

    impl process::HostChild for HostState {
        fn pid(&mut self, child: Resource<HostChild>) -> u32 {
            self.table.get(&child).map_or(0, |c| c.pid())
        }

        fn read_line(
            &mut self,
            child: Resource<HostChild>,
            timeout_ms: u32,
        ) -> Result<WitReadResult, PluginError> {
            let timeout = Duration::from_millis(timeout_ms.into());
            let read = self.child(&child, |c, control| c.read_line(timeout, control))?;
            Ok(match read {
                ReadResult::Line { stream, text, truncated } => WitReadResult::Line(OutputLine {
                    stream: match stream {
                        Stream::Stdout => OutputStream::Stdout,
                        Stream::Stderr => OutputStream::Stderr,
                    },
                    text,
                    truncated,
                }),
                ReadResult::Pending => WitReadResult::Pending,
                ReadResult::Closed => WitReadResult::Closed,
            })
        }

        fn wait(&mut self, child: Resource<HostChild>, timeout_ms: u32) -> Result<Option<i32>, PluginError> {
            let timeout = Duration::from_millis(timeout_ms.into());
            self.child(&child, |c, control| c.wait(timeout, control))
        }

        fn kill(&mut self, child: Resource<HostChild>) -> Result<(), PluginError> {
            self.child(&child, |c, _| c.kill())
        }

        fn drop(&mut self, child: Resource<HostChild>) -> wasmtime::Result<()> {
            let child = self.table.delete(child)?;
            self.timed(|_| drop(child));
            Ok(())
        }
    }
}
