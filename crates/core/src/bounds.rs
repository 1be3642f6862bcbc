//! Ranges of estimates: every energy figure carries a low and a high bound with its basis, and
//! the bounds go through every derived figure (sums, PUE, intensity, per-unit metrics).
//!
//! Bases of the per-domain bounds ([`domain_bounds`]):
//! - `model`: the model's own span. The true draw of the modelled CPUs lies between the
//!   model's idle and full-load power (CCF's min and max W per vCPU, or 0.12 and 1.02 x TDP),
//!   memory between Crucial's 0.375 and Micron's 0.408 W/GB (the two figures CCF averages).
//!   The sensor gives these as power bounds; energy bounds are power bounds x duration.
//! - `power` from NVML: NVIDIA's documented accuracy of the board power reading, +/- 5 W
//!   (nvidia-smi(1), "Power Draw": "accurate to within +/- 5 watts"; NVML reference,
//!   `nvmlDeviceGetPowerUsage`: "+/- 5% of current power draw" on Fermi and Kepler), taken as
//!   the larger of 5 W and 5 %.
//! - `counter` from RAPL: +/- 5 % ([`RAPL_RELATIVE`]), an assumption of ours: Khan et al.,
//!   "RAPL in Action: Experiences in Using RAPL for Power Measurements", ACM TOMPECS 3(2), 2018,
//!   find RAPL package and DRAM readings "highly correlated with plug power" and accurate on
//!   Haswell and later, without one bound for every machine; 5 % is the width we use until a
//!   per-generation figure is published.
//! - counters of GPU libraries (NVML total energy, amdsmi): the same +/- 5 % as the board power
//!   they accumulate.
//! - anything else: no published accuracy: the bounds are the value itself, and the basis says
//!   so.

use serde::{Deserialize, Serialize};

/// A value with its low and high bounds (`low <= value <= high`), in the unit of the value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub low: f64,
    pub value: f64,
    pub high: f64,
}

impl Bounds {
    /// A value known exactly (no range).
    pub fn exact(value: f64) -> Bounds {
        Bounds {
            low: value,
            value,
            high: value,
        }
    }

    /// `value` with bounds `low` and `high`, widened when needed so that
    /// `low <= value <= high` (bounds on the wrong side of the value become the value).
    pub fn new(low: f64, value: f64, high: f64) -> Bounds {
        Bounds {
            low: low.min(value),
            value,
            high: high.max(value),
        }
    }

    /// `value` +/- `fraction` of it (`fraction` >= 0), the low bound never below zero for a
    /// non-negative value.
    pub fn relative(value: f64, fraction: f64) -> Bounds {
        let d = (value * fraction.abs()).abs();
        let low = if value >= 0.0 {
            (value - d).max(0.0)
        } else {
            value - d
        };
        Bounds::new(low, value, value + d)
    }

    /// Scaled by `k` (PUE, an intensity known exactly, a reciprocal unit count): a negative
    /// `k` swaps the bounds.
    pub fn scale(self, k: f64) -> Bounds {
        let (a, b) = (self.low * k, self.high * k);
        Bounds::new(a.min(b), self.value * k, a.max(b))
    }

    /// The product of two ranges (energy x an intensity with its own range): the smallest and
    /// largest of the corner products.
    pub fn times(self, other: Bounds) -> Bounds {
        let corners = [
            self.low * other.low,
            self.low * other.high,
            self.high * other.low,
            self.high * other.high,
        ];
        let lo = corners.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Bounds::new(lo, self.value * other.value, hi)
    }

    /// Per unit: divided by `units` (> 0); `None` for zero or a non-finite count.
    pub fn per(self, units: f64) -> Option<Bounds> {
        (units.is_finite() && units > 0.0).then(|| self.scale(1.0 / units))
    }

    /// True when low == value == high.
    pub fn is_exact(&self) -> bool {
        self.low == self.value && self.value == self.high
    }
}

impl std::ops::Add for Bounds {
    type Output = Bounds;
    fn add(self, o: Bounds) -> Bounds {
        Bounds::new(self.low + o.low, self.value + o.value, self.high + o.high)
    }
}

impl std::iter::Sum for Bounds {
    fn sum<I: Iterator<Item = Bounds>>(iter: I) -> Bounds {
        iter.fold(Bounds::exact(0.0), |a, b| a + b)
    }
}

/// Relative accuracy assumed for RAPL counters, 5 % (see the module docs for its basis).
pub const RAPL_RELATIVE: f64 = 0.05;
/// NVML's documented absolute accuracy of board power, W (nvidia-smi(1), "Power Draw").
pub const NVML_ABSOLUTE_W: f64 = 5.0;
/// NVML's documented relative accuracy of board power (NVML `nvmlDeviceGetPowerUsage`).
pub const NVML_RELATIVE: f64 = 0.05;

