//! A cgroup v2 of its own for the wrapped command, so that its CPU time counts every process
//! it started, including those that left its process tree (daemonised, re-parented to init)
//! and were never waited for.
//!
//! The job's cgroup is created as a child of wattprint's own (`0::PATH` of
//! `<procfs_root>/self/cgroup`, under the cgroup2 mount `<sysfs_root>/fs/cgroup`, or
//! `<sysfs_root>/fs/cgroup/unified` on a hybrid layout). That needs write access to wattprint's
//! cgroup (root, a delegated subtree such as `systemd-run --user --scope -p Delegate=yes`, or
//! a container that owns its cgroup). Where that fails, the caller falls back to `wait4`'s
//! rusage of the waited-for tree and reports why.
//!
//! A wattprint killed before it could remove its job's cgroup (SIGKILL, OOM killer) leaves
//! it behind, empty. The next [`JobCgroup::create`] under the same parent removes such
//! leftovers: only `wattprint-<pid>-<n>` directories with no process and no child cgroup,
//! whose owner `<pid>` no longer runs.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use wattprint_sensors::procfs;

/// The job's cgroup: its directory and its `cgroup.procs`, opened before the command starts.
#[derive(Debug)]
pub struct JobCgroup {
    dir: PathBuf,
    /// The directory itself, open (`O_RDONLY | O_DIRECTORY`): `clone3`'s `CLONE_INTO_CGROUP`
    /// takes it to start the command inside the cgroup.
    dir_file: File,
    procs: File,
}

/// The cgroup2 mount point under `sysfs_root`: the unified layout, or the hybrid one.
fn mount_point(sysfs_root: &Path) -> Option<PathBuf> {
    ["fs/cgroup", "fs/cgroup/unified"]
        .iter()
        .map(|p| sysfs_root.join(p))
        .find(|p| p.join("cgroup.controllers").is_file())
}

