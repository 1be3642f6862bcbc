//! A long run loses nothing: `run` stores its report at the start and every checkpoint
//! period while the command runs (one row, rewritten), so a wrapper killed by SIGKILL, the
//! OOM killer or a reboot leaves an `interrupted` run with the energy of its last checkpoint.
//! Readers of the history settle such runs first ([`settle`]).

use crate::exit::BadInput;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wattprint_core::report::RunReport;
use wattprint_engine::procinfo;
use wattprint_store::{Checkpoint, Here, Owner, Store};

/// Seconds between checkpoints of a running `run` (documented in docs/reporting.md; tests
/// set it short).
pub const PERIOD_ENV: &str = "WATTPRINT_CHECKPOINT_S";
/// Default checkpoint period, s: a run killed loses at most five minutes, for one row
/// update (a few ms) every five minutes.
pub const DEFAULT_PERIOD_S: f64 = 300.0;
/// Shortest accepted period, s: below it the history writes would cost more than they save.
pub const MIN_PERIOD_S: f64 = 0.05;

/// The checkpoint period from [`PERIOD_ENV`] (seconds), else [`DEFAULT_PERIOD_S`].
pub fn period_s(value: Option<&str>) -> Result<f64, BadInput> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_PERIOD_S);
    };
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= MIN_PERIOD_S => Ok(s),
        _ => Err(BadInput(format!(
            "{PERIOD_ENV}={v}: give the seconds between checkpoints of a run, at least \
             {MIN_PERIOD_S} (default {DEFAULT_PERIOD_S})"
        ))),
    }
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This process as the writer of a run's checkpoints. Its pid, start time and boot id come
/// from the kernel's own `/proc` (the process is real whatever the sensors' seam says); its
/// host name is the one reports carry (`sensor_procfs`).
pub fn owner(sensor_procfs: &Path) -> Owner {
    let proc = Path::new(procinfo::KERNEL_PROCFS);
    let pid = std::process::id();
    Owner {
        pid,
        start_ticks: procinfo::process_start_ticks(proc, pid),
        boot_id: procinfo::boot_id(proc),
        host: procinfo::hostname(sensor_procfs),
    }
}

/// Marks the history's running runs whose writer is gone as interrupted (see
/// [`wattprint_store::owner_gone`]). A failure leaves them running: the next reader retries.
pub fn settle(store: &mut Store, sensor_procfs: &Path) {
    let proc = Path::new(procinfo::KERNEL_PROCFS);
    let start_ticks_of = |pid| procinfo::process_start_ticks(proc, pid);
    let here = Here {
        host: procinfo::hostname(sensor_procfs),
        boot_id: procinfo::boot_id(proc),
        now_unix_s: unix_now_s(),
        start_ticks_of: &start_ticks_of,
    };
    let _ = store.settle_interrupted(|run| wattprint_store::owner_gone(run, &here));
}

/// Stores `report_now()` at once and then every `period_s` until `stopped`'s sender is
/// dropped (the command ended). Returns a warning for the final report when checkpoints
/// could not be stored.
pub fn keep(
    db: &Path,
    owner: Owner,
    period_s: f64,
    report_now: impl Fn() -> Option<RunReport>,
    stopped: &mpsc::Receiver<()>,
) -> Option<String> {
    // A command that ended at once needs no checkpoint (and its end is not delayed by one).
    if let Err(mpsc::TryRecvError::Disconnected) = stopped.try_recv() {
        return None;
    }
    let mut store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return Some(format!("checkpoints not stored: {e}")),
    };
    let mut failed = 0u64;
    let mut last_error = String::new();
    let tick = Duration::from_secs_f64(period_s);
    loop {
        if let Some(r) = report_now() {
            let c = Checkpoint {
                owner: owner.clone(),
                period_s,
                at_unix_s: unix_now_s(),
            };
            if let Err(e) = store.checkpoint(&r, &c) {
                failed += 1;
                last_error = e.to_string();
            }
        }
        if let Err(mpsc::RecvTimeoutError::Disconnected) = stopped.recv_timeout(tick) {
            break;
        }
    }
    (failed > 0).then(|| {
        format!(
            "{failed} checkpoint(s) of this run not stored (last: {last_error}): had the \
             wrapper been killed, more of the run would have been lost"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_defaults_to_five_minutes_and_rejects_nonsense() {
        assert_eq!(period_s(None).unwrap(), 300.0);
        assert_eq!(period_s(Some(" ")).unwrap(), 300.0);
        assert_eq!(period_s(Some("0.2")).unwrap(), 0.2);
        for bad in ["0", "0.01", "-5", "5m", "nan", "inf"] {
            let e = period_s(Some(bad)).unwrap_err().0;
            assert!(e.contains(PERIOD_ENV) && e.contains(bad), "{e}");
        }
    }
}
