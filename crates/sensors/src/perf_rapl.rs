//! RAPL through perf_event's `power` PMU: the kernel extends the counters to 64 bits, so they
//! never wrap in practice and need no guard reads. Preferred over powercap where present and
//! permitted (`perf_event_paranoid` <= 0, or CAP_PERFMON / CAP_SYS_ADMIN).
//!
//! Discovery reads `<sysfs>/bus/event_source/devices/power/`: `type` (the PMU id), `cpumask`
//! (one CPU per socket), `events/energy-*` (`event=0xNN`) and their `.scale` (joules per
//! count). Counters are opened with a raw `perf_event_open(2)` system-wide on those CPUs, no
//! exclude bits (the power PMU rejects them), and read as one `u64` each.
//!
//! The counters are opened through a [`CounterSource`]: the kernel's [`KernelCounters`], or,
//! for tests on any machine, [`FileCounters`], which reads each count from a text file (the
//! seam `WATTPRINT_PERF_COUNTERS_DIR`): a dead `energy-psys` is a file that never changes.

use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use wattprint_core::domain::assign_counted_in_total;
use wattprint_core::{DomainDesc, DomainKind, Method, SensorSource};

/// Source label of perf_event RAPL domains.
pub const SOURCE: SensorSource = SensorSource::RaplPerf;

/// One event the PMU offers.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfEvent {
    /// `pkg`, `ram`, `cores`, `gpu`, `psys`.
    pub event: String,
    pub config: u64,
    /// Joules per count.
    pub scale_j: f64,
}

/// What the `power` PMU directory describes.
#[derive(Clone, Debug, PartialEq)]
pub struct PmuDesc {
    pub pmu_type: u32,
    pub cpus: Vec<i32>,
    pub events: Vec<PerfEvent>,
}

/// Parse `event=0x02` (other terms ignored).
pub fn parse_event_config(text: &str) -> Option<u64> {
    text.trim().split(',').find_map(|term| {
        let v = term.trim().strip_prefix("event=")?;
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        }
    })
}

/// Parse a CPU list such as `0`, `0,36` or `0-1`.
pub fn parse_cpu_list(text: &str) -> Option<Vec<i32>> {
    let mut v = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (i32, i32) = (a.parse().ok()?, b.parse().ok()?);
                v.extend(a..=b);
            }
            None => v.push(part.parse().ok()?),
        }
    }
    (!v.is_empty()).then_some(v)
}

fn unavailable(reason: String, fix: Option<&str>) -> SensorError {
    SensorError::Unavailable {
        reason,
        fix: fix.map(str::to_string),
    }
}

/// Describe the `power` PMU under `sysfs_root`, or say why there is none.
pub fn describe_pmu(sysfs_root: &Path) -> Result<PmuDesc, SensorError> {
    let dir = sysfs_root.join("bus/event_source/devices/power");
    let read = |p: &str| std::fs::read_to_string(dir.join(p));
    let pmu_type = read("type")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            unavailable(
                format!("no perf_event power PMU at {}", dir.display()),
                Some(
                    "needs a kernel with the RAPL perf driver on bare metal; VMs rarely expose it",
                ),
            )
        })?;
    let cpus = read("cpumask")
        .ok()
        .and_then(|t| parse_cpu_list(&t))
        .ok_or_else(|| unavailable(format!("{}/cpumask unreadable", dir.display()), None))?;
    let mut events = Vec::new();
    for ev in ["pkg", "ram", "cores", "gpu", "psys"] {
        let Some(config) = read(&format!("events/energy-{ev}"))
            .ok()
            .and_then(|t| parse_event_config(&t))
        else {
            continue;
        };
        let Some(scale_j) = read(&format!("events/energy-{ev}.scale"))
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0 && s.is_finite())
        else {
            continue;
        };
        events.push(PerfEvent {
            event: ev.into(),
            config,
            scale_j,
        });
    }
    if events.is_empty() {
        return Err(unavailable(
            format!("the power PMU at {} lists no energy event", dir.display()),
            None,
        ));
    }
    Ok(PmuDesc {
        pmu_type,
        cpus,
        events,
    })
}

/// `perf_event_attr`, first version (64 bytes, PERF_ATTR_SIZE_VER0): type, size, config; every
/// other field zero (no sampling, counting enabled at open, no exclude bits).
#[repr(C, align(8))]
struct PerfEventAttr([u8; 64]);

