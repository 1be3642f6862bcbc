//! Tests of every importer and the export round trip.

use super::*;
use proptest::prelude::*;

const NVSMI: &str = "timestamp, index, name, power.draw [W]
2026/11/29 10:00:00.000, 0, NVIDIA H100 80GB HBM3, 100.00 W
2026/11/29 10:00:00.000, 1, NVIDIA H100 80GB HBM3, 200.00 W
2026/11/29 10:00:01.000, 0, NVIDIA H100 80GB HBM3, 300.00 W
2026/11/29 10:00:01.000, 1, NVIDIA H100 80GB HBM3, 200.00 W
2026/11/29 10:00:03.000, 0, NVIDIA H100 80GB HBM3, 300.00 W
2026/11/29 10:00:03.000, 1, NVIDIA H100 80GB HBM3, 200.00 W
";

#[test]
fn nvidia_smi_integrates_each_gpu_by_trapezoid_and_sums() {
    let r = &import(NVSMI, ImportFormat::NvidiaSmi, "gpu.csv").unwrap()[0];
    // GPU 0: (100+300)/2*1 + 300*2 = 800 J; GPU 1: 200*3 = 600 J.
    assert_eq!(r.energy.domains[0].joules, 800.0);
    assert_eq!(r.energy.domains[1].joules, 600.0);
    assert_eq!(r.energy.total_j, 1400.0);
    assert_eq!(r.duration_s, 3.0);
    assert_eq!(r.started_at, "2026-11-29T10:00:00Z");
    assert_eq!(r.host.gpu_models.len(), 2);
    assert!(r.timeline.as_ref().unwrap().t_s.len() >= 2);
    assert_eq!(detect_format(NVSMI), Some(ImportFormat::NvidiaSmi));
}

#[test]
fn nvidia_smi_nounits_and_na_values_become_gaps() {
    let s = "timestamp, index, power.draw [W]
2026/11/29 10:00:00.000, 0, 100
2026/11/29 10:00:01.000, 0, [N/A]
2026/11/29 10:00:02.000, 0, 100
2026/11/29 10:00:03.000, 0, 100
";
    let r = &import(s, ImportFormat::NvidiaSmi, "x").unwrap()[0];
    // 0..1 lost (restart after the gap), 2..3 counted: 100 J.
    assert_eq!(r.energy.total_j, 100.0);
    assert_eq!(r.energy.gaps.len(), 1);
    assert_eq!((r.energy.gaps[0].from_s, r.energy.gaps[0].to_s), (1.0, 2.0));
}

#[test]
fn nvidia_smi_wrong_units_and_bad_lines_name_the_line() {
    let e = import(
        "timestamp, power.draw [mW]\n2026/11/29 10:00:00, 5\n",
        ImportFormat::NvidiaSmi,
        "x",
    )
    .unwrap_err();
    assert!(e.to_string().contains("mW"), "{e}");
    let e = import(
        "timestamp, power.draw [W]\n2026/11/29 10:00:00, 5 W\n2026/11/29 10:00:01, 5 kW\n",
        ImportFormat::NvidiaSmi,
        "x",
    )
    .unwrap_err();
    assert_eq!(e.line, 3);
    let e = import(
        "timestamp, power.draw [W]\n2026/11/29 10:00:00, 5 W\nyesterday, 5 W\n",
        ImportFormat::NvidiaSmi,
        "x",
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "timestamp"));
    let e = import(
        "timestamp, power.draw [W]\n2026/11/29 10:00:00, 1e300 W\n",
        ImportFormat::NvidiaSmi,
        "x",
    )
    .unwrap_err();
    assert!(e.to_string().contains("check the unit"), "{e}");
    let e = import(
        "timestamp, power.draw [W]\n2026/11/29 10:00:02, 5 W\n2026/11/29 10:00:01, 5 W\n",
        ImportFormat::NvidiaSmi,
        "x",
    )
    .unwrap_err();
    assert!(e.to_string().contains("backwards"), "{e}");
}

