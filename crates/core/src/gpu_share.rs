//! GPU attribution: the wrapped job's share of GPU energy when other processes share its
//! GPUs (SPEC: Attribution, "GPU processes by their utilisation share").
//!
//! Input: each GPU's energy over the run and the per-process utilisation samples the driver
//! took (NVML `nvmlDeviceGetProcessUtilization`: SM percent per process per sample period).
//! Per GPU, the job's share is Σ SM% of the job's processes / Σ SM% of all processes. A GPU
//! with no process samples ran nothing the driver saw: its energy is idle, reported apart and
//! not charged to anyone. Pure arithmetic.
//!
//! The agent's per-workload split ([`process_energy`], [`energy_by_owner`]) uses the same
//! shares slice by slice: each process's part of each GPU's energy goes to the workload its
//! cgroup names, the rest (idle GPUs, processes in no workload) stays unattributed.

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
    let usable = |s: &&ProcUtil| usable_pct(s).is_some();
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
    let all = sm_totals(samples);
    let mut util: BTreeMap<u32, (f64, f64)> = all.iter().map(|(&g, &a)| (g, (0.0, a))).collect();
    for s in samples.iter().filter(usable) {
        if job_pids.contains(&s.pid) {
            if let Some(e) = util.get_mut(&s.gpu_index) {
                e.0 += s.sm_util_pct;
            }
        }
    }
    let mut per_gpu = Vec::with_capacity(gpus.len());
    let (mut machine_j, mut job_j, mut idle_j) = (0.0, 0.0, 0.0);
    for g in gpus {
        let joules = clean_j(g.joules);
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

/// A sample's SM percent when it counts (finite, above 0).
fn usable_pct(s: &ProcUtil) -> Option<f64> {
    (s.sm_util_pct.is_finite() && s.sm_util_pct > 0.0).then_some(s.sm_util_pct)
}

/// A GPU's energy when it counts (finite, above 0), else 0, J.
fn clean_j(j: f64) -> f64 {
    if j.is_finite() && j > 0.0 {
        j
    } else {
        0.0
    }
}

/// SM percent of every process summed per GPU (the denominator of each process's share).
fn sm_totals(samples: &[ProcUtil]) -> BTreeMap<u32, f64> {
    let mut all: BTreeMap<u32, f64> = BTreeMap::new();
    for s in samples {
        if let Some(p) = usable_pct(s) {
            *all.entry(s.gpu_index).or_insert(0.0) += p;
        }
    }
    all
}

/// One process's part of one GPU's energy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessEnergy {
    pub gpu_index: u32,
    pub pid: u32,
    /// The process's SM share of the GPU, 0..=1.
    pub share: f64,
    /// `share` x the GPU's energy, J.
    pub joules: f64,
}

/// Each process's part of each GPU's energy: per GPU, energy x the process's SM percent
/// summed over its samples / every process's SM percent summed (the share `run` uses).
/// One entry per (GPU, PID), in that order; GPUs without usable samples (idle) and samples
/// of GPUs not in `gpus` give none. Negative or non-finite energies and percentages count
/// as 0.
pub fn process_energy(gpus: &[GpuEnergy], samples: &[ProcUtil]) -> Vec<ProcessEnergy> {
    let all = sm_totals(samples);
    let mut mine: BTreeMap<(u32, u32), f64> = BTreeMap::new();
    for s in samples {
        if let Some(p) = usable_pct(s) {
            *mine.entry((s.gpu_index, s.pid)).or_insert(0.0) += p;
        }
    }
    let joules: BTreeMap<u32, f64> = gpus
        .iter()
        .map(|g| (g.gpu_index, clean_j(g.joules)))
        .collect();
    mine.into_iter()
        .filter_map(|((gpu_index, pid), pct)| {
            let e = *joules.get(&gpu_index)?;
            let share = pct / all.get(&gpu_index)?;
            Some(ProcessEnergy {
                gpu_index,
                pid,
                share,
                joules: e * share,
            })
        })
        .collect()
}

/// GPU energy of one slice split between owners (the agent's workloads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnerSplit {
    /// Energy of each owner, by owner index, J.
    pub owner_j: Vec<f64>,
    /// What no owner accounts for: idle GPUs, processes no owner holds, J.
    /// `owner_j.sum() + unowned_j` is the GPUs' energy (up to rounding).
    pub unowned_j: f64,
}

