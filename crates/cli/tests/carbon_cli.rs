//! `wattprint intensity` and `wattprint estimate` end to end: published cases, provenance in
//! the output, exit statuses on bad input.

use serde_json::Value;
use std::process::Output;

mod common;

/// `intensity` and `estimate` read no sensor; the rest of the host is kept out all the same.
fn wattprint(args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("wattprint-carbon-cli-{}", std::process::id()));
    common::wattprint(&dir).args(args).output().unwrap()
}

fn json_of(args: &[&str]) -> Value {
    let o = wattprint(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn intensity_prints_embedded_values_with_provenance() {
    let fr = json_of(&["intensity", "FR", "--json"]);
    assert_eq!(fr["zone"], "FR");
    assert_eq!(fr["intensity_g_per_kwh"], 44.179085);
    assert_eq!(fr["year"], 2024);
    assert_eq!(fr["basis"], "lifecycle");
    assert!(fr["source"].as_str().unwrap().starts_with("Ember (2025)"));
    let de = json_of(&["intensity", "DEU", "--json"]);
    assert_eq!(de["zone"], "DE");
    assert_eq!(de["intensity_g_per_kwh"], 344.13992);
    let g = json_of(&["intensity", "gcp:europe-west1", "--json"]);
    assert_eq!(g["intensity_g_per_kwh"], 103.37);
    assert_eq!(g["basis"], "direct");
    assert_eq!(g["pue_default"]["pue"], 1.09);
    let text = wattprint(&["intensity", "FR"]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("44.2 gCO2e/kWh (2024)") && t.contains("not a Scope 2 factor"),
        "{t}"
    );
}

#[test]
fn aws_us_east_1_gives_egrid2023_srvc_with_the_reason() {
    let v = json_of(&["intensity", "aws:us-east-1", "--json"]);
    assert_eq!(v["zone"], "aws:us-east-1");
    assert_eq!(v["intensity_g_per_kwh"], 270.489);
    assert_eq!(v["year"], 2023);
    assert_eq!(v["basis"], "direct");
    assert_eq!(v["scope2_basis"], true);
    assert!(v["source"].as_str().unwrap().contains("eGRID2023 rev2"));
    assert!(v["licence"].as_str().unwrap().contains("public domain"));
    assert!(v["name"].as_str().unwrap().contains("SRVC"));
    let note = v["note"].as_str().unwrap();
    assert!(
        note.contains("subregion chosen over the state rate") && note.contains("US-VA"),
        "{note}"
    );
    let text = wattprint(&["intensity", "aws:us-east-1"]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("270.5 gCO2e/kWh (2023)") && t.contains("note: eGRID subregion"),
        "{t}"
    );
    for (zone, g) in [
        ("US-VA", 244.758),
        ("us-egrid:SRVC", 270.489),
        ("CA-ON", 38.0),
        ("AU-NSW", 640.0),
        ("IN-KA", 405.66),
        ("US-CAL-CISO", 195.037),
    ] {
        let v = json_of(&["intensity", zone, "--json"]);
        assert_eq!(v["intensity_g_per_kwh"], g, "{zone}");
        assert!(v["year"].as_i64().unwrap() >= 2022, "{zone}");
    }
    let o = wattprint(&["intensity", "US-MIDA-PJM"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("spans eGRID subregions RFCE, RFCW, SRVC"), "{e}");
}

#[test]
fn unknown_zone_exits_2_with_suggestions() {
    let o = wattprint(&["intensity", "gcp:europe-wst1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("nearest known: gcp:europe-west1"), "{e}");
    let o = wattprint(&[
        "estimate",
        "--power-w",
        "1",
        "--hours",
        "1",
        "--zone",
        "Atlantis",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn estimate_reproduces_gpt3_patterson_2021() {
    // 10,000 V100 x 14.8 days x 330 W x PUE 1.1 = 1,289 MWh; x 429 g/kWh = 553 t.
    let v = json_of(&[
        "estimate",
        "--devices",
        "10000",
        "--power-w",
        "330",
        "--days",
        "14.8",
        "--pue",
        "1.1",
        "--intensity",
        "429",
        "--json",
    ]);
    let mwh = v["energy"]["facility_j"].as_f64().unwrap() / 3.6e9;
    assert_eq!(mwh.round(), 1289.0, "{mwh}");
    assert_eq!(
        v["metrics"]["facility_energy_to_solution_j"],
        v["energy"]["facility_j"]
    );
    let t = v["carbon"]["operational_g"].as_f64().unwrap() / 1e6;
    assert_eq!(t.round(), 553.0, "{t}");
    assert_eq!(v["duration_s"].as_f64().unwrap(), 14.8 * 86_400.0);
    assert_eq!(v["carbon"]["method"], "location");
    assert_eq!(v["energy"]["pue"], 1.1);
}

#[test]
fn estimate_reproduces_the_sci_specification_example() {
    // 1,000 kg embodied, 4-year life, 1 h reserved, whole machine: M = 28.5 g.
    let v = json_of(&[
        "estimate",
        "--power-w",
        "0",
        "--hours",
        "1",
        "--embodied-kg",
        "1000",
        "--lifetime-years",
        "4",
        "--share",
        "1",
        "--unit-count",
        "1",
        "--unit-name",
        "job",
        "--zone",
        "FR",
        "--json",
    ]);
    let m = v["carbon"]["embodied_g"].as_f64().unwrap();
    assert_eq!((m * 10.0).round() / 10.0, 28.5);
    assert_eq!(
        (v["metrics"]["sci_g_per_unit"].as_f64().unwrap() * 10.0).round() / 10.0,
        28.5
    );
    assert_eq!(v["metrics"]["sci_unit"], "job");
}

#[test]
fn estimate_derives_time_from_flops_and_mfu_and_uses_the_gpu_table() {
    // 1e21 FLOPs on 10 V100 (125 TFLOPS fp16 tensor peak) at MFU 0.5: 1.6e6 s; 300 W TDP each.
    let v = json_of(&[
        "estimate",
        "--gpu",
        "V100-SXM2",
        "--devices",
        "10",
        "--flops",
        "1e21",
        "--mfu",
        "0.5",
        "--zone",
        "aws:us-east-1",
        "--inferences",
        "1000",
        "--tokens",
        "2000000",
        "--json",
    ]);
    let d = v["duration_s"].as_f64().unwrap();
    assert!((d - 1.6e6).abs() < 1e-6, "{d}");
    let it = v["energy"]["total_j"].as_f64().unwrap();
    assert!((it - 10.0 * 300.0 * 1.6e6).abs() < 1e-3);
    assert_eq!(v["energy"]["pue"], 1.15);
    let total = v["carbon"]["total_g"].as_f64().unwrap();
    let per = v["metrics"]["carbon_per_inference_g"].as_f64().unwrap();
    assert!((per - total / 1000.0).abs() < 1e-9);
    let k = v["metrics"]["carbon_per_1k_tokens_g"].as_f64().unwrap();
    assert!((k - total / 2000.0).abs() < 1e-9);
    assert!(v["metrics"]["peak_flops_per_watt"].as_f64().unwrap() > 0.0);
}

#[test]
fn estimate_without_zone_flags_the_world_fallback() {
    let v = json_of(&["estimate", "--power-w", "100", "--hours", "10", "--json"]);
    assert_eq!(v["carbon"]["fallback"], true);
    assert_eq!(v["carbon"]["zone"], "WORLD");
    let w: Vec<String> = serde_json::from_value(v["warnings"].clone()).unwrap();
    assert!(w.iter().any(|w| w.contains("FALLBACK")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("PUE 1.0")), "{w:?}");
}

#[test]
fn bad_input_exits_2_with_a_named_message() {
    for (args, needle) in [
        (
            vec!["estimate", "--power-w", "NaN", "--hours", "1"],
            "--power-w",
        ),
        (
            vec!["estimate", "--power-w=-5", "--hours", "1"],
            "--power-w",
        ),
        (
            vec!["estimate", "--power-w", "5", "--hours", "1", "--pue", "0.8"],
            "--pue",
        ),
        (
            vec!["estimate", "--power-w", "5", "--hours", "1", "--share", "3"],
            "--share",
        ),
        (
            vec![
                "estimate",
                "--power-w",
                "5",
                "--hours",
                "1",
                "--live",
                "bogus",
            ],
            "--live",
        ),
        (vec!["estimate", "--power-w", "5"], "duration"),
        (vec!["estimate", "--hours", "1"], "power"),
        (
            vec!["estimate", "--power-w", "1", "--days", "1e307"],
            "--days",
        ),
        (
            vec![
                "estimate",
                "--power-w",
                "1",
                "--hours",
                "1",
                "--intensity",
                "NaN",
            ],
            "--intensity",
        ),
        (vec!["estimate", "--gpu", "Z9000", "--hours", "1"], "--gpu"),
        (
            vec![
                "estimate",
                "--power-w",
                "5",
                "--flops",
                "1e18",
                "--mfu",
                "0.4",
            ],
            "peak",
        ),
    ] {
        let o = wattprint(&args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn malformed_intensity_file_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.csv");
    std::fs::write(
        &p,
        "timestamp,g\n2025-01-15T10:00:00Z,100\n2025-01-15T11:00:00Z,oops\n",
    )
    .unwrap();
    let ps = p.to_str().unwrap();
    let o = wattprint(&[
        "estimate",
        "--power-w",
        "5",
        "--hours",
        "1",
        "--intensity-file",
        ps,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("i.csv:3: field `intensity_g_per_kwh`"), "{e}");

    std::fs::write(
        &p,
        "timestamp,g\n2025-01-15T10:00:00Z,100\n2025-01-15T11:00:00Z,300\n",
    )
    .unwrap();
    let v = json_of(&[
        "estimate",
        "--power-w",
        "1000",
        "--hours",
        "2",
        "--pue",
        "1",
        "--zone",
        "FR",
        "--intensity-file",
        ps,
        "--json",
    ]);
    // Placed at the file's start (stated); 1 kWh at 100 and 1 kWh at 300.
    assert!((v["carbon"]["operational_g"].as_f64().unwrap() - 400.0).abs() < 1e-9);
    let w: Vec<String> = serde_json::from_value(v["warnings"].clone()).unwrap();
    assert!(w.iter().any(|w| w.contains("placed at the start")), "{w:?}");
}

#[test]
fn intensity_live_uses_the_provider_then_falls_back_visibly() {
    use std::io::{BufRead, BufReader, Write};
    let body = std::fs::read_to_string(format!(
        "{}/../carbon/tests/fixtures/ukci_intensity.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        // One request, then the server stops.
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(&s);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        let mut s = &s;
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let cache = tempfile::tempdir().unwrap();
    let run = |url: &str| {
        common::wattprint(cache.path())
            .args(["intensity", "GB", "--live", "ukci", "--json"])
            .env("WATTPRINT_UKCI_URL", url)
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap()
    };
    let o = run(&url);
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["intensity_g_per_kwh"], 263.0);
    assert_eq!(v["live_fallback"], false);
    assert!(v["source"]
        .as_str()
        .unwrap()
        .contains("UK Carbon Intensity"));

    // A dead provider and an empty cache: the embedded factor, said so.
    let empty = tempfile::tempdir().unwrap();
    let o = common::wattprint(empty.path())
        .args(["intensity", "GB", "--live", "ukci", "--json"])
        .env("WATTPRINT_UKCI_URL", &url)
        .env("XDG_CACHE_HOME", empty.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["live_fallback"], true);
    assert!(v["source"].as_str().unwrap().starts_with("Ember"));
}

/// `run` on a machine with no sensors but a fake procfs (the utilisation model).
fn run_in_fake_machine(dir: &std::path::Path, args: &[&str]) -> Output {
    common::wattprint(dir).args(args).output().unwrap()
}

#[test]
fn run_reports_operational_and_embodied_carbon_with_zone_and_source() {
    let d = tempfile::tempdir().unwrap();
    let o = run_in_fake_machine(
        d.path(),
        &[
            "run",
            "--no-store",
            "--json",
            "--zone",
            "gcp:europe-west1",
            "--",
            "true",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["carbon"];
    assert_eq!(c["zone"], "gcp:europe-west1");
    assert_eq!(c["intensity_g_per_kwh"], 103.37);
    assert_eq!(v["energy"]["pue"], 1.09);
    let total_j = v["energy"]["total_j"].as_f64().unwrap();
    let op = c["operational_g"].as_f64().unwrap();
    assert!((op - total_j / 3.6e6 * 1.09 * 103.37).abs() < 1e-12, "{op}");
    assert!(c["embodied_g"].as_f64().unwrap() > 0.0);
    assert!(c["embodied_source"]
        .as_str()
        .unwrap()
        .contains("default server"));
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("zone gcp:europe-west1") && summary.contains("region-carbon-info"),
        "{summary}"
    );
    assert!(summary.contains("embodied"), "{summary}");
}

#[test]
fn run_refuses_bad_carbon_options_before_starting_the_command() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let m = marker.to_str().unwrap();
    for bad in [["--zone", "Narnia"], ["--pue", "0.5"], ["--live", "nope"]] {
        let mut args = vec!["run", "--no-store"];
        args.extend(bad);
        args.extend(["--", "touch", m]);
        let o = run_in_fake_machine(d.path(), &args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!marker.exists(), "{bad:?}: the command ran");
    }
}

/// `--pue 1e308` and friends: every numeric option refuses a value outside its physical
/// range with exit 2 and a message naming the option, before anything is measured or stored.
#[test]
fn absurd_numbers_are_refused_by_name_across_options() {
    let base = [
        "estimate",
        "--power-w",
        "300",
        "--hours",
        "1",
        "--zone",
        "FR",
    ];
    for (opt, value) in [
        ("--pue", "1e308"),
        ("--pue", "0.5"),
        ("--intensity", "1e308"),
        ("--market-factor", "1e9"),
        ("--embodied-kg", "1e300"),
        ("--lifetime-years", "1e6"),
        ("--share", "2"),
        ("--unit-count", "1e300"),
        ("--tokens", "1e300"),
        ("--inferences", "1e300"),
        ("--devices", "1e300"),
        ("--power-w", "1e300"),
        ("--hours", "1e300"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        if opt == "--power-w" || opt == "--hours" {
            let at = args.iter().position(|a| *a == opt).unwrap();
            args[at + 1] = value;
        } else {
            args.extend([opt, value]);
        }
        let o = wattprint(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{opt} {value}: {err}");
        assert!(err.contains(opt), "{opt} {value}: {err}");
    }
    // run: the same carbon options, and the sampling interval, refused before the command runs.
    for args in [
        ["run", "--pue", "1e308", "--", "true"],
        ["run", "--interval", "99999999999999999999s", "--", "true"],
    ] {
        let o = wattprint(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(args[1]) || err.contains("interval"), "{err}");
    }
}