const CODECARBON: &str = "timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue
2024-05-02T14:12:03,bert,5b0fa12a-3dd7-45bb-9766-cc326314d9f1,120.5,0.00521,4.3e-05,42.5,250.1,5.9,0.001422,0.008372,0.000197,0.009991,France,FRA,ile-de-france,,,Linux-6.1,3.11.4,2.3.4,16,AMD EPYC 7R13 Processor,1,1 x NVIDIA A100-SXM4-40GB,2.35,48.85,15.6,machine,N,1.0
2024-05-02T15:00:00,bert,7c1e0000-0000-0000-0000-000000000002,60,0.002,3.3e-05,42.5,250.1,5.9,0.0007,0.004,0.0001,0.0048,United States,USA,virginia,aws,us-east-1,Linux,3.11.4,2.3.4,16,AMD EPYC 7R13 Processor,1,1 x NVIDIA A100-SXM4-40GB,,,15.6,machine,Y,1.2
";

#[test]
fn codecarbon_rows_become_runs_with_their_own_figures() {
    let rs = import(CODECARBON, ImportFormat::CodeCarbon, "emissions.csv").unwrap();
    assert_eq!(rs.len(), 2);
    let r = &rs[0];
    assert!((r.energy.total_j - 0.009991 * 3.6e6).abs() < 1e-6);
    assert!((r.carbon.total_g - 5.21).abs() < 1e-9);
    assert_eq!(r.carbon.zone, "FRA");
    assert!(r.carbon.intensity_source.contains("CodeCarbon"));
    assert_eq!(r.energy.domains.len(), 3);
    assert_eq!(r.started_at, "2024-05-02T14:10:02Z");
    assert_eq!(r.labels["codecarbon.project"], "bert");
    assert_eq!(rs[1].carbon.zone, "aws:us-east-1");
    assert_eq!(rs[1].energy.pue, 1.2);
    assert_ne!(rs[0].id, rs[1].id);
    assert_eq!(detect_format(CODECARBON), Some(ImportFormat::CodeCarbon));
}

#[test]
fn codecarbon_bad_row_fails_the_whole_file() {
    let bad = CODECARBON.replacen("0.0048,United", "lots,United", 1);
    let e = import(&bad, ImportFormat::CodeCarbon, "x").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "energy_consumed"));
}

#[test]
fn trace_counters_and_power_rows_integrate() {
    let s = "# wattprint trace v1\n# started_at: 2026-11-29T10:00:00Z\nt_s,domain,kind,unit,value\n0,package-0,cpu-package,J,1000\n1,package-0,cpu-package,J,1030\n2,package-0,cpu-package,J,1070\n0,gpu-0,gpu,W,100\n2,gpu-0,gpu,W,200\n";
    let r = &import(s, ImportFormat::Trace, "t.csv").unwrap()[0];
    assert_eq!(r.energy.domains[0].joules, 70.0);
    assert_eq!(r.energy.domains[0].method, Method::Counter);
    assert_eq!(r.energy.domains[1].joules, 300.0);
    assert_eq!(r.energy.total_j, 370.0);
    assert_eq!(r.started_at, "2026-11-29T10:00:00Z");
    let e = import(
        "#x\nt_s,domain,unit,value\n0,a,J,5\n1,a,J,4\n",
        ImportFormat::Trace,
        "t",
    )
    .unwrap_err();
    assert_eq!(e.line, 4);
    assert!(e.to_string().contains("backwards"));
    let e = import(
        "t_s,domain,unit,value\n0,a,kWh,5\n",
        ImportFormat::Trace,
        "t",
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "unit"));
}

fn sample_run() -> RunReport {
    let mut r = RunReport::new("run-1".into());
    r.started_at = "2026-11-29T10:00:00Z".into();
    r.duration_s = 10.0;
    r.command = vec!["python".into(), "train.py".into()];
    for (n, k, j, c) in [
        ("package-0", DomainKind::CpuPackage, 123.456, true),
        ("core-0", DomainKind::CpuCore, 100.0, false),
        ("gpu-0", DomainKind::Gpu, 2000.125, true),
    ] {
        r.energy.domains.push(DomainEnergy {
            name: n.into(),
            kind: k,
            joules: j,
            source: "x".into(),
            method: Method::Counter,
            counted_in_total: c,
            device: None,
            avg_power_w: None,
            joules_low: None,
            joules_high: None,
            range_basis: None,
        });
    }
    r.energy.total_j = 2123.581;
    r.timeline = Some(TimelineReport {
        t_s: vec![2.5, 7.5],
        series: vec![wattprint_core::report::PowerSeries {
            domain: "gpu-0".into(),
            watts: vec![150.0, 250.0],
        }],
    });
    r
}

