//! CPU time of cgroups, read at the edge: cgroup v2 `cpu.stat` (`usage_usec`) or cgroup v1
//! `cpuacct.usage` (ns), behind the small [`CgroupTree`] trait so that attribution is tested
//! over a fake.
//!
//! [`CgroupFs::discover`] picks the hierarchy under `<sysfs_root>/fs/cgroup`: a pure v2 mount
//! first; else the v1 `cpuacct` controller (hybrid hosts: kubelet, Docker and containerd put
//! their cgroups in the v1 controllers there); else the hybrid layout's `unified` v2 mount.
//!
//! [`CgroupFs`] keeps every cgroup's CPU-time file open between passes and reads it with one
//! `pread` at offset 0 into a reused buffer: a file is opened only when its cgroup is new to
//! the walk, and dropped when a read fails (a removed cgroup's file answers `ENODEV` on
//! cgroupfs), when its directory's listing no longer has it or has another directory (another
//! inode) under its name (a name reused between two passes; on tmpfs-like fakes the old
//! descriptor would keep reading the removed file), and when a pass did not read it
//! ([`CgroupTree::end_pass`]), so the cache holds only the cgroups of the last walk.
//! Directories are listed at every pass: on this project's hosts (kernel 6.18, cgroup v1
//! controllers and the v2 `unified` mount) a cgroup directory's mtime does not change when
//! children are created or removed (kernfs updates a parent's times only when it has
//! attributes set), so it cannot tell which listings are still current. A listed directory
//! stays open too, listed again with `lseek(0)` and `getdents64` (no path lookup, no open and
//! close per pass), and dropped like a file: when its parent's listing shows another inode
//! under its name, or when a pass did not list it. Both caches hold at most a descriptor
//! budget ([`CgroupFs::with_fd_budget`], by default [`MAX_OPEN_USAGE_FILES`] files and a
//! quarter as many directories).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
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

/// A cgroup's directory kept open, listed again with `lseek(0)` and `getdents64`.
#[derive(Debug)]
struct OpenDir {
    fd: OwnedFd,
    /// Inode of the directory (0 for the root).
    ino: u64,
    /// The pass that last listed it.
    pass: u64,
}

/// CPU-time files kept open at most by default ([`CgroupFs::new`]). Beyond it a cgroup's
/// file is opened, read and closed at each pass (the cost the cache saves), so that a node
/// with thousands of cgroups cannot exhaust the agent's descriptors: with the agent's default
/// cap of 256 connections and its own few dozen, 512 (and a quarter of it for directories)
/// stays under the usual limit of 1024 (`LimitNOFILE=1024` in the unit). The agent raises
/// that limit and the budget with it ([`raise_nofile_limit`], [`fd_budget_for_limit`]).
pub const MAX_OPEN_USAGE_FILES: usize = 512;

/// The largest descriptor budget [`fd_budget_for_limit`] gives: CPU-time files of 8192
/// cgroups (and 2048 directories) kept open, more than a node's 110-pod default
/// (`maxPods`) times a few containers each.
pub const MAX_FD_BUDGET: usize = 8192;

/// The CPU-time files a process with the soft descriptor limit `nofile` may keep open: half
/// of the limit (the other half for connections, the store and the sensors), at least
/// [`MAX_OPEN_USAGE_FILES`] and at most [`MAX_FD_BUDGET`]; directories get a quarter of it
/// on top ([`CgroupFs::with_fd_budget`]), so the cache holds at most 5/8 of the limit.
pub fn fd_budget_for_limit(nofile: u64) -> usize {
    usize::try_from(nofile / 2)
        .unwrap_or(MAX_FD_BUDGET)
        .clamp(MAX_OPEN_USAGE_FILES, MAX_FD_BUDGET)
}

