//! CPU time of cgroups, read at the edge: cgroup v2 `cpu.stat` (`usage_usec`) or cgroup v1
//! `cpuacct.usage` (ns), behind the small [`CgroupTree`] trait so that attribution is tested
//! over a fake.
//!
//! [`CgroupFs::discover`] picks the hierarchy under `<sysfs_root>/fs/cgroup`: a pure v2 mount
//! first; else the v1 `cpuacct` controller (hybrid hosts: kubelet, Docker and containerd put
//! their cgroups in the v1 controllers there); else the hybrid layout's `unified` v2 mount.
//!
//! [`CgroupFs`] keeps every cgroup's CPU-time file open between passes and reads it with one
//! `pread` at offset 0 into a stack buffer: a file is opened only when its cgroup is new to
//! the walk, and dropped when a read fails (a removed cgroup's file answers `ENODEV` on
//! cgroupfs), when its directory's listing no longer has it or has another directory (another
//! inode) under its name (a name reused between two passes; on tmpfs-like fakes the old
//! descriptor would keep reading the removed file), and when a pass did not read it
//! ([`CgroupTree::end_pass`]), so the cache holds only the cgroups of the last walk.
//! Directories are listed at every pass: on this project's hosts (kernel 6.18, cgroup v1
//! controllers and the v2 `unified` mount) a cgroup directory's mtime does not change when
//! children are created or removed, so it cannot tell which listings are still current.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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
    /// The end of one walk (all its `children` and `usage_ns` calls): a tree that caches per
    /// cgroup may drop what this walk did not touch.
    fn end_pass(&self) {}
}

/// A cgroup's CPU-time file kept open.
#[derive(Debug)]
struct OpenUsage {
    file: File,
    /// Inode of the cgroup's directory when the file was opened (0 for the root, which is
    /// never in a listing).
    dir_ino: u64,
    /// The pass that last read it.
    pass: u64,
}

/// CPU-time files kept open at most. Beyond it a cgroup's file is opened, read and closed at
/// each pass (the cost the cache saves), so that a node with thousands of cgroups cannot
/// exhaust the agent's descriptors: with the agent's default cap of 256 connections and its
/// own few dozen, 512 stays under the usual limit of 1024 (`LimitNOFILE=1024` in the unit).
pub const MAX_OPEN_USAGE_FILES: usize = 512;

#[derive(Debug, Default)]
struct UsageCache {
    files: HashMap<String, OpenUsage>,
    pass: u64,
    /// Reused for `parent/child` lookups while listing (no allocation per child).
    key: String,
}

/// A cgroup hierarchy on disk, its CPU-time files kept open between passes (see the module
/// docs).
#[derive(Debug)]
pub struct CgroupFs {
    root: PathBuf,
    version: CgroupVersion,
    cache: Mutex<UsageCache>,
}

impl Clone for CgroupFs {
    /// The same hierarchy with an empty cache (open files are not shared).
    fn clone(&self) -> CgroupFs {
        CgroupFs::new(self.root.clone(), self.version)
    }
}

impl CgroupFs {
    /// A hierarchy rooted at `root` (a mount point or any cgroup below one).
    pub fn new(root: PathBuf, version: CgroupVersion) -> CgroupFs {
        CgroupFs {
            root,
            version,
            cache: Mutex::new(UsageCache::default()),
        }
    }

