//! A sensor that reads a privileged `wattprint agent`'s counters over its Unix socket, so an
//! unprivileged process measures without access to `energy_uj` (privilege separation; the
//! protocol's messages are [`protocol`]'s types, served by the agent crate's `socket` module;
//! docs/privileges.md).
//!
//! Each domain is exposed as a non-wrapping energy counter (the agent's cumulative joules);
//! an agent restart shows as a counter reset, which the meter records as a gap.

use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wattprint_core::SensorSource;

/// Source label of this sensor.
pub const SOURCE: SensorSource = SensorSource::AgentSocket;

/// Answers longer than this are refused, bytes.
const MAX_ANSWER: u64 = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(2);

/// The socket protocol, one serde type per message, used by both sides: the agent serves
/// them, [`AgentSocketSensor`] reads them. One request per line ([`INFO`] or [`READ`]), one
/// JSON answer per line: [`Info`], [`Reading`], or a [`Refusal`] for any request.
pub mod protocol {
    use serde::{Deserialize, Serialize};
    use wattprint_core::DomainDesc;

    /// Request: the agent's domains, answered by [`Info`].
    pub const INFO: &str = "info";
    /// Request: a fresh sample of every domain, answered by [`Reading`].
    pub const READ: &str = "read";

    /// The domains the agent reads, in the order of [`Reading::joules`].
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Info {
        pub domains: Vec<DomainDesc>,
    }

    /// A fresh sample: the agent's meter time, s, each domain's cumulative energy since the
    /// agent started, J, and whether the domain is unreadable now.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Reading {
        pub t_s: f64,
        pub joules: Vec<f64>,
        #[serde(default)]
        pub missing: Vec<bool>,
    }

    /// A request the agent refused (unknown, too long, over the client's share), and why.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Refusal {
        pub error: String,
    }

    /// What a client reads for a request answered by `T`.
    #[derive(Clone, Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    pub enum Answer<T> {
        Refused(Refusal),
        Answered(T),
    }
}

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

fn ask<T: serde::de::DeserializeOwned>(
    conn: &mut (UnixStream, BufReader<UnixStream>),
    req: &str,
) -> Result<T, String> {
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
    match serde_json::from_str::<protocol::Answer<T>>(&line)
        .map_err(|e| format!("answer to {req:?} is not the protocol's: {e}"))?
    {
        protocol::Answer::Answered(a) => Ok(a),
        protocol::Answer::Refused(r) => Err(format!("the agent answered: {}", r.error)),
    }
}

impl AgentSocketSensor {
    /// Connect and ask the agent for its domains.
    pub fn connect(path: &Path) -> Result<Self, SensorError> {
        let mut conn = connect(path).map_err(|e| unavailable(path, e))?;
        let info: protocol::Info =
            ask(&mut conn, protocol::INFO).map_err(|e| unavailable(path, e))?;
        let domains = info.domains;
        Ok(AgentSocketSensor {
            path: path.to_path_buf(),
            conn: Some(conn),
            info: SensorInfo {
                source: SOURCE,
                domains,
                cadence: ReadCadence::Boundaries { guard_s: None },
                setup: format!(
                    "membership of the agent socket's group ({})",
                    path.display()
                ),
            },
        })
    }

    fn read_once(&mut self) -> Result<protocol::Reading, String> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.path).map_err(|e| format!("reconnecting: {e}"))?);
        }
        let conn = self.conn.as_mut().ok_or("not connected")?;
        let r = ask(conn, protocol::READ);
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
        for (k, slot) in out.iter_mut().enumerate() {
            let gap = v.missing.get(k).copied().unwrap_or(false);
            *slot = match v.joules.get(k) {
                Some(&j) if !gap => RawReading::EnergyCounter {
                    joules: j,
                    range_j: None,
                },
                _ => RawReading::Missing,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::protocol::*;

    #[test]
    fn each_answer_reads_back_as_the_type_the_client_asked_for() {
        let r = Reading {
            t_s: 1.5,
            joules: vec![10.0, 2.5],
            missing: vec![false, true],
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            serde_json::from_str::<Answer<Reading>>(&line).unwrap(),
            Answer::Answered(r)
        );
        let refused = serde_json::to_string(&Refusal {
            error: "unknown request".into(),
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Answer<Reading>>(&refused).unwrap(),
            Answer::Refused(Refusal {
                error: "unknown request".into()
            })
        );
        // An answer of the wrong kind is an error, not a reading of nothing.
        assert!(serde_json::from_str::<Answer<Reading>>(r#"{"domains": []}"#).is_err());
    }
}
