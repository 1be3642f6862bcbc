//! The utilisation power model for machines with no readable energy sensor.
//!
//! CPU power follows one of two curves of utilisation ([`CpuCurve`]): a known CPU's TDP scaled
//! by a load curve, or, for VMs and unknown CPUs, Cloud Carbon Footprint's linear per-vCPU
//! model; memory power is a constant per gigabyte. Every number from here is an estimate and
//! is labelled `model` by its sensor.
//! Sources: the curve is Teads / Boavizta's (power/TDP = 0.12, 0.32, 0.75, 1.02 at 0, 10, 50,
//! 100 % load, linear in between); the per-vCPU model is CCF's (`min + u x (max - min)` W per
//! vCPU, coefficients in `wattprint_data::ccf`); 0.392 W/GB is Cloud Carbon Footprint's memory
//! coefficient (mean of Crucial 0.375 and Micron 0.408 W/GB).

use crate::units::Watts;

/// The load curve's points: (utilisation 0..=1, power as a fraction of TDP).
pub const LOAD_CURVE: [(f64, f64); 4] = [(0.0, 0.12), (0.10, 0.32), (0.50, 0.75), (1.00, 1.02)];

/// Memory power per gigabyte (10^9 bytes) of installed memory, W/GB (Cloud Carbon Footprint).
pub const MEMORY_W_PER_GB: f64 = 0.392;

/// The two figures CCF's memory coefficient averages, W/GB: Crucial 0.375 and Micron 0.408
/// (the bounds of the modelled memory power).
pub const MEMORY_W_PER_GB_RANGE: (f64, f64) = (0.375, 0.408);

/// Power as a fraction of TDP at `utilisation` (0..=1; clamped; NaN counts as idle), by
/// piecewise-linear interpolation of [`LOAD_CURVE`].
pub fn load_fraction(utilisation: f64) -> f64 {
    let u = if utilisation.is_nan() {
        0.0
    } else {
        utilisation.clamp(0.0, 1.0)
    };
    for pair in LOAD_CURVE.windows(2) {
        let ((u0, f0), (u1, f1)) = (pair[0], pair[1]);
        if u <= u1 {
            return f0 + (f1 - f0) * (u - u0) / (u1 - u0);
        }
    }
    LOAD_CURVE[LOAD_CURVE.len() - 1].1
}

/// Modelled CPU power at `utilisation` for a CPU (or set of sockets) with total TDP `tdp_w`.
pub fn cpu_power(tdp_w: f64, utilisation: f64) -> Watts {
    Watts(tdp_w.max(0.0) * load_fraction(utilisation))
}

/// Modelled memory power for `memory_bytes` of installed memory.
pub fn memory_power(memory_bytes: u64) -> Watts {
    Watts(memory_bytes as f64 / 1e9 * MEMORY_W_PER_GB)
}

/// How modelled CPU power depends on utilisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CpuCurve {
    /// A known CPU: `tdp_w` (all sockets, W) x [`load_fraction`].
    Tdp { tdp_w: f64 },
    /// Cloud Carbon Footprint's model: `vcpus x (min_w + u x (max_w - min_w))`, with `min_w`
    /// and `max_w` the W of one vCPU at idle and at full load; `vcpus` may be fractional (a
    /// container's `cpu.max` allowance).
    PerVcpu { vcpus: f64, min_w: f64, max_w: f64 },
}

impl CpuCurve {
    /// Modelled power at `utilisation` (0..=1 of the CPUs modelled; clamped; NaN is idle).
    pub fn power(&self, utilisation: f64) -> Watts {
        match *self {
            CpuCurve::Tdp { tdp_w } => cpu_power(tdp_w, utilisation),
            CpuCurve::PerVcpu {
                vcpus,
                min_w,
                max_w,
            } => {
                let u = if utilisation.is_nan() {
                    0.0
                } else {
                    utilisation.clamp(0.0, 1.0)
                };
                Watts(vcpus.max(0.0) * (min_w + u * (max_w - min_w)).max(0.0))
            }
        }
    }

    /// Modelled power at idle, W.
    pub fn idle(&self) -> Watts {
        self.power(0.0)
    }

    /// Modelled power at full load, W.
    pub fn full_load(&self) -> Watts {
        self.power(1.0)
    }
}

/// Utilisation of `vcpus` CPUs (a container's allowance) when the whole machine of `threads`
/// hardware threads is busy `machine_utilisation` (0..=1) of the time: the machine's busy CPUs,
/// capped at the allowance, over the allowance. Without a smaller allowance it is the
/// machine's utilisation.
pub fn allowance_utilisation(machine_utilisation: f64, threads: f64, vcpus: f64) -> f64 {
    if vcpus.is_nan() || vcpus <= 0.0 || vcpus >= threads {
        return machine_utilisation;
    }
    (machine_utilisation * threads / vcpus).clamp(0.0, 1.0)
}

