//! Per-request attribution: the energy of each time slice split between the requests active in
//! it, and idle energy reported apart (never spread).
//!
//! Inputs are *slices* (contiguous or not: `[start_s, end_s)` with the energy measured in it;
//! power is taken as constant within a slice) and *spans* (`[start_s, end_s)` of one request,
//! with its token count when known). The timeline is cut at every slice and span boundary; in
//! each elementary interval the active spans share the interval's energy:
//!
//! - **by tokens** when every active span declares a positive token count: a span's weight is
//!   its token rate (`tokens / duration`), i.e. the tokens it produced in the interval assuming
//!   a uniform rate over the span;
//! - **evenly** otherwise (one active span without tokens makes the interval even).
//!
//! An interval with no active span is *idle*: its energy goes to `idle_j`, not to any request.
//! Time outside every slice has no measured energy: spans there get nothing from it.
//! Energy is conserved: `Σ span energy + idle_j = Σ slice energy` (up to rounding).
//!
//! The sweep costs O((slices + spans) log(slices + spans)): two running integrals
//! (energy per unit token-rate, and energy per active span) are sampled at each span boundary,
//! so a span's energy is a difference of two samples, whatever the concurrency.

use crate::stats;
use crate::units::JOULES_PER_KWH;
use serde::{Deserialize, Serialize};

/// One measured slice of time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slice {
    pub start_s: f64,
    pub end_s: f64,
    /// Energy measured over the slice (counted domains), J.
    pub energy_j: f64,
}

/// One request's time span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
    /// Tokens the request produced (or processed), when declared.
    pub tokens: Option<u64>,
}

impl Span {
    /// True when the span can be attributed: finite times and `end_s >= start_s`.
    pub fn is_valid(&self) -> bool {
        self.start_s.is_finite() && self.end_s.is_finite() && self.end_s >= self.start_s
    }

    fn token_rate(&self) -> Option<f64> {
        let d = self.end_s - self.start_s;
        match self.tokens {
            Some(t) if t > 0 && d > 0.0 => Some(t as f64 / d),
            _ => None,
        }
    }
}

/// The result of attributing slices to spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributed {
    /// Energy of each span, in the order given, J (0 for an invalid span).
    pub span_j: Vec<f64>,
    /// Energy of intervals inside slices where no span was active, J.
    pub idle_j: f64,
    /// Sum of the slices' energy, J.
    pub total_j: f64,
    /// Spans skipped as invalid (non-finite times, or end before start).
    pub invalid_spans: usize,
}

impl Attributed {
    /// Energy given to spans, J.
    pub fn attributed_j(&self) -> f64 {
        self.span_j.iter().sum()
    }
}

