//! RAPL through the powercap sysfs tree (Intel, and AMD's zones under the same names).
//!
//! Layout (`<sysfs>/class/powercap`): the control-type directory `intel-rapl` (no
//! `energy_uj`); packages `intel-rapl:N`; subzones nested under their package
//! (`intel-rapl:N/intel-rapl:N:M`) AND listed again as flat symlinks `intel-rapl:N:M`. Every
//! zone is read once: zones are deduplicated by canonical path. `intel-rapl-mmio` zones repeat
//! a package's energy through another interface and are skipped.
//!
//! Each zone's `energy_uj` is kept open and re-read at offset 0; wraps at
//! `max_energy_range_uj`; the wrap guard period comes from that range and the zone's largest
//! `constraint_*_max_power_uw` (a safe default when absent).

use crate::pread::OpenFile;
use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use wattprint_core::counter::wrap_guard_period_s;
use wattprint_core::domain::assign_counted_in_total;
use wattprint_core::{DomainDesc, DomainKind, Method, SensorSource};

/// Source label of powercap domains.
pub const SOURCE: SensorSource = SensorSource::RaplPowercap;

/// How often a zone whose counter stands still is checked for having vanished, s.
const STILL_CHECK_PERIOD_S: f64 = 1.0;

/// The fix offered when `energy_uj` is root-only (CVE-2020-8694).
pub const PERMISSION_FIX: &str = "grant read access to a trusted group instead of running as root: \
e.g. a udev rule `SUBSYSTEM==\"powercap\", ACTION==\"add\", RUN+=\"/bin/chgrp -R wattprint /sys%p\", \
RUN+=\"/bin/chmod -R g+r /sys%p\"` with your user in group `wattprint` (see docs/privileges.md), \
or run a privileged `wattprint agent` and query it. Do not make energy_uj world-readable: \
RAPL energy readings are a side channel (CVE-2020-8694, PLATYPUS) that leaks secrets \
across users.";

/// One discovered zone.
#[derive(Debug)]
struct Zone {
    /// `None`: unreadable at open (the reason is in `last_error`, every read is missing).
    file: Option<OpenFile>,
    range_j: Option<f64>,
    max_power_w: Option<f64>,
    last_error: Option<String>,
    last_uj: Option<u64>,
    /// When the vanish check last ran while the value stood still; `None` since it moved.
    still_checked_t_s: Option<f64>,
}

/// The powercap RAPL sensor.
pub struct Powercap {
    info: SensorInfo,
    zones: Vec<Zone>,
    notes: Vec<String>,
}

/// Opens a zone's `energy_uj`: the file system, or a test's fake (to simulate EACCES as
/// root, for whom file modes deny nothing).
pub type ZoneOpener<'a> = &'a dyn Fn(&Path) -> std::io::Result<OpenFile>;

/// A zone as found on disk, before opening.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneDesc {
    pub dir: PathBuf,
    pub name: String,
    pub kind: DomainKind,
    pub range_uj: Option<u64>,
    pub max_power_uw: Option<u64>,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The package index of a zone directory name `intel-rapl:N` or `intel-rapl:N:M`.
fn package_index(dir_name: &str) -> Option<&str> {
    dir_name.strip_prefix("intel-rapl:")?.split(':').next()
}

fn kind_and_name(zone_name: &str, dir_name: &str) -> Option<(DomainKind, String)> {
    let pkg = package_index(dir_name).unwrap_or("0");
    if zone_name.starts_with("package") {
        // Multi-die packages (`package-0-die-1`) keep the kernel's name: it says which die.
        if zone_name.contains("-die-") {
            return Some((DomainKind::CpuPackage, zone_name.to_string()));
        }
        return Some((DomainKind::CpuPackage, format!("package-{pkg}")));
    }
    let kind = match zone_name {
        "core" => DomainKind::CpuCore,
        "uncore" => DomainKind::CpuUncore,
        "dram" => DomainKind::Dram,
        "psys" => DomainKind::Psys,
        _ => return None,
    };
    let name = if kind == DomainKind::Psys {
        "psys".to_string()
    } else {
        format!("{zone_name}-{pkg}")
    };
    Some((kind, name))
}

