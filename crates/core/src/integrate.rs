//! Integration of sampled power into energy: the trapezoid rule.

use crate::units::{Joules, Watts};

/// Integrates power samples taken at monotonic times (seconds) by the trapezoid rule:
/// between samples (t0, p0) and (t1, p1) the energy is (p0 + p1) / 2 x (t1 - t0).
#[derive(Clone, Debug, Default)]
pub struct Trapezoid {
    last: Option<(f64, f64)>,
}

impl Trapezoid {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a sample; returns the energy since the previous one (zero for the first, for a
    /// non-increasing time, or for a non-finite power, which restarts the integration).
    pub fn sample(&mut self, t_s: f64, power: Watts) -> Joules {
        self.sample_bounded(t_s, power).0
    }

    /// [`Trapezoid::sample`], with the bound of its integration error: whatever the power
    /// did between the two samples, if it stayed between them the true energy is within
    /// |p1 - p0| x (t1 - t0) / 2 of the trapezoid's, J.
    pub fn sample_bounded(&mut self, t_s: f64, power: Watts) -> (Joules, Joules) {
        if !power.0.is_finite() || !t_s.is_finite() {
            self.last = None;
            return (Joules::ZERO, Joules::ZERO);
        }
        let prev = self.last.replace((t_s, power.0));
        match prev {
            Some((t0, p0)) if t_s > t0 => (
                Joules((p0 + power.0) / 2.0 * (t_s - t0)),
                Joules((power.0 - p0).abs() / 2.0 * (t_s - t0)),
            ),
            _ => (Joules::ZERO, Joules::ZERO),
        }
    }

    /// Forget the last sample (after a gap: the gap's energy is unknown, not interpolated).
    pub fn restart(&mut self) {
        self.last = None;
    }
}

/// Energy of a whole series of (t_s, watts) samples by the trapezoid rule.
pub fn trapezoid_energy(samples: &[(f64, Watts)]) -> Joules {
    let mut t = Trapezoid::new();
    samples.iter().map(|(ts, w)| t.sample(*ts, *w)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn constant_power_gives_power_times_time() {
        let s: Vec<_> = (0..=10).map(|i| (i as f64 * 0.5, Watts(40.0))).collect();
        assert!((trapezoid_energy(&s).0 - 200.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_is_integrated_exactly() {
        // 0 W to 100 W over 10 s: 500 J.
        let s: Vec<_> = (0..=10)
            .map(|i| (i as f64, Watts(i as f64 * 10.0)))
            .collect();
        assert!((trapezoid_energy(&s).0 - 500.0).abs() < 1e-9);
    }

    #[test]
    fn the_integration_bound_is_half_the_step_times_the_interval() {
        let mut t = Trapezoid::new();
        t.sample_bounded(0.0, Watts(100.0));
        // 100 W then 300 W 0.5 s later: 100 J by the trapezoid, within 50 J whatever
        // happened in between.
        assert_eq!(
            t.sample_bounded(0.5, Watts(300.0)),
            (Joules(100.0), Joules(50.0))
        );
        // Steady power: no integration error.
        assert_eq!(
            t.sample_bounded(1.0, Watts(300.0)),
            (Joules(150.0), Joules(0.0))
        );
    }

    #[test]
    fn a_nan_sample_restarts_instead_of_poisoning() {
        let mut t = Trapezoid::new();
        t.sample(0.0, Watts(10.0));
        assert_eq!(t.sample(1.0, Watts(f64::NAN)), Joules::ZERO);
        assert_eq!(t.sample(2.0, Watts(10.0)), Joules::ZERO);
        assert_eq!(t.sample(3.0, Watts(10.0)), Joules(10.0));
    }

    proptest! {
        #[test]
        fn linear_power_is_exact_for_any_sampling(
            a in 0.0f64..500.0, b in -10.0f64..10.0,
            gaps in proptest::collection::vec(0.001f64..2.0, 1..100),
        ) {
            let mut t = 0.0;
            let mut s = vec![(0.0, Watts(a))];
            for g in gaps { t += g; s.push((t, Watts(a + b * t))); }
            let exact = a * t + b * t * t / 2.0;
            prop_assert!((trapezoid_energy(&s).0 - exact).abs() <= 1e-7 * exact.abs().max(1.0));
        }
    }
}
