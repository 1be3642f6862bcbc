//! `wattprint agent` end to end: refusals with exit 2 before anything starts, and a real
//! agent on a fake RAPL tree that serves, then stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use wattprint_sensors::fake_tree::FakeRaplTree;

mod common;

fn refused(args: &[&str], expect: &str) {
    let d = tempfile::tempdir().unwrap();
    let o = common::wattprint(d.path())
        .arg("agent")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(expect), "{err}");
}

#[test]
fn bad_settings_exit_2_and_say_what_to_fix() {
    refused(&["--listen", "0.0.0.0:9464"], "--token-file");
    refused(&["--listen", "localhost"], "HOST:PORT");
    refused(&["--interval", "fast"], "--interval");
    refused(
        &["--interval", "1ms", "--listen", "127.0.0.1:0"],
        "--interval",
    );
    refused(&["--zone", "Atlantis"], "Atlantis");
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("agent.toml");
    std::fs::write(&cfg, "zone = \"FR\"\nlisten_on = \"x\"\n").unwrap();
    refused(&["--config", cfg.to_str().unwrap()], "agent.toml:2");
    refused(&["--token-file", "/nonexistent/token"], "--token-file");
}

#[test]
fn absurd_numbers_and_endless_files_are_refused_by_name() {
    refused(&["--interval", "99999999999999999999s"], "--interval");
    refused(&["--settle-lag", "1e300s"], "--settle-lag");
    refused(&["--idle-timeout", "0ms"], "--idle-timeout");
    refused(&["--body-timeout", "1e30"], "--body-timeout");
    refused(&["--max-connections", "0"], "--max-connections");
    refused(&["--max-connections", "100000"], "--max-connections");
    refused(&["--pue", "1e308"], "--pue");
    refused(&["--intensity", "1e308"], "--intensity");
    refused(&["--token-file", "/dev/zero"], "binary data");
    let d = tempfile::tempdir().unwrap();
    let sock = d.path().join("a.sock");
    // Socket mode: HTTP only with a token.
    refused(
        &[
            "--socket",
            sock.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        "--token-file",
    );
    refused(&["--listen", "none"], "--socket");
}

#[test]
fn the_agent_serves_a_fake_rapl_tree_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0", 1_000_000, 262_143_328_850, None)
        .unwrap();
    // A live package counter: it advances while the agent checks it at start (a package
    // that stands still is dead and passed over).
    let ticking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ticker = {
        let (root, on) = (d.path().to_path_buf(), std::sync::Arc::clone(&ticking));
        std::thread::spawn(move || {
            let t = FakeRaplTree::new(&root).unwrap();
            let mut uj = 1_000_000u64;
            while on.load(std::sync::atomic::Ordering::SeqCst) {
                uj += 10_000;
                t.set_energy_uj("0", uj).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .args([
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "50ms",
            "--zone",
            "FR",
        ])
        .env("WATTPRINT_SYSFS_ROOT", d.path())
        .env("WATTPRINT_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .env("WATTPRINT_AMDSMI_LIB", "/nonexistent/libamd_smi.so")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    // A failed assertion below must not leave the agent running (and the test hanging).
    struct KillOnPanic(u32);
    impl Drop for KillOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                // SAFETY: kill with the pid of our own child.
                unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
            }
        }
    }
    let _guard = KillOnPanic(child.id());
    let mut log = String::new();
    let addr = common::listening_addr(&mut err, &mut log);
    ticking.store(false, std::sync::atomic::Ordering::SeqCst);
    ticker.join().unwrap();
    let addr = addr.unwrap_or_else(|| panic!("no listening line in:\n{log}"));
    t.set_energy_uj("0", 6_000_000_000).unwrap();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"domains\":1"), "{body}");
    // SAFETY: kill with a valid pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{log}{rest}");
    assert!(rest.contains("stopped"), "{rest}");
}

