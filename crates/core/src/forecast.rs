//! The forecast of a run's energy at completion from the progress it reports (issue 17).
//!
//! A workload that reports how far it is (`progress=0.3`, or `step=N total=M`, in the work
//! file; the Python callbacks per step or epoch) gives samples of cumulative energy against
//! progress. [`predict`] extrapolates them to progress 1: the energy-to-solution (E2S) at
//! completion, a 95 % prediction interval, and the duration at completion.
//!
//! The model (carbontracker predicts the same way, from the energy of the first epochs): the
//! energy spent between two progress reports is, on average, proportional to the progress
//! made, with independent noise whose variance is proportional to it too (the cumulative
//! energy is a random walk with drift in progress). Energy before the first report (imports,
//! data loading, compilation) is start-up: it is in the total, but not in the rate. Then
//!
//! - rate `b = (E_last - E_first) / (p_last - p_first)` J per unit of progress (the maximum
//!   likelihood drift: the weighted mean of the segments' rates);
//! - noise `s² = Σ (ΔE_k - b Δp_k)² / Δp_k / (m - 1)` over the `m` segments;
//! - forecast `E_last + b (1 - p_last)`, with the variance of the remaining energy
//!   `s² (1 - p_last)² / (p_last - p_first)` (the rate's uncertainty) `+ s² (1 - p_last)`
//!   (the noise still to come), and the interval `± t(0.975, m - 1) σ`.
//!
//! Nothing is forecast before [`MIN_PROGRESS`] of the work and [`MIN_SAMPLES`] reports:
//! before that, start-up dominates what has been measured. Pure: no clock, no I/O.

use serde::{Deserialize, Serialize};

/// The progress (a fraction of the whole work, 0 to 1) after which a forecast is given: 5 %.
///
/// Source: issue 17 asks for "a few percent"; below it start-up (imports, loading data, the
/// first compilation) is a large share of what was measured and the extrapolation multiplies
/// its error by 20 or more. The steady-workload tests here show the interval at 5 % already
/// covering the final energy at its nominal rate, and the point within 10 % from 20 %.
pub const MIN_PROGRESS: f64 = 0.05;

/// The number of progress reports needed: 3, so two segments after the first report give a
/// rate and an estimate of its noise (`s²` needs `m - 1 >= 1`).
pub const MIN_SAMPLES: usize = 3;

/// One report of progress, with the run's cumulative energy and time when it was seen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProgressSample {
    /// Fraction of the work done, 0 to 1.
    pub progress: f64,
    /// Energy counted since the run started, J.
    pub energy_j: f64,
    /// Time since the run started, s (monotonic clock).
    pub t_s: f64,
}

/// The forecast of the run's end, from the samples seen so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// Progress of the last sample used, 0 to 1.
    pub at_progress: f64,
    /// Progress reports used.
    pub samples: usize,
    /// Predicted energy-to-solution at completion, J.
    pub energy_j: f64,
    /// Low end of the 95 % prediction interval, J (never below the energy already spent).
    pub energy_j_low: f64,
    /// High end of the 95 % prediction interval, J.
    pub energy_j_high: f64,
    /// Predicted duration at completion, s (the same extrapolation of time).
    pub duration_s: f64,
}

/// Why no forecast is given yet.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum NotYet {
    /// Fewer than [`MIN_SAMPLES`] reports with increasing progress.
    #[error("{got} progress report(s) with increasing progress, {MIN_SAMPLES} needed")]
    TooFewSamples { got: usize },
    /// The last report is below [`MIN_PROGRESS`].
    #[error("progress {progress:.3} is below {MIN_PROGRESS}")]
    TooEarly { progress: f64 },
}

/// The forecast from `samples` (in the order they were seen): [`Forecaster`] fed them all.
pub fn predict(samples: &[ProgressSample]) -> Result<Prediction, NotYet> {
    let mut f = Forecaster::default();
    for s in samples {
        f.push(*s);
    }
    f.predict()
}

