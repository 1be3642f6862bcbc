//! Per-workload attribution, pure: one slice's energy split between workloads by their CPU
//! time in the slice, and workloads named from their cgroup paths.
//!
//! The split ([`split_by_cpu`]) keeps idle apart and gives what no workload cgroup accounts
//! for to `system`, so that workloads + system + idle is the slice's energy exactly. Two
//! models of idle ([`IdleModel`]):
//!
//! - [`IdleModel::CpuShare`] (default): every CPU-second of the slice's capacity (CPUs x
//!   duration) carries the same energy; a workload gets `E x cpu_s / capacity_s`, the CPU
//!   time no cgroup accounts for goes to `system`, the unused capacity to `idle`.
//! - [`IdleModel::BaselineW`]: a measured idle power of the node; `idle = min(E, W x dt)`,
//!   the rest split by each workload's share of the busy CPU time (all of it to `system`
//!   when nothing ran).
//!
//! Unlike [`crate::attribution`] (one wrapped job's share of a machine whose idle energy is
//! often unknown), this split always keeps idle apart, so that no workload is charged for
//! the capacity nobody used.
//!
//! Naming ([`name_cgroup`]) reads the layouts of systemd, Docker, containerd, CRI-O and the
//! kubelet (systemd and cgroupfs drivers).

/// How a slice's idle energy is told apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IdleModel {
    /// Energy proportional to CPU time over the slice's capacity (CPUs x duration).
    CpuShare,
    /// The node's idle power, W (e.g. measured with `wattprint run -- sleep 60` on the idle
    /// node); what the slice used above it is split by busy CPU time.
    BaselineW(f64),
}

/// One slice's inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuSlice<'a> {
    /// Energy measured over the slice, J.
    pub energy_j: f64,
    /// Slice duration, s.
    pub duration_s: f64,
    /// CPUs online (the capacity is `cpus x duration_s` CPU-seconds).
    pub cpus: f64,
    /// CPU time of the whole node in the slice (the root cgroup's usage delta), s.
    pub busy_s: f64,
    /// CPU time of each workload in the slice (disjoint cgroups), s.
    pub workload_cpu_s: &'a [f64],
}

/// One slice's energy, split. `workload_j.sum() + system_j + idle_j == energy_j` (up to
/// rounding), every term non-negative.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuSplit {
    /// Energy of each workload, in the order of [`CpuSlice::workload_cpu_s`], J.
    pub workload_j: Vec<f64>,
    /// Busy CPU time outside every workload cgroup (kernel threads, the agent, processes in
    /// no recognised cgroup), J.
    pub system_j: f64,
    /// Idle energy, J.
    pub idle_j: f64,
}

fn clean(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v
    } else {
        0.0
    }
}

/// Split one slice's energy between workloads, `system` and idle (see the module docs).
///
/// Negative or non-finite inputs count as 0 (a counter that went back is the caller's to
/// report). The node's busy time is raised to the workloads' sum and the capacity to the
/// busy time when the clocks of the readings disagree, so nothing is ever negative.
pub fn split_by_cpu(slice: &CpuSlice, model: IdleModel) -> CpuSplit {
    let e = clean(slice.energy_j);
    let cpu: Vec<f64> = slice.workload_cpu_s.iter().map(|&c| clean(c)).collect();
    let sum: f64 = cpu.iter().sum();
    let busy = clean(slice.busy_s).max(sum);
    match model {
        IdleModel::CpuShare => {
            let capacity = (clean(slice.cpus) * clean(slice.duration_s)).max(busy);
            if capacity <= 0.0 {
                return CpuSplit {
                    workload_j: vec![0.0; cpu.len()],
                    system_j: e,
                    idle_j: 0.0,
                };
            }
            let per = e / capacity;
            CpuSplit {
                workload_j: cpu.iter().map(|c| c * per).collect(),
                system_j: (busy - sum) * per,
                idle_j: (capacity - busy) * per,
            }
        }
        IdleModel::BaselineW(w) => {
            let idle = (clean(w) * clean(slice.duration_s)).min(e);
            let active = e - idle;
            if busy <= 0.0 {
                return CpuSplit {
                    workload_j: vec![0.0; cpu.len()],
                    system_j: active,
                    idle_j: idle,
                };
            }
            let per = active / busy;
            CpuSplit {
                workload_j: cpu.iter().map(|c| c * per).collect(),
                system_j: (busy - sum) * per,
                idle_j: idle,
            }
        }
    }
}

