//! Starting the command inside its cgroup with `clone3(CLONE_INTO_CGROUP)` (Linux 5.7+).
//!
//! Moving a process into a cgroup by writing to `cgroup.procs` takes the kernel's
//! `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace period: 11-16 ms of
//! added wall time was seen on one of this project's machines. A process created by `clone3`
//! with `CLONE_INTO_CGROUP` is born in the cgroup, so nothing migrates.
//!
//! std's `Command` cannot pass `clone3` arguments, so this is a small fork and exec of our own:
//! everything the child needs (program candidates along `PATH`, argv, envp) is built before
//! `clone3`; between `clone3` and `execve` the child only calls async-signal-safe functions
//! (`sigaction`, `sigprocmask`, `execve`, `write`, `_exit`) and allocates nothing. An exec
//! failure comes back through a close-on-exec pipe, and the caller then falls back to std's
//! spawn, which words it (the failed child ran nothing).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// `CLONE_INTO_CGROUP`, from the kernel's `include/uapi/linux/sched.h` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` as of Linux 5.7 (`CLONE_ARGS_SIZE_VER2`, 88 bytes), from
/// `include/uapi/linux/sched.h`. Every field is a `__aligned_u64`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Why the command was not started this way; the caller falls back to std's spawn.
#[derive(Debug)]
pub enum NotStarted {
    /// An argument or environment entry holds a NUL byte.
    Nul,
    /// `clone3` itself failed: an old kernel (`ENOSYS`, `EINVAL`), a directory that is not a
    /// cgroup v2 (`EBADF`), or no permission to it (`EACCES`, `EPERM`).
    Clone(io::Error),
    /// The child started but `execve` failed for every candidate (errno from the child).
    Exec(io::Error),
}

/// The paths `execvp` would try for `prog`: itself when it holds a `/`, else each `PATH`
/// entry (an empty entry is the current directory, as POSIX says; no `PATH` means
/// `/bin:/usr/bin`, glibc's default).
fn candidates(prog: &str, path: Option<&OsStr>) -> Result<Vec<CString>, NotStarted> {
    if prog.contains('/') {
        return Ok(vec![CString::new(prog).map_err(|_| NotStarted::Nul)?]);
    }
    let path = path.map_or_else(|| b"/bin:/usr/bin".to_vec(), |p| p.as_bytes().to_vec());
    path.split(|&b| b == b':')
        .map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(prog.as_bytes());
            CString::new(full).map_err(|_| NotStarted::Nul)
        })
        .collect()
}

/// wattprint's environment with `envs` set over it, as `KEY=VALUE` strings.
fn environment(envs: &[(&str, &OsStr)]) -> Result<Vec<CString>, NotStarted> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !envs.iter().any(|(n, _)| OsStr::new(n) == k))
        .collect();
    vars.extend(
        envs.iter()
            .map(|(k, v)| (OsString::from(k), v.to_os_string())),
    );
    vars.into_iter()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).map_err(|_| NotStarted::Nul)
        })
        .collect()
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotStarted::Nul => f.write_str("an argument or environment entry holds a NUL byte"),
            NotStarted::Clone(e) => write!(f, "clone3(CLONE_INTO_CGROUP) refused: {e}"),
            NotStarted::Exec(e) => write!(f, "exec failed in the cgroup's child: {e}"),
        }
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Start `argv` (with `envs` set) inside the cgroup v2 whose directory is open as `cgroup_dir`.
/// Returns the child's pid once it has exec'd.
///
/// # Errors
/// [`NotStarted`]; in each case nothing of the command ran.
pub fn spawn(
    argv: &[String],
    envs: &[(&str, &OsStr)],
    cgroup_dir: RawFd,
) -> Result<i32, NotStarted> {
    let prog = argv.first().ok_or(NotStarted::Nul)?;
    let path_override = envs.iter().find(|(k, _)| *k == "PATH").map(|(_, v)| *v);
    let path = path_override
        .map(OsStr::to_os_string)
        .or_else(|| std::env::var_os("PATH"));
    let programs = candidates(prog, path.as_deref())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| NotStarted::Nul))
        .collect::<Result<_, _>>()?;
    let env = environment(envs)?;
    let argv_ptrs = null_terminated(&args);
    let envp_ptrs = null_terminated(&env);

    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(NotStarted::Clone(io::Error::last_os_error()));
    }
    let [read_end, write_end] = pipe;

    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir as u64,
        ..CloneArgs::default()
    };
    // Every signal is blocked across clone3, so that none runs wattprint's handlers in the
    // child; the child unblocks them once their dispositions are the defaults.
    // SAFETY: sigset_t is plain data that sigfillset/sigemptyset initialise.
    let (all, mut previous) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        (all, std::mem::zeroed::<libc::sigset_t>())
    };
    // SAFETY: valid sigset pointers.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous) };
    // SAFETY: clone3 with a fully initialised clone_args of the size passed. Without
    // CLONE_VM the child gets a copy of this address space, as with fork.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: the child, between clone3 and execve: only async-signal-safe calls on
        // memory prepared before clone3.
        unsafe { exec_child(&programs, &argv_ptrs, &envp_ptrs, write_end) }
    }
    let clone_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
    // SAFETY: closing the pipe's write end, which this process owns.
    unsafe { libc::close(write_end) };
    if pid < 0 {
        // SAFETY: closing our own read end.
        unsafe { libc::close(read_end) };
        return Err(NotStarted::Clone(clone_error));
    }
    let pid = pid as i32;
    // The write end closes at a successful exec (close-on-exec): 0 bytes read. Otherwise the
    // child wrote its errno before exiting.
    let mut errno = [0u8; 4];
    let mut got = 0;
    while got < errno.len() {
        // SAFETY: reading into the unfilled tail of a local buffer.
        let n = unsafe {
            libc::read(
                read_end,
                errno[got..].as_mut_ptr().cast(),
                errno.len() - got,
            )
        };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    // SAFETY: closing our own read end.
    unsafe { libc::close(read_end) };
    if got == 0 {
        return Ok(pid);
    }
    let mut status = 0;
    // SAFETY: reaping the child that failed to exec, our own.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Err(NotStarted::Exec(io::Error::from_raw_os_error(
        i32::from_ne_bytes(errno),
    )))
}

