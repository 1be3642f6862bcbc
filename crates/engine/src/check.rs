//! `wattprint sensors --check`: an active self-test of every sensor this machine offers.
//!
//! Every CPU source is opened on its own (perf RAPL, powercap RAPL and the model, whatever
//! the preference order would choose), with the GPU sensors, and read at three instants: the
//! start, after an idle phase, and after a phase with every CPU loaded by a busy thread. Per
//! domain: idle and loaded power, whether it responds to load, and a verdict from the same
//! rules as every run ([`wattprint_core::trust::judge`], with the phases' busy CPU time as
//! evidence), plus `unreadable` for a domain that gave no value.
//!
//! The phases are a [`Phases`] implementation: [`RealPhases`] sleeps and spins threads;
//! tests drive fake sysfs/procfs trees instead, so no test sleeps and hopes.

use crate::config::SensorConfig;
use crate::discover::{absent, probe_gpus, Discovery};
use serde::Serialize;
use std::time::{Duration, Instant};
use wattprint_core::counter::{CounterDiff, CounterStep};
use wattprint_core::trust::{judge, DomainWindow, Evidence, Verdict};
use wattprint_core::{DomainKind, SensorSource};
use wattprint_sensors::model::{self, UtilisationModel};
use wattprint_sensors::perf_rapl::{self, PerfRapl};
use wattprint_sensors::powercap::{self, Powercap};
use wattprint_sensors::procfs::TICK_S;
use wattprint_sensors::{RawReading, Sensor, SensorError};

/// Default idle phase, s: long enough for 20 x [`wattprint_core::trust::STUCK_MIN_WINDOW_S`].
pub const DEFAULT_IDLE_S: f64 = 2.0;
/// Default load phase, s.
pub const DEFAULT_LOAD_S: f64 = 3.0;
/// A domain responds to load when its loaded power is at least this fraction above its idle
/// power: 5 %, well above RAPL's reported ±1-2 % run-to-run spread at a fixed load (Khan et
/// al., "RAPL in Action", ACM TOMPECS 3(2), 2018) and far below what loading every core does
/// to a package (typically 2-5 x its idle power).
pub const RESPONSE_MIN_RISE: f64 = 0.05;

/// The two phases of the test, and the clock they run on.
pub trait Phases {
    /// Seconds on a monotonic clock.
    fn now_s(&self) -> f64;
    /// Let the machine idle for `s` seconds.
    fn idle(&mut self, s: f64);
    /// Load every CPU for `s` seconds.
    fn load(&mut self, s: f64);
}

/// The real phases: sleep, then one busy thread per available CPU.
pub struct RealPhases {
    epoch: Instant,
}

impl Default for RealPhases {
    fn default() -> Self {
        RealPhases {
            epoch: Instant::now(),
        }
    }
}

impl Phases for RealPhases {
    fn now_s(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn idle(&mut self, s: f64) {
        std::thread::sleep(Duration::from_secs_f64(s));
    }

    fn load(&mut self, s: f64) {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let until = Instant::now() + Duration::from_secs_f64(s);
        std::thread::scope(|sc| {
            for _ in 0..n {
                sc.spawn(move || {
                    let mut x = 0u64;
                    while Instant::now() < until {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                        }
                    }
                });
            }
        });
    }
}

/// The verdict of `sensors --check` on one domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckVerdict {
    Ok,
    Stuck,
    Implausible,
    Unreadable,
}

impl CheckVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Ok => "ok",
            CheckVerdict::Stuck => "stuck",
            CheckVerdict::Implausible => "implausible",
            CheckVerdict::Unreadable => "unreadable",
        }
    }
}

/// One domain's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainCheck {
    pub source: SensorSource,
    pub domain: String,
    pub kind: DomainKind,
    /// Average power over the idle phase (counters) or at its end (power sensors), W.
    pub idle_w: Option<f64>,
    /// The same over the load phase, W.
    pub loaded_w: Option<f64>,
    /// Whether the loaded power is at least [`RESPONSE_MIN_RISE`] above the idle power.
    pub responds_to_load: Option<bool>,
    pub verdict: CheckVerdict,
    /// Why, when the verdict is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The whole test.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub idle_s: f64,
    pub load_s: f64,
    /// The machine's busy CPU time in each phase (`/proc/stat`), CPU-s.
    pub idle_busy_cpu_s: Option<f64>,
    pub load_busy_cpu_s: Option<f64>,
    pub domains: Vec<DomainCheck>,
    /// Sensors that could not be opened at all.
    pub absent: Vec<crate::inventory::AbsentEntry>,
}

