//! Sensor discovery: which sensors are usable here, and why the others are not.
//!
//! CPU side, in order of preference: RAPL through perf_event (64-bit counters), RAPL through
//! powercap, and, only when neither is readable, the utilisation model (estimates, labelled
//! `model`). Accelerator sensors are probed after the CPU ones.

use crate::config::{GpuScope, SensorConfig};
use std::collections::BTreeSet;
use wattprint_core::gpu_select::{self, GpuIdentity, GpuVendor};
use wattprint_core::SensorSource;
use wattprint_sensors::agent_socket::{self, AgentSocketSensor};
use wattprint_sensors::amd;
use wattprint_sensors::gpu::GpuDevice;
use wattprint_sensors::model::{self, UtilisationModel};
use wattprint_sensors::nvml::{self, GpuProcessSampler};
use wattprint_sensors::perf_rapl::{self, PerfRapl};
use wattprint_sensors::powercap::{self, Powercap};
use wattprint_sensors::{Sensor, SensorError};

/// A sensor that is not used here, with why and what would make it usable (one type for the
/// CPU and GPU probes).
pub use wattprint_sensors::gpu::AbsentSensor;

/// The outcome of [`discover`].
#[derive(Default)]
pub struct Discovery {
    /// Usable sensors, in reading order.
    pub sensors: Vec<Box<dyn Sensor>>,
    /// The next CPU sources in line (powercap after perf, the model after either), read at
    /// the same instants but not counted: a report step swaps one in for a domain whose
    /// readings it rejects (`report::trust`).
    pub standby: Vec<Box<dyn Sensor>>,
    /// Sensors not used, each with its reason and fix.
    pub absent: Vec<AbsentSensor>,
    /// What a reader of the report must know about the choice (fallbacks): copied into the
    /// report's warnings.
    pub notes: Vec<String>,
    /// GPUs found (NVML, AMD), with name, UUID, power limit, MIG and method.
    pub gpus: Vec<GpuDevice>,
    /// NVML per-process utilisation sampler, for GPU attribution.
    pub gpu_sampler: Option<GpuProcessSampler>,
    /// With [`GpuScope::Job`]: how the job's GPUs were chosen, and the node's others.
    pub gpu_choice: Option<GpuChoice>,
}

/// How the job's GPUs were chosen among the node's ([`GpuScope::Job`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuChoice {
    /// What decided, e.g. `CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)`.
    pub basis: String,
    /// The node's GPUs that are not the job's (not read), each with why.
    pub excluded: Vec<(GpuDevice, String)>,
    /// Entries of the user's request naming no GPU, or several: the front end refuses the
    /// request with these (the command must not run on a wrong selection).
    pub unmatched: Vec<String>,
}

impl Discovery {
    /// Record a probe's outcome: the sensor when it opened, otherwise an [`AbsentSensor`].
    /// Returns whether a sensor was added.
    pub fn add<S: Sensor + 'static>(
        &mut self,
        source: &SensorSource,
        probe: Result<S, SensorError>,
    ) -> bool {
        match probe {
            Ok(s) => {
                self.sensors.push(Box::new(s));
                true
            }
            Err(e) => {
                self.absent.push(absent(source, e));
                false
            }
        }
    }

    /// Whether any sensor with this source label was found.
    pub fn has_source(&self, source: &SensorSource) -> bool {
        self.sensors.iter().any(|s| s.info().source == *source)
    }
}

pub(crate) fn absent(source: &SensorSource, e: SensorError) -> AbsentSensor {
    let (reason, fix) = match e {
        SensorError::Unavailable { reason, fix } => (reason, fix),
        SensorError::Read(r) => (r, None),
    };
    AbsentSensor {
        source: source.clone(),
        reason,
        fix,
    }
}

