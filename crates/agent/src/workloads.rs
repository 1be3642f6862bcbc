//! Energy and carbon per workload (Kubernetes pods' containers, containers, systemd units):
//! at every slice the agent walks the cgroup hierarchy ([`CgroupTree`]), takes each
//! workload's CPU-time delta, and splits the slice's energy with
//! [`wattprint_core::workloads::split_by_cpu`] (idle apart, the rest of the node's CPU time
//! to `system`).
//!
//! Bounded: the walk reads at most [`WorkloadOptions::max_cgroups`] cgroups; at most
//! [`WorkloadOptions::max_series`] workloads are counted as their own series, the energy of
//! the others is added to `kind="other"`; a workload that ended is kept until
//! [`WorkloadOptions::keep_scrapes`] scrapes saw its final value, then dropped. The walk
//! happens on the sampling task, never in a scrape. See `docs/workloads.md`.

use crate::metrics::escape;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wattprint_core::workloads::{
    name_cgroup, split_by_cpu, CgroupWorkload, CpuSlice, IdleModel, QosClass, WorkloadKind,
};
use wattprint_sensors::cgroups::CgroupTree;

/// Slices over which a workload's power (`power_w` in `/v1/workloads`, the dashboard's
/// column) is averaged: 30 s at the default 5 s `--interval`, enough to smooth a bursty
/// container and short enough to follow one that starts or ends.
pub const POWER_SLICES: usize = 6;

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

