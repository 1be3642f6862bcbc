//! Property tests over the CSV importers: any text gives reports a store can keep (every
//! number finite, so the JSON reads back) or an error, never a panic. Cases per property:
//! `CASES`, published in docs/security.md.

use proptest::prelude::*;
use wattprint_core::report::RunReport;
use wattprint_report::import::{import, ImportFormat};

const CASES: u32 = 500;

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1e3f64..1e7).prop_map(|v| v.to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("1e308".to_string()),
        Just("-0".to_string()),
        Just(String::new()),
        "[0-9.eE+-]{1,12}",
        "\\PC{0,6}",
    ]
}

fn check(reports: &[RunReport]) -> Result<(), TestCaseError> {
    for r in reports {
        let json = serde_json::to_string(r).unwrap();
        let back: Result<RunReport, _> = serde_json::from_str(&json);
        prop_assert!(back.is_ok(), "{}", json);
        prop_assert!(r.energy.total_j.is_finite() && r.energy.total_j >= 0.0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn nvidia_smi_logs_import_sanely_or_fail(rows in prop::collection::vec((0u32..100_000, 0u8..4, number()), 0..12)) {
        let mut text = String::from("timestamp, index, name, power.draw [W]\n");
        for (ms, gpu, w) in rows {
            text.push_str(&format!("2026/03/01 10:00:{:02}.{:03}, {gpu}, NVIDIA H100, {w} W\n", (ms / 1000) % 60, ms % 1000));
        }
        if let Ok(r) = import(&text, ImportFormat::NvidiaSmi, "log.csv") {
            check(&r)?;
        }
    }

    #[test]
    fn codecarbon_rows_import_sanely_or_fail(rows in prop::collection::vec((number(), number(), number()), 0..6)) {
        let mut text = String::from("timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n");
        for (d, e, k) in rows {
            text.push_str(&format!("2026-03-01T10:00:00,p,r,{d},{e},{k},FRA\n"));
        }
        if let Ok(r) = import(&text, ImportFormat::CodeCarbon, "emissions.csv") {
            check(&r)?;
        }
    }

    #[test]
    fn traces_import_sanely_or_fail(rows in prop::collection::vec((number(), "[a-z0-9-]{0,8}", prop_oneof![Just("W"), Just("J"), Just("kW"), Just("x")], number()), 0..12)) {
        let mut text = String::from("# wattprint trace v1\nt_s,domain,kind,unit,value\n");
        for (t, dom, unit, v) in rows {
            text.push_str(&format!("{t},{dom},gpu,{unit},{v}\n"));
        }
        if let Ok(r) = import(&text, ImportFormat::Trace, "trace.csv") {
            check(&r)?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        for f in [ImportFormat::NvidiaSmi, ImportFormat::CodeCarbon, ImportFormat::Trace] {
            if let Ok(r) = import(&text, f, "x.csv") {
                check(&r)?;
            }
        }
    }
}