/// A failed OTLP push reaches stderr (a `tracing` subscriber is installed by `agent`).
#[cfg(feature = "otlp")]
#[test]
fn a_failed_otlp_push_is_logged_on_stderr() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0", 1_000_000, 262_143_328_850, None)
        .unwrap();
    // A port with nothing listening: every push fails to connect.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .args(["agent", "--listen", "127.0.0.1:0", "--zone", "FR"])
        .arg("--otlp-endpoint")
        .arg(format!("http://127.0.0.1:{port}/v1/metrics"))
        .args(["--otlp-interval", "100ms"])
        .env("WATTPRINT_SYSFS_ROOT", d.path())
        .env("WATTPRINT_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .env("WATTPRINT_AMDSMI_LIB", "/nonexistent/libamd_smi.so")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Bounded: the agent is stopped after 20 s whatever happens.
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(20));
        // SAFETY: kill with a pid of our own child (a no-op error if it is gone).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut found = false;
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        log.push_str(&line);
        if line.contains("OTLP metrics push to") && line.contains("WARN") {
            found = true;
            break;
        }
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
    drop(watchdog);
    assert!(found, "no OTLP failure on stderr:\n{log}");
}

/// Issue 11 on the agent: a perf `energy-psys` that never moves (this project's own VMs) is
/// passed over at start, and the agent serves the utilisation model instead of a silent 0 J.
#[test]
fn the_agent_passes_over_a_dead_psys_counter_for_the_model() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("sys");
    let pmu = wattprint_sensors::fake_tree::FakePerfPmu::new(&sys, &[0], &["psys"]).unwrap();
    let mut c = common::wattprint(d.path());
    c.env("WATTPRINT_PERF_COUNTERS_DIR", pmu.counters_dir())
        .args(["agent", "--listen", "127.0.0.1:0", "--zone", "FR"])
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let addr = common::listening_addr(&mut err, &mut log);
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!("no listening line in:\n{log}");
    };
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    // SAFETY: kill with a valid pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    assert!(
        log.contains("rapl-perf not used") && log.contains("psys stuck"),
        "{log}"
    );
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    // The model's two domains (cpu-model, memory-model), not the dead counter.
    assert!(body.contains("\"domains\":2"), "{body}");
}

/// The inodes of the TCP sockets listening in this network namespace (`/proc/net/tcp`,
/// `tcp6`: state `0A` is LISTEN; the inode is the tenth column).
fn listening_tcp_inodes(pid: u32) -> Vec<u64> {
    let mut out = Vec::new();
    for f in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(3) == Some(&"0A") {
                if let Some(i) = cols.get(9).and_then(|c| c.parse().ok()) {
                    out.push(i);
                }
            }
        }
    }
    out
}

/// The socket inodes among the open descriptors of `pid`.
fn socket_inodes(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// TCP listeners held by `pid`.
fn tcp_listeners_of(pid: u32) -> usize {
    let listening = listening_tcp_inodes(pid);
    socket_inodes(pid)
        .iter()
        .filter(|i| listening.contains(i))
        .count()
}

/// Connects to the Unix socket at `path` as `uid`:`gid` with supplementary `groups`, in a
/// forked child (only system calls between fork and exit), asks `info` and reads the first
/// byte of the answer. Returns 0 when a JSON answer came, else the errno of the failed step
/// (`connect`: EACCES for a user the socket's mode refuses), or 200+ for a failed
/// privilege drop.
fn connect_as(path: &std::path::Path, uid: u32, gid: u32, groups: &[u32]) -> i32 {
    use std::os::unix::ffi::OsStrExt;
    // Everything the child needs is prepared before the fork.
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let groups: Vec<libc::gid_t> = groups.to_vec();
    let request = b"info\n";
    // SAFETY: the child calls only async-signal-safe functions (setgroups, setgid, setuid,
    // socket, connect, write, read, _exit) on data prepared above, and always _exits.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let errno = || *libc::__errno_location();
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                libc::_exit(201);
            }
            if libc::setgid(gid) != 0 {
                libc::_exit(202);
            }
            if libc::setuid(uid) != 0 || libc::geteuid() != uid {
                libc::_exit(203);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                libc::_exit(204);
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::connect(fd, std::ptr::addr_of!(addr).cast(), len) != 0 {
                libc::_exit(errno());
            }
            if libc::write(fd, request.as_ptr().cast(), request.len()) != request.len() as isize {
                libc::_exit(205);
            }
            let mut b = 0u8;
            if libc::read(fd, std::ptr::addr_of_mut!(b).cast(), 1) != 1 || b != b'{' {
                libc::_exit(206);
            }
            libc::_exit(0);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(libc::WIFEXITED(status), "client child died: {status}");
        libc::WEXITSTATUS(status)
    }
}

