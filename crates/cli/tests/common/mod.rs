//! Set-up shared by the CLI's end-to-end tests: every command runs on a fake machine in a
//! temporary directory, never on the host's sensors, procfs, cgroups, GPUs, history or caches
//! (this project's machines differ: no RAPL on some, a dead perf `energy-psys` on others).
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;
use wattprint_sensors::fake_tree::write_fake_procfs;

/// The CPU of the fake procfs (in the embedded TDP table: 280 W).
pub const FAKE_CPU: &str = "AMD EPYC 7763 64-Core Processor";

/// Variables through which the host would reach a test: zone, sensor choice, GPU visibility,
/// an agent socket, a work file, log filters.
pub const HOST_VARS: &[&str] = &[
    "WATTPRINT_ZONE",
    "WATTPRINT_SENSORS",
    "WATTPRINT_AGENT_SOCKET",
    "WATTPRINT_NVML_LIB",
    "WATTPRINT_AMDSMI_LIB",
    "WATTPRINT_WORK_FILE",
    "WATTPRINT_CHECKPOINT_S",
    "WATTPRINT_PERF_COUNTERS_DIR",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "RUST_LOG",
];

/// A fake machine under `dir`: `proc/` (4 threads of [`FAKE_CPU`], 2 GB, 10 % busy) unless
/// it exists, and an empty `sys/` (no RAPL, no cgroupfs, no GPU driver).
pub fn fake_machine(dir: &Path) {
    let proc = dir.join("proc");
    if !proc.join("stat").exists() {
        write_fake_procfs(&proc, FAKE_CPU, 4, 2_000_000, 1000, 9000).unwrap();
    }
    std::fs::create_dir_all(dir.join("sys")).unwrap();
}

/// Points `cmd` at the fake machine under `dir` (created if needed) and removes the host's
/// variables: sysfs and procfs seams, no GPU library, the history and caches in `dir`.
pub fn isolate(cmd: &mut Command, dir: &Path) {
    fake_machine(dir);
    for v in HOST_VARS {
        cmd.env_remove(v);
    }
    cmd.env("WATTPRINT_SYSFS_ROOT", dir.join("sys"))
        .env("WATTPRINT_PROCFS_ROOT", dir.join("proc"))
        .env("WATTPRINT_NVML_LIB", dir.join("no-nvml.so"))
        .env("WATTPRINT_AMDSMI_LIB", dir.join("no-amdsmi.so"))
        .env("WATTPRINT_DB", db(dir))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CACHE_HOME", dir.join("cache"));
}

/// The history database of the fake machine under `dir`.
pub fn db(dir: &Path) -> PathBuf {
    dir.join("history.sqlite")
}

/// `wattprint` on the fake machine under `dir`.
pub fn wattprint(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wattprint"));
    isolate(&mut c, dir);
    c
}

/// The same, as an `assert_cmd` command.
pub fn wattprint_assert(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(wattprint(dir))
}

/// The JSON document on stdout, after whatever the child printed before it.
pub fn json_of(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    let start = text.find('{').expect("a JSON report on stdout");
    serde_json::from_str(&text[start..]).expect("valid JSON")
}

/// Reads an agent's stderr until its `listening on http://ADDR` line (50 lines at most),
/// appending every line read to `log`; the address, or `None` when the agent ended or said
/// something else first (the caller stops the agent and shows `log`).
pub fn listening_addr(err: &mut impl std::io::BufRead, log: &mut String) -> Option<String> {
    for _ in 0..50 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        log.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            return rest.split_whitespace().next().map(str::to_string);
        }
    }
    None
}