#[test]
fn a_run_exported_as_a_trace_imports_back_with_the_same_energy() {
    let r = sample_run();
    let s = export_trace(&r);
    let back = &import(&s, ImportFormat::Trace, "t").unwrap()[0];
    assert_eq!(back.id, "run-1");
    assert_eq!(back.started_at, r.started_at);
    assert_eq!(back.duration_s, 10.0);
    for (a, b) in r.energy.domains.iter().zip(&back.energy.domains) {
        assert_eq!(
            (a.name.as_str(), a.kind, a.counted_in_total),
            (b.name.as_str(), b.kind, b.counted_in_total)
        );
        assert!(
            (a.joules - b.joules).abs() < 1e-9,
            "{} {} {}",
            a.name,
            a.joules,
            b.joules
        );
    }
    assert!((back.energy.total_j - r.energy.total_j).abs() < 1e-9);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&bytes);
        for f in [ImportFormat::NvidiaSmi, ImportFormat::CodeCarbon, ImportFormat::Trace] {
            let _ = import(&s, f, "fuzz");
        }
        let _ = detect_format(&s);
    }

    #[test]
    fn truncated_files_fail_cleanly_or_import_a_prefix(cut in 0usize..700) {
        for (text, f) in [(NVSMI, ImportFormat::NvidiaSmi), (CODECARBON, ImportFormat::CodeCarbon)] {
            let cut = cut.min(text.len());
            let s = &text[..cut];
            if let Ok(rs) = import(s, f, "trunc") {
                for r in rs {
                    prop_assert!(r.energy.total_j.is_finite() && r.energy.total_j >= 0.0);
                }
            }
        }
    }

    #[test]
    fn huge_or_odd_values_are_refused_not_stored(v in prop_oneof![Just("1e309".to_string()), Just("-5".to_string()), Just("inf".to_string()), Just("NaNx".to_string()), (1e7f64..1e300).prop_map(|x| x.to_string())]) {
        let s = format!("timestamp, power.draw [W]\n2026/11/29 10:00:00, 5 W\n2026/11/29 10:00:01, {v} W\n");
        prop_assert!(import(&s, ImportFormat::NvidiaSmi, "x").is_err());
        let s = format!("t_s,domain,unit,value\n0,a,W,5\n1,a,W,{v}\n");
        prop_assert!(import(&s, ImportFormat::Trace, "x").is_err());
    }

    #[test]
    fn exported_traces_round_trip(js in proptest::collection::vec(0.0f64..1e9, 1..5), dur in 0.001f64..1e6) {
        let mut r = sample_run();
        r.duration_s = dur;
        r.timeline = None;
        r.energy.domains.truncate(0);
        for (i, j) in js.iter().enumerate() {
            r.energy.domains.push(DomainEnergy { name: format!("d{i}"), kind: DomainKind::Node, joules: *j, source: "x".into(), method: Method::Power, counted_in_total: true, device: None, avg_power_w: None, joules_low: None, joules_high: None, range_basis: None });
        }
        let back = &import(&export_trace(&r), ImportFormat::Trace, "t").unwrap()[0];
        for (a, b) in r.energy.domains.iter().zip(&back.energy.domains) {
            prop_assert_eq!(a.joules, b.joules);
        }
    }
}

const SKIP: ImportOptions = ImportOptions {
    bad_rows: BadRows::Skip,
};

/// CODECARBON with its second run's row cut short after `duration` (a crashed writer).
fn codecarbon_with_short_row() -> String {
    let mut lines: Vec<&str> = CODECARBON.lines().collect();
    lines.insert(2, "2024-05-02T14:30:00,bert,cut-row,30");
    lines.join("\n") + "\n"
}

#[test]
fn a_codecarbon_short_row_is_an_error_naming_its_line_and_both_counts() {
    let e = import(
        &codecarbon_with_short_row(),
        ImportFormat::CodeCarbon,
        "emissions.csv",
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "field count"));
    assert!(
        e.message.starts_with("4 fields where the header has 31"),
        "{e}"
    );
    assert!(e.message.contains("--skip-bad-rows"), "{e}");
    // A long row (a comma in an unquoted project name) is refused the same way, not read
    // shifted by one column.
    let long = CODECARBON.replacen(",bert,5b0f", ",bert,v2,5b0f", 1);
    let e = import(&long, ImportFormat::CodeCarbon, "x").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(
        e.message.starts_with("32 fields where the header has 31"),
        "{e}"
    );
}