/// Totals of one workload (or of system, idle, other): monotonic counters.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct WorkloadTotals {
    pub energy_j: f64,
    pub carbon_g: f64,
    pub cpu_s: f64,
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

    /// Mean power over the ring's slices, W (`recent_s`: their durations, s); `None` before
    /// a slice was attributed.
    fn power_w(&self, recent_s: &[f64; POWER_SLICES]) -> Option<f64> {
        let s: f64 = recent_s.iter().sum();
        (s > 0.0).then(|| self.recent_j.iter().sum::<f64>() / s)
    }

    fn json(&self, recent_s: &[f64; POWER_SLICES]) -> serde_json::Value {
        serde_json::json!({
            "energy_j": self.energy_j,
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
    /// `None` while alive; the scrape count when it was last seen alive, once ended.
    ended_at_scrape: Option<u64>,
    /// The last walk that saw it alive (`u64::MAX` for one restored from the spool).
    walk: u64,
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
    /// GPU domains' energy (NVML's per-process share is not split per workload yet).
    gpu: WorkloadTotals,
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
            untracked_now: 0,
            walks_truncated: 0,
            workloads_seen: 0,
            scrapes: AtomicU64::new(0),
            last_problem: None,
        }
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
        if first {
            return;
        }
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
        self.gpu.add_in_slice(slot, gpu_j.max(0.0), g_per_j, 0.0);
        self.idle.add_in_slice(slot, split.idle_j, g_per_j, 0.0);
        let scrapes = self.scrapes.load(Ordering::Relaxed);
        let mut untracked = 0;
        for (((n, _), j), c) in found.iter().zip(&split.workload_j).zip(&cpu_s) {
            let Some((w, key, labels)) = &n.workload else {
                continue;
            };
            let p = &n.path;
            // One lookup for a workload already counted (the common case).
            if let Some(e) = self.entries.get_mut(key) {
                if e.labels != *labels {
                    e.labels = labels.clone();
                }
                e.ended_at_scrape = None;
                e.walk = walk;
                e.totals.add_in_slice(slot, *j, g_per_j, *c);
            } else {
                if self.entries.len() >= self.opts.max_series {
                    self.other.add_in_slice(slot, *j, g_per_j, *c);
                    untracked += 1;
                    continue;
                }
                self.workloads_seen += 1;
                self.entries.insert(
                    key.clone(),
                    Entry {
                        labels: labels.clone(),
                        qos: w.qos,
                        cgroup: p.clone(),
                        totals: WorkloadTotals::default(),
                        ended_at_scrape: None,
                        walk,
                    },
                );
                if let Some(e) = self.entries.get_mut(key) {
                    e.totals.add_in_slice(slot, *j, g_per_j, *c);
                }
            }
        }
        self.untracked_now = untracked;
        let keep = self.opts.keep_scrapes;
        self.entries.retain(|_, e| {
            if e.walk == walk {
                return true;
            }
            let since = *e.ended_at_scrape.get_or_insert(scrapes);
            scrapes.saturating_sub(since) < keep
        });
        self.last_phases_s[2] = crate::overhead::thread_cpu_s() - c2;
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
                "Energy per workload (pod container, container, systemd unit) by CPU-time share; kind=system|idle|other for the rest.",
                (|t: &WorkloadTotals| t.energy_j) as fn(&WorkloadTotals) -> f64,
            ),
            (
                "wattprint_workload_carbon_grams",
                "grams",
                "Carbon (gCO2e) per workload, at the agent's intensity and PUE.",
                |t: &WorkloadTotals| t.carbon_g,
            ),
        ] {
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
        }
    }

    /// Continue a previous process's counters (on a fresh tracker). Restored workloads count
    /// as ended until the first walk sees them again, so one that stopped while the agent was
    /// down leaves after `keep_scrapes` scrapes. Its energy during the downtime is not
    /// known: the first slice after a restart only records the cgroups' usage.
    pub fn restore(&mut self, s: &crate::spool::WorkloadsSnapshot) {
        for w in s.workloads.iter().take(self.opts.max_series) {
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
                        ..Default::default()
                    },
                    ended_at_scrape: Some(0),
                    walk: u64::MAX,
                },
            );
        }
        // Beyond the series limit (a smaller --max-workloads than before): into `other`.
        for w in s.workloads.iter().skip(self.opts.max_series) {
            self.other.add(w.energy_j, 0.0, w.cpu_s);
            self.other.carbon_g += w.carbon_g;
        }
        for (k, (j, g)) in &s.fixed {
            let t = match k.as_str() {
                "system" => &mut self.system,
                "idle" => &mut self.idle,
                "other" => &mut self.other,
                "gpu" => &mut self.gpu,
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
                    "energy_j": e.totals.energy_j,
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
    fn beyond_the_series_limit_energy_goes_to_other_and_ended_workloads_leave_after_k_scrapes() {
        let mut opts = WorkloadOptions::new(1.0);
        opts.max_series = 2;
        opts.keep_scrapes = 2;
        let (t, mut w) = node(opts);
        let b = format!("system.slice/docker-{ID_B}.scope");
        t.0.lock().unwrap().set(&b, 0);
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        {
            let mut f = t.0.lock().unwrap();
            f.set("", S);
            f.set(&b, S / 2);
            f.set("system.slice/nginx.service", S / 4);
        }
        // 1 CPU x 1 s, 100 J: docker 50, nginx 25, both beyond the two series (the walk
        // goes in name order: the pod and its container, under kubepods.slice, come first).
        w.on_slice(100.0, 0.0, 1.0, 0.0);
        let tracked: Vec<_> = w
            .series()
            .into_iter()
            .filter(|(l, _)| !matches!(l.kind, "system" | "idle" | "other" | "gpu"))
            .collect();
        assert_eq!(tracked.len(), 2);
        assert_eq!(totals(&w, "other", "").energy_j, 75.0);
        assert_eq!(w.json()["untracked_now"], 2);
        let mut text = String::new();
        w.render(&mut text);
        assert!(text.contains("wattprint_workloads_untracked 2"), "{text}");
        // The pod ends: kept through two scrapes after it was last seen, then dropped,
        // which frees its slots for the docker container.
        t.0.lock().unwrap().remove(POD);
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        assert_eq!(w.json()["workloads"].as_array().unwrap().len(), 2);
        w.scraped();
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        assert_eq!(w.json()["workloads"].as_array().unwrap().len(), 2);
        w.scraped();
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        assert_eq!(w.json()["workloads"].as_array().unwrap().len(), 0);
        w.on_slice(0.0, 0.0, 1.0, 0.0);
        let names: Vec<String> = w.json()["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["container"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["bbbbbbbbbbbb", "nginx.service"]);
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
}
