//! The agent's state: the meter and its recent samples (for attribution and the dashboard),
//! coordinating the [`RequestLedger`] (request spans, their attribution and per-label
//! counters; `ledger.rs`) and the [`WindowTable`] (open windows and totals of ended ones;
//! `windows.rs`). Both are pure: only this coordinator reads the meter, and it hands them the
//! samples and times, so tests drive each without a meter or a server.
//!
//! Spans are reported in Unix seconds and mapped onto the meter's monotonic timeline with the
//! offset measured at start. Attribution is *settled* up to a horizon that trails the newest
//! sample by `settle_lag_s`, so that spans reported a little after they ended still share
//! their slices with their neighbours; a span arriving after its time was settled is *late*
//! and only the unsettled part of it is attributed (counted, never silent).

mod ledger;
mod resume;
mod windows;

pub use ledger::{
    LabelTotals, RequestLedger, RequestStatus, Settled, SpanBatch, SpanRefusal, SpanReport,
    MAX_SPAN_PAST_S, MAX_SPAN_REFUSALS, MAX_SPAN_S, MAX_SPAN_TOKENS,
};
pub use windows::{
    OpenWindow, OpenWindowEnergy, WindowTable, WindowTotals, MAX_WINDOW_COUNT, OVERFLOW_WINDOW,
};

use std::collections::{BTreeMap, VecDeque};
use wattprint_core::report::{RunReport, Work};
use wattprint_core::requests::{self, RequestSummary};
use wattprint_core::wallclock::rfc3339_utc_ms;
use wattprint_core::window::WindowId;
use wattprint_core::DomainDesc;
use wattprint_engine::report::{assemble, ReportContext, ReportInputs};
use wattprint_engine::session::clip_gaps;
use wattprint_sensors::gpu::GpuDevice;
use wattprint_sensors::Meter;

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

/// A figure's relative range: its low and high ends divided by the figure (1 and 1 when it is
/// exact).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeFactors {
    pub low: f64,
    pub high: f64,
}

/// The OTLP signal a push carries: each has its own queue and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpSignal {
    /// The metrics snapshot (`/v1/metrics`).
    Metrics,
    /// Enriched spans (`/v1/traces`).
    Traces,
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
    /// OTLP snapshots dropped: the queue was full, or the answer was not retryable.
    pub otlp_batches_dropped: u64,
    /// OTLP span exports that failed (connection error or non-2xx answer).
    pub otlp_trace_push_failures: u64,
    /// Enriched spans never exported: their batch was dropped (queue full, answer not
    /// retryable), their trace was forgotten before they settled, or their attribution was
    /// dropped by the ledger.
    pub otlp_spans_dropped: u64,
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
    ledger: RequestLedger,
    windows: WindowTable,
    /// OTLP pushes that failed (the one loss neither the ledger nor the table sees).
    otlp_push_failures: u64,
    otlp_batches_dropped: u64,
    /// The span export's counters (not kept in the spool: they restart at 0).
    otlp_trace_push_failures: u64,
    otlp_spans_dropped: u64,
    otlp_spans_exported: u64,
    /// Per-workload attribution (`--workloads`), fed at every tick.
    workloads: Option<crate::workloads::Workloads>,
    /// Continuity across restarts (`--spool`): counters carried, window ids, downtimes.
    carry: resume::Carry,
    /// The last request id handed out by [`AgentState::next_request_id`].
    request_ids: u64,
    /// Requests the agent is measuring itself that have not ended (the metering proxy's),
    /// by id: their start, meter time, s. Settlement waits for the oldest (up to
    /// [`MAX_OPEN_HOLD_S`]) so that their energy is attributed when they end.
    open_requests: BTreeMap<u64, f64>,
}

