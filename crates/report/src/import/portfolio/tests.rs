//! Tests of the provider importers, on the fixtures of `examples/portfolio/` (written from the
//! providers' documented shapes: no licensed real export exists).

use super::*;
use wattprint_core::portfolio::{Provider, Scope, Tier};

const GCP_CSV: &str = include_str!("../../../../../examples/portfolio/gcp-carbon-footprint.csv");
const GCP_NDJSON: &str =
    include_str!("../../../../../examples/portfolio/gcp-carbon-footprint.ndjson");
const AWS_CSV: &str = include_str!("../../../../../examples/portfolio/aws-carbon-emissions.csv");
const AWS_SCOPES: &str =
    include_str!("../../../../../examples/portfolio/aws-carbon-emissions-scopes.csv");
const AWS_API: &str = include_str!("../../../../../examples/portfolio/aws-sustainability-api.json");
const AZ_MONTHLY: &str =
    include_str!("../../../../../examples/portfolio/azure-monthly-summary.json");
const AZ_ITEMS: &str =
    include_str!("../../../../../examples/portfolio/azure-resource-item-details.json");
const AZ_MCFS: &str =
    include_str!("../../../../../examples/portfolio/azure-enrollment-emissions.json");

fn imp(input: &str, f: PortfolioFormat) -> Result<PortfolioImport, ParseError> {
    import_portfolio(input, f, "f", &PortfolioOptions::default())
}

