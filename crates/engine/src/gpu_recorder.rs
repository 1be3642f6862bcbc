//! Records NVML per-process GPU utilisation during a session, for GPU attribution.
//!
//! A background thread asks the driver for new samples every [`GPU_SAMPLE_PERIOD_S`] (the
//! driver buffers them, so nothing is lost between calls) and decides, at sample time, whether
//! each PID belongs to the job: the job's root PID or a descendant of it (parent links in
//! `<procfs root>/<pid>/stat`). The arithmetic is `wattprint_core::gpu_share`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use wattprint_core::gpu_share::ProcUtil;
use wattprint_sensors::nvml::GpuProcessSampler;

/// How often the driver is asked for new per-process samples, s.
pub const GPU_SAMPLE_PERIOD_S: f64 = 1.0;

#[derive(Default)]
struct State {
    job_root: Option<u32>,
    /// SM% summed per (GPU index, PID): all the attribution needs (per GPU, the job's sum
    /// over everyone's), in memory bounded by the processes seen, not by the run's length
    /// (the driver gives several samples per process per second).
    util_sums: BTreeMap<(u32, u32), f64>,
    job_pids: BTreeSet<u32>,
    /// PID -> whether it is in the job's tree (decided once, while the process lives).
    membership: HashMap<u32, bool>,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The parent PID from `<procfs>/<pid>/stat` (the field after the `)` closing the name).
pub fn parent_pid(procfs_root: &Path, pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(procfs_root.join(pid.to_string()).join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is `root` or one of its descendants (at most 64 generations up).
pub fn in_tree(procfs_root: &Path, root: u32, pid: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == root {
            return true;
        }
        match parent_pid(procfs_root, p) {
            Some(pp) if pp != 0 && pp != p => p = pp,
            _ => return false,
        }
    }
    false
}

/// The recorder: owns the sampler on its own thread until [`GpuRecorder::stop`].
pub struct GpuRecorder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn take(st: &mut State, procfs_root: &Path, sampler: &mut GpuProcessSampler) {
    let samples = sampler.sample();
    let Some(root) = st.job_root else {
        return;
    };
    for s in samples {
        let member = *st
            .membership
            .entry(s.pid)
            .or_insert_with(|| in_tree(procfs_root, root, s.pid));
        if member {
            st.job_pids.insert(s.pid);
        }
        *st.util_sums.entry((s.gpu_index, s.pid)).or_insert(0.0) += f64::from(s.sm_util_pct);
    }
}

impl GpuRecorder {
    /// Start sampling with `sampler`; PIDs are resolved under `procfs_root`.
    pub fn start(mut sampler: GpuProcessSampler, procfs_root: PathBuf) -> GpuRecorder {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        // Drop what the driver buffered before this session.
        let _ = sampler.sample();
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("wattprint-gpu-procs".into())
            .spawn(move || {
                let period = Duration::from_secs_f64(GPU_SAMPLE_PERIOD_S);
                let mut st = lock(&sh);
                loop {
                    // Checked under the lock before every wait, so a stop requested before
                    // this thread first waited is not lost (it would cost a whole period).
                    if !st.stopping {
                        let (g, _) = sh
                            .wake
                            .wait_timeout(st, period)
                            .unwrap_or_else(|e| e.into_inner());
                        st = g;
                    }
                    // A last collection on stop, so a short job's samples are not lost.
                    take(&mut st, &procfs_root, &mut sampler);
                    if st.stopping {
                        return;
                    }
                }
            })
            .ok();
        GpuRecorder { shared, thread }
    }

    /// The job's root process (the wrapped child): its tree is "the job".
    pub fn set_job_root(&self, pid: u32) {
        lock(&self.shared).job_root = Some(pid);
    }

    /// Samples so far, one per GPU and process with its SM% summed, and the job's PIDs
    /// among them.
    pub fn collected(&self) -> (Vec<ProcUtil>, BTreeSet<u32>) {
        let st = lock(&self.shared);
        let sums = st
            .util_sums
            .iter()
            .map(|(&(gpu_index, pid), &sm_util_pct)| ProcUtil {
                gpu_index,
                pid,
                sm_util_pct,
            })
            .collect();
        (sums, st.job_pids.clone())
    }

    /// Take a last collection and stop the thread.
    pub fn stop(&mut self) {
        lock(&self.shared).stopping = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for GpuRecorder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_entry(root: &Path, pid: u32, ppid: u32, name: &str) {
        let d = root.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("stat"),
            format!("{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194304 0 0\n"),
        )
        .unwrap();
    }

    #[test]
    fn descendants_are_in_the_job_tree_and_neighbours_are_not() {
        let t = tempfile::tempdir().unwrap();
        proc_entry(t.path(), 100, 1, "wattprint");
        proc_entry(t.path(), 200, 100, "python");
        // A name with spaces and a parenthesis does not confuse the parser.
        proc_entry(t.path(), 300, 200, "worker (x) 1");
        proc_entry(t.path(), 400, 1, "neighbour");
        assert_eq!(parent_pid(t.path(), 300), Some(200));
        assert!(in_tree(t.path(), 200, 300));
        assert!(in_tree(t.path(), 200, 200));
        assert!(!in_tree(t.path(), 200, 400));
        assert!(!in_tree(t.path(), 200, 100));
        // A PID that is gone (or of another namespace) is not the job's.
        assert!(!in_tree(t.path(), 200, 999));
    }

    #[test]
    fn a_parent_cycle_terminates() {
        let t = tempfile::tempdir().unwrap();
        proc_entry(t.path(), 5, 6, "a");
        proc_entry(t.path(), 6, 5, "b");
        assert!(!in_tree(t.path(), 7, 5));
    }
}
