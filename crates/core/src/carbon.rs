//! Carbon arithmetic (SPEC: Carbon; metric definitions). Pure: no data tables, no I/O.
//!
//! - operational (location-based) g = E(kWh) x PUE x I(g/kWh)
//! - market-based g = E(kWh) x PUE x F(g/kWh), reported separately, never mixed in SCI
//! - embodied M = TE x (time reserved / expected lifetime) x share reserved
//! - SCI = ((E x I) + M) / R, E including PUE, I location-based
//! - carbon per inference = total g / inferences; per 1k tokens = total g / tokens x 1000
//! - time-varying intensity: each part of the energy is weighed by the intensity of the
//!   interval it was used in.

pub use crate::units::GRAMS_PER_KG;
use crate::units::JOULES_PER_KWH;
use thiserror::Error;

/// Seconds in a (365-day) year, the unit of device lifetimes (4 years = 35,040 h).
pub const SECONDS_PER_YEAR: f64 = 365.0 * 24.0 * 3600.0;

/// Errors of invalid arguments to the carbon arithmetic; each names the argument.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CarbonMathError {
    #[error("{name} must be a finite number >= 0, got {value}")]
    Negative { name: &'static str, value: f64 },
    #[error("{name} must be a finite number > 0, got {value}")]
    NotPositive { name: &'static str, value: f64 },
    #[error(
        "PUE must be a finite number from 1.0 to {MAX_PUE} (facility energy / IT energy), got {0}"
    )]
    Pue(f64),
    #[error("must be a number from {min} to {max} {unit}, got {value}")]
    OutOfRange {
        value: f64,
        min: f64,
        max: f64,
        unit: &'static str,
    },
    #[error("share must be within 0..=1, got {0}")]
    Share(f64),
    #[error("intensity series point {index}: start {start_s} s is not after the previous one ({prev_s} s); points must be in increasing time order")]
    OutOfOrder {
        index: usize,
        start_s: f64,
        prev_s: f64,
    },
    #[error("intensity series is empty")]
    EmptySeries,
}

fn non_negative(name: &'static str, value: f64) -> Result<f64, CarbonMathError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(CarbonMathError::Negative { name, value })
    }
}

fn positive(name: &'static str, value: f64) -> Result<f64, CarbonMathError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(CarbonMathError::NotPositive { name, value })
    }
}

/// Largest PUE accepted. Facility averages are about 1.1 (hyperscale) to 1.6 (Uptime
/// Institute Global Data Center Survey 2023, average 1.58) and no survey reports a site
/// above 3; 5 leaves room for odd cases while `--pue 1e308` (a typo) is refused.
pub const MAX_PUE: f64 = 5.0;

/// Largest grid intensity accepted, gCO2e/kWh. The most carbon-intensive generation,
/// lignite, is about 1,000-1,200 g/kWh over its life cycle (IPCC AR5 WG3 Annex III, Table
/// A.III.2); twice that is no grid on Earth.
pub const MAX_INTENSITY_G_PER_KWH: f64 = 2500.0;

/// Checks a PUE: finite, at least 1, at most [`MAX_PUE`].
pub fn check_pue(pue: f64) -> Result<f64, CarbonMathError> {
    if pue.is_finite() && (1.0..=MAX_PUE).contains(&pue) {
        Ok(pue)
    } else {
        Err(CarbonMathError::Pue(pue))
    }
}

/// Checks that `value` is finite and within `min..=max` (`unit` names the unit).
pub fn check_range(
    value: f64,
    min: f64,
    max: f64,
    unit: &'static str,
) -> Result<f64, CarbonMathError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(CarbonMathError::OutOfRange {
            value,
            min,
            max,
            unit,
        })
    }
}

/// Checks a share of a machine: within 0..=1.
pub fn check_share(share: f64) -> Result<f64, CarbonMathError> {
    if share.is_finite() && (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(CarbonMathError::Share(share))
    }
}

/// Facility energy: IT energy x PUE, J.
pub fn facility_j(it_energy_j: f64, pue: f64) -> Result<f64, CarbonMathError> {
    Ok(non_negative("energy_j", it_energy_j)? * check_pue(pue)?)
}

