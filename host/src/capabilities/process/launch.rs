//! Starting a process without copying Warden's address space.
//!
//! Warden's address space is huge (wasmtime reserves hundreds of gigabytes
//! for instance pools, in thousands of mappings), and `fork` copies its page
//! tables: that alone cost 6–8 ms per child, most of a turn. So no child is
//! forked. Every process is created by `clone(CLONE_VM)` and runs a small
//! function on a stack of its own, in Warden's memory, until it execs:
//!
//! - **Without a namespace** the program is started the way `posix_spawn`
//!   starts one: `clone(CLONE_VM | CLONE_VFORK)`; the calling thread is
//!   suspended until the child has exec'd or exited.
//! - **In a namespace** the same `clone` also creates the namespaces, and its
//!   child is the namespace's PID 1, [`init`]. It sets the namespace up,
//!   starts the program (PID 2) as above, closes its own stdio (the
//!   program's output then ends when the program's processes are gone, not
//!   when the namespace is torn down), reports to Warden over a pipe, and
//!   then only reaps: it waits for the program, writes its exit code on that
//!   pipe, and exits with it. Warden so learns the code without waiting for
//!   the namespace's teardown, which runs in PID 1's exit.
//!   PID 1 never execs, so it keeps sharing Warden's memory: it runs on a
//!   stack Warden keeps mapped until it has been reaped ([`InitStack`]),
//!   closes every descriptor it inherited but its stdio, and after its report
//!   makes only system calls that touch no memory but its own stack (no
//!   `errno`) and, once, the static word that tells the standby thread its
//!   program has started. Because a process sharing Warden's memory lives inside the
//!   namespace, Warden makes itself non-dumpable ([`protect_memory`]): the
//!   program, same user as Warden, can then neither ptrace PID 1 nor open
//!   its `/proc/1/mem`, unless it holds `CAP_SYS_PTRACE` in Warden's own user
//!   namespace (that is, Warden runs as root, and so does the program).
//!
//! Between clone and exec the children touch nothing but the [`Launch`]
//! prepared beforehand (no allocation, no lock, only system calls); their
//! signal handlers are reset before any signal is unblocked, and a failure is
//! reported through the `Launch` itself. The working directory is entered by
//! its path and then compared, by device and inode, with the directory the
//! path led to, without a symbolic link, when the launch was prepared.
//!
//! **A namespace can be set up ahead of its program** ([`Launch::standby`]):
//! its PID 1 does everything up to starting the program, keeps only its
//! report pipe and a socket, and waits on that socket. [`Launch::start_in`]
//! sends it the address of the program's `Launch` (in the memory they share,
//! on the heap, freed only once the start is reported or PID 1 reaped) and
//! the program's stdin, stdout and stderr (`SCM_RIGHTS`), and returns at
//! once: the spawning thread is not woken to hear that the program started
//! (it would only take the CPU the program starts on). PID 1 goes on exactly
//! as above; its report comes first on the status pipe, and a start that
//! failed is known when PID 1 exits without it (see [`Unconfirmed`]). Such
//! a PID 1 was cloned by the thread that set the namespace up (see
//! [`super::standby`]), whose thread-local `errno` it shares: after its
//! report it makes only calls that leave `errno` alone when they succeed,
//! and a failed one (which ends PID 1) may overwrite that thread's `errno`
//! once.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

use rustix::process::{Pid, WaitOptions};

/// Stack of a child between clone and exec, and of PID 1: only system calls.
const STACK: usize = 64 << 10;
const PAGE: usize = 4096;

/// What the child sets up before it execs, beyond file descriptors and directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Its own process group, no namespace.
    ProcessGroup,
    /// In a new PID namespace whose PID 1 is [`init`], with its own mount
    /// namespace and /proc; inside a new user namespace mapping only
    /// Warden's uid and gid when `user_namespace` holds.
    Namespace { user_namespace: bool },
}

/// What a namespace's PID 1 does once the namespaces are set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Start the program of this `Launch`.
    Program,
    /// Exit 0.
    Probe,
    /// Report, then wait on this socket for the program to start (see [`Standby`]).
    Standby(RawFd),
}

/// Everything the children need, prepared before clone.
pub struct Launch {
    setup: Setup,
    role: Role,
    path: CString,
    _argv: Vec<CString>,
    argv: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp: Vec<*const c_char>,
    cwd: Option<WorkingDirectory>,
    /// Descriptors that become the program's stdin, stdout and stderr.
    stdio: [RawFd; 3],
    /// A pidfd on Warden: readable once Warden has exited.
    warden: RawFd,
    /// What PID 1 writes in a new user namespace's maps (set when one is cloned).
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// PID 1's end of the pipe it reports on (Warden keeps the other).
    report: RawFd,
    /// Top of the stack the program's process uses until it execs (in a namespace).
    program_stack: *mut c_void,
    /// Set by a child when a step fails: the errno and the step.
    errno: AtomicI32,
    step: AtomicUsize,
    /// Raised to 1, and its futex woken, by a standby's PID 1 once it has
    /// started this program (see [`Launch::start_in`]); null otherwise.
    started: *const AtomicU32,
}

