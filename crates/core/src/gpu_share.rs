//! GPU attribution: the wrapped job's share of GPU energy when other processes share its
//! GPUs (SPEC: Attribution, "GPU processes by their utilisation share").
//!
//! Input: each GPU's energy over the run and the per-process utilisation samples the driver
//! took (NVML `nvmlDeviceGetProcessUtilization`: SM percent per process per sample period).
//! Per GPU, the job's share is Σ SM% of the job's processes / Σ SM% of all processes. A GPU
//! with no process samples ran nothing the driver saw: its energy is idle, reported apart and
//! not charged to anyone. Pure arithmetic.

use crate::report::Attribution;
use std::collections::{BTreeMap, BTreeSet};

/// The method string the report carries.
pub const GPU_SHARE_METHOD: &str = "per GPU: energy x the job's share of SM utilisation \
    (NVML per-process samples); GPUs with no process samples are idle, kept apart";

/// One GPU's energy over the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuEnergy {
    pub gpu_index: u32,
    pub joules: f64,
}

/// One per-process utilisation sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcUtil {
    pub gpu_index: u32,
    pub pid: u32,
    /// SM utilisation over the sample period, percent.
    pub sm_util_pct: f64,
}

/// The job's share of one GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuShare {
    pub gpu_index: u32,
    /// 0..=1; `None`: no process samples (idle GPU).
    pub share: Option<f64>,
    pub job_j: f64,
}

