//! Containment of everything a child starts: the program, and every process
//! it creates, `setsid` and double-forked descendants included, end with it,
//! and with Warden if Warden is killed (even with SIGKILL).
//!
//! Which mechanism applies is probed once, at start-up, and logged; the
//! first that works on this host is used:
//!
//! 1. **`pid-namespace`** (needs `CAP_SYS_ADMIN`, e.g. Warden runs as root):
//!    the program runs in a new PID namespace. When the namespace's PID 1
//!    dies the kernel kills every process of the namespace, whatever its
//!    session or process group, so no descendant can escape. PID 1 gets
//!    `PR_SET_PDEATHSIG(SIGKILL)`, so Warden's death (that of the thread that
//!    cloned it, in fact: the standby thread, which lives as long as Warden,
//!    or a spawning thread, which outlives its call's children) kills it and
//!    with it the namespace. The child also gets a mount namespace (a slave
//!    of Warden's: nothing propagates back, the host's mounts and unmounts
//!    still reach it) whose only change is a `/proc` of its own PID
//!    namespace, so pids it reads there match those fork gives it (Codex's
//!    bubblewrap writes `/proc/<child>/uid_map`) and it no longer sees
//!    Warden's processes. Same user, same files. The namespaces are usually
//!    set up ahead of the spawn, one at a time, by a thread of their own
//!    (see [`standby`]); each runs one program.
//! 2. **`user-pid-namespace`** (unprivileged, where user namespaces are
//!    allowed): the same, inside a new user namespace that maps only
//!    Warden's effective uid and gid to themselves, so files keep their
//!    owners and the program runs with Warden's identity and no extra
//!    capability. What changes inside: other users' files appear owned by
//!    the overflow id (`nobody`), `setgroups` is denied, and set-uid programs
//!    do not gain privilege. Programs that build their own sandbox in a
//!    nested user namespace (Codex's bubblewrap) keep working.
//! 3. **`process-group`** (namespaces refused, e.g. by a container's seccomp
//!    policy or `kernel.apparmor_restrict_unprivileged_userns`): the program
//!    leads its own process group and gets `PR_SET_PDEATHSIG(SIGKILL)`; the
//!    group is killed on stop and drop. A descendant that calls `setsid`, or
//!    outlives a Warden killed with SIGKILL, escapes. Warden warns at start-up.
//!
//! `WARDEN_CONTAINMENT=user-pid-namespace|process-group` selects a weaker
//! mechanism than the probe would (for tests, or to work around a program
//! that cannot run in a namespace).
//!
//! Not used: a cgroup v2 with `cgroup.kill` kills a whole tree too, but
//! nothing kills it when Warden is SIGKILLed (the cgroup outlives its
//! creator), and unprivileged Warden rarely has a delegated cgroup;
//! `PR_SET_CHILD_SUBREAPER` plus a sweep of descendants has the same hole
//! and would make Warden reap every orphan.
//!
//! PID 1 of a namespace is special (a signal it has no handler for is
//! discarded; orphans are reparented to it; and some programs, Codex's
//! sandbox helper among them, take a parent pid of 1 to mean their parent
//! died). So the program is not PID 1 itself: PID 1 is Warden's own small
//! init (see [`launch`]), which starts the program, reaps orphans while it
//! waits, and exits with the program's status (128 + the signal if it was
//! killed). Having no handler, it ignores the SIGINT sent to the process
//! group, while the program, in the same group, gets it as usual. The pid
//! Warden reports and signals is PID 1's; killing it ends the namespace.
//! PID 1 shares Warden's memory, so Warden makes itself non-dumpable when it
//! uses a namespace: see [`launch`].
//!
//! [`launch`]: super::launch
//! [`standby`]: super::standby

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

use rustix::pipe::PipeFlags;
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions};

use super::launch::{InitStack, Launch, Setup, Unconfirmed, protect_memory};

/// How children are contained on this host (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containment {
    PidNamespace,
    UserPidNamespace,
    ProcessGroup,
}

impl Containment {
    pub fn name(self) -> &'static str {
        match self {
            Containment::PidNamespace => "pid-namespace",
            Containment::UserPidNamespace => "user-pid-namespace",
            Containment::ProcessGroup => "process-group",
        }
    }

    /// Whether the program runs as PID 1 of its own namespace.
    pub fn is_namespace(self) -> bool {
        self != Containment::ProcessGroup
    }
}

