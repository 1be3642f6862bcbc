//! History, reports, comparisons, ratings, the advisor and imports, end to end on a real
//! SQLite database in a temporary directory.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

mod common;

fn wp(dir: &Path) -> Command {
    let mut c = common::wattprint_assert(dir);
    c.current_dir(dir);
    c
}

fn setup() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    d
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("JSON on stdout")
}

/// A wattprint CSV trace of one constant-power domain: `watts` for 10 s.
fn trace(dir: &Path, name: &str, watts: f64, label_day: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "# wattprint trace v1\n# id: {name}\n# started_at: {label_day}T10:00:00Z\nt_s,domain,kind,unit,value\n0,gpu-0,gpu,W,{watts}\n5,gpu-0,gpu,W,{watts}\n10,gpu-0,gpu,W,{watts}\n"
        ),
    )
    .unwrap();
    p
}

fn count_runs(dir: &Path) -> usize {
    let o = wp(dir)
        .args(["runs", "--json", "--limit", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&o.stdout).as_array().unwrap().len()
}

#[test]
fn runs_are_stored_unless_no_store_and_listed() {
    let d = setup();
    // The working directory is a git checkout: the run records its commit.
    std::fs::create_dir_all(d.path().join(".git")).unwrap();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(d.path().join(".git/HEAD"), format!("{sha}\n")).unwrap();
    wp(d.path())
        .args(["run", "--label", "team=a", "--", "true"])
        .assert()
        .success();
    wp(d.path())
        .args(["run", "--no-store", "--", "true"])
        .assert()
        .success();
    let o = wp(d.path()).args(["runs", "--json"]).output().unwrap();
    let runs = json(&o.stdout);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["schema"], "wattprint.run/v1");
    assert_eq!(runs[0]["labels"]["team"], "a");
    assert_eq!(runs[0]["command"][0], "true");
    assert_eq!(runs[0]["host"]["git_commit"], sha);
    let o = wp(d.path())
        .args(["runs", "--label", "team=b", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&o.stdout).as_array().unwrap().len(), 0);
    let table = wp(d.path()).arg("runs").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("ENERGY"));
}

