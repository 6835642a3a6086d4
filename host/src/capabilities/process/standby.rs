//! Namespaces set up ahead of their programs. Creating a PID and mount
//! namespace and mounting its `/proc` is most of what a contained spawn
//! costs beyond a plain one; a thread of its own (`warden-standby`) keeps
//! one namespace set up and waiting ([`Standby`]), so a spawn only hands
//! its program to that namespace's PID 1, and the thread sets up the next
//! one while the program runs. Each namespace runs one program, as one set
//! up by the spawn itself would: nothing of one turn's namespace reaches
//! another's. A namespace waits at most [`MAX_AGE`]: where the host's
//! mounts do not propagate into it, it would otherwise show the next program
//! the file systems of the time it was set up, and keep them busy.
//!
//! The thread never exits: the parent-death signal of every PID 1 it
//! created is tied to it (so they all die with Warden, as before). Where a
//! standby cannot be set up, the failure is logged once and spawns set their
//! namespaces up themselves, which reports the same failure to the caller.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::launch::{BlockedSignals, Launch, Setup, Standby, Started};

/// The oldest a waiting namespace may get: where the host's mounts do not
/// propagate (a private root, as in many containers), a namespace sees the
/// file systems mounted when it was set up, and keeps them busy, until it is
/// replaced. The thread replaces one this old.
const MAX_AGE: Duration = Duration::from_secs(10);

/// Raised by the PID 1 of the standby handed out last once its program has
/// exec'd (see [`Launch::start_in`]). The thread waits for it before setting
/// the next namespace up, so that work takes no CPU from the program's
/// start; a spawn returns before that start, so telling the thread is not
/// enough. Only a hint about timing.
static PROGRAM_STARTED: AtomicU32 = AtomicU32::new(0);
/// The longest the thread waits for [`PROGRAM_STARTED`] (a start that fails never raises it).
const PROGRAM_START: Duration = Duration::from_millis(2);

/// Keeps one namespace set up for the next spawn: the slot, and the thread that fills it.
struct Keeper {
    slot: Mutex<Slot>,
    changed: Condvar,
    max_age: Duration,
}

/// The one standby namespace, and what the thread should keep ready.
struct Slot {
    /// The namespaces spawns ask for (set by the first contained spawn).
    setup: Option<Setup>,
    /// The namespace ready, and when it was set up.
    ready: Option<(Standby, Instant)>,
    thread_started: bool,
    /// A standby was handed out, and its program may not have started yet.
    handed_out: bool,
    /// A standby could not be set up: spawns do it themselves from now on.
    failed: bool,
}

static KEEPER: Keeper = Keeper::new(MAX_AGE);

/// Start `launch`'s program, in the standby namespace when one is ready
/// for its setup; else as [`Launch::start`] does.
pub fn start(launch: Launch) -> io::Result<Started> {
    let Some(standby) = KEEPER.take(launch.setup()) else { return launch.start() };
    let started = Box::new(launch).start_in(standby, &PROGRAM_STARTED);
    KEEPER.changed.notify_one();
    match started {
        Ok(started) => Ok(started),
        // That PID 1 is gone (it was killed while it waited): set the namespaces up here.
        Err(launch) => launch.start(),
    }
}

impl Keeper {
    const fn new(max_age: Duration) -> Self {
        let slot = Slot { setup: None, ready: None, thread_started: false, handed_out: false, failed: false };
        Self { slot: Mutex::new(slot), changed: Condvar::new(), max_age }
    }