/// The forecast's state, fed one progress report at a time, in constant memory (a run may
/// report every step for weeks): the first and last reports, the segment count and
/// `Σ ΔE² / Δp`, from which `s² = (Σ ΔE²/Δp - b² (p_last - p_first)) / (m - 1)`.
///
/// A report whose progress is not above every earlier one (a repeated or reset report),
/// outside 0 to 1, or with a non-finite value is passed over; energy or time going
/// backwards is clamped to flat.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Forecaster {
    first: Option<ProgressSample>,
    last: Option<ProgressSample>,
    segments: usize,
    sum_de2_over_dp: f64,
}

impl Forecaster {
    /// Add a report; `true` when it was kept (its progress is above the last one's).
    pub fn push(&mut self, s: ProgressSample) -> bool {
        let valid = [s.progress, s.energy_j, s.t_s]
            .iter()
            .all(|v| v.is_finite())
            && (0.0..=1.0).contains(&s.progress);
        if !valid {
            return false;
        }
        let Some(prev) = self.last else {
            self.first = Some(s);
            self.last = Some(s);
            return true;
        };
        if s.progress <= prev.progress {
            return false;
        }
        let s = ProgressSample {
            progress: s.progress,
            energy_j: s.energy_j.max(prev.energy_j),
            t_s: s.t_s.max(prev.t_s),
        };
        let (dp, de) = (s.progress - prev.progress, s.energy_j - prev.energy_j);
        self.sum_de2_over_dp += de * de / dp;
        self.segments += 1;
        self.last = Some(s);
        true
    }

    /// Reports kept so far.
    pub fn samples(&self) -> usize {
        self.last.map_or(0, |_| self.segments + 1)
    }

    /// The last report kept.
    pub fn last(&self) -> Option<ProgressSample> {
        self.last
    }

    /// The forecast now; `Err` says why it is too early.
    pub fn predict(&self) -> Result<Prediction, NotYet> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Err(NotYet::TooFewSamples { got: 0 });
        };
        if self.samples() < MIN_SAMPLES {
            return Err(NotYet::TooFewSamples {
                got: self.samples(),
            });
        }
        if last.progress < MIN_PROGRESS {
            return Err(NotYet::TooEarly {
                progress: last.progress,
            });
        }
        let span = last.progress - first.progress;
        let rate_j = (last.energy_j - first.energy_j) / span;
        let m = self.segments;
        // Rounding can leave a noiseless run a hair below zero.
        let s2 = ((self.sum_de2_over_dp - rate_j * rate_j * span) / (m - 1) as f64).max(0.0);
        let rest = 1.0 - last.progress;
        let var_j2 = s2 * rest * rest / span + s2 * rest;
        let half_j = crate::stats::student_t_975(m - 1) * var_j2.sqrt();
        let energy_j = last.energy_j + rate_j * rest;
        let duration_s = last.t_s + (last.t_s - first.t_s) / span * rest;
        Ok(Prediction {
            at_progress: last.progress,
            samples: m + 1,
            energy_j,
            energy_j_low: (energy_j - half_j).max(last.energy_j),
            energy_j_high: energy_j + half_j,
            duration_s,
        })
    }
}

/// Parse one work-file line that reports progress: `progress=F` (F from 0 to 1) or
/// `step=N total=M` (0 <= N <= M, M > 0; separated by spaces). `None`: the line is not a
/// progress line (another key); `Some(Err)`: it is one, but its values are wrong (the
/// message names the value and the rule).
pub fn parse_progress_line(line: &str) -> Option<Result<f64, String>> {
    let line = line.trim();
    if let Some(v) = line.strip_prefix("progress") {
        let v = v.trim_start().strip_prefix('=')?.trim();
        return Some(match v.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
            Ok(_) => Err(format!(
                "progress={v}: a fraction from 0 to 1 (progress=0.25 for 25 %)"
            )),
            Err(_) => Err(format!("progress={v}: `{v}` is not a number")),
        });
    }
    if !line.starts_with("step") {
        return None;
    }
    let mut step = None;
    let mut total = None;
    for part in line.split_whitespace() {
        let Some((k, v)) = part.split_once('=') else {
            return Some(Err(format!(
                "`{line}`: use step=N total=M (no spaces around `=`)"
            )));
        };
        let n = match v.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => n,
            _ => return Some(Err(format!("{k}={v}: `{v}` is not a count"))),
        };
        match k {
            "step" => step = Some(n),
            "total" => total = Some(n),
            _ => {
                return Some(Err(format!(
                    "`{line}`: unknown key `{k}` (use step=N total=M)"
                )))
            }
        }
    }
    Some(match (step, total) {
        (Some(s), Some(t)) if t > 0.0 && s <= t => Ok(s / t),
        (Some(s), Some(t)) => Err(format!(
            "step={s} total={t}: the total must be above 0 and the step at most the total"
        )),
        _ => Err(format!(
            "`{line}`: a step line needs both step=N and total=M"
        )),
    })
}

