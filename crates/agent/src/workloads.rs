//! Energy and carbon per workload (Kubernetes pods' containers, containers, systemd units):
//! at every slice the agent walks the cgroup hierarchy ([`CgroupTree`]), takes each
//! workload's CPU-time delta, and splits the slice's energy with
//! [`wattprint_core::workloads::split_by_cpu`] (idle apart, the rest of the node's CPU time
//! to `system`).
//!
//! GPU energy: with a [`GpuProcessSource`] (NVML's per-process utilisation), each NVIDIA
//! GPU's energy of a slice is split by each process's SM share
//! ([`wattprint_core::gpu_share::energy_by_owner`]) and goes to the workload whose cgroup
//! holds the process (`<procfs>/<pid>/cgroup`); what no workload accounts for stays in
//! `kind="gpu"`.
//!
//! Bounded: the walk reads at most [`WorkloadOptions::max_cgroups`] cgroups; at most
//! [`WorkloadOptions::max_series`] workloads are counted as their own series, the top ones
//! by energy (re-ranked every [`RERANK_SLICES`] slices, a challenger needing
//! [`CHALLENGER_MARGIN`] times the weakest series' energy), the energy of the others is
//! added to `kind="other"`; a workload that ended or left the top is kept until
//! [`WorkloadOptions::keep_scrapes`] scrapes saw its final value, then dropped. The walk
//! happens on the sampling task, never in a scrape. See `docs/workloads.md`.

use crate::metrics::escape;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wattprint_core::gpu_share::{energy_by_owner, GpuEnergy, OwnerSplit, ProcUtil};
use wattprint_core::workloads::{
    name_cgroup, split_by_cpu, CgroupWorkload, CpuSlice, IdleModel, QosClass, WorkloadKind,
};
use wattprint_sensors::cgroups::CgroupTree;
use wattprint_sensors::gpu::GpuProcessSource;

/// Slices over which a workload's power (`power_w` in `/v1/workloads`, the dashboard's
/// column) is averaged: 30 s at the default 5 s `--interval`, enough to smooth a bursty
/// container and short enough to follow one that starts or ends.
pub const POWER_SLICES: usize = 6;

/// Slices between two rankings of the workloads by energy (the top
/// [`WorkloadOptions::max_series`] keep their own series): the power window, 30 s at the
/// default 5 s `--interval`, so a ranking weighs the same energy the dashboard's W shows.
pub const RERANK_SLICES: usize = POWER_SLICES;

/// A workload without its own series takes the place of the weakest one only when its
/// energy since the last ranking is above this many times the weakest's: two workloads
/// within 50 % of each other never swap, so series do not flap (each swap ends one series
/// and starts another in Prometheus). A judgement, not a measured constant.
pub const CHALLENGER_MARGIN: f64 = 1.5;

/// PIDs whose workload is remembered between slices at most (GPU processes: NVML lists at
/// most a few hundred per GPU; beyond this the memory is cleared and rebuilt).
pub const MAX_GPU_PIDS: usize = 4096;

/// The GPU domains' energy of one slice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuSlice {
    /// NVIDIA GPUs by NVML index: split between workloads when a [`GpuProcessSource`] is
    /// set, J.
    pub nvml: Vec<GpuEnergy>,
    /// GPU and accelerator domains no process source covers (AMD, hwmon), J: `kind="gpu"`.
    pub unsplit_j: f64,
}

/// Settings of the per-workload attribution.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    /// Workloads counted as their own series at most; the others go to `kind="other"`.
    pub max_series: usize,
    /// Scrapes of `/metrics` that must see an ended workload's final value before it is
    /// dropped (Prometheus then has its last increase).
    pub keep_scrapes: u64,
    /// Cgroups read per slice at most (a node runs a few hundred containers; 20 000 bounds
    /// the walk's cost at about one slice's worth of small reads).
    pub max_cgroups: usize,
    /// Depth of grouping cgroups followed (Kubernetes' deepest container is at 4).
    pub max_depth: usize,
    /// How idle energy is told apart.
    pub idle: IdleModel,
    /// CPUs online (the capacity of a slice), from `/proc/stat`.
    pub cpus: f64,
    /// Pod names by uid (downward API for the agent's own pod, a kubelet pod list).
    pub pods: PodNames,
    /// A kubelet `/pods` JSON file re-read when it changes (`--pod-list`).
    pub pod_list: Option<PathBuf>,
}

impl WorkloadOptions {
    pub fn new(cpus: f64) -> WorkloadOptions {
        WorkloadOptions {
            max_series: 200,
            keep_scrapes: 3,
            max_cgroups: 20_000,
            max_depth: 6,
            idle: IdleModel::CpuShare,
            cpus,
            pods: PodNames::default(),
            pod_list: None,
        }
    }
}

/// Names of pods (namespace, name by uid) and of containers (by id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodNames {
    pub pods: HashMap<String, (String, String)>,
    pub containers: HashMap<String, String>,
}

impl PodNames {
    /// The agent's own pod from the downward API's environment (`POD_UID`, `POD_NAMESPACE`,
    /// `POD_NAME`, as the Helm chart sets them); nothing when one is missing.
    pub fn from_downward_api(get: impl Fn(&str) -> Option<String>) -> PodNames {
        let mut p = PodNames::default();
        if let (Some(uid), Some(ns), Some(name)) =
            (get("POD_UID"), get("POD_NAMESPACE"), get("POD_NAME"))
        {
            p.pods.insert(uid, (ns, name));
        }
        p
    }

    /// Add the pods of a kubelet `/pods` answer (a `PodList`: `items[].metadata.{uid,
    /// namespace, name}`, `items[].status.containerStatuses[].{name, containerID}`).
    pub fn add_pod_list(&mut self, json: &str) -> Result<usize, String> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            items: Vec<Pod>,
        }
        #[derive(serde::Deserialize)]
        struct Pod {
            metadata: Meta,
            #[serde(default)]
            status: Status,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            uid: String,
            #[serde(default)]
            namespace: String,
            name: String,
        }
        #[derive(serde::Deserialize, Default)]
        struct Status {
            #[serde(default, rename = "containerStatuses")]
            containers: Vec<C>,
            #[serde(default, rename = "initContainerStatuses")]
            init: Vec<C>,
        }
        #[derive(serde::Deserialize)]
        struct C {
            name: String,
            #[serde(default, rename = "containerID")]
            id: String,
        }
        let l: List = serde_json::from_str(json)
            .map_err(|e| format!("not a kubelet pod list (PodList JSON): {e}"))?;
        for p in &l.items {
            self.pods.insert(
                p.metadata.uid.clone(),
                (p.metadata.namespace.clone(), p.metadata.name.clone()),
            );
            for c in p.status.containers.iter().chain(&p.status.init) {
                // `containerd://<id>`, `cri-o://<id>`, `docker://<id>`.
                let id = c.id.rsplit("://").next().unwrap_or(&c.id);
                if !id.is_empty() {
                    self.containers.insert(id.to_string(), c.name.clone());
                }
            }
        }
        Ok(l.items.len())
    }
}

/// A workload's identity: stays the same however its labels resolve.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    kind: WorkloadKind,
    /// Pod uid, or "".
    pod_uid: String,
    /// Container id, unit name, or "" for a pod's own cgroup.
    id: String,
}

/// The exported labels of a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadLabels {
    pub kind: &'static str,
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Totals of one workload (or of system, idle, other, gpu): monotonic counters.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct WorkloadTotals {
    /// CPU-side and GPU energy, J.
    pub energy_j: f64,
    pub carbon_g: f64,
    pub cpu_s: f64,
    /// The part of `energy_j` from GPUs, J.
    pub gpu_energy_j: f64,
    /// Energy of each of the last [`POWER_SLICES`] slices, J (a ring indexed by slice).
    #[serde(skip)]
    recent_j: [f64; POWER_SLICES],
}

impl WorkloadTotals {
    fn add(&mut self, j: f64, g_per_j: f64, cpu_s: f64) {
        self.energy_j += j;
        self.carbon_g += j * g_per_j;
        self.cpu_s += cpu_s;
    }

    /// Count `j` in slice `slot` of the power ring too.
    fn add_in_slice(&mut self, slot: usize, j: f64, g_per_j: f64, cpu_s: f64) {
        self.add(j, g_per_j, cpu_s);
        self.recent_j[slot] += j;
    }

    /// Count `cpu_j + gpu_j` in slice `slot`, `gpu_j` as GPU energy too.
    fn add_parts(&mut self, slot: usize, cpu_j: f64, gpu_j: f64, g_per_j: f64, cpu_s: f64) {
        self.add_in_slice(slot, cpu_j + gpu_j, g_per_j, cpu_s);
        self.gpu_energy_j += gpu_j;
    }