impl JobCgroup {
    /// Create `wattprint-<pid>-<n>` under this process's own cgroup v2. The error says why
    /// not, in words for the report.
    pub fn create(sysfs_root: &Path, procfs_root: &Path) -> Result<JobCgroup, String> {
        let mount = mount_point(sysfs_root).ok_or_else(|| {
            format!(
                "no cgroup v2 hierarchy under {}",
                sysfs_root.join("fs/cgroup").display()
            )
        })?;
        let own = procfs_root.join("self/cgroup");
        let text = std::fs::read_to_string(&own)
            .map_err(|e| format!("cannot read {}: {e}", own.display()))?;
        let path = procfs::parse_cgroup_v2_path(&text)
            .ok_or_else(|| format!("{} names no cgroup v2 (no `0::` line)", own.display()))?;
        let parent = mount.join(path.trim_start_matches('/'));
        remove_orphans_in(&parent, &|pid| {
            crate::procinfo::process_start_ticks(Path::new(crate::procinfo::KERNEL_PROCFS), pid)
                .is_some()
        });
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = parent.join(format!("wattprint-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                ": wattprint's cgroup is not delegated to this user"
            } else {
                ""
            };
            format!(
                "cannot create a cgroup under {} ({e}){hint}",
                parent.display()
            )
        })?;
        let procs_path = dir.join("cgroup.procs");
        let procs = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&procs_path)
            .map_err(|e| {
                let _ = std::fs::remove_dir(&dir);
                format!("cannot open {} ({e})", procs_path.display())
            })?;
        let dir_file = File::open(&dir).map_err(|e| {
            let _ = std::fs::remove_dir(&dir);
            format!("cannot open {} ({e})", dir.display())
        })?;
        Ok(JobCgroup {
            dir,
            dir_file,
            procs,
        })
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The open `cgroup.procs`: writing `0` to it moves the writing process (the command,
    /// between fork and exec) into the cgroup.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The open cgroup directory, for `clone3(CLONE_INTO_CGROUP)`: a command started that way
    /// is born in the cgroup, with no migration (the write to `cgroup.procs` waits for the
    /// kernel's cgroup threadgroup lock, 11-16 ms on some hosts).
    pub fn dir_fd(&self) -> RawFd {
        self.dir_file.as_raw_fd()
    }

    /// CPU time of every process that ran in the cgroup, s (`cpu.stat` `usage_usec`, µs).
    pub fn cpu_s(&self) -> Result<f64, String> {
        let p = self.dir.join("cpu.stat");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("cannot read {} ({e})", p.display()))?;
        procfs::parse_cgroup_cpu_usage_usec(&text)
            .map(|us| us as f64 * 1e-6)
            .ok_or_else(|| format!("{} has no usage_usec line", p.display()))
    }

    /// Processes still in the cgroup (started by the command, outliving it).
    pub fn remaining_pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| p != 0)
            .collect()
    }

    /// Remove the cgroup. Processes the command left running are moved back to wattprint's
    /// own cgroup first (the kernel refuses to remove a populated one) and named in the
    /// error; when they cannot be moved, the cgroup stays and the error says so.
    pub fn remove(self) -> Result<(), String> {
        let left = self.remaining_pids();
        let mut note = None;
        if !left.is_empty() {
            let pids = left
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let parent_procs = self.dir.parent().map(|p| p.join("cgroup.procs"));
            let moved = is_cgroupfs(&self.dir)
                && parent_procs.is_some_and(|p| {
                    left.iter()
                        .all(|pid| std::fs::write(&p, format!("{pid}\n")).is_ok())
                });
            let outcome = if moved {
                "moved back to wattprint's cgroup".to_string()
            } else {
                format!("cgroup {} kept", self.dir.display())
            };
            let message = format!(
                "{} process(es) the command started still run (pids {pids}): their CPU time \
                 up to the end of the run is counted; {outcome}",
                left.len()
            );
            if !moved {
                return Err(message);
            }
            note = Some(message);
        }
        drop(self.procs);
        drop(self.dir_file);
        // A fake tree holds regular files the kernel would not have: clear them first.
        if !is_cgroupfs(&self.dir) {
            for f in ["cgroup.procs", "cpu.stat"] {
                let _ = std::fs::remove_file(self.dir.join(f));
            }
        }
        std::fs::remove_dir(&self.dir)
            .map_err(|e| format!("cannot remove cgroup {} ({e})", self.dir.display()))?;
        note.map_or(Ok(()), Err)
    }
}