/// The forecast section of a report (`forecast` in `wattprint.run/v1`): present when the
/// workload reported progress; the predicted figures are `null` until a forecast is given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastReport {
    /// The last progress reported, 0 to 1.
    pub progress: f64,
    /// Progress reports used (strictly increasing progress).
    pub samples: usize,
    /// Predicted energy-to-solution at completion, J; `null` until [`MIN_PROGRESS`] and
    /// [`MIN_SAMPLES`] (the reason is in `note`).
    pub energy_to_solution_j: Option<f64>,
    /// 95 % prediction interval of `energy_to_solution_j`, J.
    pub energy_to_solution_j_low: Option<f64>,
    pub energy_to_solution_j_high: Option<f64>,
    /// Predicted duration at completion, s.
    pub duration_s: Option<f64>,
    /// Predicted carbon at completion (location-based, embodied share included), g CO2e,
    /// with the interval of the energy carried through; filled by the carbon step.
    pub total_g: Option<f64>,
    pub total_g_low: Option<f64>,
    pub total_g_high: Option<f64>,
    /// `--budget-kwh`, kWh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_kwh: Option<f64>,
    /// The forecast passed the budget at some point of the run.
    #[serde(default)]
    pub over_budget: bool,
    /// Why wattprint stopped the command (`--stop-over-budget`); `null` when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The model and its threshold, or why no forecast is given yet.
    pub note: String,
}

/// Joules in one kWh.
pub const JOULES_PER_KWH: f64 = 3.6e6;

impl ForecastReport {
    /// The section for the reports `f` was fed and the budget, in kWh.
    pub fn from_forecaster(f: &Forecaster, budget_kwh: Option<f64>) -> ForecastReport {
        let mut r = ForecastReport {
            progress: f.last().map_or(0.0, |s| s.progress),
            samples: f.samples(),
            budget_kwh,
            ..Default::default()
        };
        match f.predict() {
            Ok(p) => {
                r.energy_to_solution_j = Some(p.energy_j);
                r.energy_to_solution_j_low = Some(p.energy_j_low);
                r.energy_to_solution_j_high = Some(p.energy_j_high);
                r.duration_s = Some(p.duration_s);
                r.over_budget = over_budget(&p, budget_kwh);
                r.note = format!(
                    "energy per unit of progress since the first report, extrapolated to 1; \
                     95 % prediction interval; given from {:.0} % and {MIN_SAMPLES} reports",
                    MIN_PROGRESS * 100.0
                );
            }
            Err(why) => r.note = format!("no forecast yet: {why}"),
        }
        r
    }
}

