//! CPU time of cgroups, read at the edge: cgroup v2 `cpu.stat` (`usage_usec`) or cgroup v1
//! `cpuacct.usage` (ns), behind the small [`CgroupTree`] trait so that attribution is tested
//! over a fake.
//!
//! [`CgroupFs::discover`] picks the hierarchy under `<sysfs_root>/fs/cgroup`: a pure v2 mount
//! first; else the v1 `cpuacct` controller (hybrid hosts: kubelet, Docker and containerd put
//! their cgroups in the v1 controllers there); else the hybrid layout's `unified` v2 mount.

use std::path::{Path, PathBuf};

/// Which file holds a cgroup's CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// `cpu.stat`, `usage_usec` line, µs.
    V2,
    /// `cpuacct.usage`, ns.
    V1,
}

/// A hierarchy of cgroups whose CPU time can be read. Paths are relative to the
/// hierarchy's root, `/`-separated, `""` for the root.
pub trait CgroupTree: Send {
    /// The child cgroups' names of `path` (empty when it has none or is gone).
    fn children(&self, path: &str) -> Vec<String>;
    /// CPU time of every process that ran in `path` and its descendants, ns; `None` when
    /// the cgroup is gone or its file unreadable.
    fn usage_ns(&self, path: &str) -> Option<u64>;
    /// Words for logs and `/v1/workloads`: the hierarchy's place and version.
    fn describe(&self) -> String;
}

/// A cgroup hierarchy on disk.
#[derive(Clone, Debug)]
pub struct CgroupFs {
    root: PathBuf,
    version: CgroupVersion,
}

impl CgroupFs {
    /// A hierarchy rooted at `root` (a mount point or any cgroup below one).
    pub fn new(root: PathBuf, version: CgroupVersion) -> CgroupFs {
        CgroupFs { root, version }
    }