/// Issue 13's "done when": an unprivileged user outside the socket group reads no energy
/// figure from a socket-mode agent. Shown with a real other user (uid/gid 65534, `nobody`),
/// not only by the socket's mode bits; the same user given the socket's group is served,
/// so the refusal comes from the socket's permissions and nothing else on the path.
#[test]
fn another_user_outside_the_socket_group_is_refused_and_no_http_listener_exists() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let msg = "this test needs root to switch to another user (CI runs the tests as \
                   root); the socket-mode claim of docs/security.md is NOT checked here";
        if std::env::var_os("WATTPRINT_TESTS_WITHOUT_ROOT").is_some() {
            eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
            return;
        }
        panic!("{msg}; set WATTPRINT_TESTS_WITHOUT_ROOT=1 to run the rest without it");
    }
    const NOBODY: u32 = 65534;
    const GROUP: u32 = 4242; // the socket's group: neither root's nor nobody's
    let d = tempfile::tempdir().unwrap();
    // Every user may traverse the directory: only the socket's own mode may refuse.
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let sock = d.path().join("agent.sock");
    let mut child = common::wattprint(d.path())
        .args(["agent", "--zone", "FR", "--socket"])
        .arg(&sock)
        .args(["--socket-group", &GROUP.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut ready = false;
    for _ in 0..50 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        log.push_str(&line);
        if line.contains("serving counters on") {
            ready = true;
            break;
        }
    }
    let outcome = std::panic::catch_unwind(|| {
        assert!(ready, "the agent did not start:\n{log}");
        // The detector finds a listener where there is one (this test process's own).
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // (>= 1: another test of this binary may hold a listener of its own meanwhile.)
        assert!(tcp_listeners_of(std::process::id()) >= 1);
        drop(probe);
        assert_eq!(
            tcp_listeners_of(pid),
            0,
            "socket mode opened a TCP listener"
        );
        let refused = connect_as(&sock, NOBODY, NOBODY, &[]);
        assert_eq!(
            refused,
            libc::EACCES,
            "uid {NOBODY} outside group {GROUP}: expected EACCES, got {refused}"
        );
        assert_eq!(
            connect_as(&sock, NOBODY, NOBODY, &[GROUP]),
            0,
            "the same user in the socket's group must be served"
        );
    });
    // SAFETY: kill with the pid of our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_traces_endpoints_are_checked_from_the_flag_and_the_config_file() {
    refused(
        &["--otlp-traces-endpoint", "tempo:4318"],
        "--otlp-traces-endpoint tempo:4318: give an http:// or https:// URL",
    );
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("agent.toml");
    std::fs::write(
        &file,
        "otlp_traces_endpoint = \"grpc://tempo:4317\"\notlp_compression = \"gzip\"\n",
    )
    .unwrap();
    refused(
        &["--config", file.to_str().unwrap()],
        "--otlp-traces-endpoint grpc://tempo:4317",
    );
    std::fs::write(
        &file,
        "otlp_compression = \"zstd\"\notlp_endpoint = \"http://c:4318\"\n",
    )
    .unwrap();
    refused(
        &["--config", file.to_str().unwrap()],
        "--otlp-compression zstd: give gzip or none",
    );
}

#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_keys_in_the_config_file_of_a_build_without_otlp_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("agent.toml");
    std::fs::write(&file, "otlp_traces_endpoint = \"http://tempo:4318\"\n").unwrap();
    refused(&["--config", file.to_str().unwrap()], "--features otlp");
}

/// A request a backend received: its path and body.
#[cfg(feature = "otlp")]
type Received = (String, Vec<u8>);

/// An OTLP backend on 127.0.0.1 for the shutdown tests: keeps each request's path and body,
/// answers with `answer(path, requests so far)`; stops by itself when dropped.
#[cfg(feature = "otlp")]
struct Backend {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(feature = "otlp")]
impl Backend {
    fn start(answer: fn(&str, &[Received]) -> &'static [u8]) -> Backend {
        use std::sync::{atomic::AtomicBool, atomic::Ordering, Arc, Mutex};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                let seen = Arc::clone(&seen2);
                // One connection, kept alive: requests one after another until EOF.
                std::thread::spawn(move || {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                        .unwrap();
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    let mut w = s;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    len = v.trim().parse().unwrap();
                                }
                            }
                        }
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                        let mut all = seen.lock().unwrap();
                        let reply = answer(&path, &all);
                        all.push((path, body));
                        drop(all);
                        if w.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Backend { port, seen, stop }
    }

    fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