    /// Mean power over the ring's slices, W (`recent_s`: their durations, s); `None` before
    /// a slice was attributed.
    fn power_w(&self, recent_s: &[f64; POWER_SLICES]) -> Option<f64> {
        let s: f64 = recent_s.iter().sum();
        (s > 0.0).then(|| self.recent_j.iter().sum::<f64>() / s)
    }

    fn json(&self, recent_s: &[f64; POWER_SLICES]) -> serde_json::Value {
        serde_json::json!({
            "energy_j": self.energy_j,
            "gpu_energy_j": self.gpu_energy_j,
            "carbon_g": self.carbon_g,
            "cpu_s": self.cpu_s,
            "power_w": self.power_w(recent_s),
        })
    }
}

/// A cgroup's path as the walks see it, parsed once while it stays: `name_cgroup`'s answer
/// and, for a workload, its key and labels (rebuilt only when the pod names change).
#[derive(Debug)]
struct Named {
    path: String,
    /// `None` for a grouping cgroup (a slice the walk descends into).
    workload: Option<(CgroupWorkload, Key, WorkloadLabels)>,
    /// The usage read at the last slice, ns, and the number of that walk (a cgroup not read
    /// in the walk before this one counts as new).
    prev_ns: AtomicU64,
    prev_walk: AtomicU64,
}

impl Named {
    fn new(path: String, workload: Option<(CgroupWorkload, Key, WorkloadLabels)>) -> Named {
        Named {
            path,
            workload,
            prev_ns: AtomicU64::new(0),
            prev_walk: AtomicU64::new(u64::MAX),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    labels: WorkloadLabels,
    qos: Option<QosClass>,
    cgroup: String,
    totals: WorkloadTotals,
    /// `None` while alive; the scrape count when it was last seen alive, once ended (or
    /// evicted).
    ended_at_scrape: Option<u64>,
    /// The last walk that saw it alive with its own series (`u64::MAX` for one restored
    /// from the spool).
    walk: u64,
    /// Left the top by energy: its series is frozen until dropped, its energy goes to
    /// `other`.
    evicted: bool,
    /// Energy since the last ranking, J.
    period_j: f64,
}

/// A live workload without its own series.
#[derive(Clone, Debug)]
struct Candidate {
    /// Energy since the last ranking, J.
    period_j: f64,
    /// The walk that last saw it.
    walk: u64,
}

/// Per-process GPU utilisation and where PIDs' cgroups are read.
struct GpuProcesses {
    source: Box<dyn GpuProcessSource>,
    procfs_root: PathBuf,
    /// PID -> the walked cgroup path of its workload (`None`: in no workload), with the walk
    /// that last needed it. Kept for the PIDs of the last slice only (a PID reused by
    /// another process between two slices is the one case it can misplace), at most
    /// [`MAX_GPU_PIDS`].
    owners: HashMap<u32, (Option<String>, u64)>,
}

/// The walked workload path holding `cgroup` (a process's cgroup path, relative to the
/// hierarchy's root): the path itself or its nearest ancestor among `walked`.
///
/// An agent in a container of its own cgroup namespace (cgroup v2 pods) sees other
/// cgroups relative to its own: `../../kubepods-besteffort.slice/...`. Such a path is
/// matched by its end: the walked path that ends with it at a component boundary.
fn owning_path<'a>(walked: &HashMap<&'a str, usize>, cgroup: &str) -> Option<(&'a str, usize)> {
    let mut rel = cgroup.trim_end_matches('/');
    while let Some(r) = rel.strip_prefix("../") {
        rel = r;
    }
    let outside = rel.len() != cgroup.trim_end_matches('/').len();
    let mut p = rel;
    while !p.is_empty() && p != ".." {
        if let Some((k, &i)) = walked.get_key_value(p) {
            return Some((k, i));
        }
        if outside {
            let hit = walked
                .iter()
                .find(|(k, _)| k.strip_suffix(p).is_some_and(|head| head.ends_with('/')));
            if let Some((k, &i)) = hit {
                return Some((k, i));
            }
        }
        p = &p[..p.rfind('/')?];
    }
    None
}

/// Per-workload counters and the cgroup walk that feeds them.
pub struct Workloads {
    tree: Box<dyn CgroupTree>,
    opts: WorkloadOptions,
    /// Every cgroup of the last walk by path, parsed ([`Named`], with the usage it had at the
    /// last slice), with the number of the walk that saw it: a steady cgroup costs one lookup
    /// per slice, no parse or allocation; those gone are dropped after each walk.
    names: HashMap<String, (Arc<Named>, u64)>,
    /// Reused to build `parent/child` paths while walking.
    path_buf: String,
    /// CPU time of the last slice's phases, s (`walk`: listings and parsing; `reads`: the
    /// CPU-time files; `split`: the split and the counters), for the benchmark.
    pub last_phases_s: [f64; 3],
    walks: u64,
    /// Durations of the last [`POWER_SLICES`] slices, s (the power ring's denominators).
    recent_s: [f64; POWER_SLICES],
    /// Slices attributed (the ring's position).
    slices: usize,
    prev_root_ns: Option<u64>,
    pod_list_mtime: Option<std::time::SystemTime>,
    entries: BTreeMap<Key, Entry>,
    system: WorkloadTotals,
    idle: WorkloadTotals,
    other: WorkloadTotals,
    /// GPU domains' energy no workload accounts for (idle GPUs, processes in no workload,
    /// GPUs without a process source).
    gpu: WorkloadTotals,
    gpu_procs: Option<GpuProcesses>,
    /// Live workloads without their own series (beyond the top N), bounded by the walk.
    candidates: HashMap<Key, Candidate>,
    /// Live workloads folded into `other` in the last slice (the series limit was reached).
    untracked_now: usize,
    /// Slices whose walk stopped at `max_cgroups`.
    walks_truncated: u64,
    /// Workloads counted, ever (series created).
    workloads_seen: u64,
    scrapes: AtomicU64,
    last_problem: Option<String>,
}

fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

impl Workloads {
    pub fn new(tree: Box<dyn CgroupTree>, opts: WorkloadOptions) -> Workloads {
        Workloads {
            tree,
            opts,
            names: HashMap::new(),
            path_buf: String::new(),
            last_phases_s: [0.0; 3],
            walks: 0,
            recent_s: [0.0; POWER_SLICES],
            slices: 0,
            prev_root_ns: None,
            pod_list_mtime: None,
            entries: BTreeMap::new(),
            system: WorkloadTotals::default(),
            idle: WorkloadTotals::default(),
            other: WorkloadTotals::default(),
            gpu: WorkloadTotals::default(),
            gpu_procs: None,
            candidates: HashMap::new(),
            untracked_now: 0,
            walks_truncated: 0,
            workloads_seen: 0,
            scrapes: AtomicU64::new(0),
            last_problem: None,
        }
    }

    /// Split NVIDIA GPUs' energy between workloads by their processes' utilisation, read
    /// from `source` at every slice; PIDs are placed by `<procfs_root>/<pid>/cgroup` (the
    /// host's procfs: the agent needs the host's PID namespace, `hostPID` in Kubernetes).
    pub fn with_gpu_processes(
        mut self,
        source: Box<dyn GpuProcessSource>,
        procfs_root: PathBuf,
    ) -> Workloads {
        self.gpu_procs = Some(GpuProcesses {
            source,
            procfs_root,
            owners: HashMap::new(),
        });
        self
    }