/// The directory the child enters: its path, and the device and inode it
/// led to, without a symbolic link, when the launch was prepared (the child
/// must reach that one). It is held open until the launch is dropped (after
/// the child's check), so that its inode number cannot pass to another.
struct WorkingDirectory {
    path: CString,
    identity: (u64, u64),
    _held: OwnedFd,
}

/// A started program: the process Warden holds (the program, or its PID 1)
/// and, for a PID 1, the stack it runs on and the pipe on which it writes
/// the program's exit code (a native-endian `i32`). A program handed to a
/// standby PID 1 may not have exec'd yet: its launch comes along
/// (`unconfirmed`), and PID 1 writes one byte on that pipe first once it has.
pub struct Started {
    pub pid: Pid,
    pub stack: Option<InitStack>,
    pub status: Option<OwnedFd>,
    pub unconfirmed: Option<Unconfirmed>,
}

/// The `Launch` of a program handed to a standby PID 1 ([`Launch::start_in`]),
/// whose start PID 1 has not reported yet. PID 1 and the program read it
/// until the program has exec'd, and PID 1 records in it why the start
/// failed if it did. It may be freed only once the start is reported or
/// PID 1 has been reaped ([`Unconfirmed::release`]); dropped otherwise, it
/// is leaked rather than freed under a process that may still read it.
pub struct Unconfirmed(Option<Box<Launch>>);

// SAFETY: the raw pointers of a `Launch` point into its own strings, which
// move with it; nothing else in it is tied to a thread.
unsafe impl Send for Unconfirmed {}

impl Unconfirmed {
    /// Why the program did not start: call once PID 1 has exited without reporting it.
    pub fn failure(&self) -> io::Error {
        let launch = self.0.as_ref().expect("held until released");
        launch
            .recorded()
            .unwrap_or_else(|| io::Error::other("the namespace's PID 1 exited before starting the program"))
    }

    /// Free the launch: PID 1 has reported the start, or has been reaped.
    pub fn release(mut self) {
        self.0.take();
    }
}

impl Drop for Unconfirmed {
    fn drop(&mut self) {
        if let Some(launch) = self.0.take() {
            tracing::error!("a program's launch was dropped before its start was known; leaking it");
            std::mem::forget(launch);
        }
    }
}

/// The steps of a start, named in errors.
const STEPS: &[&str] = &[
    "",
    "arming the parent-death signal",
    "Warden exited while the child was starting",
    "denying setgroups in the user namespace",
    "writing the user namespace's uid map",
    "writing the user namespace's gid map",
    "making the mount namespace receive-only (a slave of Warden's)",
    "mounting /proc",
    "starting a process group",
    "redirecting stdin, stdout and stderr",
    "closing Warden's other descriptors (close_range needs Linux 5.9)",
    "entering the working directory",
    "starting the program",
    "exec",
    "entering the working directory: it was replaced after Warden checked it (it is not the directory \
     approved)",
];
const ARMING: usize = 1;
const WARDEN_GONE: usize = 2;
const SETGROUPS: usize = 3;
const UID_MAP: usize = 4;
const GID_MAP: usize = 5;
const SLAVE: usize = 6;
const PROC: usize = 7;
const GROUP: usize = 8;
const STDIO: usize = 9;
const CLOSE: usize = 10;
const CWD: usize = 11;
const PROGRAM: usize = 12;
const EXEC: usize = 13;
const CWD_REPLACED: usize = 14;

/// The fixed descriptor of PID 1's report pipe, after its stdio.
const REPORT_FD: RawFd = 3;
/// The fixed descriptor of a standby PID 1's socket, after its report pipe.
const COMMAND_FD: RawFd = 4;

/// A namespace set up ahead of its program (see the module documentation):
/// its PID 1, Warden's unreaped child, waits on `command`. Dropped unused,
/// it closes the socket, and PID 1 exits and is reaped.
pub struct Standby(Option<Waiting>);

/// A standby's PID 1: its pid, its stack, Warden's end of its report pipe
/// and of its socket.
struct Waiting {
    pid: Pid,
    stack: InitStack,
    report: OwnedFd,
    command: OwnedFd,
}

