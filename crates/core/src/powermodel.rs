//! The utilisation power model for machines with no readable energy sensor.
//!
//! CPU power is the TDP scaled by a load curve of utilisation; memory power is a constant per
//! gigabyte. Every number from here is an estimate and is labelled `model` by its sensor.
//! Sources: the curve is Teads / Boavizta's (power/TDP = 0.12, 0.32, 0.75, 1.02 at 0, 10, 50,
//! 100 % load, linear in between); 0.392 W/GB is Cloud Carbon Footprint's memory coefficient
//! (mean of Crucial 0.375 and Micron 0.408 W/GB).

use crate::units::Watts;

/// The load curve's points: (utilisation 0..=1, power as a fraction of TDP).
pub const LOAD_CURVE: [(f64, f64); 4] = [(0.0, 0.12), (0.10, 0.32), (0.50, 0.75), (1.00, 1.02)];

/// Memory power per gigabyte (10^9 bytes) of installed memory, W/GB (Cloud Carbon Footprint).
pub const MEMORY_W_PER_GB: f64 = 0.392;

/// TDP assumed per hardware thread when the CPU model is not in the table, W: the mean
/// "Max Watts" per vCPU over Cloud Carbon Footprint's AWS coefficients (2023), 4.34 W.
pub const DEFAULT_TDP_PER_THREAD_W: f64 = 4.34;

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

/// TDP to assume for `threads` hardware threads of an unknown CPU, W.
pub fn default_tdp_w(threads: u32) -> f64 {
    f64::from(threads.max(1)) * DEFAULT_TDP_PER_THREAD_W
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
    fn default_tdp_scales_with_threads() {
        assert!((default_tdp_w(2) - 8.68).abs() < 1e-12);
        assert!((default_tdp_w(0) - 4.34).abs() < 1e-12);
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
    }
}
