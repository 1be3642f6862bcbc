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

/// The issue's "done when": a year of mixed data (measured runs in gcp:europe-west1, a GCP
/// and an AWS export, an Azure report, a FOCUS file with no carbon) gives one ESRS statement
/// and one portfolio report whose totals equal a hand computation, every line with its tier.
#[test]
fn a_year_of_mixed_data_gives_one_statement_and_one_portfolio_equal_to_the_hand_sum() {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    let dir = d.path();
    for f in [
        "gcp-carbon-footprint.csv",
        "gcp-carbon-footprint.ndjson", // April of the same export, as newline-delimited JSON
        "aws-carbon-emissions.csv",
        "aws-sustainability-api.json",
        "azure-monthly-summary.json",
    ] {
        wp(dir).arg("import").arg(fixture(f)).assert().success();
    }
    // FOCUS with no carbon: 1,000 GB of data transfer in us-east-1 (an account the AWS export
    // does not cover), and a tax row that is not usage.
    let focus = dir.join("focus.csv");
    std::fs::write(
        &focus,
        "BillingAccountId,ChargeCategory,ChargeDescription,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,ProviderName,RegionId,ServiceCategory,ServiceName,SubAccountId,BilledCost\n\
         B,Usage,Data transfer out to the internet,2026-05-10 00:00:00,1000,GB,AWS,us-east-1,Networking,Amazon Virtual Private Cloud,333333333333,90\n\
         B,Tax,Sales tax,2026-05-10 00:00:00,1,,AWS,us-east-1,Other,Tax,333333333333,9\n",
    )
    .unwrap();
    wp(dir).arg("import").arg(&focus).assert().success();
    // Measured runs in gcp:europe-west1: one inside project ml-prod in February (the GCP
    // export covers it: detail), one in a project no export names (counted).
    for (name, day, project) in [
        ("inside.csv", "2026-02-10", "ml-prod"),
        ("outside.csv", "2026-04-10", "other"),
    ] {
        wp(dir)
            .arg("import")
            .arg(trace(dir, name, 100.0, day))
            .args(["--zone", "gcp:europe-west1", "--label"])
            .arg(format!("project={project}"))
            .args(["--label", "model=llama-8b"])
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
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let other = runs
        .iter()
        .find(|r| r["labels"]["project"] == "other")
        .unwrap();
    let other_op_g = other["carbon"]["operational_g"].as_f64().unwrap();
    let other_emb_g = other["carbon"]["embodied_g"].as_f64().unwrap();
    assert!(other_op_g > 0.0);
    let facility_j: f64 = runs
        .iter()
        .map(|r| r["energy"]["facility_j"].as_f64().unwrap())
        .sum();
    assert!(facility_j >= 2.0 * 1000.0, "{facility_j}"); // 100 W x 10 s each, PUE >= 1

    // By hand. Providers, kg location-based (the fixtures' rows summed): GCP 1164.5 (CSV)
    // + 212 (NDJSON), AWS 460 (CARBON_EMISSIONS) + 192 (Sustainability API), Azure 173.75.
    let providers_g = 2_202_250.0;
    // The estimate: 1,000 GB x 0.001 kWh/GB (CCF networking) x PUE 1.15 (AWS) x 270.489
    // gCO2e/kWh (eGRID2023 SRVC, the grid of us-east-1).
    let estimate_kwh = 1000.0 * 0.001 * 1.15;
    let estimate_g = estimate_kwh * 270.489;
    let location_g = providers_g + estimate_g + other_op_g + other_emb_g;

    let p = portfolio(dir);
    assert!(
        close(p["location_g"].as_f64().unwrap(), location_g),
        "{} vs {location_g}",
        p["location_g"]
    );
    let tier = |label: &str| {
        p["by_tier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == label)
            .map(|g| g["location_g"].as_f64().unwrap())
            .unwrap_or(0.0)
    };
    assert!(close(tier("provider-reported"), providers_g));
    assert!(close(tier("estimate (CCF method)"), estimate_g));
    assert!(close(tier("measured"), other_op_g + other_emb_g));
    // Energy: both measured runs (the one inside ml-prod too: the GCP figure has none) and
    // the estimate; the provider lines carry none and are counted as such.
    let mwh = (facility_j / 3.6e6 + estimate_kwh) / 1000.0;
    assert!(
        close(p["energy_mwh"].as_f64().unwrap(), mwh),
        "{} vs {mwh}",
        p["energy_mwh"]
    );
    assert!(close(
        p["estimated_energy_mwh"].as_f64().unwrap(),
        estimate_kwh / 1000.0
    ));
    assert!(p["lines_without_energy"].as_u64().unwrap() > 0);
    // Every line labelled with its tier; the run inside ml-prod is detail, named by its model.
    let lines = p["lines"].as_array().unwrap();
    for l in lines {
        let label = l["tier_label"].as_str().unwrap();
        assert!(
            ["measured", "provider-reported", "estimate (CCF method)"].contains(&label),
            "{label}"
        );
    }
    let detail: Vec<&Value> = lines.iter().filter(|l| l["counted"] == false).collect();
    assert!(!detail.is_empty());
    assert!(
        detail
            .iter()
            .all(|l| l["tier"] == "measured"
                && l["note"].as_str().unwrap().contains("model=llama-8b"))
    );
    // The Operational Overhead Score per tier: the export a month late with no compute.
    let oh = p["overhead"].as_array().unwrap();
    assert_eq!(oh.len(), 5);
    assert_eq!(oh[0]["route"], "provider-export");
    assert_eq!(oh[0]["tier"], "provider-reported");
    assert_eq!(oh[0]["latency_s"].as_f64().unwrap(), 30.0 * 86_400.0);
    assert_eq!(oh[0]["compute"]["kind"], "none");

    // The ESRS statement of the same year: the clouds' figures, the estimate and the cloud
    // run's operational carbon as Scope 3 category 1; energy from measured runs only.
    let o = wp(dir)
        .args(["report", "--format", "esrs", "--period", "2026", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json(&o.stdout);
    let s3 = s["scope3_category1_tco2e"].as_f64().unwrap();
    let want = (providers_g + estimate_g + other_op_g) / 1e6;
    assert!(close(s3, want), "{s3} vs {want}");
    assert!(s["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| !l["tier"].as_str().unwrap().is_empty()));
}