/// Operational grams: E(kWh) x PUE x I. `it_energy_j` is the IT (device) energy.
pub fn operational_g(
    it_energy_j: f64,
    pue: f64,
    intensity_g_per_kwh: f64,
) -> Result<f64, CarbonMathError> {
    let facility = facility_j(it_energy_j, pue)?;
    let i = non_negative("intensity_g_per_kwh", intensity_g_per_kwh)?;
    Ok(facility / JOULES_PER_KWH * i)
}

/// Embodied grams: M = TE x (time reserved / lifetime) x share.
pub fn embodied_g(
    total_embodied_g: f64,
    reserved_s: f64,
    lifetime_s: f64,
    share: f64,
) -> Result<f64, CarbonMathError> {
    let te = non_negative("embodied_g", total_embodied_g)?;
    let tir = non_negative("reserved_s", reserved_s)?;
    let el = positive("lifetime_s", lifetime_s)?;
    let rs = check_share(share)?;
    Ok(te * (tir / el) * rs)
}

/// SCI per functional unit: ((E x I) + M) / R, with `operational_g` = E (incl. PUE) x I
/// (location-based). `None` when R is not positive (no unit to divide by).
pub fn sci_g_per_unit(operational_g: f64, embodied_g: f64, units: f64) -> Option<f64> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    (ok(operational_g) && ok(embodied_g) && units.is_finite() && units > 0.0)
        .then(|| (operational_g + embodied_g) / units)
}

/// Carbon per inference: total g / inferences. `None` without a positive count.
pub fn per_inference_g(total_g: f64, inferences: f64) -> Option<f64> {
    sci_g_per_unit(total_g, 0.0, inferences)
}

/// gCO2e per 1,000 tokens. `None` without a positive token count.
pub fn per_1k_tokens_g(total_g: f64, tokens: f64) -> Option<f64> {
    sci_g_per_unit(total_g, 0.0, tokens / 1000.0)
}

/// One interval of an intensity series: `[from_s, to_s)` at `g_per_kwh`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntensityInterval {
    pub from_s: f64,
    pub to_s: f64,
    pub g_per_kwh: f64,
}

/// A validated step series of intensities on the caller's timeline (seconds), sorted and
/// non-overlapping.
#[derive(Clone, Debug, PartialEq)]
pub struct IntensitySeries {
    intervals: Vec<IntensityInterval>,
}

impl IntensitySeries {
    /// From points `(start_s, g_per_kwh)`: each point holds until the next one; the last one
    /// holds for `last_len_s`. Points must be strictly increasing in time, values finite >= 0.
    pub fn from_points(points: &[(f64, f64)], last_len_s: f64) -> Result<Self, CarbonMathError> {
        if points.is_empty() {
            return Err(CarbonMathError::EmptySeries);
        }
        let last_len_s = positive("last interval length (s)", last_len_s)?;
        let mut intervals = Vec::with_capacity(points.len());
        for (i, &(start_s, g)) in points.iter().enumerate() {
            if !start_s.is_finite() {
                return Err(CarbonMathError::Negative {
                    name: "timestamp",
                    value: start_s,
                });
            }
            non_negative("intensity_g_per_kwh", g)?;
            if i > 0 && start_s <= points[i - 1].0 {
                return Err(CarbonMathError::OutOfOrder {
                    index: i,
                    start_s,
                    prev_s: points[i - 1].0,
                });
            }
            let to_s = points.get(i + 1).map_or(start_s + last_len_s, |p| p.0);
            intervals.push(IntensityInterval {
                from_s: start_s,
                to_s,
                g_per_kwh: g,
            });
        }
        Ok(IntensitySeries { intervals })
    }

    pub fn intervals(&self) -> &[IntensityInterval] {
        &self.intervals
    }

    /// First covered instant, s.
    pub fn from_s(&self) -> f64 {
        self.intervals.first().map_or(0.0, |i| i.from_s)
    }

    /// End of coverage, s.
    pub fn to_s(&self) -> f64 {
        self.intervals.last().map_or(0.0, |i| i.to_s)
    }
}

/// Energy used over `[from_s, to_s)`, assumed uniform within the segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnergySegment {
    pub from_s: f64,
    pub to_s: f64,
    pub energy_j: f64,
}

