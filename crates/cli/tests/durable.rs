//! A long run loses nothing: a `wattprint run` killed with SIGKILL leaves an interrupted run
//! with the energy of its last checkpoint, which `runs`, `report`, the ESRS statement and
//! `compare` show labelled.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wattprint_core::report::RunStatus;
use wattprint_sensors::fake_tree::write_fake_procfs;
use wattprint_store::{Filter, Store};

mod common;

/// The environment of every command here: the fake machine of `tests/common` (a history in
/// `dir`, no sensors but the model over a fake procfs), checkpoints every 0.1 s, a zone so
/// carbon is computed.
fn wattprint(dir: &Path) -> Command {
    let mut c = common::wattprint(dir);
    c.env("WATTPRINT_CHECKPOINT_S", "0.1")
        .env("WATTPRINT_ZONE", "FR")
        .current_dir(dir);
    c
}

/// Polls `f` every 20 ms until it gives a value, failing after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout_of(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_sigkilled_run_leaves_an_interrupted_record_with_its_last_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_fake_procfs(
        &dir.join("proc"),
        "AMD EPYC 7763 64-Core Processor",
        4,
        2_000_000,
        1000,
        9000,
    )
    .unwrap();
    let pidfile = dir.join("command.pid");
    let mut run = wattprint(dir)
        .args(["run", "--label", "job=long", "--", "sh", "-c"])
        .arg(format!("echo $$ > {}; exec sleep 60", pidfile.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = dir.join("history.sqlite");
    // A checkpoint with energy in it: the run is stored while it runs.
    let (id, first_j) = wait_for("a checkpoint with energy", Duration::from_secs(60), || {
        let s = Store::open(&db).ok()?;
        let runs = s
            .list(&Filter {
                include_running: true,
                ..Default::default()
            })
            .ok()?;
        let r = runs.first()?;
        (r.status == RunStatus::Running && r.energy.total_j > 0.0)
            .then(|| (r.id.clone(), r.energy.total_j))
    });
    // ... and rewritten in place at the next one.
    wait_for("a later checkpoint", Duration::from_secs(60), || {
        let r = Store::open(&db).ok()?.get(&id).ok()??;
        (r.energy.total_j > first_j).then_some(())
    });
    let listed = stdout_of(wattprint(dir).args(["runs"]));
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&id) && l.contains("running")),
        "{listed}"
    );

    run.kill().unwrap(); // SIGKILL: no handler, no final store.
    run.wait().unwrap();
    let command_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the pid the orphaned `sleep` wrote; no memory is touched.
    unsafe { libc::kill(command_pid, libc::SIGKILL) };

    // The last checkpoint, as stored before anything settled it.
    let last = Store::open(&db).unwrap().get(&id).unwrap().unwrap();
    assert_eq!(last.status, RunStatus::Running);
    assert!(last.energy.total_j > first_j);

    let runs: Value =
        serde_json::from_str(&stdout_of(wattprint(dir).args(["runs", "--json"]))).unwrap();
    let r = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the killed run is listed");
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["energy"]["total_j"].as_f64(), Some(last.energy.total_j));
    assert_eq!(r["duration_s"].as_f64(), Some(last.duration_s));
    assert_eq!(r["carbon"]["total_g"].as_f64(), Some(last.carbon.total_g));
    assert_eq!(r["labels"]["job"], "long");
    let warning = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|w| w.starts_with("interrupted:"))
        .expect("an interrupted label in the warnings");
    assert!(warning.contains("is gone"), "{warning}");

    // Reports include it, labelled.
    let md = stdout_of(wattprint(dir).args(["report", &id, "--format", "md"]));
    assert!(md.contains("- status: **interrupted**"), "{md}");
    let esrs: Value = serde_json::from_str(&stdout_of(wattprint(dir).args([
        "report",
        "--format",
        "esrs",
        "--json",
        "--since",
        "2000-01-01",
    ])))
    .unwrap();
    assert_eq!(esrs["interrupted_runs"], 1);
    assert_eq!(esrs["runs"], 1);
    let cmp = stdout_of(wattprint(dir).args(["compare", &id, &id]));
    assert!(cmp.contains("interrupted run(s)"), "{cmp}");
}

#[test]
fn a_finished_run_replaces_its_checkpoints() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write_fake_procfs(&dir.join("proc"), "CPU", 2, 1_000_000, 100, 100).unwrap();
    let o = wattprint(dir)
        .args(["run", "--json", "--", "sleep", "0.5"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let report: Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    assert_eq!(report["status"], "finished");
    let s = Store::open(&dir.join("history.sqlite")).unwrap();
    assert_eq!(s.count().unwrap(), 1);
    let stored = s.get(report["id"].as_str().unwrap()).unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Finished);
    assert_eq!(
        Some(stored.energy.total_j),
        report["energy"]["total_j"].as_f64()
    );
}
