//! The request ledger: spans waiting for attribution, settling them against the samples, the
//! settled requests and their per-label totals, and what was lost on the way.
//!
//! Pure: no I/O, no clock, no lock. The samples, the horizon and the newest sample's time come
//! in as arguments, so tests drive it with synthetic figures and exact expected values.

mod spool;

use super::{Limits, Losses, Sample};
use crate::labels::{Interned, LabelSet, LabelTable};
use std::collections::{BTreeMap, HashMap, VecDeque};
use wattprint_core::requests::{self, RequestEnergy, RequestSummary, Slice, Span};

/// A span at most this long is attributed, s (a day: longer is a clock or unit error).
pub const MAX_SPAN_S: f64 = 86_400.0;
/// A span may start at most this long before the agent started, s.
pub const MAX_SPAN_PAST_S: f64 = 86_400.0;
/// Tokens of one request at most (10^8: a hundred times the longest context windows).
pub const MAX_SPAN_TOKENS: u64 = 100_000_000;
/// Refusals listed per batch at most (the rest are only counted).
pub const MAX_SPAN_REFUSALS: usize = 20;

/// Why one span of a batch was refused.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SpanRefusal {
    /// Position in the batch, from 0.
    pub index: usize,
    /// The field at fault.
    pub field: &'static str,
    pub error: String,
}

/// What became of one batch of reported spans.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanBatch {
    /// Spans queued for attribution (a late one counts if part of it still was).
    pub accepted: usize,
    /// Why refused spans were, the first [`MAX_SPAN_REFUSALS`] of them.
    pub refusals: Vec<SpanRefusal>,
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

/// A span waiting for attribution, with the energy settled to it so far.
struct Pending {
    span: Span,
    label: LabelSet,
    energy_j: f64,
    /// Set for spans the agent opened itself (the metering proxy), looked up by id.
    id: Option<u64>,
}

/// Where an identified request stands (`GET /v1/requests/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub enum RequestStatus<'a> {
    /// Ended, waiting for its energy to be settled.
    Pending {
        start_unix_s: f64,
        end_unix_s: f64,
    },
    Settled(&'a Settled),
}

/// A request whose attribution is final.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Settled {
    pub start_unix_s: f64,
    pub end_unix_s: f64,
    pub tokens: Option<u64>,
    pub energy_j: f64,
    pub carbon_g: f64,
    pub labels: BTreeMap<String, String>,
    /// The request id of spans the agent opened itself (the metering proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// Settled totals of one label set (monotonic counters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelTotals {
    pub requests: u64,
    pub tokens: u64,
    pub energy_j: f64,
    pub carbon_g: f64,
}

/// The request ledger. See the module docs.
pub struct RequestLedger {
    /// Unix time of the meter's t = 0, s: spans are reported in Unix seconds.
    unix_at_epoch_s: f64,
    /// Grid intensity the settled requests are charged at, gCO2e/kWh.
    intensity_g_per_kwh: f64,
    /// Power usage effectiveness applied before the intensity.
    pue: f64,
    limits: Limits,
    pending: VecDeque<Pending>,
    /// Meter time up to which energy is attributed, s.
    settled_until_s: f64,
    idle_j: f64,
    recent: VecDeque<Settled>,
    labels: LabelTable,
    totals: Vec<LabelTotals>,
    /// The span losses (the fields of OTLP and windows stay 0: the coordinator adds them).
    losses: Losses,
    spans_received: u64,
    /// Settled identified requests, by id, the oldest rotated out past
    /// `limits.max_recent_requests`.
    by_id: HashMap<u64, Settled>,
    id_order: VecDeque<u64>,
}

impl RequestLedger {
    /// An empty ledger. `unix_at_epoch_s` maps reported Unix times onto the meter's clock;
    /// requests are charged `intensity_g_per_kwh` x `pue` per kWh.
    pub fn new(
        unix_at_epoch_s: f64,
        intensity_g_per_kwh: f64,
        pue: f64,
        limits: Limits,
    ) -> RequestLedger {
        RequestLedger {
            unix_at_epoch_s,
            intensity_g_per_kwh,
            pue,
            labels: LabelTable::new(limits.max_label_sets),
            limits,
            pending: VecDeque::new(),
            settled_until_s: 0.0,
            idle_j: 0.0,
            recent: VecDeque::new(),
            totals: Vec::new(),
            losses: Losses::default(),
            spans_received: 0,
            by_id: HashMap::new(),
            id_order: VecDeque::new(),
        }
    }