#[cfg(feature = "otlp")]
impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A `wattprint agent` on a fake RAPL tree whose package counter draws 1 W (it ticks while
/// the agent runs), exporting to `backend` with `args` added; its HTTP address and stderr.
#[cfg(feature = "otlp")]
struct Agent {
    child: std::process::Child,
    addr: String,
    err: BufReader<std::process::ChildStderr>,
    log: String,
    ticking: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _dir: tempfile::TempDir,
}

#[cfg(feature = "otlp")]
impl Agent {
    fn start(backend: &Backend, args: &[&str]) -> Agent {
        let d = tempfile::tempdir().unwrap();
        let t = FakeRaplTree::new(d.path()).unwrap();
        t.add_zone("0", "package-0", 1_000_000, 262_143_328_850, None)
            .unwrap();
        let ticking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        {
            let (root, on) = (d.path().to_path_buf(), std::sync::Arc::clone(&ticking));
            std::thread::spawn(move || {
                let t = FakeRaplTree::new(&root).unwrap();
                let mut uj = 1_000_000u64;
                while on.load(std::sync::atomic::Ordering::SeqCst) {
                    uj += 10_000;
                    let _ = t.set_energy_uj("0", uj);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            });
        }
        let url = format!("http://127.0.0.1:{}", backend.port);
        let mut child = Command::new(env!("CARGO_BIN_EXE_wattprint"))
            .args(["agent", "--listen", "127.0.0.1:0", "--interval", "50ms"])
            .args(["--zone", "FR", "--settle-lag", "1s"])
            .args(["--otlp-endpoint", &url, "--otlp-traces-endpoint", &url])
            .args(args)
            .env("WATTPRINT_SYSFS_ROOT", d.path())
            .env("WATTPRINT_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
            .env("WATTPRINT_AMDSMI_LIB", "/nonexistent/libamd_smi.so")
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut log = String::new();
        let addr = common::listening_addr(&mut err, &mut log);
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!("no listening line in:\n{log}");
        };
        Agent {
            child,
            addr,
            err,
            log,
            ticking,
            _dir: d,
        }
    }

    /// One HTTP/1.1 request; the status line and body.
    fn http(&self, method: &str, path: &str, body: &str) -> (String, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    }

    /// SIGTERM; the exit status, the time from the signal to the exit, and the whole log.
    fn terminate(mut self) -> (Option<i32>, std::time::Duration, String) {
        let t = std::time::Instant::now();
        // SAFETY: kill with the pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let took = t.elapsed();
        self.ticking
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let mut rest = String::new();
        let _ = self.err.read_to_string(&mut rest);
        (status.code(), took, format!("{}{rest}", self.log))
    }
}

#[cfg(feature = "otlp")]
impl Drop for Agent {
    fn drop(&mut self) {
        self.ticking
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts one agent task (a root and three children, trace 0x07..) that began at `t0_ns` and
/// ended 300 ms later, as OTLP/JSON; waits (20 s at most) until `GET /v1/traces/{id}` says
/// it is settled.
#[cfg(feature = "otlp")]
fn post_task_and_wait_settled(agent: &Agent, t0_ns: u64) {
    let span = |id: u8, parent: Option<u8>, a: u64, b: u64, op: &str| {
        serde_json::json!({
            "traceId": "07".repeat(16), "spanId": format!("{id:02x}").repeat(8),
            "parentSpanId": parent.map(|p| format!("{p:02x}").repeat(8)).unwrap_or_default(),
            "name": op, "kind": 3,
            "startTimeUnixNano": (t0_ns + a * 1_000_000).to_string(),
            "endTimeUnixNano": (t0_ns + b * 1_000_000).to_string(),
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": op}}],
        })
    };
    let body = serde_json::json!({ "resourceSpans": [{ "scopeSpans": [{ "spans": [
        span(1, None, 0, 300, "invoke_agent"),
        span(2, Some(1), 0, 100, "chat"),
        span(3, Some(1), 100, 150, "execute_tool"),
        span(4, Some(1), 150, 300, "chat"),
    ]}]}]});
    let (status, answer) = agent.http("POST", "/v1/traces", &body.to_string());
    assert!(status.contains(" 200 "), "{status}: {answer}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, doc) = agent.http("GET", &format!("/v1/traces/{}", "07".repeat(16)), "");
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        if doc["status"] == "settled" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never settled: {doc}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(feature = "otlp")]
fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The last chance at SIGTERM: the backend refuses spans (503, Retry-After 1 s) until it has
/// the metrics snapshot, which only the stop sends (the push interval is an hour), so every
/// span it accepts was sent after the stop; it gets the task's four spans, each once, with
/// their energy, and the final metrics, and the agent exits 0 within the bound.
#[cfg(feature = "otlp")]
#[test]
fn at_sigterm_the_settled_spans_and_the_final_metrics_are_sent() {
    let backend = Backend::start(|path, seen| {
        if path == "/v1/traces" && !seen.iter().any(|(p, _)| p == "/v1/metrics") {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        }
    });
    let agent = Agent::start(&backend, &["--otlp-interval", "1h"]);
    let t0 = unix_ns();
    std::thread::sleep(std::time::Duration::from_millis(350));
    post_task_and_wait_settled(&agent, t0);
    assert!(
        !backend.received().iter().any(|(p, _)| p == "/v1/metrics"),
        "a metrics push before the stop"
    );
    let (code, took, log) = agent.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        took < wattprint_agent::otlp::SHUTDOWN_FLUSH + std::time::Duration::from_secs(2),
        "{took:?}\n{log}"
    );
    assert!(!log.contains("not exported at shutdown"), "{log}");
    let got = backend.received();
    let metrics: Vec<serde_json::Value> = got
        .iter()
        .filter(|(p, _)| p == "/v1/metrics")
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(metrics.len(), 1, "one snapshot: the final one");
    let m = &metrics[0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    let host = m
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "hw.host.energy")
        .unwrap();
    assert!(
        host["sum"]["dataPoints"][0]["asDouble"].as_f64().unwrap() > 0.0,
        "{host}"
    );
    // The accepted span exports: those answered 200, after the metrics.
    let first_metrics = got.iter().position(|(p, _)| p == "/v1/metrics").unwrap();
    let mut spans: Vec<wattprint_agent::traces::TraceSpan> = got[first_metrics..]
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .flat_map(|(_, b)| wattprint_agent::traces::decode_protobuf(b).unwrap())
        .collect();
    spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    let ids: Vec<&str> = spans.iter().map(|s| &s.span_id[..2]).collect();
    assert_eq!(ids, ["01", "02", "03", "04"], "each span once");
    let energy = |s: &wattprint_agent::traces::TraceSpan| -> f64 {
        match s
            .attributes
            .iter()
            .find(|kv| kv.key == "wattprint.energy_j")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        {
            Some(wattprint_agent::traces::pb::Value::DoubleValue(j)) => *j,
            v => panic!("{}: {v:?}", s.span_id),
        }
    };
    let leaves: f64 = spans[1..].iter().map(energy).sum();
    assert!(leaves > 0.0);
    assert!((energy(&spans[0]) - leaves).abs() < 1e-9);
}

/// A backend that never accepts: the stop waits no longer than the bound, and says how many
/// spans it could not export (the task's four) and that the snapshot was not sent.
#[cfg(feature = "otlp")]
#[test]
fn at_sigterm_what_cannot_be_sent_within_the_bound_is_counted_and_logged() {
    let backend = Backend::start(|_, _| {
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
    });
    let agent = Agent::start(&backend, &["--otlp-interval", "1h"]);
    let t0 = unix_ns();
    std::thread::sleep(std::time::Duration::from_millis(350));
    post_task_and_wait_settled(&agent, t0);
    let (code, took, log) = agent.terminate();
    assert_eq!(code, Some(0), "{log}");
    let bound = wattprint_agent::otlp::SHUTDOWN_FLUSH;
    // It kept trying up to the bound (a retry every second), and not longer.
    assert!(
        took > bound - std::time::Duration::from_millis(1500)
            && took < bound + std::time::Duration::from_secs(2),
        "{took:?}\n{log}"
    );
    assert!(log.contains("4 spans not exported at shutdown"), "{log}");
    assert!(log.contains("1 snapshots not sent at shutdown"), "{log}");
    assert!(backend.received().iter().any(|(p, _)| p == "/v1/metrics"));
}