/// The forecast's point passes `budget_kwh`.
pub fn over_budget(p: &Prediction, budget_kwh: Option<f64>) -> bool {
    budget_kwh.is_some_and(|b| p.energy_j > b * JOULES_PER_KWH)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded generator (SplitMix64; Steele, Lea, Flood 2014) and Box-Muller normals.
    struct Rng(u64);
    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// A steady workload of `steps` steps: 40 J of start-up before the first report, then
    /// each step 10 J ± `noise` (relative standard deviation) in 1 s ± the same; a report
    /// after every step. Returns every report and the final energy.
    fn steady(seed: u64, steps: usize, noise: f64) -> (Vec<ProgressSample>, f64) {
        let mut rng = Rng(seed);
        let (mut e, mut t) = (40.0, 2.0);
        let mut out = Vec::with_capacity(steps);
        for k in 1..=steps {
            e += (10.0 * (1.0 + noise * rng.normal())).max(0.0);
            t += (1.0 + noise * rng.normal()).max(0.0);
            out.push(ProgressSample {
                progress: k as f64 / steps as f64,
                energy_j: e,
                t_s: t,
            });
        }
        (out, e)
    }

    fn upto(samples: &[ProgressSample], progress: f64) -> &[ProgressSample] {
        let n = samples
            .iter()
            .take_while(|s| s.progress <= progress + 1e-9)
            .count();
        &samples[..n]
    }

    #[test]
    fn a_steady_run_is_forecast_within_10_percent_after_20_percent() {
        // Steady: each step's energy and time vary by 10 % (one standard deviation).
        for seed in 0..500 {
            let (s, final_j) = steady(seed, 100, 0.1);
            for at in [0.2, 0.3, 0.5, 0.8] {
                let p = predict(upto(&s, at)).unwrap();
                let err = (p.energy_j - final_j).abs() / final_j;
                assert!(
                    err < 0.10,
                    "seed {seed} at {at}: {} vs {final_j}",
                    p.energy_j
                );
                assert!(p.energy_j_low <= p.energy_j && p.energy_j <= p.energy_j_high);
            }
        }
    }

    #[test]
    fn the_interval_covers_the_final_energy_at_its_nominal_rate() {
        // 95 % nominal: over 2000 seeded runs, between 92 % and 98 % covered.
        for at in [0.05, 0.2, 0.5] {
            let runs = 2000;
            let covered = (0..runs)
                .filter(|&seed| {
                    let (s, final_j) = steady(1000 + seed, 100, 0.3);
                    let p = predict(upto(&s, at)).unwrap();
                    p.energy_j_low <= final_j && final_j <= p.energy_j_high
                })
                .count();
            let rate = covered as f64 / runs as f64;
            assert!((0.92..=0.98).contains(&rate), "at {at}: covered {rate}");
        }
    }

    #[test]
    fn the_interval_narrows_as_the_run_goes_on() {
        let (s, _) = steady(7, 100, 0.3);
        let width = |at| {
            let p = predict(upto(&s, at)).unwrap();
            p.energy_j_high - p.energy_j_low
        };
        assert!(width(0.1) > width(0.3));
        assert!(width(0.3) > width(0.6));
        assert!(width(0.6) > width(0.95));
    }

    #[test]
    fn a_noiseless_run_is_forecast_exactly_with_no_width() {
        let s: Vec<_> = (1..=10)
            .map(|k| ProgressSample {
                progress: k as f64 / 100.0,
                energy_j: 50.0 + 10.0 * k as f64,
                t_s: 3.0 + 2.0 * k as f64,
            })
            .collect();
        let p = predict(&s).unwrap();
        // 50 J start-up + 100 steps x 10 J, 3 s + 100 x 2 s.
        assert!((p.energy_j - 1050.0).abs() < 1e-9, "{p:?}");
        assert!((p.energy_j_high - p.energy_j_low).abs() < 1e-9);
        assert!((p.duration_s - 203.0).abs() < 1e-9);
        assert_eq!(p.samples, 10);
        assert!((p.at_progress - 0.1).abs() < 1e-12);
    }

    #[test]
    fn irregular_reports_give_the_same_rate() {
        // Reports at uneven progress (a watcher that polls sees some steps together).
        let s: Vec<_> = [0.05, 0.06, 0.11, 0.12, 0.3]
            .iter()
            .map(|&p| ProgressSample {
                progress: p,
                energy_j: 20.0 + 1000.0 * p,
                t_s: 100.0 * p,
            })
            .collect();
        let p = predict(&s).unwrap();
        assert!((p.energy_j - 1020.0).abs() < 1e-9, "{p:?}");
        assert!((p.duration_s - 100.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_is_forecast_too_early_or_from_too_few_reports() {
        let at = |p: f64, e: f64| ProgressSample {
            progress: p,
            energy_j: e,
            t_s: e,
        };
        assert_eq!(predict(&[]), Err(NotYet::TooFewSamples { got: 0 }));
        assert_eq!(
            predict(&[at(0.1, 1.0), at(0.2, 2.0)]),
            Err(NotYet::TooFewSamples { got: 2 })
        );
        assert_eq!(
            predict(&[at(0.01, 1.0), at(0.02, 2.0), at(0.04, 4.0)]),
            Err(NotYet::TooEarly { progress: 0.04 })
        );
        // Repeated, backwards, out-of-range and non-finite reports do not count.
        let bad = [
            at(0.1, 1.0),
            at(0.1, 1.5),
            at(0.05, 2.0),
            at(1.5, 3.0),
            at(f64::NAN, 3.0),
            at(0.2, f64::INFINITY),
        ];
        assert_eq!(predict(&bad), Err(NotYet::TooFewSamples { got: 1 }));
        assert!(predict(&[at(0.02, 1.0), at(0.04, 2.0), at(0.05, 2.5)]).is_ok());
    }

    #[test]
    fn energy_going_backwards_is_flat_and_the_low_end_never_below_what_was_spent() {
        let s = [
            ProgressSample {
                progress: 0.1,
                energy_j: 100.0,
                t_s: 1.0,
            },
            ProgressSample {
                progress: 0.2,
                energy_j: 90.0,
                t_s: 2.0,
            },
            ProgressSample {
                progress: 0.3,
                energy_j: 300.0,
                t_s: 3.0,
            },
        ];
        let p = predict(&s).unwrap();
        assert!(p.energy_j_low >= 300.0, "{p:?}");
        assert!(p.energy_j.is_finite() && p.energy_j_high.is_finite());
    }

    #[test]
    fn the_last_report_is_the_end_and_has_no_width() {
        let (s, final_j) = steady(3, 20, 0.3);
        let p = predict(&s).unwrap();
        assert!((p.energy_j - final_j).abs() < 1e-9);
        assert!((p.energy_j_high - p.energy_j_low).abs() < 1e-9);
    }

    #[test]
    fn progress_lines_parse_as_fractions_and_bad_values_say_why() {
        assert_eq!(parse_progress_line("progress=0.25"), Some(Ok(0.25)));
        assert_eq!(parse_progress_line(" progress = 1 "), Some(Ok(1.0)));
        assert_eq!(parse_progress_line("step=30 total=120"), Some(Ok(0.25)));
        assert_eq!(parse_progress_line("step=0 total=5"), Some(Ok(0.0)));
        assert_eq!(parse_progress_line("flops=1e9"), None);
        assert_eq!(parse_progress_line("tokens=3"), None);
        let err = |l| parse_progress_line(l).unwrap().unwrap_err();
        assert!(err("progress=25").contains("fraction from 0 to 1"));
        assert!(err("progress=-0.1").contains("fraction"));
        assert!(err("progress=half").contains("not a number"));
        assert!(err("step=5 total=4").contains("at most the total"));
        assert!(err("step=1 total=0").contains("above 0"));
        assert!(err("step=3").contains("needs both"));
        assert!(err("step=3 epochs=4").contains("unknown key `epochs`"));
        assert!(err("step=-1 total=4").contains("not a count"));
        assert!(err("step = 1 total=4").contains("no spaces"));
    }

    #[test]
    fn the_report_section_says_why_there_is_no_forecast_and_flags_the_budget() {
        let mut one = Forecaster::default();
        one.push(ProgressSample {
            progress: 0.01,
            energy_j: 5.0,
            t_s: 1.0,
        });
        let early = ForecastReport::from_forecaster(&one, None);
        assert_eq!(early.energy_to_solution_j, None);
        assert_eq!(early.samples, 1);
        assert!(
            early.note.starts_with("no forecast yet: 1 progress report"),
            "{}",
            early.note
        );
        let s: Vec<_> = (1..=3)
            .map(|k| ProgressSample {
                progress: 0.1 * k as f64,
                energy_j: 360.0 * k as f64,
                t_s: k as f64,
            })
            .collect();
        // 3600 J = 0.001 kWh at completion.
        let mut f = Forecaster::default();
        s.iter().for_each(|x| assert!(f.push(*x)));
        let under = ForecastReport::from_forecaster(&f, Some(0.0011));
        assert!(!under.over_budget);
        let over = ForecastReport::from_forecaster(&f, Some(0.0009));
        assert!(over.over_budget);
        assert!((over.energy_to_solution_j.unwrap() - 3600.0).abs() < 1e-9);
        assert_eq!(over.budget_kwh, Some(0.0009));
    }
}