impl Launch {
    /// `argv` includes the program's name (argv[0]); `env` is the whole environment.
    pub fn new(
        setup: Setup,
        path: &Path,
        argv: impl IntoIterator<Item = impl AsRef<[u8]>>,
        env: impl IntoIterator<Item = (impl AsRef<[u8]>, impl AsRef<[u8]>)>,
        cwd: Option<&Path>,
        stdio: [BorrowedFd<'_>; 3],
    ) -> io::Result<Self> {
        let argv = argv.into_iter().map(|arg| c_string(arg.as_ref())).collect::<io::Result<Vec<_>>>()?;
        let envp = env
            .into_iter()
            .map(|(name, value)| {
                let name = name.as_ref();
                if name.is_empty() || name.contains(&b'=') {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid environment variable name {:?}", String::from_utf8_lossy(name)),
                    ));
                }
                c_string(&[name, b"=", value.as_ref()].concat())
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            setup,
            role: Role::Program,
            path: c_string(path.as_os_str().as_bytes())?,
            argv: null_terminated(&argv),
            _argv: argv,
            envp: null_terminated(&envp),
            _envp: envp,
            cwd: cwd.map(WorkingDirectory::open).transpose()?,
            stdio: stdio.map(|fd| fd.as_raw_fd()),
            warden: warden_pidfd()?,
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            report: -1,
            program_stack: std::ptr::null_mut(),
            errno: AtomicI32::new(0),
            started: std::ptr::null(),
            step: AtomicUsize::new(0),
        })
    }

    /// A launch that sets up `setup` and exits 0 without starting anything.
    pub fn probe(setup: Setup, stdio: [BorrowedFd<'_>; 3]) -> io::Result<Self> {
        let mut launch = Self::new(setup, Path::new("/"), [b"probe"], None::<(&[u8], &[u8])>, None, stdio)?;
        launch.role = Role::Probe;
        Ok(launch)
    }

    /// Set up `setup`'s namespaces now, for a program [`Launch::start_in`]
    /// starts later. The calling thread must outlive the standby and any
    /// program started in it: PID 1's parent-death signal is tied to it.
    pub fn standby(setup: Setup) -> io::Result<Standby> {
        let Setup::Namespace { user_namespace } = setup else {
            return Err(io::Error::other("only a namespace can be set up ahead of its program"));
        };
        let null = rustix::fs::open(
            c"/dev/null",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let (command, theirs) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )?;
        let stdio = [null.as_fd(), null.as_fd(), null.as_fd()];
        let mut launch = Self::new(setup, Path::new("/"), [b"standby"], None::<(&[u8], &[u8])>, None, stdio)?;
        launch.role = Role::Standby(theirs.as_raw_fd());
        let _blocked = BlockedSignals::all()?;
        let (pid, stack, report) = launch.start_init(user_namespace)?;
        Ok(Standby(Some(Waiting { pid, stack, report, command })))
    }

    /// Hand the program to `standby`'s PID 1, and return without waiting
    /// for its exec: PID 1 writes one byte on the status pipe once the
    /// program has exec'd, and [`Unconfirmed::failure`] says why it did not
    /// if PID 1 exits first. Once the program has exec'd PID 1 also raises
    /// `started` to 1 and wakes its futex waiters (it stays as it was if the
    /// start fails), for work that should wait until the program is under
    /// way. Hands the launch back when that PID 1 is gone (killed while it
    /// waited; it has been reaped): start it another way.
    pub fn start_in(
        mut self: Box<Self>,
        mut standby: Standby,
        started: &'static AtomicU32,
    ) -> Result<Started, Box<Self>> {
        let Waiting { pid, stack, report, command } =
            standby.0.take().expect("a standby holds its PID 1 until used");
        self.program_stack = stack.top(0);
        self.started = started;
        // The launch is on the heap: its address holds until it is released.
        let address = (std::ptr::from_ref::<Self>(&*self) as usize).to_ne_bytes();
        // SAFETY: the caller's descriptors, open until this returns.
        let stdio = self.stdio.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&stdio));
        let sent = rustix::net::sendmsg(
            &command,
            &[io::IoSlice::new(&address)],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        );
        drop(command);
        if !matches!(sent, Ok(n) if n == address.len()) {
            rustix::process::waitpid(Some(pid), WaitOptions::empty()).ok();
            stack.release();
            return Err(self);
        }
        Ok(Started {
            pid,
            stack: Some(stack),
            status: Some(report),
            unconfirmed: Some(Unconfirmed(Some(self))),
        })
    }

    /// The namespaces (or process group) this launch sets up.
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// Start the program; returns once it has exec'd (or, for a probe, once
    /// PID 1 has set the namespaces up). The pid is in Warden's namespace
    /// and is Warden's unreaped child.
    pub fn start(mut self) -> io::Result<Started> {
        // Until the children are done with this thread's memory (its errno
        // among it), no signal handler runs here, and none runs in them
        // before they have reset their handlers.
        let _blocked = BlockedSignals::all()?;
        match self.setup {
            Setup::ProcessGroup => {
                let stack = Stack::take(1)?;
                let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
                // SAFETY: the child only reads `self`, which outlives it:
                // CLONE_VFORK suspends this thread until the child has exec'd or exited.
                let pid = unsafe { clone(program_child, stack.top(0), flags, &self) };
                // The child has exec'd or exited: its stack is free.
                stack.give_back();
                let pid = pid?;
                self.check(pid)?;
                Ok(Started { pid, stack: None, status: None, unconfirmed: None })
            }
            Setup::Namespace { user_namespace } => {
                let (pid, stack, report) = self.start_init(user_namespace)?;
                Ok(Started { pid, stack: Some(stack), status: Some(report), unconfirmed: None })
            }
        }
    }

    /// Clone the namespace's PID 1 and wait for its report: the program has
    /// started (or, for a probe or a standby, the namespace is set up).
    /// Returns PID 1, its stack and Warden's end of its report pipe.
    fn start_init(&mut self, user_namespace: bool) -> io::Result<(Pid, InitStack, OwnedFd)> {
        let (report, report_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        self.report = report_write.as_raw_fd();
        let stack = InitStack(Some(Stack::take(2)?));
        self.program_stack = stack.top(0);
        let mut flags = libc::CLONE_VM | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::SIGCHLD;
        if user_namespace {
            flags |= libc::CLONE_NEWUSER;
            let uid = rustix::process::geteuid().as_raw();
            let gid = rustix::process::getegid().as_raw();
            self.uid_map = format!("{uid} {uid} 1\n").into_bytes();
            self.gid_map = format!("{gid} {gid} 1\n").into_bytes();
        }
        // SAFETY: `init` reads `self` only until it has reported, and
        // this thread waits for that report (or for the pipe to close,
        // which happens when init exits) before `self` goes. Its stack
        // stays mapped until it is reaped (`InitStack`).
        let pid = match unsafe { clone(init, stack.top(1), flags, self) } {
            Ok(pid) => pid,
            Err(e) => {
                stack.release();
                return Err(e);
            }
        };
        drop(report_write);
        match self.await_report(pid, &report) {
            Ok(()) => Ok((pid, stack, report)),
            Err(e) => {
                stack.release();
                Err(e)
            }
        }
    }

    /// Wait for PID 1's one-byte report; if it exits instead (a failed step,
    /// or it was killed), reap it and return why.
    fn await_report(&self, pid: Pid, report: &OwnedFd) -> io::Result<()> {
        let mut byte = [0u8; 1];
        let reported = loop {
            match rustix::io::read(report, &mut byte) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other,
            }
        };
        if matches!(reported, Ok(1)) {
            return Ok(());
        }
        self.check(pid)?;
        rustix::process::waitpid(Some(pid), WaitOptions::empty()).ok();
        Err(io::Error::other("the namespace's PID 1 exited before starting the program"))
    }

    /// The error a child recorded, if any (the child, then, has exited: reap it).
    fn check(&self, pid: Pid) -> io::Result<()> {
        match self.recorded() {
            None => Ok(()),
            Some(e) => {
                rustix::process::waitpid(Some(pid), WaitOptions::empty()).ok();
                Err(e)
            }
        }
    }

    /// The error a child recorded, if any.
    fn recorded(&self) -> Option<io::Error> {
        let step = self.step.load(Ordering::Acquire);
        if step == 0 {
            return None;
        }
        let errno = io::Error::from_raw_os_error(self.errno.load(Ordering::Acquire));
        Some(if step == WARDEN_GONE || step == CWD_REPLACED {
            io::Error::other(STEPS[step])
        } else {
            io::Error::new(errno.kind(), format!("{}: {errno}", STEPS[step]))
        })
    }

    fn fail(&self, step: usize) -> ! {
        self.errno.store(errno(), Ordering::Release);
        self.step.store(step, Ordering::Release);
        // SAFETY: `_exit` ends the child without running anything of Warden's.
        unsafe { libc::_exit(127) }
    }
}

