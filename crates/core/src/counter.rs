//! Energy counters that wrap: differencing with wraparound, and the guard period that keeps
//! a wrap from being missed.

use crate::units::Joules;

/// A power no CPU package or DRAM domain reaches, W: the guard period's (and the plausibility
/// bound's) maximum power when the hardware declares none (powercap zones without
/// `constraint_*_max_power_uw`). The largest x86 server sockets are rated ~500 W (AMD EPYC
/// 9005 up to 500 W TDP, AMD product pages 2024).
pub const DEFAULT_MAX_POWER_W: f64 = 1000.0;

/// Differences successive raw readings of a monotonically increasing counter that wraps at
/// `range` back to zero. The first reading yields nothing: counters rarely start at zero.
#[derive(Clone, Debug)]
pub struct CounterDiff {
    range_j: Option<f64>,
    last_raw_j: Option<f64>,
}

/// The outcome of feeding one raw reading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CounterStep {
    /// The first reading: a baseline, no energy yet.
    Baseline,
    /// Energy since the previous reading, with whether the counter wrapped in between.
    Delta { joules: Joules, wrapped: bool },
    /// The counter went backwards on a counter with no known range: a reset. Re-baselined,
    /// the interval's energy is unknown and must be flagged as a gap.
    Reset,
}

impl CounterDiff {
    /// `range_j`: the counter's wrap range in joules (`max_energy_range_uj` x 1e-6); `None` for a
    /// counter that does not wrap in practice (64-bit).
    pub fn new(range_j: Option<f64>) -> Self {
        CounterDiff {
            range_j: range_j.filter(|r| *r > 0.0 && r.is_finite()),
            last_raw_j: None,
        }
    }

    pub fn range_j(&self) -> Option<f64> {
        self.range_j
    }

    /// Feed the next raw reading, in joules.
    pub fn step(&mut self, raw_j: f64) -> CounterStep {
        let prev = self.last_raw_j.replace(raw_j);
        let Some(prev) = prev else {
            return CounterStep::Baseline;
        };
        if raw_j >= prev {
            return CounterStep::Delta {
                joules: Joules(raw_j - prev),
                wrapped: false,
            };
        }
        match self.range_j {
            // Wrapped once: the rest of the range, then from zero up to the new value.
            Some(range) if prev <= range => CounterStep::Delta {
                joules: Joules(range - prev + raw_j),
                wrapped: true,
            },
            _ => CounterStep::Reset,
        }
    }
}

/// The longest interval between two reads of a counter that can wrap, such that at most one
/// wrap happens in between: half the time the counter takes to cover its range at the
/// domain's maximum power. `None` when the counter cannot wrap.
///
/// `max_power_w` falls back to `default_max_power_w` when the hardware does not say.
pub fn wrap_guard_period_s(range_j: Option<f64>, max_power_w: Option<f64>) -> Option<f64> {
    let range = range_j.filter(|r| *r > 0.0 && r.is_finite())?;
    let p = max_power_w
        .filter(|p| *p > 0.0 && p.is_finite())
        .unwrap_or(DEFAULT_MAX_POWER_W);
    Some(range / p / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_reading_is_a_baseline() {
        let mut c = CounterDiff::new(Some(100.0));
        assert_eq!(c.step(42.0), CounterStep::Baseline);
        assert_eq!(
            c.step(50.0),
            CounterStep::Delta {
                joules: Joules(8.0),
                wrapped: false
            }
        );
    }

    #[test]
    fn wrapped_counter_adds_the_range_once() {
        let mut c = CounterDiff::new(Some(100.0));
        c.step(90.0);
        assert_eq!(
            c.step(5.0),
            CounterStep::Delta {
                joules: Joules(15.0),
                wrapped: true
            }
        );
    }

    #[test]
    fn backwards_without_a_range_is_a_reset_not_energy() {
        let mut c = CounterDiff::new(None);
        c.step(90.0);
        assert_eq!(c.step(5.0), CounterStep::Reset);
        assert_eq!(
            c.step(7.0),
            CounterStep::Delta {
                joules: Joules(2.0),
                wrapped: false
            }
        );
    }

    #[test]
    fn guard_period_is_half_the_time_to_cover_the_range() {
        // 262143.328850 J range (a typical package) at 125 W max.
        let p = wrap_guard_period_s(Some(262_143.328_85), Some(125.0)).unwrap();
        assert!((p - 1_048.573_315_4).abs() < 1e-6);
        assert_eq!(wrap_guard_period_s(None, Some(10.0)), None);
        assert_eq!(wrap_guard_period_s(Some(2000.0), None), Some(1.0));
    }

    proptest! {
        /// Whatever the start value and the increments (each below the range), the sum of the
        /// deltas equals the true energy.
        #[test]
        fn deltas_sum_to_true_energy_across_wraps(
            range in 1.0e3f64..1.0e7,
            start_frac in 0.0f64..1.0,
            incs in proptest::collection::vec(0.0f64..0.999, 1..200),
        ) {
            let mut c = CounterDiff::new(Some(range));
            let mut raw = start_frac * range;
            c.step(raw);
            let mut truth = 0.0;
            let mut measured = 0.0;
            for f in incs {
                let inc = f * range;
                truth += inc;
                raw = (raw + inc) % range;
                match c.step(raw) {
                    CounterStep::Delta { joules, .. } => measured += joules.0,
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert!((truth - measured).abs() <= 1e-6 * truth.max(1.0));
        }
    }
}
