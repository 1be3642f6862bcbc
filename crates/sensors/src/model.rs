//! The utilisation power model: modelled CPU and memory energy for machines with no readable
//! energy sensor. Every domain it reports is labelled `model`.
//!
//! CPU power follows a [`CpuCurve`] of the utilisation from `/proc/stat` over each read
//! interval ([`choose_cpu_model`]):
//! - on bare metal with a CPU name the embedded TDP table knows: TDP x the sockets seen x the
//!   load curve (`wattprint_core::powermodel`);
//! - in a virtual machine (cpuinfo's `hypervisor` flag: a package's TDP would overstate a VM
//!   holding a few of its threads), or when the name is generic or unknown: Cloud Carbon
//!   Footprint's per-vCPU min/max W of the micro-architecture identified from cpuinfo's family,
//!   model and flags (`wattprint_data::microarch`), from the table of the cloud provider named
//!   by DMI ([`provider_from_dmi`]), times the vCPUs.
//!
//! A container's CPUs are bounded by its cgroup's `cpu.max` (v2) or CFS quota (v1), the
//! smallest along its cgroup's ancestors. Memory power = 0.392 W per GB of *installed* memory
//! (`MemTotal`), constant. The sensor accumulates modelled energy itself and hands the meter a
//! cumulative counter, so windows are exact at their boundaries whatever the poll interval.

use crate::pread::OpenFile;
use crate::procfs::{
    count_stat_cpus, cpu_first_record, parse_cfs_quota, parse_cgroup_v1_path, parse_cgroup_v2_path,
    parse_cpu_max, parse_cpuinfo, parse_mem_total_bytes, parse_stat, read_prefix, CpuInfo,
    CpuTimes,
};
use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::path::Path;
use wattprint_core::powermodel::{self, CpuCurve};
use wattprint_core::{DomainDesc, DomainKind, Method, SensorSource};
use wattprint_data::ccf::{self, Provider};
use wattprint_data::microarch::{self, CpuSignature};

/// Source label of the model's domains.
pub const SOURCE: SensorSource = SensorSource::UtilisationModel;

/// The cloud provider named by the DMI strings of `<sysfs>/class/dmi/id` (pure): `Amazon EC2`
/// (any of the three fields mentioning Amazon, as on Nitro and Xen instances), `Google`
/// (`Google Compute Engine`), or `Microsoft Corporation` + `Virtual Machine` (Azure; a local
/// Hyper-V guest reports the same strings and gets Azure's table). `None` otherwise.
pub fn provider_from_dmi(
    sys_vendor: &str,
    product_name: &str,
    bios_vendor: &str,
) -> Option<Provider> {
    let all = [sys_vendor, product_name, bios_vendor].map(|s| s.trim().to_ascii_lowercase());
    if all.iter().any(|s| s.contains("amazon")) {
        Some(Provider::Aws)
    } else if all.iter().any(|s| s.contains("google")) {
        Some(Provider::Gcp)
    } else if all[0] == "microsoft corporation" && all[1] == "virtual machine" {
        Some(Provider::Azure)
    } else {
        None
    }
}

/// What the model knows about the machine, read by [`UtilisationModel::open`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MachineFacts {
    /// `/proc/cpuinfo` (the first record's name and signature; threads and sockets of the
    /// whole file when read).
    pub cpu: CpuInfo,
    /// Hardware threads online (`/proc/stat`'s `cpuN` lines).
    pub online_threads: u32,
    /// The cloud provider DMI names.
    pub provider: Option<Provider>,
    /// The CPUs the cgroup allows (`cpu.max` / CFS quota), with the file it came from.
    pub cpu_allowance: Option<(f64, String)>,
}

/// The model's CPU curve and how it was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuModelChoice {
    pub curve: CpuCurve,
    /// Human description of the figures and their sources.
    pub basis: String,
    /// Hardware threads of the machine (utilisation from `/proc/stat` is over these).
    pub threads: f64,
    /// CPUs the model stands for: the threads, or fewer when a cgroup allows fewer.
    pub cpus: f64,
}