/// Find every usable sensor under `config`'s roots. Never fails: what cannot be used is listed
/// in [`Discovery::absent`].
pub fn discover(config: &SensorConfig) -> Discovery {
    let mut d = Discovery::default();
    if let Some(path) = &config.agent_socket {
        if let Some(why) = config.selection.refusal(&agent_socket::SOURCE) {
            d.absent.push(not_selected(&agent_socket::SOURCE, why));
        } else if d.add(&agent_socket::SOURCE, AgentSocketSensor::connect(path)) {
            d.notes.push(format!(
                "energy read through the wattprint agent at {} (privilege separation): the \
                 domains are the agent's, local sensors are not probed",
                path.display()
            ));
            return d;
        }
        // Said in the report: the run is measured locally (possibly by the model) because
        // the agent could not be used, not because none was configured.
        let why = d
            .absent
            .last()
            .map(|a| a.reason.clone())
            .unwrap_or_default();
        d.notes.push(format!(
            "WATTPRINT_AGENT_SOCKET is set but the agent was not used ({why}): measured with \
             this machine's own sensors instead"
        ));
    }
    probe_cpu(config, &mut d);
    probe_gpus(config, &mut d);
    d
}

/// The GPU probes: NVIDIA through NVML (library from `config.nvml_lib`), AMD through amdsmi
/// (`config.amdsmi_lib`) or, without it, hwmon under the sysfs root. Libraries load once per
/// process.
///
/// A vendor library named by its environment seam is always loaded. Otherwise it is loaded
/// only when that vendor's kernel driver is present ([`nvidia_driver_present`],
/// [`amdgpu_driver_present`]): on a machine without the GPU, the dynamic loader's search for
/// an absent library (about a hundred failed `openat`s) stays off `run`'s start-up path.
pub fn probe_gpus(config: &SensorConfig, d: &mut Discovery) {
    let mut g = nvml::GpuDiscovery::default();
    let sel = &config.selection;
    if let Some(why) = sel.refusal(&SensorSource::Nvml) {
        d.absent.push(not_selected(&SensorSource::Nvml, why));
    } else if config.nvml_lib.is_some() || nvidia_driver_present(config) {
        g.extend(nvml::discover(config.nvml_lib.as_deref()));
    } else {
        g.absent.push(not_loaded(
            config,
            (&SensorSource::Nvml, nvml::NVML_LIB_ENV),
            "NVIDIA",
            "nvidia",
            "/dev/nvidiactl",
        ));
    }
    if let Some(why) = sel.refusal(&amd::SOURCE) {
        d.absent.push(not_selected(&amd::SOURCE, why));
    } else if config.amdsmi_lib.is_some() || amdgpu_driver_present(config) {
        g.extend(amd::discover(
            config.amdsmi_lib.as_deref(),
            &config.sysfs_root,
        ));
    } else {
        g.absent.push(not_loaded(
            config,
            (&amd::SOURCE, "WATTPRINT_AMDSMI_LIB"),
            "AMD",
            "amdgpu",
            "/dev/kfd",
        ));
    }
    if let Some(why) = sel.refusal(&wattprint_sensors::hwmon::SOURCE) {
        d.absent
            .push(not_selected(&wattprint_sensors::hwmon::SOURCE, why));
    } else if !(config.amdsmi_lib.is_some() || amdgpu_driver_present(config))
        || sel.refusal(&amd::SOURCE).is_some()
    {
        // hwmon is a directory listing, not a library search: always cheap enough.
        g.extend(wattprint_sensors::hwmon::discover(&config.sysfs_root, 0));
    }
    if let GpuScope::Job { env, request } = &config.gpu_scope {
        keep_the_jobs_gpus(env, request.as_ref(), &mut g, d);
    }
    // amdsmi falls back to hwmon by itself: the selection has the last word.
    for s in g.sensors {
        match sel.refusal(&s.info().source) {
            Some(why) => d.absent.push(not_selected(&s.info().source, why)),
            None => d.sensors.push(s),
        }
    }
    d.gpus
        .extend(g.devices.into_iter().filter(|g| sel.allows(&g.source)));
    d.absent.extend(g.absent);
    if d.gpu_sampler.is_none() {
        d.gpu_sampler = g.process_sampler;
    }
}