    /// CPU-time files held open now (the cgroups of the last walk).
    pub fn open_files(&self) -> usize {
        self.lock().files.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UsageCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn usage_file(&self, path: &str) -> PathBuf {
        self.dir(path).join(match self.version {
            CgroupVersion::V2 => "cpu.stat",
            CgroupVersion::V1 => "cpuacct.usage",
        })
    }

    fn open_usage(&self, path: &str, pass: u64) -> Option<OpenUsage> {
        let file = File::open(self.usage_file(path)).ok()?;
        let dir_ino = if path.is_empty() {
            0
        } else {
            std::fs::metadata(self.dir(path)).ok()?.ino()
        };
        Some(OpenUsage {
            file,
            dir_ino,
            pass,
        })
    }

    fn parse(&self, bytes: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(bytes).ok()?;
        match self.version {
            CgroupVersion::V2 => {
                crate::procfs::parse_cgroup_cpu_usage_usec(text).map(|us| us.saturating_mul(1000))
            }
            CgroupVersion::V1 => text.trim().parse().ok(),
        }
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
        let mut cache = self.lock();
        let UsageCache { files, key, .. } = &mut *cache;
        let mut v: Vec<String> = Vec::new();
        for e in rd.filter_map(Result::ok) {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            // A name reused by another directory since the file was opened: reopen.
            key.clear();
            if !path.is_empty() {
                key.push_str(path);
                key.push('/');
            }
            key.push_str(&name);
            if files
                .get(key.as_str())
                .is_some_and(|f| f.dir_ino != e.ino())
            {
                files.remove(key.as_str());
            }
            v.push(name);
        }
        v.sort();
        v
    }

    fn usage_ns(&self, path: &str) -> Option<u64> {
        let mut buf = [0u8; MAX_STAT_BYTES];
        let mut cache = self.lock();
        let pass = cache.pass;
        // The cached file first; a failed read (ENODEV: the cgroup was removed) drops it and
        // opens the path once more (a cgroup of the same name may exist now).
        if let Some(f) = cache.files.get_mut(path) {
            f.pass = pass;
            match f.file.read_at(&mut buf, 0) {
                Ok(n) => return self.parse(&buf[..n]),
                Err(_) => {
                    cache.files.remove(path);
                }
            }
        }
        let f = self.open_usage(path, pass)?;
        let n = f.file.read_at(&mut buf, 0).ok()?;
        if cache.files.len() < MAX_OPEN_USAGE_FILES {
            cache.files.insert(path.to_string(), f);
        }
        self.parse(&buf[..n])
    }

    fn end_pass(&self) {
        let mut cache = self.lock();
        let pass = cache.pass;
        cache.files.retain(|_, f| f.pass == pass);
        cache.pass += 1;
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

    /// One walk as the agent does it: the root, then every child of the root.
    fn pass(fs: &CgroupFs) -> Vec<(String, Option<u64>)> {
        let mut v = vec![(String::new(), fs.usage_ns(""))];
        for c in fs.children("") {
            let u = fs.usage_ns(&c);
            v.push((c, u));
        }
        fs.end_pass();
        v
    }

    fn stat(dir: &Path, usec: u64) {
        std::fs::write(
            dir.join("cpu.stat"),
            format!("usage_usec {usec}\nuser_usec 0\n"),
        )
        .unwrap();
    }

    fn row(p: &str, ns: u64) -> (String, Option<u64>) {
        (p.to_string(), Some(ns))
    }

    #[test]
    fn open_files_are_capped_and_cgroups_beyond_the_cap_still_read() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        stat(root, 1);
        let n = MAX_OPEN_USAGE_FILES + 20;
        for k in 0..n {
            let c = root.join(format!("c{k:04}"));
            std::fs::create_dir(&c).unwrap();
            stat(&c, 2);
        }
        let fs = CgroupFs::new(root.to_path_buf(), CgroupVersion::V2);
        for _ in 0..2 {
            let rows = pass(&fs);
            assert_eq!(rows.len(), n + 1);
            assert!(
                rows[1..].iter().all(|r| r.1 == Some(2000)),
                "{:?}",
                &rows[..3]
            );
            assert_eq!(fs.open_files(), MAX_OPEN_USAGE_FILES);
        }
    }

    #[test]
    fn files_stay_open_and_follow_vanished_new_and_reused_cgroups() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        stat(root, 100);
        for (n, us) in [("a", 1), ("b", 2)] {
            std::fs::create_dir(root.join(n)).unwrap();
            stat(&root.join(n), us);
        }
        let fs = CgroupFs::new(root.to_path_buf(), CgroupVersion::V2);
        assert_eq!(
            pass(&fs),
            [row("", 100_000), row("a", 1000), row("b", 2000)]
        );
        assert_eq!(fs.open_files(), 3);
        // Rewritten in place: read through the open file. Replaced by another file (rename
        // over it): the open one is still read, which shows it is not reopened per pass.
        stat(&root.join("a"), 5);
        std::fs::write(root.join("b/new"), "usage_usec 999\n").unwrap();
        std::fs::rename(root.join("b/new"), root.join("b/cpu.stat")).unwrap();
        assert_eq!(
            pass(&fs),
            [row("", 100_000), row("a", 5000), row("b", 2000)]
        );
        // b vanishes, c is new, a is removed and made again under the same name (another
        // directory: the old descriptor would still read 5 µs).
        std::fs::remove_dir_all(root.join("b")).unwrap();
        std::fs::create_dir(root.join("c")).unwrap();
        stat(&root.join("c"), 3);
        std::fs::remove_dir_all(root.join("a")).unwrap();
        std::fs::create_dir(root.join("a")).unwrap();
        stat(&root.join("a"), 7);
        assert_eq!(
            pass(&fs),
            [row("", 100_000), row("a", 7000), row("c", 3000)]
        );
        // b's file was dropped at the end of the pass that did not read it.
        assert_eq!(fs.open_files(), 3);
        // A cgroup gone and no longer cached reads as None; a clone starts with no files.
        assert_eq!(fs.usage_ns("b"), None);
        assert_eq!(fs.clone().open_files(), 0);
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