/// Open every sensor the selection allows, each CPU source on its own.
fn open_all(config: &SensorConfig) -> Discovery {
    let mut d = Discovery::default();
    let sel = &config.selection;
    let mut add = |source: SensorSource, probe: Result<Box<dyn Sensor>, SensorError>| {
        if sel.allows(&source) {
            match probe {
                Ok(s) => d.sensors.push(s),
                Err(e) => d.absent.push(absent(&source, e)),
            }
        }
    };
    let perf = match &config.perf_counters_dir {
        Some(dir) => PerfRapl::open_with(
            &config.sysfs_root,
            &perf_rapl::FileCounters { dir: dir.clone() },
        ),
        None => PerfRapl::open(&config.sysfs_root),
    };
    add(
        perf_rapl::SOURCE,
        perf.map(|s| Box::new(s) as Box<dyn Sensor>),
    );
    add(
        powercap::SOURCE,
        Powercap::open(&config.sysfs_root).map(|s| Box::new(s) as Box<dyn Sensor>),
    );
    add(
        model::SOURCE,
        UtilisationModel::open(
            &config.procfs_root,
            &config.sysfs_root,
            config.poll_interval_s,
        )
        .map(|s| Box::new(s) as Box<dyn Sensor>),
    );
    probe_gpus(config, &mut d);
    d
}

/// Run the self-test: idle for `idle_s`, load every CPU for `load_s` (through `phases`).
pub fn check(
    config: &SensorConfig,
    phases: &mut dyn Phases,
    idle_s: f64,
    load_s: f64,
) -> CheckReport {
    let mut d = open_all(config);
    let busy = |c: &SensorConfig| crate::procinfo::machine_cpu_times(&c.procfs_root);
    let mut reads: [Vec<Vec<Option<RawReading>>>; 3] = Default::default();
    let mut times = [0.0; 3];
    let mut cpu = [None; 3];
    for (p, slot) in reads.iter_mut().enumerate() {
        match p {
            1 => phases.idle(idle_s),
            2 => phases.load(load_s),
            _ => {}
        }
        times[p] = phases.now_s();
        cpu[p] = busy(config);
        for s in d.sensors.iter_mut() {
            let mut buf = vec![RawReading::Missing; s.info().domains.len()];
            let ok = s.read(times[p], &mut buf).is_ok();
            slot.push(
                buf.into_iter()
                    .map(|r| (ok && r != RawReading::Missing).then_some(r))
                    .collect(),
            );
        }
    }
    let busy_between = |a: usize, b: usize| {
        Some(cpu[b]?.busy_ticks.saturating_sub(cpu[a]?.busy_ticks) as f64 * TICK_S)
    };
    let (idle_busy, load_busy) = (busy_between(0, 1), busy_between(1, 2));
    let mut domains = Vec::new();
    for (si, s) in d.sensors.iter().enumerate() {
        for (k, dom) in s.info().domains.iter().enumerate() {
            let r: Vec<Option<RawReading>> = (0..3).map(|p| reads[p][si][k]).collect();
            domains.push(judge_domain(
                DomainInput {
                    source: &s.info().source,
                    domain: dom,
                    max_power_w: s.max_power_w(k),
                    readings: [r[0], r[1], r[2]],
                    times,
                },
                [idle_busy, load_busy],
            ));
        }
    }
    CheckReport {
        idle_s: times[1] - times[0],
        load_s: times[2] - times[1],
        idle_busy_cpu_s: idle_busy,
        load_busy_cpu_s: load_busy,
        domains,
        absent: std::mem::take(&mut d.absent),
    }
}

