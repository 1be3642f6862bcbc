//! GPUs end to end through the binary: a fake `libnvidia-ml.so.1` compiled from C by the test
//! and named by `WATTPRINT_NVML_LIB` (set for the wattprint child only), declared work on the
//! command line and through the work file, FLOPs/W and GPU attribution in the report.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn fake_nvml(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sensors/tests/fake_nvml/fake_nvml.c");
    let out = dir.join("libnvidia-ml.so.1");
    let ok = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running cc (a C compiler is needed for the fake NVML library)")
        .success();
    assert!(ok, "cc failed on {}", src.display());
    out
}

mod common;
use common::json_of;

/// wattprint with the fake NVML, no RAPL, and a fake procfs for the CPU model.
fn wattprint(dir: &Path) -> Command {
    let mut c = common::wattprint_assert(dir);
    c.env("WATTPRINT_NVML_LIB", fake_nvml(dir));
    c
}

fn domain<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["energy"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no domain {name} in {}", r["energy"]))
}

#[test]
fn sensors_lists_the_gpus_and_how_each_is_read() {
    let d = tempfile::tempdir().unwrap();
    let out = wattprint(d.path()).arg("sensors").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("GPUs:"), "{text}");
    assert!(
        text.contains("gpu-0: NVIDIA H100 80GB HBM3 [GPU-00000000-0000-0000-0000-000000000000] via nvml, energy counter, power limit 700 W"),
        "{text}"
    );
    assert!(text.contains("MIG enabled"), "{text}");
    assert!(text.contains("amdsmi:"), "{text}");
}

#[test]
fn a_run_measures_the_gpus_and_computes_flops_per_watt() {
    let d = tempfile::tempdir().unwrap();
    let out = wattprint(d.path())
        .args([
            "run",
            "--no-store",
            "--json",
            "--flops",
            "1e12",
            "--tokens",
            "1000",
            "--",
        ])
        .args([
            "sh",
            "-c",
            "printf 'flops=5e11\\ninferences=4\\nbogus\\n' >> \"$WATTPRINT_WORK_FILE\"; sleep 1.5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out.stdout);
    let dt = r["duration_s"].as_f64().unwrap();
    assert!(dt >= 1.5, "{dt}");
    // Scripted: 300 W counter, 150 W instantaneous (not the 999 W average), 70 W average.
    for (name, watts, method) in [
        ("gpu-0", 300.0, "counter"),
        ("gpu-1", 150.0, "power"),
        ("gpu-2", 70.0, "power"),
        ("gpu-4", 200.0, "counter"),
    ] {
        let g = domain(&r, name);
        assert_eq!(g["method"], method, "{name}");
        assert_eq!(g["kind"], "gpu");
        let j = g["joules"].as_f64().unwrap();
        let want = watts * dt;
        assert!(
            (j - want).abs() / want <= 0.005,
            "{name}: {j} J vs {want} J"
        );
    }
    // Name, UUID, power limit and MIG mode are recorded per GPU.
    let gpus = r["host"]["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 5);
    assert_eq!(gpus[0]["power_limit_w"], 700.0);
    assert_eq!(gpus[0]["uuid"], "GPU-00000000-0000-0000-0000-000000000000");
    assert_eq!(gpus[4]["mig_enabled"], true);
    // The lost GPU: a gap and a warning, not a failure.
    assert!(r["energy"]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["domain"] == "gpu-3"));
    // Work: declared plus the work file; the bad line is reported with its number.
    assert_eq!(r["work"]["flops"], 1.5e12);
    assert_eq!(r["work"]["inferences"], 4.0);
    assert_eq!(r["work"]["tokens"], 1000.0);
    assert_eq!(
        r["work"]["flops_formula"],
        "declared (--flops) + work file flops= lines"
    );
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("line 3: `bogus` is not key=value"),
        "{warnings}"
    );
    let e2s = r["metrics"]["energy_to_solution_j"].as_f64().unwrap();
    let gpu_j: f64 = r["energy"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "gpu")
        .map(|d| d["joules"].as_f64().unwrap())
        .sum();
    // Same formulas as the report; the sums may be taken in another order (last-bit noise).
    let close = |k: &str, want: f64| {
        let got = r["metrics"][k].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-12 * want.abs(),
            "{k}: {got} vs {want}"
        );
    };
    close("flops_per_watt", 1.5e12 / e2s);
    close("gpu_flops_per_watt", 1.5e12 / gpu_j);
    close("joules_per_token", e2s / 1000.0);
    close("joules_per_inference", e2s / 4.0);
    // All five GPUs are in the table (the lost L4 too: it was used): Σ peaks / Σ TDPs at bf16.
    let peak =
        (989.4e12 + 312e12 + 65e12 + 121e12 + 312e12) / (700.0 + 300.0 + 70.0 + 72.0 + 400.0);
    let got = r["metrics"]["peak_flops_per_watt"].as_f64().unwrap();
    assert!((got - peak).abs() / peak < 1e-12, "{got} vs {peak}");
    assert!(r["metrics"]["peak_flops_source"]
        .as_str()
        .unwrap()
        .contains("H100-SXM5-80GB (whitepaper)"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FLOPs/W achieved:"), "{stderr}");
    assert!(stderr.contains("FLOPs/W peak:"), "{stderr}");
}

#[test]
fn gpt3_declaration_gives_3_15e23_flops_in_the_report() {
    let d = tempfile::tempdir().unwrap();
    let out = wattprint(d.path())
        .args([
            "run",
            "--no-store",
            "--json",
            "--params",
            "175e9",
            "--tokens",
            "300e9",
        ])
        .args(["--mode", "train", "--", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out.stdout);
    assert_eq!(r["work"]["flops"].as_f64(), Some(3.15e23));
    assert!(r["work"]["flops_formula"]
        .as_str()
        .unwrap()
        .starts_with("6*N*D (train mode"));
}

#[test]
fn nonsense_work_is_refused_before_the_command_runs() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let out = wattprint(d.path())
        .args(["run", "--no-store", "--flops", "-1", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--flops -1 is negative"));
    assert!(!marker.exists());
}

#[test]
fn a_shared_gpu_is_attributed_by_the_jobs_utilisation() {
    let d = tempfile::tempdir().unwrap();
    let procs = d.path().join("procs.txt");
    // The job writes its own PID (60 % SM) beside PID 1 (20 %), a neighbour, for GPU 0.
    let out = wattprint(d.path())
        .env("FAKE_NVML_PROCS_FILE", &procs)
        .env("WATTPRINT_PROCFS_ROOT", "/proc")
        .args(["run", "--no-store", "--json", "--", "sh", "-c"])
        .arg(format!(
            "echo \"$$:60,1:20\" > {}; sleep 1.2",
            procs.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out.stdout);
    let a = &r["energy"]["gpu_attribution"];
    assert!(a.is_object(), "no gpu_attribution: {}", r["warnings"]);
    let gpu0 = domain(&r, "gpu-0")["joules"].as_f64().unwrap();
    let job = a["job_j"].as_f64().unwrap();
    assert!((job - 0.75 * gpu0).abs() <= 1e-9 * gpu0, "{job} vs {gpu0}");
    assert!(a["method"].as_str().unwrap().contains("SM utilisation"));
    // GPUs without process samples are idle, charged to nobody.
    assert!(a["idle_j"].as_f64().unwrap() > 0.0);
}