impl CpuModelChoice {
    /// The utilisation of the modelled CPUs when the machine is busy `machine_utilisation`.
    pub fn utilisation(&self, machine_utilisation: f64) -> f64 {
        powermodel::allowance_utilisation(machine_utilisation, self.threads, self.cpus)
    }
}

/// Choose the CPU curve for the machine described by `facts` (pure; see the module docs).
pub fn choose_cpu_model(facts: &MachineFacts) -> CpuModelChoice {
    let threads = f64::from(facts.online_threads.max(1));
    let (cpus, allowance_note) = match &facts.cpu_allowance {
        Some((a, from)) if *a < threads => {
            (*a, format!(" (cpu limit {a} of {threads} from {from})"))
        }
        _ => (threads, String::new()),
    };
    let name = facts.cpu.model_name.as_deref();
    let known = name.and_then(wattprint_data::cpu::lookup);
    if let (Some(hit), false) = (&known, facts.cpu.in_vm()) {
        let sockets = f64::from(facts.cpu.sockets.max(1));
        let tdp_w = hit.tdp_w * sockets * cpus / threads;
        return CpuModelChoice {
            curve: CpuCurve::Tdp { tdp_w },
            basis: format!(
                "{}: {} W x {} socket(s){allowance_note}, TDP x load curve ({})",
                hit.name,
                hit.tdp_w,
                facts.cpu.sockets.max(1),
                wattprint_data::cpu::SOURCE
            ),
            threads,
            cpus,
        };
    }
    let why = match (name, known.is_some()) {
        (_, true) => "a virtual machine (hypervisor flag): a package TDP would overstate it".into(),
        (Some(n), false) => format!("{n} not in the TDP table"),
        (None, false) => "no CPU name".to_string(),
    };
    let sig = CpuSignature {
        vendor: &facts.cpu.vendor,
        family: facts.cpu.family,
        model: facts.cpu.model,
        flags: &facts.cpu.flags,
        arm_implementer: facts.cpu.arm_implementer,
        arm_part: facts.cpu.arm_part,
    };
    let arch = microarch::identify(&sig);
    let provider = facts.provider;
    let on = provider.map_or("provider unknown".to_string(), |p| {
        format!("{} (DMI)", p.name())
    });
    let (watts, row) = match arch {
        Some(m) => {
            let row = if m.exact {
                format!("{} row", m.ccf.name())
            } else {
                format!("not in CCF: {} row stands in", m.ccf.name())
            };
            let listed = provider.and_then(|p| ccf::use_coefficients(p, m.ccf));
            match (listed, provider) {
                (Some(r), Some(p)) => (r.watts, format!("{}, {row}, {} table", m.name, p.name())),
                _ => match ccf::any_provider(m.ccf) {
                    Some(w) => (
                        w,
                        format!("{}, {row}, mean of the tables listing it", m.name),
                    ),
                    None => (
                        ccf::unknown_architecture(provider),
                        format!(
                            "{}, not in CCF's tables: CCF's figure for an unlisted architecture",
                            m.name
                        ),
                    ),
                },
            }
        }
        None => (
            ccf::unknown_architecture(provider),
            "micro-architecture not identified: CCF's figure for an unlisted architecture".into(),
        ),
    };
    CpuModelChoice {
        curve: CpuCurve::PerVcpu {
            vcpus: cpus,
            min_w: watts.min_w,
            max_w: watts.max_w,
        },
        basis: format!(
            "{why}; {row} ({on}): {:.2}-{:.2} W per vCPU x {cpus} vCPU(s){allowance_note} ({})",
            watts.min_w,
            watts.max_w,
            ccf::SOURCE
        ),
        threads,
        cpus,
    }
}

