//! The agent's state: the meter, open windows, request spans waiting for attribution, settled
//! per-label counters, recent samples for the dashboard. Synchronous and clock-injected (every
//! method takes the times it needs), so tests drive it without a server.
//!
//! Spans are reported in Unix seconds and mapped onto the meter's monotonic timeline with the
//! offset measured at start. Attribution is *settled* up to a horizon that trails the newest
//! sample by `settle_lag_s`, so that spans reported a little after they ended still share
//! their slices with their neighbours; a span arriving after its time was settled is *late*
//! and only the unsettled part of it is attributed (counted, never silent).

use crate::labels::{LabelSet, LabelTable};
use std::collections::{BTreeMap, HashMap, VecDeque};
use wattprint_core::report::{RunReport, Work};
use wattprint_core::requests::{self, RequestEnergy, RequestSummary, Slice, Span};
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

/// A span at most this long is attributed, s (a day: longer is a clock or unit error).
pub const MAX_SPAN_S: f64 = 86_400.0;
/// A span may start at most this long before the agent started, s.
pub const MAX_SPAN_PAST_S: f64 = 86_400.0;
/// Tokens of one request at most (10^8: a hundred times the longest context windows).
pub const MAX_SPAN_TOKENS: u64 = 100_000_000;
/// Refusals listed per batch at most (the rest are only counted).
pub const MAX_SPAN_REFUSALS: usize = 20;
/// Work counts of a window at most (10^18 tokens or inferences: beyond any deployment).
pub const MAX_WINDOW_COUNT: f64 = 1e18;

/// Why one span of a batch was refused.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SpanRefusal {
    /// Position in the batch, from 0.
    pub index: usize,
    /// The field at fault.
    pub field: &'static str,
    pub error: String,
}

/// One request span as reported (Unix seconds).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpanReport {
    pub start_unix_s: f64,
    pub end_unix_s: f64,
    #[serde(default)]
    pub tokens: Option<u64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

struct Pending {
    span: Span,
    label: LabelSet,
    energy_j: f64,
}

/// A request whose attribution is final.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settled {
    pub start_unix_s: f64,
    pub end_unix_s: f64,
    pub tokens: Option<u64>,
    pub energy_j: f64,
    pub carbon_g: f64,
    pub labels: BTreeMap<String, String>,
}

/// Settled totals of one label set (monotonic counters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelTotals {
    pub requests: u64,
    pub tokens: u64,
    pub energy_j: f64,
    pub carbon_g: f64,
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

struct OpenWindow {
    name: String,
    labels: BTreeMap<String, String>,
    begin_unix_s: f64,
    begin_t_s: f64,
    begin_cum_j: Vec<f64>,
    /// The meter's CPU time when the window began, s.
    begin_meter_cpu_s: f64,
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

/// The series that ended windows of names beyond `Limits::max_window_names` are added to.
pub const OVERFLOW_WINDOW: &str = "other";

/// Totals of the ended windows of one name (monotonic counters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowTotals {
    pub ended: u64,
    pub energy_j: f64,
    pub carbon_g: f64,
}