/// The result of weighing energy by a time-varying intensity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weighted {
    /// Grams for the covered energy (IT energy x I; multiply by PUE for facility grams).
    pub covered_g: f64,
    /// Energy inside the series' coverage, J.
    pub covered_j: f64,
    /// Energy outside it (to be weighed by a stated fallback factor), J.
    pub uncovered_j: f64,
}

impl Weighted {
    /// Energy-weighted mean intensity of the covered energy; `None` when nothing is covered.
    pub fn mean_g_per_kwh(&self) -> Option<f64> {
        (self.covered_j > 0.0).then(|| self.covered_g / (self.covered_j / JOULES_PER_KWH))
    }

    /// Share of the energy outside the series, 0..=1; `None` for zero energy.
    pub fn uncovered_share(&self) -> Option<f64> {
        let total = self.covered_j + self.uncovered_j;
        (total > 0.0).then(|| self.uncovered_j / total)
    }
}

/// Weighs each part of the energy by the intensity of the interval it was used in.
/// Zero-length segments with energy count as an instant at `from_s`.
pub fn weigh_by_series(
    segments: &[EnergySegment],
    series: &IntensitySeries,
) -> Result<Weighted, CarbonMathError> {
    let mut w = Weighted {
        covered_g: 0.0,
        covered_j: 0.0,
        uncovered_j: 0.0,
    };
    for s in segments {
        let e = non_negative("segment energy_j", s.energy_j)?;
        if !(s.from_s.is_finite() && s.to_s.is_finite()) || s.to_s < s.from_s {
            return Err(CarbonMathError::Negative {
                name: "segment length (to_s - from_s)",
                value: s.to_s - s.from_s,
            });
        }
        let len = s.to_s - s.from_s;
        if len == 0.0 {
            match series
                .intervals
                .iter()
                .find(|i| i.from_s <= s.from_s && s.from_s < i.to_s)
            {
                Some(i) => {
                    w.covered_j += e;
                    w.covered_g += e / JOULES_PER_KWH * i.g_per_kwh;
                }
                None => w.uncovered_j += e,
            }
            continue;
        }
        let mut covered_here = 0.0;
        for i in &series.intervals {
            let lo = s.from_s.max(i.from_s);
            let hi = s.to_s.min(i.to_s);
            if hi > lo {
                let part_j = e * (hi - lo) / len;
                covered_here += part_j;
                w.covered_g += part_j / JOULES_PER_KWH * i.g_per_kwh;
            }
        }
        let covered_here = covered_here.min(e);
        w.covered_j += covered_here;
        w.uncovered_j += e - covered_here;
    }
    Ok(w)
}