/// Read what [`choose_cpu_model`] needs: the first record of `cpuinfo` (the whole file only
/// when a TDP is used, for the socket count), DMI, and the cgroup's CPU limit.
pub fn machine_facts(procfs_root: &Path, sysfs_root: &Path, online_threads: u32) -> MachineFacts {
    let mut cpu = cpu_first_record(procfs_root).unwrap_or_default();
    let by_tdp = !cpu.in_vm()
        && cpu
            .model_name
            .as_deref()
            .and_then(wattprint_data::cpu::lookup)
            .is_some();
    if by_tdp {
        let whole = parse_cpuinfo(
            &std::fs::read_to_string(procfs_root.join("cpuinfo")).unwrap_or_default(),
        );
        cpu.sockets = whole.sockets;
        cpu.threads = whole.threads;
    }
    let dmi = |f: &str| {
        std::fs::read_to_string(sysfs_root.join("class/dmi/id").join(f)).unwrap_or_default()
    };
    MachineFacts {
        cpu,
        online_threads,
        provider: provider_from_dmi(
            &dmi("sys_vendor"),
            &dmi("product_name"),
            &dmi("bios_vendor"),
        ),
        cpu_allowance: cpu_allowance(procfs_root, sysfs_root),
    }
}

/// The CPUs this process's cgroup may use: the smallest `cpu.max` (cgroup v2, under
/// `<sysfs>/fs/cgroup`) or CFS quota (v1, under `<sysfs>/fs/cgroup/<controllers>`) along the
/// cgroup's path and its ancestors (a container sees its own limit at the root of its
/// namespace), with the file it came from; `None` when nothing limits it.
pub fn cpu_allowance(procfs_root: &Path, sysfs_root: &Path) -> Option<(f64, String)> {
    let text = std::fs::read_to_string(procfs_root.join("self/cgroup")).ok()?;
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let mut best: Option<(f64, String)> = None;
    let mut consider = |cpus: Option<f64>, file: &Path| {
        if let Some(c) = cpus {
            if best.as_ref().is_none_or(|(b, _)| c < *b) {
                best = Some((c, file.display().to_string()));
            }
        }
    };
    if let Some(path) = parse_cgroup_v2_path(&text) {
        let mount = sysfs_root.join("fs/cgroup");
        for dir in ancestors(path) {
            let f = mount.join(dir).join("cpu.max");
            consider(read(&f).and_then(|t| parse_cpu_max(&t)), &f);
        }
    }
    if let Some((controllers, path)) = parse_cgroup_v1_path(&text, "cpu") {
        let mount = sysfs_root.join("fs/cgroup").join(controllers);
        for dir in ancestors(path) {
            let d = mount.join(dir);
            let q = d.join("cpu.cfs_quota_us");
            let cpus = read(&q).zip(read(&d.join("cpu.cfs_period_us")));
            consider(cpus.and_then(|(q, p)| parse_cfs_quota(&q, &p)), &q);
        }
    }
    best
}

/// `/a/b` -> `a/b`, `a`, `` (relative to a mount point).
fn ancestors(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut p = path.trim_matches('/');
    loop {
        out.push(p);
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None if !p.is_empty() => p = "",
            None => break,
        }
    }
    out
}

/// The model sensor.
pub struct UtilisationModel {
    info: SensorInfo,
    stat: OpenFile,
    cpu: CpuModelChoice,
    memory_w: f64,
    last: Option<(f64, CpuTimes)>,
    last_utilisation: f64,
    cpu_j: f64,
    memory_j: f64,
}

