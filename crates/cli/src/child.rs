//! Running the wrapped command: spawn with stdio untouched, forward signals, wait with the
//! resource usage of the whole waited-for process tree.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

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
pub struct Forwarder {
    target: Arc<Mutex<Target>>,
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The child to forward to, and signals received before it existed.
#[derive(Default)]
struct Target {
    pid: Option<i32>,
    pending: Vec<i32>,
}

fn send(pid: i32, sig: i32) {
    // SAFETY: kill(2) with our child's pid and a valid signal number.
    unsafe { libc::kill(pid, sig) };
}

impl Forwarder {
    pub fn install() -> io::Result<Forwarder> {
        let target = Arc::new(Mutex::new(Target::default()));
        let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = signals.handle();
        let shared = Arc::clone(&target);
        let thread = std::thread::Builder::new()
            .name("wattprint-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    if matches!(origin.cause, Cause::Kernel) {
                        continue;
                    }
                    let mut t = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    match t.pid {
                        Some(pid) => send(pid, origin.signal),
                        None => t.pending.push(origin.signal),
                    }
                }
            })?;
        Ok(Forwarder {
            target,
            handle,
            thread: Some(thread),
        })
    }

    /// Record the child and deliver what arrived while it was starting.
    fn set_child(&self, pid: i32) {
        let mut t = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        t.pid = Some(pid);
        for sig in std::mem::take(&mut t.pending) {
            send(pid, sig);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why the command could not start.
#[derive(Debug)]
pub enum SpawnError {
    NotFound(String),
    NotExecutable(String, io::Error),
    Other(String, io::Error),
}

/// Start `argv` with inherited stdio. With `cgroup_procs` (an open `cgroup.procs`), the
/// command joins that cgroup between fork and exec, before it can start anything; when
/// joining fails the command is started outside it, and the error says why (nothing ran
/// twice: the failed attempt stopped before exec).
pub fn spawn(
    argv: &[String],
    envs: &[(&str, &std::ffi::OsStr)],
    fwd: &Forwarder,
    cgroup_procs: Option<RawFd>,
) -> Result<(i32, Option<io::Error>), SpawnError> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| SpawnError::NotFound(String::new()))?;
    let mut cmd = Command::new(prog);
    cmd.args(args).envs(envs.iter().copied());
    let mut join_error = None;
    if let Some(fd) = cgroup_procs {
        let mut joining = Command::new(prog);
        joining.args(args).envs(envs.iter().copied());
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
    let child = cmd.spawn().map_err(|e| classify(prog, e))?;
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
