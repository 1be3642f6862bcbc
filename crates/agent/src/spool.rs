//! Nothing lost on restart: the agent's resumable state as one JSON snapshot, written to a
//! small SQLite spool (`wattprint_store::spool`) once per sampling interval, in one
//! transaction, and taken over by the next process (`--spool FILE`).
//!
//! What is kept: open windows (same ids: a client ends its window after the restart as if
//! nothing happened), spans waiting for attribution with the energy settled to them, and the
//! cumulative counters (per domain, per label set, per window name, per workload, idle,
//! losses), so that every `_total` stays monotonic across restarts. What is not guessed: the
//! energy between the last snapshot and the restart. It is reported as a gap in the reports
//! of the windows it interrupted, and counted in `wattprint_agent_downtime_seconds_total`.
//! Not kept: the recent-requests list behind the percentiles of `/v1/requests/summary`, and
//! the dashboard's samples.
//!
//! Cost: the snapshot's size is bounded by the series limits (label sets, window names,
//! workloads), the open windows and at most [`MAX_SPOOLED_SPANS`] pending spans.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format of the snapshot's JSON; a spool of another format is refused (not misread).
pub const SNAPSHOT_FORMAT: u32 = 1;
/// Pending spans spooled at most (the newest; the others are counted as lost at a restart):
/// 50 000 spans is about 5 MB of JSON, more than a settle lag's worth of traffic at 10 000
/// requests per second.
pub const MAX_SPOOLED_SPANS: usize = 50_000;
/// Downtime gaps kept per open window (the oldest are merged beyond that).
pub const MAX_WINDOW_GAPS: usize = 32;

/// A span waiting for attribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpooledSpan {
    pub start_unix_s: f64,
    pub end_unix_s: f64,
    pub tokens: Option<u64>,
    pub labels: BTreeMap<String, String>,
    /// Energy settled to it so far, J.
    pub energy_j: f64,
    /// The metering proxy's request id (`GET /v1/requests/{id}`), for requests it measured.
    #[serde(default)]
    pub id: Option<u64>,
}

/// Settled totals of one label set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpooledLabelTotals {
    pub labels: BTreeMap<String, String>,
    pub requests: u64,
    pub tokens: u64,
    pub energy_j: f64,
    pub carbon_g: f64,
}

/// The request ledger's resumable part.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    pub pending: Vec<SpooledSpan>,
    pub totals: Vec<SpooledLabelTotals>,
    pub idle_j: f64,
    pub spans_received: u64,
    pub spans_dropped: u64,
    pub spans_invalid: u64,
    pub spans_late: u64,
    pub late_span_s: f64,
    pub recent_rotated: u64,
    pub label_sets_overflowed: u64,
}

/// Totals of the ended windows of one name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpooledWindowTotals {
    pub name: String,
    pub ended: u64,
    pub energy_j: f64,
    pub carbon_g: f64,
}

/// A time the agent was down, Unix s.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Downtime {
    pub from_unix_s: f64,
    pub to_unix_s: f64,
}

/// An open window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpooledWindow {
    pub id: u64,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub begin_unix_s: f64,
    /// Each domain's cumulative energy when it began (the agent's continuous counters, in
    /// the order of [`Snapshot::domains`]), J.
    pub begin_cum_j: Vec<f64>,
    /// The agent's downtimes while it was open.
    pub downtimes: Vec<Downtime>,
}

/// One workload's counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpooledWorkload {
    pub kind: wattprint_core::workloads::WorkloadKind,
    pub pod_uid: String,
    pub id: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub qos: Option<wattprint_core::workloads::QosClass>,
    pub cgroup: String,
    pub energy_j: f64,
    pub carbon_g: f64,
    pub cpu_s: f64,
    /// The part of `energy_j` from GPUs, J (0 in snapshots written before the GPU split).
    #[serde(default)]
    pub gpu_energy_j: f64,
}

/// The per-workload counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadsSnapshot {
    pub workloads: Vec<SpooledWorkload>,
    /// `system`, `idle`, `other`, `gpu`: (energy J, carbon g).
    pub fixed: BTreeMap<String, (f64, f64)>,
    pub workloads_seen: u64,
    /// The GPU part of `fixed`'s `other` energy, J (`gpu`'s is all of it); empty in
    /// snapshots written before the GPU split.
    #[serde(default)]
    pub fixed_gpu_j: BTreeMap<String, f64>,
}

/// Everything a restarted agent takes over.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub format: u32,
    pub written_unix_s: f64,
    /// Domain names, meter order (counters are matched by name at a restart).
    pub domains: Vec<String>,
    /// Each domain's cumulative energy since the first start, J.
    pub cumulative_j: Vec<f64>,
    /// The next window id to hand out (ids are never reused across restarts).
    pub next_window_id: u64,
    /// The last request id the metering proxy handed out (ids are never reused across
    /// restarts either); 0 in snapshots written before the proxy existed.
    #[serde(default)]
    pub last_request_id: u64,
    pub windows: Vec<SpooledWindow>,
    pub window_totals: Vec<SpooledWindowTotals>,
    pub window_names_overflowed: u64,
    pub ledger: LedgerSnapshot,
    /// Pending spans beyond [`MAX_SPOOLED_SPANS`] not in this snapshot.
    pub spans_not_spooled: u64,
    pub workloads: Option<WorkloadsSnapshot>,
    /// Restarts that resumed from a spool, since the first start.
    pub restarts: u64,
    /// Time the agent was down between a snapshot and the next start, summed, s.
    pub downtime_s: f64,
    pub otlp_push_failures: u64,
    #[serde(default)]
    pub otlp_batches_dropped: u64,
}

/// What a start took over from the spool (logged by the CLI, in `/healthz`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resumed {
    /// The snapshot's time, Unix s.
    pub snapshot_unix_s: f64,
    /// Down from the snapshot to this start, s (no energy is attributed to it).
    pub downtime_s: f64,
    pub windows: usize,
    /// Windows beyond the open-window limit, not resumed.
    pub windows_dropped: usize,
    pub pending_spans: usize,
    /// Spans that were pending but not in the snapshot (beyond [`MAX_SPOOLED_SPANS`]).
    pub spans_lost: u64,
    /// Domains of the snapshot this start has not (their counters are not continued).
    pub domains_missing: Vec<String>,
}

/// Why a spool cannot be taken over.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("spool {path}: the snapshot is not readable JSON ({message}): remove the file to start afresh")]
    Json { path: String, message: String },
    #[error("spool {path}: snapshot format {found}, this wattprint reads {SNAPSHOT_FORMAT}: remove the file to start afresh, or run the wattprint that wrote it")]
    Format { path: String, found: u32 },
}

/// Parse a spooled snapshot (`path` names the spool in errors).
pub fn parse(path: &str, body: &str) -> Result<Snapshot, ResumeError> {
    let s: Snapshot = serde_json::from_str(body).map_err(|e| ResumeError::Json {
        path: path.into(),
        message: e.to_string(),
    })?;
    if s.format != SNAPSHOT_FORMAT {
        return Err(ResumeError::Format {
            path: path.into(),
            found: s.format,
        });
    }
    Ok(s)
}
