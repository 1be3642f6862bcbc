//! AMD GPUs through the kernel's hwmon interface (`amdgpu` driver), the fallback when amdsmi
//! is not installed.
//!
//! Under `<sysfs root>/class/hwmon/hwmonN/` with `name` = `amdgpu`: `energy1_input` (µJ, a
//! counter, read at boundaries) where the driver has it, else `power1_average` (µW, averaged
//! by the firmware) or `power1_input` (µW, instantaneous), polled and integrated. The device
//! name comes from `device/product_name` when present.

use crate::gpu::{gpu_domain, AbsentSensor, GpuDevice, GpuDiscovery, PowerSource};
use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::path::{Path, PathBuf};
use wattprint_core::{Method, SensorSource};

pub const SOURCE: SensorSource = SensorSource::Hwmon;
/// Poll period of power-only hwmon GPUs, s.
pub const POWER_POLL_S: f64 = 0.1;

enum Reading {
    EnergyUj(PathBuf),
    PowerUw(PathBuf),
}

struct Chip {
    device: GpuDevice,
    reading: Reading,
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(p: &Path) -> Result<u64, String> {
    let s = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("{}: `{}` is not a number", p.display(), s.trim()))
}

/// Find the amdgpu hwmon chips under `sysfs_root` and build their sensors (one counter
/// sensor, one power sensor), numbering domains `amdgpu-N` from `first_index`.
pub fn discover(sysfs_root: &Path, first_index: u32) -> GpuDiscovery {
    let dir = sysfs_root.join("class/hwmon");
    let mut out = GpuDiscovery::default();
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            out.absent.push(AbsentSensor {
                source: SOURCE,
                reason: format!("no hwmon tree ({}: {e})", dir.display()),
                fix: None,
            });
            return out;
        }
    };
    // hwmon0, hwmon1, ..., hwmon10 in numeric order.
    entries.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n: u64 = name.trim_start_matches("hwmon").parse().unwrap_or(u64::MAX);
        (n, name)
    });
    let mut chips = Vec::new();
    for p in entries {
        if read_trimmed(&p.join("name")).as_deref() != Some("amdgpu") {
            continue;
        }
        let index = first_index + chips.len() as u32;
        let hw = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = read_trimmed(&p.join("device/product_name"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("AMD GPU ({hw})"));
        let power_limit_w = read_u64(&p.join("power1_cap"))
            .ok()
            .map(|uw| uw as f64 / 1e6);
        let (reading, method, power_source) = if read_u64(&p.join("energy1_input")).is_ok() {
            (
                Reading::EnergyUj(p.join("energy1_input")),
                Method::Counter,
                None,
            )
        } else if read_u64(&p.join("power1_average")).is_ok() {
            (
                Reading::PowerUw(p.join("power1_average")),
                Method::Power,
                Some(PowerSource::Average),
            )
        } else if read_u64(&p.join("power1_input")).is_ok() {
            (
                Reading::PowerUw(p.join("power1_input")),
                Method::Power,
                Some(PowerSource::Instant),
            )
        } else {
            out.absent.push(AbsentSensor {
                source: SOURCE,
                reason: format!(
                    "{}: amdgpu chip without a readable energy1_input, power1_average or \
                     power1_input",
                    p.display()
                ),
                fix: Some("install amdsmi (ROCm), or use a newer amdgpu driver".into()),
            });
            continue;
        };
        chips.push(Chip {
            device: GpuDevice {
                domain: format!("amdgpu-{index}"),
                index,
                name,
                uuid: None,
                power_limit_w,
                mig_enabled: false,
                method,
                power_source,
                source: SOURCE,
                pci_bus_id: None,
                mig_uuids: Vec::new(),
            },
            reading,
        });
    }
    if chips.is_empty() {
        out.absent.push(AbsentSensor {
            source: SOURCE,
            reason: "no amdgpu hwmon chip".into(),
            fix: None,
        });
        return out;
    }
    out.devices = chips.iter().map(|c| c.device.clone()).collect();
    let (counters, powers): (Vec<Chip>, Vec<Chip>) = chips
        .into_iter()
        .partition(|c| matches!(c.reading, Reading::EnergyUj(_)));
    if !counters.is_empty() {
        out.sensors.push(Box::new(HwmonGpuSensor::new(
            counters,
            ReadCadence::Boundaries {
                // The µJ file is 64-bit in the driver; a slow guard bounds what a vanished
                // device takes with it.
                guard_s: Some(crate::nvml::COUNTER_GUARD_S),
            },
        )));
    }
    if !powers.is_empty() {
        out.sensors.push(Box::new(HwmonGpuSensor::new(
            powers,
            ReadCadence::Poll {
                preferred_s: POWER_POLL_S,
            },
        )));
    }
    out
}

/// amdgpu hwmon chips of one kind (all counters, or all power).
pub struct HwmonGpuSensor {
    info: SensorInfo,
    readings: Vec<Reading>,
    last_error: Vec<Option<String>>,
}

