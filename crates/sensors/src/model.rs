//! The utilisation power model: modelled CPU and memory energy for machines with no readable
//! energy sensor. Every domain it reports is labelled `model`.
//!
//! CPU power = TDP x load curve(utilisation) (`wattprint_core::powermodel`), with utilisation
//! from `/proc/stat` over each read interval; TDP from the embedded table matched to
//! `/proc/cpuinfo`'s model name, times the sockets seen, or 4.34 W per hardware thread when the
//! model is unknown. Memory power = 0.392 W per GB of *installed* memory (`MemTotal`), constant.
//! The sensor accumulates modelled energy itself and hands the meter a cumulative counter, so
//! windows are exact at their boundaries whatever the poll interval.

use crate::pread::OpenFile;
use crate::procfs::{
    count_stat_cpus, cpu_model_name, parse_cpuinfo, parse_mem_total_bytes, parse_stat, read_prefix,
    CpuInfo, CpuTimes,
};
use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::path::Path;
use wattprint_core::powermodel::{self, load_fraction};
use wattprint_core::{DomainDesc, DomainKind, Method};

/// Source label of the model's domains.
pub const SOURCE: &str = "utilisation-model";

/// How the model's TDP was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct TdpChoice {
    /// Total TDP of the CPUs the model stands for, W.
    pub tdp_w: f64,
    /// Human description, e.g. `AMD EPYC 7763: 280 W x 2 sockets (CodeCarbon 3.3.2 ...)`.
    pub basis: String,
    /// True when the CPU model was not found and the per-thread default was used.
    pub default_used: bool,
}

/// Choose the TDP for the CPUs described by `/proc/cpuinfo` (pure).
pub fn choose_tdp(info: &CpuInfo) -> TdpChoice {
    let name = info.model_name.as_deref().unwrap_or("unknown CPU");
    match info
        .model_name
        .as_deref()
        .and_then(wattprint_data::cpu::lookup)
    {
        Some(hit) => TdpChoice {
            tdp_w: hit.tdp_w * f64::from(info.sockets),
            basis: format!(
                "{}: {} W x {} socket(s) ({})",
                hit.name,
                hit.tdp_w,
                info.sockets,
                wattprint_data::cpu::SOURCE
            ),
            default_used: false,
        },
        None => TdpChoice {
            tdp_w: powermodel::default_tdp_w(info.threads),
            basis: format!(
                "{name} not in the TDP table: {} thread(s) x {} W default",
                info.threads,
                powermodel::DEFAULT_TDP_PER_THREAD_W
            ),
            default_used: true,
        },
    }
}

/// Choose the TDP cheaply: the model name from the first record of `cpuinfo`; the whole file
/// (for the socket count) only when the table knows the model.
fn choose_tdp_from(procfs_root: &Path, threads: u32) -> TdpChoice {
    let path = procfs_root.join("cpuinfo");
    let model_name = cpu_model_name(procfs_root);
    let known = model_name
        .as_deref()
        .and_then(wattprint_data::cpu::lookup)
        .is_some();
    let info = if known {
        parse_cpuinfo(&std::fs::read_to_string(&path).unwrap_or_default())
    } else {
        CpuInfo {
            model_name,
            threads,
            sockets: 1,
        }
    };
    choose_tdp(&info)
}

/// The model sensor.
pub struct UtilisationModel {
    info: SensorInfo,
    stat: OpenFile,
    tdp: TdpChoice,
    memory_w: f64,
    last: Option<(f64, CpuTimes)>,
    last_utilisation: f64,
    cpu_j: f64,
    memory_j: f64,
}

impl UtilisationModel {
    /// Build the model from the procfs tree at `procfs_root` (`cpuinfo`, `meminfo`, `stat`).
    pub fn open(procfs_root: &Path, poll_s: f64) -> Result<UtilisationModel, SensorError> {
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
        let tdp = choose_tdp_from(procfs_root, count_stat_cpus(&stat_text));
        let memory_w = mem_bytes.map_or(0.0, |b| powermodel::memory_power(b).0);
        let mut domains = vec![DomainDesc {
            name: "cpu-model".into(),
            kind: DomainKind::CpuModel,
            source: SOURCE.into(),
            method: Method::Model,
            counted_in_total: true,
            device: Some(tdp.basis.clone()),
        }];
        if let Some(b) = mem_bytes {
            domains.push(DomainDesc {
                name: "memory-model".into(),
                kind: DomainKind::MemoryModel,
                source: SOURCE.into(),
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
                source: SOURCE.into(),
                domains,
                cadence: ReadCadence::Poll {
                    preferred_s: poll_s,
                },
                setup: "none".into(),
            },
            stat,
            tdp,
            memory_w,
            last: None,
            last_utilisation: 0.0,
            cpu_j: 0.0,
            memory_j: 0.0,
        })
    }

    pub fn tdp(&self) -> &TdpChoice {
        &self.tdp
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
                self.last_utilisation = u;
            }
            self.cpu_j += powermodel::cpu_power(self.tdp.tdp_w, self.last_utilisation).0 * dt;
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
            0 => Some(self.tdp.tdp_w * load_fraction(0.0)),
            1 => Some(self.memory_w),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(stat: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("cpuinfo"),
            "processor\t: 0\nmodel name\t: AMD EPYC 7763 64-Core Processor\nphysical id\t: 0\n",
        )
        .unwrap();
        std::fs::write(d.path().join("meminfo"), "MemTotal: 1000000 kB\n").unwrap();
        std::fs::write(d.path().join("stat"), stat).unwrap();
        d
    }

    #[test]
    fn half_load_on_a_known_cpu_gives_the_curve_value() {
        let d = tree("cpu  0 0 0 0 0 0 0 0\n");
        let mut m = UtilisationModel::open(d.path(), 1.0).unwrap();
        assert_eq!(m.tdp().tdp_w, 280.0);
        let mut out = [RawReading::Missing; 2];
        m.read(0.0, &mut out).unwrap();
        // 2 s later: 100 ticks busy of 200.
        std::fs::write(d.path().join("stat"), "cpu  80 0 20 100 0 0 0 0\n").unwrap();
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
    }

    #[test]
    fn unknown_cpu_uses_the_per_thread_default() {
        let c = choose_tdp(&CpuInfo {
            model_name: Some("AMD EPYC".into()),
            threads: 2,
            sockets: 1,
        });
        assert!(c.default_used);
        assert!((c.tdp_w - 8.68).abs() < 1e-12);
        assert!(c.basis.contains("not in the TDP table"));
    }

    #[test]
    fn garbage_stat_is_a_read_error_not_a_panic() {
        let d = tree("cpu  0 0 0 0\n");
        let mut m = UtilisationModel::open(d.path(), 1.0).unwrap();
        std::fs::write(d.path().join("stat"), "garbage").unwrap();
        let mut out = [RawReading::Missing; 2];
        assert!(matches!(m.read(1.0, &mut out), Err(SensorError::Read(_))));
    }

    #[test]
    fn a_missing_stat_makes_the_model_unavailable() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            UtilisationModel::open(d.path(), 1.0),
            Err(SensorError::Unavailable { .. })
        ));
    }
}