/// `clone` running `function(launch)` on `stack_top`; returns the child's pid.
///
/// # Safety
/// `function` must only make system calls and read `launch`, which must
/// outlive its use by the child.
unsafe fn clone(
    function: extern "C" fn(*mut c_void) -> c_int,
    stack_top: *mut c_void,
    flags: c_int,
    launch: &Launch,
) -> io::Result<Pid> {
    // SAFETY: as the caller promises.
    let pid =
        unsafe { libc::clone(function, stack_top, flags, std::ptr::from_ref(launch).cast_mut().cast()) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Pid::from_raw(pid).expect("clone returned a pid"))
}

impl Standby {
    /// Its PID 1, in Warden's namespace.
    #[cfg(test)]
    pub fn pid(&self) -> Pid {
        self.0.as_ref().expect("a standby holds its PID 1 until used").pid
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Some(Waiting { pid, stack, command, .. }) = self.0.take() {
            // Closing the socket ends a PID 1 that still waits on it.
            drop(command);
            rustix::process::waitpid(Some(pid), WaitOptions::empty()).ok();
            stack.release();
        }
    }
}

/// Without a namespace: the program's process, between clone and exec.
extern "C" fn program_child(launch: *mut c_void) -> c_int {
    // SAFETY: `start` passes a `Launch` that outlives the child's use of it.
    let launch = unsafe { &*launch.cast_const().cast::<Launch>() };
    // SAFETY: system calls on prepared, valid data; nothing allocates.
    unsafe {
        reset_signals();
        arm_death_signal(launch);
        redirect_stdio(launch);
        if libc::setpgid(0, 0) != 0 {
            launch.fail(GROUP);
        }
        enter_cwd(launch);
        exec(launch)
    }
}

/// In a namespace: the program's process (PID 2), started by [`init`]; it
/// inherits init's stdio, directory and process group.
extern "C" fn namespaced_program(launch: *mut c_void) -> c_int {
    // SAFETY: `init` passes the `Launch` it was given, alive until init reports.
    let launch = unsafe { &*launch.cast_const().cast::<Launch>() };
    // SAFETY: system calls on prepared, valid data; nothing allocates.
    unsafe { exec(launch) }
}

