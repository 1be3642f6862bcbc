//! The request ledger: spans waiting for attribution, settling them against the samples, the
//! settled requests and their per-label totals, and what was lost on the way.

use super::AgentState;
use crate::labels::LabelSet;
use std::collections::{BTreeMap, VecDeque};
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

pub(super) struct Pending {
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

impl AgentState {
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

    pub fn settled_until_unix_s(&self) -> f64 {
        self.unix_of(self.settled_until_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{push, state};
    use crate::state::Limits;

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
}
