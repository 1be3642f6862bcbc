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

/// `wattprint run --json` on the fake node with `envs`; the report, and stderr.
fn run_with(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> (serde_json::Value, String) {
    let mut c = wattprint(dir);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c
        .args(["run", "--no-store", "--json", "--zone", "FR"])
        .args(args)
        .args(["--", "sleep", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (json_of(&out.stdout), stderr)
}

fn gpu_domains(r: &serde_json::Value) -> Vec<String> {
    r["energy"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "gpu")
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

fn other_gpus(r: &serde_json::Value) -> Vec<(String, String)> {
    r["host"]["other_gpus"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| {
                    (
                        g["domain"].as_str().unwrap().to_string(),
                        g["reason"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// ARCHITECTURE.md invariant: a job is charged for the devices it can see.
#[test]
fn a_job_is_charged_for_the_devices_it_can_see() {
    let d = tempfile::tempdir().unwrap();
    let (r, stderr) = run_with(
        d.path(),
        &[
            ("CUDA_VISIBLE_DEVICES", "1"),
            ("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
        ],
        &[],
    );
    // Only GPU 1 (A100 PCIe, 150 W instantaneous) is measured and in the total.
    assert_eq!(gpu_domains(&r), ["gpu-1"]);
    let dt = r["duration_s"].as_f64().unwrap();
    let g1 = domain(&r, "gpu-1")["joules"].as_f64().unwrap();
    assert!((g1 - 150.0 * dt).abs() / (150.0 * dt) <= 0.005, "{g1}");
    let cpu_j: f64 = r["energy"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] != "gpu" && d["counted_in_total"] == true)
        .map(|d| d["joules"].as_f64().unwrap())
        .sum();
    let e2s = r["metrics"]["energy_to_solution_j"].as_f64().unwrap();
    assert!(
        (e2s - (cpu_j + g1)).abs() <= 1e-9 * e2s,
        "{e2s} vs {cpu_j} + {g1}"
    );
    // The node's others are listed as not the job's, with why.
    let others = other_gpus(&r);
    assert_eq!(
        others.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        ["gpu-0", "gpu-2", "gpu-3", "gpu-4"]
    );
    assert!(others
        .iter()
        .all(|(_, why)| why == "not in CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"));
    assert_eq!(
        r["host"]["gpu_selection"],
        "CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"
    );
    assert_eq!(r["host"]["gpus"].as_array().unwrap().len(), 1);
    assert_eq!(
        r["host"]["gpu_models"],
        serde_json::json!(["NVIDIA A100 80GB PCIe"])
    );
    // The lost GPU 3 is not the job's: not read, so no gap.
    assert!(r["energy"]["gaps"].is_null(), "{}", r["energy"]["gaps"]);
    // The peak FLOPs/W uses the job's GPU only.
    let peak = r["metrics"]["peak_flops_source"].as_str().unwrap();
    assert!(
        peak.contains("A100-PCIE-80GB") && !peak.contains("H100"),
        "{peak}"
    );
    assert!(
        stderr.contains(
            "not the job's GPUs (not measured, not in the total): gpu-0, gpu-2, gpu-3, gpu-4; \
         chosen by CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"
        ),
        "{stderr}"
    );
}

#[test]
fn the_embodied_share_counts_only_the_jobs_gpus() {
    let d = tempfile::tempdir().unwrap();
    // GPU 0 is the H100, the only one of the node the job sees.
    let (r, _) = run_with(d.path(), &[("CUDA_VISIBLE_DEVICES", "GPU-00000000")], &[]);
    assert_eq!(gpu_domains(&r), ["gpu-0"]);
    let src = r["carbon"]["embodied_source"].as_str().unwrap();
    assert!(src.contains("H100"), "{src}");
    // The node's L4 and A100-SXM4 (both with an embodied figure) are not counted.
    assert!(!src.contains("L4") && !src.contains("A100"), "{src}");
}

#[test]
fn cuda_fastest_first_order_is_approximated_and_said() {
    let d = tempfile::tempdir().unwrap();
    // CUDA's default order, approximated by FP32 peak: H100 66.9, L4 30.3, A100 PCIe 19.5,
    // A100 SXM4 19.5 (PCI order breaks the tie), T4 8.1. CUDA's device 2 is gpu-1.
    let (r, _) = run_with(d.path(), &[("CUDA_VISIBLE_DEVICES", "2")], &[]);
    assert_eq!(gpu_domains(&r), ["gpu-1"]);
    let w = r["warnings"].to_string();
    assert!(w.contains("approximated by peak FP32 FLOPs"), "{w}");
    assert!(w.contains("CUDA_DEVICE_ORDER=PCI_BUS_ID"), "{w}");
}

#[test]
fn a_mig_instance_uuid_charges_its_physical_gpu() {
    let d = tempfile::tempdir().unwrap();
    let (r, _) = run_with(
        d.path(),
        &[(
            "CUDA_VISIBLE_DEVICES",
            "MIG-44444444-bbbb-5555-8888-000000000002",
        )],
        &[],
    );
    assert_eq!(gpu_domains(&r), ["gpu-4"]);
}

#[test]
fn container_and_slurm_visibility_are_honoured() {
    let d = tempfile::tempdir().unwrap();
    let (r, _) = run_with(d.path(), &[("NVIDIA_VISIBLE_DEVICES", "void")], &[]);
    assert!(gpu_domains(&r).is_empty());
    assert_eq!(other_gpus(&r).len(), 5);
    let (r, _) = run_with(d.path(), &[("SLURM_JOB_GPUS", "0,4")], &[]);
    assert_eq!(gpu_domains(&r), ["gpu-0", "gpu-4"]);
    assert_eq!(
        other_gpus(&r)[0].1,
        "not in the Slurm allocation SLURM_JOB_GPUS=0,4"
    );
}

#[test]
fn gpus_flag_overrides_the_environment() {
    let d = tempfile::tempdir().unwrap();
    let (r, _) = run_with(
        d.path(),
        &[("CUDA_VISIBLE_DEVICES", "")],
        &["--gpus", "0,gpu-4"],
    );
    assert_eq!(gpu_domains(&r), ["gpu-0", "gpu-4"]);
    assert_eq!(r["host"]["gpu_selection"], "--gpus 0,gpu-4");
    let (r, _) = run_with(
        d.path(),
        &[("CUDA_VISIBLE_DEVICES", "1")],
        &["--gpus", "all"],
    );
    assert_eq!(gpu_domains(&r).len(), 5);
    assert!(r["host"]["other_gpus"].is_null());
}

#[test]
fn a_gpus_flag_naming_no_gpu_is_refused_before_the_command_runs() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    for (value, says) in [
        ("9", "`9` names no GPU here"),
        ("GPU-5", "`GPU-5` names no GPU here"),
        ("0;1", "entry `0;1` is not an index"),
    ] {
        let out = wattprint(d.path())
            .args(["run", "--no-store", "--gpus", value, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{value}: {stderr}");
        assert!(!marker.exists(), "{value}");
    }
}

#[test]
fn gpu_attribution_considers_only_the_jobs_gpus() {
    let d = tempfile::tempdir().unwrap();
    let procs = d.path().join("procs.txt");
    // The job and a neighbour share GPU 0, but the job sees only GPU 1: GPU 0 is not
    // sampled, and GPU 1 alone is the job's, unattributed.
    let out = wattprint(d.path())
        .env("FAKE_NVML_PROCS_FILE", &procs)
        .env("WATTPRINT_PROCFS_ROOT", "/proc")
        .env("CUDA_VISIBLE_DEVICES", "GPU-11111111")
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
    assert_eq!(gpu_domains(&r), ["gpu-1"]);
    assert!(r["energy"]["gpu_attribution"].is_null(), "{}", r["energy"]);
}