/// PID 1 of the namespace. See the module documentation.
extern "C" fn init(launch: *mut c_void) -> c_int {
    // SAFETY: `start` passes a `Launch` alive until this function reports.
    let launch = unsafe { &*launch.cast_const().cast::<Launch>() };
    // SAFETY: system calls on prepared, valid data; nothing allocates.
    let launch = unsafe {
        reset_signals();
        // Its command line is Warden's (it shares Warden's memory); its name tells it apart.
        libc::prctl(libc::PR_SET_NAME, c"warden-init".as_ptr());
        arm_death_signal(launch);
        // The descriptors it copied from Warden are closed first, before the
        // slow steps: until then each copy keeps what it refers to open (and
        // a lock on that held) even after Warden has closed its own.
        match launch.role {
            Role::Program => redirect_stdio(launch),
            Role::Standby(command) => keep_report_and_command(launch, command),
            Role::Probe => {}
        }
        if let Setup::Namespace { user_namespace: true } = launch.setup {
            map_user(launch);
        }
        // Mount events must not propagate back to Warden's namespace, while
        // the host's still reach this one: a namespace set up ahead of its
        // program must neither miss a file system mounted meanwhile nor keep
        // one the host has unmounted.
        let slave = (libc::MS_REC | libc::MS_SLAVE) as libc::c_ulong;
        if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), slave, std::ptr::null()) != 0 {
            launch.fail(SLAVE);
        }
        // Its own /proc: pids read there are the namespace's, as fork gives them.
        let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
        if libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null()) != 0 {
            launch.fail(PROC);
        }
        if libc::setpgid(0, 0) != 0 {
            launch.fail(GROUP);
        }
        match launch.role {
            Role::Probe => {
                report(launch.report);
                libc::_exit(0);
            }
            Role::Standby(_) => {
                report(REPORT_FD);
                // The standby's `Launch` is gone from here on: the program's comes next.
                let program = receive_program();
                libc::close(COMMAND_FD);
                program
            }
            Role::Program => launch,
        }
    };
    // SAFETY: as above, on the program's `Launch`, alive until this function reports.
    let program = unsafe {
        enter_cwd(launch);
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        let pid = libc::clone(
            namespaced_program,
            launch.program_stack,
            flags,
            std::ptr::from_ref(launch).cast_mut().cast(),
        );
        if pid < 0 {
            launch.fail(PROGRAM);
        }
        if launch.step.load(Ordering::Acquire) != 0 {
            // The program's process recorded why its exec failed, and exited.
            libc::_exit(127);
        }
        for fd in 0..3 {
            libc::close(fd);
        }
        let started = launch.started;
        report(REPORT_FD);
        // SAFETY: null, or a static's address (`start_in`), valid as long as this process.
        if let Some(started) = started.as_ref() {
            started.store(1, Ordering::Release);
            // A raw system call: errno stays untouched.
            let _ = rustix::thread::futex::wake(started, rustix::thread::futex::Flags::PRIVATE, 1);
        }
        pid
    };
    // From here on `launch` is gone: only this stack, and no errno.
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == program => {
                let code = status
                    .exit_status()
                    .or_else(|| status.terminating_signal().map(|signal| 128 + signal))
                    .unwrap_or(127);
                // SAFETY: REPORT_FD stays open in this process until it exits.
                let report = unsafe { BorrowedFd::borrow_raw(REPORT_FD) };
                // A write of 4 bytes to a pipe is whole or fails; Warden then waits for the exit.
                let _ = rustix::io::write(report, &code.to_ne_bytes());
                // SAFETY: `_exit` is the exit_group system call; it does not return.
                unsafe { libc::_exit(code) }
            }
            Err(rustix::io::Errno::CHILD) => unsafe { libc::_exit(127) },
            _ => {}
        }
    }
}
/// Every signal to its default action, then none blocked.
///
/// # Safety
/// Only in a child: it changes the dispositions of the calling process.
unsafe fn reset_signals() {
    // SAFETY: as the caller promises.
    unsafe {
        default_signal_dispositions();
        let empty: u64 = 0;
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &empty, std::ptr::null_mut::<u64>(), 8);
    }
}

/// Die with Warden's calling thread, and make sure Warden did not die already.
///
/// # Safety
/// Only in a child.
unsafe fn arm_death_signal(launch: &Launch) {
    // SAFETY: plain system calls.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            launch.fail(ARMING);
        }
        // Armed only now: had Warden died before, nothing would kill the child.
        let mut warden = libc::pollfd { fd: launch.warden, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut warden, 1, 0) != 0 {
            launch.fail(WARDEN_GONE);
        }
    }
}

