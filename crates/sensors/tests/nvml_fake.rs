//! NVML through the real loading path: a fake `libnvidia-ml.so.1` compiled from C by this
//! test (`cc -shared -fPIC`), loaded by a child process (this test binary re-run) with
//! `WATTPRINT_NVML_LIB` set for the child only. NVML initialises once per process, so each
//! scenario runs in its own child.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use wattprint_sensors::nvml;
use wattprint_sensors::{Meter, MeterOptions};

const CHILD_ENV: &str = "WATTPRINT_NVML_TEST_CHILD";

fn compile(dir: &Path, src: &Path, out_name: &str) -> PathBuf {
    let out = dir.join(out_name);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .expect("running cc (a C compiler is needed for the fake NVML library)");
    assert!(status.success(), "cc failed on {}", src.display());
    out
}

fn fake_lib(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nvml/fake_nvml.c");
    compile(dir, &src, "libnvidia-ml.so.1")
}

/// Run `scenario` in a child process with `envs`, returning its stdout lines.
fn child(scenario: &str, envs: &[(&str, &Path)], extra: &[(&str, &str)]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child_process_entry_point",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, scenario);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {scenario} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        // libtest may print `test NAME ... ` before the child's first line.
        .filter_map(|l| l.find("@@ ").map(|i| l[i + 3..].to_string()))
        .collect()
}

/// The child side: does nothing unless the parent set [`CHILD_ENV`].
#[test]
fn child_process_entry_point() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    let lib = std::env::var_os(nvml::NVML_LIB_ENV).map(PathBuf::from);
    if scenario == "limits" {
        return power_limits(lib.as_deref());
    }
    let d = nvml::discover(lib.as_deref());
    for a in &d.absent {
        println!(
            "@@ ABSENT {} | {}",
            a.reason,
            a.fix.clone().unwrap_or_default()
        );
    }
    for g in &d.devices {
        println!("@@ DEVICE {}", g.describe());
        println!(
            "@@ IDS {} {} {}",
            g.domain,
            g.pci_bus_id.as_deref().unwrap_or("-"),
            g.mig_uuids.join(",")
        );
    }
    if scenario != "meter" && scenario != "retain" {
        return;
    }
    let mut sampler = d.process_sampler;
    let mut sensors = d.sensors;
    if scenario == "retain" {
        // The job's GPUs: gpu-1 (power) and gpu-4 (counter); gpu-3, lost, is not the job's.
        let keep = |dom: &wattprint_core::DomainDesc| dom.name == "gpu-1" || dom.name == "gpu-4";
        for s in sensors.iter_mut() {
            assert!(s.retain_domains(&keep));
        }
        sensors.retain(|s| !s.info().domains.is_empty());
        if let Some(s) = sampler.as_mut() {
            s.retain_gpus(|i| i == 1);
        }
    }
    let mut meter = Meter::start(sensors, MeterOptions::default());
    let domains = meter.domains();
    let w = meter.begin("run");
    // Long enough that scheduling delays between the meter's clock and the library's (a few ms
    // on a loaded machine) stay well inside 0.5 %.
    std::thread::sleep(Duration::from_millis(1500));
    let e = meter.end(w).unwrap();
    meter.stop();
    for (dom, j) in domains.iter().zip(&e.per_domain) {
        println!(
            "@@ ENERGY {} {} {} {}",
            dom.name,
            dom.method,
            j.0,
            e.duration_s()
        );
    }
    for g in meter.gaps() {
        println!("@@ GAP {} {}", g.domain, g.reason);
    }
    if let Some(s) = sampler.as_mut() {
        for p in s.sample() {
            println!("@@ PROC {} {} {}", p.gpu_index, p.pid, p.sm_util_pct);
        }
        println!("@@ PROC-AGAIN {}", s.sample().len());
    }
}

