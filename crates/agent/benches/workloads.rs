//! Per-workload attribution at node scale (not a timed test): a fake cgroup v2 tree on disk
//! in the kubelet's systemd layout with `WORKLOADS` containers (two per pod, default 500),
//! `CHURN` of them replaced by new pods' containers at every slice (default 10: at 5 s
//! slices, a container starts and one ends every half second), `SLICES` slices (default
//! 200).
//!
//! `cargo bench -p wattprint-agent --bench workloads` (the fake tree under `$TMPDIR`;
//! `TMPDIR=/dev/shm` puts it in memory, like cgroupfs). As root,
//! `CGROUP_ROOT=/sys/fs/cgroup/unified/wattprint-bench` (a new directory on a cgroup v2
//! mount) builds the layout from real cgroups instead, reads the kernel's `cpu.stat` and
//! removes them at the end.
//!
//! Measured with the thread's CPU clock around the agent's own work only (the fake tree's
//! writes are excluded): CPU per slice and its phases (the walk: listings and parsing; the
//! reads of the CPU-time files; the split and the counters), CPU and bytes per scrape, and at
//! the end the process's RSS (now and peak), its open descriptors and the series kept (memory
//! must not grow with churn: compare `SLICES=200` with `SLICES=2000`). The descriptor budget
//! is the agent's: its soft `RLIMIT_NOFILE` raised to the hard limit, half of it for the
//! cgroups' files. Figures go in docs/benchmarks.md.

use std::path::{Path, PathBuf};
use wattprint_agent::workloads::{WorkloadOptions, Workloads};
use wattprint_sensors::cgroups::{
    fd_budget_for_limit, raise_nofile_limit, CgroupFs, CgroupVersion,
};
use wattprint_sensors::meter::thread_cpu_s;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_usage(dir: &Path, usec: u64) {
    std::fs::write(
        dir.join("cpu.stat"),
        format!("usage_usec {usec}\nuser_usec {usec}\nsystem_usec 0\n"),
    )
    .unwrap();
}

const QOS: &str = "kubepods.slice/kubepods-burstable.slice";

fn pod_dir(root: &Path, n: usize) -> PathBuf {
    root.join(QOS).join(format!(
        "kubepods-burstable-pod{n:08x}_0000_0000_0000_000000000000.slice"
    ))
}

fn container_dir(root: &Path, n: usize, c: usize) -> PathBuf {
    pod_dir(root, n).join(format!("cri-containerd-{:064x}.scope", n * 2 + c))
}

