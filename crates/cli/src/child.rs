//! Running the wrapped command: spawn with stdio untouched, forward signals, wait with the
//! resource usage of the whole waited-for process tree.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

mod clone_into;

/// How the child ended.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Exit status; 128+N when killed by signal N.
    pub exit_code: i32,
    /// User + system CPU time of the child and its waited-for descendants, s (µs resolution).
    pub tree_cpu_s: f64,
}

/// Forwards SIGINT, SIGTERM and SIGHUP sent to wattprint to the child.
///
/// A signal the kernel generated (Ctrl-C or a hang-up on the terminal) already reached the
/// child, which shares wattprint's process group: it is not sent twice. A signal another
/// process sent to wattprint (`kill`, a job scheduler) is forwarded. wattprint itself keeps
/// running until the child exits, so a report is always written.
///
/// The forwarding is done by the signal handler itself (`kill(2)` is async-signal-safe): no
/// thread and no self-pipe, which keeps them off `run`'s start-up. One forwarder per process.
///
/// A signal that arrives once the child has been reaped (nothing to forward it to) is kept,
/// and handed to the handler that was installed before the forwarder when the forwarder is
/// dropped (`bench`'s flag, which then ends the bench); under the default disposition (plain
/// `run`) it is not re-raised, so the report is still written.
pub struct Forwarder {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
/// `si_code` of a signal the kernel sent (a terminal's Ctrl-C or hang-up).
const SI_KERNEL: libc::c_int = 0x80;

/// The child's pid: 0 before it exists, -1 once it has been reaped (nothing to forward to;
/// never a pid the system may have reused).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// Signals received before the child existed, one bit per signal number.
static PENDING: AtomicU32 = AtomicU32::new(0);
/// Signals received after the child was reaped, one bit per signal number.
static LATE: AtomicU32 = AtomicU32::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn send(pid: i32, sig: i32) {
    // SAFETY: kill(2) with our child's pid and a valid signal number.
    unsafe { libc::kill(pid, sig) };
}

/// Deliver what arrived before the child existed; each pending signal exactly once, whichever
/// of the handler and the main thread takes it.
fn deliver_pending(pid: i32) {
    let pending = PENDING.swap(0, Ordering::SeqCst);
    for sig in FORWARDED {
        if pending & (1 << sig) != 0 {
            send(pid, sig);
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    if !info.is_null() && unsafe { (*info).si_code } == SI_KERNEL {
        return;
    }
    match CHILD.load(Ordering::SeqCst) {
        pid if pid > 0 => send(pid, sig),
        0 => {
            PENDING.fetch_or(1 << sig, Ordering::SeqCst);
            // The child may have been recorded meanwhile: then deliver it here.
            let pid = CHILD.load(Ordering::SeqCst);
            if pid > 0 {
                deliver_pending(pid);
            }
        }
        _ => {
            LATE.fetch_or(1 << sig, Ordering::SeqCst);
        }
    }
}

impl Forwarder {
    pub fn install() -> io::Result<Forwarder> {
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return Err(io::Error::other("signal forwarding is already installed"));
        }
        CHILD.store(0, Ordering::SeqCst);
        PENDING.store(0, Ordering::SeqCst);
        LATE.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for sig in FORWARDED {
            // SAFETY: a zeroed sigaction is valid; the handler only uses atomics and kill(2).
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &act, &mut old) != 0 {
                    let e = io::Error::last_os_error();
                    drop(Forwarder { previous });
                    return Err(e);
                }
                previous.push((sig, old));
            }
        }
        Ok(Forwarder { previous })
    }

    /// Record the child and deliver what arrived while it was starting.
    fn set_child(&self, pid: i32) {
        CHILD.store(pid, Ordering::SeqCst);
        deliver_pending(pid);
    }

    /// Send `sig` to the child while it runs (`--stop-over-budget`); nothing once it has been
    /// reaped (its pid may be reused) or before it exists. `false` when nothing was sent.
    pub fn signal_child(&self, sig: libc::c_int) -> bool {
        match CHILD.load(Ordering::SeqCst) {
            pid if pid > 0 => {
                send(pid, sig);
                true
            }
            _ => false,
        }
    }