/// Attribute the slices' energy to the spans. Slices with a non-finite or negative energy, or
/// a non-positive or non-finite duration, are ignored (their energy is unknown); overlapping
/// slices both count.
pub fn attribute(slices: &[Slice], spans: &[Span]) -> Attributed {
    // Events: (time, kind, index). Kinds sort so that at equal times a slice ends before one
    // starts, and a span ends before one starts (half-open intervals).
    #[derive(Clone, Copy)]
    enum Ev {
        SliceEnd(u32),
        SpanEnd(u32),
        SliceStart(u32),
        SpanStart(u32),
    }
    fn order(e: &Ev) -> u8 {
        match e {
            Ev::SliceEnd(_) => 0,
            Ev::SpanEnd(_) => 1,
            Ev::SliceStart(_) => 2,
            Ev::SpanStart(_) => 3,
        }
    }
    let mut out = Attributed {
        span_j: vec![0.0; spans.len()],
        ..Default::default()
    };
    let mut events: Vec<(f64, Ev)> = Vec::with_capacity(2 * (slices.len() + spans.len()));
    for (i, s) in slices.iter().enumerate() {
        let d = s.end_s - s.start_s;
        if s.start_s.is_finite()
            && s.end_s.is_finite()
            && d > 0.0
            && s.energy_j.is_finite()
            && s.energy_j >= 0.0
        {
            out.total_j += s.energy_j;
            events.push((s.start_s, Ev::SliceStart(i as u32)));
            events.push((s.end_s, Ev::SliceEnd(i as u32)));
        }
    }
    for (i, s) in spans.iter().enumerate() {
        if !s.is_valid() {
            out.invalid_spans += 1;
            continue;
        }
        if s.end_s > s.start_s {
            events.push((s.start_s, Ev::SpanStart(i as u32)));
            events.push((s.end_s, Ev::SpanEnd(i as u32)));
        }
    }
    events.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(order(&a.1).cmp(&order(&b.1))));

    // Running state.
    let mut power_w = 0.0_f64; // sum over open slices of energy / duration
    let mut open_slices = 0usize;
    let mut active = 0usize; // active spans
    let mut active_untokened = 0usize; // active spans without a usable token rate
    let mut rate_sum = 0.0_f64; // Σ token rates of active tokened spans
    let mut g_tok = 0.0_f64; // ∫ p / rate_sum over token-mode intervals
    let mut g_even = 0.0_f64; // ∫ p / active over even-mode intervals
                              // Per span: the integrals at its start.
    let mut at_start: Vec<(f64, f64)> = vec![(0.0, 0.0); spans.len()];
    let mut t_prev = f64::NEG_INFINITY;
    for (t, ev) in events {
        if t > t_prev && open_slices > 0 {
            let e = power_w * (t - t_prev);
            if active == 0 {
                out.idle_j += e;
            } else if active_untokened == 0 && rate_sum > 0.0 {
                g_tok += e / rate_sum;
            } else {
                g_even += e / active as f64;
            }
        }
        t_prev = t;
        match ev {
            Ev::SliceStart(i) => {
                let s = &slices[i as usize];
                open_slices += 1;
                power_w += s.energy_j / (s.end_s - s.start_s);
            }
            Ev::SliceEnd(i) => {
                let s = &slices[i as usize];
                open_slices -= 1;
                power_w = if open_slices == 0 {
                    0.0
                } else {
                    power_w - s.energy_j / (s.end_s - s.start_s)
                };
            }
            Ev::SpanStart(i) => {
                let s = &spans[i as usize];
                active += 1;
                match s.token_rate() {
                    Some(r) => rate_sum += r,
                    None => active_untokened += 1,
                }
                at_start[i as usize] = (g_tok, g_even);
            }
            Ev::SpanEnd(i) => {
                let s = &spans[i as usize];
                let (t0, e0) = at_start[i as usize];
                let rate = s.token_rate();
                out.span_j[i as usize] = rate.unwrap_or(0.0) * (g_tok - t0) + (g_even - e0);
                active -= 1;
                match rate {
                    Some(r) => rate_sum -= r,
                    None => active_untokened -= 1,
                }
                if active == active_untokened {
                    // No tokened span left: drop accumulated rounding.
                    rate_sum = 0.0;
                }
            }
        }
    }
    out
}

/// Percentiles of one per-request quantity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: usize,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Distribution {
    /// Summarise `values` (non-finite values are dropped; nearest-rank percentiles from
    /// [`stats::percentile`]).
    pub fn of(values: Vec<f64>) -> Distribution {
        let values = stats::sorted(values.into_iter().filter(|v| v.is_finite()));
        let n = values.len();
        Distribution {
            count: n,
            mean: (n > 0).then(|| values.iter().sum::<f64>() / n as f64),
            p50: stats::percentile(&values, 50.0),
            p90: stats::percentile(&values, 90.0),
            p99: stats::percentile(&values, 99.0),
            max: values.last().copied(),
        }
    }
}

/// One attributed request, for summaries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestEnergy {
    pub energy_j: f64,
    pub tokens: Option<u64>,
}

/// Energy and carbon per request and per token, with percentiles, and idle energy apart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub requests: usize,
    pub tokens: u64,
    /// Energy attributed to requests, J.
    pub attributed_j: f64,
    /// Energy while no request was active, J (not included in any per-request figure).
    pub idle_j: f64,
    /// Carbon of the attributed energy, gCO2e.
    pub attributed_g: f64,
    /// Carbon of the idle energy, gCO2e.
    pub idle_g: f64,
    /// Intensity used, gCO2e/kWh.
    pub intensity_g_per_kwh: f64,
    pub joules_per_request: Distribution,
    pub grams_per_request: Distribution,
    /// Per request with a positive token count: its energy / its tokens.
    pub joules_per_token: Distribution,
    pub joules_per_1k_tokens: Distribution,
    pub grams_per_1k_tokens: Distribution,
    /// Attributed energy / all declared tokens, J (None without tokens).
    pub overall_joules_per_token: Option<f64>,
    pub overall_grams_per_1k_tokens: Option<f64>,
}

/// Grams CO2e of `energy_j` at `intensity_g_per_kwh`.
pub fn grams(energy_j: f64, intensity_g_per_kwh: f64) -> f64 {
    energy_j / JOULES_PER_KWH * intensity_g_per_kwh
}