fn sum_g(rs: &[PortfolioRecord], basis_in: Basis) -> f64 {
    rs.iter()
        .filter(|r| r.basis == basis_in || r.basis == Basis::Both)
        .map(|r| r.grams)
        .sum()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn every_fixture_is_detected_by_its_header_or_shape() {
    use PortfolioFormat::*;
    for (t, f) in [
        (GCP_CSV, GcpCarbon),
        (GCP_NDJSON, GcpCarbon),
        (AWS_CSV, AwsCarbon),
        (AWS_SCOPES, AwsCarbon),
        (AWS_API, AwsCarbon),
        (AZ_MONTHLY, AzureCarbon),
        (AZ_ITEMS, AzureCarbon),
        (AZ_MCFS, AzureCarbon),
    ] {
        assert_eq!(detect_portfolio_format(t), Some(f), "{}", &t[..60]);
    }
    assert_eq!(detect_portfolio_format("t_s,domain,unit,value\n"), None);
    assert_eq!(detect_portfolio_format("{\"x\": 1}"), None);
}

#[test]
fn gcp_csv_keeps_scopes_apart_in_grams_and_sums_the_zones_of_a_region() {
    let out = imp(GCP_CSV, PortfolioFormat::GcpCarbon).unwrap();
    let rs = &out.records;
    assert!(rs
        .iter()
        .all(|r| r.tier == Tier::ProviderReported && r.energy_j.is_none()));
    // 6 keys (two zone rows of research-42 January are one region) x 4 figures.
    assert_eq!(rs.len(), 24);
    // Location-based: 170 + 182.5 + 195 + 6 + (240 + 60) + 311 = 1164.5 kg.
    assert!(close(sum_g(rs, Basis::Location), 1_164_500.0));
    // Market-based: 80 + 85 + 90 + 3 + (120 + 30) + 153.5 = 561.5 kg.
    assert!(close(sum_g(rs, Basis::Market), 561_500.0));
    let vertex_jan_s2l = rs
        .iter()
        .find(|r| {
            r.service == "Vertex AI"
                && r.month.month == 1
                && r.scope == Scope::Scope2
                && r.basis == Basis::Location
        })
        .unwrap();
    assert_eq!(vertex_jan_s2l.grams, 200_000.0);
    assert_eq!(vertex_jan_s2l.region, "us-central1");
    assert_eq!(vertex_jan_s2l.zone().as_deref(), Some("gcp:us-central1"));
    assert!(vertex_jan_s2l
        .note
        .as_deref()
        .unwrap()
        .contains("us-central1-b"));
    // The null project keeps no project, and its multi-region location is kept as given.
    let storage = rs.iter().find(|r| r.service == "Cloud Storage").unwrap();
    assert_eq!(storage.project, None);
    assert_eq!(storage.region, "EU");
    assert_eq!(storage.source.line, 5);
    assert_eq!(storage.source.format, "gcp-carbon");
    // Model 11 -> 12 in March for the first account only.
    assert_eq!(out.breaks.len(), 1);
    assert_eq!(out.breaks[0].account, "01A2B3-C4D5E6-F7A8B9");
    assert_eq!(out.breaks[0].month.to_string(), "2026-03");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn gcp_ndjson_nested_records_and_nulls_read_like_the_csv() {
    let out = imp(GCP_NDJSON, PortfolioFormat::GcpCarbon).unwrap();
    assert_eq!(
        out.shape,
        "GCP Carbon Footprint export (newline-delimited JSON)"
    );
    assert_eq!(out.records.len(), 8);
    assert!(close(sum_g(&out.records, Basis::Location), 212_000.0));
    assert!(close(sum_g(&out.records, Basis::Market), 98_500.0));
    let storage = out
        .records
        .iter()
        .find(|r| r.service == "Cloud Storage")
        .unwrap();
    assert_eq!(
        (storage.project.as_deref(), storage.region.as_str()),
        (None, "EU")
    );
    assert_eq!(storage.source.line, 2);
}

#[test]
fn aws_totals_without_scopes_stay_unsplit_in_tons_converted_to_grams() {
    let out = imp(AWS_CSV, PortfolioFormat::AwsCarbon).unwrap();
    let rs = &out.records;
    assert_eq!(rs.len(), 10);
    assert!(rs.iter().all(|r| r.scope == Scope::Unsplit));
    // 0.125 + 0.15 + 0.175 + 0.01 + 0 t location-based.
    assert!(close(sum_g(rs, Basis::Location), 460_000.0));
    assert!(close(sum_g(rs, Basis::Market), 182_000.0));
    let support = rs
        .iter()
        .find(|r| r.service == "AWSSupportBusiness")
        .unwrap();
    assert_eq!((support.region.as_str(), support.zone()), ("global", None));
    assert_eq!(support.labels["payer_account"], "999999999999");
    assert_eq!(out.breaks.len(), 1);
    assert_eq!(
        (
            out.breaks[0].from_version.as_str(),
            out.breaks[0].to_version.as_str()
        ),
        ("v2.0.0", "v3.0.0")
    );
}

#[test]
fn aws_per_scope_columns_replace_the_totals_never_add_to_them() {
    let out = imp(AWS_SCOPES, PortfolioFormat::AwsCarbon).unwrap();
    let rs = &out.records;
    assert_eq!(rs.len(), 5);
    assert!(rs.iter().all(|r| r.scope != Scope::Unsplit));
    assert!(close(sum_g(rs, Basis::Location), 200_000.0));
    assert!(close(sum_g(rs, Basis::Market), 90_000.0));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    // A row whose totals disagree with its scopes is counted in a warning.
    let off = AWS_SCOPES.replace(",MTCO2e,0.2,", ",MTCO2e,0.3,");
    let w = imp(&off, PortfolioFormat::AwsCarbon).unwrap().warnings;
    assert!(w.iter().any(|w| w.contains("lines 2")), "{w:?}");
}

#[test]
fn aws_api_results_name_the_line_where_each_starts() {
    let out = imp(AWS_API, PortfolioFormat::AwsCarbon).unwrap();
    assert_eq!(out.records.len(), 4);
    assert_eq!(out.records[0].source.line, 3);
    assert_eq!(out.records[2].source.line, 12);
    assert_eq!(out.records[2].account, "222222222222");
    assert_eq!(out.records[0].month.to_string(), "2026-04");
    assert!(close(sum_g(&out.records, Basis::Location), 192_000.0));
}

#[test]
fn azure_monthly_summary_is_unsplit_in_both_totals_with_a_note() {
    let out = imp(AZ_MONTHLY, PortfolioFormat::AzureCarbon).unwrap();
    let rs = &out.records;
    assert_eq!(rs.len(), 3);
    assert!(rs
        .iter()
        .all(|r| r.basis == Basis::Both && r.scope == Scope::Unsplit));
    assert_eq!(rs.iter().map(|r| r.grams).sum::<f64>(), 173_750.0);
    assert!(rs[0].note.as_deref().unwrap().contains("no Scope 2 method"));
    assert_eq!(rs[1].source.line, 4);
}

#[test]
fn azure_item_details_need_the_month_and_sum_resources_of_one_type() {
    let e = imp(AZ_ITEMS, PortfolioFormat::AzureCarbon).unwrap_err();
    assert!(e.message.contains("--month"), "{e}");
    assert_eq!(e.line, 4);
    let out = import_portfolio(
        AZ_ITEMS,
        PortfolioFormat::AzureCarbon,
        "f",
        &PortfolioOptions {
            month: Month::new(2026, 3),
        },
    )
    .unwrap();
    let rs = &out.records;
    assert_eq!(rs.len(), 2);
    let vms = &rs[0];
    assert_eq!(vms.project.as_deref(), Some("rg-inference"));
    assert_eq!(vms.zone().as_deref(), Some("azure:westeurope"));
    assert_eq!(vms.grams, 43_750.0);
}

#[test]
fn mcfs_enrollment_emissions_read_metric_tons_per_scope() {
    let out = imp(AZ_MCFS, PortfolioFormat::AzureCarbon).unwrap();
    let rs = &out.records;
    assert_eq!(
        rs.iter().map(|r| (r.scope, r.grams)).collect::<Vec<_>>(),
        vec![
            (Scope::Scope1, 1_000.0),
            (Scope::Scope2, 40_000.0),
            (Scope::Scope3, 19_000.0)
        ]
    );
    assert_eq!(rs[0].provider, Provider::Azure);
    assert_eq!(rs[0].service, "Virtual Machines / Azure Compute");
    assert_eq!(rs[0].labels["enrollment"], "E-1234");
}

#[test]
fn a_renamed_column_is_an_error_naming_it_and_the_header() {
    let renamed = GCP_CSV.replace(
        "carbon_footprint_kgCO2e.scope2.location_based",
        "carbon_footprint_kgCO2e.scope2.location",
    );
    let e = imp(&renamed, PortfolioFormat::GcpCarbon).unwrap_err();
    assert_eq!(e.field, "carbon_footprint_kgCO2e.scope2.location_based");
    assert!(e.message.contains("renamed"), "{e}");
    let e = imp(
        &AWS_CSV.replace("usage_account_id", "account_id"),
        PortfolioFormat::AwsCarbon,
    )
    .unwrap_err();
    assert_eq!(e.field, "usage_account_id");
}

#[test]
fn an_unknown_unit_is_an_error_naming_line_and_field() {
    let e = imp(
        &AWS_CSV.replacen("MTCO2e,0.15,", "lbCO2e,0.15,", 1),
        PortfolioFormat::AwsCarbon,
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "total_lbm_emissions_unit"));
    assert!(e.message.contains("lbCO2e"), "{e}");
    // GCP's unit is in the column name: tons are converted, pounds refused.
    let tons = GCP_CSV.replace("kgCO2e", "tCO2e");
    let out = imp(&tons, PortfolioFormat::GcpCarbon).unwrap();
    assert!(close(sum_g(&out.records, Basis::Location), 1_164_500_000.0));
    let e = imp(
        &GCP_CSV.replace("kgCO2e", "lbCO2e"),
        PortfolioFormat::GcpCarbon,
    )
    .unwrap_err();
    assert!(e.message.contains("lbCO2e"), "{e}");
}

#[test]
fn a_month_present_twice_is_an_error_naming_both_lines() {
    let line2 = GCP_CSV.lines().nth(1).unwrap();
    let twice = format!("{GCP_CSV}{line2}\n");
    let e = imp(&twice, PortfolioFormat::GcpCarbon).unwrap_err();
    assert_eq!(e.line, 9);
    assert!(e.message.contains("line 2"), "{e}");
    assert!(e.message.contains("2026-01"), "{e}");
    let line2 = AWS_CSV.lines().nth(1).unwrap();
    let e = imp(&format!("{AWS_CSV}{line2}\n"), PortfolioFormat::AwsCarbon).unwrap_err();
    assert_eq!(e.line, 7);
}

#[test]
fn an_error_body_is_an_error_quoting_its_message() {
    let e = imp(
        r#"{"__type": "ValidationException", "Message": "TimePeriod.End must be after Start"}"#,
        PortfolioFormat::AwsCarbon,
    )
    .unwrap_err();
    assert!(e.message.contains("ValidationException"), "{e}");
    assert!(e.message.contains("must be after Start"), "{e}");
    let body = r#"{"error": {"code": "AuthorizationFailed", "message": "no access"}}"#;
    assert_eq!(
        detect_portfolio_format(body),
        Some(PortfolioFormat::AzureCarbon)
    );
    let e = imp(body, PortfolioFormat::AzureCarbon).unwrap_err();
    assert!(e.message.contains("AuthorizationFailed"), "{e}");
    let e = imp("{\"Results\": [", PortfolioFormat::AwsCarbon).unwrap_err();
    assert_eq!(e.field, "json");
}

#[test]
fn a_quarterly_period_and_a_negative_figure_are_refused() {
    let q = AWS_API.replacen("2026-05-01T00:00:00.000Z", "2026-07-01T00:00:00.000Z", 1);
    let e = imp(&q, PortfolioFormat::AwsCarbon).unwrap_err();
    assert!(e.message.contains("MONTHLY"), "{e}");
    let neg = AWS_CSV.replacen("MTCO2e,0.125,", "MTCO2e,-0.125,", 1);
    let e = imp(&neg, PortfolioFormat::AwsCarbon).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "total_lbm_emissions_value"));
}