/// The mechanism in effect, probed (and logged) on first use.
pub fn containment() -> Containment {
    static CHOSEN: OnceLock<Containment> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let (chosen, mut refused) = choose();
        let chosen = match chosen {
            Containment::ProcessGroup => chosen,
            namespace => match protect_memory() {
                Ok(()) => namespace,
                Err(e) => {
                    refused.push(format!("{}: cannot make Warden non-dumpable: {e}", namespace.name()));
                    Containment::ProcessGroup
                }
            },
        };
        match chosen {
            Containment::ProcessGroup => tracing::warn!(
                containment = chosen.name(),
                refused = %refused.join("; "),
                "children are contained by process group only: a descendant that calls setsid, \
                 or outlives a Warden killed with SIGKILL, escapes; allow unprivileged user \
                 namespaces (or run Warden with CAP_SYS_ADMIN) for PID-namespace containment"
            ),
            _ => tracing::info!(containment = chosen.name(), refused = %refused.join("; "),
                "every process a child starts ends with it"),
        }
        chosen
    })
}

fn choose() -> (Containment, Vec<String>) {
    let floor = match std::env::var("WARDEN_CONTAINMENT").as_deref() {
        Ok("user-pid-namespace") => Containment::UserPidNamespace,
        Ok("process-group") => Containment::ProcessGroup,
        _ => Containment::PidNamespace,
    };
    let mut refused = Vec::new();
    for candidate in [Containment::PidNamespace, Containment::UserPidNamespace] {
        if candidate == Containment::PidNamespace && floor != Containment::PidNamespace
            || floor == Containment::ProcessGroup
        {
            continue;
        }
        match probe(candidate) {
            Ok(()) => return (candidate, refused),
            Err(e) => refused.push(format!("{}: {e}", candidate.name())),
        }
    }
    (Containment::ProcessGroup, refused)
}

/// A contained program: its pid (in Warden's namespace), a pidfd on it,
/// and Warden's ends of its pipes. It is Warden's unreaped child, so the
/// pid cannot be reused meanwhile.
pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The stack of the namespace's PID 1, to release once it is reaped.
    pub init_stack: Option<InitStack>,
    /// Where the namespace's PID 1 writes the program's exit code.
    pub status: Option<OwnedFd>,
    /// The launch of a program whose exec its PID 1 has not reported yet.
    pub unconfirmed: Option<Unconfirmed>,
}

/// What a child is started with, besides its program and arguments.
pub struct Start<'a> {
    /// The whole environment.
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    /// A pipe for stdin (Warden's end in [`Spawned::stdin`]); /dev/null otherwise.
    pub stdin: bool,
}

/// Spawn `program` with `args`, contained as [`containment`] says. The
/// process held is the program, or the shell that is PID 1 of its
/// namespace. Its process group is its own (the group id is its pid).
pub fn spawn(program: &Path, args: &[String], start: Start<'_>) -> io::Result<Spawned> {
    let mode = containment();
    let (stdin_read, stdin) = if start.stdin {
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
        (read, Some(write))
    } else {
        let null = rustix::fs::open(
            c"/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        (null, None)
    };
    let (stdout, stdout_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let (stderr, stderr_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let stdio = [stdin_read.as_fd(), stdout_write.as_fd(), stderr_write.as_fd()];
    let env = start.env.iter().map(|(name, value)| (name.as_bytes(), value.as_bytes()));
    let argv = std::iter::once(program.as_os_str().as_bytes()).chain(args.iter().map(|a| a.as_bytes()));
    let launch = Launch::new(mode.setup(), program, argv, env, Some(start.cwd), stdio)?;
    let started = super::standby::start(launch)?;
    let pid = started.pid;
    match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => {
            let (init_stack, status, unconfirmed) = (started.stack, started.status, started.unconfirmed);
            Ok(Spawned { pid, pidfd, stdin, stdout, stderr, init_stack, status, unconfirmed })
        }
        Err(e) => {
            rustix::process::kill_process(pid, Signal::KILL).ok();
            rustix::process::waitpid(Some(pid), WaitOptions::empty()).ok();
            if let Some(stack) = started.stack {
                stack.release();
            }
            if let Some(launch) = started.unconfirmed {
                launch.release();
            }
            Err(e.into())
        }
    }
}

impl Containment {
    fn setup(self) -> Setup {
        match self {
            Containment::PidNamespace => Setup::Namespace { user_namespace: false },
            Containment::UserPidNamespace => Setup::Namespace { user_namespace: true },
            Containment::ProcessGroup => Setup::ProcessGroup,
        }
    }
}

/// Set up `mode`'s namespaces in a child that exits at once, to see whether this host allows it.
fn probe(mode: Containment) -> io::Result<()> {
    let null = rustix::fs::open(
        c"/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let launch = Launch::probe(mode.setup(), [null.as_fd(), null.as_fd(), null.as_fd()])?;
    let started = launch.start()?;
    let status = rustix::process::waitpid(Some(started.pid), WaitOptions::empty());
    if let Some(stack) = started.stack {
        stack.release();
    }
    match status? {
        Some((_, status)) if status.exit_status() == Some(0) => Ok(()),
        _ => Err(io::Error::other("the probe did not exit cleanly")),
    }
}
