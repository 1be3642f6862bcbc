//! The sensor trait.

use wattprint_core::{DomainDesc, SensorSource};

/// One raw reading of one domain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawReading {
    /// A monotonically increasing energy counter, in joules, wrapping at `range_j` (`None`:
    /// does not wrap in practice).
    EnergyCounter { joules: f64, range_j: Option<f64> },
    /// Instantaneous (or short-average) power, in watts.
    Power { watts: f64 },
    /// No value this time (domain temporarily unreadable); the meter records a gap.
    Missing,
}

/// How often a sensor must be read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadCadence {
    /// Counters: read at window boundaries, plus a guard read at least every `guard_s` seconds
    /// so a wrap is never missed (`None`: no guard needed).
    Boundaries { guard_s: Option<f64> },
    /// Power or model sensors: must be polled; `preferred_s` is the sensor's own suggestion,
    /// the meter's interval option overrides it.
    Poll { preferred_s: f64 },
}

/// What a sensor is, for `wattprint sensors` and for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorInfo {
    /// Source label, e.g. `rapl-powercap`, `rapl-perf`, `nvml`, `amdsmi`, `hwmon`,
    /// `utilisation-model`.
    pub source: SensorSource,
    /// The domains this sensor reads, in the order of [`Sensor::read`]'s output.
    pub domains: Vec<DomainDesc>,
    pub cadence: ReadCadence,
    /// Set-up this sensor needed, shown in the overhead score (e.g. `none`).
    pub setup: String,
}

/// Errors from a sensor read or construction.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The sensor cannot be used here; `fix` says what would make it usable.
    #[error("{reason}")]
    Unavailable { reason: String, fix: Option<String> },
    /// A read failed; the meter records a gap for the sensor's domains and carries on.
    #[error("read failed: {0}")]
    Read(String),
}

/// A source of readings for one or more domains.
pub trait Sensor: Send {
    fn info(&self) -> &SensorInfo;

    /// Read every domain, writing one reading per domain into `out` (same length and order as
    /// `info().domains`). Called from the meter's thread with a monotonic timestamp `t_s`.
    fn read(&mut self, t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError>;

    /// Why domain `domain` read [`RawReading::Missing`] last time, for the gap's reason.
    fn missing_reason(&self, _domain: usize) -> Option<String> {
        None
    }

    /// The domain's power when the machine is idle, W, when the sensor knows it (the model
    /// does; hardware counters do not). Attribution keeps this energy apart.
    fn idle_power_w(&self, _domain: usize) -> Option<f64> {
        None
    }

    /// The domain's maximum power, W, when the hardware says (powercap's largest
    /// `constraint_*_max_power_uw`): the bound of a plausible reading.
    fn max_power_w(&self, _domain: usize) -> Option<f64> {
        None
    }

    /// Stop reading the domains `keep` rejects (the node's GPUs that are not the job's):
    /// afterwards `info().domains` and `read` cover the kept ones only. Returns `false`, and
    /// changes nothing, when the sensor cannot drop domains (the default).
    fn retain_domains(&mut self, _keep: &dyn Fn(&DomainDesc) -> bool) -> bool {
        false
    }

    /// The least and the most power the domain can draw by the sensor's own account, W
    /// (low, high), when it knows them: the model's span (idle to full load). Reports bound
    /// the domain's energy by it.
    fn power_bounds_w(&self, _domain: usize) -> Option<(f64, f64)> {
        None
    }
}