/// Summarise attributed requests. `intensity_g_per_kwh` converts energy to carbon (already
/// including PUE if the caller wants facility carbon).
pub fn summarize(
    requests: &[RequestEnergy],
    idle_j: f64,
    intensity_g_per_kwh: f64,
) -> RequestSummary {
    let tokens: u64 = requests.iter().filter_map(|r| r.tokens).sum();
    let attributed_j: f64 = requests.iter().map(|r| r.energy_j).sum();
    let per_token: Vec<f64> = requests
        .iter()
        .filter_map(|r| match r.tokens {
            Some(t) if t > 0 => Some(r.energy_j / t as f64),
            _ => None,
        })
        .collect();
    let g = |j: f64| grams(j, intensity_g_per_kwh);
    let overall = (tokens > 0).then(|| attributed_j / tokens as f64);
    RequestSummary {
        requests: requests.len(),
        tokens,
        attributed_j,
        idle_j,
        attributed_g: g(attributed_j),
        idle_g: g(idle_j),
        intensity_g_per_kwh,
        joules_per_request: Distribution::of(requests.iter().map(|r| r.energy_j).collect()),
        grams_per_request: Distribution::of(requests.iter().map(|r| g(r.energy_j)).collect()),
        joules_per_1k_tokens: Distribution::of(per_token.iter().map(|j| j * 1000.0).collect()),
        grams_per_1k_tokens: Distribution::of(per_token.iter().map(|j| g(j * 1000.0)).collect()),
        joules_per_token: Distribution::of(per_token),
        overall_joules_per_token: overall,
        overall_grams_per_1k_tokens: overall.map(|j| g(j * 1000.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sl(a: f64, b: f64, e: f64) -> Slice {
        Slice {
            start_s: a,
            end_s: b,
            energy_j: e,
        }
    }
    fn sp(a: f64, b: f64, tokens: Option<u64>) -> Span {
        Span {
            start_s: a,
            end_s: b,
            tokens,
        }
    }
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn a_lone_request_covering_a_slice_gets_all_its_energy() {
        let r = attribute(&[sl(0.0, 1.0, 50.0)], &[sp(0.0, 1.0, None)]);
        assert_eq!(r.span_j, vec![50.0]);
        assert_eq!(r.idle_j, 0.0);
        assert_eq!(r.total_j, 50.0);
    }

    #[test]
    fn time_without_requests_is_idle_not_spread() {
        // 100 W for 10 s; one request over the first 2 s.
        let r = attribute(&[sl(0.0, 10.0, 1000.0)], &[sp(0.0, 2.0, Some(10))]);
        assert!(close(r.span_j[0], 200.0), "{:?}", r);
        assert!(close(r.idle_j, 800.0));
    }

    #[test]
    fn concurrent_requests_without_tokens_split_evenly_by_overlap() {
        // 10 W over [0, 4). A over [0,4), B over [1,3): [0,1) A alone 10 J, [1,3) shared
        // 20 J -> 10 each, [3,4) A alone 10 J.
        let r = attribute(
            &[sl(0.0, 4.0, 40.0)],
            &[sp(0.0, 4.0, None), sp(1.0, 3.0, None)],
        );
        assert!(close(r.span_j[0], 30.0), "{:?}", r);
        assert!(close(r.span_j[1], 10.0));
        assert_eq!(r.idle_j, 0.0);
    }

    #[test]
    fn concurrent_requests_with_tokens_split_by_token_rate() {
        // Both over [0,2), 100 J; A made 300 tokens, B 100: 75 / 25.
        let r = attribute(
            &[sl(0.0, 2.0, 100.0)],
            &[sp(0.0, 2.0, Some(300)), sp(0.0, 2.0, Some(100))],
        );
        assert!(close(r.span_j[0], 75.0), "{:?}", r);
        assert!(close(r.span_j[1], 25.0));
    }

    #[test]
    fn token_rate_uses_each_spans_own_duration() {
        // A [0,4) 400 tokens (100/s), B [0,1) 300 tokens (300/s). 10 W.
        // [0,1): 10 J split 100:300 -> A 2.5, B 7.5; [1,4): A alone 30 J.
        let r = attribute(
            &[sl(0.0, 4.0, 40.0)],
            &[sp(0.0, 4.0, Some(400)), sp(0.0, 1.0, Some(300))],
        );
        assert!(close(r.span_j[0], 32.5), "{:?}", r);
        assert!(close(r.span_j[1], 7.5));
    }

    #[test]
    fn one_request_without_tokens_makes_the_interval_even() {
        let r = attribute(
            &[sl(0.0, 1.0, 90.0)],
            &[
                sp(0.0, 1.0, Some(1000)),
                sp(0.0, 1.0, None),
                sp(0.0, 1.0, Some(1)),
            ],
        );
        for j in &r.span_j {
            assert!(close(*j, 30.0), "{:?}", r);
        }
    }

    #[test]
    fn zero_tokens_count_as_undeclared() {
        let r = attribute(
            &[sl(0.0, 1.0, 10.0)],
            &[sp(0.0, 1.0, Some(0)), sp(0.0, 1.0, Some(5))],
        );
        assert!(
            close(r.span_j[0], 5.0) && close(r.span_j[1], 5.0),
            "{:?}",
            r
        );
    }

    #[test]
    fn power_changes_between_slices_are_followed() {
        // 10 W in [0,1), 50 W in [1,2); a request over [0.5, 1.5) gets 5 + 25.
        let r = attribute(
            &[sl(0.0, 1.0, 10.0), sl(1.0, 2.0, 50.0)],
            &[sp(0.5, 1.5, None)],
        );
        assert!(close(r.span_j[0], 30.0), "{:?}", r);
        assert!(close(r.idle_j, 30.0));
        assert_eq!(r.total_j, 60.0);
    }

    #[test]
    fn time_outside_slices_has_no_energy() {
        // A gap in measurement between 1 and 2: the request gets only measured energy.
        let r = attribute(
            &[sl(0.0, 1.0, 10.0), sl(2.0, 3.0, 10.0)],
            &[sp(0.0, 3.0, None)],
        );
        assert!(close(r.span_j[0], 20.0), "{:?}", r);
        let r = attribute(&[sl(0.0, 1.0, 10.0)], &[sp(5.0, 6.0, None)]);
        assert_eq!(r.span_j, vec![0.0]);
        assert_eq!(r.idle_j, 10.0);
    }

    #[test]
    fn back_to_back_requests_do_not_overlap() {
        let r = attribute(
            &[sl(0.0, 2.0, 20.0)],
            &[sp(0.0, 1.0, None), sp(1.0, 2.0, None)],
        );
        assert!(
            close(r.span_j[0], 10.0) && close(r.span_j[1], 10.0),
            "{:?}",
            r
        );
    }

    #[test]
    fn invalid_spans_and_slices_are_skipped_and_counted() {
        let r = attribute(
            &[
                sl(0.0, 1.0, 10.0),
                sl(1.0, 1.0, 5.0),
                sl(2.0, 3.0, f64::NAN),
                sl(3.0, 4.0, -1.0),
            ],
            &[
                sp(1.0, 0.0, None),
                sp(f64::NAN, 1.0, None),
                sp(0.0, f64::INFINITY, None),
                sp(0.0, 1.0, None),
                sp(0.5, 0.5, Some(3)),
            ],
        );
        assert_eq!(r.invalid_spans, 3);
        assert_eq!(r.span_j, vec![0.0, 0.0, 0.0, 10.0, 0.0]);
        assert_eq!(r.total_j, 10.0);
    }

    #[test]
    fn nothing_in_nothing_out() {
        let r = attribute(&[], &[]);
        assert_eq!(r, Attributed::default());
        let r = attribute(&[], &[sp(0.0, 1.0, None)]);
        assert_eq!(r.span_j, vec![0.0]);
    }

    #[test]
    fn summary_gives_per_request_and_per_token_figures_and_idle_apart() {
        let reqs = [
            RequestEnergy {
                energy_j: 3600.0,
                tokens: Some(1000),
            },
            RequestEnergy {
                energy_j: 7200.0,
                tokens: None,
            },
        ];
        let s = summarize(&reqs, 36000.0, 100.0);
        assert_eq!(s.requests, 2);
        assert_eq!(s.tokens, 1000);
        assert_eq!(s.attributed_j, 10800.0);
        assert!(close(s.attributed_g, 0.3)); // 10800 J = 3 Wh = 0.003 kWh x 100
        assert!(close(s.idle_g, 1.0));
        assert_eq!(s.joules_per_token.count, 1);
        assert_eq!(s.joules_per_token.p50, Some(3.6));
        assert_eq!(s.joules_per_1k_tokens.p50, Some(3600.0));
        assert!(close(s.grams_per_1k_tokens.p50.unwrap(), 0.1));
        assert_eq!(s.joules_per_request.max, Some(7200.0));
        assert_eq!(s.overall_joules_per_token, Some(10.8));
    }

    #[test]
    fn summary_without_tokens_has_no_per_token_figures() {
        let s = summarize(&[], 0.0, 50.0);
        assert_eq!(s.joules_per_token.count, 0);
        assert_eq!(s.joules_per_token.p50, None);
        assert_eq!(s.overall_joules_per_token, None);
        assert_eq!(s.joules_per_request.mean, None);
    }

    fn arb_slices() -> impl Strategy<Value = Vec<Slice>> {
        proptest::collection::vec((0.0f64..0.5, 0.0f64..2.0, 0.0f64..500.0), 0..20).prop_map(|v| {
            // Contiguous-ish slices with small gaps.
            let mut t = 0.0;
            v.into_iter()
                .map(|(gap, d, e)| {
                    let s = sl(t + gap, t + gap + d, e);
                    t += gap + d;
                    s
                })
                .collect()
        })
    }

    fn arb_spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec(
            (
                -1.0f64..25.0,
                0.0f64..5.0,
                prop_oneof![Just(None), (0u64..2000).prop_map(Some)],
            ),
            0..40,
        )
        .prop_map(|v| v.into_iter().map(|(a, d, t)| sp(a, a + d, t)).collect())
    }

    /// The definition, computed the slow way: cut at every boundary, split each piece.
    fn reference(slices: &[Slice], spans: &[Span]) -> (Vec<f64>, f64) {
        let mut cuts: Vec<f64> = slices
            .iter()
            .flat_map(|s| [s.start_s, s.end_s])
            .chain(spans.iter().flat_map(|s| [s.start_s, s.end_s]))
            .collect();
        cuts.sort_by(f64::total_cmp);
        let mut out = vec![0.0; spans.len()];
        let mut idle = 0.0;
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b <= a {
                continue;
            }
            let e: f64 = slices
                .iter()
                .filter(|s| s.end_s > s.start_s && s.start_s <= a && s.end_s >= b)
                .map(|s| s.energy_j * (b - a) / (s.end_s - s.start_s))
                .sum();
            let act: Vec<usize> = (0..spans.len())
                .filter(|&k| spans[k].start_s <= a && spans[k].end_s >= b)
                .collect();
            if act.is_empty() {
                idle += e;
            } else if act.iter().all(|&k| spans[k].token_rate().is_some()) {
                let tot: f64 = act.iter().map(|&k| spans[k].token_rate().unwrap()).sum();
                for &k in &act {
                    out[k] += e * spans[k].token_rate().unwrap() / tot;
                }
            } else {
                for &k in &act {
                    out[k] += e / act.len() as f64;
                }
            }
        }
        (out, idle)
    }

    proptest! {
        #[test]
        fn matches_the_definition(slices in arb_slices(), spans in arb_spans()) {
            let r = attribute(&slices, &spans);
            let (want, idle) = reference(&slices, &spans);
            let tol = 1e-6 * (1.0 + r.total_j);
            prop_assert!((r.idle_j - idle).abs() <= tol, "idle {} vs {}", r.idle_j, idle);
            for (k, j) in want.iter().enumerate() {
                prop_assert!((r.span_j[k] - j).abs() <= tol, "span {}: {} vs {}", k, r.span_j[k], j);
            }
        }

        #[test]
        fn energy_is_conserved(slices in arb_slices(), spans in arb_spans()) {
            let r = attribute(&slices, &spans);
            let sum = r.attributed_j() + r.idle_j;
            prop_assert!((sum - r.total_j).abs() <= 1e-6 * (1.0 + r.total_j), "{} vs {}", sum, r.total_j);
            for j in &r.span_j {
                prop_assert!(*j >= -1e-9 * (1.0 + r.total_j));
            }
        }

        #[test]
        fn a_span_never_gets_more_than_the_energy_during_it(slices in arb_slices(), spans in arb_spans()) {
            let r = attribute(&slices, &spans);
            for (k, s) in spans.iter().enumerate() {
                let during: f64 = slices.iter().map(|x| {
                    let o = (x.end_s.min(s.end_s) - x.start_s.max(s.start_s)).max(0.0);
                    if x.end_s > x.start_s { x.energy_j * o / (x.end_s - x.start_s) } else { 0.0 }
                }).sum();
                prop_assert!(r.span_j[k] <= during + 1e-6 * (1.0 + during));
            }
        }

        #[test]
        fn order_of_spans_does_not_matter(slices in arb_slices(), spans in arb_spans()) {
            let a = attribute(&slices, &spans);
            let rev: Vec<Span> = spans.iter().rev().copied().collect();
            let b = attribute(&slices, &rev);
            for (k, j) in a.span_j.iter().enumerate() {
                let other = b.span_j[spans.len() - 1 - k];
                prop_assert!((j - other).abs() <= 1e-6 * (1.0 + a.total_j));
            }
        }
    }
}
