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
        .arg("--export-html")
        .arg(d.path().join("b.html"))
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
    // The fake machine's power is constant, so each run's energy is that power times its
    // time (timing itself depends on the load of the machine running the tests).
    let mean = |k: usize, q: &str| groups[k][q]["mean"].as_f64().unwrap();
    for k in 0..3 {
        let want = mean(k, "power_w") * mean(k, "time_s");
        assert!((mean(k, "energy_j") - want).abs() < 0.01 * want, "{stderr}");
    }
    assert!(
        mean(1, "time_s") >= 0.3 && mean(0, "time_s") >= 0.05,
        "{stderr}"
    );
    // The recommendation is the lowest energy per inference; never the 0.3 s sleep, which
    // takes 0.25 s more than the 0.05 s one at the same power.
    let rec = b["recommended"].as_u64().unwrap() as usize;
    let lowest = (0..3)
        .min_by(|&i, &j| mean(i, "j_per_unit").total_cmp(&mean(j, "j_per_unit")))
        .unwrap();
    assert_eq!(rec, lowest + 1, "{stderr}");
    assert_ne!(rec, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("x the energy per inference of [{rec}]")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("recommended: [{rec}] ")),
        "{stderr}"
    );
    let csv = std::fs::read_to_string(d.path().join("b.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let md = std::fs::read_to_string(d.path().join("b.md")).unwrap();
    assert!(md.contains("| [2] t=0.3 |"), "{md}");
    let html = std::fs::read_to_string(d.path().join("b.html")).unwrap();
    assert!(
        html.contains(&format!(r#"data-recommended="{rec}""#)),
        "{html}"
    );
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

/// The fake NVML compiled into `dir`, and `cmd` pointed at it with GPU 0 the job's only GPU
/// and every limit change written to `dir/calls`.
fn with_fake_nvml(cmd: &mut std::process::Command, dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sensors/tests/fake_nvml/fake_nvml.c");
    let lib = dir.join("libnvidia-ml.so.1");
    let ok = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("running cc (a C compiler is needed for the fake NVML library)")
        .success();
    assert!(ok, "cc failed on {}", src.display());
    let calls = dir.join("calls");
    cmd.env("WATTPRINT_NVML_LIB", &lib)
        .env("CUDA_VISIBLE_DEVICES", "0")
        .env("FAKE_NVML_LOST_AFTER_READS", "1000000")
        .env("FAKE_NVML_CALLS_FILE", &calls);
    calls
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_gpu_power_limit_sweep_sets_each_limit_and_restores_the_previous_one() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint(d.path());
    let calls = with_fake_nvml(&mut c, d.path());
    let out = c
        .args(["bench", "--runs", "2", "--gpu-power-limit", "300,400"])
        .arg("--export-json")
        .arg(d.path().join("b.json"))
        .args(["--", "true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !is_root() {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("NVML allows root only"), "{stderr}");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    // GPU 0 (the job's only GPU; its limit was 700 W): 300 W, 400 W, then 700 W again.
    let seen = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        seen, "set 0 300000\nset 0 400000\nset 0 700000\n",
        "{stderr}"
    );
    assert!(
        stderr.contains("GPU power limits before the sweep: gpu-0 700 W"),
        "{stderr}"
    );
    let b = export_json(d.path(), "b.json");
    assert_eq!(b["groups"][1]["parameters"]["gpu_power_limit_w"], "400");
    // Out of the driver's range (175 .. 700 W): refused before anything is set or run.
    std::fs::remove_file(&calls).unwrap();
    let mut c = wattprint(d.path());
    with_fake_nvml(&mut c, d.path());
    let out = c
        .args([
            "bench",
            "--runs",
            "1",
            "--gpu-power-limit",
            "300,900",
            "true",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("900 W is outside"), "{stderr}");
    assert!(!calls.exists(), "nothing was set");
}

#[test]
fn sigterm_in_the_middle_of_a_sweep_restores_the_gpu_power_limit() {
    if !is_root() {
        return; // Setting limits is root only: the refusal is tested above.
    }
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint(d.path());
    let calls = with_fake_nvml(&mut c, d.path());
    let started = d.path().join("started");
    let child = c
        .args(["bench", "--runs", "3", "--gpu-power-limit", "300,400", "--"])
        .arg(format!("touch {}; sleep 30", started.display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the first run's command is running under 300 W.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 15), "{stderr}");
    assert!(stderr.contains("interrupted by signal 15"), "{stderr}");
    assert!(stderr.contains("GPU power limits restored"), "{stderr}");
    let seen = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        seen, "set 0 300000\nset 0 700000\n",
        "never 400 W, and 700 W back"
    );
}

#[test]
fn cooldown_auto_measures_the_idle_baseline_and_waits_for_it() {
    // The fake machine's power is constant: every wait ends at its first check, and the
    // baseline it measured is the model's idle power.
    let d = tempfile::tempdir().unwrap();
    let out = wattprint_assert(d.path())
        .args([
            "bench",
            "--no-store",
            "--runs",
            "2",
            "--cooldown",
            "auto",
            "true",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let baseline = stderr
        .lines()
        .find_map(|l| l.strip_prefix("wattprint: idle baseline "))
        .unwrap_or_else(|| panic!("no baseline line: {stderr}"));
    assert!(
        baseline.ends_with(" W") && !baseline.starts_with("0 "),
        "{baseline}"
    );
    assert!(!stderr.contains("after 60 s of cool-down"), "{stderr}");
    let bad = wattprint(d.path())
        .args(["bench", "--cooldown", "soon", "true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("or `auto`"));
}