/// The bounds of a domain's energy `joules` over `duration_s`, and their basis.
///
/// `source` is the sensor's source label (`rapl-perf`, `nvml`...), `method` its accuracy
/// class, and `power_bounds_w` the (low, high) power the sensor vouches for (the model's span).
pub fn domain_bounds(
    method: crate::Method,
    source: &crate::SensorSource,
    joules: f64,
    duration_s: f64,
    power_bounds_w: Option<(f64, f64)>,
) -> (Bounds, &'static str) {
    use crate::{Method, SensorSource};
    let dur = duration_s.max(0.0);
    match (method, power_bounds_w) {
        (Method::Model, Some((lo_w, hi_w))) => (
            Bounds::new(lo_w * dur, joules, hi_w * dur),
            "the model's span (idle to full load)",
        ),
        (_, _) if source.is_rapl() => (
            Bounds::relative(joules, RAPL_RELATIVE),
            "RAPL +/- 5 % (assumed; Khan et al. 2018)",
        ),
        (_, _) if *source == SensorSource::Nvml => {
            let d = (NVML_ABSOLUTE_W * dur).max(joules.abs() * NVML_RELATIVE);
            (
                Bounds::new((joules - d).max(0.0), joules, joules + d),
                "NVML +/- 5 W or 5 % (NVIDIA)",
            )
        }
        (_, _) if matches!(source, SensorSource::Amdsmi | SensorSource::Hwmon) => (
            Bounds::relative(joules, NVML_RELATIVE),
            "+/- 5 % (no published accuracy: NVML's assumed)",
        ),
        _ => (Bounds::exact(joules), "no published accuracy"),
    }
}

/// `low-high unit` from two figures of a quantity formatted by `fmt` (e.g. `12.3-25.6 J`), the
/// unit written once when both share it.
pub fn range_text(low: f64, high: f64, fmt: impl Fn(f64) -> String) -> String {
    let (a, b) = (fmt(low), fmt(high));
    match (a.rsplit_once(' '), b.rsplit_once(' ')) {
        (Some((an, au)), Some((_, bu))) if au == bu => format!("{an}-{b}"),
        _ => format!("{a}-{b}"),
    }
}