/// What the selection needs of a discovered GPU: its identity, and the GPU table's peak
/// FP32 for CUDA's fastest-first order.
pub fn gpu_identity(g: &GpuDevice) -> GpuIdentity {
    let fp32_tflops = match wattprint_data::gpu::lookup(&g.name) {
        wattprint_data::gpu::GpuMatch::Found { spec, .. } => spec.fp32_tflops,
        wattprint_data::gpu::GpuMatch::Unknown { .. } => None,
    };
    GpuIdentity {
        domain: g.domain.clone(),
        vendor: match g.source {
            SensorSource::Nvml => Some(GpuVendor::Nvidia),
            SensorSource::Amdsmi | SensorSource::Hwmon => Some(GpuVendor::Amd),
            _ => None,
        },
        index: g.index,
        name: g.name.clone(),
        uuid: g.uuid.clone(),
        mig_uuids: g.mig_uuids.clone(),
        pci_bus_id: g.pci_bus_id.clone(),
        fp32_tflops,
    }
}

/// Keep the job's GPUs in `g` (sensors, devices, the process sampler) and record the
/// others in `d.gpu_choice`; the selection's notes become discovery notes (report warnings).
fn keep_the_jobs_gpus(
    env: &std::collections::BTreeMap<String, String>,
    request: Option<&gpu_select::GpuRequest>,
    g: &mut nvml::GpuDiscovery,
    d: &mut Discovery,
) {
    let ids: Vec<GpuIdentity> = g.devices.iter().map(gpu_identity).collect();
    let sel = gpu_select::select_gpus(env, request, &ids);
    let mine: BTreeSet<&str> = sel.selected.iter().map(String::as_str).collect();
    let keep = |dom: &wattprint_core::DomainDesc| mine.contains(dom.name.as_str());
    for s in g.sensors.iter_mut() {
        if !s.retain_domains(&keep) {
            d.notes.push(format!(
                "{}: this sensor cannot leave out GPUs that are not the job's; all its                  domains are measured",
                s.info().source
            ));
        }
    }
    g.sensors.retain(|s| !s.info().domains.is_empty());
    let nvml_mine: BTreeSet<u32> = g
        .devices
        .iter()
        .filter(|dev| dev.source == SensorSource::Nvml && mine.contains(dev.domain.as_str()))
        .map(|dev| dev.index)
        .collect();
    if let Some(s) = g.process_sampler.as_mut() {
        s.retain_gpus(|i| nvml_mine.contains(&i));
    }
    if g.process_sampler.as_ref().is_some_and(|s| s.is_empty()) {
        g.process_sampler = None;
    }
    let (kept, others): (Vec<GpuDevice>, Vec<GpuDevice>) = std::mem::take(&mut g.devices)
        .into_iter()
        .partition(|dev| mine.contains(dev.domain.as_str()));
    g.devices = kept;
    let excluded: Vec<(GpuDevice, String)> = others
        .into_iter()
        .map(|dev| {
            let why = sel
                .excluded
                .iter()
                .find(|x| x.domain == dev.domain)
                .map(|x| x.reason.clone())
                .unwrap_or_default();
            (dev, why)
        })
        .collect();
    if excluded.is_empty() && g.devices.is_empty() && sel.unmatched.is_empty() {
        return; // no GPU here, none asked for: nothing to report
    }
    d.notes.extend(sel.notes);
    d.gpu_choice = Some(GpuChoice {
        basis: sel.basis,
        excluded,
        unmatched: sel.unmatched,
    });
}