/// Raise this process's soft `RLIMIT_NOFILE` to its hard limit, at most 65 536 (as systemd
/// recommends for programs that do not use `select(2)`: its units get a soft limit of 1024
/// and a hard one of 524 288); returns the soft limit in force afterwards, or the error of
/// `getrlimit`/`setrlimit`.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let want = lim.rlim_max.min(65_536);
    if want > lim.rlim_cur {
        let new = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the rlimit we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(want);
    }
    Ok(lim.rlim_cur)
}

#[derive(Debug, Default)]
struct UsageCache {
    files: HashMap<String, OpenUsage>,
    dirs: HashMap<String, OpenDir>,
    pass: u64,
    /// Reused for `parent/child` lookups while listing (no allocation per child).
    key: String,
    /// Reused `getdents64` buffer.
    dents: Vec<u8>,
    /// Reused buffer of the CPU-time files' reads ([`MAX_STAT_BYTES`]).
    read_buf: Vec<u8>,
}

/// A cgroup hierarchy on disk, its CPU-time files and directories kept open between passes
/// (see the module docs).
#[derive(Debug)]
pub struct CgroupFs {
    root: PathBuf,
    version: CgroupVersion,
    /// CPU-time files kept open at most; directories: a quarter of it.
    fd_budget: usize,
    cache: Mutex<UsageCache>,
}

impl Clone for CgroupFs {
    /// The same hierarchy with an empty cache (open files are not shared).
    fn clone(&self) -> CgroupFs {
        CgroupFs::new(self.root.clone(), self.version).with_fd_budget(self.fd_budget)
    }
}

/// `openat(dir, name)` read-only (`O_DIRECTORY` too when `dir_only`), close-on-exec.
fn open_at(dir: Option<BorrowedFd<'_>>, path: &Path, dir_only: bool) -> Option<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut flags = libc::O_RDONLY | libc::O_CLOEXEC;
    if dir_only {
        flags |= libc::O_DIRECTORY;
    }
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is a NUL-terminated path we own; the descriptor returned is new and ours.
    let fd = unsafe { libc::openat(at, c.as_ptr(), flags) };
    // SAFETY: a non-negative return of openat is an open descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// List an open directory from its start (`lseek(0)`, then `getdents64` until it returns
/// 0): each entry's name, inode and whether it is a directory (`d_type`, or `fstatat` where
/// the file system does not say). `None` when a call fails.
fn list_dir(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(&str, u64, bool),
) -> Option<()> {
    // SAFETY: lseek on a descriptor we borrow.
    if unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return None;
    }
    if buf.len() < 32 << 10 {
        buf.resize(32 << 10, 0);
    }
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into the buffer we own.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            return None;
        }
        let n = usize::try_from(n).ok()?;
        if n == 0 {
            return Some(());
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let mut at = 0;
        while at + 19 < n {
            let ino = u64::from_ne_bytes(buf[at..at + 8].try_into().ok()?);
            let reclen = usize::from(u16::from_ne_bytes(buf[at + 16..at + 18].try_into().ok()?));
            let dtype = buf[at + 18];
            if reclen == 0 || at + reclen > n {
                return None;
            }
            let raw = &buf[at + 19..at + reclen];
            let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
            at += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let is_dir = match dtype {
                libc::DT_DIR => true,
                libc::DT_UNKNOWN => is_dir_at(fd, name),
                _ => false,
            };
            each(name, ino, is_dir);
        }
    }
}