/// Split the GPUs' energy between `owners` owners: each process's part
/// ([`process_energy`]) goes to `owner_of(pid)` (an index below `owners`), the rest stays
/// in [`OwnerSplit::unowned_j`]. `owner_of` is asked once per PID.
pub fn energy_by_owner(
    gpus: &[GpuEnergy],
    samples: &[ProcUtil],
    owners: usize,
    mut owner_of: impl FnMut(u32) -> Option<usize>,
) -> OwnerSplit {
    let total: f64 = gpus.iter().map(|g| clean_j(g.joules)).sum();
    let mut owner_j = vec![0.0; owners];
    let mut asked: BTreeMap<u32, Option<usize>> = BTreeMap::new();
    let mut owned = 0.0;
    for p in process_energy(gpus, samples) {
        let o = *asked.entry(p.pid).or_insert_with(|| owner_of(p.pid));
        if let Some(slot) = o.and_then(|i| owner_j.get_mut(i)) {
            *slot += p.joules;
            owned += p.joules;
        }
    }
    OwnerSplit {
        owner_j,
        unowned_j: (total - owned).max(0.0),
    }
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

    #[test]
    fn each_process_gets_its_sm_share_of_its_gpu() {
        let gpus = [
            GpuEnergy {
                gpu_index: 0,
                joules: 300.0,
            },
            GpuEnergy {
                gpu_index: 1,
                joules: 80.0,
            },
        ];
        // GPU 0: pid 10 at 30 + 30, pid 20 at 60, pid 30 at 0 (not counted); GPU 1: pid 10
        // alone; GPU 7 has no energy domain.
        let samples = [
            s(0, 10, 30.0),
            s(0, 20, 60.0),
            s(0, 10, 30.0),
            s(0, 30, 0.0),
            s(1, 10, 5.0),
            s(7, 20, 50.0),
        ];
        let p = process_energy(&gpus, &samples);
        let got: Vec<(u32, u32, f64, f64)> = p
            .iter()
            .map(|e| (e.gpu_index, e.pid, e.share, e.joules))
            .collect();
        assert_eq!(
            got,
            vec![(0, 10, 0.5, 150.0), (0, 20, 0.5, 150.0), (1, 10, 1.0, 80.0)]
        );
    }

    #[test]
    fn owners_get_their_processes_parts_and_the_rest_is_unowned() {
        let gpus = [
            GpuEnergy {
                gpu_index: 0,
                joules: 400.0,
            },
            GpuEnergy {
                gpu_index: 1,
                joules: 100.0,
            },
            GpuEnergy {
                gpu_index: 2,
                joules: 50.0,
            },
        ];
        // GPU 0: pids 1 (owner 0) 50 %, 2 (owner 1) 25 %, 3 (no owner) 25 %; GPU 1: pid 2
        // alone; GPU 2 idle.
        let samples = [s(0, 1, 50.0), s(0, 2, 25.0), s(0, 3, 25.0), s(1, 2, 40.0)];
        let mut asked = Vec::new();
        let split = energy_by_owner(&gpus, &samples, 2, |pid| {
            asked.push(pid);
            match pid {
                1 => Some(0),
                2 => Some(1),
                _ => None,
            }
        });
        assert_eq!(split.owner_j, vec![200.0, 200.0]);
        // 100 J of pid 3 on GPU 0, 50 J of the idle GPU 2.
        assert_eq!(split.unowned_j, 150.0);
        assert_eq!(asked, vec![1, 2, 3]);
        // No samples at all: everything unowned.
        let none = energy_by_owner(&gpus, &[], 2, |_| Some(0));
        assert_eq!((none.owner_j, none.unowned_j), (vec![0.0, 0.0], 550.0));
    }

    proptest! {
        #[test]
        fn owners_plus_unowned_is_the_gpus_energy(
            energies in prop::collection::vec(-1.0..1e6f64, 0..4),
            samples in prop::collection::vec((0u32..5, 0u32..6, -5.0..100.0f64), 0..30),
        ) {
            let gpus: Vec<GpuEnergy> = energies
                .iter()
                .enumerate()
                .map(|(i, j)| GpuEnergy { gpu_index: i as u32, joules: *j })
                .collect();
            let samples: Vec<ProcUtil> = samples.iter().map(|(g, p, u)| s(*g, *p, *u)).collect();
            // PIDs 0..3 belong to owners 0..3, the others to none.
            let split = energy_by_owner(&gpus, &samples, 3, |pid| (pid < 3).then_some(pid as usize));
            let total: f64 = energies.iter().map(|&j| j.max(0.0)).sum();
            let sum: f64 = split.owner_j.iter().sum::<f64>() + split.unowned_j;
            prop_assert!((sum - total).abs() <= 1e-9 * total.max(1.0), "{sum} vs {total}");
            prop_assert!(split.owner_j.iter().all(|&j| j >= 0.0) && split.unowned_j >= 0.0);
        }

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