#[test]
fn skip_bad_rows_skips_them_and_counts_them_in_every_reports_warnings() {
    let rs = import_with(
        &codecarbon_with_short_row(),
        ImportFormat::CodeCarbon,
        "emissions.csv",
        &SKIP,
    )
    .unwrap();
    assert_eq!(rs.len(), 2, "the two whole rows are imported");
    assert!((rs[1].energy.total_j - 0.0048 * 3.6e6).abs() < 1e-6);
    for r in &rs {
        let w = r
            .warnings
            .iter()
            .find(|w| w.contains("--skip-bad-rows"))
            .expect("the skipped row is counted");
        assert!(
            w.starts_with("1 row(s) skipped") && w.contains("line 3 (4 fields)"),
            "{w}"
        );
        assert!(w.contains("header's 31"), "{w}");
    }
    // Without bad rows, no such warning.
    let rs = import_with(CODECARBON, ImportFormat::CodeCarbon, "x", &SKIP).unwrap();
    assert!(rs
        .iter()
        .all(|r| !r.warnings.iter().any(|w| w.contains("skipped"))));
}

#[test]
fn recent_nvidia_smi_power_columns_import() {
    // Driver R535+ with `--query-gpu=timestamp,index,power.draw.average,power.draw.instant`.
    let both = "timestamp, index, power.draw.average [W], power.draw.instant [W]
2026/11/29 10:00:00.000, 0, 100.00 W, 90.00 W
2026/11/29 10:00:01.000, 0, 300.00 W, 350.00 W
2026/11/29 10:00:02.000, 0, 300.00 W, 280.00 W
";
    assert_eq!(detect_format(both), Some(ImportFormat::NvidiaSmi));
    let r = &import(both, ImportFormat::NvidiaSmi, "gpu.csv").unwrap()[0];
    // The 1 s average: (100+300)/2 + 300 = 500 J.
    assert_eq!(r.energy.total_j, 500.0);
    assert_eq!(
        r.energy.domains[0].source.as_str(),
        "nvidia-smi log (power.draw.average)"
    );
    let instant = "timestamp, index, power.draw.instant [W]
2026/11/29 10:00:00.000, 0, 90.00 W
2026/11/29 10:00:02.000, 0, 110.00 W
";
    let r = &import(instant, ImportFormat::NvidiaSmi, "gpu.csv").unwrap()[0];
    assert_eq!(r.energy.total_j, 200.0);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("power.draw.instant is integrated")));
    // `power.draw` first where a log has it beside the new ones.
    let all = "timestamp, power.draw [W], power.draw.instant [W]
2026/11/29 10:00:00.000, 100 W, 1 W
2026/11/29 10:00:01.000, 100 W, 1 W
";
    assert_eq!(
        import(all, ImportFormat::NvidiaSmi, "x").unwrap()[0]
            .energy
            .total_j,
        100.0
    );
    let e = import(
        "timestamp, index, temperature.gpu\n2026/11/29 10:00:00, 0, 40\n",
        ImportFormat::NvidiaSmi,
        "x",
    )
    .unwrap_err();
    assert!(e.message.contains("power.draw.average"), "{e}");
}

