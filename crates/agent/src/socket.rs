//! Privilege separation: the agent (which may read `energy_uj`) serves its cumulative
//! counters over a Unix socket whose group may connect, so unprivileged `wattprint run`
//! processes measure without `energy_uj` being world-readable.
//!
//! Protocol: one request per line, one JSON answer per line.
//! `info` → `{"domains": [DomainDesc...]}`;
//! `read` → `{"t_s": .., "joules": [..], "missing": [bool..]}` after a fresh sample
//! (cumulative joules since the agent started; `missing[k]`: domain k is in a gap now).
//! Anything else → `{"error": ".."}`. Lines are bounded; the client chooses no file.
//!
//! The socket file is created safely (see `docs/security.md`): a live socket at the path is
//! never taken over (the agent connects first and refuses if it answers), a stale one is
//! replaced only when this user owns it, the file is born `0600` (umask around `bind`) and
//! opened to the group only after `lchown`, and on exit only the file this agent created is
//! removed. Each client is closed after [`SocketConfig::idle_timeout_s`] without a request,
//! and no user holds more than [`SocketConfig::max_clients_per_uid`] connections.

use crate::{lock, AgentError, Shared};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wattprint_sensors::agent_socket::protocol;

/// Where and with which permissions to serve, and how clients share the service.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    pub path: PathBuf,
    /// Group owning the socket (members may connect), when set.
    pub gid: Option<u32>,
    /// Socket file mode; 0o660 by default (owner and group).
    pub mode: u32,
    /// A client that sends no request for this long is disconnected, s (default 60: a
    /// `wattprint run` client reconnects by itself when it next reads).
    pub idle_timeout_s: f64,
    /// Concurrent clients served at most (default 64); more are answered an error and closed.
    pub max_clients: usize,
    /// Concurrent clients of one user (by the peer's uid) at most (default 8), so one user
    /// cannot take every slot.
    pub max_clients_per_uid: usize,
}

impl SocketConfig {
    /// Defaults: mode 0o660, no group change, 60 s idle timeout, 64 clients, 8 per user.
    pub fn new(path: PathBuf) -> SocketConfig {
        SocketConfig {
            path,
            gid: None,
            mode: 0o660,
            idle_timeout_s: 60.0,
            max_clients: 64,
            max_clients_per_uid: 8,
        }
    }
}

/// The running socket service; stops and removes the socket file (only the one it created)
/// when dropped.
pub struct SocketServer {
    path: PathBuf,
    /// Device and inode of the socket file this agent bound.
    identity: (u64, u64),
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const MAX_LINE: u64 = 256;

/// Shortest time between two answers to one client (at most 200 a second): a client that
/// floods `read` (each one reads the sensors) is paced, and only that client waits. A
/// `wattprint run` client reads at window boundaries, far below this.
pub const MIN_ANSWER_GAP: Duration = Duration::from_millis(5);

/// `umask` is process-wide: agents bound concurrently in one process (tests) take turns.
static UMASK: Mutex<()> = Mutex::new(());

fn refused(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::AlreadyExists, msg)
}

/// Make room for the socket at `path`: nothing there, or a stale socket of ours (removed).
/// A live socket (it accepts a connection), a socket of another user, or any other file is
/// refused.
fn clear_stale(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(refused(
            "exists and is not a socket: choose another --socket path".into(),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => {
            return Err(refused(
                "another process is serving on this socket (it accepted a connection): stop \
                 that agent first, or choose another --socket path"
                    .into(),
            ))
        }
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
        Err(e) => {
            return Err(refused(format!(
                "cannot tell whether the socket there is live ({e}): remove it yourself if it \
                 is stale, or choose another --socket path"
            )))
        }
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refused(format!(
            "a stale socket owned by uid {} is there, not this agent's (uid {me}) to delete: \
             remove it as its owner, or choose another --socket path",
            meta.uid()
        )));
    }
    std::fs::remove_file(path)
}

/// Bind with the file born `0600` (umask `0177` around `bind`), so no other user can connect
/// before the group and mode are set.
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    let _turn = UMASK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: umask has no preconditions; the previous mask is restored below.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    bound
}

/// `chmod` that does not follow a symlink at `path`.
fn set_mode_nofollow(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            c.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOTSUP) || e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    Err(e)
}

fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}