/// Energy segments from a power timeline sampled at interval midpoints `t_mid_s` (s since
/// start) with `power_w` each, over a run of `duration_s`: interval boundaries lie halfway
/// between midpoints, the first starts at 0 and the last ends at `duration_s`. The segments
/// are rescaled so their sum equals `total_j` (the measured energy stays the reference; the
/// timeline only says when it was used). Empty when the timeline is unusable.
pub fn segments_from_power(
    t_mid_s: &[f64],
    power_w: &[f64],
    duration_s: f64,
    total_j: f64,
) -> Vec<EnergySegment> {
    let n = t_mid_s.len().min(power_w.len());
    let sane = n > 0
        && duration_s.is_finite()
        && duration_s > 0.0
        && total_j.is_finite()
        && total_j >= 0.0
        && t_mid_s[..n].windows(2).all(|w| w[1] > w[0])
        && power_w[..n].iter().all(|p| p.is_finite() && *p >= 0.0);
    if !sane {
        return Vec::new();
    }
    let mut segs = Vec::with_capacity(n);
    for i in 0..n {
        let from_s = if i == 0 {
            0.0
        } else {
            (t_mid_s[i - 1] + t_mid_s[i]) / 2.0
        };
        let to_s = if i + 1 == n {
            duration_s
        } else {
            (t_mid_s[i] + t_mid_s[i + 1]) / 2.0
        };
        let to_s = to_s.clamp(from_s, duration_s.max(from_s));
        segs.push(EnergySegment {
            from_s,
            to_s,
            energy_j: power_w[i] * (to_s - from_s),
        });
    }
    let sum: f64 = segs.iter().map(|s| s.energy_j).sum();
    if sum > 0.0 {
        for s in &mut segs {
            s.energy_j *= total_j / sum;
        }
        segs
    } else {
        vec![EnergySegment {
            from_s: 0.0,
            to_s: duration_s,
            energy_j: total_j,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-12)
    }

    #[test]
    fn gpt3_patterson_energy_and_carbon() {
        // 10,000 V100 x 14.8 days x 330 W, PUE 1.1, 429 g/kWh (Patterson et al. 2021).
        let it_j = 10_000.0 * 330.0 * 14.8 * 24.0 * 3600.0;
        let fac = facility_j(it_j, 1.1).unwrap();
        assert_eq!((fac / JOULES_PER_KWH / 1000.0).round(), 1289.0); // MWh
        let g = operational_g(it_j, 1.1, 429.0).unwrap();
        assert_eq!((g / 1e6).round(), 553.0); // tonnes
    }

    #[test]
    fn sci_spec_example_embodied_is_28_5_g() {
        // 1,000 kg over 4 years, 1 h reserved, whole machine.
        let m = embodied_g(1000.0 * GRAMS_PER_KG, 3600.0, 4.0 * SECONDS_PER_YEAR, 1.0).unwrap();
        assert!(close(m, 28.538_812, 1e-6), "{m}");
        assert_eq!(
            sci_g_per_unit(0.0, m, 1.0).map(|v| (v * 10.0).round() / 10.0),
            Some(28.5)
        );
    }

    #[test]
    fn one_kwh_at_france_is_its_factor() {
        assert!(close(
            operational_g(3.6e6, 1.0, 44.179085).unwrap(),
            44.179085,
            1e-12
        ));
        assert!(close(
            operational_g(3.6e6, 1.56, 100.0).unwrap(),
            156.0,
            1e-12
        ));
    }

    #[test]
    fn invalid_inputs_are_named_errors() {
        assert_eq!(operational_g(1.0, 0.9, 1.0), Err(CarbonMathError::Pue(0.9)));
        assert!(matches!(
            operational_g(f64::NAN, 1.0, 1.0),
            Err(CarbonMathError::Negative {
                name: "energy_j",
                ..
            })
        ));
        assert!(matches!(
            operational_g(1.0, 1.0, -3.0),
            Err(CarbonMathError::Negative {
                name: "intensity_g_per_kwh",
                ..
            })
        ));
        assert_eq!(
            embodied_g(1.0, 1.0, 1.0, 1.5),
            Err(CarbonMathError::Share(1.5))
        );
        assert!(matches!(
            embodied_g(1.0, 1.0, 0.0, 1.0),
            Err(CarbonMathError::NotPositive {
                name: "lifetime_s",
                ..
            })
        ));
    }

    #[test]
    fn per_unit_metrics_are_none_without_units() {
        assert_eq!(per_inference_g(10.0, 0.0), None);
        assert_eq!(per_inference_g(10.0, 4.0), Some(2.5));
        assert_eq!(per_1k_tokens_g(3.0, 1500.0), Some(2.0));
        assert_eq!(per_1k_tokens_g(3.0, f64::NAN), None);
        assert_eq!(sci_g_per_unit(1.0, 2.0, 3.0), Some(1.0));
    }

    #[test]
    fn energy_is_weighed_by_the_interval_it_was_used_in() {
        // Two hours: 100 g/kWh then 300 g/kWh. 1 kWh spread evenly over 1.5 h from t=0.5 h.
        let s = IntensitySeries::from_points(&[(0.0, 100.0), (3600.0, 300.0)], 3600.0).unwrap();
        let seg = EnergySegment {
            from_s: 1800.0,
            to_s: 7200.0,
            energy_j: 3.6e6,
        };
        let w = weigh_by_series(&[seg], &s).unwrap();
        // 1/3 of the energy at 100, 2/3 at 300.
        assert!(close(w.covered_g, 100.0 / 3.0 + 200.0, 1e-12), "{w:?}");
        assert_eq!(w.uncovered_j, 0.0);
        assert!(close(w.mean_g_per_kwh().unwrap(), 233.333_333_333, 1e-9));
    }

    #[test]
    fn energy_outside_the_series_is_reported_uncovered() {
        let s = IntensitySeries::from_points(&[(0.0, 200.0)], 3600.0).unwrap();
        let seg = EnergySegment {
            from_s: 1800.0,
            to_s: 5400.0,
            energy_j: 2.0,
        };
        let w = weigh_by_series(&[seg], &s).unwrap();
        assert!(close(w.covered_j, 1.0, 1e-12));
        assert!(close(w.uncovered_j, 1.0, 1e-12));
        assert_eq!(w.uncovered_share(), Some(0.5));
    }

    #[test]
    fn series_rejects_out_of_order_and_bad_values() {
        assert_eq!(
            IntensitySeries::from_points(&[(10.0, 1.0), (5.0, 1.0)], 1.0),
            Err(CarbonMathError::OutOfOrder {
                index: 1,
                start_s: 5.0,
                prev_s: 10.0
            })
        );
        assert!(IntensitySeries::from_points(&[(0.0, -1.0)], 1.0).is_err());
        assert!(IntensitySeries::from_points(&[(0.0, f64::NAN)], 1.0).is_err());
        assert_eq!(
            IntensitySeries::from_points(&[], 1.0),
            Err(CarbonMathError::EmptySeries)
        );
    }

    #[test]
    fn power_timeline_becomes_segments_that_sum_to_the_measured_energy() {
        let segs = segments_from_power(&[0.5, 1.5, 2.5], &[10.0, 20.0, 10.0], 3.0, 80.0);
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[0].from_s, 0.0);
        assert_eq!(segs[1].from_s, 1.0);
        assert_eq!(segs[2].to_s, 3.0);
        assert!(close(segs[1].energy_j, 40.0, 1e-12));
        assert!(segments_from_power(&[1.0, 0.5], &[1.0, 1.0], 2.0, 1.0).is_empty());
    }

    proptest! {
        #[test]
        fn operational_is_linear_in_energy_pue_and_intensity(
            e in 0.0f64..1e12, pue in 1.0f64..3.0, i in 0.0f64..2000.0, k in 0.1f64..10.0
        ) {
            let g = operational_g(e, pue, i).unwrap();
            prop_assert!(g >= 0.0);
            prop_assert!(close(operational_g(e * k, pue, i).unwrap(), g * k, 1e-9) || g == 0.0);
            prop_assert!(close(g, e / 3.6e6 * pue * i, 1e-12) || g == 0.0);
        }

        #[test]
        fn constant_series_equals_the_static_factor(
            i in 0.0f64..2000.0,
            parts in proptest::collection::vec((0.0f64..100.0, 0.0f64..1e6), 1..20)
        ) {
            let series = IntensitySeries::from_points(&[(0.0, i), (1e5, i)], 1e9).unwrap();
            let mut t = 0.0;
            let mut segs = Vec::new();
            let mut total = 0.0;
            for (len, e) in parts {
                segs.push(EnergySegment { from_s: t, to_s: t + len, energy_j: e });
                t += len;
                total += e;
            }
            let w = weigh_by_series(&segs, &series).unwrap();
            prop_assert!(close(w.covered_j, total, 1e-9) || total == 0.0);
            let expect = operational_g(total, 1.0, i).unwrap();
            prop_assert!(close(w.covered_g, expect, 1e-9) || expect < 1e-9);
        }

        #[test]
        fn embodied_never_exceeds_total_within_lifetime(
            te in 0.0f64..1e7, frac in 0.0f64..1.0, share in 0.0f64..1.0
        ) {
            let life = 4.0 * SECONDS_PER_YEAR;
            let m = embodied_g(te, life * frac, life, share).unwrap();
            prop_assert!(m <= te * (1.0 + 1e-12));
            prop_assert!(m >= 0.0);
        }

        #[test]
        fn timeline_segments_preserve_total(
            p in proptest::collection::vec(0.1f64..500.0, 1..50), total in 0.0f64..1e6
        ) {
            let n = p.len();
            let t: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
            let segs = segments_from_power(&t, &p, n as f64, total);
            let sum: f64 = segs.iter().map(|s| s.energy_j).sum();
            prop_assert!(close(sum, total, 1e-9) || total == 0.0);
        }
    }
}