/// The `limits` scenario: GPU 0's limit set to 300 W, then a panic with the limiter alive;
/// the calls file says what the driver saw.
fn power_limits(lib: Option<&Path>) {
    let mut l = nvml::PowerLimiter::open(lib, |i| i == 0).unwrap();
    let g0 = &l.limits()[0];
    println!(
        "@@ LIMIT {} {} {} {}",
        g0.index, g0.previous_w, g0.min_w, g0.max_w
    );
    println!("@@ RANGE {}", l.set_w(100.0).unwrap_err());
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        l.set_w(300.0).unwrap();
        panic!("the benchmark failed half-way");
    }));
    println!("@@ PANICKED {}", unwound.is_err());
    let everything = nvml::PowerLimiter::open(lib, |_| true).unwrap();
    println!("@@ GPUS {}", everything.limits().len());
}

#[test]
fn a_power_limit_is_restored_when_the_code_that_set_it_panics() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let calls = dir.path().join("calls");
    let lines = child(
        "limits",
        &[(nvml::NVML_LIB_ENV, &lib), ("FAKE_NVML_CALLS_FILE", &calls)],
        &[],
    );
    assert!(
        lines.contains(&"LIMIT 0 700 175 700".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("RANGE gpu-0: 100 W is outside")
            && l.contains("(175 .. 700 W)")),
        "{lines:?}"
    );
    assert!(lines.contains(&"PANICKED true".to_string()), "{lines:?}");
    assert!(lines.contains(&"GPUS 5".to_string()), "{lines:?}");
    // Set to 300 W, then the previous 700 W put back by the drop during unwinding; the
    // refused 100 W never reached the driver.
    let seen = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(seen, "set 0 300000\nset 0 700000\n");
}

fn energy_of<'a>(lines: &'a [String], domain: &str) -> (&'a str, f64, f64) {
    let l = lines
        .iter()
        .find(|l| l.starts_with(&format!("ENERGY {domain} ")))
        .unwrap_or_else(|| panic!("no energy line for {domain}: {lines:?}"));
    let f: Vec<&str> = l.split(' ').collect();
    (f[2], f[3].parse().unwrap(), f[4].parse().unwrap())
}

fn assert_within(domain: &str, got_j: f64, want_j: f64, rel: f64) {
    let err = (got_j - want_j).abs() / want_j;
    assert!(
        err <= rel,
        "{domain}: {got_j} J vs {want_j} J expected ({:.3} % off)",
        err * 100.0
    );
}

#[test]
fn gpu_energy_matches_the_scripted_counters_within_half_a_percent() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child(
        "meter",
        &[(nvml::NVML_LIB_ENV, &lib)],
        &[("FAKE_NVML_PROCS", "4242:60,777:20")],
    );
    // Counter GPUs: 300 W (H100) and 200 W (MIG-enabled A100) over the window.
    let (method, j, dt) = energy_of(&lines, "gpu-0");
    assert_eq!(method, "counter");
    assert!(dt >= 1.5, "window {dt} s");
    assert_within("gpu-0", j, 300.0 * dt, 0.005);
    let (method, j, dt) = energy_of(&lines, "gpu-4");
    assert_eq!(method, "counter");
    assert_within("gpu-4", j, 200.0 * dt, 0.005);
    // Power-only GPU with the instantaneous field: 150 W, not the 999 W 1 s average.
    let (method, j, dt) = energy_of(&lines, "gpu-1");
    assert_eq!(method, "power");
    assert_within("gpu-1", j, 150.0 * dt, 0.005);
    // Power-only GPU without field 186: the average, 70 W.
    let (method, j, dt) = energy_of(&lines, "gpu-2");
    assert_eq!(method, "power");
    assert_within("gpu-2", j, 70.0 * dt, 0.005);
    // The GPU lost mid-run: a gap, less energy than a full window, and the others unharmed.
    let (_, j, dt) = energy_of(&lines, "gpu-3");
    assert!(j < 72.0 * dt * 0.5, "lost GPU still counted {j} J");
    let gaps: Vec<&String> = lines.iter().filter(|l| l.starts_with("GAP ")).collect();
    assert!(!gaps.is_empty(), "no gap recorded: {lines:?}");
    assert!(
        gaps.iter().all(|g| g.starts_with("GAP gpu-3 ")),
        "gaps on healthy GPUs: {gaps:?}"
    );
    assert!(gaps[0].contains("fell off the bus"), "{gaps:?}");
}