/// One open window's energy so far.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenWindowEnergy {
    pub id: u64,
    pub name: String,
    pub begin_unix_s: f64,
    pub energy_j: f64,
    pub carbon_g: f64,
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
        self.cumulative_j = snap.cumulative.iter().map(|j| j.0).collect();
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

    /// Attribute the energy between the settled mark and `horizon_s`, and finalise the spans
    /// that ended by then.
    pub fn settle(&mut self, horizon_s: f64) {
        if horizon_s <= self.settled_until_s {
            return;
        }
        let from = self.settled_until_s;
        let mut slices = Vec::new();
        for w in self.samples.iter().collect::<Vec<_>>().windows(2) {
            let (a, b) = (w[0], w[1]);
            let (s, e) = (a.t_s.max(from), b.t_s.min(horizon_s));
            if e <= s || b.t_s <= a.t_s {
                continue;
            }
            let frac = (e - s) / (b.t_s - a.t_s);
            slices.push(Slice {
                start_s: s,
                end_s: e,
                energy_j: (b.total_j - a.total_j) * frac,
            });
        }
        let spans: Vec<Span> = self.pending.iter().map(|p| p.span).collect();
        let r = requests::attribute(&slices, &spans);
        self.idle_j += r.idle_j;
        for (p, j) in self.pending.iter_mut().zip(&r.span_j) {
            p.energy_j += j;
        }
        self.settled_until_s = horizon_s;
        let mut keep = VecDeque::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            if p.span.end_s <= horizon_s {
                self.finalise(p);
            } else {
                keep.push_back(p);
            }
        }
        self.pending = keep;
    }

    fn finalise(&mut self, p: Pending) {
        let carbon_g = self.grams(p.energy_j);
        let idx = p.label.0;
        if self.totals.len() <= idx {
            self.totals.resize(idx + 1, LabelTotals::default());
        }
        let t = &mut self.totals[idx];
        t.requests += 1;
        t.tokens += p.span.tokens.unwrap_or(0);
        t.energy_j += p.energy_j;
        t.carbon_g += carbon_g;
        self.recent.push_back(Settled {
            start_unix_s: self.unix_of(p.span.start_s),
            end_unix_s: self.unix_of(p.span.end_s),
            tokens: p.span.tokens,
            energy_j: p.energy_j,
            carbon_g,
            labels: self.labels.get(p.label).clone(),
        });
        while self.recent.len() > self.limits.max_recent_requests {
            self.recent.pop_front();
            self.losses.recent_rotated += 1;
        }
    }

    /// Queue reported spans for attribution. Returns how many were accepted.
    pub fn add_spans(&mut self, reports: Vec<SpanReport>) -> usize {
        self.add_spans_checked(reports).0
    }

    /// Why `r` cannot be attributed: the field and the reason (ranges relative to the agent's
    /// start and its newest sample; see [`MAX_SPAN_S`], [`MAX_SPAN_PAST_S`],
    /// [`MAX_SPAN_TOKENS`]).
    fn span_problem(&self, r: &SpanReport) -> Option<(&'static str, String)> {
        let newest_s = self.samples.back().map_or(0.0, |s| s.t_s);
        let start_s = r.start_unix_s - self.unix_at_epoch_s;
        let end_s = r.end_unix_s - self.unix_at_epoch_s;
        if !r.start_unix_s.is_finite() || start_s < -MAX_SPAN_PAST_S {
            return Some((
                "start_unix_s",
                format!(
                    "{} is not a time within {MAX_SPAN_PAST_S} s before the agent started ({})",
                    r.start_unix_s, self.unix_at_epoch_s
                ),
            ));
        }
        if !r.end_unix_s.is_finite() || end_s < start_s {
            return Some((
                "end_unix_s",
                format!("{} is before start_unix_s or not a number", r.end_unix_s),
            ));
        }
        if end_s > newest_s + self.limits.max_future_s {
            return Some((
                "end_unix_s",
                format!(
                    "{} is more than {} s after the agent's newest sample: is the client's clock right?",
                    r.end_unix_s, self.limits.max_future_s
                ),
            ));
        }
        if end_s - start_s > MAX_SPAN_S {
            return Some((
                "end_unix_s",
                format!(
                    "the span lasts {} s, more than {MAX_SPAN_S} s",
                    end_s - start_s
                ),
            ));
        }
        if r.tokens.is_some_and(|t| t > MAX_SPAN_TOKENS) {
            return Some((
                "tokens",
                format!(
                    "{} tokens in one request: at most {MAX_SPAN_TOKENS}",
                    r.tokens.unwrap_or_default()
                ),
            ));
        }
        None
    }

    /// Queue reported spans for attribution: how many were accepted, and why the first
    /// [`MAX_SPAN_REFUSALS`] refused ones were (index in `reports`, field, reason).
    pub fn add_spans_checked(&mut self, reports: Vec<SpanReport>) -> (usize, Vec<SpanRefusal>) {
        let mut accepted = 0;
        let mut refusals = Vec::new();
        for (index, r) in reports.into_iter().enumerate() {
            self.spans_received += 1;
            if let Some((field, error)) = self.span_problem(&r) {
                self.losses.spans_invalid += 1;
                if refusals.len() < MAX_SPAN_REFUSALS {
                    refusals.push(SpanRefusal {
                        index,
                        field,
                        error,
                    });
                }
                continue;
            }
            let span = Span {
                start_s: r.start_unix_s - self.unix_at_epoch_s,
                end_s: r.end_unix_s - self.unix_at_epoch_s,
                tokens: r.tokens,
            };
            let mut span = span;
            if span.start_s < self.settled_until_s {
                self.losses.spans_late += 1;
                let lost = self.settled_until_s.min(span.end_s) - span.start_s;
                self.losses.late_span_s += lost;
                if span.end_s <= self.settled_until_s {
                    continue;
                }
                // Keep the token rate: scale the tokens to the part still attributable.
                let full = span.end_s - span.start_s;
                let kept = span.end_s - self.settled_until_s;
                span.tokens = span.tokens.map(|t| (t as f64 * kept / full).round() as u64);
                span.start_s = self.settled_until_s;
            }
            let (label, overflowed) = self.labels.intern(&r.labels);
            if overflowed {
                self.losses.label_sets_overflowed += 1;
            }
            self.pending.push_back(Pending {
                span,
                label,
                energy_j: 0.0,
            });
            accepted += 1;
        }
        while self.pending.len() > self.limits.max_pending_spans {
            self.pending.pop_front();
            self.losses.spans_dropped += 1;
        }
        (accepted, refusals)
    }

    /// Open a window.
    pub fn begin_window(
        &mut self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<u64, StateError> {
        if self.windows.len() >= self.limits.max_windows {
            return Err(StateError::TooManyWindows(self.windows.len()));
        }
        let id: WindowId = self.meter.begin(name);
        let snap = self.meter.snapshot();
        self.windows.insert(
            id.0,
            OpenWindow {
                name: name.to_string(),
                labels,
                begin_unix_s: self.unix_of(snap.t_s),
                begin_t_s: snap.t_s,
                begin_cum_j: snap.cumulative.iter().map(|j| j.0).collect(),
                begin_meter_cpu_s: self.meter.cpu_s(),
            },
        );
        Ok(id.0)
    }

    /// Close a window and build its report.
    pub fn end_window(
        &mut self,
        id: u64,
        inferences: Option<f64>,
        tokens: Option<f64>,
    ) -> Result<RunReport, StateError> {
        for (what, v) in [("inferences", inferences), ("tokens", tokens)] {
            if let Some(v) = v {
                if !v.is_finite() || !(0.0..=MAX_WINDOW_COUNT).contains(&v) {
                    return Err(StateError::BadInput(format!(
                        "{what} = {v}: give a count from 0 to {MAX_WINDOW_COUNT:e}"
                    )));
                }
            }
        }
        let open = self.windows.remove(&id).ok_or(StateError::NoWindow(id))?;
        let e = self
            .meter
            .end(WindowId(id))
            .map_err(|_| StateError::NoWindow(id))?;
        let report = self.window_report(id, &open, &e, inferences, tokens);
        let name = if self.window_totals.contains_key(&open.name)
            || self.window_totals.len() < self.limits.max_window_names
        {
            open.name
        } else {
            self.losses.window_names_overflowed += 1;
            OVERFLOW_WINDOW.to_string()
        };
        let entry = self.window_totals.entry(name).or_default();
        entry.ended += 1;
        entry.energy_j += report.energy.total_j;
        entry.carbon_g += report.carbon.total_g;
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
    ) -> RunReport {
        let inputs = ReportInputs {
            id: format!("window-{id}"),
            started_at: rfc3339_utc_ms(open.begin_unix_s),
            duration_s: (e.end_t_s - open.begin_t_s).max(0.0),
            domains: self.domains.clone(),
            joules: e.per_domain_j(),
            integration_err_j: e.integration_err_j.clone(),
            idle_w: vec![None; self.domains.len()],
            gaps: clip_gaps(&self.meter.gaps(), open.begin_t_s, e.end_t_s),
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

    /// Energy and carbon so far of each open window: (id, name, begin unix s, J, g).
    pub fn open_windows(&self) -> Vec<OpenWindowEnergy> {
        let mut v: Vec<_> = self
            .windows
            .iter()
            .map(|(id, w)| {
                let j: f64 = self
                    .domains
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.counted_in_total)
                    .map(|(k, _)| {
                        self.cumulative_j.get(k).copied().unwrap_or(0.0)
                            - w.begin_cum_j.get(k).copied().unwrap_or(0.0)
                    })
                    .sum();
                OpenWindowEnergy {
                    id: *id,
                    name: w.name.clone(),
                    begin_unix_s: w.begin_unix_s,
                    energy_j: j,
                    carbon_g: self.grams(j),
                }
            })
            .collect();
        v.sort_by_key(|x| x.id);
        v
    }

    /// Summary of the attributed requests still in the recent list, and idle energy.
    pub fn summary(&self) -> RequestSummary {
        let reqs: Vec<RequestEnergy> = self
            .recent
            .iter()
            .map(|s| RequestEnergy {
                energy_j: s.energy_j,
                tokens: s.tokens,
            })
            .collect();
        requests::summarize(
            &reqs,
            self.idle_j,
            self.carbon.intensity_g_per_kwh * self.pue,
        )
    }

    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Settled> {
        self.recent.iter().rev().take(n)
    }

    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    pub fn cumulative_j(&self) -> &[f64] {
        &self.cumulative_j
    }

    pub fn label_totals(&self) -> impl Iterator<Item = (&BTreeMap<String, String>, &LabelTotals)> {
        self.totals
            .iter()
            .enumerate()
            .map(|(i, t)| (self.labels.get(LabelSet(i)), t))
    }

    pub fn window_totals(&self) -> &BTreeMap<String, WindowTotals> {
        &self.window_totals
    }

    pub fn idle_j(&self) -> f64 {
        self.idle_j
    }

    /// Count a failed OTLP push (exported as `wattprint_otlp_push_failures_total`).
    pub fn record_otlp_failure(&mut self) {
        self.losses.otlp_push_failures += 1;
    }

    pub fn losses(&self) -> &Losses {
        &self.losses
    }

    pub fn pending_spans(&self) -> usize {
        self.pending.len()
    }

    pub fn spans_received(&self) -> u64 {
        self.spans_received
    }

    pub fn settled_until_unix_s(&self) -> f64 {
        self.unix_of(self.settled_until_s)
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

    /// Push a synthetic sample (the meter's real clock is not used by `settle`).
    fn push(st: &mut AgentState, t_s: f64, total_j: f64) {
        st.samples.push_back(Sample {
            t_s,
            total_j,
            power_w: vec![],
        });
    }

    #[test]
    fn settled_spans_carry_their_share_and_idle_stays_apart() {
        let mut st = state(Limits::default());
        push(&mut st, 0.0, 0.0);
        push(&mut st, 10.0, 1000.0);
        let lab: BTreeMap<String, String> = [("model".to_string(), "m".to_string())].into();
        st.add_spans(vec![
            SpanReport {
                start_unix_s: 1000.0,
                end_unix_s: 1002.0,
                tokens: None,
                labels: lab.clone(),
            },
            SpanReport {
                start_unix_s: 1001.0,
                end_unix_s: 1002.0,
                tokens: None,
                labels: lab.clone(),
            },
        ]);
        st.settle(10.0);
        let s = st.summary();
        assert_eq!(s.requests, 2);
        assert!((s.attributed_j - 200.0).abs() < 1e-9);
        assert!((st.idle_j() - 800.0).abs() < 1e-9);
        let (l, t) = st.label_totals().next().unwrap();
        assert_eq!(l, &lab);
        assert_eq!(t.requests, 2);
        assert!((t.energy_j - 200.0).abs() < 1e-9);
        // 200 J = 1/18000 kWh x 360 g = 0.02 g
        assert!((t.carbon_g - 0.02).abs() < 1e-12);
    }

    #[test]
    fn settling_in_steps_gives_the_same_energy_as_at_once() {
        let mut a = state(Limits::default());
        let mut b = state(Limits::default());
        for st in [&mut a, &mut b] {
            for k in 0..=10 {
                push(st, k as f64, (k * k) as f64 * 10.0);
            }
            st.add_spans(vec![SpanReport {
                start_unix_s: 1001.5,
                end_unix_s: 1007.25,
                tokens: Some(10),
                labels: BTreeMap::new(),
            }]);
        }
        a.settle(10.0);
        for h in [2.0, 3.3, 5.0, 7.1, 10.0] {
            b.settle(h);
        }
        let (ja, jb) = (a.summary().attributed_j, b.summary().attributed_j);
        assert!((ja - jb).abs() < 1e-9, "{ja} vs {jb}");
        assert!((a.idle_j() - b.idle_j()).abs() < 1e-9);
        assert!((ja + a.idle_j() - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_late_span_is_counted_and_only_its_open_part_attributed() {
        let mut st = state(Limits::default());
        push(&mut st, 0.0, 0.0);
        push(&mut st, 10.0, 1000.0);
        st.settle(5.0);
        st.add_spans(vec![
            SpanReport {
                start_unix_s: 1003.0,
                end_unix_s: 1007.0,
                tokens: Some(40),
                labels: BTreeMap::new(),
            },
            SpanReport {
                start_unix_s: 1001.0,
                end_unix_s: 1002.0,
                tokens: None,
                labels: BTreeMap::new(),
            },
        ]);
        st.settle(10.0);
        let l = st.losses();
        assert_eq!(l.spans_late, 2);
        assert!((l.late_span_s - 3.0).abs() < 1e-9);
        let s = st.summary();
        assert_eq!(s.requests, 1);
        assert_eq!(s.tokens, 20);
        assert!((s.attributed_j - 200.0).abs() < 1e-9);
    }

    #[test]
    fn a_flood_of_spans_is_bounded_and_the_drop_counted() {
        let mut st = state(Limits {
            max_pending_spans: 100,
            max_recent_requests: 10,
            ..Limits::default()
        });
        let spans: Vec<SpanReport> = (0..1000)
            .map(|k| SpanReport {
                start_unix_s: 1000.0 + k as f64 * 0.001,
                end_unix_s: 1000.5 + k as f64 * 0.001,
                tokens: None,
                labels: BTreeMap::new(),
            })
            .collect();
        assert_eq!(st.add_spans(spans), 1000);
        assert_eq!(st.pending_spans(), 100);
        assert_eq!(st.losses().spans_dropped, 900);
        push(&mut st, 0.0, 0.0);
        push(&mut st, 10.0, 10.0);
        st.settle(10.0);
        assert_eq!(st.recent(usize::MAX).count(), 10);
        assert_eq!(st.losses().recent_rotated, 90);
        let (_, t) = st.label_totals().next().unwrap();
        assert_eq!(t.requests, 100);
    }

    #[test]
    fn invalid_spans_are_refused_and_counted() {
        let mut st = state(Limits::default());
        let n = st.add_spans(vec![
            SpanReport {
                start_unix_s: 5.0,
                end_unix_s: 4.0,
                tokens: None,
                labels: BTreeMap::new(),
            },
            SpanReport {
                start_unix_s: f64::NAN,
                end_unix_s: 4.0,
                tokens: None,
                labels: BTreeMap::new(),
            },
        ]);
        assert_eq!(n, 0);
        assert_eq!(st.losses().spans_invalid, 2);
        // Ending far after the newest sample (t = 0, Unix 1000): refused, not buffered forever.
        let n = st.add_spans(vec![
            SpanReport {
                start_unix_s: 1000.0,
                end_unix_s: 1000.0 + 61.0,
                tokens: None,
                labels: BTreeMap::new(),
            },
            SpanReport {
                start_unix_s: 1000.0,
                end_unix_s: 1000.0 + 59.0,
                tokens: None,
                labels: BTreeMap::new(),
            },
        ]);
        assert_eq!(n, 1);
        assert_eq!(st.losses().spans_invalid, 3);
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
            source: "nvml".into(),
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