/// Map Warden's uid and gid, and only those, into the new user namespace.
///
/// # Safety
/// Only in a child.
unsafe fn map_user(launch: &Launch) {
    // SAFETY: plain system calls on valid buffers.
    unsafe {
        if write_file(c"/proc/self/setgroups", b"deny") != 0 && errno() != libc::ENOENT {
            launch.fail(SETGROUPS);
        }
        if write_file(c"/proc/self/uid_map", &launch.uid_map) != 0 {
            launch.fail(UID_MAP);
        }
        if write_file(c"/proc/self/gid_map", &launch.gid_map) != 0 {
            launch.fail(GID_MAP);
        }
    }
}

/// Make the prepared descriptors the child's 0, 1 and 2, and close every
/// other one it shares with Warden. In PID 1 its report pipe becomes
/// [`REPORT_FD`] (it never execs, so close-on-exec would do nothing); a
/// program started without a namespace keeps only its stdio too, since
/// close-on-exec covers Warden's own descriptors but not those Warden
/// inherited without it from whatever started it.
///
/// # Safety
/// Only in a child.
unsafe fn redirect_stdio(launch: &Launch) {
    // SAFETY: plain system calls on descriptors open in the child.
    unsafe {
        // Copies above every descriptor involved, so no dup2 below overwrites a source.
        let above = launch.stdio.iter().copied().chain([launch.report, REPORT_FD]).max().unwrap_or(0) + 1;
        let mut moved = [0; 3];
        for (copy, &fd) in moved.iter_mut().zip(&launch.stdio) {
            *copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above);
            if *copy < 0 {
                launch.fail(STDIO);
            }
        }
        let report =
            if launch.report >= 0 { libc::fcntl(launch.report, libc::F_DUPFD_CLOEXEC, above) } else { 0 };
        if report < 0 {
            launch.fail(STDIO);
        }
        for (target, &fd) in moved.iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                launch.fail(STDIO);
            }
        }
        let first_closed = if launch.report >= 0 {
            if libc::dup3(report, REPORT_FD, libc::O_CLOEXEC) < 0 {
                launch.fail(STDIO);
            }
            REPORT_FD + 1
        } else {
            3
        };
        if libc::syscall(libc::SYS_close_range, first_closed, c_int::MAX, 0) != 0 {
            launch.fail(CLOSE);
        }
    }
}

/// In a standby PID 1: its report pipe becomes [`REPORT_FD`], its socket
/// [`COMMAND_FD`], and every other descriptor (stdio included) is closed,
/// so the program's stdio, when it comes, lands on 0, 1 and 2.
///
/// # Safety
/// Only in a child.
unsafe fn keep_report_and_command(launch: &Launch, command: RawFd) {
    // SAFETY: plain system calls on descriptors open in the child.
    unsafe {
        let above = launch.report.max(command).max(COMMAND_FD) + 1;
        let report = libc::fcntl(launch.report, libc::F_DUPFD_CLOEXEC, above);
        let socket = libc::fcntl(command, libc::F_DUPFD_CLOEXEC, above);
        if report < 0
            || socket < 0
            || libc::dup3(report, REPORT_FD, libc::O_CLOEXEC) < 0
            || libc::dup3(socket, COMMAND_FD, libc::O_CLOEXEC) < 0
        {
            launch.fail(STDIO);
        }
        for fd in 0..3 {
            libc::close(fd);
        }
        if libc::syscall(libc::SYS_close_range, COMMAND_FD + 1, c_int::MAX, 0) != 0 {
            launch.fail(CLOSE);
        }
    }
}

/// In a standby PID 1: wait for the address of the program's [`Launch`] and
/// the program's stdin, stdout and stderr, which land on 0, 1 and 2 (every
/// lower descriptor is free). Exits when the socket closes first (the
/// standby was dropped unused).
///
/// # Safety
/// Only in a standby PID 1, after [`keep_report_and_command`].
unsafe fn receive_program() -> &'static Launch {
    // SAFETY: recvmsg into buffers on this stack; the address is one Warden
    // sent, of a `Launch` it keeps alive until this process reports.
    unsafe {
        let mut address = [0u8; size_of::<usize>()];
        let mut part = libc::iovec { iov_base: address.as_mut_ptr().cast(), iov_len: address.len() };
        let mut control = [0u64; 8];
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut part;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = size_of_val(&control) as _;
        let received = libc::recvmsg(COMMAND_FD, &mut message, 0);
        if received == 0 {
            libc::_exit(0);
        }
        let header = libc::CMSG_FIRSTHDR(&message);
        let whole = received == address.len() as isize
            && message.msg_flags & libc::MSG_CTRUNC == 0
            && !header.is_null()
            && (*header).cmsg_level == libc::SOL_SOCKET
            && (*header).cmsg_type == libc::SCM_RIGHTS
            && (*header).cmsg_len == libc::CMSG_LEN(3 * size_of::<c_int>() as u32) as usize;
        if !whole {
            libc::_exit(127);
        }
        let program = &*(usize::from_ne_bytes(address) as *const Launch);
        let fds = libc::CMSG_DATA(header).cast::<c_int>();
        if (0..3).any(|i| fds.add(i).read_unaligned() != i as c_int) {
            program.fail(STDIO);
        }
        program
    }
}