    /// Each workload's (index in `found`) part of the slice's NVIDIA GPU energy and what is
    /// left for `kind="gpu"`.
    fn split_gpus(
        &mut self,
        found: &[(Arc<Named>, Option<usize>)],
        nvml: &[GpuEnergy],
        samples: &[ProcUtil],
        walk: u64,
    ) -> OwnerSplit {
        let Some(g) = self.gpu_procs.as_mut() else {
            return energy_by_owner(nvml, &[], found.len(), |_| None);
        };
        let walked: HashMap<&str, usize> = if samples.is_empty() {
            HashMap::new()
        } else {
            found
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.path.as_str(), i))
                .collect()
        };
        if g.owners.len() > MAX_GPU_PIDS {
            g.owners.clear();
        }
        let split = energy_by_owner(nvml, samples, found.len(), |pid| {
            if let Some((path, seen)) = g.owners.get_mut(&pid) {
                match path {
                    None => {
                        *seen = walk;
                        return None;
                    }
                    // Still a workload of this walk: the same one.
                    Some(p) => {
                        if let Some(&i) = walked.get(p.as_str()) {
                            *seen = walk;
                            return Some(i);
                        }
                    }
                }
            }
            // Gone (the process ended): this slice's part stays in `gpu`, nothing cached.
            let text = wattprint_sensors::procfs::read_pid_cgroup(&g.procfs_root, pid)?;
            let hit = wattprint_sensors::procfs::parse_pid_cgroup_paths(&text)
                .into_iter()
                .find_map(|c| owning_path(&walked, c));
            g.owners
                .insert(pid, (hit.map(|(p, _)| p.to_string()), walk));
            hit.map(|(_, i)| i)
        });
        g.owners.retain(|_, (_, seen)| *seen == walk);
        split
    }

    /// The cgroups recognised as workloads, with the pods (which keep their residual), each
    /// with the index in the list of the workload whose cgroup holds it (a container's pod).
    fn walk(&mut self) -> Vec<(Arc<Named>, Option<usize>)> {
        let walk = self.walks;
        let mut out = Vec::new();
        let mut stack: Vec<(Arc<Named>, usize, Option<usize>)> =
            vec![(Arc::new(Named::new(String::new(), None)), 0usize, None)];
        let mut read = 0usize;
        while let Some((dir, depth, owner)) = stack.pop() {
            // Children are visited in name order: pushed in reverse onto the stack.
            let mut deeper = Vec::new();
            for child in self.tree.children(&dir.path) {
                read += 1;
                if read > self.opts.max_cgroups {
                    self.walks_truncated += 1;
                    self.names.retain(|_, e| e.1 == walk);
                    return out;
                }
                self.path_buf.clear();
                if !dir.path.is_empty() {
                    self.path_buf.push_str(&dir.path);
                    self.path_buf.push('/');
                }
                self.path_buf.push_str(&child);
                let named = match self.names.get_mut(self.path_buf.as_str()) {
                    Some(e) => {
                        e.1 = walk;
                        Arc::clone(&e.0)
                    }
                    None => {
                        let p = self.path_buf.clone();
                        let workload = name_cgroup(&p).map(|w| {
                            let key = Key {
                                kind: w.kind,
                                pod_uid: w.pod_uid.clone().unwrap_or_default(),
                                id: w
                                    .container_id
                                    .clone()
                                    .or_else(|| w.unit.clone())
                                    .unwrap_or_default(),
                            };
                            let labels = self.labels(&w);
                            (w, key, labels)
                        });
                        let n = Arc::new(Named::new(p.clone(), workload));
                        self.names.insert(p, (Arc::clone(&n), walk));
                        n
                    }
                };
                match &named.workload {
                    Some((w, _, _)) => {
                        if w.has_children {
                            deeper.push((Arc::clone(&named), depth + 1, Some(out.len())));
                        }
                        out.push((named, owner));
                    }
                    None if depth + 1 < self.opts.max_depth => {
                        deeper.push((named, depth + 1, owner))
                    }
                    None => {}
                }
            }
            stack.extend(deeper.into_iter().rev());
        }
        self.names.retain(|_, e| e.1 == walk);
        out
    }

    fn refresh_pod_list(&mut self) {
        let Some(path) = &self.opts.pod_list else {
            return;
        };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if mtime.is_none() || mtime == self.pod_list_mtime {
            return;
        }
        self.pod_list_mtime = mtime;
        // A kubelet pod list of a full node is a few MB: 64 MiB bounds the read.
        let text = wattprint_sensors::procfs::read_prefix(path, 64 << 20).unwrap_or_default();
        let mut names = PodNames::default();
        match names.add_pod_list(&text) {
            Ok(_) => {
                for (k, v) in names.pods {
                    self.opts.pods.pods.insert(k, v);
                }
                self.opts.pods.containers.extend(names.containers);
                // Labels cached per cgroup are made again with the new names (their usage
                // carried over).
                let names = std::mem::take(&mut self.names);
                for (p, (n, walk)) in names {
                    let workload = n
                        .workload
                        .as_ref()
                        .map(|(w, k, _)| (w.clone(), k.clone(), self.labels(w)));
                    let new = Named::new(n.path.clone(), workload);
                    new.prev_ns
                        .store(n.prev_ns.load(Ordering::Relaxed), Ordering::Relaxed);
                    new.prev_walk
                        .store(n.prev_walk.load(Ordering::Relaxed), Ordering::Relaxed);
                    self.names.insert(p, (Arc::new(new), walk));
                }
            }
            Err(e) => {
                let m = format!("--pod-list {}: {e}", path.display());
                tracing::warn!("{m}");
                self.last_problem = Some(m);
            }
        }
    }

    fn labels(&self, w: &CgroupWorkload) -> WorkloadLabels {
        let cid = w.container_id.as_deref().unwrap_or("");
        let container = self
            .opts
            .pods
            .containers
            .get(cid)
            .cloned()
            .unwrap_or_else(|| short_id(cid));
        match w.kind {
            WorkloadKind::Pod => {
                let uid = w.pod_uid.clone().unwrap_or_default();
                let (namespace, pod) = self
                    .opts
                    .pods
                    .pods
                    .get(&uid)
                    .cloned()
                    .unwrap_or((String::new(), uid));
                WorkloadLabels {
                    kind: "pod",
                    namespace,
                    pod,
                    container,
                }
            }
            WorkloadKind::Container => WorkloadLabels {
                kind: "container",
                container,
                ..Default::default()
            },
            WorkloadKind::Service | WorkloadKind::Scope => WorkloadLabels {
                kind: w.kind.as_str(),
                container: w.unit.clone().unwrap_or_default(),
                ..Default::default()
            },
        }
    }

    /// Attribute one slice: `energy_j` (CPU-side domains) measured over `duration_s` split
    /// by CPU time, `gpu_j` (GPU domains, not split per workload) counted as `kind="gpu"`,
    /// carbon at `g_per_j`. The first call only records the cgroups' usage (no delta yet).
    pub fn on_slice(&mut self, energy_j: f64, gpu_j: f64, duration_s: f64, g_per_j: f64) {
        let gpu = GpuSlice {
            nvml: Vec::new(),
            unsplit_j: gpu_j,
        };
        self.on_slice_gpus(energy_j, &gpu, duration_s, g_per_j);
    }

    /// [`Workloads::on_slice`] with the GPUs' energy per GPU: NVIDIA GPUs' is split between
    /// workloads by their processes' SM share when a process source is set
    /// ([`Workloads::with_gpu_processes`]); the rest is `kind="gpu"`.
    pub fn on_slice_gpus(&mut self, energy_j: f64, gpu: &GpuSlice, duration_s: f64, g_per_j: f64) {
        let c0 = crate::overhead::thread_cpu_s();
        self.refresh_pod_list();
        let found = self.walk();
        let c1 = crate::overhead::thread_cpu_s();
        let root = self.tree.usage_ns("");
        let walk = self.walks;
        self.walks += 1;
        // A cgroup new since the last slice ran all its time in it (its usage starts at 0
        // when created); one unreadable now counts nothing. Counters only grow.
        let mut cpu_s: Vec<f64> = Vec::with_capacity(found.len());
        for (n, _) in &found {
            let p = &n.path;
            let Some(now) = self.tree.usage_ns(p) else {
                cpu_s.push(0.0);
                continue;
            };
            // Read at the last slice (its walk the one before this), else new.
            let last = n.prev_walk.swap(walk, Ordering::Relaxed);
            let before_ns = n.prev_ns.swap(now, Ordering::Relaxed);
            let before = if walk > 0 && last == walk - 1 {
                before_ns
            } else {
                0
            };
            // A usage below the last one is another cgroup under a reused name: new.
            let ns = if now >= before { now - before } else { now };
            cpu_s.push(ns as f64 * 1e-9);
        }
        self.tree.end_pass();
        let c2 = crate::overhead::thread_cpu_s();
        self.last_phases_s = [c1 - c0, c2 - c1, 0.0];
        let first = self.prev_root_ns.is_none();
        // A pod keeps the time its containers did not account for (sandbox, overhead).
        let mut inner = vec![0.0; found.len()];
        for (i, (_, owner)) in found.iter().enumerate() {
            if let Some(o) = owner {
                inner[*o] += cpu_s[i];
            }
        }
        for (i, (n, _)) in found.iter().enumerate() {
            if n.workload.as_ref().is_some_and(|(w, _, _)| w.has_children) {
                cpu_s[i] = (cpu_s[i] - inner[i]).max(0.0);
            }
        }
        let busy_s = match (root, self.prev_root_ns) {
            (Some(now), Some(before)) => now.saturating_sub(before) as f64 * 1e-9,
            _ => 0.0,
        };
        self.prev_root_ns = root.or(self.prev_root_ns);
        if root.is_none() {
            self.last_problem = Some(format!(
                "cannot read the root's CPU time ({})",
                self.tree.describe()
            ));
        }
        // Drained at every slice, the first too, so a slice sees only its own samples.
        let samples: Vec<ProcUtil> = match self.gpu_procs.as_mut() {
            Some(g) => g
                .source
                .sample()
                .into_iter()
                .map(|s| ProcUtil {
                    gpu_index: s.gpu_index,
                    pid: s.pid,
                    sm_util_pct: f64::from(s.sm_util_pct),
                })
                .collect(),
            None => Vec::new(),
        };
        if first {
            return;
        }
        let gpu_split = self.split_gpus(&found, &gpu.nvml, &samples, walk);
        let split = split_by_cpu(
            &CpuSlice {
                energy_j,
                duration_s,
                cpus: self.opts.cpus,
                busy_s,
                workload_cpu_s: &cpu_s,
            },
            self.opts.idle,
        );
        let slot = self.slices % POWER_SLICES;
        self.slices += 1;
        self.recent_s[slot] = duration_s.max(0.0);
        for t in [
            &mut self.system,
            &mut self.gpu,
            &mut self.idle,
            &mut self.other,
        ] {
            t.recent_j[slot] = 0.0;
        }
        for e in self.entries.values_mut() {
            e.totals.recent_j[slot] = 0.0;
        }
        self.system.add_in_slice(slot, split.system_j, g_per_j, 0.0);
        let unsplit = if gpu.unsplit_j.is_finite() {
            gpu.unsplit_j.max(0.0)
        } else {
            0.0
        };
        self.gpu
            .add_parts(slot, 0.0, gpu_split.unowned_j + unsplit, g_per_j, 0.0);
        self.idle.add_in_slice(slot, split.idle_j, g_per_j, 0.0);
        let scrapes = self.scrapes.load(Ordering::Relaxed);
        // The energy since the last ranking, for series and candidates alike.
        let mut outside: Vec<(f64, usize)> = Vec::new();
        for (i, (n, _)) in found.iter().enumerate() {
            let Some((_, key, _)) = &n.workload else {
                continue;
            };
            let j = split.workload_j[i] + gpu_split.owner_j[i];
            match self.entries.get_mut(key) {
                Some(e) if !e.evicted => e.period_j += j,
                in_entries => {
                    let frozen = in_entries.is_some();
                    // The key is cloned only for a workload new outside the series.
                    let c = match self.candidates.get_mut(key) {
                        Some(c) => c,
                        None => self.candidates.entry(key.clone()).or_insert(Candidate {
                            period_j: 0.0,
                            walk,
                        }),
                    };
                    c.period_j += j;
                    c.walk = walk;
                    if !frozen {
                        outside.push((c.period_j, i));
                    }
                }
            }
        }
        // Free series go to the workloads outside with the most energy since the ranking.
        let free = self.opts.max_series.saturating_sub(self.entries.len());
        if free > 0 && !outside.is_empty() {
            outside.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for &(period_j, i) in &outside {
                if self.entries.len() >= self.opts.max_series {
                    break;
                }
                let Some((w, key, labels)) = &found[i].0.workload else {
                    continue;
                };
                if self.entries.contains_key(key) {
                    continue;
                }
                self.candidates.remove(key);
                self.workloads_seen += 1;
                self.entries.insert(
                    key.clone(),
                    Entry {
                        labels: labels.clone(),
                        qos: w.qos,
                        cgroup: found[i].0.path.clone(),
                        totals: WorkloadTotals::default(),
                        ended_at_scrape: None,
                        walk,
                        evicted: false,
                        period_j,
                    },
                );
            }
        }
        let mut untracked = 0;
        for (i, (n, _)) in found.iter().enumerate() {
            let Some((_, key, labels)) = &n.workload else {
                continue;
            };
            let (cpu_j, gpu_j, c) = (split.workload_j[i], gpu_split.owner_j[i], cpu_s[i]);
            // One lookup for a workload with its own series (the common case).
            match self.entries.get_mut(key) {
                Some(e) if !e.evicted => {
                    if e.labels != *labels {
                        e.labels = labels.clone();
                    }
                    e.ended_at_scrape = None;
                    e.walk = walk;
                    e.totals.add_parts(slot, cpu_j, gpu_j, g_per_j, c);
                }
                _ => {
                    self.other.add_parts(slot, cpu_j, gpu_j, g_per_j, c);
                    untracked += 1;
                }
            }
        }
        self.untracked_now = untracked;
        self.candidates.retain(|_, c| c.walk == walk);
        let keep = self.opts.keep_scrapes;
        self.entries.retain(|_, e| {
            if e.walk == walk {
                return true;
            }
            let since = *e.ended_at_scrape.get_or_insert(scrapes);
            scrapes.saturating_sub(since) < keep
        });
        if self.slices.is_multiple_of(RERANK_SLICES) {
            self.rerank(scrapes);
        }
        self.last_phases_s[2] = crate::overhead::thread_cpu_s() - c2;
    }

    /// The weakest series give way to workloads outside with more than
    /// [`CHALLENGER_MARGIN`] times their energy since the last ranking: each one evicted is
    /// frozen (its later energy goes to `other`) and dropped once `keep_scrapes` scrapes saw
    /// its final value, which frees its series for the strongest workload outside. Then the
    /// period starts again.
    fn rerank(&mut self, scrapes: u64) {
        let mut weakest: Vec<(f64, &Key)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.ended_at_scrape.is_none() && !e.evicted)
            .map(|(k, e)| (e.period_j, k))
            .collect();
        weakest.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        let mut strongest: Vec<f64> = self
            .candidates
            .iter()
            .filter(|(k, _)| !self.entries.contains_key(*k))
            .map(|(_, c)| c.period_j)
            .collect();
        strongest.sort_by(|a, b| b.total_cmp(a));
        let out: Vec<Key> = weakest
            .iter()
            .zip(&strongest)
            .take_while(|((w, _), &c)| c > CHALLENGER_MARGIN * w)
            .map(|((_, k), _)| (*k).clone())
            .collect();
        for k in out {
            if let Some(e) = self.entries.get_mut(&k) {
                e.evicted = true;
                e.ended_at_scrape = Some(scrapes);
            }
        }
        for e in self.entries.values_mut() {
            e.period_j = 0.0;
        }
        for c in self.candidates.values_mut() {
            c.period_j = 0.0;
        }
    }

    /// Count one scrape (ended workloads are dropped once `keep_scrapes` saw them).
    pub fn scraped(&self) {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
    }

    /// Totals by exported labels, the fixed series (`system`, `idle`, `other`) included.
    pub fn series(&self) -> Vec<(WorkloadLabels, &WorkloadTotals)> {
        let mut v: Vec<(WorkloadLabels, &WorkloadTotals)> = self
            .entries
            .values()
            .map(|e| (e.labels.clone(), &e.totals))
            .collect();
        for (kind, t) in [
            ("system", &self.system),
            ("idle", &self.idle),
            ("other", &self.other),
            ("gpu", &self.gpu),
        ] {
            v.push((
                WorkloadLabels {
                    kind,
                    ..Default::default()
                },
                t,
            ));
        }
        v
    }

    /// The OpenMetrics families (without `# EOF`), appended to `out`; counts a scrape.
    pub fn render(&self, out: &mut String) {
        self.scraped();
        let series = self.series();
        for (family, unit, help, pick) in [
            (
                "wattprint_workload_energy_joules",
                "joules",
                "Energy per workload (pod container, container, systemd unit) by CPU-time share, its GPU part included; kind=system|idle|other|gpu for the rest.",
                (|t: &WorkloadTotals| t.energy_j) as fn(&WorkloadTotals) -> f64,
            ),
            (
                "wattprint_workload_carbon_grams",
                "grams",
                "Carbon (gCO2e) per workload, at the agent's intensity and PUE.",
                |t: &WorkloadTotals| t.carbon_g,
            ),
            (
                "wattprint_workload_gpu_energy_joules",
                "joules",
                "The GPU part of wattprint_workload_energy_joules_total: each NVIDIA GPU's energy by the workload's processes' SM utilisation share; kind=gpu for idle GPUs and processes in no workload.",
                |t: &WorkloadTotals| t.gpu_energy_j,
            ),
        ] {
            if family == "wattprint_workload_gpu_energy_joules" && self.gpu_procs.is_none() {
                continue;
            }
            let _ = writeln!(out, "# TYPE {family} counter\n# UNIT {family} {unit}\n# HELP {family} {help}");
            for (l, t) in &series {
                let _ = writeln!(
                    out,
                    "{family}_total{{kind=\"{}\",namespace=\"{}\",pod=\"{}\",container=\"{}\"}} {}",
                    l.kind,
                    escape(&l.namespace),
                    escape(&l.pod),
                    escape(&l.container),
                    pick(t)
                );
            }
        }
        let _ = writeln!(
            out,
            "# TYPE wattprint_workloads_untracked gauge\n# HELP wattprint_workloads_untracked Live workloads counted in kind=\"other\" because the series limit was reached.\nwattprint_workloads_untracked {}",
            self.untracked_now
        );
    }

    /// The counters, for the spool.
    pub fn snapshot(&self) -> crate::spool::WorkloadsSnapshot {
        use crate::spool::SpooledWorkload;
        crate::spool::WorkloadsSnapshot {
            workloads: self
                .entries
                .iter()
                .map(|(k, e)| SpooledWorkload {
                    kind: k.kind,
                    pod_uid: k.pod_uid.clone(),
                    id: k.id.clone(),
                    namespace: e.labels.namespace.clone(),
                    pod: e.labels.pod.clone(),
                    container: e.labels.container.clone(),
                    qos: e.qos,
                    cgroup: e.cgroup.clone(),
                    energy_j: e.totals.energy_j,
                    carbon_g: e.totals.carbon_g,
                    cpu_s: e.totals.cpu_s,
                    gpu_energy_j: e.totals.gpu_energy_j,
                })
                .collect(),
            fixed: [
                ("system", &self.system),
                ("idle", &self.idle),
                ("other", &self.other),
                ("gpu", &self.gpu),
            ]
            .into_iter()
            .map(|(k, t)| (k.to_string(), (t.energy_j, t.carbon_g)))
            .collect(),
            workloads_seen: self.workloads_seen,
            // `gpu` is all GPU energy: only `other` has a GPU part to keep.
            fixed_gpu_j: [("other".to_string(), self.other.gpu_energy_j)]
                .into_iter()
                .filter(|(_, j)| *j > 0.0)
                .collect(),
        }
    }

    /// Continue a previous process's counters (on a fresh tracker). Restored workloads count
    /// as ended until the first walk sees them again, so one that stopped while the agent was
    /// down leaves after `keep_scrapes` scrapes. Its energy during the downtime is not
    /// known: the first slice after a restart only records the cgroups' usage.
    pub fn restore(&mut self, s: &crate::spool::WorkloadsSnapshot) {
        // The most energy first when the series limit is now smaller than then.
        let mut ws: Vec<&crate::spool::SpooledWorkload> = s.workloads.iter().collect();
        ws.sort_by(|a, b| b.energy_j.total_cmp(&a.energy_j));
        for w in ws.iter().take(self.opts.max_series) {
            let kind = w.kind.as_str();
            self.entries.insert(
                Key {
                    kind: w.kind,
                    pod_uid: w.pod_uid.clone(),
                    id: w.id.clone(),
                },
                Entry {
                    labels: WorkloadLabels {
                        kind,
                        namespace: w.namespace.clone(),
                        pod: w.pod.clone(),
                        container: w.container.clone(),
                    },
                    qos: w.qos,
                    cgroup: w.cgroup.clone(),
                    totals: WorkloadTotals {
                        energy_j: w.energy_j,
                        carbon_g: w.carbon_g,
                        cpu_s: w.cpu_s,
                        gpu_energy_j: w.gpu_energy_j,
                        ..Default::default()
                    },
                    ended_at_scrape: Some(0),
                    walk: u64::MAX,
                    evicted: false,
                    period_j: 0.0,
                },
            );
        }
        // Beyond the series limit (a smaller --max-workloads than before): into `other`.
        for w in ws.iter().skip(self.opts.max_series) {
            self.other.add(w.energy_j, 0.0, w.cpu_s);
            self.other.carbon_g += w.carbon_g;
            self.other.gpu_energy_j += w.gpu_energy_j;
        }
        if let Some(j) = s.fixed_gpu_j.get("other") {
            self.other.gpu_energy_j += j;
        }
        for (k, (j, g)) in &s.fixed {
            let t = match k.as_str() {
                "system" => &mut self.system,
                "idle" => &mut self.idle,
                "other" => &mut self.other,
                "gpu" => {
                    self.gpu.gpu_energy_j += j;
                    &mut self.gpu
                }
                _ => continue,
            };
            t.energy_j += j;
            t.carbon_g += g;
        }
        self.workloads_seen += s.workloads_seen;
    }

    /// `GET /v1/workloads`.
    pub fn json(&self) -> serde_json::Value {
        let workloads: Vec<serde_json::Value> = self
            .entries
            .values()
            .map(|e| {
                serde_json::json!({
                    "kind": e.labels.kind,
                    "namespace": e.labels.namespace,
                    "pod": e.labels.pod,
                    "container": e.labels.container,
                    "qos": e.qos,
                    "cgroup": e.cgroup,
                    "alive": e.ended_at_scrape.is_none(),
                    "evicted": e.evicted,
                    "energy_j": e.totals.energy_j,
                    "gpu_energy_j": e.totals.gpu_energy_j,
                    "carbon_g": e.totals.carbon_g,
                    "cpu_s": e.totals.cpu_s,
                    "power_w": e.totals.power_w(&self.recent_s),
                })
            })
            .collect();
        serde_json::json!({
            "source": self.tree.describe(),
            "idle_model": match self.opts.idle {
                IdleModel::CpuShare => "cpu_share".to_string(),
                IdleModel::BaselineW(w) => format!("baseline {w} W"),
            },
            "cpus": self.opts.cpus,
            "workloads": workloads,
            "system": self.system.json(&self.recent_s),
            "idle": self.idle.json(&self.recent_s),
            "other": self.other.json(&self.recent_s),
            "gpu": self.gpu.json(&self.recent_s),
            "power_slices": POWER_SLICES,
            "untracked_now": self.untracked_now,
            "max_series": self.opts.max_series,
            "rerank_slices": RERANK_SLICES,
            "gpu_split": self.gpu_procs.is_some(),
            "workloads_seen": self.workloads_seen,
            "walks_truncated": self.walks_truncated,
            "problem": self.last_problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_sensors::cgroups::FakeCgroups;

    const ID_A: &str = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001";
    const ID_B: &str = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000002";
    const POD: &str = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod11111111_2222_3333_4444_555555555555.slice";
    const S: u64 = 1_000_000_000;

    /// A tree behind a shared handle, so the test changes it between slices.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<FakeCgroups>>);
    impl CgroupTree for Shared {
        fn children(&self, p: &str) -> Vec<String> {
            self.0.lock().unwrap().children(p)
        }
        fn usage_ns(&self, p: &str) -> Option<u64> {
            self.0.lock().unwrap().usage_ns(p)
        }
        fn describe(&self) -> String {
            "shared fake".into()
        }
    }

    fn node(opts: WorkloadOptions) -> (Shared, Workloads) {
        let t = Shared::default();
        {
            let mut f = t.0.lock().unwrap();
            f.set("", 0);
            f.set(POD, 0);
            f.set(&format!("{POD}/cri-containerd-{ID_A}.scope"), 0);
            f.set("system.slice/nginx.service", 0);
        }
        let w = Workloads::new(Box::new(t.clone()), opts);
        (t, w)
    }

    fn totals(w: &Workloads, kind: &str, container: &str) -> WorkloadTotals {
        w.series()
            .into_iter()
            .find(|(l, _)| l.kind == kind && l.container == container)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no {kind}/{container} in {:?}", w.series()))
    }

    #[test]
    fn a_slice_is_split_between_containers_pods_services_system_and_idle() {
        let (t, mut w) = node(WorkloadOptions::new(4.0));
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        {
            let mut f = t.0.lock().unwrap();
            // 2 s of 8 CPU-s: 1.5 in the container, 0.5 more in its pod, 1 in nginx, 0.5 in
            // no workload: busy 3.5 s.
            f.set("", 35 * S / 10);
            f.set(POD, 2 * S);
            f.set(&format!("{POD}/cri-containerd-{ID_A}.scope"), 15 * S / 10);
            f.set("system.slice/nginx.service", S);
        }
        // 800 J over 8 CPU-s: 100 J each; carbon 0.001 g/J.
        w.on_slice(800.0, 0.0, 2.0, 0.001);
        assert_eq!(totals(&w, "pod", "aaaaaaaaaaaa").energy_j, 150.0);
        assert_eq!(totals(&w, "pod", "").energy_j, 50.0);
        assert_eq!(totals(&w, "service", "nginx.service").energy_j, 100.0);
        assert_eq!(totals(&w, "system", "").energy_j, 50.0);
        assert_eq!(totals(&w, "idle", "").energy_j, 450.0);
        assert_eq!(totals(&w, "other", "").energy_j, 0.0);
        assert_eq!(totals(&w, "service", "nginx.service").carbon_g, 0.1);
        assert_eq!(totals(&w, "pod", "aaaaaaaaaaaa").cpu_s, 1.5);
        let pod = w
            .series()
            .into_iter()
            .find(|(l, _)| l.kind == "pod")
            .unwrap()
            .0;
        assert_eq!(pod.pod, "11111111-2222-3333-4444-555555555555");
    }

    #[test]
    fn pod_names_from_a_kubelet_list_and_the_downward_api_replace_uids() {
        let mut names = PodNames::from_downward_api(|k| {
            [
                ("POD_UID", "99999999-0000-0000-0000-000000000000"),
                ("POD_NAMESPACE", "monitoring"),
                ("POD_NAME", "wattprint-x7"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
        });
        assert_eq!(names.pods.len(), 1);
        let n = names
            .add_pod_list(&format!(
                r#"{{"kind":"PodList","items":[{{"metadata":{{"uid":"11111111-2222-3333-4444-555555555555","namespace":"shop","name":"cart-5d8f"}},
                "status":{{"containerStatuses":[{{"name":"cart","containerID":"containerd://{ID_A}"}}]}}}}]}}"#
            ))
            .unwrap();
        assert_eq!(n, 1);
        let mut opts = WorkloadOptions::new(4.0);
        opts.pods = names;
        let (t, mut w) = node(opts);
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        t.0.lock()
            .unwrap()
            .set(&format!("{POD}/cri-containerd-{ID_A}.scope"), S);
        t.0.lock().unwrap().set(POD, S);
        t.0.lock().unwrap().set("", S);
        w.on_slice(40.0, 0.0, 1.0, 0.0);
        let (l, tot) = w
            .series()
            .into_iter()
            .find(|(l, _)| l.container == "cart")
            .unwrap();
        assert_eq!(
            (l.namespace.as_str(), l.pod.as_str()),
            ("shop", "cart-5d8f")
        );
        assert_eq!(tot.energy_j, 10.0);
        assert!(PodNames::default().add_pod_list("[1,2]").is_err());
    }

    #[test]
    fn beyond_the_series_limit_the_top_by_energy_get_series_and_ended_ones_leave_after_k_scrapes() {
        let mut opts = WorkloadOptions::new(1.0);
        opts.max_series = 2;
        opts.keep_scrapes = 2;
        let (t, mut w) = node(opts);
        let a = format!("{POD}/cri-containerd-{ID_A}.scope");
        let b = format!("system.slice/docker-{ID_B}.scope");
        let nginx = "system.slice/nginx.service";
        t.0.lock().unwrap().set(&b, 0);
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        {
            let mut f = t.0.lock().unwrap();
            f.set("", S);
            f.set(POD, S / 10);
            f.set(&a, S / 10);
            f.set(&b, S / 2);
            f.set(nginx, S / 4);
        }
        // 1 CPU x 1 s, 100 J: docker 50, nginx 25, the pod's container 10, the pod itself 0.
        // The two with the most energy get the two series (the walk's order would have
        // given them to the pod and its container, which come first).
        w.on_slice(100.0, 0.0, 1.0, 0.0);
        let names = |w: &Workloads| -> Vec<String> {
            w.json()["workloads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["container"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&w), vec!["bbbbbbbbbbbb", "nginx.service"]);
        assert_eq!(totals(&w, "other", "").energy_j, 10.0);
        assert_eq!(totals(&w, "container", "bbbbbbbbbbbb").energy_j, 50.0);
        assert_eq!(w.json()["untracked_now"], 2);
        let mut text = String::new();
        w.render(&mut text);
        assert!(text.contains("wattprint_workloads_untracked 2"), "{text}");
        // nginx ends: kept through two scrapes after it was last seen, then dropped, which
        // frees its series for the pod's container (more energy than the pod), from 0.
        t.0.lock().unwrap().remove(nginx);
        let busy = |w: &mut Workloads, k: u64| {
            let mut f = t.0.lock().unwrap();
            f.set("", (1 + k) * S);
            f.set(POD, S / 10 + k * S / 5);
            f.set(&a, S / 10 + k * S / 5);
            drop(f);
            w.on_slice(100.0, 0.0, 1.0, 0.0);
        };
        w.scraped();
        busy(&mut w, 1);
        assert_eq!(names(&w), vec!["bbbbbbbbbbbb", "nginx.service"]);
        assert_eq!(totals(&w, "other", "").energy_j, 30.0);
        w.scraped();
        busy(&mut w, 2);
        assert_eq!(names(&w), vec!["bbbbbbbbbbbb", "nginx.service"]);
        w.scraped();
        busy(&mut w, 3);
        assert_eq!(names(&w), vec!["bbbbbbbbbbbb"]);
        assert_eq!(totals(&w, "other", "").energy_j, 70.0);
        busy(&mut w, 4);
        assert_eq!(names(&w), vec!["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
        assert_eq!(totals(&w, "pod", "aaaaaaaaaaaa").energy_j, 20.0);
        assert_eq!(totals(&w, "other", "").energy_j, 70.0);
        assert_eq!(w.json()["untracked_now"], 1);
    }

    #[test]
    fn a_restored_tracker_continues_its_counters_and_the_first_slice_only_records() {
        let (t, mut w) = node(WorkloadOptions::new(1.0));
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        t.0.lock().unwrap().set("", S);
        t.0.lock().unwrap().set("system.slice/nginx.service", S / 2);
        w.on_slice(10.0, 0.0, 1.0, 0.1);
        let snap = w.snapshot();
        let (t2, mut w2) = node(WorkloadOptions::new(1.0));
        w2.restore(&snap);
        assert_eq!(totals(&w2, "service", "nginx.service").energy_j, 5.0);
        assert_eq!(totals(&w2, "system", "").carbon_g, 0.5);
        // Usage moved while the agent was down: not attributed.
        t2.0.lock().unwrap().set("", 3 * S);
        t2.0.lock()
            .unwrap()
            .set("system.slice/nginx.service", 2 * S);
        w2.on_slice(10.0, 0.0, 1.0, 0.1);
        assert_eq!(totals(&w2, "service", "nginx.service").energy_j, 5.0);
        t2.0.lock().unwrap().set("", 4 * S);
        t2.0.lock()
            .unwrap()
            .set("system.slice/nginx.service", 3 * S);
        w2.on_slice(10.0, 0.0, 1.0, 0.1);
        assert_eq!(totals(&w2, "service", "nginx.service").energy_j, 15.0);
        assert_eq!(w2.json()["workloads_seen"], 3);
    }

    #[test]
    fn power_is_averaged_over_the_last_slices_and_a_reused_cgroup_name_counts_as_new() {
        let (t, mut w) = node(WorkloadOptions::new(1.0));
        let nginx = "system.slice/nginx.service";
        let power = |w: &Workloads| {
            let j = w.json();
            let n = j["workloads"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["container"] == "nginx.service")
                .unwrap()["power_w"]
                .as_f64()
                .unwrap();
            (n, j["system"]["power_w"].as_f64().unwrap())
        };
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        assert!(w.json()["system"]["power_w"].is_null());
        // 1 CPU busy all of each 1 s slice of 100 J, nginx half of it: 50 J, 50 W each.
        for k in 1..=2u64 {
            t.0.lock().unwrap().set("", k * S);
            t.0.lock().unwrap().set(nginx, k * S / 2);
            w.on_slice(100.0, 0.0, 1.0, 0.0);
        }
        assert_eq!(power(&w), (50.0, 50.0));
        // nginx restarted as another cgroup under the same name: its usage began at 0, so
        // all 0.25 s are its own (not a negative delta clamped to nothing).
        t.0.lock().unwrap().set("", 3 * S);
        t.0.lock().unwrap().set(nginx, S / 4);
        w.on_slice(100.0, 0.0, 1.0, 0.0);
        assert_eq!(totals(&w, "service", "nginx.service").energy_j, 125.0);
        let (n, sys) = power(&w);
        assert!((n - 125.0 / 3.0).abs() < 1e-9 && (sys - 175.0 / 3.0).abs() < 1e-9);
        // Six idle slices later the three busy ones have left the average.
        for _ in 0..POWER_SLICES {
            w.on_slice(0.0, 0.0, 1.0, 0.0);
        }
        assert_eq!(power(&w), (0.0, 0.0));
        assert_eq!(w.json()["power_slices"], POWER_SLICES);
    }

    #[test]
    fn the_exposition_has_both_families_with_bounded_labels() {
        let (t, mut w) = node(WorkloadOptions::new(2.0));
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        t.0.lock().unwrap().set("", S);
        t.0.lock().unwrap().set("system.slice/nginx.service", S);
        w.on_slice(20.0, 0.0, 1.0, 0.5);
        let mut text = String::new();
        w.render(&mut text);
        assert!(text.contains("wattprint_workload_energy_joules_total{kind=\"service\",namespace=\"\",pod=\"\",container=\"nginx.service\"} 10\n"), "{text}");
        assert!(text.contains("wattprint_workload_carbon_grams_total{kind=\"idle\",namespace=\"\",pod=\"\",container=\"\"} 5\n"), "{text}");
        assert!(text.contains("# UNIT wattprint_workload_energy_joules joules"));
    }

    /// A node with services `s0.service`..: `(Shared tree, Workloads)` with `n` CPUs.
    fn services(opts: WorkloadOptions) -> (Shared, Workloads) {
        let t = Shared::default();
        t.0.lock().unwrap().set("", 0);
        let w = Workloads::new(Box::new(t.clone()), opts);
        (t, w)
    }

    /// Give each `(service, cpu ns)` its CPU time in the next slice of 1 s; the node's busy
    /// time is their sum (`clock` keeps the running counters).
    fn run_slice(
        t: &Shared,
        w: &mut Workloads,
        clock: &mut HashMap<String, u64>,
        cpu: &[(&str, u64)],
        energy_j: f64,
    ) {
        let mut f = t.0.lock().unwrap();
        let mut busy = 0;
        for (name, ns) in cpu {
            let c = clock.entry(name.to_string()).or_insert(0);
            *c += ns;
            f.set(&format!("system.slice/{name}"), *c);
            busy += ns;
        }
        let root = clock.entry(String::new()).or_insert(0);
        *root += busy;
        f.set("", *root);
        drop(f);
        w.on_slice(energy_j, 0.0, 1.0, 0.0);
    }

    fn series_names(w: &Workloads) -> Vec<(String, bool)> {
        w.json()["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["container"].as_str().unwrap().to_string(),
                    x["evicted"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_challenger_needs_half_again_the_weakest_series_energy_so_similar_ones_do_not_flap() {
        let mut opts = WorkloadOptions::new(1.0);
        opts.max_series = 1;
        opts.keep_scrapes = 1;
        let (t, mut w) = services(opts);
        let mut clock = HashMap::new();
        run_slice(
            &t,
            &mut w,
            &mut clock,
            &[("a.service", 0), ("b.service", 0)],
            0.0,
        );
        // 1 CPU x 1 s of 100 J: 1 J per 10 ms. `a` leads at first and gets the series.
        run_slice(
            &t,
            &mut w,
            &mut clock,
            &[("a.service", S / 2), ("b.service", S / 4)],
            100.0,
        );
        assert_eq!(series_names(&w), vec![("a.service".to_string(), false)]);
        // Then `b` uses 1.4 times `a`'s CPU time, through several rankings: no swap.
        for _ in 0..3 * RERANK_SLICES {
            run_slice(
                &t,
                &mut w,
                &mut clock,
                &[("a.service", S / 5), ("b.service", 28 * S / 100)],
                100.0,
            );
            w.scraped();
        }
        assert_eq!(series_names(&w), vec![("a.service".to_string(), false)]);
        let a_before = totals(&w, "service", "a.service").energy_j;
        assert_eq!(a_before, 50.0 + 20.0 * (3 * RERANK_SLICES) as f64);
        // `b` at twice `a`: at the next ranking `a` is evicted (frozen, its energy to
        // `other`), dropped after one scrape saw it, and `b` takes the series from 0.
        let other = |w: &Workloads| totals(w, "other", "").energy_j;
        let mut evicted_at = None;
        for k in 0..RERANK_SLICES {
            run_slice(
                &t,
                &mut w,
                &mut clock,
                &[("a.service", S / 5), ("b.service", 2 * S / 5)],
                100.0,
            );
            if series_names(&w) == vec![("a.service".to_string(), true)] {
                evicted_at = Some(k);
                break;
            }
        }
        assert!(
            evicted_at.is_some(),
            "a was not evicted within one ranking period"
        );
        let o = other(&w);
        run_slice(
            &t,
            &mut w,
            &mut clock,
            &[("a.service", S / 5), ("b.service", 2 * S / 5)],
            100.0,
        );
        // Frozen: a's 20 J and b's 40 J went to `other`.
        assert_eq!(
            totals(&w, "service", "a.service").energy_j,
            a_before + 20.0 * (evicted_at.unwrap() + 1) as f64
        );
        assert_eq!(other(&w), o + 60.0);
        w.scraped();
        run_slice(
            &t,
            &mut w,
            &mut clock,
            &[("a.service", S / 5), ("b.service", 2 * S / 5)],
            100.0,
        );
        assert!(series_names(&w).is_empty());
        run_slice(
            &t,
            &mut w,
            &mut clock,
            &[("a.service", S / 5), ("b.service", 2 * S / 5)],
            100.0,
        );
        assert_eq!(series_names(&w), vec![("b.service".to_string(), false)]);
        assert_eq!(totals(&w, "service", "b.service").energy_j, 40.0);
        // Now `a` (half of `b`) stays outside.
        for _ in 0..2 * RERANK_SLICES {
            run_slice(
                &t,
                &mut w,
                &mut clock,
                &[("a.service", S / 5), ("b.service", 2 * S / 5)],
                100.0,
            );
        }
        assert_eq!(series_names(&w), vec![("b.service".to_string(), false)]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Whatever the churn: every joule is in exactly one series (the exported ones plus
        /// the final values of those dropped), each series only grows while exported, and
        /// at most `max_series` workloads have one.
        #[test]
        fn series_are_monotonic_bounded_and_add_up_to_the_energy_fed(
            max_series in 1usize..5,
            keep in 1u64..3,
            steps in proptest::collection::vec(
                (proptest::collection::vec(proptest::option::of(0u64..1000), 8), 0.0..500.0f64, proptest::bool::ANY),
                1..40,
            ),
        ) {
            let mut opts = WorkloadOptions::new(8.0);
            opts.max_series = max_series;
            opts.keep_scrapes = keep;
            let (t, mut w) = services(opts);
            let mut clock: HashMap<String, u64> = HashMap::new();
            let names: Vec<String> = (0..8).map(|k| format!("s{k}.service")).collect();
            let mut fed = 0.0;
            let mut dropped = 0.0;
            let mut last: HashMap<(String, String), f64> = HashMap::new();
            for (k, (cpu, e, scrape)) in steps.iter().enumerate() {
                // A workload is alive in a step with Some(ms of CPU); None: it is gone.
                {
                    let mut f = t.0.lock().unwrap();
                    for (n, c) in names.iter().zip(cpu) {
                        if c.is_none() {
                            f.remove(&format!("system.slice/{n}"));
                            clock.remove(n);
                        }
                    }
                }
                let live: Vec<(&str, u64)> = names
                    .iter()
                    .zip(cpu)
                    .filter_map(|(n, c)| c.map(|ms| (n.as_str(), ms * 1_000_000)))
                    .collect();
                run_slice(&t, &mut w, &mut clock, &live, *e);
                if k > 0 {
                    fed += e;
                }
                if *scrape {
                    w.scraped();
                }
                let now: HashMap<(String, String), f64> = w
                    .series()
                    .into_iter()
                    .map(|(l, tot)| ((l.kind.to_string(), l.container.clone()), tot.energy_j))
                    .collect();
                for (key, before) in &last {
                    match now.get(key) {
                        Some(v) => proptest::prop_assert!(*v >= *before, "{key:?} went from {before} to {v}"),
                        None => dropped += before,
                    }
                }
                let tracked = now.keys().filter(|(kind, _)| kind == "service").count();
                proptest::prop_assert!(tracked <= max_series, "{tracked} series > {max_series}");
                let sum: f64 = now.values().sum::<f64>() + dropped;
                proptest::prop_assert!((sum - fed).abs() <= 1e-9 * fed.max(1.0), "{sum} vs {fed}");
                last = now;
            }
        }
    }

    /// A node with two pods (a container each) and a fake procfs whose PIDs are in them.
    fn gpu_node() -> (
        Shared,
        Workloads,
        wattprint_sensors::fake::FakeGpuProcesses,
        tempfile::TempDir,
    ) {
        const POD2: &str = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod99999999_8888_7777_6666_555555555555.slice";
        let (t, w) = node(WorkloadOptions::new(4.0));
        t.0.lock()
            .unwrap()
            .set(&format!("{POD2}/cri-containerd-{ID_B}.scope"), 0);
        t.0.lock().unwrap().set(POD2, 0);
        let procfs = tempfile::tempdir().unwrap();
        let cg = |pid: u32, text: String| {
            let d = procfs.path().join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup"), text).unwrap();
        };
        // v2 line format, the container's own cgroup.
        cg(100, format!("0::/{POD}/cri-containerd-{ID_A}.scope\n"));
        // v1 (hybrid host), a cgroup below the container's: its nearest walked ancestor.
        cg(
            200,
            format!(
                "12:memory:/x\n4:cpu,cpuacct:/{POD2}/cri-containerd-{ID_B}.scope/worker\n0::/\n"
            ),
        );
        // A process in no workload (a login session's slice).
        cg(300, "0::/user.slice/user-1000.slice\n".into());
        // PID 400: its cgroup file is gone (the process ended).
        let fake = wattprint_sensors::fake::FakeGpuProcesses::default();
        let w = w.with_gpu_processes(Box::new(fake.clone()), procfs.path().to_path_buf());
        (t, w, fake, procfs)
    }

    fn gpus(j0: f64, j1: f64, amd: f64) -> GpuSlice {
        GpuSlice {
            nvml: vec![
                GpuEnergy {
                    gpu_index: 0,
                    joules: j0,
                },
                GpuEnergy {
                    gpu_index: 1,
                    joules: j1,
                },
            ],
            unsplit_j: amd,
        }
    }

    #[test]
    fn gpu_energy_goes_to_the_workloads_whose_cgroups_hold_the_processes() {
        let (_t, mut w, fake, _procfs) = gpu_node();
        fake.push(&[(0, 100, 50)]);
        w.on_slice_gpus(0.0, &gpus(0.0, 0.0, 0.0), 1.0, 0.0);
        // GPU 0, 600 J: pid 100 at 40 + 20 %, pid 200 at 30 %, pid 300 at 10 %: 360, 180
        // and 60 J (the last in no workload). GPU 1, 200 J: only pid 400, gone. An AMD GPU,
        // 40 J, has no process source.
        fake.push(&[
            (0, 100, 40),
            (0, 200, 30),
            (0, 300, 10),
            (0, 100, 20),
            (1, 400, 50),
        ]);
        w.on_slice_gpus(0.0, &gpus(600.0, 200.0, 40.0), 1.0, 0.001);
        let a = totals(&w, "pod", "aaaaaaaaaaaa");
        let b = totals(&w, "pod", "bbbbbbbbbbbb");
        let gpu = totals(&w, "gpu", "");
        assert_eq!(
            (a.energy_j, a.gpu_energy_j, a.carbon_g),
            (360.0, 360.0, 0.36)
        );
        assert_eq!((b.energy_j, b.gpu_energy_j), (180.0, 180.0));
        assert_eq!((gpu.energy_j, gpu.gpu_energy_j), (300.0, 300.0));
        assert_eq!(a.energy_j + b.energy_j + gpu.energy_j, 840.0);
        let j = w.json();
        assert_eq!(j["gpu_split"], true);
        assert_eq!(j["gpu"]["gpu_energy_j"], 300.0);
        let mut text = String::new();
        w.render(&mut text);
        assert!(
            text.contains("# TYPE wattprint_workload_gpu_energy_joules counter\n"),
            "{text}"
        );
        assert!(text.contains("wattprint_workload_gpu_energy_joules_total{kind=\"pod\",namespace=\"\",pod=\"99999999-8888-7777-6666-555555555555\",container=\"bbbbbbbbbbbb\"} 180\n"), "{text}");
        assert!(text.contains("wattprint_workload_energy_joules_total{kind=\"gpu\",namespace=\"\",pod=\"\",container=\"\"} 300\n"), "{text}");
    }

    #[test]
    fn a_process_cgroup_maps_to_its_walked_workload_or_nearest_ancestor() {
        let walked: HashMap<&str, usize> = [
            ("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice", 0),
            ("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice/cri-containerd-a.scope", 1),
            ("system.slice/nginx.service", 2),
        ]
        .into_iter()
        .collect();
        let pod = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podx.slice";
        let at = |c: &str| owning_path(&walked, c).map(|(_, i)| i);
        assert_eq!(at(&format!("{pod}/cri-containerd-a.scope")), Some(1));
        assert_eq!(
            at(&format!("{pod}/cri-containerd-a.scope/worker/")),
            Some(1)
        );
        assert_eq!(at(&format!("{pod}/crio-conmon-b.scope")), Some(0));
        assert_eq!(at("system.slice/nginx.service/sub"), Some(2));
        assert_eq!(at("system.slice"), None);
        assert_eq!(at(""), None);
        // Seen from an agent in its own cgroup namespace (another pod's cgroup).
        assert_eq!(
            at("../../kubepods-besteffort.slice/kubepods-besteffort-podx.slice/cri-containerd-a.scope"),
            Some(1)
        );
        assert_eq!(
            at("../../kubepods-besteffort.slice/kubepods-besteffort-podx.slice/other"),
            Some(0)
        );
        assert_eq!(at("../../nothing.slice/x.scope"), None);
        assert_eq!(at("../.."), None);
        // A suffix must start at a component: `x.service` is not `nginx.service`.
        assert_eq!(at("../x.service"), None);
    }

    #[test]
    fn a_pid_whose_process_ended_or_whose_workload_left_keeps_its_gpu_energy_in_gpu() {
        let (t, mut w, fake, procfs) = gpu_node();
        w.on_slice_gpus(0.0, &GpuSlice::default(), 1.0, 0.0);
        fake.push(&[(0, 100, 50), (0, 200, 50)]);
        w.on_slice_gpus(0.0, &gpus(100.0, 0.0, 0.0), 1.0, 0.0);
        assert_eq!(totals(&w, "pod", "bbbbbbbbbbbb").gpu_energy_j, 50.0);
        // Pod 2's container ended (its cgroup is gone) and so did PID 200: the next slice's
        // samples of it (the driver reports them late) are not charged to anyone.
        t.0.lock()
            .unwrap()
            .remove(&format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod99999999_8888_7777_6666_555555555555.slice/cri-containerd-{ID_B}.scope"));
        std::fs::remove_dir_all(procfs.path().join("200")).unwrap();
        fake.push(&[(0, 100, 50), (0, 200, 50)]);
        w.on_slice_gpus(0.0, &gpus(100.0, 0.0, 0.0), 1.0, 0.0);
        assert_eq!(totals(&w, "pod", "aaaaaaaaaaaa").gpu_energy_j, 100.0);
        assert_eq!(totals(&w, "pod", "bbbbbbbbbbbb").gpu_energy_j, 50.0);
        assert_eq!(totals(&w, "gpu", "").energy_j, 50.0);
        // A slice without samples: an idle GPU's energy is all `gpu`'s.
        w.on_slice_gpus(0.0, &gpus(30.0, 0.0, 0.0), 1.0, 0.0);
        assert_eq!(totals(&w, "gpu", "").energy_j, 80.0);
        assert_eq!(totals(&w, "pod", "aaaaaaaaaaaa").gpu_energy_j, 100.0);
    }

    #[test]
    fn without_a_gpu_process_source_gpu_energy_stays_whole_in_gpu() {
        let (_t, mut w) = node(WorkloadOptions::new(4.0));
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        w.on_slice(0.0, 50.0, 1.0, 0.0);
        w.on_slice_gpus(0.0, &gpus(20.0, 10.0, 5.0), 1.0, 0.0);
        let gpu = totals(&w, "gpu", "");
        assert_eq!((gpu.energy_j, gpu.gpu_energy_j), (85.0, 85.0));
        assert_eq!(totals(&w, "pod", "aaaaaaaaaaaa").gpu_energy_j, 0.0);
        let mut text = String::new();
        w.render(&mut text);
        assert!(
            !text.contains("wattprint_workload_gpu_energy_joules"),
            "{text}"
        );
        assert_eq!(w.json()["gpu_split"], false);
    }

    #[test]
    fn the_spool_keeps_the_gpu_parts() {
        let (_t, mut w, fake, _procfs) = gpu_node();
        w.on_slice_gpus(0.0, &GpuSlice::default(), 1.0, 0.0);
        fake.push(&[(0, 100, 75), (0, 300, 25)]);
        w.on_slice_gpus(0.0, &gpus(80.0, 0.0, 0.0), 1.0, 0.0);
        let snap = w.snapshot();
        let back: crate::spool::WorkloadsSnapshot =
            serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
        let (_t2, mut w2) = node(WorkloadOptions::new(4.0));
        w2.restore(&back);
        assert_eq!(totals(&w2, "pod", "aaaaaaaaaaaa").gpu_energy_j, 60.0);
        assert_eq!(totals(&w2, "gpu", "").gpu_energy_j, 20.0);
        // A snapshot written before the GPU split reads with no GPU parts.
        let old = r#"{"workloads":[{"kind":"service","pod_uid":"","id":"x.service","namespace":"","pod":"","container":"x.service","qos":null,"cgroup":"system.slice/x.service","energy_j":5.0,"carbon_g":0.0,"cpu_s":1.0}],"fixed":{"gpu":[7.0,0.0]},"workloads_seen":1}"#;
        let old: crate::spool::WorkloadsSnapshot = serde_json::from_str(old).unwrap();
        let (_t3, mut w3) = node(WorkloadOptions::new(4.0));
        w3.restore(&old);
        assert_eq!(totals(&w3, "service", "x.service").gpu_energy_j, 0.0);
        assert_eq!(totals(&w3, "gpu", "").gpu_energy_j, 7.0);
    }
}
