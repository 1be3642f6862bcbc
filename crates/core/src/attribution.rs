//! Attribution on shared machines: the wrapped job's share of the machine's energy by CPU time.
//!
//! The job is charged its CPU-time share of the machine's *active* energy. Idle energy, when
//! the sensor can tell it (the utilisation model can), is reported apart and never spread;
//! when it cannot (hardware counters), the share applies to the whole machine energy and the
//! method says so.

/// The job's share of the machine's busy CPU time, 0..=1; `None` when the machine recorded no
/// busy time (nothing to divide by).
///
/// `job_cpu_s` and `machine_busy_cpu_s` cover the same interval. The two come from sources of
/// different resolution (the job's in ns or µs, the machine's in 10 ms ticks), so the ratio is
/// clamped to 1.
pub fn cpu_share(job_cpu_s: f64, machine_busy_cpu_s: f64) -> Option<f64> {
    if machine_busy_cpu_s.is_nan()
        || machine_busy_cpu_s <= 0.0
        || !machine_busy_cpu_s.is_finite()
        || !job_cpu_s.is_finite()
    {
        return None;
    }
    Some((job_cpu_s.max(0.0) / machine_busy_cpu_s).clamp(0.0, 1.0))
}

/// Energy split of a machine between a job, idle and everything else, J.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    pub machine_j: f64,
    pub job_j: f64,
    /// `machine_j - job_j`: neighbours and idle.
    pub rest_j: f64,
    /// The idle part of `rest_j`, when known.
    pub idle_j: Option<f64>,
}

/// Split `machine_j` by `share`. With `idle_j` known, the job gets `share` of the active energy
/// (`machine_j - idle_j`); otherwise `share` of everything.
pub fn split(machine_j: f64, share: f64, idle_j: Option<f64>) -> Split {
    let machine_j = machine_j.max(0.0);
    let share = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let idle_j = idle_j
        .filter(|j| j.is_finite())
        .map(|j| j.clamp(0.0, machine_j));
    let active_j = machine_j - idle_j.unwrap_or(0.0);
    let job_j = share * active_j;
    Split {
        machine_j,
        job_j,
        rest_j: machine_j - job_j,
        idle_j,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn share_is_job_time_over_busy_time() {
        assert_eq!(cpu_share(1.5, 6.0), Some(0.25));
    }

    #[test]
    fn no_busy_time_means_no_share_not_a_division_by_zero() {
        assert_eq!(cpu_share(1.0, 0.0), None);
        assert_eq!(cpu_share(1.0, f64::NAN), None);
        assert_eq!(cpu_share(f64::NAN, 1.0), None);
    }

    #[test]
    fn a_job_coarser_than_the_ticks_is_capped_at_the_whole_machine() {
        assert_eq!(cpu_share(0.013, 0.010), Some(1.0));
    }

    #[test]
    fn idle_is_kept_apart_when_known() {
        // 100 J machine, 40 J idle, job has half the busy time: 30 J of the 60 J active.
        let s = split(100.0, 0.5, Some(40.0));
        assert_eq!(s.job_j, 30.0);
        assert_eq!(s.rest_j, 70.0);
        assert_eq!(s.idle_j, Some(40.0));
    }

    #[test]
    fn without_idle_the_share_applies_to_everything() {
        let s = split(100.0, 0.25, None);
        assert_eq!(s.job_j, 25.0);
        assert_eq!(s.rest_j, 75.0);
        assert_eq!(s.idle_j, None);
    }

    proptest! {
        #[test]
        fn parts_add_up_and_stay_in_range(
            m in 0.0f64..1e6, share in -1.0f64..2.0, idle in proptest::option::of(-10.0f64..2e6),
        ) {
            let s = split(m, share, idle);
            prop_assert!((s.job_j + s.rest_j - s.machine_j).abs() <= 1e-9 * m.max(1.0));
            prop_assert!(s.job_j >= 0.0 && s.job_j <= s.machine_j + 1e-9);
            if let Some(i) = s.idle_j { prop_assert!(i <= s.rest_j + 1e-9 * m.max(1.0)); }
        }
    }
}