/// Find every zone under `<sysfs_root>/class/powercap`, each once, in a stable order.
///
/// `Ok(empty)` when the tree exists but holds no zone; `Err` with the reason and fix when there
/// is no tree.
pub fn find_zones(sysfs_root: &Path) -> Result<Vec<ZoneDesc>, SensorError> {
    let base = sysfs_root.join("class/powercap");
    let entries = std::fs::read_dir(&base).map_err(|e| SensorError::Unavailable {
        reason: format!("no powercap tree at {}: {e}", base.display()),
        fix: Some(
            "load the RAPL driver (`modprobe intel_rapl_msr`; AMD Zen needs Linux >= 5.8); \
             virtual machines usually have no RAPL: measure on the host, or rely on the model"
                .into(),
        ),
    })?;
    let mut candidates: Vec<PathBuf> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("intel-rapl:") {
            continue; // the control-type dir `intel-rapl`, `intel-rapl-mmio:*`, others
        }
        let p = e.path();
        // Nested subzones, in case the flat symlinks are missing.
        if let Ok(sub) = std::fs::read_dir(&p) {
            for s in sub.flatten() {
                if s.file_name().to_string_lossy().starts_with("intel-rapl:") {
                    candidates.push(s.path());
                }
            }
        }
        candidates.push(p);
    }
    let mut seen = BTreeSet::new();
    let mut zones = Vec::new();
    for p in candidates {
        if !p.join("energy_uj").exists() {
            continue;
        }
        let canon = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        if !seen.insert(canon) {
            continue;
        }
        let dir_name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(zone_name) = read_trim(&p.join("name")) else {
            continue;
        };
        let Some((kind, mut name)) = kind_and_name(&zone_name, &dir_name) else {
            continue;
        };
        if zones.iter().any(|z: &ZoneDesc| z.name == name) {
            name = format!("{name}-{dir_name}");
        }
        let range_uj = read_trim(&p.join("max_energy_range_uj")).and_then(|s| s.parse().ok());
        let max_power_uw = std::fs::read_dir(&p)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|f| {
                let n = f.file_name();
                let n = n.to_string_lossy();
                n.starts_with("constraint_") && n.ends_with("_max_power_uw")
            })
            .filter_map(|f| read_trim(&f.path())?.parse::<u64>().ok())
            .filter(|w| *w > 0)
            .max();
        zones.push(ZoneDesc {
            dir: p,
            name,
            kind,
            range_uj,
            max_power_uw,
        });
    }
    zones.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(zones)
}

impl Powercap {
    /// Discover and open every RAPL zone. `Err(Unavailable)` with reason and fix when there is
    /// no zone or no zone's `energy_uj` can be read (root-only since CVE-2020-8694). A zone
    /// unreadable beside readable ones stays listed and reads as missing (a gap with the
    /// reason): the readable ones stay measured.
    pub fn open(sysfs_root: &Path) -> Result<Powercap, SensorError> {
        Self::open_with(sysfs_root, &|p| OpenFile::open(p))
    }

    /// As [`Powercap::open`], with `energy_uj` files opened by `opener`.
    pub fn open_with(sysfs_root: &Path, opener: ZoneOpener<'_>) -> Result<Powercap, SensorError> {
        let found = find_zones(sysfs_root)?;
        if found.is_empty() {
            return Err(SensorError::Unavailable {
                reason: format!(
                    "no RAPL zone under {}",
                    sysfs_root.join("class/powercap").display()
                ),
                fix: Some("load the RAPL driver (`modprobe intel_rapl_msr`)".into()),
            });
        }
        let mut zones = Vec::new();
        let mut domains = Vec::new();
        let mut first_uj: Vec<Option<u64>> = Vec::new();
        let mut guard_s: Option<f64> = None;
        let mut denied: Option<SensorError> = None;
        for z in found {
            let path = z.dir.join("energy_uj");
            // Some kernels allow open() but fail read() for non-root; other read errors
            // become gaps at run time.
            let opened = opener(&path).and_then(|mut f| match f.read() {
                Ok(b) => {
                    let v = crate::pread::parse_u64(b);
                    Ok((f, v))
                }
                Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(e),
                Err(_) => Ok((f, None)),
            });
            let (file, first, last_error) = match opened {
                Ok((f, v)) => (Some(f), v, None),
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    let err = permission_denied(&path);
                    let why = err.to_string();
                    denied.get_or_insert(err);
                    (None, None, Some(why))
                }
                Err(e) => {
                    return Err(SensorError::Unavailable {
                        reason: format!("cannot open {}: {e}", path.display()),
                        fix: None,
                    })
                }
            };
            let range_j = z.range_uj.map(|r| r as f64 * 1e-6);
            let max_w = z.max_power_uw.map(|w| w as f64 * 1e-6);
            if let Some(g) = wrap_guard_period_s(range_j, max_w) {
                guard_s = Some(guard_s.map_or(g, |x: f64| x.min(g)));
            }
            domains.push(DomainDesc {
                name: z.name,
                kind: z.kind,
                source: SOURCE,
                method: Method::Counter,
                counted_in_total: false,
                device: None,
            });
            first_uj.push(first);
            zones.push(Zone {
                file,
                range_j,
                max_power_w: max_w,
                last_error,
                last_uj: None,
                still_checked_t_s: None,
            });
        }
        if zones.iter().all(|z| z.file.is_none()) {
            if let Some(e) = denied {
                return Err(e);
            }
        }
        assign_counted_in_total(&mut domains);
        let mut notes = Vec::new();
        for (i, j) in mirrored_pairs(&domains, &first_uj, &zones) {
            domains[j].counted_in_total = false;
            domains[j].device = Some(format!("mirrors {}", domains[i].name));
            notes.push(format!(
                "{} and {} read the same counter (identical value at open, same range): \
                 counted once, as {}",
                domains[i].name, domains[j].name, domains[i].name
            ));
        }
        for (d, z) in domains.iter().zip(&zones) {
            if z.file.is_none() {
                notes.push(format!(
                    "{} unreadable ({}): the other zones stay measured; its energy falls back \
                     to the model where one covers it",
                    d.name,
                    z.last_error.as_deref().unwrap_or("?")
                ));
            }
        }
        Ok(Powercap {
            info: SensorInfo {
                source: SOURCE,
                domains,
                cadence: ReadCadence::Boundaries { guard_s },
                setup: "read access to energy_uj".into(),
            },
            zones,
            notes,
        })
    }

    /// What a reader of the report must know about these zones (mirrored dies, unreadable
    /// zones beside readable ones).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// Pairs `(kept, mirror)` of counted zones of one kind that read the same counter: the same