/// In the child: default dispositions for the signals wattprint handles or ignores, an empty
/// mask (as std's `Command` leaves them), then `execve` each candidate in turn as `execvp`
/// does; on failure the errno goes to `report` and the child exits 127.
///
/// # Safety
/// Call only in the child of `clone3`/`fork`; the pointers must be null-terminated arrays
/// of valid C strings.
unsafe fn exec_child(
    programs: &[CString],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    // SAFETY (whole body): sigaction, sigprocmask, execve, write and _exit are
    // async-signal-safe; every pointer refers to memory built before clone3.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let mut errno = libc::ENOENT;
        let mut denied = false;
        for program in programs {
            libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            errno = *libc::__errno_location();
            match errno {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => break,
            }
        }
        if denied && errno != libc::ENOEXEC {
            errno = libc::EACCES;
        }
        let bytes = errno.to_ne_bytes();
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_execvp() {
        let c = |p: &str, path: Option<&str>| -> Vec<String> {
            candidates(p, path.map(OsStr::new))
                .unwrap()
                .into_iter()
                .map(|s| s.into_string().unwrap())
                .collect()
        };
        assert_eq!(c("./x", Some("/bin")), ["./x"]);
        assert_eq!(c("/usr/bin/env", None), ["/usr/bin/env"]);
        assert_eq!(c("sh", Some("/a::/b")), ["/a/sh", "./sh", "/b/sh"]);
        assert_eq!(c("sh", None), ["/bin/sh", "/usr/bin/sh"]);
        assert!(matches!(candidates("a\0b", None), Err(NotStarted::Nul)));
    }

    #[test]
    fn environment_sets_over_the_inherited_one() {
        let env = environment(&[("WATTPRINT_TEST_CLONE_INTO", OsStr::new("1"))]).unwrap();
        let set: Vec<_> = env
            .iter()
            .filter(|kv| kv.as_bytes().starts_with(b"WATTPRINT_TEST_CLONE_INTO="))
            .collect();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].as_bytes(), b"WATTPRINT_TEST_CLONE_INTO=1");
    }

    #[test]
    fn a_directory_that_is_no_cgroup_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let fd = std::fs::File::open(dir.path()).unwrap();
        let argv = vec!["touch".to_string(), marker.to_string_lossy().into_owned()];
        let e = spawn(&argv, &[], std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap_err();
        // EBADF from a kernel with CLONE_INTO_CGROUP, ENOSYS or EINVAL from an older one.
        match e {
            NotStarted::Clone(e) => assert!(
                [libc::EBADF, libc::ENOSYS, libc::EINVAL].contains(&e.raw_os_error().unwrap()),
                "{e}"
            ),
            other => panic!("expected a refused clone3, got {other:?}"),
        }
        assert!(!marker.exists(), "the command must not have run");
    }
}