impl UtilisationModel {
    /// Build the model from the procfs tree at `procfs_root` (`cpuinfo`, `meminfo`, `stat`,
    /// `self/cgroup`) and the sysfs tree at `sysfs_root` (`class/dmi/id`, `fs/cgroup`).
    pub fn open(
        procfs_root: &Path,
        sysfs_root: &Path,
        poll_s: f64,
    ) -> Result<UtilisationModel, SensorError> {
        let mem_bytes =
            read_prefix(&procfs_root.join("meminfo"), 512).and_then(|t| parse_mem_total_bytes(&t));
        let stat_path = procfs_root.join("stat");
        let mut stat = OpenFile::open(&stat_path).map_err(|e| SensorError::Unavailable {
            reason: format!("cannot read {}: {e}", stat_path.display()),
            fix: Some("mount procfs, or point WATTPRINT_PROCFS_ROOT at it".into()),
        })?;
        let stat_text = stat
            .read()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        if parse_stat(&stat_text).is_none() {
            return Err(SensorError::Unavailable {
                reason: format!("{} has no parsable `cpu ` line", stat_path.display()),
                fix: Some("point WATTPRINT_PROCFS_ROOT at a Linux procfs".into()),
            });
        }
        let facts = machine_facts(procfs_root, sysfs_root, count_stat_cpus(&stat_text));
        let cpu = choose_cpu_model(&facts);
        let memory_w = mem_bytes.map_or(0.0, |b| powermodel::memory_power(b).0);
        let mut domains = vec![DomainDesc {
            name: "cpu-model".into(),
            kind: DomainKind::CpuModel,
            source: SOURCE,
            method: Method::Model,
            counted_in_total: true,
            device: Some(cpu.basis.clone()),
        }];
        if let Some(b) = mem_bytes {
            domains.push(DomainDesc {
                name: "memory-model".into(),
                kind: DomainKind::MemoryModel,
                source: SOURCE,
                method: Method::Model,
                counted_in_total: true,
                device: Some(format!(
                    "{:.1} GB installed x {} W/GB",
                    b as f64 / 1e9,
                    powermodel::MEMORY_W_PER_GB
                )),
            });
        }
        Ok(UtilisationModel {
            info: SensorInfo {
                source: SOURCE,
                domains,
                cadence: ReadCadence::Poll {
                    preferred_s: poll_s,
                },
                setup: "none".into(),
            },
            stat,
            cpu,
            memory_w,
            last: None,
            last_utilisation: 0.0,
            cpu_j: 0.0,
            memory_j: 0.0,
        })
    }

    /// The CPU curve in use and its basis.
    pub fn cpu_model(&self) -> &CpuModelChoice {
        &self.cpu
    }

    /// The model as a standby sensor: read only when the meter reads anyway (window
    /// boundaries, timeline ticks), never polled on its own, its domains not counted. Its
    /// energy over a window is TDP x load curve of the window's average utilisation.
    pub fn into_standby(mut self) -> Self {
        self.info.cadence = ReadCadence::Boundaries { guard_s: None };
        for d in &mut self.info.domains {
            d.counted_in_total = false;
        }
        self
    }
}

impl Sensor for UtilisationModel {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn read(&mut self, t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        let bytes = self
            .stat
            .read()
            .map_err(|e| SensorError::Read(e.to_string()))?;
        let now = parse_stat(&String::from_utf8_lossy(bytes)).ok_or_else(|| {
            SensorError::Read(format!(
                "{}: no parsable `cpu ` line",
                self.stat.path().display()
            ))
        })?;
        if let Some((t0, prev)) = self.last {
            let dt = (t_s - t0).max(0.0);
            if let Some(u) = powermodel::utilisation(
                now.busy_ticks.saturating_sub(prev.busy_ticks),
                now.total_ticks.saturating_sub(prev.total_ticks),
            ) {
                self.last_utilisation = self.cpu.utilisation(u);
            }
            self.cpu_j += self.cpu.curve.power(self.last_utilisation).0 * dt;
            self.memory_j += self.memory_w * dt;
        }
        // Keep the older tick baseline while the ticks have not moved (reads < 10 ms apart).
        if self
            .last
            .is_none_or(|(_, p)| p.total_ticks != now.total_ticks)
        {
            self.last = Some((t_s, now));
        } else if let Some(l) = self.last.as_mut() {
            l.0 = t_s;
        }
        out[0] = RawReading::EnergyCounter {
            joules: self.cpu_j,
            range_j: None,
        };
        if let Some(m) = out.get_mut(1) {
            *m = RawReading::EnergyCounter {
                joules: self.memory_j,
                range_j: None,
            };
        }
        Ok(())
    }