/// A vendor library left unloaded because its driver is absent; `(source, env)` names the
/// sensor and the seam that loads its library regardless.
fn not_loaded(
    config: &SensorConfig,
    (source, env): (&SensorSource, &str),
    vendor: &str,
    module: &str,
    node: &str,
) -> nvml::AbsentSensor {
    nvml::AbsentSensor {
        source: source.clone(),
        reason: format!(
            "no {module} driver here ({} and {node} absent): {source} not loaded",
            config.sysfs_root.join("module").join(module).display()
        ),
        fix: Some(format!(
            "none needed without an {vendor} GPU; {env}=PATH loads a library regardless"
        )),
    }
}

/// Whether the NVIDIA kernel driver is loaded: `module/nvidia` under the sysfs root, or its
/// control device node.
pub fn nvidia_driver_present(config: &SensorConfig) -> bool {
    config.sysfs_root.join("module/nvidia").exists()
        || std::path::Path::new("/dev/nvidiactl").exists()
}

/// Whether the amdgpu kernel driver is loaded: `module/amdgpu` under the sysfs root, or the
/// ROCm compute device node.
pub fn amdgpu_driver_present(config: &SensorConfig) -> bool {
    config.sysfs_root.join("module/amdgpu").exists() || std::path::Path::new("/dev/kfd").exists()
}

/// How long `wattprint sensors` and the agent watch each CPU counter before choosing it, s:
/// 2 x `trust::STUCK_MIN_WINDOW_S`, so a counter that always draws power must have advanced.
/// (`run` does not wait: its trust step judges the run's own window.)
pub const DISCOVERY_CHECK_S: f64 = 2.0 * wattprint_core::trust::STUCK_MIN_WINDOW_S;

/// The CPU probes: perf_event RAPL, else powercap RAPL, else the utilisation model; each
/// only when the user's selection allows it. With `config.standby`, the sources after the
/// chosen one are kept as standby sensors. With `config.discovery_check_s`, a counter sensor
/// whose counted domain stands still is passed over ([`stuck_at_discovery`]).
pub fn probe_cpu(config: &SensorConfig, d: &mut Discovery) {
    let sel = &config.selection;
    let mut chosen: Option<SensorSource> = None;
    if let Some(why) = sel.refusal(&perf_rapl::SOURCE) {
        d.absent.push(not_selected(&perf_rapl::SOURCE, why));
    } else {
        let probe = match &config.perf_counters_dir {
            Some(dir) => PerfRapl::open_with(
                &config.sysfs_root,
                &perf_rapl::FileCounters { dir: dir.clone() },
            ),
            None => PerfRapl::open(&config.sysfs_root),
        };
        if choose(config, d, &perf_rapl::SOURCE, probe) {
            chosen = Some(perf_rapl::SOURCE);
        }
    }
    if let Some(why) = sel.refusal(&powercap::SOURCE) {
        d.absent.push(not_selected(&powercap::SOURCE, why));
    } else if let Some(first) = &chosen {
        let same = format!("not used: {first} reads the same RAPL counters, extended to 64 bits");
        match config.standby.then(|| Powercap::open(&config.sysfs_root)) {
            Some(Ok(p)) => {
                d.standby.push(Box::new(p));
                d.absent.push(AbsentSensor {
                    source: powercap::SOURCE,
                    reason: format!("{same}; kept on standby for a domain {first} gets wrong"),
                    fix: None,
                });
            }
            Some(Err(e)) => d.absent.push(absent(&powercap::SOURCE, e)),
            None => d.absent.push(AbsentSensor {
                source: powercap::SOURCE,
                reason: same,
                fix: None,
            }),
        }
    } else {
        let probe = Powercap::open(&config.sysfs_root);
        let notes = probe
            .as_ref()
            .map(|p| p.notes().to_vec())
            .unwrap_or_default();
        if choose(config, d, &powercap::SOURCE, probe) {
            chosen = Some(powercap::SOURCE);
            d.notes.extend(notes);
        }
    }
    if let Some(why) = sel.refusal(&model::SOURCE) {
        if chosen.is_none() {
            d.absent.push(not_selected(&model::SOURCE, why));
        }
        return;
    }
    if chosen.is_some() {
        if config.standby {
            if let Ok(m) = UtilisationModel::open(
                &config.procfs_root,
                &config.sysfs_root,
                config.poll_interval_s,
            ) {
                d.standby.push(Box::new(m.into_standby()));
            }
        }
        return;
    }
    if !config.cpu_model_fallback {
        return;
    }
    let why = d
        .absent
        .iter()
        .filter(|a| a.source == perf_rapl::SOURCE || a.source == powercap::SOURCE)
        .map(|a| format!("{}: {}", a.source, a.reason))
        .collect::<Vec<_>>()
        .join("; ");
    if d.add(
        &model::SOURCE,
        UtilisationModel::open(
            &config.procfs_root,
            &config.sysfs_root,
            config.poll_interval_s,
        ),
    ) {
        let note = if sel.only.is_some() {
            "the utilisation model was chosen (--sensor / WATTPRINT_SENSORS): CPU and memory \
             energy are ESTIMATES (TDP or per-vCPU watts x utilisation, 0.392 W/GB)"
                .to_string()
        } else {
            format!(
                "no usable CPU energy counter ({why}): CPU and memory energy are ESTIMATES from \
                 the utilisation model (TDP or per-vCPU watts x utilisation, 0.392 W/GB); run `wattprint sensors` \
                 for how to enable RAPL"
            )
        };
        d.notes.push(note);
    }
}