/// # Safety
/// Only in a child.
unsafe fn enter_cwd(launch: &Launch) {
    if let Some(cwd) = &launch.cwd {
        // SAFETY: a valid C string, and a `stat` on this stack.
        unsafe {
            if libc::chdir(cwd.path.as_ptr()) != 0 {
                launch.fail(CWD);
            }
            // A part of the path swapped (for a link, another directory) since
            // the launch was prepared leads elsewhere: compare what it reached.
            let mut entered: libc::stat = std::mem::zeroed();
            if libc::stat(c".".as_ptr(), &mut entered) != 0 {
                launch.fail(CWD);
            }
            if (entered.st_dev, entered.st_ino) != cwd.identity {
                launch.fail(CWD_REPLACED);
            }
        }
    }
}

impl WorkingDirectory {
    /// Directory `path`, opened (`O_PATH`) without following a symbolic link
    /// anywhere on the way. The path is an approved one, canonical when it
    /// was checked: a link in it now was put there since.
    fn open(path: &Path) -> io::Result<Self> {
        let held = open_without_links(path).map_err(|e| {
            let why = if matches!(e, rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) {
                "a part of it is a symbolic link (or not a directory) now, where the approved path had none"
                    .to_string()
            } else {
                io::Error::from(e).to_string()
            };
            io::Error::new(
                io::Error::from(e).kind(),
                format!("entering the working directory {}: {why}", path.display()),
            )
        })?;
        let stat = rustix::fs::fstat(&held)?;
        let path = c_string(path.as_os_str().as_bytes())?;
        Ok(Self { path, identity: (stat.st_dev, stat.st_ino), _held: held })
    }
}

/// How a working directory is opened: a handle for its identity only.
const DIRECTORY_HANDLE: rustix::fs::OFlags =
    rustix::fs::OFlags::PATH.union(rustix::fs::OFlags::DIRECTORY).union(rustix::fs::OFlags::CLOEXEC);

/// `openat2(RESOLVE_NO_SYMLINKS)`, or where the kernel or a seccomp policy
/// refuses that call, a walk from `/` one component at a time, none followed.
fn open_without_links(path: &Path) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::{Mode, ResolveFlags};
    let flags = DIRECTORY_HANDLE;
    match rustix::fs::openat2(rustix::fs::CWD, path, flags, Mode::empty(), ResolveFlags::NO_SYMLINKS) {
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => walk_without_links(path),
        opened => opened,
    }
}

/// Open directory `path` (absolute) from `/`, one component at a time, none followed if a link.
fn walk_without_links(path: &Path) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = DIRECTORY_HANDLE;
    let mut directory = rustix::fs::open("/", flags, Mode::empty())?;
    for part in path.components() {
        match part {
            std::path::Component::RootDir => {}
            std::path::Component::Normal(name) => {
                directory = rustix::fs::openat(&directory, name, flags | OFlags::NOFOLLOW, Mode::empty())?;
            }
            _ => return Err(rustix::io::Errno::INVAL),
        }
    }
    Ok(directory)
}

/// # Safety
/// Only in a child.
unsafe fn exec(launch: &Launch) -> ! {
    // SAFETY: null-terminated arrays of valid C strings, alive while `launch` is.
    unsafe { libc::execve(launch.path.as_ptr(), launch.argv.as_ptr(), launch.envp.as_ptr()) };
    launch.fail(EXEC)
}

/// PID 1 tells Warden the program has started (or, for a probe, that the namespace is set up).
///
/// # Safety
/// Only in PID 1.
unsafe fn report(fd: RawFd) {
    // SAFETY: one byte from a valid buffer to an open pipe.
    unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
}

/// Every signal back to its default action. Signals ignored in Warden (a
/// service started in the background ignores SIGINT, and exec keeps that)
/// would otherwise stay ignored in the child, which could then neither be
/// interrupted nor trap the interruption to stop cleanly; and a handler of
/// Warden's must never run in the child.
///
/// # Safety
/// Only in the child: it changes the dispositions of the calling process.
unsafe fn default_signal_dispositions() {
    // The kernel's `struct sigaction`, all zero: SIG_DFL, no flags, empty mask.
    let default = [0u64; 4];
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: a valid kernel sigaction; a failure leaves that one signal as it was.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8,
                )
            };
        }
    }
}

/// Write `bytes` to the file at `path` in one write; 0 or -1 (errno set).
///
/// # Safety
/// Raw system calls; safe in the child.
unsafe fn write_file(path: &CStr, bytes: &[u8]) -> c_int {
    // SAFETY: `path` is a valid C string, `bytes` a valid buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return -1;
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let saved = errno();
        libc::close(fd);
        if written != bytes.len() as isize {
            *libc::__errno_location() = if written < 0 { saved } else { libc::EIO };
            return -1;
        }
        0
    }
}

fn errno() -> c_int {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", String::from_utf8_lossy(bytes)),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect()
}

