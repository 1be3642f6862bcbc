//! The agent's state: the meter, open windows, request spans waiting for attribution, settled
//! per-label counters, recent samples for the dashboard. Synchronous and clock-injected (every
//! method takes the times it needs), so tests drive it without a server.
//!
//! Spans are reported in Unix seconds and mapped onto the meter's monotonic timeline with the
//! offset measured at start. Attribution is *settled* up to a horizon that trails the newest
//! sample by `settle_lag_s`, so that spans reported a little after they ended still share
//! their slices with their neighbours; a span arriving after its time was settled is *late*
//! and only the unsettled part of it is attributed (counted, never silent).

mod ledger;
mod windows;

pub use ledger::{
    LabelTotals, Settled, SpanRefusal, SpanReport, MAX_SPAN_PAST_S, MAX_SPAN_REFUSALS, MAX_SPAN_S,
    MAX_SPAN_TOKENS,
};
pub use windows::{OpenWindowEnergy, WindowTotals, MAX_WINDOW_COUNT, OVERFLOW_WINDOW};

use crate::labels::LabelTable;
use ledger::Pending;
use std::collections::{BTreeMap, HashMap, VecDeque};
use wattprint_core::requests;
use wattprint_core::DomainDesc;
use wattprint_sensors::gpu::GpuDevice;
use wattprint_sensors::Meter;
use windows::OpenWindow;

/// The carbon factor the agent applies to requests, resolved once at start by
/// `wattprint_carbon::resolve` (zone, `--intensity`, `--pue`, market factor); window reports
/// apply the same resolution in the engine's carbon step, so requests and windows agree.
#[derive(Clone, Debug)]
pub struct CarbonFactor {
    pub zone: String,
    pub intensity_g_per_kwh: f64,
    pub source: String,
    /// True when no zone was given and a fallback was used (reported, never silent).
    pub fallback: bool,
    pub pue: f64,
    /// What the resolution warned about (fallback zone, default PUE).
    pub warnings: Vec<String>,
    /// The resolved inputs window reports are finished with.
    pub resolved: wattprint_carbon::ResolvedCarbon,
}

impl CarbonFactor {
    /// Resolve `options` (time series and live providers are not used by the agent and are
    /// cleared: nothing here reads a file or the network after start).
    pub fn resolve(
        mut options: wattprint_carbon::CarbonOptions,
    ) -> Result<CarbonFactor, wattprint_carbon::CarbonError> {
        options.intensity_file = None;
        options.live = None;
        let r = wattprint_carbon::resolve(&options, wattprint_carbon::RunTime::default())?;
        Ok(CarbonFactor {
            zone: r.zone().to_string(),
            intensity_g_per_kwh: r.intensity_g_per_kwh(),
            source: r.intensity_source().to_string(),
            fallback: r.fallback(),
            pue: r.pue,
            warnings: r.warnings.clone(),
            resolved: r,
        })
    }
}

/// Limits and settings of the agent's state.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Spans waiting for attribution kept at most (oldest dropped, counted).
    pub max_pending_spans: usize,
    /// Attributed requests kept for the summary and dashboard.
    pub max_recent_requests: usize,
    /// Samples kept for attribution and the dashboard.
    pub max_samples: usize,
    /// Distinct label sets exported as metrics (the rest folded into one overflow set).
    pub max_label_sets: usize,
    /// Open windows at most.
    pub max_windows: usize,
    /// Distinct names of ended windows kept as their own series (`/metrics`, OTLP); the
    /// windows of further names are added to [`OVERFLOW_WINDOW`], counted in
    /// [`Losses::window_names_overflowed`].
    pub max_window_names: usize,
    /// Attribution trails the newest sample by this much, s.
    pub settle_lag_s: f64,
    /// Spans ending later than this after the newest sample are refused (a span is reported
    /// once it ended; a far-future end would hold a buffer slot forever), s.
    pub max_future_s: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending_spans: 200_000,
            max_recent_requests: 50_000,
            max_samples: 3600,
            max_label_sets: 512,
            max_windows: 10_000,
            max_window_names: 256,
            settle_lag_s: 5.0,
            max_future_s: 60.0,
        }
    }
}