fn not_selected(source: &SensorSource, why: String) -> AbsentSensor {
    AbsentSensor {
        source: source.clone(),
        reason: why,
        fix: Some(format!(
            "drop the --sensor/--no-sensor choice (or {}) to use it",
            crate::config::SENSORS_ENV
        )),
    }
}

/// Add a CPU counter sensor unless it failed to open or is stuck at discovery; returns
/// whether it was added.
fn choose<S: Sensor + 'static>(
    config: &SensorConfig,
    d: &mut Discovery,
    source: &SensorSource,
    probe: Result<S, SensorError>,
) -> bool {
    let mut s = match probe {
        Ok(s) => s,
        Err(e) => {
            d.absent.push(absent(source, e));
            return false;
        }
    };
    if let Some(wait_s) = config.discovery_check_s {
        if let Some(why) = stuck_at_discovery(&mut s, wait_s, |w| {
            std::thread::sleep(std::time::Duration::from_secs_f64(w))
        }) {
            d.absent.push(AbsentSensor {
                source: source.clone(),
                reason: why,
                fix: Some(
                    "none on this machine (a counter that reads but never advances: common in \
                     VM guests); the next source in line is used"
                        .into(),
                ),
            });
            return false;
        }
    }
    d.sensors.push(Box::new(s));
    true
}