/// How long an open request holds settlement back at most, s: a stream longer than this
/// loses its early part (counted as late) rather than delaying every other request's
/// figures further. Ten minutes covers the longest generations.
pub const MAX_OPEN_HOLD_S: f64 = 600.0;

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
        let unix_at_epoch_s = unix_now_s - meter_now_s;
        AgentState {
            meter,
            domains,
            gpus: Vec::new(),
            power_bounds_w: Vec::new(),
            unix_at_epoch_s,
            ledger: RequestLedger::new(
                unix_at_epoch_s,
                carbon.intensity_g_per_kwh,
                carbon.pue,
                limits.clone(),
            ),
            windows: WindowTable::new(limits.max_windows, limits.max_window_names),
            limits,
            pue: carbon.pue,
            carbon,
            samples: VecDeque::new(),
            cumulative_j: vec![0.0; n],
            otlp_push_failures: 0,
            otlp_batches_dropped: 0,
            otlp_trace_push_failures: 0,
            otlp_spans_dropped: 0,
            otlp_spans_exported: 0,
            workloads: None,
            carry: resume::Carry::new(n),
            request_ids: 0,
            open_requests: BTreeMap::new(),
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

    /// The relative range of the energy the agent attributes (low / value, high / value):
    /// each counted domain's range over everything measured since start
    /// ([`wattprint_core::bounds::domain_bounds`]: the model's span, RAPL's and NVML's
    /// accuracy), summed. Every per-request figure scales by it; (1, 1) before any energy.
    pub fn energy_range_factors(&self) -> RangeFactors {
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
            RangeFactors {
                low: lo / v,
                high: hi / v,
            }
        } else {
            RangeFactors {
                low: 1.0,
                high: 1.0,
            }
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
        let now_j = self.carry.continuous(&snap.cumulative);
        let before = std::mem::replace(&mut self.cumulative_j, now_j);
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
        let mut horizon = snap.t_s - self.limits.settle_lag_s;
        if let Some(oldest) = self.open_requests.values().copied().reduce(f64::min) {
            horizon = horizon.min(oldest.max(snap.t_s - MAX_OPEN_HOLD_S));
        }
        self.settle(horizon);
    }

    /// Attribute the energy since the previous tick to workloads: the counted domains but
    /// GPUs by CPU time; NVIDIA GPUs' per GPU (split by their processes when the workloads
    /// have a GPU process source), the other GPUs' and accelerators' to `kind="gpu"`.
    fn feed_workloads(&mut self, before_j: &[f64], dt_s: f64) {
        let g_per_j = self.grams(1.0);
        let Some(w) = self.workloads.as_mut() else {
            return;
        };
        let mut cpu_j = 0.0;
        let mut gpu = crate::workloads::GpuSlice::default();
        for (k, d) in self.domains.iter().enumerate() {
            if !d.counted_in_total {
                continue;
            }
            let j = self.cumulative_j.get(k).copied().unwrap_or(0.0)
                - before_j.get(k).copied().unwrap_or(0.0);
            if !matches!(
                d.kind,
                wattprint_core::DomainKind::Gpu | wattprint_core::DomainKind::Accelerator
            ) {
                cpu_j += j;
                continue;
            }
            let nvml = self
                .gpus
                .iter()
                .find(|g| g.domain == d.name && g.source == wattprint_core::SensorSource::Nvml);
            match nvml {
                Some(g) => gpu.nvml.push(wattprint_core::gpu_share::GpuEnergy {
                    gpu_index: g.index,
                    joules: j,
                }),
                None => gpu.unsplit_j += j,
            }
        }
        w.on_slice_gpus(cpu_j, &gpu, dt_s, g_per_j);
    }

    /// Attribute each slice to workloads from now on.
    pub fn set_workloads(&mut self, w: crate::workloads::Workloads) {
        self.workloads = Some(w);
    }

    /// The per-workload counters, when `--workloads` is on.
    pub fn workloads(&self) -> Option<&crate::workloads::Workloads> {
        self.workloads.as_ref()
    }

    /// Settle the ledger up to `horizon_s` (meter time, s) against the recorded samples.
    pub fn settle(&mut self, horizon_s: f64) {
        self.ledger.settle(&self.samples, horizon_s);
    }

    /// Meter time of the newest sample, s (0 before any).
    fn newest_s(&self) -> f64 {
        self.samples.back().map_or(0.0, |s| s.t_s)
    }

    /// Queue reported spans for attribution. Returns how many were accepted.
    pub fn add_spans(&mut self, reports: Vec<SpanReport>) -> usize {
        self.add_spans_checked(reports).accepted
    }

    /// Queue reported spans for attribution: how many were accepted, and why the first
    /// [`MAX_SPAN_REFUSALS`] refused ones were (see [`RequestLedger::add_spans_checked`]).
    pub fn add_spans_checked(&mut self, reports: Vec<SpanReport>) -> SpanBatch {
        let newest_s = self.newest_s();
        self.ledger.add_spans_checked(reports, newest_s)
    }

    /// A fresh request id for a span the agent opens itself (the metering proxy's
    /// `x-wattprint-request-id`), unique while the agent runs.
    pub fn next_request_id(&mut self) -> u64 {
        self.request_ids += 1;
        self.request_ids
    }

    /// A request the agent measures itself began at `start_unix_s` (Unix s): settlement
    /// waits for it (see [`MAX_OPEN_HOLD_S`]) until [`add_identified_span`]
    /// (Self::add_identified_span) or [`abandon_request`](Self::abandon_request). Open
    /// requests are bounded by `max_pending_spans` (the oldest stops holding).
    pub fn begin_request(&mut self, id: u64, start_unix_s: f64) {
        self.open_requests
            .insert(id, start_unix_s - self.unix_at_epoch_s);
        while self.open_requests.len() > self.limits.max_pending_spans {
            self.open_requests.pop_first();
        }
    }

    /// An open request ended without a span (its engine could not be reached).
    pub fn abandon_request(&mut self, id: u64) {
        self.open_requests.remove(&id);
    }

    /// Queue a span the agent measured itself under `id` (see [`RequestLedger::add_identified`]).
    pub fn add_identified_span(&mut self, id: u64, report: SpanReport) -> Result<(), SpanRefusal> {
        self.open_requests.remove(&id);
        let newest_s = self.newest_s();
        self.ledger.add_identified(id, report, newest_s)
    }

    /// Where the identified request `id` stands (`GET /v1/requests/{id}`).
    /// The settled request `id` (a hash lookup: [`AgentState::request`] also scans the
    /// pending spans).
    pub fn settled_request(&self, id: u64) -> Option<&Settled> {
        self.ledger.settled(id)
    }

    pub fn request(&self, id: u64) -> Option<RequestStatus<'_>> {
        self.ledger.request(id)
    }

    /// The request ledger (spans, attribution, per-label counters).
    pub fn ledger(&self) -> &RequestLedger {
        &self.ledger
    }

    /// Summary of the attributed requests still in the recent list, and idle energy.
    pub fn summary(&self) -> RequestSummary {
        self.ledger.summary()
    }

    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Settled> {
        self.ledger.recent(n)
    }

    pub fn label_totals(&self) -> impl Iterator<Item = (&BTreeMap<String, String>, &LabelTotals)> {
        self.ledger.label_totals()
    }

    pub fn idle_j(&self) -> f64 {
        self.ledger.idle_j()
    }

    pub fn pending_spans(&self) -> usize {
        self.ledger.pending_spans()
    }

    pub fn spans_received(&self) -> u64 {
        self.ledger.spans_received()
    }

    pub fn settled_until_unix_s(&self) -> f64 {
        self.unix_of(self.ledger.settled_until_s())
    }

    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    pub fn cumulative_j(&self) -> &[f64] {
        &self.cumulative_j
    }

    /// Count a failed OTLP push (exported as `wattprint_otlp_push_failures_total` for
    /// metrics, `wattprint_otlp_trace_push_failures_total` for spans).
    pub fn record_otlp_failure(&mut self, signal: OtlpSignal) {
        match signal {
            OtlpSignal::Metrics => self.otlp_push_failures += 1,
            OtlpSignal::Traces => self.otlp_trace_push_failures += 1,
        }
    }

    /// Count a dropped OTLP batch of `items` (snapshots: `wattprint_otlp_batches_dropped_total`;
    /// spans: `wattprint_otlp_spans_dropped_total`).
    pub fn record_otlp_dropped(&mut self, signal: OtlpSignal, items: u64) {
        match signal {
            OtlpSignal::Metrics => self.otlp_batches_dropped += items,
            OtlpSignal::Traces => self.otlp_spans_dropped += items,
        }
    }

    /// Count `items` accepted by the backend (spans: `wattprint_otlp_spans_exported_total`;
    /// metric snapshots are not counted).
    pub fn record_otlp_sent(&mut self, signal: OtlpSignal, items: u64) {
        if signal == OtlpSignal::Traces {
            self.otlp_spans_exported += items;
        }
    }

    /// Enriched spans the backend accepted.
    pub fn otlp_spans_exported(&self) -> u64 {
        self.otlp_spans_exported
    }

    /// Everything lost or refused so far: the ledger's, the windows table's and OTLP's.
    pub fn losses(&self) -> Losses {
        Losses {
            otlp_push_failures: self.otlp_push_failures,
            otlp_batches_dropped: self.otlp_batches_dropped,
            otlp_trace_push_failures: self.otlp_trace_push_failures,
            otlp_spans_dropped: self.otlp_spans_dropped,
            window_names_overflowed: self.windows.names_overflowed(),
            ..self.ledger.losses().clone()
        }
    }

    /// Open a window.
    pub fn begin_window(
        &mut self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<u64, StateError> {
        self.windows.ensure_room()?;
        let meter_id: WindowId = self.meter.begin(name);
        let id = self.carry.public_id(meter_id);
        let snap = self.meter.snapshot();
        self.windows.insert(
            id,
            OpenWindow {
                name: name.to_string(),
                labels,
                begin_unix_s: self.unix_of(snap.t_s),
                begin_t_s: snap.t_s,
                begin_cum_j: self.carry.continuous(&snap.cumulative),
                begin_meter_cpu_s: self.meter.cpu_s(),
            },
        );
        Ok(id)
    }

    /// Close a window and build its report.
    pub fn end_window(
        &mut self,
        id: u64,
        inferences: Option<f64>,
        tokens: Option<f64>,
    ) -> Result<RunReport, StateError> {
        windows::check_work(inferences, tokens)?;
        let open = self.windows.take(id)?;
        let resumed = self.carry.take_resumed(id);
        let meter_id = resumed
            .as_ref()
            .map_or_else(|| self.carry.meter_id(id), |r| r.meter_id);
        let mut e = self
            .meter
            .end(meter_id)
            .map_err(|_| StateError::NoWindow(id))?;
        let mut gaps = Vec::new();
        if let Some(r) = &resumed {
            // The energy before the restart, and the downtimes as gaps: never guessed.
            for (j, c) in e.per_domain.iter_mut().zip(&r.carried_j) {
                j.0 += c;
            }
            gaps = r.gaps(&self.domains, open.begin_unix_s);
        }
        let report = self.window_report(id, &open, &e, inferences, tokens, gaps);
        self.windows
            .record_ended(open.name, report.energy.total_j, report.carbon.total_g);
        Ok(report)
    }

    /// A closed window's `wattprint.run/v1` report, assembled by the engine's steps (carbon
    /// among them) like every other report.
    fn window_report(
        &self,
        id: u64,
        open: &OpenWindow,
        e: &wattprint_core::window::WindowEnergy,
        inferences: Option<f64>,
        tokens: Option<f64>,
        downtime_gaps: Vec<wattprint_core::report::Gap>,
    ) -> RunReport {
        let inputs = ReportInputs {
            id: format!("window-{id}"),
            started_at: rfc3339_utc_ms(open.begin_unix_s),
            duration_s: (e.end_t_s - open.begin_t_s).max(0.0),
            domains: self.domains.clone(),
            joules: e.per_domain_j(),
            integration_err_j: e.integration_err_j.clone(),
            idle_w: vec![None; self.domains.len()],
            gaps: {
                let mut g = clip_gaps(&self.meter.gaps(), open.begin_t_s, e.end_t_s);
                g.extend(downtime_gaps);
                g
            },
            meter_cpu_s: (self.meter.cpu_s() - open.begin_meter_cpu_s).max(0.0),
            peak_rss_bytes: crate::overhead::peak_rss_bytes(),
            reads: self.meter.reads(),
            gpus: self.gpus.clone(),
            ..Default::default()
        };
        let mut labels = open.labels.clone();
        labels.insert("window".into(), open.name.clone());
        let ctx = ReportContext {
            command: vec![open.name.clone()],
            labels,
            work: Work {
                inferences,
                tokens,
                ..Default::default()
            },
            pue: Some(self.pue),
            carbon: Some(self.carbon.resolved.clone()),
            ..Default::default()
        };
        assemble(&inputs, &ctx)
    }

    /// Energy and carbon so far of each open window, by id.
    pub fn open_windows(&self) -> Vec<OpenWindowEnergy> {
        self.windows
            .open_energy(&self.domains, &self.cumulative_j, |j| self.grams(j))
    }

    pub fn window_totals(&self) -> &BTreeMap<String, WindowTotals> {
        self.windows.totals()
    }
}