/// What a cgroup holds.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// A Kubernetes pod's container (or the pod's own cgroup: its sandbox and overhead).
    Pod,
    /// A container outside Kubernetes (Docker, containerd, CRI-O, Podman).
    Container,
    /// A systemd service (`*.service`).
    Service,
    /// A systemd scope that is no container (login sessions, `systemd-run --scope`).
    Scope,
}

impl WorkloadKind {
    /// The `kind` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "pod",
            WorkloadKind::Container => "container",
            WorkloadKind::Service => "service",
            WorkloadKind::Scope => "scope",
        }
    }
}

/// Kubernetes quality-of-service class of a pod, from its cgroup's parent.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

/// A cgroup recognised as a workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CgroupWorkload {
    pub kind: WorkloadKind,
    /// Pod uid (dashes, as the API server writes it) for [`WorkloadKind::Pod`].
    pub pod_uid: Option<String>,
    pub qos: Option<QosClass>,
    /// Container id (the runtime's full id) for pods' containers and containers; `None` for
    /// a pod's own cgroup.
    pub container_id: Option<String>,
    /// The unit name for services and scopes (`nginx.service`).
    pub unit: Option<String>,
    /// True when the cgroup's descendants are workloads of their own (a pod's containers):
    /// this one then keeps only its residual CPU time.
    pub has_children: bool,
}

/// Runtimes' prefixes of container scopes (systemd driver) and directories (cgroupfs).
const CONTAINER_PREFIXES: [&str; 6] = [
    "cri-containerd-",
    "crio-",
    "docker-",
    "libpod-",
    "containerd-",
    "nerdctl-",
];

