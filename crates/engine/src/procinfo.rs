//! Facts about this process and this machine that the report needs: machine busy CPU time
//! (for attribution), host name and CPU model (labels), the process's own CPU time and peak
//! RSS (the overhead score).

use std::path::Path;
use wattprint_sensors::procfs::{self, CpuTimes};

/// Aggregate machine CPU times from `<procfs_root>/stat`, if readable.
pub fn machine_cpu_times(procfs_root: &Path) -> Option<CpuTimes> {
    procfs::read_stat(procfs_root).ok()
}

/// The host name (`<procfs_root>/sys/kernel/hostname`), empty when unknown.
pub fn hostname(procfs_root: &Path) -> String {
    std::fs::read_to_string(procfs_root.join("sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The CPU model name from `<procfs_root>/cpuinfo`.
pub fn cpu_model(procfs_root: &Path) -> Option<String> {
    procfs::cpu_model_name(procfs_root)
}

/// Time on CPU of process `pid` from `<procfs_root>/<pid>/schedstat`, s (ns resolution).
pub fn process_cpu_s(procfs_root: &Path, pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(procfs_root.join(format!("{pid}/schedstat"))).ok()?;
    procfs::parse_schedstat_ns(&text).map(|ns| ns as f64 * 1e-9)
}

/// The kernel's own `/proc`, not the sensors' seam: a run's writer is a real process of
/// this kernel, whatever tree the sensors read (tests give them fake ones).
pub const KERNEL_PROCFS: &str = "/proc";

/// This boot's id (`<proc>/sys/kernel/random/boot_id`, a UUID that changes at every boot).
pub fn boot_id(proc: &Path) -> Option<String> {
    std::fs::read_to_string(proc.join("sys/kernel/random/boot_id"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The start time of live process `pid`, clock ticks after boot (`<proc>/<pid>/stat` field
/// 22); `None` when no such process runs (gone, or a zombie).
pub fn process_start_ticks(proc: &Path, pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(proc.join(format!("{pid}/stat"))).ok()?;
    procfs::parse_pid_stat_start_ticks(&text)
}

/// CPU time (user + system) and peak RSS of this process (`RUSAGE_SELF`) or of its waited-for
/// children (`RUSAGE_CHILDREN`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub cpu_s: f64,
    pub peak_rss_bytes: u64,
}

fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `who` is RUSAGE_SELF or RUSAGE_CHILDREN.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Usage::default();
    }
    Usage {
        cpu_s: timeval_s(ru.ru_utime) + timeval_s(ru.ru_stime),
        peak_rss_bytes: (ru.ru_maxrss.max(0) as u64).saturating_mul(1024),
    }
}

/// Convert a `timeval` to seconds.
pub fn timeval_s(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6
}

/// This process's own CPU time and peak RSS.
///
/// The peak RSS is this program image's own (`VmHWM` of `/proc/self/status`, which `execve`
/// resets), not `ru_maxrss`, which `execve` keeps: under `cargo run`, which replaces itself
/// with wattprint, that would be cargo's. CPU time is kept across `execve` too: callers that
/// need their own share subtract a reading taken at their start.
pub fn self_usage() -> Usage {
    let mut u = rusage(libc::RUSAGE_SELF);
    if let Some(hwm) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_hwm_bytes(&s))
    {
        u.peak_rss_bytes = hwm;
    }
    u
}

/// `VmHWM` of a `/proc/PID/status` text, bytes.
pub fn vm_hwm_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.saturating_mul(1024))
}

#[cfg(test)]
mod hwm_tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status =
            "Name:\twattprint\nVmPeak:\t  20000 kB\nVmHWM:\t    6144 kB\nVmRSS:\t 5000 kB\n";
        assert_eq!(vm_hwm_bytes(status), Some(6144 * 1024));
        assert_eq!(vm_hwm_bytes("Name: x\n"), None);
    }
}