    /// The ready standby for `setup`, if there is one and it is not too
    /// old. Whoever takes it tells the thread to set the next one up once
    /// it has handed its program over; the thread starts once that program has.
    fn take(&'static self, setup: Setup) -> Option<Standby> {
        if setup == Setup::ProcessGroup {
            return None;
        }
        let mut slot = self.lock();
        if slot.failed {
            return None;
        }
        if slot.setup != Some(setup) {
            slot.setup = Some(setup);
            slot.ready = None;
        }
        if !slot.thread_started {
            let spawned =
                std::thread::Builder::new().name("warden-standby".into()).spawn(move || self.keep_ready());
            match spawned {
                Ok(_) => slot.thread_started = true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the thread that sets namespaces up ahead of spawns");
                    slot.failed = true;
                }
            }
        }
        let taken = slot.ready.take().filter(|(_, made)| made.elapsed() < self.max_age);
        if taken.is_none() {
            self.changed.notify_one();
        } else {
            slot.handed_out = true;
            PROGRAM_STARTED.store(0, Ordering::Release);
        }
        taken.map(|(standby, _)| standby)
    }

    /// The standby thread: keep one namespace, younger than `max_age`, ready
    /// for the setup spawns ask for.
    fn keep_ready(&self) {
        // No signal handler runs on this thread, which never returns: the
        // PID 1s it clones share its memory and its thread-local errno.
        let _blocked = match BlockedSignals::all() {
            Ok(blocked) => blocked,
            Err(e) => self.give_up(&e),
        };
        loop {
            let (setup, handed_out) = {
                let mut slot = self.lock();
                loop {
                    if slot.ready.as_ref().is_some_and(|(_, made)| made.elapsed() >= self.max_age) {
                        slot.ready = None;
                    }
                    match (slot.setup, &slot.ready) {
                        (Some(setup), None) if !slot.failed => {
                            break (setup, std::mem::take(&mut slot.handed_out));
                        }
                        (_, Some((_, made))) => {
                            let left = self.max_age.saturating_sub(made.elapsed());
                            slot = self.changed.wait_timeout(slot, left).unwrap_or_else(|p| p.into_inner()).0;
                        }
                        _ => slot = self.changed.wait(slot).unwrap_or_else(|p| p.into_inner()),
                    }
                }
            };
            if handed_out {
                await_program_start();
            }
            match Launch::standby(setup) {
                Ok(standby) => {
                    let mut slot = self.lock();
                    if slot.setup == Some(setup) {
                        slot.ready = Some((standby, Instant::now()));
                    }
                }
                Err(e) => self.give_up(&e),
            }
        }
    }

    /// Spawns set their namespaces up themselves from now on. The thread
    /// lives on: PID 1s it created may still run programs.
    fn give_up(&self, error: &io::Error) -> ! {
        tracing::warn!(error = %error, "cannot set a namespace up ahead of its spawn; each spawn sets its own up");
        self.lock().failed = true;
        loop {
            std::thread::park();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Wait until [`PROGRAM_STARTED`] is raised, at most [`PROGRAM_START`].
fn await_program_start() {
    let until = Instant::now() + PROGRAM_START;
    while PROGRAM_STARTED.load(Ordering::Acquire) == 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let timeout = rustix::time::Timespec { tv_sec: 0, tv_nsec: left.as_nanos() as i64 };
        // Woken, timed out, interrupted, or raised meanwhile: look again.
        let _ = rustix::thread::futex::wait(
            &PROGRAM_STARTED,
            rustix::thread::futex::Flags::PRIVATE,
            0,
            Some(&timeout),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;
    use std::time::Duration;

    use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

    use super::super::contain::{Containment, containment};
    use super::super::pidfd::Process;
    use super::super::testing::read_to_end;
    use super::*;

    /// The namespaces this host allows, or `None` (with a message) where it allows none.
    fn namespace() -> Option<Setup> {
        match containment() {
            Containment::PidNamespace => Some(Setup::Namespace { user_namespace: false }),
            Containment::UserPidNamespace => Some(Setup::Namespace { user_namespace: true }),
            Containment::ProcessGroup => {
                eprintln!("skipping: this host allows no PID namespace");
                None
            }
        }
    }

    /// A launch of `sh -c script` in `cwd`, its stdout pipe, and the
    /// descriptors the launch borrows (its stdout's write end first), which
    /// must outlive its start.
    fn shell(setup: Setup, script: &str, cwd: &str) -> (Launch, OwnedFd, [OwnedFd; 2]) {
        program(setup, "/bin/sh", script, cwd)
    }

    /// As [`shell`], with `path` as the program (and `script` its argument).
    fn program(setup: Setup, path: &str, script: &str, cwd: &str) -> (Launch, OwnedFd, [OwnedFd; 2]) {
        let (stdout, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let null =
            rustix::fs::open("/dev/null", rustix::fs::OFlags::RDWR, rustix::fs::Mode::empty()).unwrap();
        let argv = ["sh", "-c", script];
        let stdio = [null.as_fd(), write.as_fd(), null.as_fd()];
        let env = [("PATH", "/usr/bin:/bin")];
        let launch = Launch::new(setup, Path::new(path), argv, env, Some(Path::new(cwd)), stdio).unwrap();
        (launch, stdout, [write, null])
    }

    /// The started program as a child is held: its exit code (or why it did not start), then reaped.
    fn finish(started: Started) -> Result<i32, String> {
        let pidfd = rustix::process::pidfd_open(started.pid, PidfdFlags::empty()).unwrap();
        let mut process =
            Process::new(started.pid, pidfd, started.stack, started.status, started.unconfirmed);
        let code = process.wait(Duration::from_secs(30), None).unwrap().expect("the program ends");
        let failure = process.start_failure().map(str::to_string);
        process.reap().unwrap();
        failure.map_or(Ok(code), Err)
    }

    /// The `started` flag of the tests that do not look at it (not the keeper's).
    static UNWATCHED: AtomicU32 = AtomicU32::new(0);

    fn is_reaped(pid: Pid) -> bool {
        !Path::new(&format!("/proc/{}", pid.as_raw_nonzero())).exists()
    }

    #[test]
    fn a_program_runs_in_a_namespace_set_up_ahead_of_it() {
        let Some(setup) = namespace() else { return };
        let standby = Launch::standby(setup).unwrap();
        let (launch, stdout, [write, _null]) = shell(setup, "echo $$; ls /proc/self/fd; exit 3", "/");
        let started =
            Box::new(launch).start_in(standby, &UNWATCHED).unwrap_or_else(|_| panic!("its PID 1 is alive"));
        drop(write);
        // PID 2 of its own namespace (PID 1 is Warden's init), with only its stdio.
        assert_eq!(String::from_utf8(read_to_end(&stdout)).unwrap(), "2\n0\n1\n2\n3\n");
        assert_eq!(finish(started), Ok(3));
    }

    #[test]
    fn a_program_cannot_reach_the_namespace_waiting_for_the_next_one() {
        let Some(setup) = namespace() else { return };
        let (ours, next) = (Launch::standby(setup).unwrap(), Launch::standby(setup).unwrap());
        let waiting = next.pid().as_raw_nonzero();
        let script = format!(
            "kill -0 {waiting} 2>/dev/null && echo signalled || echo unreachable; \
             test -e /proc/{waiting} && echo visible || echo hidden; kill -9 -1 2>/dev/null; echo done"
        );
        let (launch, stdout, [write, _null]) = shell(setup, &script, "/");
        let started =
            Box::new(launch).start_in(ours, &UNWATCHED).unwrap_or_else(|_| panic!("its PID 1 is alive"));
        drop(write);
        assert_eq!(String::from_utf8(read_to_end(&stdout)).unwrap(), "unreachable\nhidden\ndone\n");
        assert_eq!(finish(started), Ok(0));
        assert!(!is_reaped(next.pid()), "the waiting namespace survived `kill -9 -1` from the other one");
        drop(next);
    }

    #[test]
    fn a_program_that_cannot_start_in_a_namespace_set_up_ahead_says_why() {
        let Some(setup) = namespace() else { return };
        let standby = Launch::standby(setup).unwrap();
        // A file that is not a program: its exec fails.
        let (launch, stdout, [write, _null]) = program(setup, "/etc/passwd", "echo ran", "/");
        let started =
            Box::new(launch).start_in(standby, &UNWATCHED).unwrap_or_else(|_| panic!("its PID 1 is alive"));
        drop(write);
        assert_eq!(read_to_end(&stdout), b"", "nothing ran");
        let failure = finish(started).expect_err("the start failed");
        assert!(failure.contains("exec"), "{failure}");
    }

    #[test]
    fn pid_1_raises_started_once_its_program_has_started_and_only_then() {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        static NEVER_STARTED: AtomicU32 = AtomicU32::new(0);
        let Some(setup) = namespace() else { return };
        let (launch, stdout, [write, _null]) = shell(setup, "echo ran", "/");
        let standby = Launch::standby(setup).unwrap();
        let started =
            Box::new(launch).start_in(standby, &STARTED).unwrap_or_else(|_| panic!("its PID 1 is alive"));
        drop(write);
        assert_eq!(read_to_end(&stdout), b"ran\n");
        assert_eq!(finish(started), Ok(0));
        assert_eq!(STARTED.load(Ordering::Acquire), 1, "raised before PID 1 reported the exit code");

        let (launch, _stdout, [write, _null]) = program(setup, "/etc/passwd", "echo ran", "/");
        let standby = Launch::standby(setup).unwrap();
        let started = Box::new(launch)
            .start_in(standby, &NEVER_STARTED)
            .unwrap_or_else(|_| panic!("its PID 1 is alive"));
        drop(write);
        assert!(finish(started).is_err(), "the start failed");
        assert_eq!(NEVER_STARTED.load(Ordering::Acquire), 0, "a start that failed raises nothing");
    }

    /// Start `launch` in a standby namespace or by itself: its exit code, or
    /// why it did not start.
    fn run(launch: Launch, in_standby: bool) -> Result<i32, String> {
        let started = if in_standby {
            let standby = Launch::standby(launch.setup()).unwrap();
            Box::new(launch).start_in(standby, &UNWATCHED).unwrap_or_else(|_| panic!("its PID 1 is alive"))
        } else {
            match launch.start() {
                Ok(started) => started,
                Err(e) => return Err(e.to_string()),
            }
        };
        finish(started)
    }

    #[test]
    fn a_working_directory_replaced_after_it_was_checked_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Canonical, as an approved working directory is.
        let root = dir.path().canonicalize().unwrap();
        let work = root.join("work");
        let aside = root.join("aside");
        let mut ways: Vec<(Setup, bool)> = vec![(Setup::ProcessGroup, false)];
        if let Some(setup) = namespace() {
            ways.extend([(setup, false), (setup, true)]);
        }
        for (setup, in_standby) in ways {
            let swaps: [(&str, &dyn Fn()); 3] = [
                ("left alone", &|| {}),
                ("swapped for another directory", &|| {
                    std::fs::rename(&work, &aside).unwrap();
                    std::fs::create_dir(&work).unwrap();
                }),
                ("swapped for a link out of the root", &|| {
                    std::fs::rename(&work, &aside).unwrap();
                    std::os::unix::fs::symlink("/etc", &work).unwrap();
                }),
            ];
            for (what, swap) in swaps {
                std::fs::create_dir(&work).unwrap();
                let (launch, stdout, [write, _null]) = shell(setup, "pwd", work.to_str().unwrap());
                swap();
                let outcome = run(launch, in_standby);
                drop(write);
                let printed = String::from_utf8(read_to_end(&stdout)).unwrap();
                if what == "left alone" {
                    assert_eq!(outcome, Ok(0), "{setup:?}, standby {in_standby}");
                    assert_eq!(printed, format!("{}\n", work.display()));
                } else {
                    let why = outcome.expect_err(what);
                    assert!(why.contains("replaced after Warden checked it"), "{setup:?}, {what}: {why}");
                    assert_eq!(printed, "", "{setup:?}, {what}: nothing ran");
                }
                for path in [&work, &aside] {
                    std::fs::remove_file(path).or_else(|_| std::fs::remove_dir(path)).ok();
                }
            }
        }
    }

    #[test]
    fn a_standby_dropped_unused_ends_its_pid_1() {
        let Some(setup) = namespace() else { return };
        let standby = Launch::standby(setup).unwrap();
        let pid = standby.pid();
        assert!(!is_reaped(pid), "PID 1 waits for its program");
        drop(standby);
        assert!(is_reaped(pid), "dropping the standby ends and reaps its PID 1");
    }

    #[test]
    fn a_standby_killed_while_it_waits_is_given_up_and_the_program_started_anyway() {
        let Some(setup) = namespace() else { return };
        let standby = Launch::standby(setup).unwrap();
        let pid = standby.pid();
        rustix::process::kill_process(pid, Signal::KILL).unwrap();
        let exited = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        rustix::process::waitid(WaitId::Pid(pid), exited).unwrap();
        let (launch, stdout, [write, _null]) = shell(setup, "echo started", "/");
        let Err(launch) = Box::new(launch).start_in(standby, &UNWATCHED) else {
            panic!("a dead PID 1 cannot run the program")
        };
        assert!(is_reaped(pid), "the dead PID 1 was reaped");
        let started = launch.start().unwrap();
        drop(write);
        assert_eq!(read_to_end(&stdout), b"started\n");
        assert_eq!(finish(started), Ok(0));
    }

    #[test]
    fn a_namespace_waiting_longer_than_its_maximum_age_is_replaced() {
        let Some(setup) = namespace() else { return };
        let keeper: &'static Keeper = Box::leak(Box::new(Keeper::new(Duration::from_millis(200))));
        assert!(keeper.take(setup).is_none(), "nothing is ready before the thread has run");
        let ready = || keeper.lock().ready.as_ref().map(|(standby, _)| standby.pid());
        wait_until("a namespace set up", || ready().is_some());
        let first = ready().unwrap();
        wait_until("the namespace replaced", || ready().is_some_and(|pid| pid != first));
        assert!(is_reaped(first), "the namespace replaced was ended and reaped");
        // The thread keeps one young enough to hand out, however late this thread runs.
        wait_until("a namespace handed out", || keeper.take(setup).is_some());
    }

    /// Wait (up to 30 s) until `done`.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Unmounts (lazily) on drop.
    struct Mounted(std::path::PathBuf);

    impl Drop for Mounted {
        fn drop(&mut self) {
            rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH).ok();
        }
    }

    fn tmpfs_with(at: &Path, file: &str) -> Mounted {
        let flags = rustix::mount::MountFlags::empty();
        rustix::mount::mount("tmpfs", at, "tmpfs", flags, None).unwrap();
        std::fs::write(at.join(file), "").unwrap();
        Mounted(at.to_path_buf())
    }

    #[test]
    fn the_hosts_mounts_and_unmounts_after_the_setup_reach_the_program() {
        let Some(setup) = namespace() else { return };
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: mounting a file system needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (early, late) = (dir.path().join("early"), dir.path().join("late"));
        std::fs::create_dir(&early).unwrap();
        std::fs::create_dir(&late).unwrap();
        // A shared mount holding both, as / is on a systemd host.
        rustix::mount::mount_bind(dir.path(), dir.path()).unwrap();
        let _shared = Mounted(dir.path().to_path_buf());
        rustix::mount::mount_change(dir.path(), rustix::mount::MountPropagationFlags::SHARED).unwrap();
        let early_mount = tmpfs_with(&early, "early-file");
        let standby = Launch::standby(setup).unwrap();
        drop(early_mount);
        let _late_mount = tmpfs_with(&late, "late-file");
        let script = format!("ls {}; echo --; ls {}", early.display(), late.display());
        let (launch, stdout, [write, _null]) = shell(setup, &script, "/");
        let started =
            Box::new(launch).start_in(standby, &UNWATCHED).unwrap_or_else(|_| panic!("its PID 1 is alive"));
        drop(write);
        assert_eq!(
            String::from_utf8(read_to_end(&stdout)).unwrap(),
            "--\nlate-file\n",
            "the program sees the host's mounts as they are when it starts, not as they were when its namespace was set up"
        );
        assert_eq!(finish(started), Ok(0));
    }
}