/// One domain's three readings and what they need for judging.
pub struct DomainInput<'a> {
    pub source: &'a SensorSource,
    pub domain: &'a wattprint_core::DomainDesc,
    pub max_power_w: Option<f64>,
    /// At the start, after idle, after load (`None`: unreadable then).
    pub readings: [Option<RawReading>; 3],
    /// When each was taken, s.
    pub times: [f64; 3],
}

/// Judge one domain from its three readings and the phases' busy CPU time (pure).
pub fn judge_domain(x: DomainInput<'_>, busy: [Option<f64>; 2]) -> DomainCheck {
    let mut out = DomainCheck {
        source: x.source.clone(),
        domain: x.domain.name.clone(),
        kind: x.domain.kind,
        idle_w: None,
        loaded_w: None,
        responds_to_load: None,
        verdict: CheckVerdict::Unreadable,
        reason: None,
    };
    let Some(r) = x.readings.iter().copied().collect::<Option<Vec<_>>>() else {
        let p = x.readings.iter().position(Option::is_none).unwrap_or(0);
        out.reason = Some(format!(
            "no value at the {} reading",
            ["first", "second", "third"][p]
        ));
        return out;
    };
    // Energy over each phase, J (counters) or the power at its end (power sensors).
    let mut energy = [0.0; 2];
    for p in 0..2 {
        let dt = x.times[p + 1] - x.times[p];
        energy[p] = match (r[p], r[p + 1]) {
            (
                RawReading::EnergyCounter { joules: a, range_j },
                RawReading::EnergyCounter { joules: b, .. },
            ) => {
                let mut c = CounterDiff::new(range_j);
                c.step(a);
                match c.step(b) {
                    CounterStep::Delta { joules, .. } => joules.0,
                    _ => b - a, // a reset: negative, judged implausible below
                }
            }
            (_, RawReading::Power { watts }) => watts * dt,
            _ => f64::NAN,
        };
    }
    let dts = [x.times[1] - x.times[0], x.times[2] - x.times[1]];
    let w = |p: usize| (dts[p] > 0.0).then(|| energy[p] / dts[p]);
    out.idle_w = w(0);
    out.loaded_w = w(1);
    out.responds_to_load = match (out.idle_w, out.loaded_w) {
        (Some(i), Some(l)) if i.is_finite() && l.is_finite() => {
            Some(l > i * (1.0 + RESPONSE_MIN_RISE) && l > 0.0)
        }
        _ => None,
    };
    let verdicts: Vec<Verdict> = (0..2)
        .map(|p| {
            judge(
                &DomainWindow {
                    kind: x.domain.kind,
                    method: x.domain.method,
                    energy_j: energy[p],
                    max_power_w: x.max_power_w,
                },
                &Evidence {
                    window_s: dts[p],
                    machine_busy_cpu_s: busy[p],
                },
            )
        })
        .collect();
    let worst = verdicts
        .iter()
        .find(|v| matches!(v, Verdict::Implausible(_)))
        .or_else(|| verdicts.iter().find(|v| matches!(v, Verdict::Stuck(_))));
    match worst {
        Some(Verdict::Implausible(why)) => {
            out.verdict = CheckVerdict::Implausible;
            out.reason = Some(why.clone());
        }
        Some(Verdict::Stuck(why)) => {
            out.verdict = CheckVerdict::Stuck;
            out.reason = Some(why.clone());
        }
        _ => out.verdict = CheckVerdict::Ok,
    }
    out
}