trait PerDomain {
    fn per_domain_j(&self) -> Vec<f64>;
}

impl PerDomain for wattprint_core::window::WindowEnergy {
    fn per_domain_j(&self) -> Vec<f64> {
        self.per_domain.iter().map(|j| j.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::SensorSource;
    use wattprint_sensors::fake::FakeSensor;
    use wattprint_sensors::gpu::GpuDevice;
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

    fn state(limits: Limits) -> AgentState {
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

    #[test]
    fn an_open_request_holds_settlement_until_its_span_arrives() {
        let mut st = state(Limits {
            settle_lag_s: 0.0,
            ..Limits::default()
        });
        let id = st.next_request_id();
        // Began at meter time 0 (Unix 1000).
        st.begin_request(id, 1000.0);
        st.tick();
        st.tick();
        assert_eq!(st.settled_until_unix_s(), 1000.0);
        let end = st.unix_of(st.samples().back().unwrap().t_s);
        st.add_identified_span(
            id,
            SpanReport {
                start_unix_s: 1000.0,
                end_unix_s: end,
                tokens: Some(3),
                labels: BTreeMap::new(),
            },
        )
        .unwrap();
        assert_eq!(st.losses().spans_late, 0);
        st.tick();
        assert!(matches!(st.request(id), Some(RequestStatus::Settled(_))));
        // Abandoned requests stop holding.
        let other = st.next_request_id();
        assert_ne!(other, id);
        st.begin_request(other, 1000.0);
        st.abandon_request(other);
        st.tick();
        assert!(st.settled_until_unix_s() > 1000.0);
    }

    #[test]
    fn request_figures_carry_the_counted_domains_relative_range() {
        use wattprint_sensors::{RawReading, ReadCadence, SensorInfo};
        let rapl = FakeSensor::new(
            SensorInfo {
                source: SensorSource::RaplPowercap,
                domains: vec![DomainDesc {
                    name: "package-0".into(),
                    kind: wattprint_core::DomainKind::CpuPackage,
                    source: SensorSource::RaplPowercap,
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
        assert_eq!(
            st.energy_range_factors(),
            RangeFactors {
                low: 1.0,
                high: 1.0
            }
        );
        st.tick();
        st.tick();
        let RangeFactors { low: lo, high: hi } = st.energy_range_factors();
        // RAPL counters: +/- 5 %.
        assert!(
            (lo - 0.95).abs() < 1e-12 && (hi - 1.05).abs() < 1e-12,
            "{lo} {hi}"
        );
    }

    #[test]
    fn window_report_has_run_fields_and_metrics() {
        let mut st = state(Limits::default());
        let id = st.begin_window("batch", BTreeMap::new()).unwrap();
        let r = st.end_window(id, Some(10.0), Some(1000.0)).unwrap();
        assert_eq!(r.schema, "wattprint.run/v1");
        assert_eq!(r.energy.domains.len(), 1);
        assert!(r.energy.total_j >= 0.0);
        assert_eq!(r.work.tokens, Some(1000.0));
        assert_eq!(r.carbon.intensity_g_per_kwh, 360.0);
        assert!((r.carbon.operational_g - r.energy.total_j / 3.6e6 * 360.0).abs() < 1e-12);
        // The window's ranges come from the same engine steps as a run's.
        let (lo, hi) = (
            r.energy.total_j_low.unwrap(),
            r.energy.total_j_high.unwrap(),
        );
        assert!(lo <= r.energy.total_j && r.energy.total_j <= hi);
        let (glo, ghi) = (
            r.carbon.total_g_low.unwrap(),
            r.carbon.total_g_high.unwrap(),
        );
        assert!(glo <= r.carbon.total_g && r.carbon.total_g <= ghi);
        assert_eq!(r.labels.get("window").map(String::as_str), Some("batch"));
        if r.energy.total_j > 0.0 {
            assert!(r.metrics.joules_per_token.is_some());
            assert!(r.metrics.carbon_per_inference_g.is_some());
        }
        assert_eq!(st.end_window(id, None, None), Err(StateError::NoWindow(id)));
        assert_eq!(st.window_totals()["batch"].ended, 1);
        assert!(matches!(
            st.end_window(99, Some(-1.0), None),
            Err(StateError::BadInput(_))
        ));
    }

    #[test]
    fn open_windows_are_bounded() {
        let mut st = state(Limits {
            max_windows: 2,
            ..Limits::default()
        });
        st.begin_window("a", BTreeMap::new()).unwrap();
        st.begin_window("b", BTreeMap::new()).unwrap();
        assert_eq!(
            st.begin_window("c", BTreeMap::new()),
            Err(StateError::TooManyWindows(2))
        );
        assert_eq!(st.open_windows().len(), 2);
    }

    #[test]
    fn a_window_on_a_gpu_host_has_the_gpus_peak_and_no_why_null_note_for_carbon() {
        let mut st = state(Limits::default());
        st.set_gpus(vec![GpuDevice {
            domain: "gpu-0".into(),
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: None,
            power_limit_w: Some(700.0),
            mig_enabled: false,
            method: wattprint_core::Method::Counter,
            power_source: None,
            source: SensorSource::Nvml,
            pci_bus_id: None,
            mig_uuids: Vec::new(),
        }]);
        let id = st.begin_window("batch", BTreeMap::new()).unwrap();
        let r = st.end_window(id, Some(4.0), None).unwrap();
        assert!(
            r.metrics.peak_flops_per_watt.is_some(),
            "{:?}",
            r.metrics.notes.get("peak_flops_per_watt")
        );
        assert!(r.metrics.carbon_per_inference_g.is_some());
        assert!(!r.metrics.notes.contains_key("carbon_per_inference_g"));
        assert_eq!(r.carbon.intensity_g_per_kwh, 360.0);
        assert_eq!(r.labels.get("window").map(String::as_str), Some("batch"));
    }

    #[test]
    fn ended_window_names_are_bounded_and_the_rest_is_counted_in_other() {
        let mut st = state(Limits {
            max_window_names: 3,
            ..Limits::default()
        });
        for k in 0..10 {
            let id = st.begin_window(&format!("w{k}"), BTreeMap::new()).unwrap();
            st.end_window(id, None, None).unwrap();
        }
        // A name already kept stays its own series.
        let id = st.begin_window("w1", BTreeMap::new()).unwrap();
        st.end_window(id, None, None).unwrap();
        let names: Vec<&str> = st.window_totals().keys().map(String::as_str).collect();
        assert_eq!(names, vec![OVERFLOW_WINDOW, "w0", "w1", "w2"]);
        assert_eq!(st.window_totals()[OVERFLOW_WINDOW].ended, 7);
        assert_eq!(st.window_totals()["w1"].ended, 2);
        assert_eq!(st.losses().window_names_overflowed, 7);
        let text = crate::metrics::render(&st);
        let series = text
            .lines()
            .filter(|l| l.starts_with("wattprint_windows_ended_total{"))
            .count();
        assert_eq!(series, 4, "{text}");
    }

    #[test]
    fn nvidia_gpus_energy_is_split_by_process_and_other_gpus_stay_in_gpu() {
        use wattprint_core::{DomainKind, Method};
        use wattprint_sensors::fake::{domain, FakeGpuProcesses};
        use wattprint_sensors::{RawReading, ReadCadence, SensorInfo};
        // Two GPU counters: `gpu-0` (NVML, 200 W) and `amdgpu-0` (no process source, 50 W).
        let info = SensorInfo {
            source: "fake".into(),
            domains: vec![
                domain("gpu-0", DomainKind::Gpu, Method::Counter, true),
                domain("amdgpu-0", DomainKind::Gpu, Method::Counter, true),
            ],
            cadence: ReadCadence::Boundaries { guard_s: None },
            setup: "none".into(),
        };
        let gpus = FakeSensor::new(info, |t, out| {
            out[0] = RawReading::EnergyCounter {
                joules: 200.0 * t,
                range_j: None,
            };
            out[1] = RawReading::EnergyCounter {
                joules: 50.0 * t,
                range_j: None,
            };
            Ok(())
        });
        let meter = Meter::start(vec![Box::new(gpus)], MeterOptions::default());
        let mut st = AgentState::new(meter, 1000.0, 0.0, factor(), Limits::default());
        st.set_gpus(vec![GpuDevice {
            domain: "gpu-0".into(),
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: None,
            power_limit_w: Some(700.0),
            mig_enabled: false,
            method: Method::Counter,
            power_source: None,
            source: SensorSource::Nvml,
            pci_bus_id: None,
            mig_uuids: Vec::new(),
        }]);
        let svc = "system.slice/train.service";
        let mut tree = wattprint_sensors::cgroups::FakeCgroups::default();
        tree.set("", 0);
        tree.set(svc, 0);
        let procfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(procfs.path().join("100")).unwrap();
        std::fs::write(procfs.path().join("100/cgroup"), format!("0::/{svc}\n")).unwrap();
        let fake = FakeGpuProcesses::default();
        st.set_workloads(
            crate::workloads::Workloads::new(
                Box::new(tree),
                crate::workloads::WorkloadOptions::new(1.0),
            )
            .with_gpu_processes(Box::new(fake.clone()), procfs.path().to_path_buf()),
        );
        st.tick();
        // Only so the slice has a duration: the check is against the measured one.
        std::thread::sleep(std::time::Duration::from_millis(20));
        // PID 100 (train.service) 60 %, PID 300 (gone) 20 %: train gets 3/4 of gpu-0.
        fake.push(&[(0, 100, 60), (0, 300, 20)]);
        st.tick();
        let w = st.workloads().unwrap();
        let get = |c: &str, k: &str| {
            w.series()
                .into_iter()
                .find(|(l, _)| l.container == c && l.kind == k)
                .map(|(_, t)| t.clone())
                .unwrap()
        };
        let (train, gpu) = (get("train.service", "service"), get("", "gpu"));
        let n = st.samples().len();
        let dt = st.samples()[n - 1].t_s - st.samples()[n - 2].t_s;
        assert!(
            dt > 0.0 && train.gpu_energy_j > 0.0,
            "{train:?} over {dt} s"
        );
        // By hand: train 0.75 x 200 W x dt; gpu 0.25 x 200 W x dt + 50 W x dt.
        assert!(
            (train.gpu_energy_j - 150.0 * dt).abs() < 1e-9,
            "{train:?} over {dt} s"
        );
        assert_eq!(train.energy_j, train.gpu_energy_j);
        assert!(
            (gpu.energy_j - 100.0 * dt).abs() < 1e-9,
            "{gpu:?} over {dt} s"
        );
    }
}