fn is_container_id(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The id in `cri-containerd-<id>.scope`, `docker-<id>.scope`, `crio-<id>` or a bare
/// 64-hex directory. CRI-O's `crio-conmon-<id>` (its monitor process) is not a container.
fn container_id(component: &str) -> Option<String> {
    let base = component.strip_suffix(".scope").unwrap_or(component);
    if is_container_id(base) {
        return Some(base.to_string());
    }
    CONTAINER_PREFIXES.iter().find_map(|p| {
        base.strip_prefix(p)
            .filter(|id| is_container_id(id))
            .map(str::to_string)
    })
}

/// A pod's uid and QoS from one path component: `kubepods-burstable-pod<uid>.slice`,
/// `kubepods-pod<uid>.slice` (systemd driver, `_` for `-` in the uid) or `pod<uid>`
/// (cgroupfs driver); the QoS is given by the parent component for cgroupfs.
fn pod_component(component: &str, parent: Option<&str>) -> Option<(String, QosClass)> {
    if let Some(rest) = component
        .strip_prefix("kubepods-")
        .and_then(|r| r.strip_suffix(".slice"))
    {
        let (qos, uid) = if let Some(u) = rest.strip_prefix("burstable-pod") {
            (QosClass::Burstable, u)
        } else if let Some(u) = rest.strip_prefix("besteffort-pod") {
            (QosClass::BestEffort, u)
        } else if let Some(u) = rest.strip_prefix("pod") {
            (QosClass::Guaranteed, u)
        } else {
            return None;
        };
        return valid_uid(uid).map(|u| (u, qos));
    }
    let uid = component.strip_prefix("pod")?;
    let qos = match parent {
        Some("burstable") => QosClass::Burstable,
        Some("besteffort") => QosClass::BestEffort,
        Some("kubepods") => QosClass::Guaranteed,
        _ => return None,
    };
    valid_uid(uid).map(|u| (u, qos))
}

fn valid_uid(uid: &str) -> Option<String> {
    let u = uid.replace('_', "-");
    (u.len() >= 8 && u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(u)
}

/// Name the cgroup at `path` (relative to the hierarchy's root, `/`-separated, e.g.
/// `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`).
/// `None` for a cgroup that is only a grouping (slices, `kubepods`, QoS levels): its own
/// CPU time is `system`'s.
pub fn name_cgroup(path: &str) -> Option<CgroupWorkload> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let last = *parts.last()?;
    let in_kube = parts
        .first()
        .is_some_and(|p| *p == "kubepods" || *p == "kubepods.slice");
    if in_kube {
        // The pod is the last or the second-to-last component.
        let n = parts.len();
        let parent = |i: usize| if i > 0 { Some(parts[i - 1]) } else { None };
        if let Some((uid, qos)) = pod_component(last, parent(n - 1)) {
            return Some(CgroupWorkload {
                kind: WorkloadKind::Pod,
                pod_uid: Some(uid),
                qos: Some(qos),
                container_id: None,
                unit: None,
                has_children: true,
            });
        }
        if n >= 2 {
            if let Some((uid, qos)) = pod_component(parts[n - 2], parent(n - 2)) {
                return container_id(last).map(|id| CgroupWorkload {
                    kind: WorkloadKind::Pod,
                    pod_uid: Some(uid),
                    qos: Some(qos),
                    container_id: Some(id),
                    unit: None,
                    has_children: false,
                });
            }
        }
        return None;
    }
    if let Some(id) = container_id(last) {
        return Some(CgroupWorkload {
            kind: WorkloadKind::Container,
            pod_uid: None,
            qos: None,
            container_id: Some(id),
            unit: None,
            has_children: false,
        });
    }
    let kind = if last.ends_with(".service") {
        WorkloadKind::Service
    } else if last.ends_with(".scope") {
        WorkloadKind::Scope
    } else {
        return None;
    };
    Some(CgroupWorkload {
        kind,
        pod_uid: None,
        qos: None,
        container_id: None,
        unit: Some(last.to_string()),
        has_children: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c0a9e2b7d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a";

    fn slice(e: f64, dt: f64, cpus: f64, busy: f64, w: &[f64]) -> CpuSplit {
        split_by_cpu(
            &CpuSlice {
                energy_j: e,
                duration_s: dt,
                cpus,
                busy_s: busy,
                workload_cpu_s: w,
            },
            IdleModel::CpuShare,
        )
    }

    #[test]
    fn cpu_share_gives_each_cpu_second_the_same_energy() {
        // 4 CPUs x 2 s = 8 CPU-s for 80 J: 10 J per CPU-s.
        let s = slice(80.0, 2.0, 4.0, 5.0, &[3.0, 1.0]);
        assert_eq!(s.workload_j, vec![30.0, 10.0]);
        assert_eq!(s.system_j, 10.0);
        assert_eq!(s.idle_j, 30.0);
    }

    #[test]
    fn workloads_above_the_node_busy_time_raise_it_and_system_gets_nothing() {
        // The root's reading lags its children's: busy is taken as 6.
        let s = slice(80.0, 2.0, 4.0, 5.0, &[4.0, 2.0]);
        assert_eq!(s.workload_j, vec![40.0, 20.0]);
        assert_eq!(s.system_j, 0.0);
        assert_eq!(s.idle_j, 20.0);
        // Busy beyond the capacity raises the capacity: no idle, no negative.
        let s = slice(90.0, 1.0, 2.0, 3.0, &[3.0]);
        assert_eq!(s.workload_j, vec![90.0]);
        assert_eq!((s.system_j, s.idle_j), (0.0, 0.0));
    }

    #[test]
    fn negative_and_nan_deltas_count_as_zero_and_a_zero_slice_is_systems() {
        let s = slice(80.0, 2.0, 4.0, 4.0, &[-3.0, f64::NAN, 2.0]);
        assert_eq!(s.workload_j, vec![0.0, 0.0, 20.0]);
        assert_eq!((s.system_j, s.idle_j), (20.0, 40.0));
        let s = slice(5.0, 0.0, 4.0, 0.0, &[0.0]);
        assert_eq!(s.workload_j, vec![0.0]);
        assert_eq!((s.system_j, s.idle_j), (5.0, 0.0));
    }

    #[test]
    fn baseline_idle_takes_its_power_and_the_rest_follows_busy_time() {
        let b = |e, busy, w: &[f64]| {
            split_by_cpu(
                &CpuSlice {
                    energy_j: e,
                    duration_s: 2.0,
                    cpus: 4.0,
                    busy_s: busy,
                    workload_cpu_s: w,
                },
                IdleModel::BaselineW(10.0),
            )
        };
        // 100 J, 20 J idle (10 W x 2 s), 80 J over 4 busy CPU-s.
        let s = b(100.0, 4.0, &[2.0, 1.0]);
        assert_eq!(s.workload_j, vec![40.0, 20.0]);
        assert_eq!((s.system_j, s.idle_j), (20.0, 20.0));
        // Less than the baseline was measured: all idle.
        let s = b(15.0, 4.0, &[2.0]);
        assert_eq!(s.workload_j, vec![0.0]);
        assert_eq!((s.system_j, s.idle_j), (0.0, 15.0));
        // Nothing ran: above-idle energy is system's.
        let s = b(30.0, 0.0, &[0.0]);
        assert_eq!((s.workload_j[0], s.system_j, s.idle_j), (0.0, 10.0, 20.0));
    }

    proptest::proptest! {
        #[test]
        fn the_split_adds_up_to_the_slice(
            e in 0.0..1e6f64, dt in 0.0..100.0f64, cpus in 1.0..256.0f64,
            busy in 0.0..1e4f64, w in proptest::collection::vec(-1.0..1e3f64, 0..20),
            baseline in proptest::option::of(0.0..1e3f64),
        ) {
            let model = baseline.map_or(IdleModel::CpuShare, IdleModel::BaselineW);
            let s = split_by_cpu(&CpuSlice { energy_j: e, duration_s: dt, cpus, busy_s: busy, workload_cpu_s: &w }, model);
            let total: f64 = s.workload_j.iter().sum::<f64>() + s.system_j + s.idle_j;
            proptest::prop_assert!((total - e).abs() <= 1e-9 * e.max(1.0), "{total} vs {e}");
            proptest::prop_assert!(s.workload_j.iter().all(|&j| j >= 0.0) && s.system_j >= 0.0 && s.idle_j >= 0.0);
        }
    }

    #[test]
    fn systemd_driver_pods_and_their_containers_are_named() {
        let pod = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f90a.slice";
        let w = name_cgroup(pod).unwrap();
        assert_eq!(w.kind, WorkloadKind::Pod);
        assert_eq!(
            w.pod_uid.as_deref(),
            Some("1b2c3d4e-5f60-7182-93a4-b5c6d7e8f90a")
        );
        assert_eq!(w.qos, Some(QosClass::Burstable));
        assert!(w.has_children && w.container_id.is_none());
        let c = name_cgroup(&format!("{pod}/cri-containerd-{ID}.scope")).unwrap();
        assert_eq!(c.container_id.as_deref(), Some(ID));
        assert_eq!(c.pod_uid, w.pod_uid);
        assert!(!c.has_children);
        let g = name_cgroup(&format!(
            "kubepods.slice/kubepods-pod0a0b0c0d_1111_2222_3333_444455556666.slice/crio-{ID}.scope"
        ))
        .unwrap();
        assert_eq!(g.qos, Some(QosClass::Guaranteed));
        assert_eq!(g.container_id.as_deref(), Some(ID));
        let be = name_cgroup("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a0b0c0d_1111_2222_3333_444455556666.slice").unwrap();
        assert_eq!(be.qos, Some(QosClass::BestEffort));
    }

    #[test]
    fn cgroupfs_driver_pods_and_their_containers_are_named() {
        let c = name_cgroup(&format!(
            "kubepods/besteffort/pod0a0b0c0d-1111-2222-3333-444455556666/{ID}"
        ))
        .unwrap();
        assert_eq!(c.kind, WorkloadKind::Pod);
        assert_eq!(c.qos, Some(QosClass::BestEffort));
        assert_eq!(
            c.pod_uid.as_deref(),
            Some("0a0b0c0d-1111-2222-3333-444455556666")
        );
        assert_eq!(c.container_id.as_deref(), Some(ID));
        let g = name_cgroup("kubepods/pod0a0b0c0d-1111-2222-3333-444455556666").unwrap();
        assert_eq!(g.qos, Some(QosClass::Guaranteed));
        assert!(g.has_children);
    }

    #[test]
    fn groupings_and_monitors_are_no_workloads() {
        for p in [
            "",
            "kubepods.slice",
            "kubepods.slice/kubepods-burstable.slice",
            "kubepods/burstable",
            "system.slice",
            "user.slice/user-1000.slice",
            "kubepods/burstable/podnotauid!",
        ] {
            assert_eq!(name_cgroup(p), None, "{p}");
        }
        // CRI-O's monitor under a pod is the pod's overhead, not a container.
        let pod = "kubepods.slice/kubepods-pod0a0b0c0d_1111_2222_3333_444455556666.slice";
        assert_eq!(name_cgroup(&format!("{pod}/crio-conmon-{ID}.scope")), None);
    }

    #[test]
    fn docker_containerd_and_systemd_units_are_named() {
        for p in [
            format!("system.slice/docker-{ID}.scope"),
            format!("docker/{ID}"),
            format!("system.slice/containerd-{ID}.scope"),
            format!("machine.slice/libpod-{ID}.scope"),
        ] {
            let w = name_cgroup(&p).unwrap();
            assert_eq!(w.kind, WorkloadKind::Container, "{p}");
            assert_eq!(w.container_id.as_deref(), Some(ID), "{p}");
        }
        let s = name_cgroup("system.slice/nginx.service").unwrap();
        assert_eq!(s.kind, WorkloadKind::Service);
        assert_eq!(s.unit.as_deref(), Some("nginx.service"));
        let u = name_cgroup("user.slice/user-1000.slice/session-3.scope").unwrap();
        assert_eq!(u.kind, WorkloadKind::Scope);
    }
}