/// non-zero value at open and the same wrap range. Energy counters at µJ resolution (values
/// around 10^11) agree to the µJ by chance with negligible probability, so equal first
/// readings mean one counter read twice (AMD's `package-0-die-0` / `package-0-die-1`
/// mirroring one socket counter); dies with their own counters (Cascade Lake AP) read
/// different values and stay separate. Decided on the readings, never on the names.
fn mirrored_pairs(
    domains: &[DomainDesc],
    first_uj: &[Option<u64>],
    zones: &[Zone],
) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for j in 0..domains.len() {
        let Some(vj) = first_uj[j].filter(|v| *v > 0) else {
            continue;
        };
        if let Some(i) = (0..j).find(|&i| {
            domains[i].counted_in_total
                && domains[j].counted_in_total
                && domains[i].kind == domains[j].kind
                && first_uj[i] == Some(vj)
                && zones[i].range_j == zones[j].range_j
                && !pairs.iter().any(|&(_, m)| m == i)
        }) {
            pairs.push((i, j));
        }
    }
    pairs
}

fn permission_denied(path: &Path) -> SensorError {
    SensorError::Unavailable {
        reason: format!(
            "permission denied reading {} (root-only since CVE-2020-8694)",
            path.display()
        ),
        fix: Some(PERMISSION_FIX.into()),
    }
}

impl Sensor for Powercap {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn read(&mut self, t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        for (z, o) in self.zones.iter_mut().zip(out.iter_mut()) {
            let Some(file) = z.file.as_mut() else {
                *o = RawReading::Missing;
                continue;
            };
            let res = file.read_u64().and_then(|uj| {
                // A zone that vanished (driver unloaded, file removed) would keep reading its
                // last value through our open descriptor: when the value stops moving, check
                // (one fstat) that the file is still there; while it stands still, again at
                // most once a second (fast polling of an idle zone pays no fstat per read).
                let unchanged = z.last_uj == Some(uj);
                z.last_uj = Some(uj);
                let due = unchanged
                    && z.still_checked_t_s
                        .is_none_or(|last| t_s - last >= STILL_CHECK_PERIOD_S);
                if !unchanged {
                    z.still_checked_t_s = None;
                } else if due {
                    z.still_checked_t_s = Some(t_s);
                }
                if due && file.is_unlinked() {
                    Err(format!("{} vanished", file.path().display()))
                } else {
                    Ok(uj)
                }
            });
            match res {
                Ok(uj) => {
                    z.last_error = None;
                    *o = RawReading::EnergyCounter {
                        joules: uj as f64 * 1e-6,
                        range_j: z.range_j,
                    };
                }
                Err(e) => {
                    z.last_error = Some(e);
                    *o = RawReading::Missing;
                }
            }
        }
        Ok(())
    }

    fn missing_reason(&self, domain: usize) -> Option<String> {
        self.zones.get(domain)?.last_error.clone()
    }

    fn max_power_w(&self, domain: usize) -> Option<f64> {
        self.zones.get(domain)?.max_power_w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_names_the_cve_and_a_safe_fix() {
        let e = permission_denied(Path::new("/sys/class/powercap/intel-rapl:0/energy_uj"));
        let SensorError::Unavailable { reason, fix } = e else {
            panic!("not unavailable")
        };
        assert!(reason.contains("CVE-2020-8694") && reason.contains("intel-rapl:0"));
        let fix = fix.unwrap();
        assert!(fix.contains("udev") && fix.contains("g+r"), "{fix}");
        assert!(
            fix.contains("Do not make energy_uj world-readable"),
            "{fix}"
        );
    }

    #[test]
    fn zone_names_carry_their_package() {
        assert_eq!(
            kind_and_name("dram", "intel-rapl:1:0"),
            Some((DomainKind::Dram, "dram-1".into()))
        );
        assert_eq!(
            kind_and_name("package-1", "intel-rapl:1"),
            Some((DomainKind::CpuPackage, "package-1".into()))
        );
        assert_eq!(
            kind_and_name("psys", "intel-rapl:1"),
            Some((DomainKind::Psys, "psys".into()))
        );
        assert_eq!(kind_and_name("mystery", "intel-rapl:0:3"), None);
    }
}