#[test]
fn a_corrupt_database_warns_and_the_report_is_still_written() {
    let d = setup();
    std::fs::write(d.path().join("history.sqlite"), vec![0x42u8; 8192]).unwrap();
    let out = d.path().join("r.json");
    let a = wp(d.path())
        .args(["run", "-o"])
        .arg(&out)
        .args(["--", "true"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("not stored in the history"), "{err}");
    assert!(err.contains("not a valid SQLite database"), "{err}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["schema"], "wattprint.run/v1");
    // `report` on the saved JSON still works without the database.
    let o = wp(d.path())
        .args(["report", "--format", "md"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Energy-to-Solution"));
}

#[test]
fn nvidia_smi_import_is_scored_stored_once_and_reported_as_html_with_charts() {
    let d = setup();
    let csv = d.path().join("gpu.csv");
    std::fs::write(
        &csv,
        "timestamp, index, name, power.draw [W]\n2026/03/01 10:00:00.000, 0, NVIDIA H100, 100.00 W\n2026/03/01 10:00:00.000, 1, NVIDIA H100, 50.00 W\n2026/03/01 10:00:01.000, 0, NVIDIA H100, 300.00 W\n2026/03/01 10:00:01.000, 1, NVIDIA H100, 50.00 W\n2026/03/01 10:00:02.000, 0, NVIDIA H100, 300.00 W\n2026/03/01 10:00:02.000, 1, NVIDIA H100, 50.00 W\n",
    )
    .unwrap();
    let o = wp(d.path())
        .args(["import", "--json", "--zone", "FR"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o.stdout);
    assert_eq!(v[0]["schema"], "wattprint.run/v1");
    // GPU 0: 200 + 300 = 500 J; GPU 1: 100 J.
    assert_eq!(v[0]["energy"]["total_j"], 600.0);
    assert_eq!(v[0]["carbon"]["zone"], "FR");
    assert!(v[0]["carbon"]["total_g"].as_f64().unwrap() > 0.0);
    let again = wp(d.path()).arg("import").arg(&csv).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("already in the history"));
    assert_eq!(count_runs(d.path()), 1);

    let html = d.path().join("r.html");
    wp(d.path())
        .args(["report", "--period", "2026-03", "-o"])
        .arg(&html)
        .assert()
        .success();
    let doc = std::fs::read_to_string(&html).unwrap();
    assert!(doc.contains("data-chart=\"power\""));
    assert_eq!(doc.matches("<polyline").count(), 2, "one line per GPU");
    assert!(doc.contains("data-chart=\"energy\""));
    assert!(doc.contains("data-value=\"500\""));
    assert!(doc.contains("data-chart=\"carbon\""));
    assert!(doc.contains("nvidia-smi log"));
}

#[test]
fn esrs_statement_separates_cloud_and_reports_mwh() {
    let d = setup();
    // 1 kW for 10 s = 10 kJ each.
    let a = trace(d.path(), "onprem.csv", 1000.0, "2026-02-01");
    let b = trace(d.path(), "cloud.csv", 1000.0, "2026-02-02");
    let c = trace(d.path(), "lastyear.csv", 1000.0, "2025-02-02");
    wp(d.path())
        .args(["import", "--zone", "FR", "--pue", "1.0"])
        .arg(&a)
        .assert()
        .success();
    wp(d.path())
        .args(["import", "--zone", "gcp:europe-west1", "--pue", "1.0"])
        .arg(&b)
        .assert()
        .success();
    wp(d.path())
        .args(["import", "--zone", "FR", "--pue", "1.0"])
        .arg(&c)
        .assert()
        .success();
    let o = wp(d.path())
        .args(["report", "--format", "esrs", "--period", "2026", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&o.stdout);
    assert_eq!(s["runs"], 2);
    let mwh = s["energy_consumption_mwh"].as_f64().unwrap();
    assert!((mwh - 2.0e4 / 3.6e9).abs() < 1e-15, "{mwh}");
    assert!(s["scope2_location_based_tco2e"].as_f64().unwrap() > 0.0);
    assert!(s["scope3_category1_tco2e"].as_f64().unwrap() > 0.0);
    for l in s["lines"].as_array().unwrap() {
        assert!(l["factor_source"].as_str().unwrap().len() > 3);
        assert!(l["factor_vintage"].is_i64(), "{l}");
    }
    let md = wp(d.path())
        .args(["report", "--format", "esrs", "--period", "2026"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("E1-5 Energy consumption"));
    assert!(md.contains("Scope 3 cat. 1 | gcp:europe-west1"));
}

#[test]
fn compare_gates_on_the_threshold_and_groups_by_label() {
    let d = setup();
    let base = trace(d.path(), "base.csv", 100.0, "2026-01-01");
    let worse = trace(d.path(), "worse.csv", 110.0, "2026-01-02");
    let o = wp(d.path())
        .args(["compare"])
        .arg(&base)
        .arg(&worse)
        .args(["--fail-over", "5%"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
    wp(d.path())
        .args(["compare"])
        .arg(&base)
        .arg(&worse)
        .args(["--fail-over", "15"])
        .assert()
        .code(0);
    wp(d.path())
        .args(["compare"])
        .arg(&worse)
        .arg(&base)
        .args(["--fail-over", "0"])
        .assert()
        .code(0);

    for (i, w) in [100.0, 104.0, 96.0].iter().enumerate() {
        let p = trace(d.path(), &format!("a{i}.csv"), *w, "2026-01-03");
        wp(d.path())
            .args(["import", "--label", "variant=a"])
            .arg(&p)
            .assert()
            .success();
        let p = trace(d.path(), &format!("b{i}.csv"), *w * 0.9, "2026-01-03");
        wp(d.path())
            .args(["import", "--label", "variant=b"])
            .arg(&p)
            .assert()
            .success();
    }
    let o = wp(d.path())
        .args([
            "compare",
            "label:variant=a",
            "label:variant=b",
            "--json",
            "--fail-over",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let c = json(&o.stdout);
    assert_eq!(c["a"]["median"], 1000.0);
    assert!((c["b"]["median"].as_f64().unwrap() - 900.0).abs() < 1e-9);
    assert_eq!(c["a"]["values"].as_array().unwrap().len(), 3);
    // Declared work at import gives J per token, which compare can gate on.
    let t = trace(d.path(), "tok.csv", 100.0, "2026-01-04");
    let o = wp(d.path())
        .args(["import", "--json", "--tokens", "500"])
        .arg(&t)
        .output()
        .unwrap();
    let v = json(&o.stdout);
    assert_eq!(v[0]["work"]["tokens"], 500.0);
    assert_eq!(v[0]["metrics"]["joules_per_token"], 2.0);
    assert!(
        v[0]["carbon"]["carbon_per_1k_tokens_g"].is_number()
            || v[0]["metrics"]["carbon_per_1k_tokens_g"].is_number()
    );
    assert!((c["a"]["spread_pct"].as_f64().unwrap() - 8.0).abs() < 1e-9);
    // A metric the runs lack is a clear error, not a zero.
    let o = wp(d.path())
        .args([
            "compare",
            "label:variant=a",
            "label:variant=b",
            "--metric",
            "j-per-token",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no tokens declared"));
}

#[test]
fn imported_trace_exports_and_reimports_with_the_same_energy() {
    let d = setup();
    let t = trace(d.path(), "t.csv", 123.25, "2026-01-01");
    let out = d.path().join("back.csv");
    let o = wp(d.path())
        .args(["import", "--no-store", "--json", "--export-trace"])
        .arg(&out)
        .arg(&t)
        .output()
        .unwrap();
    let first = json(&o.stdout);
    let o = wp(d.path())
        .args(["import", "--no-store", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    let back = json(&o.stdout);
    assert_eq!(first[0]["energy"]["total_j"], back[0]["energy"]["total_j"]);
    assert_eq!(back[0]["energy"]["total_j"], 1232.5);
    assert_eq!(count_runs(d.path()), 0);
}

#[test]
fn a_bad_import_names_the_line_and_stores_nothing() {
    let d = setup();
    let p = d.path().join("bad.csv");
    std::fs::write(&p, "t_s,domain,unit,value\n0,a,W,5\n1,a,W,5\n2,a,W,lots\n").unwrap();
    let o = wp(d.path()).arg("import").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("line 4, field `value`"), "{e}");
    let p2 = d.path().join("mystery.csv");
    std::fs::write(&p2, "a,b\n1,2\n").unwrap();
    wp(d.path()).arg("import").arg(&p2).assert().code(2);
    assert_eq!(count_runs(d.path()), 0);
}

#[test]
fn a_short_row_refuses_the_import_unless_skip_bad_rows_counts_it() {
    let d = setup();
    let p = d.path().join("emissions.csv");
    std::fs::write(
        &p,
        "timestamp,project_name,duration,emissions,energy_consumed\n\
         2024-05-02T14:12:03,bert,120,0.005,0.01\n\
         2024-05-02T14:30:00,bert,30\n\
         2024-05-02T15:00:00,bert,60,0.002,0.004\n",
    )
    .unwrap();
    let o = wp(d.path()).arg("import").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("emissions.csv: line 3, field `field count`: 3 fields where the header has 5"),
        "{e}"
    );
    assert!(e.contains("--skip-bad-rows"), "{e}");
    assert_eq!(count_runs(d.path()), 0);
    let o = wp(d.path())
        .args(["import", "--skip-bad-rows", "--json"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs = json(&o.stdout);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert!(
            r["warnings"].as_array().unwrap().iter().any(|w| w
                .as_str()
                .unwrap()
                .starts_with("1 row(s) skipped (--skip-bad-rows)")),
            "{r}"
        );
    }
    assert_eq!(count_runs(d.path()), 2);
}

#[test]
fn concurrent_processes_storing_at_once_lose_nothing() {
    let d = setup();
    let bin = assert_cmd::cargo::cargo_bin("wattprint");
    let children: Vec<_> = (0..8)
        .map(|i| {
            let p = trace(
                d.path(),
                &format!("c{i}.csv"),
                10.0 + f64::from(i),
                "2026-01-01",
            );
            std::process::Command::new(&bin)
                .env("WATTPRINT_DB", d.path().join("history.sqlite"))
                .arg("import")
                .arg(p)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("warning"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(count_runs(d.path()), 8);
}

#[test]
fn rate_prints_stars_and_grades_and_rejects_bad_rows() {
    let d = setup();
    let m = d.path().join("models.csv");
    std::fs::write(&m, "model,task,class,energy\ndistilgpt2,text_generation,A,0.00131\nEXAONE-4.0-32B,text_generation,A,18.99\ngpt-oss-120b,text_generation,A,8.50\nresnet-18,image_classification,,0.0026\n").unwrap();
    let th = d.path().join("th.csv");
    std::fs::write(
        &th,
        "task,A,B,C,D,E,F\ntext_generation,0.01,0.1,1,5,10,15\n",
    )
    .unwrap();
    let o = wp(d.path())
        .args(["rate", "--json", "--thresholds"])
        .arg(&th)
        .arg(&m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o.stdout);
    let stars: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stars"].as_u64().unwrap())
        .collect();
    assert_eq!(stars, vec![5, 1, 3, 5]);
    assert_eq!(v[0]["model"], "distilgpt2");
    assert_eq!(v[0]["class"], "A");
    assert_eq!(v[0]["grade"], "A");
    assert_eq!(v[1]["grade"], "G");
    assert_eq!(v[2]["grade"], "E");
    assert!(v[3]["class"].is_null());
    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, "model,task,energy\na,t,1\nb,t,-3\n").unwrap();
    let o = wp(d.path()).arg("rate").arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 3"));
}

#[test]
fn advise_gives_the_plans_of_the_rules() {
    let d = setup();
    let plan = |args: &[&str]| {
        let o = wp(d.path())
            .arg("advise")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json(&o.stdout)
    };
    assert_eq!(
        plan(&["--goal", "cost", "--workload", "training"])["metrics"][0]["id"],
        "energy-to-solution"
    );
    assert_eq!(
        plan(&["--goal", "cost", "--workload", "inference"])["metrics"][0]["id"],
        "carbon-per-inference"
    );
    assert_eq!(
        plan(&["--goal", "procurement"])["metrics"][0]["id"],
        "flops-per-watt"
    );
    let p = plan(&[
        "--goal",
        "cost",
        "--workload",
        "inference",
        "--frequency",
        "realtime",
        "--data",
        "cloud",
    ]);
    let w = p["warnings"].to_string();
    assert!(w.contains("self-hosted"), "{w}");
    let m = &p["metrics"][0];
    assert!(m["rank"] == 1 && m["reason"].is_string() && m["on_this_machine"].is_string());
    assert!(p["machine"]["sensors"].is_array());
    wp(d.path()).args(["advise"]).assert().code(2);
}

#[test]
fn an_unreadable_row_is_skipped_with_a_warning_and_listed_by_check() {
    let d = setup();
    // Three runs, one of which has control characters and an ANSI sequence in its command.
    for cmd in ["true", "printf \x1b[2J\x1b[31mhi\x07", "true"] {
        wp(d.path())
            .args(["run", "--", "sh", "-c", cmd])
            .assert()
            .success();
    }
    let o = wp(d.path()).args(["runs"]).output().unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !table.contains('\x1b') && !table.contains('\x07'),
        "{table:?}"
    );
    assert!(table.contains("\\u{1b}[2J"), "{table}");
    // Damage one row as an older wattprint could have stored it (a carbon total of null).
    let db = rusqlite::Connection::open(d.path().join("history.sqlite")).unwrap();
    let bad: String = db
        .query_row(
            "SELECT id FROM runs ORDER BY started_unix_s LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE runs SET report_json = replace(report_json, '\"total_g\":', '\"total_g\":null,\"x\":') WHERE id = ?1",
        [&bad],
    )
    .unwrap();
    drop(db);
    // `runs` and `report` still work for the other runs and name the skipped one.
    let o = wp(d.path()).args(["runs", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o.stdout).as_array().unwrap().len(), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&bad) && err.contains("runs --check"), "{err}");
    let o = wp(d.path())
        .args(["report", "--format", "md", "--since", "2000-01-01"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `runs --check` lists it and exits 1.
    let o = wp(d.path()).args(["runs", "--check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with(&bad), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 3"));
}

#[test]
fn a_locked_history_keeps_the_run_in_a_spool_stored_by_the_next_run() {
    let d = setup();
    // Create the database, then hold an exclusive lock on it.
    wp(d.path()).args(["run", "--", "true"]).assert().success();
    let db = rusqlite::Connection::open(d.path().join("history.sqlite")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = d.path().join("r.json");
    let a = wp(d.path())
        .env("WATTPRINT_DB_TIMEOUT_MS", "200")
        .args(["run", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "exit 3"])
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("locked") && err.contains("stored by the next run"),
        "{err}"
    );
    let spool = d.path().join("history.sqlite.spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1, "{err}");
    assert!(
        out.exists(),
        "the -o report is written whatever the history does"
    );
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    // The next run stores itself and the spooled one.
    wp(d.path()).args(["run", "--", "true"]).assert().success();
    assert_eq!(count_runs(d.path()), 3);
    assert!(!spool.exists());
}

#[test]
fn a_locked_history_keeps_imported_runs_in_the_spool_stored_by_the_next_import() {
    let d = setup();
    wp(d.path()).args(["run", "--", "true"]).assert().success();
    let db = rusqlite::Connection::open(d.path().join("history.sqlite")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let t = trace(d.path(), "locked.csv", 100.0, "2026-03-02");
    let a = wp(d.path())
        .env("WATTPRINT_DB_TIMEOUT_MS", "200")
        .arg("import")
        .arg(&t)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let spool = d.path().join("history.sqlite.spool");
    assert!(
        err.contains("locked")
            && err.contains("stored by the next run")
            && err.contains(&spool.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1, "{err}");
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    // The next import (of another file) stores itself and the spooled run.
    let t2 = trace(d.path(), "next.csv", 50.0, "2026-03-03");
    wp(d.path()).arg("import").arg(&t2).assert().success();
    assert_eq!(count_runs(d.path()), 3);
    assert!(!spool.exists());
}

#[test]
fn an_unwritable_output_is_refused_before_the_command_runs() {
    let d = setup();
    let marker = d.path().join("ran");
    let o = wp(d.path())
        .args(["run", "-o", "no/such/dir/r.json", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write in"));
    assert!(!marker.exists(), "the command must not run");
}

/// Control bytes and ANSI sequences in every kind of name (a label, a command argument, an
/// imported file's id and cells, a zone, an intensity file's cell) reach the terminal
/// escaped, on stdout and stderr, in every command that prints them.
#[test]
fn control_bytes_in_names_reach_the_terminal_escaped() {
    let d = setup();
    let esc = "\u{1b}[2J\u{1b}[31m";
    let raw = |o: &std::process::Output| -> Option<String> {
        let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
        let text = String::from_utf8_lossy(&all).to_string();
        text.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
            .then_some(text)
    };
    let check = |o: std::process::Output, want: &str| {
        if let Some(t) = raw(&o) {
            panic!("raw control character on the terminal:\n{t:?}");
        }
        let text = String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).to_string();
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    };
    let escaped = "\\u{1b}[2J\\u{1b}[31m";
    // A label and a command argument: the run's summary, `runs`, `report` (markdown and CSV
    // on stdout) and `compare`.
    let o = wp(d.path())
        .arg("run")
        .arg("--label")
        .arg(format!("team={esc}red\u{7}"))
        .args(["--", "echo"])
        .arg(format!("{esc}arg\r"))
        .output()
        .unwrap();
    assert!(o.status.success());
    // (echo's own output is the child's, not wattprint's: only stderr is checked here.)
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains('\u{1b}'),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{escaped}arg\\r")));
    check(wp(d.path()).arg("runs").output().unwrap(), escaped);
    check(wp(d.path()).arg("report").output().unwrap(), escaped);
    check(
        wp(d.path())
            .args(["report", "--format", "csv"])
            .output()
            .unwrap(),
        &format!("team={escaped}red\\u{{7}}"),
    );
    // An imported trace whose id and cells hold escapes: the import line, and the error
    // naming a bad cell.
    let t = d.path().join("t.csv");
    std::fs::write(
        &t,
        format!("# wattprint trace v1\n# id: {esc}evil\nt_s,domain,kind,unit,value\n0,gpu-0,gpu,W,100\n10,gpu-0,gpu,W,100\n"),
    )
    .unwrap();
    check(
        wp(d.path()).arg("import").arg(&t).output().unwrap(),
        &format!("{escaped}evil"),
    );
    std::fs::write(
        &t,
        format!("# wattprint trace v1\nt_s,domain,kind,unit,value\n0,gpu-0,gpu,W,{esc}100\n"),
    )
    .unwrap();
    check(
        wp(d.path()).arg("import").arg(&t).output().unwrap(),
        escaped,
    );
    // A zone, and an intensity file's cell.
    check(
        wp(d.path())
            .args(["estimate", "--power-w", "100", "--hours", "1", "--zone"])
            .arg(format!("{esc}FR"))
            .output()
            .unwrap(),
        &format!("{escaped}FR"),
    );
    let f = d.path().join("intensity.csv");
    std::fs::write(&f, format!("2026-01-01T00:00:00Z,{esc}100\n")).unwrap();
    check(
        wp(d.path())
            .args([
                "estimate",
                "--power-w",
                "100",
                "--hours",
                "1",
                "--intensity-file",
            ])
            .arg(&f)
            .output()
            .unwrap(),
        escaped,
    );
    // A command that does not exist, named with escapes.
    check(
        wp(d.path())
            .args(["run", "--no-store", "--"])
            .arg(format!("/no/such/{esc}cmd"))
            .output()
            .unwrap(),
        &format!("{escaped}cmd"),
    );
}
