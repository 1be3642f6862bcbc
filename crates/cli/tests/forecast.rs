//! `run`'s forecast from the progress a command reports, `--budget-kwh` and
//! `--stop-over-budget`, on the fake machine: the command plays the hardware (it writes the
//! fake RAPL counter) and reports its progress in the work file, so the energy behind every
//! progress report is known.

use std::path::Path;
use wattprint_sensors::fake_tree::FakeRaplTree;

mod common;

/// A fake package zone (1 kW, a wide range) on the fake machine under `dir`; its counter.
fn rapl(dir: &Path) -> std::path::PathBuf {
    common::fake_machine(dir);
    let t = FakeRaplTree::new(&dir.join("sys")).unwrap();
    t.add_zone("0", "package-0", 0, 262_143_328_850, Some(1_000_000_000))
        .unwrap();
    t.zone_dir("0").join("energy_uj")
}

/// A steady workload of `steps` steps: each step 1 J (the counter it writes) and a progress
/// report, `pause` between steps (only to spread the reports over the watcher's looks: the
/// outcome does not depend on it), then `end` (a shell command).
fn steady_script(counter: &Path, steps: u32, pause: &str, end: &str) -> String {
    format!(
        "k=0; while [ $k -lt {steps} ]; do k=$((k+1)); \
         printf '%020d\\n' $((k*1000000)) > {c}; \
         echo \"step=$k total={steps}\" >> \"$WATTPRINT_WORK_FILE\"; sleep {pause}; done; {end}",
        c = counter.display()
    )
}

#[test]
fn a_run_over_its_budget_is_stopped_and_the_report_says_why() {
    let d = tempfile::tempdir().unwrap();
    let counter = rapl(d.path());
    // 100 steps of 1 J: 100 J at completion, over a budget of 36 J (1e-5 kWh). The command
    // would sleep for a minute after its steps: only the stop ends it early.
    let script = steady_script(&counter, 100, "0.05", "exec sleep 60");
    let a = common::wattprint_assert(d.path())
        .args([
            "run",
            "--json",
            "--no-store",
            "--interval",
            "10ms",
            "--budget-kwh",
            "0.00001",
            "--stop-over-budget",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .assert()
        .code(128 + libc::SIGTERM);
    let out = a.get_output();
    let r = common::json_of(&out.stdout);
    assert_eq!(r["exit_code"], 128 + libc::SIGTERM);
    let f = &r["forecast"];
    let why = f["stopped"].as_str().expect("the reason it was stopped");
    assert!(
        why.contains("--stop-over-budget") && why.contains("over the budget of 0.00001 kWh (36"),
        "{why}"
    );
    assert_eq!(f["over_budget"], true);
    assert_eq!(f["budget_kwh"], 0.00001);
    let e2s = f["energy_to_solution_j"].as_f64().unwrap();
    assert!(e2s > 36.0, "{f:#}");
    assert!(f["energy_to_solution_j_low"].as_f64().unwrap() <= e2s);
    assert!(f["energy_to_solution_j_high"].as_f64().unwrap() >= e2s);
    assert!(f["samples"].as_u64().unwrap() >= 3);
    assert!(f["total_g"].as_f64().unwrap() > 0.0, "{f:#}");
    // Stopped well before the end: the energy measured is below the forecast's.
    assert!(r["energy"]["total_j"].as_f64().unwrap() < e2s);
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("stopped by wattprint")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sending SIGTERM"), "{err}");
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let d = tempfile::tempdir().unwrap();
    let counter = rapl(d.path());
    let script = steady_script(&counter, 100, "0.05", "exec sleep 60");
    let script = format!("trap '' TERM; {script}");
    let a = common::wattprint_assert(d.path())
        .args([
            "run",
            "--json",
            "--no-store",
            "--interval",
            "10ms",
            "--budget-kwh",
            "0.00001",
            "--stop-over-budget",
            "--stop-grace",
            "200ms",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .assert()
        .code(128 + libc::SIGKILL);
    let out = a.get_output();
    let r = common::json_of(&out.stdout);
    assert_eq!(r["exit_code"], 128 + libc::SIGKILL);
    assert!(r["forecast"]["stopped"].as_str().is_some(), "{r:#}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SIGKILL in 0.2 s") && err.contains("outlived SIGTERM"),
        "{err}"
    );
}

#[test]
fn a_budget_without_stop_warns_and_the_command_finishes() {
    let d = tempfile::tempdir().unwrap();
    let counter = rapl(d.path());
    let script = steady_script(&counter, 20, "0.02", "exit 0");
    let a = common::wattprint_assert(d.path())
        .args([
            "run",
            "--json",
            "--no-store",
            "--interval",
            "10ms",
            "--budget-kwh",
            "0.000001",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .assert()
        .success();
    let r = common::json_of(&a.get_output().stdout);
    let pkg = r["energy"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "package-0")
        .unwrap()["joules"]
        .as_f64()
        .unwrap();
    assert!((pkg - 20.0).abs() < 1e-6, "{pkg}");
    let f = &r["forecast"];
    assert_eq!(f["over_budget"], true, "{f:#}");
    assert!(f.get("stopped").is_none());
    assert!((f["progress"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("passed the budget")));
    let err = String::from_utf8_lossy(&a.get_output().stderr);
    assert!(
        err.contains("over the budget of 0.000001 kWh (3.6"),
        "{err}"
    );
}

#[test]
fn no_progress_means_no_forecast_and_a_budget_says_so() {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    let a = common::wattprint_assert(d.path())
        .args(["run", "--json", "--no-store", "--", "true"])
        .assert()
        .success();
    assert!(common::json_of(&a.get_output().stdout)
        .get("forecast")
        .is_none());
    let a = common::wattprint_assert(d.path())
        .args([
            "run",
            "--json",
            "--no-store",
            "--budget-kwh",
            "1",
            "--",
            "true",
        ])
        .assert()
        .success();
    let r = common::json_of(&a.get_output().stdout);
    assert!(r.get("forecast").is_none());
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("reported no progress")));
}

#[test]
fn a_bad_budget_is_refused_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["--budget-kwh", "0"][..],
        &["--budget-kwh", "-1"],
        &["--budget-kwh", "lots"],
        &["--stop-over-budget"],
        &["--budget-kwh", "1", "--stop-grace", "1s"],
        &[
            "--budget-kwh",
            "1",
            "--stop-over-budget",
            "--stop-grace",
            "0s",
        ],
    ] {
        let a = common::wattprint_assert(d.path())
            .arg("run")
            .args(args)
            .args(["--", "sh", "-c", "echo ran"])
            .assert()
            .code(2);
        assert!(a.get_output().stdout.is_empty(), "{args:?}");
    }
}