    /// The child has been reaped: its pid may be reused, so nothing is forwarded any more.
    pub fn child_gone(&self) {
        CHILD.store(-1, Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.child_gone();
        for (sig, old) in &self.previous {
            // SAFETY: restores the disposition sigaction returned at install.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        // Signals that had no child to go to: the previous handler gets them now.
        let late = LATE.swap(0, Ordering::SeqCst);
        for (sig, old) in &self.previous {
            let handler = old.sa_sigaction;
            if late & (1 << sig) != 0 && handler != libc::SIG_DFL && handler != libc::SIG_IGN {
                // SAFETY: raise(3) with a valid signal number whose handler was just restored.
                unsafe { libc::raise(*sig) };
            }
        }
        INSTALLED.store(false, Ordering::SeqCst);
    }
}

/// Why the command could not start.
#[derive(Debug)]
pub enum SpawnError {
    NotFound(String),
    NotExecutable(String, io::Error),
    Other(String, io::Error),
}

/// The command's cgroup, open: its directory (for `clone3`'s `CLONE_INTO_CGROUP`) and its
/// `cgroup.procs` (for the write between fork and exec, where `clone3` is refused).
#[derive(Clone, Copy, Debug)]
pub struct CgroupFds {
    pub dir: RawFd,
    pub procs: RawFd,
}

/// Start `argv` with inherited stdio. With `cgroup` the command starts inside it: born there
/// by `clone3(CLONE_INTO_CGROUP)` (Linux 5.7+, no migration), or, where the kernel refuses
/// that, moved there between fork and exec by writing `0` to `cgroup.procs`; when both fail
/// the command is started outside it, and the error says why (nothing ran twice: a failed
/// attempt stopped before exec).
pub fn spawn(
    argv: &[String],
    envs: &[(&str, &std::ffi::OsStr)],
    fwd: &Forwarder,
    cgroup: Option<CgroupFds>,
) -> Result<(i32, Option<io::Error>), SpawnError> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| SpawnError::NotFound(String::new()))?;
    let command = || {
        let mut c = Command::new(prog);
        c.args(args).envs(envs.iter().copied());
        c
    };
    let mut join_error = None;
    if let Some(cg) = cgroup {
        // Any failure here (an old kernel, a refused cgroup, an exec error) falls through to
        // std's spawn below, which gives the exec error its usual words.
        match clone_into::spawn(argv, envs, cg.dir) {
            Ok(pid) => {
                fwd.set_child(pid);
                return Ok((pid, None));
            }
            Err(e) => tracing::debug!("{e}; joining through cgroup.procs instead"),
        }
        let fd = cg.procs;
        let mut joining = command();
        // SAFETY: the closure runs in the forked child before exec and only calls write(2)
        // and reads errno, both async-signal-safe; it allocates nothing.
        unsafe {
            joining.pre_exec(move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                    Err(io::Error::from_raw_os_error(JOIN_ERRNO_BASE + errno))
                }
            });
        }
        match joining.spawn() {
            Ok(child) => return Ok((started(child, fwd), None)),
            // The hook's own failure (std passes its error number to the parent as is):
            // start the command without the cgroup. Any other error is the command's.
            Err(e) if e.raw_os_error().is_some_and(|c| c >= JOIN_ERRNO_BASE) => {
                let errno = e.raw_os_error().unwrap_or(JOIN_ERRNO_BASE) - JOIN_ERRNO_BASE;
                join_error = Some(io::Error::from_raw_os_error(errno));
            }
            Err(e) => return Err(classify(prog, e)),
        }
    }
    let child = command().spawn().map_err(|e| classify(prog, e))?;
    Ok((started(child, fwd), join_error))
}

/// Added to the errno of a failed write to `cgroup.procs` in the pre-exec hook, so that the
/// parent tells it apart from exec's own errors (which are all below it).
const JOIN_ERRNO_BASE: i32 = 1 << 20;

fn started(child: std::process::Child, fwd: &Forwarder) -> i32 {
    let pid = child.id() as i32;
    fwd.set_child(pid);
    // The std handle is dropped without waiting: `wait` below reaps the child with wait4.
    drop(child);
    pid
}

fn classify(prog: &str, e: io::Error) -> SpawnError {
    match e.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(prog.to_string()),
        io::ErrorKind::PermissionDenied => SpawnError::NotExecutable(prog.to_string(), e),
        _ => SpawnError::Other(prog.to_string(), e),
    }
}

/// Wait for `pid` and return its exit status and the tree's CPU time.
pub fn wait(pid: i32) -> io::Result<Outcome> {
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let exit_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Ok(Outcome {
        exit_code,
        tree_cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// One test, so that the process-wide forwarder is installed once at a time.
    #[test]
    fn the_command_joins_its_cgroup_or_starts_outside_it_and_says_why() {
        let fwd = Forwarder::install().unwrap();
        assert!(Forwarder::install().is_err(), "one forwarder per process");
        let argv = vec!["true".to_string()];

        // Joined: the pre-exec hook wrote `0` (the joining process) to cgroup.procs.
        // A plain directory: clone3 refuses it (EBADF), and the write to cgroup.procs is next.
        let dir = tempfile::tempdir().unwrap();
        let dir_fd = std::fs::File::open(dir.path()).unwrap();
        let procs = std::fs::File::create(dir.path().join("cgroup.procs")).unwrap();
        let fds = |procs: &std::fs::File| {
            Some(CgroupFds {
                dir: dir_fd.as_raw_fd(),
                procs: procs.as_raw_fd(),
            })
        };
        let (pid, join_error) = spawn(&argv, &[], &fwd, fds(&procs)).unwrap();
        assert!(join_error.is_none());
        assert_eq!(wait(pid).unwrap().exit_code, 0);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cgroup.procs")).unwrap(),
            "0"
        );

        // Refused (here: a full device): the command still runs, once, outside the cgroup.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (pid, join_error) = spawn(&argv, &[], &fwd, fds(&full)).unwrap();
        let e = join_error.expect("the join failed");
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert_eq!(wait(pid).unwrap().exit_code, 0);

        // A missing command is the command's error, not the cgroup's.
        let missing = vec!["wattprint-no-such-command-xyz".to_string()];
        let e = spawn(&missing, &[], &fwd, fds(&procs)).unwrap_err();
        assert!(matches!(e, SpawnError::NotFound(_)), "{e:?}");
        fwd.child_gone();
        drop(fwd);

        // A signal after the child was reaped reaches the handler installed before the
        // forwarder (bench's flag) when the forwarder goes, not before.
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let id = signal_hook::flag::register(libc::SIGHUP, std::sync::Arc::clone(&flag)).unwrap();
        let fwd = Forwarder::install().unwrap();
        fwd.child_gone();
        // SAFETY: raise(3) runs the forwarder's handler on this thread before it returns.
        unsafe { libc::raise(libc::SIGHUP) };
        assert!(
            !flag.load(Ordering::SeqCst),
            "held while the forwarder is installed"
        );
        drop(fwd);
        assert!(
            flag.load(Ordering::SeqCst),
            "handed to the previous handler at drop"
        );
        signal_hook::low_level::unregister(id);
    }
}