fn perf_open(pmu_type: u32, config: u64, cpu: i32) -> std::io::Result<OwnedFd> {
    let mut attr = PerfEventAttr([0; 64]);
    attr.0[0..4].copy_from_slice(&pmu_type.to_ne_bytes());
    attr.0[4..8].copy_from_slice(&64u32.to_ne_bytes());
    attr.0[8..16].copy_from_slice(&config.to_ne_bytes());
    // SAFETY: perf_event_open reads `size` (64) bytes from a live, aligned buffer; pid -1 with
    // a CPU counts system-wide on that CPU; group fd -1; flags 0 (PERF_FLAG_FD_CLOEXEC added).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1i32,
            cpu,
            -1i32,
            libc::c_ulong::from(8u8), // PERF_FLAG_FD_CLOEXEC
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One opened perf counter.
pub trait PerfCounter: Send {
    /// The raw count (multiply by the event's scale for joules).
    fn read_count(&mut self) -> std::io::Result<u64>;
}

/// Opens perf counters: the kernel, or files for tests.
pub trait CounterSource {
    /// Open the counter of `event` on CPU `cpu` of PMU `pmu_type`.
    fn open(
        &self,
        pmu_type: u32,
        event: &PerfEvent,
        cpu: i32,
    ) -> std::io::Result<Box<dyn PerfCounter>>;
}

/// The kernel's counters, through `perf_event_open(2)`.
pub struct KernelCounters;

struct KernelCounter(OwnedFd);

impl PerfCounter for KernelCounter {
    fn read_count(&mut self) -> std::io::Result<u64> {
        let mut v = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live local buffer from a descriptor we own.
        let n = unsafe { libc::read(self.0.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
        if n == 8 {
            Ok(u64::from_ne_bytes(v))
        } else {
            Err(std::io::Error::other(format!(
                "perf counter read returned {n}: {}",
                std::io::Error::last_os_error()
            )))
        }
    }
}

impl CounterSource for KernelCounters {
    fn open(
        &self,
        pmu_type: u32,
        event: &PerfEvent,
        cpu: i32,
    ) -> std::io::Result<Box<dyn PerfCounter>> {
        Ok(Box::new(KernelCounter(perf_open(
            pmu_type,
            event.config,
            cpu,
        )?)))
    }
}

/// Counters read from text files `<dir>/energy-<event>-cpu<N>` (one decimal count each),
/// kept open and re-read at offset 0: the test seam for machines without (or with a dead)
/// power PMU. A missing file opens as `NotFound`; a file holding `EACCES` opens as
/// `PermissionDenied` (tests run as root, where file modes deny nothing).
pub struct FileCounters {
    pub dir: std::path::PathBuf,
}

/// The file name [`FileCounters`] reads for `event` on `cpu`.
pub fn counter_file_name(event: &str, cpu: i32) -> String {
    format!("energy-{event}-cpu{cpu}")
}

struct FileCounter(crate::pread::OpenFile);

impl PerfCounter for FileCounter {
    fn read_count(&mut self) -> std::io::Result<u64> {
        self.0.read_u64().map_err(std::io::Error::other)
    }
}

impl CounterSource for FileCounters {
    fn open(
        &self,
        _pmu_type: u32,
        event: &PerfEvent,
        cpu: i32,
    ) -> std::io::Result<Box<dyn PerfCounter>> {
        let path = self.dir.join(counter_file_name(&event.event, cpu));
        if std::fs::read(&path).is_ok_and(|b| b.trim_ascii() == b"EACCES") {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(Box::new(FileCounter(crate::pread::OpenFile::open(&path)?)))
    }
}

struct Counter {
    counter: Box<dyn PerfCounter>,
    scale_j: f64,
    last_error: Option<String>,
}

/// The perf_event RAPL sensor.
pub struct PerfRapl {
    info: SensorInfo,
    counters: Vec<Counter>,
}

impl PerfRapl {
    /// Open every energy event of the `power` PMU under `sysfs_root` through the kernel.
    pub fn open(sysfs_root: &Path) -> Result<PerfRapl, SensorError> {
        Self::open_with(sysfs_root, &KernelCounters)
    }

    /// As [`PerfRapl::open`], with the counters opened by `source`.
    pub fn open_with(
        sysfs_root: &Path,
        source: &dyn CounterSource,
    ) -> Result<PerfRapl, SensorError> {
        let pmu = describe_pmu(sysfs_root)?;
        let mut counters = Vec::new();
        let mut domains = Vec::new();
        for ev in &pmu.events {
            for (socket, &cpu) in pmu.cpus.iter().enumerate() {
                let (kind, name) = match ev.event.as_str() {
                    "pkg" => (DomainKind::CpuPackage, format!("package-{socket}")),
                    "ram" => (DomainKind::Dram, format!("dram-{socket}")),
                    "cores" => (DomainKind::CpuCore, format!("core-{socket}")),
                    "gpu" => (DomainKind::CpuUncore, format!("uncore-{socket}")),
                    _ if socket == 0 => (DomainKind::Psys, "psys".to_string()),
                    _ => continue,
                };
                let counter = source.open(pmu.pmu_type, ev, cpu).map_err(|e| {
                    let denied = matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM));
                    unavailable(
                        format!(
                            "perf_event_open(power/energy-{}/, cpu {cpu}): {e}",
                            ev.event
                        ),
                        denied.then_some(
                            "set kernel.perf_event_paranoid to 0 or lower (sysctl), or give \
                             wattprint CAP_PERFMON (setcap cap_perfmon+ep); see docs/privileges.md",
                        ),
                    )
                })?;
                counters.push(Counter {
                    counter,
                    scale_j: ev.scale_j,
                    last_error: None,
                });
                domains.push(DomainDesc {
                    name,
                    kind,
                    source: SOURCE,
                    method: Method::Counter,
                    counted_in_total: false,
                    device: None,
                });
            }
        }
        assign_counted_in_total(&mut domains);
        Ok(PerfRapl {
            info: SensorInfo {
                source: SOURCE,
                domains,
                cadence: ReadCadence::Boundaries { guard_s: None },
                setup: "perf_event access (perf_event_paranoid <= 0 or CAP_PERFMON)".into(),
            },
            counters,
        })
    }
}

impl Sensor for PerfRapl {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn read(&mut self, _t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        for (c, o) in self.counters.iter_mut().zip(out.iter_mut()) {
            match c.counter.read_count() {
                Ok(n) => {
                    c.last_error = None;
                    *o = RawReading::EnergyCounter {
                        joules: n as f64 * c.scale_j,
                        range_j: None,
                    };
                }
                Err(e) => {
                    c.last_error = Some(e.to_string());
                    *o = RawReading::Missing;
                }
            }
        }
        Ok(())
    }

    fn missing_reason(&self, domain: usize) -> Option<String> {
        self.counters.get(domain)?.last_error.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_terms_and_cpu_lists_parse() {
        assert_eq!(parse_event_config("event=0x02\n"), Some(2));
        assert_eq!(parse_event_config("event=0x1b,umask=0"), Some(0x1b));
        assert_eq!(parse_event_config("garbage"), None);
        assert_eq!(parse_cpu_list("0,36\n"), Some(vec![0, 36]));
        assert_eq!(parse_cpu_list("0-2"), Some(vec![0, 1, 2]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn a_fake_pmu_is_described() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bus/event_source/devices/power");
        std::fs::create_dir_all(p.join("events")).unwrap();
        std::fs::write(p.join("type"), "23\n").unwrap();
        std::fs::write(p.join("cpumask"), "0,36\n").unwrap();
        std::fs::write(p.join("events/energy-pkg"), "event=0x02\n").unwrap();
        std::fs::write(
            p.join("events/energy-pkg.scale"),
            "2.3283064365386962890625e-10\n",
        )
        .unwrap();
        std::fs::write(p.join("events/energy-ram"), "event=0x03\n").unwrap();
        // ram without a scale is skipped, not guessed.
        let desc = describe_pmu(d.path()).unwrap();
        assert_eq!(desc.pmu_type, 23);
        assert_eq!(desc.cpus, vec![0, 36]);
        assert_eq!(desc.events.len(), 1);
        assert_eq!(desc.events[0].config, 2);
        assert!((desc.events[0].scale_j - 2.328_306_436_538_696_3e-10).abs() < 1e-24);
    }

    #[test]
    fn no_pmu_is_unavailable_with_a_reason() {
        let d = tempfile::tempdir().unwrap();
        match PerfRapl::open(d.path()) {
            Err(SensorError::Unavailable { reason, .. }) => assert!(reason.contains("power PMU")),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a PMU in an empty tree"),
        }
    }

    #[test]
    fn a_dead_psys_reads_zero_through_the_file_seam() {
        let d = tempfile::tempdir().unwrap();
        let pmu = crate::fake_tree::FakePerfPmu::new(d.path(), &[0], &["psys"]).unwrap();
        let src = FileCounters {
            dir: pmu.counters_dir(),
        };
        let mut s = PerfRapl::open_with(d.path(), &src).unwrap();
        assert_eq!(s.info().domains[0].name, "psys");
        let mut out = [RawReading::Missing];
        s.read(0.0, &mut out).unwrap();
        assert_eq!(
            out[0],
            RawReading::EnergyCounter {
                joules: 0.0,
                range_j: None
            }
        );
        pmu.set_count("psys", 0, 3 << 32).unwrap();
        s.read(1.0, &mut out).unwrap();
        assert_eq!(
            out[0],
            RawReading::EnergyCounter {
                joules: 3.0,
                range_j: None
            }
        );
    }

    #[test]
    fn a_denied_counter_names_the_privilege_fix() {
        let d = tempfile::tempdir().unwrap();
        let pmu = crate::fake_tree::FakePerfPmu::new(d.path(), &[0], &["pkg"]).unwrap();
        pmu.deny("pkg", 0).unwrap();
        let src = FileCounters {
            dir: pmu.counters_dir(),
        };
        match PerfRapl::open_with(d.path(), &src) {
            Err(SensorError::Unavailable { fix, .. }) => {
                assert!(fix.unwrap().contains("perf_event_paranoid"))
            }
            _ => panic!("denied counter opened"),
        }
    }
}
