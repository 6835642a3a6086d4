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
//!    `PR_SET_PDEATHSIG(SIGKILL)`, so Warden's death (its spawning thread's,
//!    in fact: a child never outlives the call that started it) kills it and
//!    with it the namespace. The child also gets a mount namespace (private:
//!    nothing propagates back) whose only change is a `/proc` of its own PID
//!    namespace, so pids it reads there match those fork gives it (Codex's
//!    bubblewrap writes `/proc/<child>/uid_map`) and it no longer sees
//!    Warden's processes. Same user, same files.
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
//! died). So the program is not PID 1 itself: PID 1 is `/bin/sh`, running
//! the program as its one foreground command (`"$@"; exit $?`) and exiting
//! with its status. The shell reaps orphans while it waits, ignores the
//! SIGINT sent to the process group (PID 1), while the program, in the
//! same group, gets it as usual. The shell's `PWD` is removed from the
//! program's environment unless the grant passes one. The pid Warden
//! reports and signals is the shell's; killing it ends the namespace.
//!
//! How the shell becomes PID 1 without Warden's own `fork` entering a
//! namespace: the child `std::process::Command` forks (call it the starter)
//! runs [`enter`] before exec. It creates the user namespace if asked, then
//! `clone(CLONE_PARENT | CLONE_NEWPID | CLONE_VFORK)`: the new process is
//! Warden's child (not the starter's), PID 1 of a new namespace, and the
//! starter is suspended until it has exec'd. The starter then checks Warden
//! is still its parent (so the death signal was armed in time), sends the
//! new pid to Warden over a pipe and exits. Warden reaps the starter and
//! holds PID 1 by a pidfd.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use std::sync::OnceLock;

use rustix::process::{Pid, PidfdFlags, Signal, WaitIdOptions};

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
        let (chosen, refused) = choose();
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

/// A contained program: its pid (in Warden's namespace) and a pidfd on it.
/// It is Warden's unreaped child, so the pid cannot be reused meanwhile.
pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

const INIT_SHELL: &str = "/bin/sh";
/// The namespace's PID 1: runs the program (its arguments) in the
/// foreground and exits with its status.
const INIT: &str = r#""$@"; exit $?"#;
const INIT_WITHOUT_PWD: &str = r#"unset PWD; "$@"; exit $?"#;

/// Spawn `program` with `args`, contained as [`containment`] says;
/// `configure` sets the environment, working directory and pipes;
/// `passes_pwd` says whether that environment holds `PWD`. The
/// process held is the program, or the shell that is PID 1 of its
/// namespace. Its process group is its own (the group id is its pid).
pub fn spawn(
    program: &Path,
    args: &[String],
    passes_pwd: bool,
    configure: impl FnOnce(&mut Command),
) -> io::Result<Spawned> {
    let mode = containment();
    let warden = rustix::process::getpid();
    let mut command;
    if !mode.is_namespace() {
        command = Command::new(program);
        command.args(args);
        configure(&mut command);
        command.process_group(0);
        // SAFETY: only async-signal-safe system calls run between fork and exec.
        unsafe {
            command.pre_exec(move || {
                default_signal_dispositions();
                arm_death_signal(warden)
            })
        };
        let mut child = command.spawn()?;
        let pid = Pid::from_child(&child);
        // The std handle is not waited on again: the pidfd replaces it.
        return held(pid, &mut child);
    }
    // Exec errors would otherwise surface as the shell's exit status 127.
    rustix::fs::access(program, rustix::fs::Access::EXEC_OK)?;
    command = Command::new(INIT_SHELL);
    let init = if passes_pwd { INIT } else { INIT_WITHOUT_PWD };
    command.arg("-c").arg(init).arg("sh").arg(program).args(args);
    configure(&mut command);
    let (pid_in, pid_out) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let setup = Setup::new(mode, warden, pid_out.as_raw_fd());
    // SAFETY: `enter` makes only async-signal-safe system calls and touches no lock or allocator.
    unsafe { command.pre_exec(move || enter(&setup, false)) };
    let started = command.spawn();
    drop(pid_out);
    let program = read_pid(&pid_in);
    let mut starter = match started {
        Ok(starter) => starter,
        Err(e) => {
            if let Some(pid) = program {
                rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).ok();
            }
            return Err(e);
        }
    };
    starter.wait()?;
    let pid =
        program.ok_or_else(|| io::Error::other("the starter process exited without starting the program"))?;
    held(pid, &mut starter)
}

/// The program `pid` held by a pidfd, with the pipes `child` was spawned with.
fn held(pid: Pid, child: &mut Child) -> io::Result<Spawned> {
    match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => Ok(Spawned {
            pid,
            pidfd,
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        }),
        Err(e) => {
            rustix::process::kill_process(pid, Signal::KILL).ok();
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).ok();
            Err(e.into())
        }
    }
}