/// One sample of the meter.
#[derive(Clone, Debug)]
pub struct Sample {
    pub t_s: f64,
    /// Cumulative energy of the counted domains, J.
    pub total_j: f64,
    /// Per domain power over the interval ending here, W.
    pub power_w: Vec<Option<f64>>,
}

/// What was lost or refused, for `/metrics`, the summary and the logs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Losses {
    /// Pending spans dropped because the buffer was full.
    pub spans_dropped: u64,
    /// Spans refused as invalid (end before start, non-finite times).
    pub spans_invalid: u64,
    /// Spans reported after part of their time was already settled.
    pub spans_late: u64,
    /// Seconds of late spans that could not be attributed any more.
    pub late_span_s: f64,
    /// Attributed requests rotated out of the recent list (still in the counters).
    pub recent_rotated: u64,
    /// Label sets folded into the overflow set.
    pub label_sets_overflowed: u64,
    /// OTLP pushes that failed (connection error or non-2xx answer).
    pub otlp_push_failures: u64,
    /// Ended windows whose name was beyond `max_window_names`, added to [`OVERFLOW_WINDOW`].
    pub window_names_overflowed: u64,
}

/// Errors the API maps to HTTP statuses.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StateError {
    #[error("window {0} is not open (never begun, already ended, or lost in an agent restart)")]
    NoWindow(u64),
    #[error("too many open windows ({0}): end some first")]
    TooManyWindows(usize),
    #[error("{0}")]
    BadInput(String),
}

/// The agent's state. See the module docs.
pub struct AgentState {
    meter: Meter,
    domains: Vec<DomainDesc>,
    /// GPUs measured (their domains are among `domains`), for the window reports' FLOPs/W.
    gpus: Vec<GpuDevice>,
    /// The (low, high) power each domain's sensor vouches for, W (the model's span).
    power_bounds_w: Vec<Option<(f64, f64)>>,
    /// Unix time of the meter's t = 0, s.
    unix_at_epoch_s: f64,
    limits: Limits,
    carbon: CarbonFactor,
    pue: f64,
    samples: VecDeque<Sample>,
    cumulative_j: Vec<f64>,
    pending: VecDeque<Pending>,
    settled_until_s: f64,
    idle_j: f64,
    recent: VecDeque<Settled>,
    labels: LabelTable,
    totals: Vec<LabelTotals>,
    windows: HashMap<u64, OpenWindow>,
    /// Ended windows by name (at most `max_window_names` names plus [`OVERFLOW_WINDOW`]).
    window_totals: BTreeMap<String, WindowTotals>,
    losses: Losses,
    spans_received: u64,
    /// Per-workload attribution (`--workloads`), fed at every tick.
    workloads: Option<crate::workloads::Workloads>,
}

impl AgentState {
    /// Wrap a started meter. `unix_now_s` and `meter_now_s` are read at the same instant.
    pub fn new(
        meter: Meter,
        unix_now_s: f64,
        meter_now_s: f64,
        carbon: CarbonFactor,
        limits: Limits,
    ) -> AgentState {
        let domains = meter.domains();
        let n = domains.len();
        let max_sets = limits.max_label_sets;
        AgentState {
            meter,
            domains,
            gpus: Vec::new(),
            power_bounds_w: Vec::new(),
            unix_at_epoch_s: unix_now_s - meter_now_s,
            limits,
            pue: carbon.pue,
            carbon,
            samples: VecDeque::new(),
            cumulative_j: vec![0.0; n],
            pending: VecDeque::new(),
            settled_until_s: 0.0,
            idle_j: 0.0,
            recent: VecDeque::new(),
            labels: LabelTable::new(max_sets),
            totals: Vec::new(),
            windows: HashMap::new(),
            window_totals: BTreeMap::new(),
            losses: Losses::default(),
            spans_received: 0,
            workloads: None,
        }
    }

