//! The portfolio end to end: provider exports imported into a history beside measured runs,
//! reported as a portfolio and an ESRS statement, nothing counted twice.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;

fn wp(dir: &Path) -> Command {
    let mut c = common::wattprint_assert(dir);
    c.current_dir(dir);
    c
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/portfolio")
        .join(name)
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("JSON on stdout")
}

/// A 10 s trace at `watts` on `day`.
fn trace(dir: &Path, name: &str, watts: f64, day: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "# wattprint trace v1\n# id: {name}\n# started_at: {day}T10:00:00Z\nt_s,domain,kind,unit,value\n0,gpu-0,gpu,W,{watts}\n10,gpu-0,gpu,W,{watts}\n"
        ),
    )
    .unwrap();
    p
}

fn portfolio(dir: &Path) -> Value {
    let o = wp(dir)
        .args([
            "report",
            "--format",
            "portfolio",
            "--period",
            "2026",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&o.stdout)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn provider_exports_and_runs_make_one_portfolio_with_runs_inside_projects_as_detail() {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    let dir = d.path();
    for f in [
        "gcp-carbon-footprint.csv",
        "gcp-carbon-footprint.ndjson",
        "aws-carbon-emissions.csv",
        "aws-sustainability-api.json",
        "azure-monthly-summary.json",
    ] {
        wp(dir).arg("import").arg(fixture(f)).assert().success();
    }
    // The same month again: recognised, not doubled.
    let o = wp(dir)
        .arg("import")
        .arg(fixture("gcp-carbon-footprint.csv"))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("24 already in the history"));
    // Providers alone, kg: GCP 1376.5, AWS 652, Azure 173.75.
    let p = portfolio(dir);
    assert!(
        close(p["location_g"].as_f64().unwrap(), 2_202_250.0),
        "{}",
        p["location_g"]
    );

    // A run inside GCP project ml-prod in February: detail. One in another project: counted.
    let inside = trace(dir, "inside.csv", 100.0, "2026-02-10");
    let outside = trace(dir, "outside.csv", 100.0, "2026-04-10");
    for (f, project) in [(&inside, "ml-prod"), (&outside, "other")] {
        wp(dir)
            .arg("import")
            .arg(f)
            .args(["--zone", "gcp:europe-west1", "--label"])
            .arg(format!("project={project}"))
            .assert()
            .success();
    }
    let runs = {
        let o = wp(dir)
            .args(["runs", "--json", "--limit", "0"])
            .output()
            .unwrap();
        json(&o.stdout)
    };
    let outside_g = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["labels"]["project"] == "other")
        .map(|r| {
            r["carbon"]["operational_g"].as_f64().unwrap()
                + r["carbon"]["embodied_g"].as_f64().unwrap()
        })
        .unwrap();
    assert!(outside_g > 0.0);
    let p = portfolio(dir);
    assert!(
        close(p["location_g"].as_f64().unwrap(), 2_202_250.0 + outside_g),
        "{} vs {}",
        p["location_g"],
        2_202_250.0 + outside_g
    );
    let lines = p["lines"].as_array().unwrap();
    let detail: Vec<&Value> = lines.iter().filter(|l| l["counted"] == false).collect();
    assert!(!detail.is_empty());
    assert!(detail.iter().all(|l| l["tier"] == "measured"
        && l["detail_of"]
            .as_str()
            .unwrap()
            .contains("ml-prod europe-west1 2026-02")));
    assert!(lines.iter().all(|l| l["tier_label"].is_string()));

    // The ESRS statement of the year: the same figures as Scope 3 category 1.
    let o = wp(dir)
        .args(["report", "--format", "esrs", "--period", "2026", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&o.stdout);
    let s3 = s["scope3_category1_tco2e"].as_f64().unwrap();
    // The run's embodied carbon is not Scope 3 category 1 in the ESRS statement.
    let outside_op_g = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["labels"]["project"] == "other")
        .map(|r| r["carbon"]["operational_g"].as_f64().unwrap())
        .unwrap();
    assert!(close(s3, (2_202_250.0 + outside_op_g) / 1e6), "{s3}");
    assert_eq!(s["records"], 49);

    // A month against the one before: March (GCP 195, AWS 175, Azure 58 kg) against February
    // (GCP 182.5 + 311, AWS 150, Azure 60.25 kg; the run inside ml-prod is detail).
    let o = wp(dir)
        .args([
            "report",
            "--format",
            "portfolio",
            "--period",
            "2026-03",
            "--json",
        ])
        .output()
        .unwrap();
    let m = json(&o.stdout);
    assert_eq!(m["previous"]["period"], "2026-02");
    assert!(close(
        m["previous"]["location_g"].as_f64().unwrap(),
        703_750.0
    ));
    assert!(close(m["location_g"].as_f64().unwrap(), 428_000.0));
    let o = wp(dir)
        .args(["report", "--format", "portfolio", "--period", "2026-03"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("| Change against 2026-02 | location-based -39.2 %"),
        "{md}"
    );

    // HTML and CSV forms from -o's extension.
    for ext in ["html", "csv", "md"] {
        let out = dir.join(format!("p.{ext}"));
        wp(dir)
            .args(["report", "--format", "portfolio", "--period", "2026", "-o"])
            .arg(&out)
            .assert()
            .success();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("provider-reported"), "{ext}");
    }
}

#[test]
fn bad_provider_files_are_refused_whole_naming_file_line_and_field() {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    let dir = d.path();
    let gcp = std::fs::read_to_string(fixture("gcp-carbon-footprint.csv")).unwrap();
    // A column renamed by a newer export.
    let renamed = dir.join("renamed.csv");
    std::fs::write(
        &renamed,
        gcp.replace("scope2.market_based", "scope2.market"),
    )
    .unwrap();
    let o = wp(dir).arg("import").arg(&renamed).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("renamed.csv") && e.contains("line 1") && e.contains("scope2.market_based"),
        "{e}"
    );
    // A month present twice, on the last line: nothing of the file is stored.
    let twice = dir.join("twice.csv");
    std::fs::write(&twice, format!("{gcp}{}\n", gcp.lines().nth(3).unwrap())).unwrap();
    let o = wp(dir).arg("import").arg(&twice).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 9"));
    // An error body saved instead of the response.
    let body = dir.join("err.json");
    std::fs::write(
        &body,
        r#"{"__type":"AccessDeniedException","Message":"not allowed"}"#,
    )
    .unwrap();
    let o = wp(dir).arg("import").arg(&body).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("AccessDeniedException"));
    // Nothing was stored by any of them.
    let o = wp(dir)
        .args(["report", "--format", "portfolio", "--period", "2026"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A restated month is refused whole unless --replace.
    wp(dir)
        .arg("import")
        .arg(fixture("gcp-carbon-footprint.csv"))
        .assert()
        .success();
    let restated = dir.join("restated.csv");
    std::fs::write(&restated, gcp.replace(",120,30,48", ",121,30,48")).unwrap();
    let o = wp(dir).arg("import").arg(&restated).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--replace"));
    wp(dir)
        .arg("import")
        .arg(&restated)
        .arg("--replace")
        .assert()
        .success();
    let p = portfolio(dir);
    assert!(
        close(p["location_g"].as_f64().unwrap(), 1_165_500.0),
        "{}",
        p["location_g"]
    );
}