/// Make Warden non-dumpable, before any namespace's PID 1 (which shares
/// its memory) exists: no process without `CAP_SYS_PTRACE` in Warden's user
/// namespace can then ptrace Warden or PID 1, or open their `/proc/<pid>/mem`.
pub fn protect_memory() -> io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// A pidfd on Warden itself, opened once.
fn warden_pidfd() -> io::Result<RawFd> {
    static WARDEN: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = WARDEN.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = rustix::process::pidfd_open(rustix::process::getpid(), rustix::process::PidfdFlags::empty())?;
    Ok(WARDEN.get_or_init(|| fd).as_raw_fd())
}

/// Stacks for the children: `regions` stacks, each above a guard page, so
/// an overflow faults instead of writing into Warden's memory.
struct Stack {
    base: *mut c_void,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; a pointer to it is only
// handed to the children it is made for.
unsafe impl Send for Stack {}

/// Stacks given back, kept for the next child: unmapping in a multi-threaded
/// process interrupts every CPU running it to flush its TLB.
static SPARE_STACKS: std::sync::Mutex<Vec<Stack>> = std::sync::Mutex::new(Vec::new());
/// How many spare stacks are kept (each is 68 or 136 KiB of address space,
/// only the pages a child touched resident).
const MAX_SPARE_STACKS: usize = 16;

impl Stack {
    /// A stack of `regions` regions: a spare one if there is, else a new mapping.
    fn take(regions: usize) -> io::Result<Self> {
        let len = regions * (PAGE + STACK);
        let mut spare = SPARE_STACKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match spare.iter().position(|stack| stack.len == len) {
            Some(index) => Ok(spare.swap_remove(index)),
            None => {
                drop(spare);
                Self::new(regions)
            }
        }
    }

    /// Keep the stack for the next child (no child may still use it).
    fn give_back(self) {
        let mut spare = SPARE_STACKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if spare.len() < MAX_SPARE_STACKS {
            spare.push(self);
        }
    }

    fn new(regions: usize) -> io::Result<Self> {
        let len = regions * (PAGE + STACK);
        // SAFETY: a fresh private anonymous mapping, released in `drop`.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Self { base, len };
        for region in 0..regions {
            // SAFETY: the lowest page of a region of the mapping just made.
            let guard = unsafe { base.cast::<u8>().add(region * (PAGE + STACK)) };
            if unsafe { libc::mprotect(guard.cast(), PAGE, libc::PROT_NONE) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(stack)
    }

    /// The top of region `region` (counted from the lowest), where a downward stack starts.
    fn top(&self, region: usize) -> *mut c_void {
        // SAFETY: within the mapping, or one past its end for the last region.
        unsafe { self.base.cast::<u8>().add((region + 1) * (PAGE + STACK)).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used by any child.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// The stack a namespace's PID 1 runs on, in Warden's memory. It may be
/// unmapped only once PID 1 has been reaped: [`InitStack::release`] does
/// that; dropping it otherwise leaks the mapping rather than let PID 1 write
/// into memory Warden reuses.
pub struct InitStack(Option<Stack>);

impl InitStack {
    fn top(&self, region: usize) -> *mut c_void {
        self.0.as_ref().expect("the stack is mapped until released").top(region)
    }

    /// Free the stack for another child; PID 1 must have been reaped.
    pub fn release(mut self) {
        if let Some(stack) = self.0.take() {
            stack.give_back();
        }
    }
}

impl Drop for InitStack {
    fn drop(&mut self) {
        if let Some(stack) = self.0.take() {
            tracing::error!("a namespace's PID 1 was not reaped; leaking its stack");
            std::mem::forget(stack);
        }
    }
}

/// Every signal blocked in the calling thread until dropped.
pub struct BlockedSignals {
    previous: libc::sigset_t,
}

impl BlockedSignals {
    pub fn all() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data, filled by sigfillset / pthread_sigmask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let code = libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
            if code != 0 {
                return Err(io::Error::from_raw_os_error(code));
            }
            Ok(Self { previous })
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `all`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_working_directory_is_reached_without_links_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
        let identity = |fd: &OwnedFd| {
            let stat = rustix::fs::fstat(fd).unwrap();
            (stat.st_dev, stat.st_ino)
        };
        let walked = walk_without_links(&root.join("a/b")).unwrap();
        assert_eq!(identity(&walked), identity(&open_without_links(&root.join("a/b")).unwrap()));
        let null =
            rustix::fs::open("/dev/null", rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty()).unwrap();
        let stdio = [null.as_fd(), null.as_fd(), null.as_fd()];
        for through_a_link in [root.join("link/b"), root.join("link")] {
            assert!(walk_without_links(&through_a_link).is_err(), "{through_a_link:?}");
            assert!(open_without_links(&through_a_link).is_err(), "{through_a_link:?}");
            let args = [b"true"];
            let refused = Launch::new(
                Setup::ProcessGroup,
                Path::new("/bin/true"),
                args,
                [(b"A", b"b")],
                Some(&through_a_link),
                stdio,
            )
            .err()
            .expect("a launch whose working directory's path holds a link is refused");
            assert!(refused.to_string().contains("symbolic link"), "{refused}");
        }
    }
}