    pub fn domains(&self) -> &[DomainDesc] {
        &self.domains
    }

    /// The GPUs the meter's sensors measure (from discovery), so that window reports give
    /// FLOPs/W against their peaks.
    pub fn set_gpus(&mut self, gpus: Vec<GpuDevice>) {
        self.gpus = gpus;
    }

    /// The (low, high) power each domain's sensor vouches for, W, in meter order (the
    /// model's span), for the ranges of windows and requests.
    pub fn set_power_bounds(&mut self, power_bounds_w: Vec<Option<(f64, f64)>>) {
        self.power_bounds_w = power_bounds_w;
    }

    /// The relative range of the energy the agent attributes, (low / value, high / value):
    /// each counted domain's range over everything measured since start
    /// ([`wattprint_core::bounds::domain_bounds`]: the model's span, RAPL's and NVML's
    /// accuracy), summed. Every per-request figure scales by it; (1, 1) before any energy.
    pub fn energy_range_factors(&self) -> (f64, f64) {
        let uptime_s = self.samples.back().map_or(0.0, |s| s.t_s);
        let (mut lo, mut v, mut hi) = (0.0, 0.0, 0.0);
        for (k, d) in self.domains.iter().enumerate() {
            if !d.counted_in_total {
                continue;
            }
            let j = self.cumulative_j.get(k).copied().unwrap_or(0.0);
            let pb = self.power_bounds_w.get(k).copied().flatten();
            let (b, _) =
                wattprint_core::bounds::domain_bounds(d.method, &d.source, j, uptime_s, pb);
            (lo, v, hi) = (lo + b.low, v + j, hi + b.high);
        }
        if v > 0.0 {
            (lo / v, hi / v)
        } else {
            (1.0, 1.0)
        }
    }

    pub fn carbon(&self) -> &CarbonFactor {
        &self.carbon
    }

    pub fn pue(&self) -> f64 {
        self.pue
    }

    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Unix seconds of a meter time.
    pub fn unix_of(&self, t_s: f64) -> f64 {
        t_s + self.unix_at_epoch_s
    }

    fn grams(&self, energy_j: f64) -> f64 {
        requests::grams(energy_j * self.pue, self.carbon.intensity_g_per_kwh)
    }

    /// Read the sensors, record the sample, and settle attribution up to the new horizon.
    pub fn tick(&mut self) {
        let snap = self.meter.sample_now();
        let before = std::mem::replace(
            &mut self.cumulative_j,
            snap.cumulative.iter().map(|j| j.0).collect(),
        );
        let dt_s = self.samples.back().map_or(0.0, |s| snap.t_s - s.t_s);
        self.feed_workloads(&before, dt_s);
        let total_j = self
            .domains
            .iter()
            .zip(&self.cumulative_j)
            .filter(|(d, _)| d.counted_in_total)
            .map(|(_, j)| j)
            .sum();
        self.samples.push_back(Sample {
            t_s: snap.t_s,
            total_j,
            power_w: snap.power.iter().map(|p| p.map(|w| w.0)).collect(),
        });
        while self.samples.len() > self.limits.max_samples.max(2) {
            self.samples.pop_front();
        }
        self.settle(snap.t_s - self.limits.settle_lag_s);
    }

    /// Attribute the energy since the previous tick to workloads: the counted domains but
    /// GPUs by CPU time, GPUs' apart (`kind="gpu"`).
    fn feed_workloads(&mut self, before_j: &[f64], dt_s: f64) {
        let g_per_j = self.grams(1.0);
        let Some(w) = self.workloads.as_mut() else {
            return;
        };
        let (mut cpu_j, mut gpu_j) = (0.0, 0.0);
        for (k, d) in self.domains.iter().enumerate() {
            if !d.counted_in_total {
                continue;
            }
            let j = self.cumulative_j.get(k).copied().unwrap_or(0.0)
                - before_j.get(k).copied().unwrap_or(0.0);
            if matches!(
                d.kind,
                wattprint_core::DomainKind::Gpu | wattprint_core::DomainKind::Accelerator
            ) {
                gpu_j += j;
            } else {
                cpu_j += j;
            }
        }
        w.on_slice(cpu_j, gpu_j, dt_s, g_per_j);
    }