    fn grams(&self, energy_j: f64) -> f64 {
        requests::grams(energy_j * self.pue, self.intensity_g_per_kwh)
    }

    fn unix_of(&self, t_s: f64) -> f64 {
        t_s + self.unix_at_epoch_s
    }

    /// Attribute the energy of `samples` (in time order) between the settled mark and
    /// `horizon_s` (meter time, s), and finalise the spans that ended by then.
    pub fn settle<'a>(&mut self, samples: impl IntoIterator<Item = &'a Sample>, horizon_s: f64) {
        if horizon_s <= self.settled_until_s {
            return;
        }
        let from = self.settled_until_s;
        let mut slices = Vec::new();
        for w in samples.into_iter().collect::<Vec<_>>().windows(2) {
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
        let settled = Settled {
            start_unix_s: self.unix_of(p.span.start_s),
            end_unix_s: self.unix_of(p.span.end_s),
            tokens: p.span.tokens,
            energy_j: p.energy_j,
            carbon_g,
            labels: self.labels.get(p.label).clone(),
            id: p.id,
        };
        if let Some(id) = p.id {
            self.by_id.insert(id, settled.clone());
            self.id_order.push_back(id);
            while self.id_order.len() > self.limits.max_recent_requests {
                if let Some(old) = self.id_order.pop_front() {
                    self.by_id.remove(&old);
                }
            }
        }
        self.recent.push_back(settled);
        while self.recent.len() > self.limits.max_recent_requests {
            self.recent.pop_front();
            self.losses.recent_rotated += 1;
        }
    }

    /// Why `r`, at `index` in its batch, cannot be attributed: the field and the reason (ranges
    /// relative to the agent's
    /// start and its newest sample at meter time `newest_s`; see [`MAX_SPAN_S`],
    /// [`MAX_SPAN_PAST_S`], [`MAX_SPAN_TOKENS`]).
    fn span_problem(&self, index: usize, r: &SpanReport, newest_s: f64) -> Option<SpanRefusal> {
        let refuse = |field, error| {
            Some(SpanRefusal {
                index,
                field,
                error,
            })
        };
        let start_s = r.start_unix_s - self.unix_at_epoch_s;
        let end_s = r.end_unix_s - self.unix_at_epoch_s;
        if !r.start_unix_s.is_finite() || start_s < -MAX_SPAN_PAST_S {
            return refuse(
                "start_unix_s",
                format!(
                    "{} is not a time within {MAX_SPAN_PAST_S} s before the agent started ({})",
                    r.start_unix_s, self.unix_at_epoch_s
                ),
            );
        }
        if !r.end_unix_s.is_finite() || end_s < start_s {
            return refuse(
                "end_unix_s",
                format!("{} is before start_unix_s or not a number", r.end_unix_s),
            );
        }
        if end_s > newest_s + self.limits.max_future_s {
            return refuse(
                "end_unix_s",
                format!(
                    "{} is more than {} s after the agent's newest sample: is the client's clock right?",
                    r.end_unix_s, self.limits.max_future_s
                ),
            );
        }
        if end_s - start_s > MAX_SPAN_S {
            return refuse(
                "end_unix_s",
                format!(
                    "the span lasts {} s, more than {MAX_SPAN_S} s",
                    end_s - start_s
                ),
            );
        }
        if r.tokens.is_some_and(|t| t > MAX_SPAN_TOKENS) {
            return refuse(
                "tokens",
                format!(
                    "{} tokens in one request: at most {MAX_SPAN_TOKENS}",
                    r.tokens.unwrap_or_default()
                ),
            );
        }
        None
    }

    /// Queue reported spans for attribution: how many were accepted, and why the first
    /// [`MAX_SPAN_REFUSALS`] refused ones were.
    /// `newest_s` is the meter time of the newest sample, s (0 before any).
    pub fn add_spans_checked(&mut self, reports: Vec<SpanReport>, newest_s: f64) -> SpanBatch {
        let mut accepted = 0;
        let mut refusals = Vec::new();
        for (index, r) in reports.into_iter().enumerate() {
            match self.add_one(index, r, None, newest_s) {
                Ok(()) => accepted += 1,
                Err(Some(refusal)) if refusals.len() < MAX_SPAN_REFUSALS => refusals.push(refusal),
                Err(_) => {}
            }
        }
        self.bound_pending();
        SpanBatch { accepted, refusals }
    }

    /// Queue one span the agent opened itself under `id` (looked up by [`request`](Self::request)
    /// once settled); refused like a reported span.
    pub fn add_identified(
        &mut self,
        id: u64,
        report: SpanReport,
        newest_s: f64,
    ) -> Result<(), SpanRefusal> {
        let r = self.add_one(0, report, Some(id), newest_s);
        self.bound_pending();
        match r {
            Ok(()) => Ok(()),
            Err(Some(refusal)) => Err(refusal),
            Err(None) => Err(SpanRefusal {
                index: 0,
                field: "start_unix_s",
                error: "the span ended before the agent's settled horizon (time it had already attributed): too late to attribute; a --settle-lag longer than the client's export delay avoids it".into(),
            }),
        }
    }

    /// Where the identified request `id` stands; `None` when unknown (never opened, still in
    /// flight, or rotated out).
    /// The settled request `id`, looked up without scanning the pending spans.
    pub fn settled(&self, id: u64) -> Option<&Settled> {
        self.by_id.get(&id)
    }

    pub fn request(&self, id: u64) -> Option<RequestStatus<'_>> {
        if let Some(s) = self.by_id.get(&id) {
            return Some(RequestStatus::Settled(s));
        }
        self.pending
            .iter()
            .find(|p| p.id == Some(id))
            .map(|p| RequestStatus::Pending {
                start_unix_s: self.unix_of(p.span.start_s),
                end_unix_s: self.unix_of(p.span.end_s),
            })
    }

    /// Queue one span: `Err(Some)` when refused as invalid, `Err(None)` when wholly late.
    fn add_one(
        &mut self,
        index: usize,
        r: SpanReport,
        id: Option<u64>,
        newest_s: f64,
    ) -> Result<(), Option<SpanRefusal>> {
        self.spans_received += 1;
        if let Some(refusal) = self.span_problem(index, &r, newest_s) {
            self.losses.spans_invalid += 1;
            return Err(Some(refusal));
        }
        let mut span = Span {
            start_s: r.start_unix_s - self.unix_at_epoch_s,
            end_s: r.end_unix_s - self.unix_at_epoch_s,
            tokens: r.tokens,
        };
        if span.start_s < self.settled_until_s {
            self.losses.spans_late += 1;
            let lost = self.settled_until_s.min(span.end_s) - span.start_s;
            self.losses.late_span_s += lost;
            if span.end_s <= self.settled_until_s {
                return Err(None);
            }
            // Keep the token rate: scale the tokens to the part still attributable.
            let full = span.end_s - span.start_s;
            let kept = span.end_s - self.settled_until_s;
            span.tokens = span.tokens.map(|t| (t as f64 * kept / full).round() as u64);
            span.start_s = self.settled_until_s;
        }
        let Interned {
            set: label,
            overflowed,
        } = self.labels.intern(&r.labels);
        if overflowed {
            self.losses.label_sets_overflowed += 1;
        }
        self.pending.push_back(Pending {
            span,
            label,
            energy_j: 0.0,
            id,
        });
        Ok(())
    }

    fn bound_pending(&mut self) {
        while self.pending.len() > self.limits.max_pending_spans {
            self.pending.pop_front();
            self.losses.spans_dropped += 1;
        }
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
        requests::summarize(&reqs, self.idle_j, self.intensity_g_per_kwh * self.pue)
    }

    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Settled> {
        self.recent.iter().rev().take(n)
    }

    pub fn label_totals(&self) -> impl Iterator<Item = (&BTreeMap<String, String>, &LabelTotals)> {
        self.totals
            .iter()
            .enumerate()
            .map(|(i, t)| (self.labels.get(LabelSet(i)), t))
    }

    pub fn idle_j(&self) -> f64 {
        self.idle_j
    }

    pub fn pending_spans(&self) -> usize {
        self.pending.len()
    }

    pub fn spans_received(&self) -> u64 {
        self.spans_received
    }

    /// Meter time up to which energy is attributed, s.
    pub fn settled_until_s(&self) -> f64 {
        self.settled_until_s
    }

    /// What the ledger lost or refused: the span fields of [`Losses`] (the OTLP and window
    /// fields are the coordinator's and stay 0 here).
    pub fn losses(&self) -> &Losses {
        &self.losses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger whose meter started at Unix 1000 s, charging 360 g/kWh at PUE 1.
    fn ledger(limits: Limits) -> RequestLedger {
        RequestLedger::new(1000.0, 360.0, 1.0, limits)
    }

    fn sample(t_s: f64, total_j: f64) -> Sample {
        Sample {
            t_s,
            total_j,
            power_w: vec![],
        }
    }

    /// Queue `reports` with the newest of `samples` as the present; how many were accepted.
    fn add(st: &mut RequestLedger, samples: &[Sample], reports: Vec<SpanReport>) -> usize {
        let newest_s = samples.last().map_or(0.0, |s| s.t_s);
        st.add_spans_checked(reports, newest_s).accepted
    }

    #[test]
    fn identified_spans_are_found_pending_then_settled_and_rotate_out() {
        let mut st = ledger(Limits {
            max_recent_requests: 2,
            ..Limits::default()
        });
        let samples = vec![sample(0.0, 0.0), sample(10.0, 1000.0)];
        for id in [7, 8, 9] {
            st.add_identified(id, span(1001.0, 1003.0, Some(10)), 10.0)
                .unwrap();
        }
        assert_eq!(
            st.request(7),
            Some(RequestStatus::Pending {
                start_unix_s: 1001.0,
                end_unix_s: 1003.0
            })
        );
        st.settle(&samples, 10.0);
        // Three spans share 2 s of 100 W: 200 J / 3 each.
        let Some(RequestStatus::Settled(s)) = st.request(9) else {
            panic!("9 not settled")
        };
        assert!((s.energy_j - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!((s.id, s.tokens), (Some(9), Some(10)));
        // Only the 2 most recent are kept by id.
        assert_eq!(st.request(7), None);
        assert!(st.request(8).is_some());
        // A span wholly behind the settled horizon is refused, not silently dropped.
        assert!(st
            .add_identified(10, span(1001.0, 1002.0, None), 10.0)
            .is_err());
        assert_eq!(st.request(10), None);
    }

    #[test]
    fn settled_spans_carry_their_share_and_idle_stays_apart() {
        let mut st = ledger(Limits::default());
        let samples = vec![sample(0.0, 0.0), sample(10.0, 1000.0)];
        let lab: BTreeMap<String, String> = [("model".to_string(), "m".to_string())].into();
        add(
            &mut st,
            &samples,
            vec![
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
            ],
        );
        st.settle(&samples, 10.0);
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
        let mut a = ledger(Limits::default());
        let mut b = ledger(Limits::default());
        let samples: Vec<Sample> = (0..=10)
            .map(|k| sample(k as f64, (k * k) as f64 * 10.0))
            .collect();
        for st in [&mut a, &mut b] {
            add(
                st,
                &samples,
                vec![SpanReport {
                    start_unix_s: 1001.5,
                    end_unix_s: 1007.25,
                    tokens: Some(10),
                    labels: BTreeMap::new(),
                }],
            );
        }
        a.settle(&samples, 10.0);
        for h in [2.0, 3.3, 5.0, 7.1, 10.0] {
            b.settle(&samples, h);
        }
        let (ja, jb) = (a.summary().attributed_j, b.summary().attributed_j);
        assert!((ja - jb).abs() < 1e-9, "{ja} vs {jb}");
        assert!((a.idle_j() - b.idle_j()).abs() < 1e-9);
        assert!((ja + a.idle_j() - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_late_span_is_counted_and_only_its_open_part_attributed() {
        let mut st = ledger(Limits::default());
        let samples = vec![sample(0.0, 0.0), sample(10.0, 1000.0)];
        st.settle(&samples, 5.0);
        add(
            &mut st,
            &samples,
            vec![
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
            ],
        );
        st.settle(&samples, 10.0);
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
        let mut st = ledger(Limits {
            max_pending_spans: 100,
            max_recent_requests: 10,
            ..Limits::default()
        });
        let mut samples = Vec::new();
        let spans: Vec<SpanReport> = (0..1000)
            .map(|k| SpanReport {
                start_unix_s: 1000.0 + k as f64 * 0.001,
                end_unix_s: 1000.5 + k as f64 * 0.001,
                tokens: None,
                labels: BTreeMap::new(),
            })
            .collect();
        assert_eq!(add(&mut st, &samples, spans), 1000);
        assert_eq!(st.pending_spans(), 100);
        assert_eq!(st.losses().spans_dropped, 900);
        samples.push(sample(0.0, 0.0));
        samples.push(sample(10.0, 10.0));
        st.settle(&samples, 10.0);
        assert_eq!(st.recent(usize::MAX).count(), 10);
        assert_eq!(st.losses().recent_rotated, 90);
        let (_, t) = st.label_totals().next().unwrap();
        assert_eq!(t.requests, 100);
    }

    #[test]
    fn invalid_spans_are_refused_and_counted() {
        let mut st = ledger(Limits::default());
        let samples: Vec<Sample> = Vec::new();
        let n = add(
            &mut st,
            &samples,
            vec![
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
            ],
        );
        assert_eq!(n, 0);
        assert_eq!(st.losses().spans_invalid, 2);
        // Ending far after the newest sample (t = 0, Unix 1000): refused, not buffered forever.
        let n = add(
            &mut st,
            &samples,
            vec![
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
            ],
        );
        assert_eq!(n, 1);
        assert_eq!(st.losses().spans_invalid, 3);
    }

    fn span(start_unix_s: f64, end_unix_s: f64, tokens: Option<u64>) -> SpanReport {
        SpanReport {
            start_unix_s,
            end_unix_s,
            tokens,
            labels: BTreeMap::new(),
        }
    }

    /// 100 W for 4 s, then 200 W for 4 s.
    fn two_steps() -> Vec<Sample> {
        vec![sample(0.0, 0.0), sample(4.0, 400.0), sample(8.0, 1200.0)]
    }

    #[test]
    fn settling_gives_exact_shares_idle_and_grams() {
        // Intensity 360 g/kWh at PUE 1.5; spans at t = 0..4 and 2..6 (Unix 1000 is t = 0).
        let mut st = RequestLedger::new(1000.0, 360.0, 1.5, Limits::default());
        let samples = two_steps();
        assert_eq!(
            add(
                &mut st,
                &samples,
                vec![span(1000.0, 1004.0, None), span(1002.0, 1006.0, None)]
            ),
            2
        );
        st.settle(&samples, 8.0);
        // 0..2: A alone, 200 J; 2..4: both, 100 J each; 4..6: B alone at 200 W, 400 J;
        // 6..8: no request, 400 J idle.
        let recent: Vec<&Settled> = st.recent(usize::MAX).collect();
        assert_eq!(recent.len(), 2);
        let (b, a) = (recent[0], recent[1]);
        assert_eq!(
            (a.start_unix_s, a.end_unix_s, a.energy_j),
            (1000.0, 1004.0, 300.0)
        );
        assert_eq!(
            (b.start_unix_s, b.end_unix_s, b.energy_j),
            (1002.0, 1006.0, 500.0)
        );
        // Grams of the facility energy (x PUE) at the intensity.
        assert_eq!(a.carbon_g, 300.0 * 1.5 / 3.6e6 * 360.0);
        assert_eq!(b.carbon_g, 500.0 * 1.5 / 3.6e6 * 360.0);
        assert_eq!(st.idle_j(), 400.0);
        let s = st.summary();
        assert_eq!((s.requests, s.tokens), (2, 0));
        assert_eq!((s.attributed_j, s.idle_j), (800.0, 400.0));
        assert_eq!(s.intensity_g_per_kwh, 540.0);
        assert_eq!(s.attributed_g, 800.0 / 3.6e6 * 540.0);
        assert_eq!(s.idle_g, 400.0 / 3.6e6 * 540.0);
        let (labels, t) = st.label_totals().next().unwrap();
        assert!(labels.is_empty());
        assert_eq!(
            t,
            &LabelTotals {
                requests: 2,
                tokens: 0,
                energy_j: 800.0,
                carbon_g: a.carbon_g + b.carbon_g,
            }
        );
        assert_eq!(st.losses(), &Losses::default());
        assert_eq!(
            (
                st.pending_spans(),
                st.spans_received(),
                st.settled_until_s()
            ),
            (0, 2, 8.0)
        );
    }

    #[test]
    fn a_span_open_at_the_horizon_waits_and_ends_with_the_same_share() {
        let mut st = ledger(Limits::default());
        let samples = two_steps();
        add(
            &mut st,
            &samples,
            vec![span(1000.0, 1004.0, None), span(1002.0, 1006.0, None)],
        );
        st.settle(&samples, 3.0);
        assert_eq!((st.pending_spans(), st.summary().requests), (2, 0));
        assert_eq!(st.idle_j(), 0.0);
        // A horizon that does not move settles nothing more.
        st.settle(&samples, 3.0);
        st.settle(&samples, 8.0);
        let j: Vec<f64> = st.recent(usize::MAX).map(|s| s.energy_j).collect();
        assert_eq!(j, vec![500.0, 300.0]);
        assert_eq!(st.idle_j(), 400.0);
    }

    #[test]
    fn declared_tokens_weight_the_shares_by_token_rate() {
        let mut st = ledger(Limits::default());
        let samples = vec![sample(0.0, 0.0), sample(4.0, 400.0)];
        add(
            &mut st,
            &samples,
            vec![
                span(1000.0, 1004.0, Some(30)),
                span(1000.0, 1004.0, Some(10)),
            ],
        );
        st.settle(&samples, 4.0);
        let j: Vec<f64> = st.recent(usize::MAX).map(|s| s.energy_j).collect();
        assert_eq!(j, vec![100.0, 300.0]);
        let s = st.summary();
        assert_eq!(s.tokens, 40);
        assert_eq!(s.overall_joules_per_token, Some(10.0));
    }

    #[test]
    fn every_loss_is_counted_exactly() {
        let mut st = ledger(Limits {
            max_pending_spans: 1,
            max_label_sets: 1,
            ..Limits::default()
        });
        let samples: Vec<Sample> = (0..=10)
            .map(|k| sample(k as f64, k as f64 * 100.0))
            .collect();
        st.settle(&samples, 5.0);
        let lab =
            |v: &str| -> BTreeMap<String, String> { [("m".to_string(), v.to_string())].into() };
        let batch = st.add_spans_checked(
            vec![
                // Late: 2 s of it were settled already.
                SpanReport {
                    labels: lab("a"),
                    ..span(1003.0, 1007.0, None)
                },
                // A second label set beyond max_label_sets: folded into the overflow set.
                SpanReport {
                    labels: lab("b"),
                    ..span(1006.0, 1009.0, None)
                },
                // Ends before it starts.
                span(1009.0, 1008.0, None),
            ],
            10.0,
        );
        assert_eq!(batch.accepted, 2);
        assert_eq!(batch.refusals.len(), 1);
        assert_eq!(
            (batch.refusals[0].index, batch.refusals[0].field),
            (2, "end_unix_s")
        );
        // Only one pending span is kept: the oldest is dropped.
        assert_eq!(
            st.losses(),
            &Losses {
                spans_dropped: 1,
                spans_invalid: 1,
                spans_late: 1,
                late_span_s: 2.0,
                recent_rotated: 0,
                label_sets_overflowed: 1,
                ..Losses::default()
            }
        );
        assert_eq!(st.pending_spans(), 1);
        st.settle(&samples, 10.0);
        let (labels, t) = st.label_totals().next().unwrap();
        assert_eq!(labels, &lab("a"));
        assert_eq!(t.requests, 0);
        let (labels, t) = st.label_totals().nth(1).unwrap();
        assert_eq!(labels.get("overflow").map(String::as_str), Some("true"));
        assert_eq!((t.requests, t.energy_j), (1, 300.0));
    }
}