/// What the starter needs, prepared before fork (nothing is allocated after).
struct Setup {
    user_namespace: bool,
    warden: Pid,
    pid_out: RawFd,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl Setup {
    fn new(mode: Containment, warden: Pid, pid_out: RawFd) -> Self {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        Self {
            user_namespace: mode == Containment::UserPidNamespace,
            warden,
            pid_out,
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }
    }
}

/// Runs in the starter, between fork and exec. Returns (to exec the
/// program) only in the program's process; the starter itself `_exit`s.
/// In a probe, the program's process exits at once instead of returning.
fn enter(setup: &Setup, probe: bool) -> io::Result<()> {
    default_signal_dispositions();
    if setup.user_namespace {
        // SAFETY: the starter is single-threaded; no file-descriptor table is shared.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER)? };
        match write_file(c"/proc/self/setgroups", b"deny") {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            _ => {}
        }
        write_file(c"/proc/self/uid_map", &setup.uid_map)?;
        write_file(c"/proc/self/gid_map", &setup.gid_map)?;
    }
    let flags =
        libc::CLONE_PARENT | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: a plain clone without CLONE_VM: the new process gets a copy of
    // the address space (and stack), like fork; the other arguments are unused.
    let program =
        unsafe { libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if program < 0 {
        return Err(io::Error::last_os_error());
    }
    if program == 0 {
        // PID 1 of the new namespace, Warden's child. Its own /proc, so pids
        // read there are the namespace's, as the program gets them from fork.
        let mounted = mount_proc();
        if probe {
            let code = mounted.err().and_then(|e| e.raw_os_error()).unwrap_or(0);
            // SAFETY: `_exit` is async-signal-safe.
            unsafe { libc::_exit(code) };
        }
        mounted?;
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
        rustix::process::setpgid(None, None)?;
        return Ok(());
    }
    // The starter: by now (CLONE_VFORK) the program has exec'd or exited.
    let program = program as i32;
    if rustix::process::getppid() != Some(setup.warden) {
        // Warden died before the program's death signal was armed.
        // SAFETY: `kill` and `_exit` are async-signal-safe.
        unsafe {
            libc::kill(program, libc::SIGKILL);
            libc::_exit(1);
        }
    }
    let bytes = program.to_ne_bytes();
    // SAFETY: `write` and `_exit` are async-signal-safe; `pid_out` is open.
    unsafe {
        libc::write(setup.pid_out, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0);
    }
}

/// In a new mount namespace: stop mount events from propagating to Warden's
/// (private), then mount a procfs of the current PID namespace on /proc.
fn mount_proc() -> io::Result<()> {
    use rustix::mount::{MountFlags, MountPropagationFlags};
    rustix::mount::mount_change(c"/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)?;
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    rustix::mount::mount(c"proc", c"/proc", c"proc", flags, None)?;
    Ok(())
}

/// After fork: die with Warden, and make sure Warden did not die already.
fn arm_death_signal(warden: Pid) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    if rustix::process::getppid() != Some(warden) {
        return Err(io::Error::other("Warden exited while the child was starting"));
    }
    Ok(())
}

fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let written = rustix::io::write(&fd, bytes)?;
    if written != bytes.len() {
        return Err(io::Error::other("short write"));
    }
    Ok(())
}

/// A child starts with every signal at its default action. Signals ignored
/// in Warden (a service started in the background ignores SIGINT, and exec
/// keeps that) would otherwise stay ignored in the child, which could then
/// neither be interrupted nor trap the interruption to stop cleanly.
fn default_signal_dispositions() {
    for signal in 1..32 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: `signal` is async-signal-safe; a failure leaves that one signal as it was.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}

/// The program's pid the starter sent, if it sent one (EOF otherwise).
fn read_pid(pipe: &OwnedFd) -> Option<Pid> {
    let mut bytes = [0u8; 4];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::io::read(pipe, &mut bytes[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    Pid::from_raw(i32::from_ne_bytes(bytes))
}

/// Run the namespace set-up in a throw-away fork, to see whether this host allows it.
fn probe(mode: Containment) -> io::Result<()> {
    let (pid_in, pid_out) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let setup = Setup::new(mode, rustix::process::getpid(), pid_out.as_raw_fd());
    // SAFETY: the child makes only async-signal-safe system calls and exits.
    let starter = unsafe { libc::fork() };
    if starter < 0 {
        return Err(io::Error::last_os_error());
    }
    if starter == 0 {
        let code = match enter(&setup, true) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(libc::EINVAL),
        };
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(code) };
    }
    drop(pid_out);
    let starter = Pid::from_raw(starter).expect("fork returned a pid");
    let program = read_pid(&pid_in);
    let status = rustix::process::waitpid(Some(starter), rustix::process::WaitOptions::empty())?;
    let first = match program {
        Some(program) => {
            rustix::process::waitid(rustix::process::WaitId::Pid(program), WaitIdOptions::EXITED)?
                .and_then(|s| s.exit_status())
        }
        None => None,
    };
    match (status.and_then(|(_, s)| s.exit_status()), first) {
        (Some(0), Some(0)) => Ok(()),
        (Some(0), Some(errno)) => Err(io::Error::from_raw_os_error(errno)),
        (Some(0), None) => Err(io::Error::other("the namespace's first process did not start")),
        (Some(errno), _) => Err(io::Error::from_raw_os_error(errno)),
        (None, _) => Err(io::Error::other("the probe was killed")),
    }
}