impl SocketServer {
    pub fn start(cfg: &SocketConfig, shared: Shared) -> Result<SocketServer, AgentError> {
        let err = |source| AgentError::Socket {
            path: cfg.path.clone(),
            source,
        };
        clear_stale(&cfg.path).map_err(err)?;
        let listener = bind_private(&cfg.path).map_err(err)?;
        let id = identity(&cfg.path).map_err(err)?;
        let mut server = SocketServer {
            path: cfg.path.clone(),
            identity: id,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        if let Some(gid) = cfg.gid {
            // lchown: never follows a symlink put in the socket's place.
            std::os::unix::fs::lchown(&cfg.path, None, Some(gid)).map_err(err)?;
        }
        // Only after checking the path is still the socket we bound; the mode is then set
        // without following a symlink (`fchmodat` with `AT_SYMLINK_NOFOLLOW`, glibc >= 2.32),
        // or, where the C library cannot, with `chmod` right after the check.
        if identity(&cfg.path).ok() != Some(id) {
            return Err(err(refused(
                "the socket file was replaced while the agent set it up: keep its directory \
                 writable by the agent's user only (e.g. /run/wattprint, mode 0750)"
                    .into(),
            )));
        }
        set_mode_nofollow(&cfg.path, cfg.mode).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let st = Arc::clone(&server.stop);
        let limits = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("wattprint-socket".into())
            .spawn(move || accept_loop(listener, shared, st, limits))
            .map_err(err)?;
        server.thread = Some(thread);
        Ok(server)
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Remove the socket only if it is still the one this agent bound.
        if identity(&self.path).ok() == Some(self.identity) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The connecting process's uid (`SO_PEERCRED`), when the kernel tells.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// Connections per uid (`u32::MAX` when the kernel did not say).
type Clients = Arc<Mutex<HashMap<u32, usize>>>;

fn refuse(mut s: UnixStream, why: String) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = writeln!(s, "{}", refusal(why));
}

/// Admit a client of `uid` if the total and per-user caps allow; the refusal says which.
fn admit(clients: &Clients, uid: u32, cfg: &SocketConfig) -> Result<(), String> {
    let mut c = clients.lock().unwrap_or_else(|e| e.into_inner());
    let total: usize = c.values().sum();
    if total >= cfg.max_clients {
        return Err(format!(
            "the agent refused the connection: {total} clients already connected (at most {}); retry later",
            cfg.max_clients
        ));
    }
    let mine = c.entry(uid).or_insert(0);
    if *mine >= cfg.max_clients_per_uid {
        return Err(format!(
            "the agent refused the connection: uid {uid} already holds {mine} connections (at \
             most {} per user); close some and retry",
            cfg.max_clients_per_uid
        ));
    }
    *mine += 1;
    Ok(())
}

fn release(clients: &Clients, uid: u32) {
    let mut c = clients.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = c.get_mut(&uid) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            c.remove(&uid);
        }
    }
}

fn accept_loop(listener: UnixListener, shared: Shared, stop: Arc<AtomicBool>, cfg: SocketConfig) {
    let clients: Clients = Arc::default();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let uid = peer_uid(&stream).unwrap_or(u32::MAX);
                if let Err(why) = admit(&clients, uid, &cfg) {
                    tracing::warn!("unix socket: {why}");
                    refuse(stream, why);
                    continue;
                }
                let (sh, c, st) = (Arc::clone(&shared), Arc::clone(&clients), Arc::clone(&stop));
                let idle = Duration::from_secs_f64(cfg.idle_timeout_s);
                let spawned = std::thread::Builder::new()
                    .name("wattprint-socket-client".into())
                    .spawn(move || {
                        serve_client(stream, &sh, &st, idle);
                        release(&c, uid);
                    });
                if spawned.is_err() {
                    release(&clients, uid);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!("unix socket accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn serve_client(stream: UnixStream, shared: &Shared, stop: &AtomicBool, idle: Duration) {
    let _ = stream.set_nonblocking(false);
    let poll = idle
        .min(Duration::from_millis(500))
        .max(Duration::from_millis(1));
    let _ = stream.set_read_timeout(Some(poll));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    // Bytes, not a String: a line cut at `MAX_LINE` may split a UTF-8 character, and a
    // client's bad bytes get an error answer, not a hang-up.
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if last.elapsed() >= idle {
            return; // idle: the slot goes back to others; the client reconnects when it reads
        }
        // A partial line kept across timeouts still counts against `MAX_LINE`.
        let room = MAX_LINE.saturating_sub(line.len() as u64).max(1);
        match (&mut r).take(room).read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.last() != Some(&b'\n') && (line.len() as u64) < MAX_LINE => continue,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        }
        if line.last() != Some(&b'\n') {
            // Over `MAX_LINE`: skip to the end of this line, then answer it once.
            line.clear();
            too_long = true;
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            return; // the agent stopped while this request was in flight: answer nothing
        }
        let since = last.elapsed();
        if since < MIN_ANSWER_GAP {
            std::thread::sleep(MIN_ANSWER_GAP - since);
        }
        last = Instant::now();
        let answer = if std::mem::take(&mut too_long) {
            refusal(format!(
                "request longer than {MAX_LINE} bytes: send `info` or `read`"
            ))
        } else {
            answer(String::from_utf8_lossy(&line).trim(), shared)
        };
        line.clear();
        if writeln!(w, "{answer}").is_err() {
            return;
        }
    }
}

/// A refusal as the protocol writes it ([`protocol::Refusal`]).
fn refusal(error: String) -> serde_json::Value {
    serde_json::to_value(protocol::Refusal { error }).unwrap_or_default()
}

/// The answer to one request line, in the protocol's types
/// ([`wattprint_sensors::agent_socket::protocol`], which the client reads).
pub fn answer(req: &str, shared: &Shared) -> serde_json::Value {
    let answer = match req {
        protocol::INFO => serde_json::to_value(protocol::Info {
            domains: lock(shared).domains().to_vec(),
        }),
        protocol::READ => {
            let st = lock(shared);
            let snap = st.meter().sample_now();
            let gaps = st.meter().gaps();
            let missing: Vec<bool> = st
                .domains()
                .iter()
                .map(|d| {
                    gaps.iter()
                        .any(|g| g.domain == d.name && g.to_s >= snap.t_s)
                })
                .collect();
            serde_json::to_value(protocol::Reading {
                t_s: snap.t_s,
                joules: snap.cumulative.iter().map(|j| j.0).collect(),
                missing,
            })
        }
        other => {
            return refusal(format!(
                "unknown request {:?}: send `info` or `read`",
                other.chars().take(40).collect::<String>()
            ))
        }
    };
    answer.unwrap_or_else(|e| refusal(format!("the answer could not be encoded: {e}")))
}
