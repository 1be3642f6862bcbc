//! A year of mixed data: provider exports of three clouds, measured runs (one inside a
//! provider's project and month), estimates (one superseded by the provider's figure); the
//! totals equal a hand computation.

use super::*;
use crate::import::portfolio::{import_portfolio, PortfolioFormat, PortfolioOptions};
use crate::render::tests::sample;

fn file(name: &str) -> String {
    let p = format!(
        "{}/../../examples/portfolio/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap()
}

fn provider_records() -> Vec<PortfolioRecord> {
    let mut out = Vec::new();
    for (name, f) in [
        ("gcp-carbon-footprint.csv", PortfolioFormat::GcpCarbon),
        ("gcp-carbon-footprint.ndjson", PortfolioFormat::GcpCarbon),
        ("aws-carbon-emissions.csv", PortfolioFormat::AwsCarbon),
        ("aws-sustainability-api.json", PortfolioFormat::AwsCarbon),
        ("azure-monthly-summary.json", PortfolioFormat::AzureCarbon),
    ] {
        let imp = import_portfolio(&file(name), f, name, &PortfolioOptions::default()).unwrap();
        out.extend(imp.records);
    }
    out
}

fn run(id: &str, started: &str, zone: &str, loc_g: f64, labels: &[(&str, &str)]) -> RunReport {
    let mut r = sample(id, 3.6e9); // 1 MWh, facility 1.2 MWh
    r.started_at = started.into();
    r.carbon.zone = zone.into();
    r.carbon.method = CarbonMethod::Location;
    r.carbon.operational_g = loc_g;
    r.carbon.market_operational_g = None;
    r.carbon.embodied_g = 0.0;
    r.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r
}

fn estimate(account: &str, provider: Provider, project: Option<&str>, kg: f64) -> PortfolioRecord {
    PortfolioRecord {
        provider,
        account: account.into(),
        project: project.map(str::to_string),
        service: "Compute".into(),
        region: "us-ashburn-1".into(),
        month: Month::new(2026, 1).unwrap(),
        scope: Scope::Scope2,
        basis: Basis::Location,
        grams: kg * 1000.0,
        low_g: Some(kg * 500.0),
        high_g: Some(kg * 2000.0),
        tier: Tier::Estimate,
        energy_j: Some(1.0e9),
        model_version: "ccf-2023".into(),
        labels: BTreeMap::new(),
        source: RecordSource {
            file: "focus.csv".into(),
            line: 7,
            format: "focus".into(),
        },
        note: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Three measured runs, five provider files, two estimates (see the test below).
fn mixed_year() -> (Vec<RunReport>, Vec<PortfolioRecord>) {
    // Run A: inside GCP project ml-prod in February (the export covers it): detail.
    let mut a = run(
        "a",
        "2026-02-10T09:00:00Z",
        "gcp:europe-west1",
        5_000.0,
        &[("project", "ml-prod"), ("team", "research")],
    );
    a.carbon.embodied_g = 1_000.0;
    // Run B: on premises in March, location 2 kg and market 0.5 kg.
    let mut b = run(
        "b",
        "2026-03-03T09:00:00Z",
        "FR",
        2_000.0,
        &[("team", "platform")],
    );
    b.carbon.market_operational_g = Some(500.0);
    // Run C: a GCP project the export does not hold, in April: counted.
    let c = run(
        "c",
        "2026-04-20T09:00:00Z",
        "gcp:europe-west1",
        3_000.0,
        &[("project", "other"), ("team", "research")],
    );
    let mut records = provider_records();
    // An estimate of GCP ml-prod in January: the provider reports it, so it is superseded.
    let mut superseded = estimate(
        "01A2B3-C4D5E6-F7A8B9",
        Provider::Gcp,
        Some("ml-prod"),
        100.0,
    );
    superseded.region = "europe-west1".into();
    records.push(superseded);
    // An estimate of OCI (no provider carbon): counted, 10 kg in 5 .. 20 kg.
    records.push(estimate("oci-tenancy", Provider::Oci, None, 10.0));
    (vec![a, b, c], records)
}

#[test]
fn a_year_of_mixed_data_totals_equal_the_hand_computation() {
    let (runs, mut records) = mixed_year();
    let (measured, warnings) = measured_records(&runs);
    assert!(warnings.is_empty());
    records.extend(measured);
    let p = build("2026", records, &DEFAULT_LABEL_KEYS);

    // Hand computation, kg CO2e.
    // GCP location: CSV 170 + 182.5 + 195 + 6 + 300 + 311 = 1164.5, NDJSON 205 + 7 = 212.
    // AWS location: CSV 125 + 150 + 175 + 10 + 0 = 460, API 180 + 12 = 192.
    // Azure (no method stated: both totals): 55.5 + 60.25 + 58 = 173.75.
    // Measured: B 2, C 3 (A is detail). Estimate: OCI 10 (GCP's is superseded).
    let loc_kg = 1164.5 + 212.0 + 460.0 + 192.0 + 173.75 + 2.0 + 3.0 + 10.0;
    // GCP market: 80 + 85 + 90 + 3 + 150 + 153.5 = 561.5, NDJSON 95 + 3.5 = 98.5.
    // AWS market: 50 + 60 + 70 + 2 + 0 = 182, API 80 + 3 = 83. Azure 173.75. Measured: B 0.5.
    let mkt_kg = 561.5 + 98.5 + 182.0 + 83.0 + 173.75 + 0.5;
    assert!(close(p.location_g, loc_kg * 1000.0), "{}", p.location_g);
    assert_eq!(loc_kg, 2217.25);
    assert!(close(p.market_g, mkt_kg * 1000.0), "{}", p.market_g);
    assert_eq!(mkt_kg, 1099.25);
    // The range: the OCI estimate at 5 and 20 kg instead of 10.
    assert!(close(p.location_low_g, 2212.25e3));
    assert!(close(p.location_high_g, 2227.25e3));

    let by = |gs: &[GroupTotal], name: &str| {
        gs.iter()
            .find(|g| g.name == name)
            .map(|g| g.location_g / 1000.0)
            .unwrap_or(0.0)
    };
    assert!(close(by(&p.by_provider, "gcp"), 1164.5 + 212.0 + 3.0));
    assert!(close(by(&p.by_provider, "aws"), 652.0));
    assert!(close(by(&p.by_provider, "azure"), 173.75));
    assert!(close(by(&p.by_provider, "oci"), 10.0));
    assert!(close(by(&p.by_provider, "onprem"), 2.0));
    // January: GCP 170 + 6 + 300, AWS 125 + 10 + 0, Azure 55.5, OCI estimate 10.
    assert!(close(by(&p.by_month, "2026-01"), 676.5));
    // February: GCP 182.5 + 311, AWS 150, Azure 60.25; run A is detail.
    assert!(close(by(&p.by_month, "2026-02"), 703.75));
    assert!(close(
        by(&p.by_month, "2026-03"),
        195.0 + 175.0 + 58.0 + 2.0
    ));
    assert!(close(by(&p.by_month, "2026-04"), 212.0 + 192.0 + 3.0));
    let team = &p.by_label.iter().find(|l| l.key == "team").unwrap().groups;
    assert!(close(by(team, "research"), 3.0));
    assert!(close(by(team, "platform"), 2.0));
    assert!(close(by(team, "(none)"), 2212.25));
    let project = &p
        .by_label
        .iter()
        .find(|l| l.key == "project")
        .unwrap()
        .groups;
    // ml-prod: GCP 170 + 182.5 + 195 + 205 (the run and the estimate are not added).
    assert!(close(by(project, "ml-prod"), 752.5));

    // The largest contributor: GCP ml-prod's Compute Engine, 170 + 182.5 + 195 + 205 kg.
    assert_eq!(
        p.largest[0].name,
        "gcp 01A2B3-C4D5E6-F7A8B9 ml-prod Compute Engine"
    );
    assert!(close(p.largest[0].location_g, 752_500.0));
    assert_eq!(p.largest.len(), LARGEST);

    // Shares of the location-based total.
    let share = |t: Tier| {
        p.shares
            .iter()
            .find(|s| s.tier == t)
            .unwrap()
            .location_share
    };
    assert!(close(share(Tier::Measured), 5.0 / 2217.25));
    assert!(close(share(Tier::ProviderReported), 2202.25 / 2217.25));
    assert!(close(share(Tier::Estimate), 10.0 / 2217.25));

    // Run A's lines (Scope 2 and its embodied Scope 3) are shown as detail, with the figure
    // they belong to.
    let detail: Vec<&PortfolioLine> = p.lines.iter().filter(|l| !l.counted).collect();
    assert_eq!(
        detail.len(),
        3,
        "run A's two lines and the superseded estimate"
    );
    let a_line = detail
        .iter()
        .find(|l| l.record.tier == Tier::Measured && l.record.scope == Scope::Scope2)
        .unwrap();
    assert!(a_line
        .detail_of
        .as_deref()
        .unwrap()
        .contains("provider-reported gcp 01A2B3-C4D5E6-F7A8B9 ml-prod europe-west1 2026-02"));
    // Facility energy of every measured run, detail included: 3 x 1.2 MWh.
    assert!(close(p.measured_energy_mwh, 3.6));
    // Every line carries its tier. Model changes: GCP's first account (11 -> 12 in March),
    // AWS 111111111111 (v2 -> v3 in March) and 222222222222 (v3 in April, from the API).
    assert!(p.lines.iter().all(|l| !l.tier_label.is_empty()));
    let breaks: Vec<String> = p
        .breaks
        .iter()
        .map(|b| format!("{} {} {}", b.provider, b.account, b.month))
        .collect();
    assert_eq!(
        breaks,
        vec![
            "aws 111111111111 2026-03",
            "aws 222222222222 2026-04",
            "gcp 01A2B3-C4D5E6-F7A8B9 2026-03"
        ]
    );
    let md = markdown(&p);
    assert!(md.contains("| Location-based | 2.217 tCO2e |"), "{md}");
    assert!(md.contains("estimate (CCF method)"));
    assert!(md.contains("no: detail of provider-reported gcp"));
    let csv = csv(&p);
    assert_eq!(csv.lines().count(), p.lines.len() + 1);
}

#[test]
fn a_run_without_the_project_label_is_not_matched_to_a_provider_figure() {
    let r = run(
        "x",
        "2026-02-10T09:00:00Z",
        "gcp:europe-west1",
        5_000.0,
        &[],
    );
    let (m, _) = measured_records(&[r]);
    let mut records = provider_records();
    records.extend(m);
    let p = build("2026", records, &[]);
    let line = p
        .lines
        .iter()
        .find(|l| l.record.tier == Tier::Measured)
        .unwrap();
    assert!(line.counted);
}

#[test]
fn the_esrs_statement_of_the_same_year_merges_tiers_without_double_counting() {
    let (runs, records) = mixed_year();
    let s = crate::esrs::statement_with_portfolio("2026", &runs, &records);
    // E1-5: the measured runs' facility energy, run A included: 3 x 1.2 MWh.
    assert!(close(s.energy_consumption_mwh, 3.6));
    // Scope 2: run B on premises, 2 kg.
    assert!(close(s.scope2_location_based_tco2e, 0.002));
    // Scope 3 category 1, location-based: providers 1376.5 + 652 + 173.75 kg, the OCI
    // estimate 10 kg, run C 3 kg; run A is detail and the GCP estimate superseded.
    assert!(close(s.scope3_category1_tco2e, 2.21525));
    // Market-based: providers 660 + 265 + 173.75 kg; the estimate has none; run C has none.
    assert!(close(
        s.scope3_category1_market_based_tco2e.unwrap(),
        1.09875
    ));
    let detail: Vec<&crate::esrs::EsrsLine> = s.lines.iter().filter(|l| !l.counted).collect();
    assert_eq!(detail.len(), 1);
    assert_eq!(detail[0].zone, "gcp:europe-west1");
    assert_eq!(detail[0].runs, 1);
    let tiers: Vec<&str> = s.lines.iter().map(|l| l.tier.as_str()).collect();
    for t in ["measured", "provider-reported", "estimate (CCF method)"] {
        assert!(tiers.contains(&t), "{tiers:?}");
    }
    let shares: f64 = s.tier_shares.iter().map(|(_, f)| f).sum();
    assert!(close(shares, 1.0));
    let md = crate::esrs::markdown(&s);
    assert!(
        md.contains("| Share provider-reported (location-based) |"),
        "{md}"
    );
    assert!(md.contains("gcp-carbon export, model 11, 12"), "{md}");
}

#[test]
fn the_portfolio_energy_is_measured_plus_counted_estimates_and_says_what_has_none() {
    let (runs, mut records) = mixed_year();
    let providers = records
        .iter()
        .filter(|r| r.tier == Tier::ProviderReported)
        .count();
    records.extend(measured_records(&runs).0);
    let p = build("2026", records, &DEFAULT_LABEL_KEYS);
    // Measured: 3 runs x 1.2 MWh facility (run A, detail of GCP's figure, too: that figure
    // has no energy). Estimates: the OCI one, 1e9 J; GCP's superseded one is left out.
    assert!(close(p.measured_energy_mwh, 3.6));
    assert!(close(p.estimated_energy_mwh, 1.0e9 / 3.6e9));
    assert!(close(p.energy_mwh, 3.6 + 1.0e9 / 3.6e9));
    assert_eq!(p.lines_without_energy, providers);
    let md = markdown(&p);
    let want = format!(
        "| Energy (facility) | 3.878 MWh (measured 3.600, estimated 0.2778); {providers} \
         provider-reported line(s) carry no energy and add none: a lower bound |"
    );
    assert!(md.contains(&want), "{want}\n{md}");
}

#[test]
fn runs_are_named_by_model_team_and_command_not_by_id() {
    let mut r = run(
        "0f3a9c",
        "2026-03-03T09:00:00Z",
        "FR",
        1.0,
        &[("model", "llama-8b"), ("team", "search")],
    );
    r.command = vec![
        "/usr/bin/python3".into(),
        "train.py".into(),
        "--epochs".into(),
        "3".into(),
    ];
    assert_eq!(
        run_name(&r),
        "model=llama-8b team=search: python3 train.py --epochs 3"
    );
    r.labels.clear();
    r.command = vec!["x".repeat(50)];
    assert_eq!(run_name(&r), format!("{}...", "x".repeat(40)));
    r.command.clear();
    assert_eq!(run_name(&r), "run 0f3a9c");
    let (m, _) = measured_records(&[r]);
    assert_eq!(m[0].note.as_deref(), Some("1 run(s): run 0f3a9c"));
}

#[test]
fn the_overhead_score_per_tier_uses_the_meter_share_measured_in_the_history() {
    // Three `run`s whose meter took 0.1 %, 0.3 % and 0.2 % of the run: median 0.2 %.
    let runs: Vec<RunReport> = [0.001, 0.003, 0.002]
        .iter()
        .map(|f| {
            let mut r = sample("r", 10.0);
            r.command = vec!["train".into()];
            r.overhead.reads = 10;
            r.overhead.meter_cpu_fraction = *f;
            r
        })
        .collect();
    let (_, records) = mixed_year();
    let mut p = build("2026", records, &DEFAULT_LABEL_KEYS);
    p.overhead = overhead(&runs);
    let tiers: Vec<(&str, &str)> = p
        .overhead
        .iter()
        .map(|s| (s.route.tier().label(), s.route.id()))
        .collect();
    assert_eq!(
        tiers,
        [
            ("provider-reported", "provider-export"),
            ("estimate (CCF method)", "usage-estimate"),
            ("measured", "run"),
            ("measured", "python"),
            ("measured", "agent"),
        ]
    );
    let md = markdown(&p);
    for row in [
        "| provider-reported | provider-export | about a month: monthly figures, published after \
         the month closes | 2 | none (the provider computes the figure; nothing runs on your \
         machines) | high |",
        "| measured | run | at the end of the run | 2 | median 0.2000 % CPU over 3 run(s) \
         (measured in the history) | medium |",
        "| measured | agent | when a window closes, plus the settle lag (5 s) | 4 | about 0.1000 \
         % CPU (typical: no agent window stored yet: the typical meter share \
         (docs/benchmarks.md)) | high |",
    ] {
        assert!(md.contains(row), "{row}\n{md}");
    }
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["overhead"][2]["compute"]["median_cpu_pct"], 0.2);
    assert_eq!(json["overhead"][2]["compute"]["runs"], 3);

    // The HTML form: the same table, the month x tier chart with axes, the methodology.
    let html = crate::html::portfolio_html(&p);
    assert!(html.contains("data-table=\"overhead\""));
    assert!(html.contains("<td>measured</td><td>run</td><td>at the end of the run</td>"));
    assert!(html.contains("data-chart=\"month-tier\""));
    assert!(html.contains(">location-based tCO2e</text>") && html.contains(">month</text>"));
    // January, stacked: provider-reported 661.5 kg... and the OCI estimate 10 kg.
    assert!(html.contains("data-month=\"2026-01\" data-tier=\"estimate\" data-value=\"0.01\""));
    assert!(html.contains("data-section=\"methodology\""));
    assert!(html.contains("Apache-2.0"));
    assert!(html.contains("series break(s)"));
}
