//! Privilege separation: the agent (which may read `energy_uj`) serves its cumulative
//! counters over a Unix socket whose group may connect, so unprivileged `wattprint run`
//! processes measure without `energy_uj` being world-readable.
//!
//! Protocol: one request per line, one JSON answer per line.
//! `info` → `{"domains": [DomainDesc...]}`;
//! `read` → `{"t_s": .., "joules": [..], "missing": [bool..]}` after a fresh sample
//! (cumulative joules since the agent started; `missing[k]`: domain k is in a gap now).
//! Anything else → `{"error": ".."}`. Lines are bounded; the client chooses no file.

use crate::{lock, AgentError, Shared};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where and with which permissions to serve.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    pub path: PathBuf,
    /// Group owning the socket (members may connect), when set.
    pub gid: Option<u32>,
    /// Socket file mode; 0o660 by default (owner and group).
    pub mode: u32,
}

/// The running socket service; stops and removes the socket file when dropped.
pub struct SocketServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Concurrent clients served at most (more wait in the accept queue).
const MAX_CLIENTS: usize = 64;
const MAX_LINE: u64 = 256;

impl SocketServer {
    pub fn start(cfg: &SocketConfig, shared: Shared) -> Result<SocketServer, AgentError> {
        let err = |source| AgentError::Socket {
            path: cfg.path.clone(),
            source,
        };
        // A stale socket from a previous run is replaced; any other file is left alone.
        if let Ok(meta) = std::fs::symlink_metadata(&cfg.path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                std::fs::remove_file(&cfg.path).map_err(err)?;
            } else {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a socket: choose another --socket path",
                )));
            }
        }
        let listener = UnixListener::bind(&cfg.path).map_err(err)?;
        if let Some(gid) = cfg.gid {
            std::os::unix::fs::chown(&cfg.path, None, Some(gid)).map_err(err)?;
        }
        std::fs::set_permissions(&cfg.path, std::fs::Permissions::from_mode(cfg.mode))
            .map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wattprint-socket".into())
            .spawn(move || accept_loop(listener, shared, st))
            .map_err(err)?;
        Ok(SocketServer {
            path: cfg.path.clone(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, shared: Shared, stop: Arc<AtomicBool>) {
    let clients = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if clients.load(Ordering::SeqCst) >= MAX_CLIENTS {
                    let mut s = stream;
                    let _ = writeln!(s, "{}", json!({"error": "too many clients, retry later"}));
                    continue;
                }
                clients.fetch_add(1, Ordering::SeqCst);
                let (sh, c, st) = (Arc::clone(&shared), Arc::clone(&clients), Arc::clone(&stop));
                let spawned = std::thread::Builder::new()
                    .name("wattprint-socket-client".into())
                    .spawn(move || {
                        serve_client(stream, &sh, &st);
                        c.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    clients.fetch_sub(1, Ordering::SeqCst);
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

fn serve_client(stream: UnixStream, shared: &Shared, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::SeqCst) {
        line.clear();
        match (&mut r).take(MAX_LINE).read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        }
        if stop.load(Ordering::SeqCst) {
            return; // the agent stopped while this request was in flight: answer nothing
        }
        let answer = answer(line.trim(), shared);
        if writeln!(w, "{answer}").is_err() {
            return;
        }
    }
}

/// The answer to one request line.
pub fn answer(req: &str, shared: &Shared) -> serde_json::Value {
    match req {
        "info" => json!({ "domains": lock(shared).domains() }),
        "read" => {
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
            let joules: Vec<f64> = snap.cumulative.iter().map(|j| j.0).collect();
            json!({ "t_s": snap.t_s, "joules": joules, "missing": missing })
        }
        other => json!({
            "error": format!("unknown request {:?}: send `info` or `read`", other.chars().take(40).collect::<String>())
        }),
    }
}