    fn idle_power_w(&self, domain: usize) -> Option<f64> {
        match domain {
            0 => Some(self.cpu.curve.idle().0),
            1 => Some(self.memory_w),
            _ => None,
        }
    }

    fn power_bounds_w(&self, domain: usize) -> Option<(f64, f64)> {
        let (lo, hi) = powermodel::MEMORY_W_PER_GB_RANGE;
        match domain {
            0 => Some((self.cpu.curve.idle().0, self.cpu.curve.full_load().0)),
            1 => Some((
                self.memory_w * lo / powermodel::MEMORY_W_PER_GB,
                self.memory_w * hi / powermodel::MEMORY_W_PER_GB,
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_tree::write_fake_dmi;

    const EMERALD_RAPIDS_VM: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
        model\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\nphysical id\t: 0\n\
        flags\t\t: fpu avx2 hypervisor avx512f avx512_vnni amx_tile\n\n";

    fn tree(
        cpuinfo: &str,
        stat: &str,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let (proc, sys) = (d.path().join("proc"), d.path().join("sys"));
        std::fs::create_dir_all(&proc).unwrap();
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::write(proc.join("cpuinfo"), cpuinfo).unwrap();
        std::fs::write(proc.join("meminfo"), "MemTotal: 1000000 kB\n").unwrap();
        std::fs::write(proc.join("stat"), stat).unwrap();
        (d, proc, sys)
    }

    fn facts(cpu: &str, threads: u32, provider: Option<Provider>) -> MachineFacts {
        MachineFacts {
            cpu: parse_cpuinfo(cpu),
            online_threads: threads,
            provider,
            cpu_allowance: None,
        }
    }

    #[test]
    fn half_load_on_a_known_bare_metal_cpu_gives_the_curve_value() {
        let (_d, proc, sys) = tree(
            "processor\t: 0\nmodel name\t: AMD EPYC 7763 64-Core Processor\nphysical id\t: 0\n",
            "cpu  0 0 0 0 0 0 0 0\n",
        );
        let mut m = UtilisationModel::open(&proc, &sys, 1.0).unwrap();
        assert_eq!(m.cpu_model().curve, CpuCurve::Tdp { tdp_w: 280.0 });
        let mut out = [RawReading::Missing; 2];
        m.read(0.0, &mut out).unwrap();
        // 2 s later: 100 ticks busy of 200.
        std::fs::write(proc.join("stat"), "cpu  80 0 20 100 0 0 0 0\n").unwrap();
        m.read(2.0, &mut out).unwrap();
        let RawReading::EnergyCounter { joules, .. } = out[0] else {
            panic!("{out:?}")
        };
        assert!((joules - 280.0 * 0.75 * 2.0).abs() < 1e-9, "{joules}");
        let RawReading::EnergyCounter { joules: mem, .. } = out[1] else {
            panic!("{out:?}")
        };
        // 1,024,000,000 bytes x 0.392 W/GB x 2 s.
        assert!((mem - 1.024 * 0.392 * 2.0).abs() < 1e-9, "{mem}");
        assert_eq!(m.idle_power_w(0), Some(280.0 * 0.12));
        assert_eq!(m.power_bounds_w(0), Some((280.0 * 0.12, 280.0 * 1.02)));
        let (lo, hi) = m.power_bounds_w(1).unwrap();
        assert!((lo - 1.024 * 0.375).abs() < 1e-9 && (hi - 1.024 * 0.408).abs() < 1e-9);
    }

    #[test]
    fn a_generic_vm_cpu_gets_its_architectures_ccf_watts_per_vcpu() {
        // This project's own VM: `Intel(R) Xeon(R) Processor`, 2 vCPUs, no DMI.
        let (_d, proc, sys) = tree(EMERALD_RAPIDS_VM, "cpu  0 0 0 0 0 0 0 0\ncpu0 0\ncpu1 0\n");
        let mut m = UtilisationModel::open(&proc, &sys, 1.0).unwrap();
        // Cascade Lake rows: AWS 3.967, Azure 3.967, Google 3.642 W max; min 0.639 in all.
        let max_w = (3.9673047343937564 * 2.0 + 3.6424520285114035) / 3.0;
        let CpuCurve::PerVcpu {
            vcpus,
            min_w,
            max_w: got,
        } = m.cpu_model().curve
        else {
            panic!("{:?}", m.cpu_model())
        };
        assert_eq!(vcpus, 2.0);
        assert!((min_w - 0.6389493581523519).abs() < 1e-12);
        assert!((got - max_w).abs() < 1e-12);
        let basis = &m.cpu_model().basis;
        assert!(basis.contains("Emerald Rapids"), "{basis}");
        assert!(
            basis.contains("not in CCF: Cascade Lake row stands in"),
            "{basis}"
        );
        assert!(basis.contains("provider unknown"), "{basis}");
        let mut out = [RawReading::Missing; 2];
        m.read(0.0, &mut out).unwrap();
        // Fully busy for 1 s: 2 x max W.
        std::fs::write(
            proc.join("stat"),
            "cpu  200 0 0 0 0 0 0 0\ncpu0 0\ncpu1 0\n",
        )
        .unwrap();
        m.read(1.0, &mut out).unwrap();
        let RawReading::EnergyCounter { joules, .. } = out[0] else {
            panic!("{out:?}")
        };
        assert!((joules - 2.0 * max_w).abs() < 1e-9, "{joules}");
    }

    #[test]
    fn dmi_picks_the_providers_table() {
        let (_d, proc, sys) = tree(EMERALD_RAPIDS_VM, "cpu  0 0 0 0\ncpu0 0\ncpu1 0\n");
        write_fake_dmi(&sys, "Google", "Google Compute Engine", "Google").unwrap();
        let m = UtilisationModel::open(&proc, &sys, 1.0).unwrap();
        let CpuCurve::PerVcpu { max_w, .. } = m.cpu_model().curve else {
            panic!()
        };
        assert!((max_w - 3.6424520285114035).abs() < 1e-12);
        assert!(
            m.cpu_model().basis.contains("gcp table"),
            "{}",
            m.cpu_model().basis
        );
    }

    #[test]
    fn dmi_strings_name_the_provider() {
        assert_eq!(
            provider_from_dmi("Amazon EC2", "m5.large", "Amazon EC2"),
            Some(Provider::Aws)
        );
        assert_eq!(provider_from_dmi("Xen", "HVM domU", "Xen\n"), None);
        assert_eq!(
            provider_from_dmi("Google\n", "Google Compute Engine\n", "Google\n"),
            Some(Provider::Gcp)
        );
        assert_eq!(
            provider_from_dmi(
                "Microsoft Corporation\n",
                "Virtual Machine\n",
                "Microsoft Corporation"
            ),
            Some(Provider::Azure)
        );
        assert_eq!(
            provider_from_dmi("Microsoft Corporation", "Surface Book", ""),
            None
        );
        assert_eq!(
            provider_from_dmi("Dell Inc.", "PowerEdge R750", "Dell Inc."),
            None
        );
    }

    #[test]
    fn a_known_name_in_a_vm_uses_the_per_vcpu_model_not_the_package_tdp() {
        let cpu = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\
                   model name\t: AMD EPYC 7763 64-Core Processor\nflags\t\t: avx2 hypervisor\n";
        let c = choose_cpu_model(&facts(cpu, 4, Some(Provider::Azure)));
        assert_eq!(
            c.curve,
            CpuCurve::PerVcpu {
                vcpus: 4.0,
                min_w: 0.44538981119791665,
                max_w: 2.0193277994791665
            }
        );
        assert!(c.basis.contains("hypervisor flag"), "{}", c.basis);
        assert!(
            c.basis.contains("EPYC 3rd Gen row, azure table"),
            "{}",
            c.basis
        );
    }

    #[test]
    fn nothing_identified_uses_ccfs_unlisted_architecture_figure() {
        let c = choose_cpu_model(&facts(
            "model name\t: QEMU Virtual CPU version 2.5+\n",
            2,
            Some(Provider::Aws),
        ));
        assert_eq!(
            c.curve,
            CpuCurve::PerVcpu {
                vcpus: 2.0,
                min_w: 0.74,
                max_w: 3.5
            }
        );
        assert!(c.basis.contains("not in the TDP table"), "{}", c.basis);
    }

    #[test]
    fn a_cgroup_v2_cpu_max_bounds_the_vcpus_and_scales_utilisation() {
        let (_d, proc, sys) = tree(EMERALD_RAPIDS_VM, "cpu  0 0 0 0\n");
        std::fs::create_dir_all(proc.join("self")).unwrap();
        std::fs::write(proc.join("self/cgroup"), "0::/kubepods/pod1/c1\n").unwrap();
        let pod = sys.join("fs/cgroup/kubepods/pod1");
        std::fs::create_dir_all(pod.join("c1")).unwrap();
        std::fs::write(pod.join("cpu.max"), "50000 100000\n").unwrap();
        std::fs::write(pod.join("c1/cpu.max"), "max 100000\n").unwrap();
        let (cpus, from) = cpu_allowance(&proc, &sys).unwrap();
        assert_eq!(cpus, 0.5);
        assert!(from.ends_with("kubepods/pod1/cpu.max"), "{from}");
        let mut f = facts(EMERALD_RAPIDS_VM, 8, None);
        f.cpu_allowance = Some((cpus, from));
        let c = choose_cpu_model(&f);
        assert_eq!(c.cpus, 0.5);
        assert!(matches!(c.curve, CpuCurve::PerVcpu { vcpus, .. } if vcpus == 0.5));
        // 8 threads 25 % busy = 2 busy CPUs, more than the half CPU allowed.
        assert_eq!(c.utilisation(0.25), 1.0);
        assert!(c.basis.contains("cpu limit 0.5 of 8"), "{}", c.basis);
    }

    #[test]
    fn a_cgroup_v1_cfs_quota_is_found_at_the_namespace_root() {
        let (_d, proc, sys) = tree(EMERALD_RAPIDS_VM, "cpu  0 0 0 0\n");
        std::fs::create_dir_all(proc.join("self")).unwrap();
        // Docker without a cgroup namespace: the path is the host's, the mount the container's.
        std::fs::write(
            proc.join("self/cgroup"),
            "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
        )
        .unwrap();
        let cpu = sys.join("fs/cgroup/cpu,cpuacct");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("cpu.cfs_quota_us"), "150000\n").unwrap();
        std::fs::write(cpu.join("cpu.cfs_period_us"), "100000\n").unwrap();
        assert_eq!(cpu_allowance(&proc, &sys).map(|a| a.0), Some(1.5));
        std::fs::write(cpu.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        assert_eq!(cpu_allowance(&proc, &sys), None);
    }

    #[test]
    fn ancestors_run_from_the_cgroup_to_the_mount() {
        assert_eq!(ancestors("/a/b"), vec!["a/b", "a", ""]);
        assert_eq!(ancestors("/"), vec![""]);
    }

    #[test]
    fn garbage_stat_is_a_read_error_not_a_panic() {
        let (_d, proc, sys) = tree(EMERALD_RAPIDS_VM, "cpu  0 0 0 0\n");
        let mut m = UtilisationModel::open(&proc, &sys, 1.0).unwrap();
        std::fs::write(proc.join("stat"), "garbage").unwrap();
        let mut out = [RawReading::Missing; 2];
        assert!(matches!(m.read(1.0, &mut out), Err(SensorError::Read(_))));
    }

    #[test]
    fn a_missing_stat_makes_the_model_unavailable() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            UtilisationModel::open(d.path(), d.path(), 1.0),
            Err(SensorError::Unavailable { .. })
        ));
    }
}