    /// The hierarchy to read under `<sysfs_root>/fs/cgroup` (see the module docs), or why
    /// there is none.
    pub fn discover(sysfs_root: &Path) -> Result<CgroupFs, String> {
        let base = sysfs_root.join("fs/cgroup");
        if base.join("cgroup.controllers").is_file() {
            return Ok(CgroupFs::new(base, CgroupVersion::V2));
        }
        for v1 in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
            let d = base.join(v1);
            if d.join("cpuacct.usage").is_file() {
                return Ok(CgroupFs::new(d, CgroupVersion::V1));
            }
        }
        let unified = base.join("unified");
        if unified.join("cpu.stat").is_file() {
            return Ok(CgroupFs::new(unified, CgroupVersion::V2));
        }
        Err(format!(
            "no cgroup hierarchy with CPU accounting under {} (looked for a v2 mount with cpu.stat, a v1 cpuacct controller, and v2 under unified/): give --cgroup-root DIR",
            base.display()
        ))
    }

    /// A given directory: v2 when it has `cpu.stat`, v1 when it has `cpuacct.usage`.
    pub fn at(root: &Path) -> Result<CgroupFs, String> {
        if root.join("cpuacct.usage").is_file() {
            Ok(CgroupFs::new(root.to_path_buf(), CgroupVersion::V1))
        } else if root.join("cpu.stat").is_file() {
            Ok(CgroupFs::new(root.to_path_buf(), CgroupVersion::V2))
        } else {
            Err(format!(
                "{} is no cgroup with CPU accounting (neither cpuacct.usage nor cpu.stat in it)",
                root.display()
            ))
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    fn dir(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

/// A cgroup's CPU-time file is a few hundred bytes; this bounds the read.
const MAX_STAT_BYTES: usize = 4096;

impl CgroupTree for CgroupFs {
    fn children(&self, path: &str) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.dir(path)) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }

    fn usage_ns(&self, path: &str) -> Option<u64> {
        let d = self.dir(path);
        match self.version {
            CgroupVersion::V2 => {
                let t = crate::procfs::read_prefix(&d.join("cpu.stat"), MAX_STAT_BYTES)?;
                crate::procfs::parse_cgroup_cpu_usage_usec(&t).map(|us| us.saturating_mul(1000))
            }
            CgroupVersion::V1 => {
                crate::procfs::read_prefix(&d.join("cpuacct.usage"), MAX_STAT_BYTES)?
                    .trim()
                    .parse()
                    .ok()
            }
        }
    }

    fn describe(&self) -> String {
        let v = match self.version {
            CgroupVersion::V2 => "cgroup v2 cpu.stat",
            CgroupVersion::V1 => "cgroup v1 cpuacct.usage",
        };
        format!("{v} under {}", self.root.display())
    }
}

/// An in-memory [`CgroupTree`] for tests: paths with their usage, ns.
#[cfg(any(test, feature = "test-util"))]
#[derive(Clone, Debug, Default)]
pub struct FakeCgroups {
    pub usage_ns: std::collections::BTreeMap<String, u64>,
}

#[cfg(any(test, feature = "test-util"))]
impl FakeCgroups {
    /// Set (or create) `path`'s usage, ns; its ancestors exist implicitly.
    pub fn set(&mut self, path: &str, ns: u64) {
        self.usage_ns.insert(path.to_string(), ns);
    }

    /// Remove `path` and its descendants (a container that ended).
    pub fn remove(&mut self, path: &str) {
        let prefix = format!("{path}/");
        self.usage_ns
            .retain(|k, _| k != path && !k.starts_with(&prefix));
    }
}

#[cfg(any(test, feature = "test-util"))]
impl CgroupTree for FakeCgroups {
    fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let set: std::collections::BTreeSet<String> = self
            .usage_ns
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty())
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        set.into_iter().collect()
    }

    fn usage_ns(&self, path: &str) -> Option<u64> {
        self.usage_ns.get(path).copied()
    }

    fn describe(&self) -> String {
        "fake cgroups".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hybrid_host_is_read_through_its_v1_cpuacct_and_a_v2_host_through_cpu_stat() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("fs/cgroup");
        std::fs::create_dir_all(base.join("cpuacct/kubepods/burstable")).unwrap();
        std::fs::create_dir_all(base.join("unified")).unwrap();
        std::fs::write(base.join("unified/cpu.stat"), "usage_usec 5\n").unwrap();
        std::fs::write(base.join("cpuacct/cpuacct.usage"), "123456789\n").unwrap();
        std::fs::write(
            base.join("cpuacct/kubepods/burstable/cpuacct.usage"),
            "1000\n",
        )
        .unwrap();
        let fs = CgroupFs::discover(d.path()).unwrap();
        assert_eq!(fs.version(), CgroupVersion::V1);
        assert_eq!(fs.usage_ns(""), Some(123_456_789));
        assert_eq!(fs.children(""), vec!["kubepods"]);
        assert_eq!(fs.usage_ns("kubepods/burstable"), Some(1000));
        assert_eq!(fs.usage_ns("kubepods/gone"), None);
        // Without the v1 controller, the unified mount.
        std::fs::remove_file(base.join("cpuacct/cpuacct.usage")).unwrap();
        let fs = CgroupFs::discover(d.path()).unwrap();
        assert_eq!(fs.version(), CgroupVersion::V2);
        assert_eq!(fs.usage_ns(""), Some(5000));
        // A pure v2 host.
        std::fs::write(base.join("cgroup.controllers"), "cpu io memory\n").unwrap();
        std::fs::write(base.join("cpu.stat"), "usage_usec 7\nuser_usec 3\n").unwrap();
        let fs = CgroupFs::discover(d.path()).unwrap();
        assert_eq!(
            (fs.version(), fs.usage_ns("")),
            (CgroupVersion::V2, Some(7000))
        );
    }

    #[test]
    fn no_hierarchy_says_where_it_looked_and_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let e = CgroupFs::discover(d.path()).unwrap_err();
        assert!(
            e.contains("fs/cgroup") && e.contains("--cgroup-root"),
            "{e}"
        );
        let e = CgroupFs::at(d.path()).unwrap_err();
        assert!(e.contains("cpuacct.usage"), "{e}");
    }

    #[test]
    fn the_fake_lists_children_once_and_removes_subtrees() {
        let mut f = FakeCgroups::default();
        f.set("", 10);
        f.set("a", 5);
        f.set("a/x", 2);
        f.set("a/y", 1);
        f.set("b", 3);
        assert_eq!(f.children(""), vec!["a", "b"]);
        assert_eq!(f.children("a"), vec!["x", "y"]);
        f.remove("a");
        assert_eq!(f.children(""), vec!["b"]);
    }
}