/// Human text for `wattprint sensors --check`.
pub fn render(c: &CheckReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let busy = |b: Option<f64>| b.map_or_else(|| "?".to_string(), |b| format!("{b:.2}"));
    let _ = writeln!(
        s,
        "Self-test: {:.1} s idle ({} CPU-s busy), then {:.1} s with every CPU loaded ({} CPU-s busy)",
        c.idle_s,
        busy(c.idle_busy_cpu_s),
        c.load_s,
        busy(c.load_busy_cpu_s)
    );
    let _ = writeln!(
        s,
        "  {:<18} {:<14} {:>10} {:>10}  {:<8} verdict",
        "source", "domain", "idle", "loaded", "responds"
    );
    let watts = |w: Option<f64>| w.map_or_else(|| "-".to_string(), |w| format!("{w:.2} W"));
    for d in &c.domains {
        let _ = writeln!(
            s,
            "  {:<18} {:<14} {:>10} {:>10}  {:<8} {}{}",
            d.source,
            d.domain,
            watts(d.idle_w),
            watts(d.loaded_w),
            match d.responds_to_load {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            d.verdict.as_str().to_uppercase(),
            d.reason
                .as_deref()
                .map_or_else(String::new, |r| format!(": {r}"))
        );
    }
    if c.domains.is_empty() {
        let _ = writeln!(s, "  no sensor could be opened");
    }
    for a in &c.absent {
        let _ = writeln!(s, "  {} not opened: {}", a.source, a.reason);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_sensors::fake_tree::{
        set_fake_stat, write_fake_procfs, FakePerfPmu, FakeRaplTree,
    };

    /// Phases that play the hardware on fake trees: each second of idle adds `idle_w` to the
    /// package, each second of load `load_w` and 2 CPU-s of busy ticks; dram never moves.
    struct FakePhases {
        t_s: f64,
        tree: FakeRaplTree,
        proc: std::path::PathBuf,
        pkg_uj: u64,
        busy_ticks: u64,
        idle_w: f64,
        load_w: f64,
        /// Remove dram's `energy_uj` during the idle phase.
        vanish_dram: bool,
    }

    impl FakePhases {
        fn advance(&mut self, s: f64, w: f64, busy_cpus: f64) {
            self.t_s += s;
            self.pkg_uj += (w * s * 1e6) as u64;
            self.busy_ticks += (busy_cpus * s / TICK_S) as u64;
            self.tree.set_energy_uj("0", self.pkg_uj).unwrap();
            set_fake_stat(&self.proc, self.busy_ticks, 1000).unwrap();
        }
    }

    impl Phases for FakePhases {
        fn now_s(&self) -> f64 {
            self.t_s
        }
        fn idle(&mut self, s: f64) {
            if self.vanish_dram {
                self.tree.remove_energy("0:0").unwrap();
            }
            self.advance(s, self.idle_w, 0.0);
        }
        fn load(&mut self, s: f64) {
            self.advance(s, self.load_w, 2.0);
        }
    }

    fn machine(dir: &std::path::Path, load_w: f64) -> (SensorConfig, FakePhases) {
        let sys = dir.join("sys");
        let tree = FakeRaplTree::new(&sys).unwrap();
        tree.add_zone(
            "0",
            "package-0",
            1_000_000,
            262_143_328_850,
            Some(125_000_000),
        )
        .unwrap();
        tree.add_zone("0:0", "dram", 5, 65_712_999_613, None)
            .unwrap();
        let pmu = FakePerfPmu::new(&sys, &[0], &["psys"]).unwrap();
        let proc = dir.join("proc");
        write_fake_procfs(
            &proc,
            "AMD EPYC 7763 64-Core Processor",
            2,
            1_000_000,
            100,
            1000,
        )
        .unwrap();
        let config = SensorConfig {
            sysfs_root: sys,
            procfs_root: proc.clone(),
            perf_counters_dir: Some(pmu.counters_dir()),
            nvml_lib: Some("/nonexistent/libnvidia-ml.so.1".into()),
            amdsmi_lib: Some("/nonexistent/libamd_smi.so".into()),
            ..SensorConfig::default()
        };
        let phases = FakePhases {
            t_s: 100.0,
            tree,
            proc,
            pkg_uj: 1_000_000,
            busy_ticks: 100,
            idle_w: 10.0,
            load_w,
            vanish_dram: false,
        };
        (config, phases)
    }

    fn find<'a>(c: &'a CheckReport, source: SensorSource, domain: &str) -> &'a DomainCheck {
        c.domains
            .iter()
            .find(|d| d.source == source && d.domain == domain)
            .unwrap_or_else(|| panic!("{source} {domain} in {:?}", c.domains))
    }

    #[test]
    fn every_source_is_tested_and_each_domain_gets_its_verdict() {
        let d = tempfile::tempdir().unwrap();
        let (config, mut phases) = machine(d.path(), 60.0);
        let c = check(&config, &mut phases, 2.0, 3.0);
        assert_eq!((c.idle_s, c.load_s), (2.0, 3.0));
        assert_eq!(c.idle_busy_cpu_s, Some(0.0));
        assert_eq!(c.load_busy_cpu_s, Some(6.0));
        let pkg = find(&c, SensorSource::RaplPowercap, "package-0");
        assert_eq!(pkg.verdict, CheckVerdict::Ok);
        assert!((pkg.idle_w.unwrap() - 10.0).abs() < 1e-6);
        assert!((pkg.loaded_w.unwrap() - 60.0).abs() < 1e-6);
        assert_eq!(pkg.responds_to_load, Some(true));
        // dram never moves: stuck on physics alone.
        let dram = find(&c, SensorSource::RaplPowercap, "dram-0");
        assert_eq!(dram.verdict, CheckVerdict::Stuck);
        assert_eq!(dram.responds_to_load, Some(false));
        // The dead perf psys of this project's VMs.
        let psys = find(&c, SensorSource::RaplPerf, "psys");
        assert_eq!(psys.verdict, CheckVerdict::Stuck);
        assert_eq!((psys.idle_w, psys.loaded_w), (Some(0.0), Some(0.0)));
        assert!(psys
            .reason
            .as_deref()
            .unwrap()
            .contains("always draws power"));
        // The model follows /proc/stat: idle curve, then full load.
        let m = find(&c, SensorSource::UtilisationModel, "cpu-model");
        assert_eq!(m.verdict, CheckVerdict::Ok);
        assert_eq!(m.responds_to_load, Some(true));
        let text = render(&c);
        assert!(text.contains("psys") && text.contains("STUCK"), "{text}");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["domains"][0]["verdict"], "stuck");
    }

    #[test]
    fn a_jump_beyond_the_zone_maximum_is_implausible() {
        let d = tempfile::tempdir().unwrap();
        // 5 kW under load from a 125 W zone.
        let (config, mut phases) = machine(d.path(), 5000.0);
        let c = check(&config, &mut phases, 1.0, 1.0);
        let pkg = find(&c, SensorSource::RaplPowercap, "package-0");
        assert_eq!(pkg.verdict, CheckVerdict::Implausible);
        assert!(pkg.reason.as_deref().unwrap().contains("125.0 W"));
    }

    #[test]
    fn a_vanished_zone_is_unreadable_and_the_selection_applies() {
        let d = tempfile::tempdir().unwrap();
        let (mut config, mut phases) = machine(d.path(), 60.0);
        phases.vanish_dram = true;
        config.selection = crate::config::SensorSelection::parse_list("-rapl-perf", "t").unwrap();
        let c = check(&config, &mut phases, 1.0, 1.0);
        assert!(c.domains.iter().all(|d| d.source != SensorSource::RaplPerf));
        let dram = find(&c, SensorSource::RaplPowercap, "dram-0");
        assert_eq!(dram.verdict, CheckVerdict::Unreadable);
        assert_eq!(
            dram.reason.as_deref(),
            Some("no value at the second reading")
        );
    }

    #[test]
    fn a_core_domain_idle_at_zero_is_ok_but_stuck_under_load() {
        let core = wattprint_core::DomainDesc {
            name: "core-0".into(),
            kind: DomainKind::CpuCore,
            source: "t".into(),
            method: wattprint_core::Method::Counter,
            counted_in_total: false,
            device: None,
        };
        let c = |j: [f64; 3]| {
            judge_domain(
                DomainInput {
                    source: &"t".into(),
                    domain: &core,
                    max_power_w: None,
                    readings: j.map(|joules| {
                        Some(RawReading::EnergyCounter {
                            joules,
                            range_j: None,
                        })
                    }),
                    times: [0.0, 1.0, 2.0],
                },
                [Some(0.0), Some(2.0)],
            )
        };
        assert_eq!(c([5.0, 5.0, 25.0]).verdict, CheckVerdict::Ok);
        assert_eq!(c([5.0, 5.0, 5.0]).verdict, CheckVerdict::Stuck);
        // A counter that went backwards without a range: a reset, implausible.
        assert_eq!(c([5.0, 6.0, 1.0]).verdict, CheckVerdict::Implausible);
    }
}