impl HwmonGpuSensor {
    fn new(chips: Vec<Chip>, cadence: ReadCadence) -> Self {
        let info = SensorInfo {
            source: SOURCE,
            domains: chips.iter().map(|c| gpu_domain(&c.device)).collect(),
            cadence,
            setup: "none".into(),
        };
        HwmonGpuSensor {
            info,
            last_error: vec![None; chips.len()],
            readings: chips.into_iter().map(|c| c.reading).collect(),
        }
    }
}

impl Sensor for HwmonGpuSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn read(&mut self, _t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        for (k, r) in self.readings.iter().enumerate() {
            let (reading, err) = match r {
                Reading::EnergyUj(p) => match read_u64(p) {
                    Ok(uj) => (
                        RawReading::EnergyCounter {
                            joules: uj as f64 * 1e-6,
                            range_j: None,
                        },
                        None,
                    ),
                    Err(e) => (RawReading::Missing, Some(e)),
                },
                Reading::PowerUw(p) => match read_u64(p) {
                    Ok(uw) => (
                        RawReading::Power {
                            watts: uw as f64 * 1e-6,
                        },
                        None,
                    ),
                    Err(e) => (RawReading::Missing, Some(e)),
                },
            };
            out[k] = reading;
            self.last_error[k] = err;
        }
        Ok(())
    }

    fn missing_reason(&self, domain: usize) -> Option<String> {
        self.last_error.get(domain).cloned().flatten()
    }

    fn retain_domains(&mut self, keep: &dyn Fn(&wattprint_core::DomainDesc) -> bool) -> bool {
        crate::gpu::retain_parallel(
            &mut self.info,
            &mut self.readings,
            &mut self.last_error,
            keep,
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chip(root: &Path, n: u32, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = root.join(format!("class/hwmon/hwmon{n}"));
        std::fs::create_dir_all(d.join("device")).unwrap();
        std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        for (f, v) in files {
            std::fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
        d
    }

    #[test]
    fn energy_counter_preferred_power_average_next_other_chips_ignored() {
        let t = tempfile::tempdir().unwrap();
        chip(t.path(), 0, "k10temp", &[("temp1_input", "40000")]);
        let a = chip(
            t.path(),
            1,
            "amdgpu",
            &[
                ("energy1_input", "1000000"),
                ("power1_average", "300000000"),
                ("device/product_name", "AMD Instinct MI300X"),
                ("power1_cap", "750000000"),
            ],
        );
        let b = chip(t.path(), 2, "amdgpu", &[("power1_average", "123500000")]);
        let mut d = discover(t.path(), 0);
        assert_eq!(d.devices.len(), 2);
        assert_eq!(d.devices[0].name, "AMD Instinct MI300X");
        assert_eq!(d.devices[0].method, Method::Counter);
        assert_eq!(d.devices[0].power_limit_w, Some(750.0));
        assert_eq!(d.devices[1].name, "AMD GPU (hwmon2)");
        assert_eq!(d.devices[1].power_source, Some(PowerSource::Average));
        assert_eq!(d.sensors.len(), 2);
        let mut out = [RawReading::Missing];
        d.sensors[0].read(0.0, &mut out).unwrap();
        assert_eq!(
            out[0],
            RawReading::EnergyCounter {
                joules: 1.0,
                range_j: None
            }
        );
        d.sensors[1].read(0.0, &mut out).unwrap();
        assert_eq!(out[0], RawReading::Power { watts: 123.5 });
        // A file that vanishes mid-run reads Missing (the meter records a gap).
        std::fs::remove_file(a.join("energy1_input")).unwrap();
        d.sensors[0].read(1.0, &mut out).unwrap();
        assert_eq!(out[0], RawReading::Missing);
        assert!(d.sensors[0]
            .missing_reason(0)
            .unwrap()
            .contains("energy1_input"));
        std::fs::write(b.join("power1_average"), "garbage").unwrap();
        d.sensors[1].read(1.0, &mut out).unwrap();
        assert_eq!(out[0], RawReading::Missing);
    }

    #[test]
    fn no_tree_and_no_amdgpu_are_absent() {
        let t = tempfile::tempdir().unwrap();
        let d = discover(t.path(), 0);
        assert!(d.sensors.is_empty());
        assert!(d.absent[0].reason.contains("no hwmon tree"));
        chip(t.path(), 0, "nvme", &[]);
        let d = discover(t.path(), 0);
        assert_eq!(d.absent[0].reason, "no amdgpu hwmon chip");
        chip(t.path(), 1, "amdgpu", &[]);
        let d = discover(t.path(), 0);
        assert!(d.absent[0].reason.contains("without a readable"));
    }

    #[test]
    fn instantaneous_power_is_the_last_resort_and_indices_continue() {
        let t = tempfile::tempdir().unwrap();
        chip(t.path(), 10, "amdgpu", &[("power1_input", "50000000")]);
        chip(t.path(), 9, "amdgpu", &[("energy1_input", "5")]);
        let d = discover(t.path(), 3);
        // hwmon9 before hwmon10 (numeric order), numbered from 3.
        assert_eq!(d.devices[0].domain, "amdgpu-3");
        assert_eq!(d.devices[0].method, Method::Counter);
        assert_eq!(d.devices[1].domain, "amdgpu-4");
        assert_eq!(d.devices[1].power_source, Some(PowerSource::Instant));
    }
}
