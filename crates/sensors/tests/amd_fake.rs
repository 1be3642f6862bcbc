//! amdsmi through the real loading path: a fake `libamd_smi.so` compiled from C by this test,
//! loaded by a child process (this test binary re-run; amdsmi loads once per process), and
//! the hwmon fallback when no amdsmi is usable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wattprint_sensors::amd;
use wattprint_sensors::{Meter, MeterOptions};

const CHILD_ENV: &str = "WATTPRINT_AMD_TEST_CHILD";
const SYSFS_ENV: &str = "WATTPRINT_AMD_TEST_SYSFS";

fn fake_lib(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_amdsmi/fake_amdsmi.c");
    let out = dir.join("libamd_smi.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running cc (a C compiler is needed for the fake amdsmi library)");
    assert!(status.success(), "cc failed");
    out
}

fn child(scenario: &str, lib: &Path, sysfs: &Path, extra: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process_entry_point",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, scenario)
    .env(amd::AMDSMI_LIB_ENV, lib)
    .env(SYSFS_ENV, sysfs);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed: {stdout}");
    stdout
        .lines()
        .filter_map(|l| l.find("@@ ").map(|i| l[i + 3..].to_string()))
        .collect()
}

/// The child side: does nothing unless the parent set [`CHILD_ENV`].
#[test]
fn child_process_entry_point() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    let lib = std::env::var_os(amd::AMDSMI_LIB_ENV).map(PathBuf::from);
    let sysfs = std::env::var_os(SYSFS_ENV).map(PathBuf::from).unwrap();
    let d = amd::discover(lib.as_deref(), &sysfs);
    for a in &d.absent {
        println!("@@ ABSENT {} {}", a.source, a.reason);
    }
    for g in &d.devices {
        println!("@@ DEVICE {}", g.describe());
    }
    if scenario != "meter" {
        return;
    }
    let mut meter = Meter::start(d.sensors, MeterOptions::default());
    let domains = meter.domains();
    let w = meter.begin("run");
    // Long enough that scheduling delays between the meter's clock and the library's (a few ms
    // on a loaded machine) stay well inside 0.5 %.
    std::thread::sleep(Duration::from_millis(1500));
    let e = meter.end(w).unwrap();
    meter.stop();
    for (dom, j) in domains.iter().zip(&e.per_domain) {
        println!("@@ ENERGY {} {} {}", dom.name, j.0, e.duration_s());
    }
}

#[test]
fn amdsmi_energy_matches_the_scripted_accumulators() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child("meter", &lib, dir.path(), &[]);
    let energy = |name: &str| -> (f64, f64) {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("ENERGY {name} ")))
            .unwrap_or_else(|| panic!("{name}: {lines:?}"));
        let f: Vec<&str> = l.split(' ').collect();
        (f[2].parse().unwrap(), f[3].parse().unwrap())
    };
    for (name, watts) in [("amdgpu-0", 500.0), ("amdgpu-1", 250.0)] {
        let (j, dt) = energy(name);
        let want = watts * dt;
        assert!(
            (j - want).abs() / want <= 0.005,
            "{name}: {j} J vs {want} J expected"
        );
    }
    assert!(lines.contains(
        &"DEVICE amdgpu-0: AMD Instinct MI300X [aa000000-0000-0000-0000-000000000000] via amdsmi, energy counter".to_string()
    ), "{lines:?}");
    // The processor without an energy counter is absent, and hwmon is not used.
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ABSENT amdsmi amdgpu-2: no energy counter")));
    assert!(lines.iter().any(|l| l.starts_with("ABSENT hwmon not used")));
}

#[test]
fn amdsmi_init_failure_falls_back_to_hwmon() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let hw = dir.path().join("sys/class/hwmon/hwmon3");
    std::fs::create_dir_all(&hw).unwrap();
    std::fs::write(hw.join("name"), "amdgpu\n").unwrap();
    std::fs::write(hw.join("power1_average"), "88000000\n").unwrap();
    let lines = child(
        "list",
        &lib,
        &dir.path().join("sys"),
        &[("FAKE_AMDSMI_INIT_FAIL", "1")],
    );
    assert!(
        lines[0].starts_with("ABSENT amdsmi ") && lines[0].contains("amdsmi_init failed"),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "DEVICE amdgpu-0: AMD GPU (hwmon3) via hwmon, power polled (averaged by the driver: \
         short windows are smoothed)"
    );
}

#[test]
fn a_library_that_is_not_amdsmi_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.c");
    std::fs::write(&src, "int unrelated(void) { return 1; }\n").unwrap();
    let lib = dir.path().join("libx.so");
    assert!(Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    let lines = child("list", &lib, dir.path(), &[]);
    assert!(lines[0].contains("is not amdsmi"), "{lines:?}");
}
