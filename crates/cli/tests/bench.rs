//! `wattprint bench` end to end on the fake machine (the utilisation model at a constant
//! power, so a run's energy is that power times its duration): groups, sweeps, failed runs,
//! exports, the history's labels, the gate between bench groups, and bad input.

mod common;

use common::{wattprint, wattprint_assert};
use std::path::Path;

fn export_json(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn a_sweep_measures_each_configuration_and_stores_each_run_with_its_bench_labels() {
    let d = tempfile::tempdir().unwrap();
    let out = wattprint_assert(d.path())
        .args([
            "bench",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--inferences",
            "100",
        ])
        .args(["--parameter-list", "t", "0.05,0.3"])
        .arg("--export-json")
        .arg(d.path().join("b.json"))
        .arg("--export-csv")
        .arg(d.path().join("b.csv"))
        .arg("--export-markdown")
        .arg(d.path().join("b.md"))
        .args(["--label", "team=search", "--", "sleep {t}", "true"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let b = export_json(d.path(), "b.json");
    assert_eq!(b["schema"], "wattprint.bench/v1");
    let groups = b["groups"].as_array().unwrap();
    // `true` uses no parameter: one group, not one per value.
    assert_eq!(groups.len(), 3, "{stderr}");
    assert_eq!(groups[0]["command"], "sleep 0.05");
    assert_eq!(groups[1]["parameters"]["t"], "0.3");
    assert_eq!(groups[2]["command"], "true");
    for g in groups {
        assert_eq!(
            g["run_ids"].as_array().unwrap().len(),
            3,
            "warm-ups discarded"
        );
        let e = &g["energy_j"];
        assert!(e["mean"].as_f64().unwrap() > 0.0);
        assert!(e["ci"]["low"].as_f64().unwrap() <= e["mean"].as_f64().unwrap());
        assert!(g["j_per_unit"]["mean"].as_f64().unwrap() > 0.0, "{g}");
    }
    // 0.3 s of sleep takes more energy than 0.05 s at the same power: sleep 0.05 is
    // fastest, `true` uses least energy and is fastest, so it alone is the front.
    let e = |k: usize| groups[k]["energy_j"]["mean"].as_f64().unwrap();
    assert!(e(1) > 3.0 * e(0), "{stderr}");
    assert_eq!(b["recommended"], 3, "{stderr}");
    assert!(
        stderr.contains("x the energy per inference of [3]"),
        "{stderr}"
    );
    assert!(stderr.contains("recommended: [3] true"), "{stderr}");
    let csv = std::fs::read_to_string(d.path().join("b.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let md = std::fs::read_to_string(d.path().join("b.md")).unwrap();
    assert!(md.contains("| [2] t=0.3 |"), "{md}");
    // Every measured run is in the history with the bench's labels (warm-ups are not).
    let id = b["bench_id"].as_str().unwrap();
    let runs = wattprint_assert(d.path())
        .args(["runs", "--json", "--label", &format!("bench={id}")])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let runs: serde_json::Value = serde_json::from_slice(&runs).unwrap();
    let runs = runs.as_array().expect("an array of runs");
    assert_eq!(runs.len(), 9);
    assert!(runs.iter().all(|r| r["labels"]["team"] == "search"));
    assert!(runs
        .iter()
        .any(|r| r["labels"]["t"] == "0.3" && r["labels"]["bench.group"] == "2"));
}

#[test]
fn failed_runs_are_reported_and_not_averaged_in() {
    let d = tempfile::tempdir().unwrap();
    let counter = d.path().join("n");
    // Fails on every other run: 1st ok, 2nd exit 3, 3rd ok, 4th exit 3.
    let cmd = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $((n % 2)) -eq 0 ] || exit 3",
        c = counter.display()
    );
    let out = wattprint_assert(d.path())
        .args(["bench", "--no-store", "--runs", "4", "--export-json"])
        .arg(d.path().join("b.json"))
        .arg(&cmd)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FAILED 2 of 4 runs, not averaged in"),
        "{stderr}"
    );
    let b = export_json(d.path(), "b.json");
    let g = &b["groups"][0];
    assert_eq!(g["failed"].as_array().unwrap().len(), 2);
    assert_eq!(g["failed"][0]["exit_code"], 3);
    assert_eq!(g["energy_j"]["n"], 2);
}

#[test]
fn the_gate_between_bench_groups_passes_the_same_group_and_fails_a_tenfold_one() {
    let d = tempfile::tempdir().unwrap();
    wattprint_assert(d.path())
        .args(["bench", "--runs", "3", "--export-json"])
        .arg(d.path().join("b.json"))
        .args(["--", "sleep 0.05", "sleep 0.5"])
        .assert()
        .success();
    let id = export_json(d.path(), "b.json")["bench_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (g1, g2) = (format!("bench:{id}/1"), format!("bench:{id}/2"));
    let same = wattprint_assert(d.path())
        .args(["compare", &g1, &g1, "--fail-over", "5%"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&same).contains("confidence interval"));
    // Ten times the sleep at the same power: far beyond any noise of three runs a side.
    let worse = wattprint_assert(d.path())
        .args(["compare", &g1, &g2, "--fail-over", "5%"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let worse = String::from_utf8_lossy(&worse);
    assert!(worse.contains("FAIL: B is"), "{worse}");
    assert!(worse.contains("significant"), "{worse}");
    let missing = wattprint(d.path())
        .args(["compare", &format!("bench:{id}/9"), &g1])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no successful stored run of bench"),
        "{stderr}"
    );
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let touch = format!("touch {} {{b}}", marker.display());
    let cases: [(&[&str], &str); 5] = [
        (&["bench", "--runs", "0", "true"], "give 1 or more"),
        (&["bench"], "no command to benchmark"),
        (
            &["bench", "--parameter-list", "b", "", &touch],
            "the list is empty",
        ),
        (
            &["bench", "--parameter-list", "batch", "1,2", &touch],
            "parameter `batch` never appears in a command: write `{batch}`",
        ),
        (
            &["bench", "--parameter-scan", "b", "5", "1", &touch],
            "MIN 5 is above MAX 1",
        ),
    ];
    for (args, message) in cases {
        let out = wattprint(d.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!marker.exists(), "nothing ran");
}
