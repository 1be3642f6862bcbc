//! A sensor that reads a privileged `wattprint agent`'s counters over its Unix socket, so an
//! unprivileged process measures without access to `energy_uj` (privilege separation; the
//! protocol is in the agent crate's `socket` module and in docs/privileges.md).
//!
//! Each domain is exposed as a non-wrapping energy counter (the agent's cumulative joules);
//! an agent restart shows as a counter reset, which the meter records as a gap.

use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wattprint_core::DomainDesc;

/// Source label of this sensor.
pub const SOURCE: &str = "wattprint-agent";

/// Answers longer than this are refused, bytes.
const MAX_ANSWER: u64 = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(2);

/// Reads counters from a wattprint agent's Unix socket.
pub struct AgentSocketSensor {
    path: PathBuf,
    conn: Option<(UnixStream, BufReader<UnixStream>)>,
    info: SensorInfo,
}

fn unavailable(path: &Path, e: impl std::fmt::Display) -> SensorError {
    SensorError::Unavailable {
        reason: format!("agent socket {}: {e}", path.display()),
        fix: Some(
            "start `wattprint agent --socket PATH --socket-group GROUP` as a user that can read \
             the counters, and add this user to GROUP (see docs/privileges.md)"
                .into(),
        ),
    }
}

fn connect(path: &Path) -> std::io::Result<(UnixStream, BufReader<UnixStream>)> {
    let s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let r = BufReader::new(s.try_clone()?);
    Ok((s, r))
}

fn ask(
    conn: &mut (UnixStream, BufReader<UnixStream>),
    req: &str,
) -> Result<serde_json::Value, String> {
    conn.0
        .write_all(format!("{req}\n").as_bytes())
        .map_err(|e| format!("sending {req:?}: {e}"))?;
    let mut line = String::new();
    let n = (&mut conn.1)
        .take(MAX_ANSWER)
        .read_line(&mut line)
        .map_err(|e| format!("reading the answer to {req:?}: {e}"))?;
    if n == 0 {
        return Err("the agent closed the connection".into());
    }
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("answer to {req:?} is not JSON: {e}"))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("the agent answered: {e}"));
    }
    Ok(v)
}

impl AgentSocketSensor {
    /// Connect and ask the agent for its domains.
    pub fn connect(path: &Path) -> Result<Self, SensorError> {
        let mut conn = connect(path).map_err(|e| unavailable(path, e))?;
        let v = ask(&mut conn, "info").map_err(|e| unavailable(path, e))?;
        let domains: Vec<DomainDesc> =
            serde_json::from_value(v.get("domains").cloned().unwrap_or_default())
                .map_err(|e| unavailable(path, format!("domains in the answer to info: {e}")))?;
        Ok(AgentSocketSensor {
            path: path.to_path_buf(),
            conn: Some(conn),
            info: SensorInfo {
                source: SOURCE.into(),
                domains,
                cadence: ReadCadence::Boundaries { guard_s: None },
                setup: format!(
                    "membership of the agent socket's group ({})",
                    path.display()
                ),
            },
        })
    }

    fn read_once(&mut self) -> Result<serde_json::Value, String> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.path).map_err(|e| format!("reconnecting: {e}"))?);
        }
        let conn = self.conn.as_mut().ok_or("not connected")?;
        let r = ask(conn, "read");
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

impl Sensor for AgentSocketSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn read(&mut self, _t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        // One retry with a fresh connection (the agent may have restarted).
        let v = match self.read_once() {
            Ok(v) => v,
            Err(_) => self.read_once().map_err(SensorError::Read)?,
        };
        let joules = v
            .get("joules")
            .and_then(|j| j.as_array())
            .ok_or_else(|| SensorError::Read("answer to read has no joules".into()))?;
        let missing = v.get("missing").and_then(|m| m.as_array());
        for (k, slot) in out.iter_mut().enumerate() {
            let gap = missing
                .and_then(|m| m.get(k))
                .and_then(|b| b.as_bool())
                .unwrap_or(false);
            *slot = match joules.get(k).and_then(|j| j.as_f64()) {
                Some(j) if !gap => RawReading::EnergyCounter {
                    joules: j,
                    range_j: None,
                },
                _ => RawReading::Missing,
            };
        }
        Ok(())
    }
}
