//! Tests of carbon resolution and application.

use super::*;
use wattprint_core::report::Work;

fn report(total_j: f64, duration_s: f64) -> RunReport {
    let mut r = RunReport::new("t".into());
    r.energy.total_j = total_j;
    r.duration_s = duration_s;
    r.started_at = "2025-01-15T10:00:00Z".into();
    r
}

#[test]
fn no_zone_uses_the_world_fallback_loudly() {
    let mut r = report(3.6e6, 3600.0);
    apply(&mut r, &CarbonOptions::default()).unwrap();
    assert!(r.carbon.fallback);
    assert_eq!(r.carbon.zone, "WORLD");
    assert_eq!(r.carbon.intensity_g_per_kwh.round(), 473.0);
    assert_eq!(r.carbon.operational_g.round(), 473.0);
    assert!(r.warnings.iter().any(|w| w.contains("FALLBACK")));
    assert!(r.warnings.iter().any(|w| w.contains("PUE 1.0 assumed")));
    assert!(summary_lines(&r)[0].contains("FALLBACK"));
}

#[test]
fn cloud_zone_takes_provider_pue_and_region_factor() {
    let mut r = report(3.6e6, 3600.0);
    let o = CarbonOptions {
        zone: Some("gcp:europe-west1".into()),
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert_eq!(r.energy.pue, 1.09);
    assert_eq!(r.energy.facility_j, 3.6e6 * 1.09);
    assert_eq!(r.metrics.facility_energy_to_solution_j, 3.6e6 * 1.09);
    assert!((r.carbon.operational_g - 103.37 * 1.09).abs() < 1e-9);
    assert_eq!(r.carbon.basis, CarbonBasis::Direct);
    assert!(!r.carbon.fallback);
    assert!(!r.warnings.iter().any(|w| w.contains("PUE")));
}

#[test]
fn lifecycle_factor_is_never_called_scope_2() {
    let mut r = report(3.6e6, 3600.0);
    let o = CarbonOptions {
        zone: Some("FR".into()),
        pue: Some(1.0),
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert_eq!(r.carbon.basis, CarbonBasis::Lifecycle);
    let s = summary_lines(&r).join("\n");
    assert!(s.contains("not a Scope 2 factor"), "{s}");
    assert!(s.contains("Ember"), "{s}");
    assert!(s.contains("2024"), "{s}");
}

#[test]
fn sci_spec_example_reproduces_28_5_g() {
    let mut r = report(0.0, 3600.0);
    let o = CarbonOptions {
        zone: Some("FR".into()),
        embodied_kg: Some(1000.0),
        lifetime_years: Some(4.0),
        share: Some(1.0),
        unit_count: Some(1.0),
        unit_name: Some("job".into()),
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert_eq!((r.carbon.embodied_g * 10.0).round() / 10.0, 28.5);
    assert_eq!(
        r.metrics.sci_g_per_unit.map(|v| (v * 10.0).round() / 10.0),
        Some(28.5)
    );
    assert_eq!(r.metrics.sci_unit.as_deref(), Some("job"));
}

#[test]
fn per_inference_and_per_token_metrics_and_market_figure() {
    let mut r = report(3.6e6, 100.0);
    r.work = Work {
        inferences: Some(1000.0),
        tokens: Some(50_000.0),
        ..Default::default()
    };
    let o = CarbonOptions {
        intensity_g_per_kwh: Some(400.0),
        pue: Some(1.5),
        market_factor_g_per_kwh: Some(100.0),
        hardware: vec![HardwareEmbodied::default_server()],
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert_eq!(r.carbon.operational_g, 600.0);
    assert_eq!(r.carbon.market_operational_g, Some(150.0));
    let emb = 1e6 * 100.0 / (4.0 * SECONDS_PER_YEAR);
    assert!((r.carbon.embodied_g - emb).abs() < 1e-9);
    let total = 600.0 + emb;
    assert!((r.metrics.carbon_per_inference_g.unwrap() - total / 1000.0).abs() < 1e-12);
    assert!((r.metrics.carbon_per_1k_tokens_g.unwrap() - total / 50.0).abs() < 1e-12);
    assert_eq!(r.metrics.sci_unit.as_deref(), Some("inference"));
}

#[test]
fn bad_numbers_are_named_errors_and_nothing_is_applied() {
    for (o, opt) in [
        (
            CarbonOptions {
                pue: Some(0.5),
                ..Default::default()
            },
            "--pue",
        ),
        (
            CarbonOptions {
                pue: Some(f64::NAN),
                ..Default::default()
            },
            "--pue",
        ),
        (
            CarbonOptions {
                share: Some(2.0),
                ..Default::default()
            },
            "--share",
        ),
        (
            CarbonOptions {
                market_factor_g_per_kwh: Some(-1.0),
                ..Default::default()
            },
            "--market-factor",
        ),
        (
            CarbonOptions {
                lifetime_years: Some(0.0),
                ..Default::default()
            },
            "--lifetime-years",
        ),
        (
            CarbonOptions {
                unit_count: Some(0.0),
                ..Default::default()
            },
            "--unit-count",
        ),
        (
            CarbonOptions {
                embodied_kg: Some(f64::INFINITY),
                ..Default::default()
            },
            "--embodied-kg",
        ),
    ] {
        let mut r = report(1.0, 1.0);
        let e = apply(&mut r, &o).unwrap_err().to_string();
        assert!(e.starts_with(opt), "{e}");
        assert!(r.warnings.is_empty());
    }
    let mut r = report(1.0, 1.0);
    let e = apply(
        &mut r,
        &CarbonOptions {
            zone: Some("Narnia".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, CarbonError::UnknownZone(_)));
}

#[test]
fn intensity_file_weighs_energy_by_interval() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.csv");
    std::fs::write(
        &p,
        "timestamp,g\n2025-01-15T10:00:00Z,100\n2025-01-15T10:30:00Z,300\n",
    )
    .unwrap();
    let mut r = report(3.6e6, 3600.0); // 10:00 to 11:00, even power
    let o = CarbonOptions {
        zone: Some("DE".into()),
        pue: Some(1.0),
        intensity_file: Some(p.clone()),
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert!(
        (r.carbon.operational_g - 200.0).abs() < 1e-9,
        "{}",
        r.carbon.operational_g
    );
    assert!((r.carbon.intensity_g_per_kwh - 200.0).abs() < 1e-9);
    assert!(!r.warnings.iter().any(|w| w.contains("does not cover")));

    // Run partly outside: the rest uses the zone factor, stated.
    let mut r = report(3.6e6, 7200.0);
    r.started_at = "2025-01-15T09:00:00Z".into();
    apply(&mut r, &o).unwrap();
    let de = grid::country("DE").unwrap().g_per_kwh;
    assert!((r.carbon.operational_g - (0.5 * de + 0.25 * 100.0 + 0.25 * 300.0)).abs() < 1e-6);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("50.0 % of the energy")),
        "{:?}",
        r.warnings
    );

    // Run entirely outside: an error naming both ranges.
    let mut r = report(3.6e6, 60.0);
    r.started_at = "2026-01-01T00:00:00Z".into();
    let e = apply(&mut r, &o).unwrap_err().to_string();
    assert!(
        e.contains("covers 2025-01-15T10:00:00Z") && e.contains("2026-01-01"),
        "{e}"
    );
}

#[test]
fn missing_intensity_file_is_a_named_error() {
    let mut r = report(1.0, 1.0);
    let o = CarbonOptions {
        intensity_file: Some("/nonexistent/i.csv".into()),
        ..Default::default()
    };
    let e = apply(&mut r, &o).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/i.csv: cannot read"), "{e}");
}

#[test]
fn validate_catches_bad_input_before_a_run() {
    assert!(validate(&CarbonOptions::default()).is_ok());
    let bad_zone = CarbonOptions {
        zone: Some("gcp:nowhere".into()),
        ..Default::default()
    };
    assert!(matches!(
        validate(&bad_zone),
        Err(CarbonError::UnknownZone(_))
    ));
    let bad_pue = CarbonOptions {
        pue: Some(-1.0),
        ..Default::default()
    };
    assert!(validate(&bad_pue)
        .unwrap_err()
        .to_string()
        .starts_with("--pue"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, "2025-01-15T10:00:00Z,x\n").unwrap();
    let bad_file = CarbonOptions {
        intensity_file: Some(p),
        ..Default::default()
    };
    assert!(validate(&bad_file)
        .unwrap_err()
        .to_string()
        .contains(":1: field"));
}

#[test]
fn run_hardware_leaves_out_the_gpus_that_are_not_the_jobs() {
    let mut r = report(0.0, 1.0);
    r.host.gpu_models = vec!["NVIDIA H100 80GB HBM3".into()];
    r.host.other_gpus = vec![wattprint_core::report::OtherGpu {
        domain: "gpu-1".into(),
        name: "NVIDIA L4".into(),
        uuid: None,
        reason: "not in CUDA_VISIBLE_DEVICES=0".into(),
    }];
    let (hw, missing) = run_hardware(&r);
    assert!(missing.is_empty(), "{missing:?}");
    let whats: Vec<&str> = hw.iter().map(|h| h.what.as_str()).collect();
    assert_eq!(whats.len(), 2, "{whats:?}");
    assert!(whats[1].starts_with("H100"), "{whats:?}");
    assert!(!whats.iter().any(|w| w.contains("L4")), "{whats:?}");
}

#[test]
fn run_hardware_counts_the_server_and_known_gpus() {
    let mut r = report(0.0, 1.0);
    r.host.gpu_models = vec![
        "NVIDIA H100 80GB HBM3".into(),
        "NVIDIA H100 80GB HBM3".into(),
        "Tesla V100-SXM2-32GB".into(),
        "Mystery GPU".into(),
    ];
    let (hw, missing) = run_hardware(&r);
    assert_eq!(hw[0], HardwareEmbodied::default_server());
    let h100 = hw.iter().find(|h| h.what.starts_with("H100")).unwrap();
    assert_eq!(h100.count, 2.0);
    assert_eq!(h100.lifetime_years, 3.0);
    assert_eq!(missing.len(), 2, "{missing:?}");
}

#[test]
fn intensity_file_follows_the_power_timeline() {
    use wattprint_core::report::{DomainEnergy, PowerSeries, TimelineReport};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("i.csv");
    std::fs::write(&p, "2025-01-15T10:00:00Z,100\n2025-01-15T10:30:00Z,300\n").unwrap();
    // 300 W in the first half hour, 100 W in the second: 0.15 kWh at 100, 0.05 kWh at 300.
    let mut r = report(720_000.0, 3600.0);
    r.energy.domains = vec![DomainEnergy {
        name: "package-0".into(),
        kind: wattprint_core::DomainKind::CpuPackage,
        joules: 720_000.0,
        source: "test".into(),
        method: wattprint_core::Method::Counter,
        counted_in_total: true,
        device: None,
        avg_power_w: None,
        joules_low: None,
        joules_high: None,
        range_basis: None,
    }];
    r.timeline = Some(TimelineReport {
        t_s: vec![900.0, 2700.0],
        series: vec![
            PowerSeries {
                domain: "package-0".into(),
                watts: vec![300.0, 100.0],
            },
            PowerSeries {
                domain: "not-counted".into(),
                watts: vec![1e6, 1e6],
            },
        ],
    });
    let o = CarbonOptions {
        zone: Some("FR".into()),
        pue: Some(1.0),
        intensity_file: Some(p),
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert!(
        (r.carbon.operational_g - 30.0).abs() < 1e-9,
        "{}",
        r.carbon.operational_g
    );
    assert!((r.carbon.intensity_g_per_kwh - 150.0).abs() < 1e-9);
}

#[test]
fn a_run_counts_the_default_server_unless_told_otherwise() {
    let mut r = report(0.0, 3600.0);
    apply_for_run(&mut r, &CarbonOptions::default());
    let expect = 1e6 * 3600.0 / (4.0 * SECONDS_PER_YEAR);
    assert!((r.carbon.embodied_g - expect).abs() < 1e-9);
    assert!(r
        .carbon
        .embodied_source
        .as_deref()
        .unwrap()
        .contains("default server"));
    let mut r = report(0.0, 3600.0);
    let o = CarbonOptions {
        embodied_kg: Some(2000.0),
        share: Some(0.5),
        ..Default::default()
    };
    apply_for_run(&mut r, &o);
    assert!((r.carbon.embodied_g - expect).abs() < 1e-9);
}

/// What the engine's carbon step does for a measured run.
fn apply_for_run(r: &mut RunReport, o: &CarbonOptions) {
    let c = resolve(o, RunTime::of(r)).unwrap().counting_run_hardware();
    apply_resolved(r, &c).unwrap();
}

#[test]
fn resolving_does_the_io_once_and_applying_twice_gives_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.csv");
    std::fs::write(
        &path,
        "timestamp,g_per_kwh\n2025-01-15T10:00:00Z,100\n2025-01-15T10:30:00Z,300\n",
    )
    .unwrap();
    let o = CarbonOptions {
        zone: Some("FR".into()),
        intensity_file: Some(path.clone()),
        ..Default::default()
    };
    let mut a = report(3.6e6, 3600.0);
    let c = resolve(&o, RunTime::of(&a)).unwrap();
    // The file is read at resolution: removing it afterwards changes nothing.
    std::fs::remove_file(&path).unwrap();
    let mut b = a.clone();
    apply_resolved(&mut a, &c).unwrap();
    apply_resolved(&mut b, &c).unwrap();
    assert_eq!(a, b);
    // Half the hour at 100, half at 300 g/kWh: 1 kWh weighs 200 g.
    assert!(
        (a.carbon.operational_g - 200.0).abs() < 1e-9,
        "{}",
        a.carbon.operational_g
    );
}

#[test]
fn errors_name_the_field_as_flag_or_as_keyword() {
    let o = CarbonOptions {
        market_factor_g_per_kwh: Some(-1.0),
        ..Default::default()
    };
    let e = validate(&o).unwrap_err();
    assert!(matches!(
        e,
        CarbonError::Invalid {
            field: CarbonField::MarketFactor,
            ..
        }
    ));
    assert!(e.to_string().starts_with("--market-factor: "), "{e}");
    let py = e.describe(CarbonField::keyword);
    assert!(py.starts_with("market_factor_g_per_kwh: "), "{py}");
    assert!(!py.contains("--"), "{py}");
}

#[test]
fn the_forecast_gets_the_runs_grams_per_joule_and_its_embodied_share_per_second() {
    // 1 kWh in 1 h so far; forecast 4 kWh (3 to 5) in 4 h; 1000 kg over the default life.
    let mut r = report(3.6e6, 3600.0);
    r.forecast = Some(wattprint_core::forecast::ForecastReport {
        energy_to_solution_j: Some(4.0 * 3.6e6),
        energy_to_solution_j_low: Some(3.0 * 3.6e6),
        energy_to_solution_j_high: Some(5.0 * 3.6e6),
        duration_s: Some(4.0 * 3600.0),
        ..Default::default()
    });
    let o = CarbonOptions {
        zone: Some("FR".into()),
        pue: Some(1.5),
        embodied_kg: Some(1000.0),
        ..Default::default()
    };
    apply_for_run(&mut r, &o);
    let (op, emb) = (r.carbon.operational_g, r.carbon.embodied_g);
    assert!(op > 0.0 && emb > 0.0);
    let f = r.forecast.unwrap();
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9 * b;
    assert!(close(f.total_g, 4.0 * op + 4.0 * emb), "{f:?}");
    assert!(close(f.total_g_low, 3.0 * op + 4.0 * emb));
    assert!(close(f.total_g_high, 5.0 * op + 4.0 * emb));
    // No forecast yet: no grams either.
    let mut r = report(3.6e6, 3600.0);
    r.forecast = Some(Default::default());
    apply_for_run(&mut r, &o);
    assert_eq!(r.forecast.unwrap().total_g, None);
}