#[test]
fn devices_report_name_uuid_power_limit_and_mig() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child("list", &[(nvml::NVML_LIB_ENV, &lib)], &[]);
    let devices: Vec<&String> = lines.iter().filter(|l| l.starts_with("DEVICE ")).collect();
    assert_eq!(devices.len(), 5, "{lines:?}");
    assert_eq!(
        devices[0].as_str(),
        "DEVICE gpu-0: NVIDIA H100 80GB HBM3 [GPU-00000000-0000-0000-0000-000000000000] via \
         nvml, energy counter, power limit 700 W"
    );
    assert!(devices[1].contains("power polled (instantaneous field)"));
    assert!(devices[2].contains("Tesla T4") && devices[2].contains("averaged by the driver"));
    assert!(devices[4].contains("MIG enabled"), "{}", devices[4]);
    assert!(!lines.iter().any(|l| l.starts_with("ABSENT")), "{lines:?}");
}

#[test]
fn devices_carry_pci_bus_ids_and_mig_instance_uuids() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child("list", &[(nvml::NVML_LIB_ENV, &lib)], &[]);
    let ids: Vec<&String> = lines.iter().filter(|l| l.starts_with("IDS ")).collect();
    assert_eq!(ids[1].as_str(), "IDS gpu-1 00000000:11:00.0 ", "{lines:?}");
    // MIG slots are listed, the empty one skipped.
    assert_eq!(
        ids[4].as_str(),
        "IDS gpu-4 00000000:14:00.0 MIG-44444444-aaaa-5555-8888-000000000001,\
         MIG-44444444-bbbb-5555-8888-000000000002"
    );
}

#[test]
fn retained_sensors_read_only_the_kept_gpus() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child(
        "retain",
        &[(nvml::NVML_LIB_ENV, &lib)],
        &[("FAKE_NVML_PROCS", "4242:60")],
    );
    let energies: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("ENERGY "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(energies, ["gpu-4", "gpu-1"], "{lines:?}");
    let (_, j, dt) = energy_of(&lines, "gpu-1");
    assert_within("gpu-1", j, 150.0 * dt, 0.005);
    // The lost gpu-3 is no longer read: no gap. GPU 0's samples are not sampled.
    assert!(!lines.iter().any(|l| l.starts_with("GAP ")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("PROC ")), "{lines:?}");
}

#[test]
fn process_utilisation_samples_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child(
        "meter",
        &[(nvml::NVML_LIB_ENV, &lib)],
        &[("FAKE_NVML_PROCS", "4242:60,777:20")],
    );
    let procs: Vec<&String> = lines.iter().filter(|l| l.starts_with("PROC ")).collect();
    assert_eq!(procs, ["PROC 0 4242 60", "PROC 0 777 20"]);
}

#[test]
fn init_failure_is_an_absent_entry_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let lines = child(
        "list",
        &[(nvml::NVML_LIB_ENV, &lib)],
        &[("FAKE_NVML_INIT_FAIL", "1")],
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("the NVIDIA driver is not running"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("nvidia-smi must work"), "{}", lines[0]);
}

#[test]
fn a_library_that_is_not_nvml_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("other.c");
    std::fs::write(&src, "int not_nvml(void) { return 42; }\n").unwrap();
    let lib = compile(dir.path(), &src, "libother.so");
    let lines = child("list", &[(nvml::NVML_LIB_ENV, &lib)], &[]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("is not NVML"), "{}", lines[0]);
    assert!(lines[0].contains("libnvidia-ml.so.1"), "{}", lines[0]);
}

#[test]
fn a_missing_library_is_absent_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("nowhere/libnvidia-ml.so.1");
    let lines = child("list", &[(nvml::NVML_LIB_ENV, &lib)], &[]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("could not be loaded"), "{}", lines[0]);
}
