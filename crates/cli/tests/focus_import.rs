//! `wattprint import` of a FOCUS billing export: detection by header, usage-based estimates
//! stored as portfolio records, rows it cannot estimate listed, re-import not counted twice.

mod common;

fn sample(name: &str) -> String {
    format!("{}/../../examples/focus/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_focus_file_is_detected_estimated_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::wattprint(dir.path())
        .args(["import", &sample("focus-1.0-sample-aws.csv"), "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v = common::json_of(&o.stdout);
    assert_eq!(v["format"], "focus");
    assert_eq!(v["label"], "estimate (CCF method)");
    assert_eq!(v["rows"], 300);
    let (est, not, skip) = (
        v["estimated_rows"].as_u64().unwrap(),
        v["not_estimated_rows"].as_u64().unwrap(),
        v["skipped_rows"].as_u64().unwrap(),
    );
    assert_eq!(est + not + skip, 300);
    let records = v["records"].as_array().unwrap();
    assert!(!records.is_empty());
    for r in records {
        assert_eq!(r["tier"], "estimate");
        assert!(r["low_g"].as_f64().is_some() || r["scope"] == "scope3");
    }
    assert!(
        err.contains("not estimated (counted, never guessed)"),
        "{err}"
    );
    assert!(err.contains("gpu instance (g5)"), "{err}");
    assert!(
        err.contains(&format!("stored {} estimate record(s)", records.len())),
        "{err}"
    );
    // The same file again: every record already stored, nothing counted twice.
    let o = common::wattprint(dir.path())
        .args([
            "import",
            &sample("focus-1.0-sample-aws.csv"),
            "--format",
            "focus",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "stored 0 estimate record(s) ({} already stored)",
            records.len()
        )),
        "{err}"
    );
}

#[test]
fn a_bad_focus_row_names_file_line_and_field_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bill.csv");
    std::fs::write(
        &f,
        "ChargeCategory,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,ProviderName,RegionId,ChargeDescription\n\
         Usage,2024-09-01,1,Hours,AWS,us-east-1,$0.1 per On Demand Linux c5.large Instance Hour\n\
         Usage,2024-09-01,lots,Hours,AWS,us-east-1,$0.1 per On Demand Linux c5.large Instance Hour\n",
    )
    .unwrap();
    let o = common::wattprint(dir.path())
        .args(["import", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bill.csv: line 3, field `ConsumedQuantity`"),
        "{err}"
    );
    assert!(!err.contains("stored"), "{err}");
    let o = common::wattprint(dir.path())
        .args(["import", f.to_str().unwrap(), "--utilisation", "2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn advise_scores_the_overhead_of_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::wattprint(dir.path())
        .args([
            "advise",
            "--goal",
            "compliance",
            "--data",
            "cloud",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = common::json_of(&o.stdout);
    let by = v["operational_overhead_by_source"].as_array().unwrap();
    let ids: Vec<&str> = by.iter().map(|s| s["route"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "provider-export",
            "usage-estimate",
            "run",
            "python",
            "agent"
        ]
    );
    assert_eq!(by[0]["tier"], "provider-reported");
    assert_eq!(by[0]["latency_level"], "high");
    assert_eq!(by[0]["compute"]["kind"], "none");
    // An empty history: the typical figure, said to be typical.
    assert_eq!(by[2]["compute"]["kind"], "typical");
    // Beside each recommendation.
    assert_eq!(
        v["sources"][0]["operational_overhead"]["route"],
        "provider-export"
    );
    for m in v["metrics"].as_array().unwrap() {
        assert!(m["operational_overhead"]["score"].is_string(), "{m}");
    }
}

/// `import /dev/stdin` from a pipe: the file is read once whatever its format, so the format
/// check does not eat the header (each kind gives what the same file by path gives).
#[test]
fn a_pipe_is_read_once_whatever_the_format() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let smi = dir.path().join("smi.csv");
    std::fs::write(
        &smi,
        "timestamp, index, power.draw [W]\n\
         2026/01/01 00:00:00.000, 0, 100.00 W\n\
         2026/01/01 00:00:10.000, 0, 300.00 W\n",
    )
    .unwrap();
    let portfolio = format!(
        "{}/../../examples/portfolio/gcp-carbon-footprint.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let focus = sample("focus-1.0-sample-aws.csv");
    let json = |args: &[&str], stdin: Option<&str>| {
        let mut c = common::wattprint(dir.path());
        c.args(["import", "--no-store", "--json"]).args(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(f) = stdin {
            pipe.write_all(&std::fs::read(f).unwrap()).unwrap();
        }
        drop(pipe);
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        let start = text.find(['{', '[']).expect("JSON on stdout");
        serde_json::from_str::<serde_json::Value>(&text[start..]).unwrap()
    };
    // nvidia-smi: 10 s between 100 W and 300 W, 2000 J by the trapezoid rule.
    let by_path = json(&[smi.to_str().unwrap()], None);
    let piped = json(&["/dev/stdin"], Some(smi.to_str().unwrap()));
    let energy = |v: &serde_json::Value| v[0]["energy"]["total_j"].as_f64();
    assert_eq!(energy(&by_path), Some(2000.0), "{by_path}");
    assert_eq!(energy(&piped), Some(2000.0), "{piped}");
    // FOCUS: all 300 rows.
    let piped = json(&["/dev/stdin"], Some(&focus));
    assert_eq!(piped["format"], "focus");
    assert_eq!(piped["rows"], 300);
    // A provider export: the same records as by path, but for the file name they cite.
    let without_file = |mut v: serde_json::Value| {
        for r in v.as_array_mut().unwrap() {
            r["source"]["file"] = serde_json::Value::Null;
        }
        v
    };
    let by_path = json(&[&portfolio], None);
    let piped = json(&["/dev/stdin"], Some(&portfolio));
    assert_eq!(piped.as_array().map(Vec::len), Some(24), "{piped}");
    assert_eq!(without_file(piped), without_file(by_path));
}