/// Carry the domains' bounds (`joules_low`/`joules_high`, set by the energy step) through the
/// report's derived figures: `total_j`, `facility_j` (x PUE), `carbon.total_g` (operational
/// grams scaled by the energy's bounds, as the embedded intensity factors publish no
/// uncertainty; embodied grams exact) and the energy and carbon metrics (`metrics.ranges`).
/// A domain without bounds counts as exact. Idempotent: run it after the energy step and
/// again after carbon.
pub fn fill_report_ranges(r: &mut crate::report::RunReport) {
    use crate::report::Range;
    let total: Bounds = r
        .energy
        .domains
        .iter()
        .filter(|d| d.counted_in_total)
        .map(|d| {
            Bounds::new(
                d.joules_low.unwrap_or(d.joules),
                d.joules,
                d.joules_high.unwrap_or(d.joules),
            )
        })
        .sum();
    // The total as the report states it (it may differ from the domains' sum by rounding).
    let e = Bounds::new(total.low, r.energy.total_j, total.high);
    let ratio = |x: f64| {
        if r.energy.total_j > 0.0 {
            x / r.energy.total_j
        } else {
            1.0
        }
    };
    let (lo_k, hi_k) = (ratio(e.low), ratio(e.high));
    r.energy.total_j_low = Some(e.low);
    r.energy.total_j_high = Some(e.high);
    let facility = e.scale(r.energy.pue);
    r.energy.facility_j_low = Some(facility.low);
    r.energy.facility_j_high = Some(facility.high);
    if let Some(a) = r.energy.attribution.as_mut() {
        let b = Bounds::new(a.job_j * lo_k, a.job_j, a.job_j * hi_k);
        a.job_j_low = Some(b.low);
        a.job_j_high = Some(b.high);
    }
    let c = &mut r.carbon;
    if let Some(mg) = c.market_operational_g {
        let b = Bounds::new(mg * lo_k, mg, mg * hi_k);
        c.market_operational_g_low = Some(b.low);
        c.market_operational_g_high = Some(b.high);
    }
    let op = Bounds::new(
        c.operational_g * lo_k,
        c.operational_g,
        c.operational_g * hi_k,
    );
    let g = op + Bounds::exact(c.embodied_g);
    let g = Bounds::new(g.low, c.total_g, g.high);
    c.total_g_low = Some(g.low);
    c.total_g_high = Some(g.high);
    let g_ratio = |x: f64| if c.total_g > 0.0 { x / c.total_g } else { 1.0 };
    let (g_lo_k, g_hi_k) = (g_ratio(g.low), g_ratio(g.high));
    let m = &mut r.metrics;
    let mut ranges = std::collections::BTreeMap::new();
    let mut put = |name: &str, v: Option<f64>, lo: f64, hi: f64| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            let b = Bounds::new(v * lo, v, v * hi);
            ranges.insert(
                name.to_string(),
                Range {
                    low: b.low,
                    high: b.high,
                },
            );
        }
    };
    put(
        "energy_to_solution_j",
        Some(m.energy_to_solution_j),
        lo_k,
        hi_k,
    );
    put(
        "facility_energy_to_solution_j",
        Some(m.facility_energy_to_solution_j),
        lo_k,
        hi_k,
    );
    put("joules_per_token", m.joules_per_token, lo_k, hi_k);
    put("joules_per_inference", m.joules_per_inference, lo_k, hi_k);
    put(
        "carbon_per_inference_g",
        m.carbon_per_inference_g,
        g_lo_k,
        g_hi_k,
    );
    put(
        "carbon_per_1k_tokens_g",
        m.carbon_per_1k_tokens_g,
        g_lo_k,
        g_hi_k,
    );
    put("sci_g_per_unit", m.sci_g_per_unit, g_lo_k, g_hi_k);
    m.ranges = ranges;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Method, SensorSource};
    use proptest::prelude::*;

    fn ordered(b: Bounds) -> bool {
        b.low <= b.value && b.value <= b.high
    }

    #[test]
    fn a_model_domain_spans_idle_to_full_load() {
        // 2 vCPUs, 0.64-3.86 W each, 10 s: 12.8-77.2 J around 30 J.
        let (b, basis) = domain_bounds(
            Method::Model,
            &SensorSource::UtilisationModel,
            30.0,
            10.0,
            Some((1.28, 7.72)),
        );
        assert!((b.low - 12.8).abs() < 1e-9 && (b.high - 77.2).abs() < 1e-9);
        assert_eq!(b.value, 30.0);
        assert!(basis.contains("span"));
    }

    #[test]
    fn nvml_takes_the_larger_of_5_w_and_5_percent() {
        // 10 s at 50 W = 500 J: 5 W x 10 s = 50 J beats 5 % = 25 J.
        let (b, _) = domain_bounds(Method::Counter, &SensorSource::Nvml, 500.0, 10.0, None);
        assert_eq!((b.low, b.high), (450.0, 550.0));
        // 10 s at 400 W = 4000 J: 5 % = 200 J beats 50 J.
        let (b, _) = domain_bounds(Method::Power, &SensorSource::Nvml, 4000.0, 10.0, None);
        assert_eq!((b.low, b.high), (3800.0, 4200.0));
        // Never below zero.
        let (b, _) = domain_bounds(Method::Power, &SensorSource::Nvml, 10.0, 10.0, None);
        assert_eq!(b.low, 0.0);
    }

    #[test]
    fn rapl_is_5_percent_and_the_unknown_is_exact() {
        let (b, _) = domain_bounds(
            Method::Counter,
            &SensorSource::RaplPowercap,
            200.0,
            1.0,
            None,
        );
        assert_eq!((b.low, b.high), (190.0, 210.0));
        let (b, basis) = domain_bounds(Method::Counter, &"agent-socket".into(), 200.0, 1.0, None);
        assert!(b.is_exact());
        assert_eq!(basis, "no published accuracy");
    }

    #[test]
    fn bounds_on_the_wrong_side_are_widened_to_the_value() {
        let b = Bounds::new(5.0, 3.0, 2.0);
        assert_eq!((b.low, b.value, b.high), (3.0, 3.0, 3.0));
    }

    #[test]
    fn range_text_writes_a_shared_unit_once() {
        let j = |x: f64| format!("{x:.1} J");
        assert_eq!(range_text(55.0, 120.0, j), "55.0-120.0 J");
        let g = |x: f64| {
            if x < 1.0 {
                format!("{:.0} mg", x * 1e3)
            } else {
                format!("{x:.1} g")
            }
        };
        assert_eq!(range_text(0.5, 2.0, g), "500 mg-2.0 g");
    }

    #[test]
    fn per_unit_needs_units() {
        assert_eq!(Bounds::exact(4.0).per(0.0), None);
        assert_eq!(
            Bounds::new(1.0, 2.0, 4.0).per(2.0),
            Some(Bounds::new(0.5, 1.0, 2.0))
        );
    }

    #[test]
    fn report_ranges_run_from_domains_to_grams_and_per_unit_metrics() {
        use crate::report::{DomainEnergy, RunReport};
        let mut r = RunReport::new("r".into());
        let dom = |name: &str, j: f64, lo: f64, hi: f64, counted: bool| DomainEnergy {
            name: name.into(),
            kind: crate::DomainKind::CpuModel,
            joules: j,
            source: SensorSource::UtilisationModel,
            method: Method::Model,
            counted_in_total: counted,
            device: None,
            avg_power_w: None,
            joules_low: Some(lo),
            joules_high: Some(hi),
            range_basis: None,
        };
        r.energy.domains = vec![
            dom("cpu-model", 60.0, 40.0, 100.0, true),
            dom("memory-model", 20.0, 19.0, 21.0, true),
            dom("core-0", 50.0, 0.0, 500.0, false),
        ];
        r.energy.total_j = 80.0;
        r.energy.pue = 1.5;
        r.carbon.operational_g = 8.0;
        r.carbon.embodied_g = 2.0;
        r.carbon.total_g = 10.0;
        r.metrics.energy_to_solution_j = 80.0;
        r.metrics.joules_per_token = Some(0.8);
        r.metrics.sci_g_per_unit = Some(0.1);
        r.carbon.market_operational_g = Some(4.0);
        r.energy.attribution = Some(crate::report::Attribution {
            share: 0.25,
            machine_j: 80.0,
            job_j: 20.0,
            rest_j: 60.0,
            ..Default::default()
        });
        fill_report_ranges(&mut r);
        // The job's share and the market-based grams carry the total's range.
        let a = r.energy.attribution.as_ref().unwrap();
        assert_eq!((a.job_j_low, a.job_j_high), (Some(14.75), Some(30.25)));
        let (ml, mh) = (
            r.carbon.market_operational_g_low.unwrap(),
            r.carbon.market_operational_g_high.unwrap(),
        );
        assert!((ml - 4.0 * 59.0 / 80.0).abs() < 1e-12 && (mh - 4.0 * 121.0 / 80.0).abs() < 1e-12);
        assert_eq!(
            (r.energy.total_j_low, r.energy.total_j_high),
            (Some(59.0), Some(121.0))
        );
        assert_eq!(
            (r.energy.facility_j_low, r.energy.facility_j_high),
            (Some(88.5), Some(181.5))
        );
        // Operational 8 g x 59/80 and x 121/80, embodied 2 g exact.
        assert!((r.carbon.total_g_low.unwrap() - (8.0 * 59.0 / 80.0 + 2.0)).abs() < 1e-12);
        assert!((r.carbon.total_g_high.unwrap() - (8.0 * 121.0 / 80.0 + 2.0)).abs() < 1e-12);
        let jt = r.metrics.ranges["joules_per_token"];
        assert!((jt.low - 0.59).abs() < 1e-12 && (jt.high - 1.21).abs() < 1e-12);
        assert!(r.metrics.ranges["sci_g_per_unit"].low < 0.1);
        assert!(!r.metrics.ranges.contains_key("carbon_per_inference_g"));
    }

    fn arb_bounds() -> impl Strategy<Value = Bounds> {
        (0.0f64..1e6, 0.0f64..1e6, 0.0f64..1e6).prop_map(|(a, b, c)| Bounds::new(a, b, c))
    }

    proptest! {
        #[test]
        fn every_derived_figure_keeps_low_value_high_in_order(
            domains in proptest::collection::vec(arb_bounds(), 0..8),
            pue in 1.0f64..3.0,
            intensity in arb_bounds(),
            units in 0.0f64..1e6,
            k in -10.0f64..10.0,
            frac in 0.0f64..2.0,
        ) {
            let total: Bounds = domains.iter().copied().sum();
            prop_assert!(ordered(total));
            let facility = total.scale(pue);
            prop_assert!(ordered(facility));
            let grams = facility.times(intensity);
            prop_assert!(ordered(grams));
            if let Some(per) = grams.per(units) {
                prop_assert!(ordered(per));
            }
            prop_assert!(ordered(total.scale(k)));
            prop_assert!(ordered(Bounds::relative(total.value, frac)));
        }

        #[test]
        fn domain_bounds_are_ordered_for_every_method(
            j in 0.0f64..1e7, dur in 0.0f64..1e5, lo in 0.0f64..1e3, hi in 0.0f64..1e3,
        ) {
            for (m, s, pb) in [
                (Method::Model, SensorSource::UtilisationModel, Some((lo, hi))),
                (Method::Counter, SensorSource::RaplPerf, None),
                (Method::Power, SensorSource::Nvml, None),
                (Method::Power, SensorSource::Hwmon, None),
            ] {
                let (b, _) = domain_bounds(m, &s, j, dur, pb);
                prop_assert!(ordered(b), "{m:?} {b:?}");
            }
        }
    }
}
