//! Parsers for the few procfs files wattprint reads (`stat`, `meminfo`, `cpuinfo`,
//! `<pid>/schedstat`). Parsing is pure; the root of the tree is injectable
//! (`WATTPRINT_PROCFS_ROOT`).

use std::path::Path;

/// Aggregate CPU time from the `cpu` line of `/proc/stat`, in USER_HZ ticks (10 ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq + steal.
    pub busy_ticks: u64,
    /// busy + idle + iowait.
    pub total_ticks: u64,
}

/// Seconds per USER_HZ tick: Linux exports 100 ticks per second on every architecture.
pub const TICK_S: f64 = 0.01;

/// Parse the aggregate `cpu ` line of `/proc/stat` (guest time is already inside user).
pub fn parse_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 4 {
        return None;
    }
    let f = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = f(0) + f(1) + f(2) + f(5) + f(6) + f(7);
    let idle = f(3) + f(4);
    Some(CpuTimes {
        busy_ticks: busy,
        total_ticks: busy + idle,
    })
}

/// `MemTotal` of `/proc/meminfo`, bytes.
pub fn parse_mem_total_bytes(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut it = line.split_whitespace().skip(1);
    let n: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => n.checked_mul(1024),
        _ => None,
    }
}

/// What `/proc/cpuinfo` says about the CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// The first `model name` (x86) or `Model name`/`cpu model` line, trimmed.
    pub model_name: Option<String>,
    /// Hardware threads listed (`processor` entries), at least 1.
    pub threads: u32,
    /// Distinct `physical id`s, at least 1.
    pub sockets: u32,
    /// The first `vendor_id` (`GenuineIntel`, `AuthenticAMD`), empty when absent.
    pub vendor: String,
    /// The first `cpu family` (x86).
    pub family: Option<u32>,
    /// The first `model` (x86 display model, decimal).
    pub model: Option<u32>,
    /// The first `flags` line (x86), space-separated.
    pub flags: String,
    /// The first `CPU implementer` (Arm, hexadecimal in the file).
    pub arm_implementer: Option<u32>,
    /// The first `CPU part` (Arm, hexadecimal in the file).
    pub arm_part: Option<u32>,
}

impl CpuInfo {
    /// True when the `hypervisor` flag is set: the kernel runs in a virtual machine (the
    /// CPUID hypervisor-present bit).
    pub fn in_vm(&self) -> bool {
        self.flags.split_whitespace().any(|f| f == "hypervisor")
    }
}

fn parse_hex(v: &str) -> Option<u32> {
    u32::from_str_radix(v.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()
}

/// Parse `/proc/cpuinfo` (any prefix of it: the first record is enough for the name and
/// signature; threads and sockets need the whole file). Fields other than `processor` and
/// `physical id` are taken from their first occurrence.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut model = None;
    let mut threads = 0u32;
    let mut ids = std::collections::BTreeSet::new();
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => threads += 1,
            "model name" | "Model name" | "cpu model" if model.is_none() && !v.is_empty() => {
                model = Some(v.to_string())
            }
            "physical id" => {
                ids.insert(v.to_string());
            }
            "vendor_id" if info.vendor.is_empty() => info.vendor = v.to_string(),
            "cpu family" if info.family.is_none() => info.family = v.parse().ok(),
            "model" if info.model.is_none() => info.model = v.parse().ok(),
            "flags" if info.flags.is_empty() => info.flags = v.to_string(),
            "CPU implementer" if info.arm_implementer.is_none() => {
                info.arm_implementer = parse_hex(v)
            }
            "CPU part" if info.arm_part.is_none() => info.arm_part = parse_hex(v),
            _ => {}
        }
    }
    CpuInfo {
        model_name: model,
        threads: threads.max(1),
        sockets: (ids.len() as u32).max(1),
        ..info
    }
}