fn main() {
    let workloads = env("WORKLOADS", 500);
    let churn = env("CHURN", 10);
    let slices = env("SLICES", 200);
    // CGROUP_ROOT=DIR (root, a new directory on a cgroup v2 mount): the same layout made of
    // real cgroups, their CPU-time files the kernel's (no usage written; removed with rmdir).
    let real = std::env::var_os("CGROUP_ROOT").map(PathBuf::from);
    let d = tempfile::tempdir().unwrap();
    let root = real.clone().unwrap_or_else(|| d.path().to_path_buf());
    let is_real = real.is_some();
    let write_usage = |dir: &Path, usec: u64| {
        if !is_real {
            write_usage(dir, usec);
        }
    };
    std::fs::create_dir_all(root.join(QOS)).unwrap();
    std::fs::create_dir_all(root.join("system.slice/kubelet.service")).unwrap();
    let pods = workloads / 2;
    // Live pods: their numbers; each has two containers.
    let mut live: std::collections::VecDeque<usize> = (0..pods).collect();
    let mut next = pods;
    let mut t_us: u64 = 0;
    let tree = |live: &std::collections::VecDeque<usize>, t_us: u64| {
        write_usage(&root, t_us * 4);
        write_usage(&root.join("system.slice/kubelet.service"), t_us / 100);
        for &n in live {
            std::fs::create_dir_all(container_dir(&root, n, 1)).unwrap();
            std::fs::create_dir_all(container_dir(&root, n, 0)).unwrap();
            write_usage(&pod_dir(&root, n), t_us / 100);
            write_usage(&container_dir(&root, n, 0), t_us / 400);
            write_usage(&container_dir(&root, n, 1), t_us / 300);
        }
    };
    tree(&live, t_us);
    // As the agent does at start.
    let nofile = raise_nofile_limit().unwrap_or(1024);
    let budget = fd_budget_for_limit(nofile);
    let fs = CgroupFs::new(root.clone(), CgroupVersion::V2).with_fd_budget(budget);
    let mut opts = WorkloadOptions::new(64.0);
    opts.max_series = 2 * workloads + 10;
    let mut w = Workloads::new(Box::new(fs), opts);
    let mut slice_cpu = Vec::with_capacity(slices);
    let mut scrape_cpu = Vec::with_capacity(slices);
    let mut phases: [Vec<f64>; 3] = Default::default();
    let mut rss_mid = 0;
    let mut scrape_bytes = 0;
    for _ in 0..slices {
        // Churn: the oldest pods end (their cgroups removed), new ones start.
        for _ in 0..churn / 2 {
            if let Some(n) = live.pop_front() {
                if is_real {
                    for c in 0..2 {
                        std::fs::remove_dir(container_dir(&root, n, c)).unwrap();
                    }
                    std::fs::remove_dir(pod_dir(&root, n)).unwrap();
                } else {
                    std::fs::remove_dir_all(pod_dir(&root, n)).unwrap();
                }
            }
            live.push_back(next);
            next += 1;
        }
        t_us += 5_000_000;
        tree(&live, t_us);
        let c0 = thread_cpu_s();
        w.on_slice(1500.0, 0.0, 5.0, 1e-4);
        slice_cpu.push(thread_cpu_s() - c0);
        for (v, s) in phases.iter_mut().zip(w.last_phases_s) {
            v.push(s);
        }
        if slice_cpu.len() == slices / 2 {
            rss_mid = wattprint_agent::overhead::rss_bytes();
        }
        let c0 = thread_cpu_s();
        let mut text = String::new();
        w.render(&mut text);
        scrape_cpu.push(thread_cpu_s() - c0);
        scrape_bytes = text.len();
    }
    let json = w.json();
    let kept = json["workloads"].as_array().map_or(0, Vec::len);
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (
            wattprint_core::stats::percentile(v, 50.0).unwrap_or(f64::NAN),
            wattprint_core::stats::percentile(v, 95.0).unwrap_or(f64::NAN),
        )
    };
    let (s50, s95) = med(&mut slice_cpu);
    let (r50, r95) = med(&mut scrape_cpu);
    let [walk, reads, split] = phases.map(|mut v| med(&mut v).0 * 1e3);
    println!("{workloads} containers in {pods} pods, {churn} replaced per slice, {slices} slices");
    println!(
        "slice CPU: median {:.2} ms, p95 {:.2} ms = {:.3} % of a core at 5 s slices (median)",
        s50 * 1e3,
        s95 * 1e3,
        s50 / 5.0 * 100.0
    );
    println!(
        "slice CPU by phase, medians: walk (listings, names) {walk:.2} ms, reads (CPU-time files) {reads:.2} ms, split and counters {split:.2} ms"
    );
    println!(
        "scrape: median {:.2} ms, p95 {:.2} ms CPU, {} bytes",
        r50 * 1e3,
        r95 * 1e3,
        scrape_bytes
    );
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    println!(
        "series kept at the end: {kept} (live {} + ended ones awaiting their scrapes); RSS at half-way {:.1} MiB, at the end {:.1} MiB, peak {:.1} MiB",
        live.len() * 3 + 1,
        mib(rss_mid),
        mib(wattprint_agent::overhead::rss_bytes()),
        mib(wattprint_agent::overhead::peak_rss_bytes())
    );
    println!(
        "descriptors: budget {budget} CPU-time files + {} directories (RLIMIT_NOFILE {nofile}); open at the end: {fds} in the process",
        budget / 4
    );
    if is_real {
        // Real cgroups go bottom-up with rmdir.
        drop(w);
        for &n in &live {
            for c in 0..2 {
                let _ = std::fs::remove_dir(container_dir(&root, n, c));
            }
            let _ = std::fs::remove_dir(pod_dir(&root, n));
        }
        for p in [
            QOS,
            "kubepods.slice",
            "system.slice/kubelet.service",
            "system.slice",
            "",
        ] {
            let _ = std::fs::remove_dir(root.join(p));
        }
    }
}
