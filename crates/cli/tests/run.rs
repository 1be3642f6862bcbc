//! `wattprint run` end to end: exit codes, signals, stdio, JSON fields, totals on fake trees.

use assert_cmd::Command;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use wattprint_sensors::fake_tree::{write_fake_procfs, FakeRaplTree};

mod common;

/// A history database of this test process, so runs never land in the user's own history.
fn test_db() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wattprint-run-tests-{}.sqlite", std::process::id()))
}

/// wattprint without the host's variables (zone, sensor choice, GPU visibility); each test
/// then names its machine (`model_env`, or a fake RAPL tree).
fn wattprint() -> Command {
    let mut c = Command::cargo_bin("wattprint").unwrap();
    for v in common::HOST_VARS {
        c.env_remove(v);
    }
    c.env("WATTPRINT_DB", test_db());
    c
}

/// A machine with no sensors but a fake procfs (the model).
fn model_env(cmd: &mut Command, dir: &Path) {
    common::fake_machine(dir);
    cmd.env("WATTPRINT_SYSFS_ROOT", dir.join("sys"))
        .env("WATTPRINT_PROCFS_ROOT", dir.join("proc"));
}

fn json_of(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    let start = text.find('{').expect("a JSON report on stdout");
    serde_json::from_str(&text[start..]).expect("valid JSON")
}

#[test]
fn the_childs_exit_status_is_returned() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    model_env(&mut c, d.path());
    c.args(["run", "--", "sh", "-c", "exit 7"]).assert().code(7);
}

#[test]
fn a_child_killed_by_a_signal_gives_128_plus_n_and_still_a_report() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.json");
    let mut c = wattprint();
    model_env(&mut c, d.path());
    c.args(["run", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "kill -9 $$"])
        .assert()
        .code(137);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 137);
}

#[test]
fn a_missing_command_exits_127_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    model_env(&mut c, d.path());
    let a = c
        .args(["run", "--", "wattprint-no-such-command-xyz"])
        .assert()
        .code(127);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("command not found: `wattprint-no-such-command-xyz`"),
        "{err}"
    );
}

#[test]
fn bad_usage_exits_2_with_a_clear_message() {
    let a = wattprint().args(["run"]).assert().code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("no command to run"));
    let a = wattprint().args(["run", "sleep", "1"]).assert().code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("after `--`"));
    wattprint()
        .args(["run", "--bogus", "--", "true"])
        .assert()
        .code(2);
    let a = wattprint().args(["run", "--", ""]).assert().code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("empty"));
    wattprint()
        .args(["run", "--interval", "fast", "--", "true"])
        .assert()
        .code(2);
    wattprint()
        .args(["run", "--label", "novalue", "--", "true"])
        .assert()
        .code(2);
    wattprint()
        .args(["run", "-o", "report.txt", "--", "true"])
        .assert()
        .code(2);
}

#[test]
fn stdout_is_the_childs_then_the_json_report() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    model_env(&mut c, d.path());
    let a = c
        .args([
            "run",
            "--json",
            "--label",
            "team=search",
            "--no-store",
            "--",
        ])
        .args(["sh", "-c", "echo hello-from-child"])
        .assert()
        .success();
    let out = a.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("hello-from-child\n{"), "{stdout}");
    let r = json_of(&out.stdout);
    assert_eq!(r["schema"], "wattprint.run/v1");
    assert_eq!(r["command"][0], "sh");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["labels"]["team"], "search");
    for k in ["total_j", "pue", "facility_j", "domains"] {
        assert!(r["energy"].get(k).is_some(), "energy.{k}");
    }
    for k in [
        "meter_cpu_s",
        "meter_cpu_fraction",
        "peak_rss_bytes",
        "reads",
    ] {
        assert!(r["overhead"].get(k).is_some(), "overhead.{k}");
    }
    assert!(r["overhead"]["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(r["started_at"].as_str().unwrap().ends_with('Z'));
    // The summary went to stderr, not stdout.
    assert!(String::from_utf8_lossy(&out.stderr).contains("wattprint: sh -c"));
}

#[test]
fn without_rapl_the_model_is_used_and_labelled_an_estimate() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    model_env(&mut c, d.path());
    let a = c.args(["run", "--json", "--", "true"]).assert().success();
    let r = json_of(&a.get_output().stdout);
    let domains = r["energy"]["domains"].as_array().unwrap();
    let names: Vec<_> = domains
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cpu-model", "memory-model"]);
    assert!(domains.iter().all(|d| d["method"] == "model"));
    assert!(domains[0]["device"]
        .as_str()
        .unwrap()
        .contains("AMD EPYC 7763"));
    let w = r["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| w.as_str().unwrap().contains("ESTIMATES")),
        "{w:?}"
    );
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("ESTIMATE"));
}