/// The CPUs a cgroup v2 `cpu.max` allows (`"QUOTA PERIOD"`, µs): quota / period; `None` for
/// `max` (no limit) or an unparsable file.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota: f64 = it.next()?.parse().ok()?;
    let period: f64 = it.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// The CPUs a cgroup v1 CFS quota allows (`cpu.cfs_quota_us`, `cpu.cfs_period_us`, µs):
/// quota / period; `None` for `-1` (no limit) or unparsable files.
pub fn parse_cfs_quota(quota_text: &str, period_text: &str) -> Option<f64> {
    let quota: f64 = quota_text.trim().parse().ok()?;
    let period: f64 = period_text.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// The path of the cgroup v1 hierarchy that holds `controller` (e.g. `cpu`) in
/// `/proc/self/cgroup` (`N:cpu,cpuacct:/PATH`), with the hierarchy's controller list (the
/// mount's directory name, `cpu,cpuacct`).
pub fn parse_cgroup_v1_path<'a>(text: &'a str, controller: &str) -> Option<(&'a str, &'a str)> {
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, controllers, path) = (it.next()?, it.next()?, it.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| (controllers, path.trim()))
    })
}

/// Time on CPU from `/proc/<pid>/schedstat` (first field), ns.
pub fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// A live process's start time from `/proc/<pid>/stat`: field 22 (`starttime`, clock ticks
/// after boot; proc(5)). `None` for a zombie or dead one (state `Z`, `X` or `x`), or an
/// unparsable line. The command name (field 2) may hold spaces and parentheses: fields are
/// counted after its last `)`.
pub fn parse_pid_stat_start_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // Fields 3 (state) .. 22 (starttime): the state, then 18 more.
    let state = f.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// This process's cgroup v2 path from `/proc/self/cgroup` (the `0::PATH` line), e.g.
/// `/user.slice/session-2.scope`; `None` on a cgroup-v1-only system.
pub fn parse_cgroup_v2_path(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim)
        .filter(|p| p.starts_with('/'))
}