/// Read `s` twice, `wait_s` apart (the wait is `wait`, injectable for tests), and judge each
/// domain counted in the total ([`wattprint_core::trust::judge`], no CPU evidence): the
/// reason when one is stuck or implausible.
pub fn stuck_at_discovery(
    s: &mut dyn Sensor,
    wait_s: f64,
    wait: impl FnOnce(f64),
) -> Option<String> {
    use wattprint_core::trust::{judge, DomainWindow, Evidence};
    use wattprint_sensors::RawReading;
    let n = s.info().domains.len();
    let (mut a, mut b) = (vec![RawReading::Missing; n], vec![RawReading::Missing; n]);
    let t0 = std::time::Instant::now();
    s.read(0.0, &mut a).ok()?;
    wait(wait_s);
    let dt = t0.elapsed().as_secs_f64().max(wait_s);
    s.read(dt, &mut b).ok()?;
    let mut stuck = Vec::new();
    for (k, dom) in s.info().domains.iter().enumerate() {
        let (
            RawReading::EnergyCounter { joules: j0, .. },
            RawReading::EnergyCounter { joules: j1, .. },
        ) = (a[k], b[k])
        else {
            continue;
        };
        if !dom.counted_in_total || j1 < j0 {
            continue; // a wrap in a few ms is judged by the meter, not here
        }
        let v = judge(
            &DomainWindow {
                kind: dom.kind,
                method: dom.method,
                energy_j: j1 - j0,
                max_power_w: s.max_power_w(k),
            },
            &Evidence {
                window_s: dt,
                machine_busy_cpu_s: None,
            },
        );
        if let Some(r) = v.reason() {
            stuck.push(format!("{} {}: {r}", dom.name, v.as_str()));
        }
    }
    (!stuck.is_empty()).then(|| stuck.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_sensors::fake_tree::{write_fake_procfs, FakeRaplTree};
    use wattprint_sensors::ReadCadence;

    fn config(sys: &std::path::Path, proc: &std::path::Path) -> SensorConfig {
        SensorConfig {
            sysfs_root: sys.into(),
            procfs_root: proc.into(),
            // Hermetic: never the machine's own NVIDIA driver.
            nvml_lib: Some("/nonexistent/libnvidia-ml.so.1".into()),
            amdsmi_lib: Some("/nonexistent/libamd_smi.so".into()),
            ..SensorConfig::default()
        }
    }

    #[test]
    fn powercap_is_chosen_when_readable() {
        let d = tempfile::tempdir().unwrap();
        let t = FakeRaplTree::new(&d.path().join("sys")).unwrap();
        t.add_zone("0", "package-0", 5, 262_143_328_850, Some(125_000_000))
            .unwrap();
        let disc = discover(&config(t.root(), &d.path().join("proc")));
        assert_eq!(disc.sensors.len(), 1);
        assert_eq!(disc.sensors[0].info().source, SensorSource::RaplPowercap);
        assert!(disc
            .absent
            .iter()
            .any(|a| a.source == SensorSource::RaplPerf));
        assert!(disc.notes.is_empty());
    }

    #[test]
    fn no_rapl_falls_back_to_the_model_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let proc = d.path().join("proc");
        write_fake_procfs(&proc, "AMD EPYC", 2, 1_000_000, 10, 100).unwrap();
        let disc = discover(&config(&d.path().join("sys"), &proc));
        assert_eq!(disc.sensors.len(), 1);
        assert_eq!(
            disc.sensors[0].info().source,
            SensorSource::UtilisationModel
        );
        let sources: Vec<_> = disc
            .absent
            .iter()
            .map(|a| &a.source)
            .filter(|s| s.is_rapl())
            .collect();
        assert_eq!(
            sources,
            vec![&SensorSource::RaplPerf, &SensorSource::RaplPowercap]
        );
        assert!(disc.notes[0].contains("ESTIMATES"), "{:?}", disc.notes);
    }

    /// A fake perf PMU offering only `energy-psys`, its counter at 0, and a fake procfs.
    fn dead_psys(dir: &std::path::Path) -> SensorConfig {
        let sys = dir.join("sys");
        let pmu = wattprint_sensors::fake_tree::FakePerfPmu::new(&sys, &[0], &["psys"]).unwrap();
        let proc = dir.join("proc");
        write_fake_procfs(&proc, "AMD EPYC", 2, 1_000_000, 10, 100).unwrap();
        SensorConfig {
            perf_counters_dir: Some(pmu.counters_dir()),
            ..config(&sys, &proc)
        }
    }

    #[test]
    fn perf_is_chosen_with_the_model_on_standby() {
        let d = tempfile::tempdir().unwrap();
        let disc = discover(&dead_psys(d.path()));
        assert_eq!(disc.sensors.len(), 1);
        assert_eq!(disc.sensors[0].info().source, SensorSource::RaplPerf);
        assert_eq!(disc.standby.len(), 1);
        let sb = disc.standby[0].info();
        assert_eq!(sb.source, SensorSource::UtilisationModel);
        assert!(sb.domains.iter().all(|d| !d.counted_in_total));
        assert_eq!(sb.cadence, ReadCadence::Boundaries { guard_s: None });
        // Without standby (the agent), nothing is kept.
        let mut c = dead_psys(d.path());
        c.standby = false;
        assert!(discover(&c).standby.is_empty());
    }

    #[test]
    fn a_counter_stuck_at_discovery_is_passed_over_for_the_next_source() {
        let d = tempfile::tempdir().unwrap();
        let c = dead_psys(d.path());
        let mut perf = PerfRapl::open_with(
            &c.sysfs_root,
            &perf_rapl::FileCounters {
                dir: c.perf_counters_dir.clone().unwrap(),
            },
        )
        .unwrap();
        let mut waited = 0.0;
        let why = stuck_at_discovery(&mut perf, 0.2, |w| waited = w).unwrap();
        assert_eq!(waited, 0.2);
        assert!(
            why.starts_with("psys stuck: did not advance over 0.2"),
            "{why}"
        );
        // A live counter is kept: the wait advances it by 1 J.
        let pmu_dir = c.perf_counters_dir.clone().unwrap();
        let file = pmu_dir.join(perf_rapl::counter_file_name("psys", 0));
        let why = stuck_at_discovery(&mut perf, 0.2, |_| {
            std::fs::write(&file, format!("{:020}\n", 1u64 << 32)).unwrap()
        });
        assert_eq!(why, None);
    }

    #[test]
    fn the_selection_skips_sources_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let mut c = dead_psys(d.path());
        c.selection = crate::config::SensorSelection::parse_list("model", "t").unwrap();
        let disc = discover(&c);
        assert_eq!(disc.sensors.len(), 1);
        assert_eq!(
            disc.sensors[0].info().source,
            SensorSource::UtilisationModel
        );
        assert!(disc.standby.is_empty());
        let perf = disc
            .absent
            .iter()
            .find(|a| a.source == SensorSource::RaplPerf)
            .unwrap();
        assert!(perf.reason.contains("only model"), "{}", perf.reason);
        assert!(disc.notes[0].contains("was chosen"), "{:?}", disc.notes);
        // Only rapl-perf: no model, neither chosen nor on standby.
        c.selection = crate::config::SensorSelection::parse_list("rapl-perf", "t").unwrap();
        let disc = discover(&c);
        assert_eq!(disc.sensors[0].info().source, SensorSource::RaplPerf);
        assert!(disc.standby.is_empty());
    }

    #[test]
    fn gpu_libraries_are_not_searched_for_without_their_driver() {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path().join("sys");
        let mut c = config(&sys, &d.path().join("proc"));
        c.nvml_lib = None;
        c.amdsmi_lib = None;
        if nvidia_driver_present(&c) || amdgpu_driver_present(&c) {
            return; // a machine with a real GPU driver: the gate is open by design
        }
        let mut disc = Discovery::default();
        probe_gpus(&c, &mut disc);
        assert!(disc.gpus.is_empty());
        let reasons: Vec<_> = disc
            .absent
            .iter()
            .map(|a| (&a.source, a.reason.as_str()))
            .collect();
        assert!(
            reasons
                .iter()
                .any(|(s, r)| **s == SensorSource::Nvml && r.contains("nvml not loaded")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|(s, r)| **s == SensorSource::Amdsmi && r.contains("amdsmi not loaded")),
            "{reasons:?}"
        );
    }

    #[test]
    fn a_loaded_driver_module_opens_the_gate() {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path().join("sys");
        let c = config(&sys, &d.path().join("proc"));
        assert!(!c.sysfs_root.join("module").exists());
        std::fs::create_dir_all(sys.join("module/nvidia")).unwrap();
        std::fs::create_dir_all(sys.join("module/amdgpu")).unwrap();
        assert!(nvidia_driver_present(&c));
        assert!(amdgpu_driver_present(&c));
    }
}