#[test]
fn rapl_totals_on_a_fake_tree_match_the_counters() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("sys");
    let t = FakeRaplTree::new(&sys).unwrap();
    // Far from zero, near the wrap of a 20 J range: the child's write wraps it.
    // A 1 kW zone: the fake lands 7.5 J between two reads 10 ms apart (guard period), a
    // power such a zone can reach (a 100 W zone could not: the interval would be dropped as
    // implausible).
    t.add_zone(
        "0",
        "package-0",
        18_000_000,
        20_000_000,
        Some(1_000_000_000),
    )
    .unwrap();
    t.add_zone("0:0", "core", 500, 20_000_000, None).unwrap();
    t.add_zone("0:1", "dram", 1_000_000, 20_000_000, None)
        .unwrap();
    write_fake_procfs(&d.path().join("proc"), "x", 1, 1000, 0, 0).unwrap();
    let pkg = t.zone_dir("0").join("energy_uj");
    let core = t.zone_dir("0:0").join("energy_uj");
    let dram = t.zone_dir("0:1").join("energy_uj");
    // The child plays the hardware: +7.5 J package (wrapping), +3 J core, +1.25 J dram.
    let script = format!(
        "printf '%020d\\n' 5500000 > {p}; printf '%020d\\n' 3000500 > {c}; \
         printf '%020d\\n' 2250000 > {d}",
        p = pkg.display(),
        c = core.display(),
        d = dram.display()
    );
    let a = wattprint()
        .env("WATTPRINT_SYSFS_ROOT", &sys)
        .env("WATTPRINT_PROCFS_ROOT", d.path().join("proc"))
        .args([
            "run",
            "--json",
            "--interval",
            "10m",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .assert()
        .success();
    let r = json_of(&a.get_output().stdout);
    let total = r["energy"]["total_j"].as_f64().unwrap();
    assert!((total - 8.75).abs() / 8.75 < 0.005, "total {total}: {r:#}");
    let by_name = |n: &str| {
        r["energy"]["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("core-0")["counted_in_total"], false);
    assert!((by_name("core-0")["joules"].as_f64().unwrap() - 3.0).abs() < 1e-9);
    assert_eq!(by_name("dram-0")["counted_in_total"], true);
    assert_eq!(by_name("package-0")["source"], "rapl-powercap");
    assert_eq!(by_name("package-0")["method"], "counter");
}

#[test]
fn sigterm_to_wattprint_is_forwarded_and_reported() {
    forwarded_and_reported(libc::SIGTERM);
}

#[test]
fn sighup_and_sigint_from_another_process_are_forwarded_too() {
    forwarded_and_reported(libc::SIGHUP);
    forwarded_and_reported(libc::SIGINT);
}

/// `sig` sent to wattprint by another process reaches the child, whose death by it is
/// wattprint's exit status and the report's.
fn forwarded_and_reported(sig: i32) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.json");
    let proc = d.path().join("proc");
    write_fake_procfs(&proc, "x", 1, 1000, 0, 0).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("wattprint");
    let mut child = std::process::Command::new(bin)
        .env("WATTPRINT_DB", test_db())
        .env("WATTPRINT_SYSFS_ROOT", d.path().join("sys"))
        .env("WATTPRINT_PROCFS_ROOT", &proc)
        .args(["run", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "echo ready; exec sleep 30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill(2) on the process we spawned.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + sig), "signal {sig}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 128 + sig);
    assert!(r["duration_s"].as_f64().unwrap() < 30.0);
}

#[test]
fn sensors_passes_over_a_package_that_never_advances() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(&d.path().join("sys")).unwrap();
    t.add_zone("0", "package-0", 1, 262_143_328_850, None)
        .unwrap();
    let mut c = wattprint();
    model_env(&mut c, d.path());
    let a = c.args(["sensors", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["sensors"][0]["source"], "utilisation-model");
    assert!(v["sensors"][0]["read_cost_us"].as_f64().unwrap() > 0.0);
    assert_eq!(v["absent"][0]["source"], "rapl-perf");
    assert!(v["absent"][0]["reason"].as_str().unwrap().len() > 10);
    let pc = v["absent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["source"] == "rapl-powercap")
        .unwrap();
    let why = pc["reason"].as_str().unwrap();
    assert!(
        why.contains("package-0 stuck") && why.contains("did not advance"),
        "{why}"
    );
}

/// A perf power PMU whose only event, `energy-psys`, reads 0 for ever (this project's own
/// VMs): files stand in for the kernel's counters, so this runs on every machine.
fn dead_psys_env(cmd: &mut Command, dir: &Path) {
    let sys = dir.join("sys");
    let pmu = wattprint_sensors::fake_tree::FakePerfPmu::new(&sys, &[0], &["psys"]).unwrap();
    model_env(cmd, dir);
    cmd.env("WATTPRINT_SYSFS_ROOT", &sys)
        .env("WATTPRINT_PERF_COUNTERS_DIR", pmu.counters_dir());
}

#[test]
fn a_dead_psys_is_rejected_and_the_model_counts_instead() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    dead_psys_env(&mut c, d.path());
    let a = c
        .args(["run", "--no-store", "--json", "--", "sleep", "0.3"])
        .assert()
        .success();
    let r = json_of(&a.get_output().stdout);
    let e = &r["energy"];
    assert_eq!(e["rejected"][0]["domain"], "psys");
    assert_eq!(e["rejected"][0]["source"], "rapl-perf");
    assert_eq!(e["rejected"][0]["verdict"], "stuck");
    assert_eq!(
        e["rejected"][0]["replaced_by"],
        serde_json::json!(["cpu-model", "memory-model"])
    );
    let total = e["total_j"].as_f64().unwrap();
    assert!(total > 0.0, "{total}");
    assert_eq!(e["model_filled_j"].as_f64().unwrap(), total);
    let psys = e["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "psys")
        .unwrap();
    assert_eq!(psys["counted_in_total"], false);
    assert_eq!(psys["joules"], 0.0);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("REJECTED: stuck"), "{err}");
    assert!(err.contains("psys (rapl-perf)"), "{err}");
}

#[test]
fn sensors_says_why_the_dead_psys_is_not_used() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    dead_psys_env(&mut c, d.path());
    let a = c.args(["sensors"]).assert().success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(
        out.contains("rapl-perf: psys stuck: did not advance"),
        "{out}"
    );
    assert!(out.starts_with("utilisation-model"), "{out}");
}

#[test]
fn the_self_test_says_stuck_for_the_dead_psys() {
    let d = tempfile::tempdir().unwrap();
    let mut c = wattprint();
    dead_psys_env(&mut c, d.path());
    let a = c
        .args([
            "sensors",
            "--check",
            "--json",
            "--check-idle",
            "150ms",
            "--check-load",
            "150ms",
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    let doms = v["domains"].as_array().unwrap();
    let psys = doms.iter().find(|d| d["domain"] == "psys").unwrap();
    assert_eq!(psys["source"], "rapl-perf");
    assert_eq!(psys["verdict"], "stuck");
    assert_eq!(psys["idle_w"], 0.0);
    assert_eq!(psys["responds_to_load"], false);
    let model = doms.iter().find(|d| d["domain"] == "cpu-model").unwrap();
    assert_eq!(model["verdict"], "ok");
    assert!(v["idle_s"].as_f64().unwrap() >= 0.15);
}

#[test]
fn the_user_chooses_the_sensors() {
    let d = tempfile::tempdir().unwrap();
    // --sensor model: the dead counter is not even opened.
    let mut c = wattprint();
    dead_psys_env(&mut c, d.path());
    let a = c
        .args([
            "run",
            "--no-store",
            "--json",
            "--sensor",
            "model",
            "--",
            "true",
        ])
        .assert()
        .success();
    let r = json_of(&a.get_output().stdout);
    let names: Vec<&str> = r["energy"]["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cpu-model", "memory-model"]);
    assert!(r["energy"].get("rejected").is_none());
    // The same from the environment, and exclusion.
    let mut c = wattprint();
    dead_psys_env(&mut c, d.path());
    let a = c
        .env("WATTPRINT_SENSORS", "-rapl-perf")
        .args(["sensors", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["sensors"][0]["source"], "utilisation-model");
    assert!(v["absent"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("excluded by the user"));
}

#[test]
fn an_unknown_sensor_name_exits_2_with_the_list() {
    for args in [
        vec!["run", "--sensor", "rapl", "--", "true"],
        vec!["sensors", "--no-sensor", "cuda"],
    ] {
        let a = wattprint().args(&args).assert().code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(
            err.contains("unknown sensor") && err.contains("rapl-powercap, nvml, amdsmi"),
            "{err}"
        );
    }
    let a = wattprint()
        .env("WATTPRINT_SENSORS", "-gpu")
        .args(["sensors"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("WATTPRINT_SENSORS"));
}

#[test]
fn on_a_terminal_the_live_line_shows_and_does_not_delay_the_end() {
    // `script` (util-linux, essential on Debian) gives wattprint a pseudo-terminal as stderr.
    let d = tempfile::tempdir().unwrap();
    let proc = d.path().join("proc");
    write_fake_procfs(&proc, "x", 1, 1000, 0, 0).unwrap();
    let out = d.path().join("r.json");
    let bin = assert_cmd::cargo::cargo_bin("wattprint");
    let cmd = format!(
        "{} run --interval 1s -o {} -- sleep 1.3",
        bin.display(),
        out.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("WATTPRINT_SYSFS_ROOT", d.path().join("sys"))
        .env("WATTPRINT_PROCFS_ROOT", &proc)
        .output()
        .expect("`script` from util-linux");
    assert!(o.status.success(), "{o:?}");
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("\r\x1b[2K"), "{tty}");
    assert!(tty.contains("(estimate)"), "{tty}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // The live view ticks every 1 s; the run must end with the child (1.3 s), not at 2 s.
    let dur = r["duration_s"].as_f64().unwrap();
    assert!((1.3..1.9).contains(&dur), "duration {dur}");
}

/// The command's own cgroup (where wattprint may create one: root, or a delegated cgroup)
/// counts the CPU time of processes that left its tree, which wait4 never sees. Where no
/// cgroup can be made, the report says why and falls back to the waited-for tree.
#[test]
fn a_cgroup_of_its_own_counts_processes_that_left_the_tree() {
    // The worker's parent exits at once (a double fork, as daemons do): it is re-parented
    // out of the tree and never waited for, so its CPU time is not in wait4's rusage.
    let script = "( (i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done) & ); sleep 1";
    let attribution = |extra: &[&str]| {
        let out = wattprint()
            .args(["run", "--no-store", "--json"])
            .args(extra)
            .args(["--", "sh", "-c", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = json_of(&out.stdout);
        let a = r["energy"]["attribution"].clone();
        assert!(a.is_object(), "{r}");
        (
            a["method"].as_str().unwrap().to_string(),
            a["share"].as_f64().unwrap(),
        )
    };
    let (tree_method, tree_share) = attribution(&["--no-cgroup"]);
    assert!(
        tree_method.contains("wait4") && tree_method.contains("no cgroup of its own: --no-cgroup"),
        "{tree_method}"
    );
    let (method, share) = attribution(&[]);
    if method.contains("cgroup v2 cpu.stat") {
        assert!(
            share > 4.0 * tree_share && share > 0.02,
            "cgroup share {share} vs tree share {tree_share}"
        );
    } else {
        // No cgroup here: the fallback names itself and its reason.
        assert!(method.contains("no cgroup of its own: "), "{method}");
        eprintln!("no job cgroup on this machine: {method}");
    }
}

/// Where a cgroup v2 hierarchy can be had (as root: mounted in a private mount namespace,
/// so the host's mounts are untouched), the command is started inside its own cgroup (born
/// there by clone3(CLONE_INTO_CGROUP) on Linux 5.7+, else moved before exec), and the
/// cgroup is removed after the run. Not root: no namespace can be made, and the fallback is
/// what `a_cgroup_of_its_own_counts_processes_that_left_the_tree` checks.
#[test]
fn the_command_starts_inside_a_cgroup_v2_of_its_own() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "NOT CHECKED here: mounting a cgroup v2 hierarchy needs root; \
             the fallback is checked by a_cgroup_of_its_own_counts_processes_that_left_the_tree"
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    // The job cgroup is made under wattprint's own, read from <procfs>/self/cgroup: the
    // hierarchy's root in the fresh mount.
    std::fs::create_dir_all(d.path().join("proc/self")).unwrap();
    std::fs::write(d.path().join("proc/self/cgroup"), "0::/\n").unwrap();
    let mount = d.path().join("sys/fs/cgroup");
    std::fs::create_dir_all(&mount).unwrap();
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(
            // After the run, the hierarchy's listing (other wattprints on the machine may
            // have job cgroups of their own there: the test looks for this run's only).
            "mount --make-rprivate / && mount -t cgroup2 none \"$1\" || exit 90; m=$1; shift; \
             \"$@\"; rc=$?; echo AFTER:; ls \"$m\"; exit $rc",
        )
        .arg("sh")
        .arg(&mount)
        .arg(env!("CARGO_BIN_EXE_wattprint"))
        .args([
            "run",
            "--no-store",
            "--json",
            "--",
            "cat",
            "/proc/self/cgroup",
        ])
        .env("WATTPRINT_SYSFS_ROOT", d.path().join("sys"))
        .env("WATTPRINT_PROCFS_ROOT", d.path().join("proc"))
        .env("WATTPRINT_DB", test_db())
        .env_remove("WATTPRINT_SENSORS")
        .output()
        .expect("unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The command's own view of its cgroup, printed before the report.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or_else(|| panic!("no cgroup v2 line from the command: {stdout}"));
    assert!(line.starts_with("0::/wattprint-"), "{line}");
    // The job cgroup is removed after the run.
    let (_, after) = stdout
        .split_once("AFTER:")
        .expect("the listing after the run");
    let job = line.trim_start_matches("0::/").trim();
    assert!(
        !after.split_whitespace().any(|d| d == job),
        "{job} left behind: {after}"
    );
    assert!(!stderr.contains("could not join"), "{stderr}");
}

#[test]
fn the_tests_machine_is_the_fake_one_whatever_the_host_has() {
    // The host's variables are set on purpose: isolation must remove them.
    let d = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wattprint"));
    c.env("WATTPRINT_ZONE", "FR")
        .env("CUDA_VISIBLE_DEVICES", "3")
        .env("WATTPRINT_SENSORS", "rapl-perf");
    common::isolate(&mut c, d.path());
    let out = c.args(["run", "--json", "--", "true"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = common::json_of(&out.stdout);
    assert_eq!(r["host"]["cpu_model"], common::FAKE_CPU);
    let domains = r["energy"]["domains"].as_array().unwrap();
    assert!(!domains.is_empty());
    assert!(
        domains.iter().all(|d| d["method"] == "model"),
        "only the fake machine's model: {domains:?}"
    );
    assert_eq!(r["carbon"]["zone"], "WORLD");
    // The fake /proc/stat never moves: no busy CPU time, so no attribution (the host's would).
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("attribution skipped")),
        "{}",
        r["warnings"]
    );
    // The run is stored in the fake machine's history, not the user's.
    assert!(common::db(d.path()).exists());
}