/// Utilisation over an interval from busy and total CPU time deltas (any common unit);
/// `None` when no CPU time elapsed (no division by zero).
pub fn utilisation(busy_delta: u64, total_delta: u64) -> Option<f64> {
    (total_delta > 0).then(|| (busy_delta.min(total_delta)) as f64 / total_delta as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_curve_passes_through_its_published_points() {
        assert_eq!(load_fraction(0.0), 0.12);
        assert!((load_fraction(0.10) - 0.32).abs() < 1e-12);
        assert!((load_fraction(0.50) - 0.75).abs() < 1e-12);
        assert!((load_fraction(1.0) - 1.02).abs() < 1e-12);
    }

    #[test]
    fn the_curve_is_linear_between_points() {
        // Halfway between 10 % (0.32) and 50 % (0.75): 30 % -> 0.535.
        assert!((load_fraction(0.30) - 0.535).abs() < 1e-12);
        // 5 % -> halfway between 0.12 and 0.32.
        assert!((load_fraction(0.05) - 0.22).abs() < 1e-12);
        // 75 % -> halfway between 0.75 and 1.02.
        assert!((load_fraction(0.75) - 0.885).abs() < 1e-12);
    }

    #[test]
    fn out_of_range_and_nan_are_clamped() {
        assert_eq!(load_fraction(-1.0), 0.12);
        assert!((load_fraction(7.0) - 1.02).abs() < 1e-12);
        assert_eq!(load_fraction(f64::NAN), 0.12);
    }

    #[test]
    fn a_65_w_cpu_at_half_load_draws_48_75_w() {
        assert!((cpu_power(65.0, 0.5).0 - 48.75).abs() < 1e-9);
    }

    #[test]
    fn memory_is_0_392_w_per_gb() {
        assert!((memory_power(16_000_000_000).0 - 6.272).abs() < 1e-9);
    }

    #[test]
    fn per_vcpu_curve_is_linear_between_ccf_min_and_max() {
        // 2 vCPUs of AWS Cascade Lake (0.64-3.97 W) at 50 %: 2 x (0.64 + 0.5 x 3.33) = 4.61 W.
        let c = CpuCurve::PerVcpu {
            vcpus: 2.0,
            min_w: 0.64,
            max_w: 3.97,
        };
        assert!((c.power(0.5).0 - 4.61).abs() < 1e-12);
        assert!((c.idle().0 - 1.28).abs() < 1e-12);
        assert!((c.full_load().0 - 7.94).abs() < 1e-12);
        assert_eq!(c.power(f64::NAN), c.idle());
        assert_eq!(c.power(3.0), c.full_load());
    }

    #[test]
    fn tdp_curve_is_the_load_curve() {
        let c = CpuCurve::Tdp { tdp_w: 100.0 };
        assert!((c.idle().0 - 12.0).abs() < 1e-12);
        assert!((c.full_load().0 - 102.0).abs() < 1e-12);
    }

    #[test]
    fn a_container_allowance_caps_the_busy_cpus_it_is_charged_for() {
        // 8 threads 25 % busy = 2 busy CPUs; an allowance of 4 CPUs is 50 % used.
        assert!((allowance_utilisation(0.25, 8.0, 4.0) - 0.5).abs() < 1e-12);
        // 6 busy CPUs exceed an allowance of 4: capped at full.
        assert_eq!(allowance_utilisation(0.75, 8.0, 4.0), 1.0);
        // No smaller allowance: the machine's figure.
        assert_eq!(allowance_utilisation(0.3, 8.0, 8.0), 0.3);
        assert_eq!(allowance_utilisation(0.3, 8.0, 0.0), 0.3);
    }

    #[test]
    fn utilisation_needs_elapsed_time() {
        assert_eq!(utilisation(5, 0), None);
        assert_eq!(utilisation(25, 100), Some(0.25));
        assert_eq!(utilisation(200, 100), Some(1.0));
    }

    proptest! {
        #[test]
        fn the_curve_is_monotonic_and_bounded(a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(load_fraction(lo) <= load_fraction(hi) + 1e-15);
            prop_assert!((0.12..=1.02 + 1e-12).contains(&load_fraction(a)));
        }

        #[test]
        fn every_curve_stays_between_idle_and_full_load(
            u in -1.0f64..2.0, vcpus in 0.1f64..256.0, min_w in 0.1f64..5.0, extra in 0.0f64..10.0,
        ) {
            for c in [CpuCurve::PerVcpu { vcpus, min_w, max_w: min_w + extra },
                      CpuCurve::Tdp { tdp_w: vcpus }] {
                let p = c.power(u).0;
                prop_assert!(c.idle().0 <= p + 1e-12 && p <= c.full_load().0 + 1e-12);
            }
        }
    }
}