/// The inode of an open file (`fstat`).
fn ino_of(fd: BorrowedFd<'_>) -> Option<u64> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor we borrow, into the `stat` we own.
    (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some(st.st_ino)
}

/// `fstatat(dir, name)` says a directory (for file systems whose `d_type` is unknown).
fn is_dir_at(dir: BorrowedFd<'_>, name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: an all-zero `stat` is a valid value for fstatat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` ours; no symlink followed.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

impl CgroupFs {
    /// A hierarchy rooted at `root` (a mount point or any cgroup below one), with the default
    /// descriptor budget ([`MAX_OPEN_USAGE_FILES`]).
    pub fn new(root: PathBuf, version: CgroupVersion) -> CgroupFs {
        CgroupFs {
            root,
            version,
            fd_budget: MAX_OPEN_USAGE_FILES,
            cache: Mutex::new(UsageCache::default()),
        }
    }

    /// Keep at most `usage_files` CPU-time files and a quarter as many directories open (see
    /// [`fd_budget_for_limit`] for a budget that fits the process's descriptor limit).
    pub fn with_fd_budget(mut self, usage_files: usize) -> CgroupFs {
        self.fd_budget = usage_files;
        self
    }

    /// CPU-time files held open now (the cgroups of the last walk).
    pub fn open_files(&self) -> usize {
        self.lock().files.len()
    }

    /// Directories held open now (those the last walk listed).
    pub fn open_dirs(&self) -> usize {
        self.lock().dirs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UsageCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn usage_name(&self) -> &'static str {
        match self.version {
            CgroupVersion::V2 => "cpu.stat",
            CgroupVersion::V1 => "cpuacct.usage",
        }
    }

    /// Open `path`'s CPU-time file: relative to its directory when that is open (one path
    /// component to resolve), else from the root.
    fn open_usage(
        &self,
        dirs: &HashMap<String, OpenDir>,
        path: &str,
        pass: u64,
    ) -> Option<OpenUsage> {
        if let Some(d) = dirs.get(path) {
            let fd = open_at(Some(d.fd.as_fd()), Path::new(self.usage_name()), false)?;
            return Some(OpenUsage {
                file: File::from(fd),
                dir_ino: d.ino,
                pass,
            });
        }
        let file = File::open(self.dir(path).join(self.usage_name())).ok()?;
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
        let mut cache = self.lock();
        let UsageCache {
            files,
            dirs,
            key,
            dents,
            pass,
            ..
        } = &mut *cache;
        let pass = *pass;
        // The directory kept open from the last pass (taken out of the map while listing),
        // else opened: from its parent's open descriptor when there is one.
        let (name_key, dir) = match dirs.remove_entry(path) {
            Some((k, mut d)) => {
                d.pass = pass;
                (k, d)
            }
            None => {
                let fd = match (path.rsplit_once('/'), path.is_empty()) {
                    (Some((parent, name)), _) => match dirs.get(parent) {
                        Some(p) => open_at(Some(p.fd.as_fd()), Path::new(name), true),
                        None => open_at(None, &self.dir(path), true),
                    },
                    (None, false) => match dirs.get("") {
                        Some(p) => open_at(Some(p.fd.as_fd()), Path::new(path), true),
                        None => open_at(None, &self.dir(path), true),
                    },
                    (None, true) => open_at(None, &self.dir(path), true),
                };
                let Some(fd) = fd else {
                    return Vec::new();
                };
                let ino = if path.is_empty() {
                    Some(0)
                } else {
                    ino_of(fd.as_fd())
                };
                let Some(ino) = ino else {
                    return Vec::new();
                };
                (path.to_string(), OpenDir { fd, ino, pass })
            }
        };
        let mut v: Vec<String> = Vec::new();
        let listed = list_dir(dir.fd.as_fd(), dents, |name, ino, is_dir| {
            if !is_dir {
                return;
            }
            // A name reused by another directory since its files were opened: reopen.
            key.clear();
            if !path.is_empty() {
                key.push_str(path);
                key.push('/');
            }
            key.push_str(name);
            if files.get(key.as_str()).is_some_and(|f| f.dir_ino != ino) {
                files.remove(key.as_str());
            }
            if dirs.get(key.as_str()).is_some_and(|d| d.ino != ino) {
                dirs.remove(key.as_str());
            }
            v.push(name.to_string());
        });
        if listed.is_none() {
            return Vec::new();
        }
        // Kept within the budget; beyond it, closed here and opened again next pass.
        if dirs.len() < self.fd_budget / 4 {
            dirs.insert(name_key, dir);
        }
        v.sort();
        v
    }

    fn usage_ns(&self, path: &str) -> Option<u64> {
        let mut cache = self.lock();
        let UsageCache {
            files,
            dirs,
            pass,
            read_buf,
            ..
        } = &mut *cache;
        // Reused between reads: no 4 KiB to clear per cgroup.
        if read_buf.len() != MAX_STAT_BYTES {
            read_buf.resize(MAX_STAT_BYTES, 0);
        }
        // The cached file first; a failed read (ENODEV: the cgroup was removed) drops it and
        // opens the path once more (a cgroup of the same name may exist now).
        if let Some(f) = files.get_mut(path) {
            f.pass = *pass;
            match f.file.read_at(read_buf, 0) {
                Ok(n) => return self.parse(&read_buf[..n]),
                Err(_) => {
                    files.remove(path);
                }
            }
        }
        let f = self.open_usage(dirs, path, *pass)?;
        let n = f.file.read_at(read_buf, 0).ok()?;
        if files.len() < self.fd_budget {
            files.insert(path.to_string(), f);
        }
        self.parse(&read_buf[..n])
    }

    fn end_pass(&self) {
        let mut cache = self.lock();
        let pass = cache.pass;
        cache.files.retain(|_, f| f.pass == pass);
        cache.dirs.retain(|_, d| d.pass == pass);
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
    fn directories_stay_open_within_their_budget_and_a_remade_one_is_listed_anew() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        stat(root, 1);
        for p in ["p0/x", "p1/x", "p2/x", "p3/x", "p4/x"] {
            std::fs::create_dir_all(root.join(p)).unwrap();
            stat(&root.join(p), 2);
        }
        // 8 CPU-time files and 2 directories at most.
        let fs = CgroupFs::new(root.to_path_buf(), CgroupVersion::V2).with_fd_budget(8);
        let walk = |fs: &CgroupFs| {
            let mut seen = Vec::new();
            for p in fs.children("") {
                for c in fs.children(&p) {
                    seen.push((format!("{p}/{c}"), fs.usage_ns(&format!("{p}/{c}"))));
                }
            }
            fs.end_pass();
            seen
        };
        for _ in 0..2 {
            let seen = walk(&fs);
            assert_eq!(seen.len(), 5);
            assert!(seen.iter().all(|s| s.1 == Some(2000)), "{seen:?}");
            assert_eq!((fs.open_dirs(), fs.open_files()), (2, 5));
        }
        // p0 removed and made again with another child: its open descriptor (of the removed
        // directory) is dropped when the root's listing shows another inode under the name.
        std::fs::remove_dir_all(root.join("p0")).unwrap();
        std::fs::create_dir_all(root.join("p0/y")).unwrap();
        stat(&root.join("p0/y"), 3);
        let seen = walk(&fs);
        assert_eq!(seen[0], ("p0/y".to_string(), Some(3000)));
        assert_eq!(seen.len(), 5);
        // A directory gone: no longer listed, its descriptor dropped after the pass.
        std::fs::remove_dir_all(root.join("p1")).unwrap();
        assert_eq!(walk(&fs).len(), 4);
        assert!(fs.open_dirs() <= 2);
    }

    #[test]
    fn the_descriptor_budget_is_half_the_limit_within_its_bounds() {
        assert_eq!(fd_budget_for_limit(1024), MAX_OPEN_USAGE_FILES);
        assert_eq!(fd_budget_for_limit(256), MAX_OPEN_USAGE_FILES);
        assert_eq!(fd_budget_for_limit(4096), 2048);
        assert_eq!(fd_budget_for_limit(1 << 20), MAX_FD_BUDGET);
        let before = raise_nofile_limit().unwrap();
        // Raised to the hard limit (at most 65 536): a second call changes nothing.
        assert_eq!(raise_nofile_limit().unwrap(), before);
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