    /// Attribute each slice to workloads from now on.
    pub fn set_workloads(&mut self, w: crate::workloads::Workloads) {
        self.workloads = Some(w);
    }

    /// The per-workload counters, when `--workloads` is on.
    pub fn workloads(&self) -> Option<&crate::workloads::Workloads> {
        self.workloads.as_ref()
    }

    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    pub fn cumulative_j(&self) -> &[f64] {
        &self.cumulative_j
    }

    /// Count a failed OTLP push (exported as `wattprint_otlp_push_failures_total`).
    pub fn record_otlp_failure(&mut self) {
        self.losses.otlp_push_failures += 1;
    }

    pub fn losses(&self) -> &Losses {
        &self.losses
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use wattprint_sensors::fake::FakeSensor;
    use wattprint_sensors::MeterOptions;

    fn factor() -> CarbonFactor {
        CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
            intensity_g_per_kwh: Some(360.0),
            pue: Some(1.0),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn the_factor_is_resolved_like_a_run_report() {
        let f = CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
            zone: Some("FR".into()),
            pue: Some(1.2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.zone, "FR");
        assert!(!f.fallback);
        assert_eq!(f.pue, 1.2);
        assert!(f.intensity_g_per_kwh > 0.0);
        let w = CarbonFactor::resolve(Default::default()).unwrap();
        assert!(w.fallback);
        assert!(!w.warnings.is_empty());
        assert!(CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
            zone: Some("Atlantis".into()),
            ..Default::default()
        })
        .is_err());
    }

    pub(super) fn state(limits: Limits) -> AgentState {
        let meter = Meter::start(
            vec![Box::new(FakeSensor::constant_counter(
                "package-0",
                100.0,
                0.0,
                1e9,
            ))],
            MeterOptions::default(),
        );
        AgentState::new(meter, 1000.0, 0.0, factor(), limits)
    }

    /// Push a synthetic sample (the meter's real clock is not used by `settle`).
    pub(super) fn push(st: &mut AgentState, t_s: f64, total_j: f64) {
        st.samples.push_back(Sample {
            t_s,
            total_j,
            power_w: vec![],
        });
    }

    #[test]
    fn request_figures_carry_the_counted_domains_relative_range() {
        use wattprint_sensors::{RawReading, ReadCadence, SensorInfo};
        let rapl = FakeSensor::new(
            SensorInfo {
                source: "rapl-powercap".into(),
                domains: vec![DomainDesc {
                    name: "package-0".into(),
                    kind: wattprint_core::DomainKind::CpuPackage,
                    source: "rapl-powercap".into(),
                    method: wattprint_core::Method::Counter,
                    counted_in_total: true,
                    device: None,
                }],
                cadence: ReadCadence::Boundaries { guard_s: None },
                setup: "none".into(),
            },
            // 100 J more at every read: energy whatever the clock did.
            {
                let mut j = 0.0;
                move |_t, out| {
                    j += 100.0;
                    out[0] = RawReading::EnergyCounter {
                        joules: j,
                        range_j: None,
                    };
                    Ok(())
                }
            },
        );
        let meter = Meter::start(vec![Box::new(rapl)], MeterOptions::default());
        let mut st = AgentState::new(meter, 1000.0, 0.0, factor(), Limits::default());
        assert_eq!(st.energy_range_factors(), (1.0, 1.0));
        st.tick();
        st.tick();
        let (lo, hi) = st.energy_range_factors();
        // RAPL counters: +/- 5 %.
        assert!(
            (lo - 0.95).abs() < 1e-12 && (hi - 1.05).abs() < 1e-12,
            "{lo} {hi}"
        );
    }
}