/// The cgroup paths of a process from `/proc/<pid>/cgroup`, most telling first: the v1
/// hierarchy holding `cpuacct` (`N:cpu,cpuacct:/PATH`, where container runtimes and the
/// kubelet place their cgroups on v1 and hybrid hosts), then the v2 one (`0::/PATH`), then
/// the other v1 lines; each without its leading `/`. Empty for an unparsable text.
pub fn parse_pid_cgroup_paths(text: &str) -> Vec<&str> {
    let mut out: Vec<(u8, &str)> = Vec::new();
    for l in text.lines() {
        let mut it = l.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let path = path.trim();
        let Some(rel) = path.strip_prefix('/') else {
            continue;
        };
        let rank = if controllers.split(',').any(|c| c == "cpuacct") {
            0
        } else if controllers.is_empty() {
            1
        } else {
            2
        };
        out.push((rank, rel));
    }
    // Stable: lines of one rank keep the file's order; a path seen again is dropped.
    out.sort_by_key(|(r, _)| *r);
    let mut paths: Vec<&str> = Vec::with_capacity(out.len());
    for (_, p) in out {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    paths
}

/// `<procfs_root>/<pid>/cgroup`; `None` when the process is gone (or the file unreadable).
/// A process is in one cgroup per hierarchy (a dozen lines): 16 KiB bounds the read.
pub fn read_pid_cgroup(procfs_root: &Path, pid: u32) -> Option<String> {
    read_prefix(&procfs_root.join(pid.to_string()).join("cgroup"), 16 << 10)
}

/// CPU time of every process of a cgroup v2, from its `cpu.stat` (`usage_usec` line), µs.
pub fn parse_cgroup_cpu_usage_usec(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// Hardware threads online: the `cpuN` lines of `/proc/stat` (at least 1).
pub fn count_stat_cpus(text: &str) -> u32 {
    let n = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    (n as u32).max(1)
}

/// Read at most `max_bytes` from the start of a file: procfs generates `cpuinfo` record by
/// record, so the first record costs little even on machines with hundreds of CPUs.
pub fn read_prefix(path: &Path, max_bytes: usize) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; max_bytes];
    let mut n = 0;
    while n < max_bytes {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    buf.truncate(n);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// What the first record of `<procfs_root>/cpuinfo` says (name and signature; `threads` and
/// `sockets` are those of the first record only), read once per process and root (the kernel
/// formats `cpuinfo` slowly: it asks every CPU for its frequency).
pub fn cpu_first_record(procfs_root: &Path) -> Option<CpuInfo> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static CACHE: OnceLock<Mutex<HashMap<std::path::PathBuf, Option<CpuInfo>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(procfs_root.to_path_buf())
        .or_insert_with(|| {
            let text = read_prefix(&procfs_root.join("cpuinfo"), 8192)?;
            let first = text.split("\n\n").next().unwrap_or_default();
            Some(parse_cpuinfo(first))
        })
        .clone()
}

/// The CPU model name from the first record of `<procfs_root>/cpuinfo` (cached, see
/// [`cpu_first_record`]).
pub fn cpu_model_name(procfs_root: &Path) -> Option<String> {
    cpu_first_record(procfs_root)?.model_name
}

/// Read `/proc/stat` under `procfs_root`.
pub fn read_stat(procfs_root: &Path) -> Result<CpuTimes, String> {
    let p = procfs_root.join("stat");
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    parse_stat(&text).ok_or_else(|| format!("{}: no parsable `cpu ` line", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_processs_cgroups_come_cpuacct_first_then_v2_then_the_other_v1_lines() {
        // A hybrid host: v1 controllers and the v2 `unified` line.
        let hybrid = "12:memory:/kubepods/burstable/podabc/ctr\n\
                      4:cpu,cpuacct:/kubepods/burstable/podabc/ctr\n\
                      1:name=systemd:/kubepods/burstable/podabc/ctr\n\
                      0::/kubepods/burstable/podabc/ctr2\n";
        assert_eq!(
            parse_pid_cgroup_paths(hybrid),
            vec![
                "kubepods/burstable/podabc/ctr",
                "kubepods/burstable/podabc/ctr2"
            ]
        );
        assert_eq!(
            parse_pid_cgroup_paths("0::/system.slice/nginx.service\n"),
            vec!["system.slice/nginx.service"]
        );
        // The root cgroup is a path too (""); garbage and relative paths are not.
        assert_eq!(parse_pid_cgroup_paths("0::/\n"), vec![""]);
        assert!(parse_pid_cgroup_paths("garbage\n3:cpu:relative\n").is_empty());
    }

    #[test]
    fn a_processs_start_time_is_field_22_and_a_zombie_has_none() {
        let live = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_pid_stat_start_ticks(live), Some(987_654));
        let zombie = live.replace(") S ", ") Z ");
        assert_eq!(parse_pid_stat_start_ticks(&zombie), None);
        assert_eq!(parse_pid_stat_start_ticks("4242 (x) S 1"), None);
        assert_eq!(parse_pid_stat_start_ticks("garbage"), None);
    }

    #[test]
    fn stat_busy_and_total() {
        let t = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(
            parse_stat(t),
            Some(CpuTimes {
                busy_ticks: 161,
                total_ticks: 1181
            })
        );
        assert_eq!(parse_stat("cpu  a b c d"), None);
        assert_eq!(parse_stat("intr 1 2"), None);
        assert_eq!(parse_stat("cpu  1 2"), None);
    }

    #[test]
    fn meminfo_total_in_bytes() {
        let t = "MemTotal:       24684096 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_mem_total_bytes(t), Some(24_684_096 * 1024));
        assert_eq!(parse_mem_total_bytes("MemFree: 1 kB"), None);
    }

    #[test]
    fn cpuinfo_model_threads_sockets() {
        let t =
            "processor\t: 0\nmodel name\t: AMD EPYC 7763 64-Core Processor\nphysical id\t: 0\n\n\
                 processor\t: 1\nmodel name\t: AMD EPYC 7763 64-Core Processor\nphysical id\t: 1\n";
        let c = parse_cpuinfo(t);
        assert_eq!(
            c.model_name.as_deref(),
            Some("AMD EPYC 7763 64-Core Processor")
        );
        assert_eq!((c.threads, c.sockets), (2, 2));
        assert_eq!(parse_cpuinfo("").threads, 1);
    }

    #[test]
    fn cpuinfo_signature_of_a_vm_with_a_generic_name() {
        let t = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n\
                 model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 hypervisor amx_tile\n\n\
                 processor\t: 1\nvendor_id\t: Other\nmodel\t\t: 1\n";
        let c = parse_cpuinfo(t);
        assert_eq!(c.vendor, "GenuineIntel");
        assert_eq!((c.family, c.model), (Some(6), Some(207)));
        assert_eq!(c.flags, "fpu avx2 hypervisor amx_tile");
        assert!(c.in_vm());
        assert_eq!(c.threads, 2);
        assert!(!parse_cpuinfo("flags\t: fpu hypervisorx\n").in_vm());
    }

    #[test]
    fn cpuinfo_arm_implementer_and_part_are_hexadecimal() {
        let c = parse_cpuinfo("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n");
        assert_eq!((c.arm_implementer, c.arm_part), (Some(0x41), Some(0xd0c)));
    }

    #[test]
    fn cpu_max_is_quota_over_period() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("50000\n"), Some(0.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cfs_quota("200000\n", "100000\n"), Some(2.0));
        assert_eq!(parse_cfs_quota("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs_quota("x", "100000"), None);
    }

    #[test]
    fn the_v1_cpu_hierarchy_is_found_by_controller() {
        let t = "9:name=systemd:/\n3:cpu,cpuacct:/docker/abc\n0::/\n";
        assert_eq!(
            parse_cgroup_v1_path(t, "cpu"),
            Some(("cpu,cpuacct", "/docker/abc"))
        );
        assert_eq!(parse_cgroup_v1_path(t, "memory"), None);
        assert_eq!(parse_cgroup_v1_path("1:cpu:/\n", "cpu"), Some(("cpu", "/")));
    }

    #[test]
    fn online_threads_are_the_numbered_cpu_lines() {
        assert_eq!(count_stat_cpus("cpu  1 2 3 4\ncpu0 1\ncpu1 2\nintr 5\n"), 2);
        assert_eq!(count_stat_cpus("cpu  1 2 3 4\n"), 1);
    }

    #[test]
    fn the_v2_line_of_proc_self_cgroup_is_found() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n1:cpu:/\n0::/user.slice/s.scope\n";
        assert_eq!(parse_cgroup_v2_path(hybrid), Some("/user.slice/s.scope"));
        assert_eq!(parse_cgroup_v2_path("0::/\n"), Some("/"));
        assert_eq!(parse_cgroup_v2_path("4:memory:/x\n"), None);
        assert_eq!(parse_cgroup_v2_path(""), None);
    }

    #[test]
    fn cgroup_cpu_usage_is_the_usage_usec_line() {
        let t = "usage_usec 231630\nuser_usec 200000\nsystem_usec 31630\n";
        assert_eq!(parse_cgroup_cpu_usage_usec(t), Some(231_630));
        assert_eq!(parse_cgroup_cpu_usage_usec("user_usec 5\n"), None);
        assert_eq!(parse_cgroup_cpu_usage_usec("usage_usec lots\n"), None);
    }

    #[test]
    fn schedstat_first_field_is_ns() {
        assert_eq!(parse_schedstat_ns("123456789 2000 7\n"), Some(123_456_789));
        assert_eq!(parse_schedstat_ns(""), None);
    }
}