/// Split GPU energy between the job (`job_pids`) and everything else. `Err` says why no
/// attribution is needed or possible (nothing shared the GPUs, or no samples at all): then
/// the GPU domains stand as measured.
pub fn attribute_gpu_energy(
    gpus: &[GpuEnergy],
    samples: &[ProcUtil],
    job_pids: &BTreeSet<u32>,
) -> Result<(Attribution, Vec<GpuShare>), String> {
    if gpus.is_empty() {
        return Err("no GPU was measured".into());
    }
    let usable = |s: &&ProcUtil| s.sm_util_pct.is_finite() && s.sm_util_pct > 0.0;
    let mut used = samples.iter().filter(usable);
    if used.clone().next().is_none() {
        return Err("the driver gave no per-process utilisation samples".into());
    }
    if !used.clone().any(|s| job_pids.contains(&s.pid)) {
        // Also the case when the driver reports PIDs of another PID namespace (containers):
        // never charge the job zero on that evidence.
        return Err(
            "none of the GPU processes sampled belongs to the job (another PID namespace, or \
             the job did not use the GPUs): GPU energy is reported unattributed"
                .into(),
        );
    }
    if !used.any(|s| !job_pids.contains(&s.pid)) {
        return Err("only the job's processes used the GPUs: all GPU energy is the job's".into());
    }
    // Per GPU: (job SM%, all SM%).
    let mut util: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for s in samples.iter().filter(usable) {
        let e = util.entry(s.gpu_index).or_insert((0.0, 0.0));
        if job_pids.contains(&s.pid) {
            e.0 += s.sm_util_pct;
        }
        e.1 += s.sm_util_pct;
    }
    let mut per_gpu = Vec::with_capacity(gpus.len());
    let (mut machine_j, mut job_j, mut idle_j) = (0.0, 0.0, 0.0);
    for g in gpus {
        let joules = if g.joules.is_finite() && g.joules > 0.0 {
            g.joules
        } else {
            0.0
        };
        machine_j += joules;
        let share = util
            .get(&g.gpu_index)
            .filter(|(_, all)| *all > 0.0)
            .map(|(job, all)| job / all);
        let j = share.map_or(0.0, |s| s * joules);
        if share.is_none() {
            idle_j += joules;
        }
        job_j += j;
        per_gpu.push(GpuShare {
            gpu_index: g.gpu_index,
            share,
            job_j: j,
        });
    }
    let share = if machine_j > 0.0 {
        job_j / machine_j
    } else {
        let (job, all) = util
            .values()
            .fold((0.0, 0.0), |acc, (j, a)| (acc.0 + j, acc.1 + a));
        if all > 0.0 {
            job / all
        } else {
            0.0
        }
    };
    Ok((
        Attribution {
            method: GPU_SHARE_METHOD.to_string(),
            share,
            machine_j,
            job_j,
            rest_j: machine_j - job_j,
            idle_j: Some(idle_j),
            ..Default::default()
        },
        per_gpu,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pids(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    fn s(gpu: u32, pid: u32, pct: f64) -> ProcUtil {
        ProcUtil {
            gpu_index: gpu,
            pid,
            sm_util_pct: pct,
        }
    }

    #[test]
    fn shared_gpu_is_split_by_sm_utilisation() {
        let gpus = [GpuEnergy {
            gpu_index: 0,
            joules: 1000.0,
        }];
        // Job (pids 10, 11) 60 % + 15 %, neighbour 25 % over the samples.
        let samples = [
            s(0, 10, 40.0),
            s(0, 11, 15.0),
            s(0, 99, 25.0),
            s(0, 10, 20.0),
        ];
        let (a, per) = attribute_gpu_energy(&gpus, &samples, &pids(&[10, 11])).unwrap();
        assert_eq!(a.job_j, 750.0);
        assert_eq!(a.rest_j, 250.0);
        assert_eq!(a.share, 0.75);
        assert_eq!(a.machine_j, 1000.0);
        assert_eq!(a.idle_j, Some(0.0));
        assert_eq!(per[0].share, Some(0.75));
        assert_eq!(a.method, GPU_SHARE_METHOD);
    }

    #[test]
    fn each_gpu_has_its_own_share_and_idle_gpus_are_kept_apart() {
        let gpus = [
            GpuEnergy {
                gpu_index: 0,
                joules: 400.0,
            },
            GpuEnergy {
                gpu_index: 1,
                joules: 600.0,
            },
            GpuEnergy {
                gpu_index: 2,
                joules: 100.0,
            },
        ];
        let samples = [s(0, 1, 50.0), s(0, 2, 50.0), s(1, 1, 90.0)];
        let (a, per) = attribute_gpu_energy(&gpus, &samples, &pids(&[1])).unwrap();
        // GPU 0: half of 400; GPU 1: all of 600; GPU 2: idle.
        assert_eq!(a.job_j, 800.0);
        assert_eq!(a.idle_j, Some(100.0));
        assert_eq!(a.rest_j, 300.0);
        assert_eq!(a.machine_j, 1100.0);
        assert_eq!(per[2].share, None);
        assert_eq!(a.share, 800.0 / 1100.0);
    }

    #[test]
    fn no_neighbours_means_no_attribution() {
        let gpus = [GpuEnergy {
            gpu_index: 0,
            joules: 10.0,
        }];
        let e = attribute_gpu_energy(&gpus, &[s(0, 5, 80.0)], &pids(&[5])).unwrap_err();
        assert!(e.contains("only the job's processes"), "{e}");
        let e = attribute_gpu_energy(&gpus, &[], &pids(&[5])).unwrap_err();
        assert!(e.contains("no per-process utilisation samples"), "{e}");
        let e = attribute_gpu_energy(&[], &[s(0, 6, 1.0)], &pids(&[5])).unwrap_err();
        assert_eq!(e, "no GPU was measured");
    }

    #[test]
    fn job_never_seen_on_the_gpus_is_not_charged_zero_silently() {
        let gpus = [GpuEnergy {
            gpu_index: 0,
            joules: 50.0,
        }];
        let e = attribute_gpu_energy(&gpus, &[s(0, 7, 30.0)], &pids(&[5])).unwrap_err();
        assert!(
            e.contains("none of the GPU processes sampled belongs to the job"),
            "{e}"
        );
    }

    #[test]
    fn job_absent_from_one_shared_gpu_gets_nothing_there() {
        let gpus = [
            GpuEnergy {
                gpu_index: 0,
                joules: 50.0,
            },
            GpuEnergy {
                gpu_index: 1,
                joules: 30.0,
            },
        ];
        let samples = [s(0, 7, 30.0), s(1, 5, 10.0)];
        let (a, per) = attribute_gpu_energy(&gpus, &samples, &pids(&[5])).unwrap();
        assert_eq!((per[0].job_j, per[1].job_j), (0.0, 30.0));
        assert_eq!((a.job_j, a.rest_j), (30.0, 50.0));
    }

    #[test]
    fn nonsense_samples_and_energies_do_not_poison_the_split() {
        let gpus = [GpuEnergy {
            gpu_index: 0,
            joules: f64::NAN,
        }];
        let samples = [
            s(0, 1, f64::NAN),
            s(0, 1, 10.0),
            s(0, 2, 30.0),
            s(0, 2, -5.0),
        ];
        let (a, _) = attribute_gpu_energy(&gpus, &samples, &pids(&[1])).unwrap();
        assert_eq!(a.machine_j, 0.0);
        assert_eq!(a.job_j, 0.0);
        assert_eq!(a.share, 0.25);
    }

    proptest! {
        #[test]
        fn job_plus_rest_is_the_machine(
            energies in prop::collection::vec(0.0..1e6f64, 1..4),
            samples in prop::collection::vec((0u32..4, 0u32..5, 0.0..100.0f64), 0..20),
        ) {
            let gpus: Vec<GpuEnergy> = energies
                .iter()
                .enumerate()
                .map(|(i, j)| GpuEnergy { gpu_index: i as u32, joules: *j })
                .collect();
            let samples: Vec<ProcUtil> = samples.iter().map(|(g, p, u)| s(*g, *p, *u)).collect();
            if let Ok((a, _)) = attribute_gpu_energy(&gpus, &samples, &pids(&[0, 1])) {
                prop_assert!((a.job_j + a.rest_j - a.machine_j).abs() <= 1e-6 * a.machine_j.max(1.0));
                prop_assert!((0.0..=1.0).contains(&a.share));
                prop_assert!(a.job_j <= a.machine_j + 1e-9);
                prop_assert!(a.idle_j.unwrap() <= a.rest_j + 1e-6);
            }
        }
    }
}