#[test]
fn nvidia_smi_and_trace_rows_follow_the_same_rule() {
    // A truncated last line of a log still being written.
    let cut = format!("{NVSMI}2026/11/29 10:00:04.000, 0\n");
    let e = import(&cut, ImportFormat::NvidiaSmi, "x").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (8, "field count"));
    assert!(
        e.message.starts_with("2 fields where the header has 4"),
        "{e}"
    );
    let r = &import_with(&cut, ImportFormat::NvidiaSmi, "x", &SKIP).unwrap()[0];
    assert_eq!(r.energy.total_j, 1400.0);
    assert!(r.warnings.iter().any(|w| w.contains("line 8 (2 fields)")));
    // In a trace, lines are counted from the top of the file, preamble included.
    let t = "# wattprint trace v1\n# started_at: 2026-11-29T10:00:00Z\nt_s,domain,unit,value\n0,gpu-0,W,100\n1,gpu-0,W\n2,gpu-0,W,100\n";
    let e = import(t, ImportFormat::Trace, "t.csv").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (5, "field count"));
    let r = &import_with(t, ImportFormat::Trace, "t.csv", &SKIP).unwrap()[0];
    assert_eq!(r.energy.total_j, 200.0);
    assert!(
        r.warnings.iter().any(|w| w.contains("line 5 (3 fields)")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn many_skipped_rows_are_all_counted_and_the_first_named() {
    let mut s = String::from(NVSMI);
    for _ in 0..12 {
        s.push_str("2026/11/29 10:00:04.000, 0\n");
    }
    let r = &import_with(&s, ImportFormat::NvidiaSmi, "x", &SKIP).unwrap()[0];
    let w = r.warnings.iter().find(|w| w.contains("skipped")).unwrap();
    assert!(w.starts_with("12 row(s) skipped"), "{w}");
    assert!(w.contains("line 17 (2 fields) and 2 more"), "{w}");
}

/// Inputs whose reports are pinned in `testdata/golden.json` (written by the whole-text
/// importers before they streamed).
fn golden_inputs() -> Vec<(&'static str, String, ImportFormat, ImportOptions)> {
    let gaps = "timestamp, index, power.draw [W]
2026/11/29 10:00:00.000, 0, 100
2026/11/29 10:00:01.000, 0, [N/A]
2026/11/29 10:00:02.000, 0, 100
2026/11/29 10:00:03.000, 0, 100
";
    // 900 samples of two GPUs, a 0.1 s period, a gap: more than the 512 chart points, fewer
    // than a domain's 1024.
    let mut long = String::from("timestamp, index, name, power.draw [W]\n");
    for i in 0..900u32 {
        for g in 0..2u32 {
            let w = if i == 300 && g == 1 {
                "[N/A]".to_string()
            } else {
                format!("{:.2} W", 100.0 + f64::from((i * 7 + g * 13) % 250))
            };
            long.push_str(&format!(
                "2026/11/29 10:{:02}:{:02}.{}00, {g}, NVIDIA H100, {w}\n",
                i / 600,
                (i / 10) % 60,
                i % 10
            ));
        }
    }
    let trace = "# wattprint trace v1\n# started_at: 2026-11-29T10:00:00Z\nt_s,domain,kind,unit,value\n0,package-0,cpu-package,J,1000\n1,package-0,cpu-package,J,1030\n2,package-0,cpu-package,J,1070\n0,gpu-0,gpu,W,100\n2,gpu-0,gpu,W,200\n";
    let mut many = String::from(NVSMI);
    for _ in 0..12 {
        many.push_str("2026/11/29 10:00:04.000, 0\n");
    }
    let d = ImportOptions::default();
    vec![
        ("nvsmi", NVSMI.to_string(), ImportFormat::NvidiaSmi, d),
        ("nvsmi-gaps", gaps.to_string(), ImportFormat::NvidiaSmi, d),
        ("nvsmi-long", long, ImportFormat::NvidiaSmi, d),
        ("nvsmi-skipped", many, ImportFormat::NvidiaSmi, SKIP),
        (
            "codecarbon",
            CODECARBON.to_string(),
            ImportFormat::CodeCarbon,
            d,
        ),
        (
            "codecarbon-skip",
            codecarbon_with_short_row(),
            ImportFormat::CodeCarbon,
            SKIP,
        ),
        ("trace", trace.to_string(), ImportFormat::Trace, d),
        (
            "trace-export",
            export_trace(&sample_run()),
            ImportFormat::Trace,
            d,
        ),
        (
            "trace-export-long",
            export_trace(
                &import(&long_nvsmi_for_export(), ImportFormat::NvidiaSmi, "x").unwrap()[0],
            ),
            ImportFormat::Trace,
            d,
        ),
    ]
}

fn long_nvsmi_for_export() -> String {
    let mut s = String::from("timestamp, index, power.draw [W]\n");
    for i in 0..400u32 {
        for g in 0..3u32 {
            s.push_str(&format!(
                "2026/11/29 10:{:02}:{:02}.000, {g}, {}.5 W\n",
                i / 60,
                i % 60,
                50 + (i * 3 + g * 11) % 200
            ));
        }
    }
    s
}

#[test]
fn streaming_gives_the_reports_the_whole_text_importers_gave() {
    // testdata/golden.json: these inputs' reports as imported by the importers that read the
    // file whole (commit b2e1967), ids (content hashes) and timelines included.
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("testdata/golden.json")).unwrap();
    for (name, text, f, o) in golden_inputs() {
        let rs = import_with(&text, f, "golden.csv", &o).unwrap();
        assert_same(&serde_json::to_value(&rs).unwrap(), &golden[name], name);
        // Through a reader that hands out 1 to 7 bytes at a time: the same reports.
        let tiny = std::io::BufReader::with_capacity(1 + text.len() % 7, text.as_bytes());
        let rs = import_reader(tiny, f, "golden.csv", &o, ReadLimits::NONE).unwrap();
        assert_same(
            &serde_json::to_value(&rs).unwrap(),
            &golden[name],
            &format!("{name} (tiny reads)"),
        );
    }
}

/// Asserts `a == b`, naming the first path where they differ (reports are too long to print).
fn assert_same(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.dedup();
            for k in keys {
                assert_same(&x[k], &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_same(p, q, &format!("{path}[{i}]"));
            }
        }
        // serde_json reads a float back to within an ulp or so (its exact parser is a
        // feature the workspace does not enable): equal to 1e-15, relative.
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-15 * x.abs().max(y.abs()),
                "{path}: {x} != {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn ids_hash_the_bytes_as_before_however_they_are_read() {
    // The ids the whole-text importer gave these inputs (FNV-1a 64 of the text).
    assert_eq!(
        import(NVSMI, ImportFormat::NvidiaSmi, "x").unwrap()[0].id,
        "imp-c005e92c44347c88"
    );
    assert_eq!(
        import(CODECARBON, ImportFormat::CodeCarbon, "x").unwrap()[1].id,
        "imp-2c8bab2c400ab863-1"
    );
    // Fed in pieces, the hash is the hash of the whole.
    let mut whole = ContentHash::default();
    whole.update(NVSMI.as_bytes());
    let mut pieces = ContentHash::default();
    for c in NVSMI.as_bytes().chunks(3) {
        pieces.update(c);
    }
    assert_eq!(whole, pieces);
    assert_eq!(whole.hex(), "c005e92c44347c88");
    // Bytes that are not UTF-8 are hashed as the U+FFFD the text holds, as before.
    let latin1 = NVSMI.replace("NVIDIA H100", "NVIDIA H\u{e9}").into_bytes();
    let raw: Vec<u8> = NVSMI.replace("NVIDIA H100", "NVIDIA H\u{1}").into_bytes();
    let raw: Vec<u8> = raw
        .into_iter()
        .map(|b| if b == 1 { 0xe9 } else { b })
        .collect();
    let lossy = String::from_utf8_lossy(&raw).into_owned();
    let from_raw = import_reader(
        &raw[..],
        ImportFormat::NvidiaSmi,
        "x",
        &ImportOptions::default(),
        ReadLimits::NONE,
    )
    .unwrap();
    let from_text = import(&lossy, ImportFormat::NvidiaSmi, "x").unwrap();
    assert_eq!(from_raw[0].id, from_text[0].id);
    assert_ne!(
        from_raw[0].id,
        import(
            std::str::from_utf8(&latin1).unwrap(),
            ImportFormat::NvidiaSmi,
            "x"
        )
        .unwrap()[0]
            .id
    );
    assert_eq!(from_raw[0].host.gpu_models[0], "NVIDIA H\u{fffd} 80GB HBM3");
}

/// An nvidia-smi log of `rows` samples of one GPU, one a second from 2026/11/01 00:00:00,
/// drawing 100, 200, 300 W in turn: made as it is read, never held.
struct SyntheticLog {
    rows: u64,
    next: u64,
    line: Vec<u8>,
    pos: usize,
}

impl std::io::Read for SyntheticLog {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.line.len() {
            if self.next > self.rows {
                return Ok(0);
            }
            self.line = if self.next == 0 {
                b"timestamp, index, name, power.draw [W]\n".to_vec()
            } else {
                let i = self.next - 1;
                let (d, s) = (i / 86_400, i % 86_400);
                format!(
                    "2026/11/{:02} {:02}:{:02}:{:02}.000, 0, NVIDIA H100, {}.00 W\n",
                    d + 1,
                    s / 3600,
                    (s / 60) % 60,
                    s % 60,
                    100 + (i % 3) * 100
                )
                .into_bytes()
            };
            self.pos = 0;
            self.next += 1;
        }
        let n = buf.len().min(self.line.len() - self.pos);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn two_million_rows_stream_into_a_bounded_timeline_and_exact_energy() {
    const ROWS: u64 = 2_000_000;
    let log = SyntheticLog {
        rows: ROWS,
        next: 0,
        line: Vec::new(),
        pos: 0,
    };
    let limits = ReadLimits {
        max_line_bytes: 1 << 20,
        max_total_bytes: 1 << 30,
    };
    let rs = import_reader(
        std::io::BufReader::new(log),
        ImportFormat::NvidiaSmi,
        "synthetic.csv",
        &ImportOptions::default(),
        limits,
    )
    .unwrap();
    let r = &rs[0];
    // 1,999,999 one-second intervals, 100->200 (150 J), 200->300 (250 J), 300->100 (200 J)
    // in turn: 666,666 whole turns of 600 J and one 150 J interval.
    assert_eq!(r.energy.total_j, 666_666.0 * 600.0 + 150.0);
    assert_eq!(r.duration_s, (ROWS - 1) as f64);
    // The chart: at most the 512 points timeline_of draws (from a domain series of at most
    // SERIES_POINTS), spanning the whole run, averaging the run's 200 W mean power.
    let tl = r.timeline.as_ref().unwrap();
    assert!(
        tl.t_s.len() <= 512 && tl.t_s.len() >= 256,
        "{}",
        tl.t_s.len()
    );
    let step = (ROWS / 256) as f64;
    assert!(
        tl.t_s[0] < step && *tl.t_s.last().unwrap() > (ROWS - 1) as f64 - step,
        "{} .. {}",
        tl.t_s[0],
        tl.t_s.last().unwrap()
    );
    let mean_w = tl.series[0].watts.iter().sum::<f64>() / tl.series[0].watts.len() as f64;
    assert!((mean_w - 200.0).abs() < 1.0, "{mean_w}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reading_in_small_pieces_gives_the_same_reports(
        rows in proptest::collection::vec((0u32..4, 0u32..400, 0u8..6), 1..40),
        cap in 1usize..48,
        blank_every in 2usize..9,
    ) {
        // nvidia-smi, trace and CodeCarbon text from the same rows, with blank lines, CRLF
        // and a comment here and there; then each read whole and through a tiny buffer.
        let mut nv = String::from("timestamp, index, power.draw [W]\r\n");
        let mut tr = String::from("# wattprint trace v1\nt_s,domain,unit,value\n");
        let mut cc = String::from("timestamp,project_name,duration,emissions,energy_consumed\n");
        for (k, (gpu, w, odd)) in rows.iter().enumerate() {
            let w = if *odd == 0 { "[N/A]".to_string() } else { format!("{w} W") };
            nv.push_str(&format!("2026/11/29 10:00:{:02}.000, {gpu}, {w}\r\n", k % 60));
            tr.push_str(&format!("{k},d{gpu},W,{}\n", if *odd == 0 { String::new() } else { (k * 3).to_string() }));
            cc.push_str(&format!("2026-11-29T10:00:{:02},p{gpu},{k},0.{odd},0.00{k}\n", k % 60));
            if k % blank_every == 0 {
                nv.push('\n');
                tr.push_str("# host: h\n\n");
                cc.push_str("\r\n");
            }
        }
        for (text, f) in [(&nv, ImportFormat::NvidiaSmi), (&tr, ImportFormat::Trace), (&cc, ImportFormat::CodeCarbon)] {
            for o in [ImportOptions::default(), SKIP] {
                let whole = import_with(text, f, "x", &o).map(|r| serde_json::to_value(r).unwrap());
                let tiny = std::io::BufReader::with_capacity(cap, text.as_bytes());
                let pieces = import_reader(tiny, f, "x", &o, ReadLimits::NONE)
                    .map(|r| serde_json::to_value(r).unwrap())
                    .map_err(ImportError::into_parse);
                prop_assert_eq!(whole, pieces);
            }
        }
    }
}