#[test]
fn json_element_lines_follow_nesting_and_strings() {
    let t = "{\"a\": [1],\n \"value\": [\n {\"x\": \"[,]\"},\n\n {\"y\": [1, 2]}\n ]}";
    assert_eq!(array_element_lines(t, "value"), vec![3, 5]);
    assert!(array_element_lines(t, "nope").is_empty());
}

#[test]
fn mcfs_as_csv_and_a_bad_ndjson_line_name_their_lines() {
    let csv = "dateKey,enrollmentId,subscriptionId,azureServiceName,subService,azureRegionName,scope,scopeId,totalEmissions\n\
               20260201,E-1,sub-a,Storage,,North Europe,Scope 3,3,0.5\n\
               20260201,E-1,sub-a,Storage,,North Europe,Scope 4,4,0.5\n";
    assert_eq!(
        detect_portfolio_format(csv),
        Some(PortfolioFormat::AzureCarbon)
    );
    let e = imp(csv, PortfolioFormat::AzureCarbon).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (3, "scopeId"));
    let one = csv.lines().take(2).collect::<Vec<_>>().join("\n");
    let rs = imp(&one, PortfolioFormat::AzureCarbon).unwrap().records;
    assert_eq!((rs[0].scope, rs[0].grams), (Scope::Scope3, 500_000.0));
    assert_eq!(rs[0].zone().as_deref(), Some("azure:northeurope"));
    let bad = format!(
        "{}\n{{\"usage_month\": \n",
        GCP_NDJSON.lines().next().unwrap()
    );
    let e = imp(&bad, PortfolioFormat::GcpCarbon).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "json"));
}