/// Removes, under `parent`, the job cgroups of wattprints that are gone: directories named
/// `wattprint-<pid>-<n>` whose `<pid>` is not `alive` (and not this process), with no
/// process in `cgroup.procs` and no child cgroup. Anything else is left alone; a failed
/// removal (the kernel refusing a populated one, no permission) too. Returns those removed.
fn remove_orphans_in(parent: &Path, alive: &dyn Fn(u32) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix("wattprint-"))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = e.path();
        if owner == own || alive(owner) || !dir.is_dir() {
            continue;
        }
        let empty = std::fs::read_to_string(dir.join("cgroup.procs"))
            .is_ok_and(|t| t.trim().is_empty())
            && std::fs::read_dir(&dir)
                .is_ok_and(|mut d| !d.any(|c| c.is_ok_and(|c| c.path().is_dir())));
        if !empty {
            continue;
        }
        // A fake tree holds regular files the kernel would not have: clear them first.
        if !is_cgroupfs(&dir) {
            for f in ["cgroup.procs", "cpu.stat"] {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
        if std::fs::remove_dir(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// Whether `dir` is on a cgroup2 file system (its files are the kernel's, not removable).
fn is_cgroupfs(dir: &Path) -> bool {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake hybrid layout: the cgroup2 mount at `fs/cgroup/unified`, this process in `/job.scope`.
    fn fake(root: &Path) -> (PathBuf, PathBuf) {
        let sys = root.join("sys");
        let proc = root.join("proc");
        let scope = sys.join("fs/cgroup/unified/job.scope");
        std::fs::create_dir_all(&scope).unwrap();
        std::fs::write(sys.join("fs/cgroup/unified/cgroup.controllers"), "").unwrap();
        std::fs::create_dir_all(proc.join("self")).unwrap();
        std::fs::write(
            proc.join("self/cgroup"),
            "4:memory:/elsewhere\n0::/job.scope\n",
        )
        .unwrap();
        (sys, proc)
    }

    #[test]
    fn a_job_cgroup_is_made_under_our_own_and_reads_its_cpu_time() {
        let d = tempfile::tempdir().unwrap();
        let (sys, proc) = fake(d.path());
        let cg = JobCgroup::create(&sys, &proc).unwrap();
        assert_eq!(
            cg.dir().parent().unwrap(),
            sys.join("fs/cgroup/unified/job.scope")
        );
        assert!(cg.cpu_s().unwrap_err().contains("cpu.stat"));
        std::fs::write(
            cg.dir().join("cpu.stat"),
            "usage_usec 1500000\nuser_usec 1\n",
        )
        .unwrap();
        assert_eq!(cg.cpu_s(), Ok(1.5));
        let dir = cg.dir().to_path_buf();
        cg.remove().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn processes_left_behind_keep_the_cgroup_and_are_named() {
        let d = tempfile::tempdir().unwrap();
        let (sys, proc) = fake(d.path());
        let cg = JobCgroup::create(&sys, &proc).unwrap();
        std::fs::write(cg.dir().join("cgroup.procs"), "4242\n4243\n").unwrap();
        assert_eq!(cg.remaining_pids(), vec![4242, 4243]);
        let dir = cg.dir().to_path_buf();
        let e = cg.remove().unwrap_err();
        assert!(
            e.contains("2 process(es)") && e.contains("4242, 4243"),
            "{e}"
        );
        assert!(dir.exists());
    }

    #[test]
    fn leftovers_of_dead_wattprints_are_removed_only_when_empty() {
        let d = tempfile::tempdir().unwrap();
        let (sys, proc) = fake(d.path());
        let parent = sys.join("fs/cgroup/unified/job.scope");
        let make = |name: &str, procs: &str| {
            let dir = parent.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.procs"), procs).unwrap();
            std::fs::write(dir.join("cpu.stat"), "usage_usec 1\n").unwrap();
            dir
        };
        let dead_empty = make("wattprint-111-0", "");
        let dead_busy = make("wattprint-112-0", "5000\n");
        let alive_empty = make("wattprint-113-0", "");
        let dead_nested = make("wattprint-114-3", "");
        std::fs::create_dir(dead_nested.join("child")).unwrap();
        let not_ours = make("wattprint-115", "");
        let other = make("app.service", "");
        let removed = remove_orphans_in(&parent, &|pid| pid == 113);
        assert_eq!(removed, vec![dead_empty.clone()]);
        assert!(!dead_empty.exists());
        for kept in [&dead_busy, &alive_empty, &dead_nested, &not_ours, &other] {
            assert!(kept.exists(), "{} removed", kept.display());
        }
        // `create` sweeps the parent first: a pid above the kernel's largest pid_max
        // (2^22, proc(5)) never runs.
        let gone = make("wattprint-4194305-0", "");
        let cg = JobCgroup::create(&sys, &proc).unwrap();
        assert!(!gone.exists());
        assert!(dead_busy.exists(), "a populated cgroup is never removed");
        cg.remove().unwrap();
    }

    #[test]
    fn without_cgroup_v2_the_reason_is_given() {
        let d = tempfile::tempdir().unwrap();
        let e = JobCgroup::create(&d.path().join("sys"), &d.path().join("proc")).unwrap_err();
        assert!(e.contains("no cgroup v2 hierarchy"), "{e}");
        let (sys, proc) = fake(d.path());
        std::fs::write(proc.join("self/cgroup"), "4:memory:/x\n").unwrap();
        let e = JobCgroup::create(&sys, &proc).unwrap_err();
        assert!(e.contains("no `0::` line"), "{e}");
        std::fs::write(proc.join("self/cgroup"), "0::/not-there\n").unwrap();
        let e = JobCgroup::create(&sys, &proc).unwrap_err();
        assert!(e.contains("cannot create a cgroup under"), "{e}");
    }
}
