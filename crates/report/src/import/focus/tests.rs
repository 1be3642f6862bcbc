use super::estimate::*;
use super::*;
use std::io::Read as _;
use wattprint_core::portfolio::{Basis, Provider, Scope, Tier};
use wattprint_data::ccf;

const HEADER: &str = "BillingAccountId,ChargeCategory,ChargeDescription,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,ProviderName,RegionId,ServiceCategory,ServiceName,SubAccountId,BilledCost";

fn run(body: &str) -> FocusEstimate {
    let text = format!("{HEADER}\n{body}");
    estimate_reader(
        text.as_bytes(),
        EstimateOptions {
            file: "bill.csv".into(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn sample(name: &str) -> std::fs::File {
    std::fs::File::open(format!(
        "{}/../../examples/focus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_header_of_a_focus_export_is_recognised() {
    let aws = std::io::read_to_string(sample("focus-1.0-sample-aws.csv")).unwrap();
    assert!(is_focus_header(aws.lines().next().unwrap()));
    assert!(is_focus_header(HEADER));
    assert!(!is_focus_header("timestamp,index,power.draw [W]"));
    assert!(!is_focus_header("ChargeCategory,BilledCost"));
}

#[test]
fn ten_c5_2xlarge_hours_in_us_east_1_equal_the_hand_computation() {
    let e = run("A,Usage,$0.34 per On Demand Linux c5.2xlarge Instance Hour,2024-09-26 00:00:00,10,Hours,AWS,us-east-1,Compute,Amazon Elastic Compute Cloud,S1,3.4\n");
    assert_eq!((e.rows, e.estimated_rows), (1, 1));
    let sky = ccf::use_coefficients(ccf::Provider::Aws, ccf::Architecture::Skylake)
        .unwrap()
        .watts;
    let cas = ccf::use_coefficients(ccf::Provider::Aws, ccf::Architecture::CascadeLake)
        .unwrap()
        .watts;
    let (min_w, max_w) = ((sky.min_w + cas.min_w) / 2.0, (sky.max_w + cas.max_w) / 2.0);
    // 10 h x 8 vCPU x (min + 0.5 (max - min)) W / 1000 = kWh; x PUE 1.15 x SRVC 270.489.
    let kwh = 10.0 * 8.0 * (min_w + 0.5 * (max_w - min_w)) / 1000.0;
    let g = kwh * 1.15 * 270.489;
    let s2 = e.records.iter().find(|r| r.scope == Scope::Scope2).unwrap();
    assert!((s2.grams - g).abs() < 1e-9, "{} vs {g}", s2.grams);
    assert!((s2.low_g.unwrap() - 10.0 * 8.0 * min_w / 1000.0 * 1.15 * 270.489).abs() < 1e-9);
    assert!((s2.high_g.unwrap() - 10.0 * 8.0 * max_w / 1000.0 * 1.15 * 270.489).abs() < 1e-9);
    assert!((s2.energy_j.unwrap() - kwh * 1.15 * 3.6e6).abs() < 1e-6);
    assert_eq!(s2.tier, Tier::Estimate);
    assert_eq!(s2.tier.label(), "estimate (CCF method)");
    assert_eq!(s2.basis, Basis::Location);
    assert_eq!(s2.provider, Provider::Aws);
    // AWS: the usage account (FOCUS SubAccountId) is the account, as in AWS's carbon export.
    assert_eq!((s2.account.as_str(), s2.project.as_deref()), ("S1", None));
    assert_eq!(s2.labels["billing_account"], "A");
    assert_eq!(s2.region, "us-east-1");
    assert_eq!(s2.month.to_string(), "2024-09");
    assert_eq!(s2.source.line, 2);
    assert_eq!(s2.source.format, "focus");
    let note = s2.note.as_deref().unwrap();
    assert!(
        note.contains("50 %") && note.contains("SRVC") && note.contains("eGRID2023"),
        "{note}"
    );
    // Embodied: c5 host 1,344.29 kg / 35,040 h x 8/96 vCPU x 10 h.
    let s3 = e.records.iter().find(|r| r.scope == Scope::Scope3).unwrap();
    let emb = 1_344_290.0 / 35_040.0 * 8.0 / 96.0 * 10.0;
    assert!((s3.grams - emb).abs() < 1e-9, "{}", s3.grams);
    assert_eq!(s3.basis, Basis::Both);
    assert!(s3
        .note
        .as_deref()
        .unwrap()
        .contains("coefficients-aws-embodied.csv:24"));
    for r in &e.records {
        r.check().unwrap();
    }
}

#[test]
fn storage_network_memory_and_vcpu_hours_follow_ccf_coefficients() {
    let e = run(concat!(
        "A,Usage,EBS gp3 volume,2024-09-01,100,GB-Month,AWS,eu-west-3,Storage,Amazon Elastic Block Store,,1\n",
        "A,Usage,$0.02 per GB - data transfer out,2024-09-01,1000,GB,AWS,eu-west-3,Networking,Amazon Elastic Block Store,,1\n",
        "A,Usage,AWS Fargate - Memory,2024-09-01,100,Hours,AWS,eu-west-3,Compute,Amazon Elastic Block Store,,1\n",
        "A,Usage,AWS Fargate - vCPU,2024-09-01,10,Hours,AWS,eu-west-3,Compute,Amazon Elastic Block Store,,1\n",
    ));
    assert_eq!(e.estimated_rows, 4);
    let unknown = ccf::unknown_architecture(Some(ccf::Provider::Aws));
    let kwh = 100.0 * 730.0 / 1000.0 * 1.2 / 1000.0
        + 1000.0 * 0.001
        + 100.0 * 0.392 / 1000.0
        + 10.0 * (unknown.min_w + 0.5 * (unknown.max_w - unknown.min_w)) / 1000.0;
    let fr = wattprint_data::cloud::region(wattprint_data::cloud::Provider::Aws, "eu-west-3")
        .unwrap()
        .g_per_kwh;
    let r = &e.records[0];
    assert!(
        (r.grams - kwh * 1.15 * fr).abs() < 1e-9,
        "{} vs {}",
        r.grams,
        kwh * 1.15 * fr
    );
    assert!(r.low_g.unwrap() < r.grams && r.grams < r.high_g.unwrap());
}

#[test]
fn rows_it_cannot_estimate_are_counted_and_listed_never_guessed() {
    let e = run(concat!(
        "A,Tax,Sales tax,2024-09-01,,,AWS,,,Tax,,5\n",
        "A,Purchase,Marketplace SaaS subscription,2024-09-01,1,Units,AWS,,,Acme SaaS,,100\n",
        "A,Usage,AWS Support (Business),2024-09-01,1,Units,AWS,,,AWS Support,,100\n",
        "A,Usage,$0.005 per In-use public IPv4 address per hour,2024-09-01,24,Hours,AWS,us-east-1,Networking,Amazon Virtual Private Cloud,,0.12\n",
        "A,Usage,$1.624 per On Demand Linux g5.4xlarge Instance Hour,2024-09-01,1,Hours,AWS,us-east-1,Compute,Amazon Elastic Compute Cloud,,1.6\n",
        "A,Usage,$0.1 per On Demand Linux c5.2xlarge Instance Hour,2024-09-01,-1,Hours,AWS,us-east-1,Compute,Amazon Elastic Compute Cloud,,-0.1\n",
        "A,Usage,$0.1 per On Demand Linux c5.2xlarge Instance Hour,2024-09-01,1,Hours,AWS,mars-1,Compute,Amazon Elastic Compute Cloud,,0.1\n",
        "A,Usage,Standard - E5,2024-09-01,8,OCPU Hours,Oracle,,Compute,COMPUTE,,1\n",
    ));
    assert_eq!(e.rows, 8);
    assert_eq!(e.estimated_rows, 0);
    assert!(e.records.is_empty());
    assert_eq!(e.skipped_rows(), 2);
    assert_eq!(e.not_estimated_rows(), 6);
    assert_eq!(
        e.skipped_rows() + e.not_estimated_rows() + e.estimated_rows,
        e.rows
    );
    let reasons: Vec<&str> = e.not_estimated.iter().map(|n| n.reason.as_str()).collect();
    let has = |s: &str| reasons.iter().any(|r| r.contains(s));
    assert!(has("gpu instance (g5)"), "{reasons:?}");
    assert!(has("negative quantity"), "{reasons:?}");
    assert!(has("region \"mars-1\""), "{reasons:?}");
    assert!(has("oci: no CCF coefficients"), "{reasons:?}");
    assert!(has("no energy model"), "{reasons:?}");
    let support = e
        .not_estimated
        .iter()
        .find(|n| n.service == "AWS Support")
        .unwrap();
    assert_eq!(
        (support.rows, support.first_line, support.billed_cost),
        (1, 4, 100.0)
    );
    assert!(e.skipped.iter().any(|s| s.reason.starts_with("Tax")));
}

#[test]
fn bad_input_names_line_and_field_and_returns_nothing() {
    let text = format!("{HEADER}\nA,Usage,x,2024-09-01,ten,Hours,AWS,us-east-1,Compute,EC2,,1\n");
    let e = estimate_reader(text.as_bytes(), EstimateOptions::default()).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "ConsumedQuantity"));
    assert!(e.message.contains("\"ten\""), "{e}");
    let text = format!("{HEADER}\nA,Usage,x,last month,1,Hours,AWS,us-east-1,Compute,EC2,,1\n");
    let e = estimate_reader(text.as_bytes(), EstimateOptions::default()).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "ChargePeriodStart"));
    let text = format!("{HEADER}\nA,Usage,x\n");
    let e = estimate_reader(text.as_bytes(), EstimateOptions::default()).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("3 fields where the header has 12"),
        "{e}"
    );
    let e = estimate_reader(
        "ChargeCategory,ProviderName\n".as_bytes(),
        EstimateOptions::default(),
    )
    .unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (1, "ChargePeriodStart"));
    assert!(Estimator::new(EstimateOptions {
        utilisation: 1.5,
        ..Default::default()
    })
    .is_err());
}

#[test]
fn the_aws_sample_is_read_whole_and_every_row_accounted_for() {
    let e = estimate_reader(
        sample("focus-1.0-sample-aws.csv"),
        EstimateOptions::default(),
    )
    .unwrap();
    assert_eq!(e.rows, 300);
    assert_eq!(
        e.skipped_rows() + e.not_estimated_rows() + e.estimated_rows,
        300
    );
    assert!(e.estimated_rows > 150, "{}", e.estimated_rows);
    // The credit row is not usage; IPv4 hours, GPU instances and NAT hours are listed.
    assert!(e.skipped.iter().any(|s| s.reason.starts_with("Credit")));
    assert!(e
        .not_estimated
        .iter()
        .any(|n| n.service == "Amazon Virtual Private Cloud"));
    assert!(e
        .not_estimated
        .iter()
        .any(|n| n.reason.contains("gpu instance")));
    for r in &e.records {
        r.check().unwrap();
        assert_eq!(r.tier, Tier::Estimate);
    }
    // Utilisation moves the figure within the range, never outside it.
    let lo = estimate_reader(
        sample("focus-1.0-sample-aws.csv"),
        EstimateOptions {
            utilisation: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let sum = |e: &FocusEstimate| e.records.iter().map(|r| r.grams).sum::<f64>();
    let low_sum: f64 = e.records.iter().map(|r| r.low_g.unwrap_or(r.grams)).sum();
    assert!((sum(&lo) - low_sum).abs() < 1e-6 * low_sum.max(1.0));
    assert!(sum(&lo) < sum(&e));
}

#[test]
fn microsoft_and_oracle_samples_are_read_whole() {
    for (f, n) in [
        ("focus-1.0-sample-microsoft.csv", 51),
        ("focus-1.0-sample-oracle.csv", 7),
    ] {
        let e = estimate_reader(sample(f), EstimateOptions::default()).unwrap();
        assert_eq!(e.rows, n, "{f}");
        assert_eq!(
            e.skipped_rows() + e.not_estimated_rows() + e.estimated_rows,
            n,
            "{f}"
        );
    }
}

#[test]
fn rows_are_streamed_in_one_buffer() {
    // 50,000 rows of one key: one record pair, whatever the row count.
    let mut text = String::from(HEADER);
    text.push('\n');
    for _ in 0..50_000 {
        text.push_str("A,Usage,$0.085 per On Demand Linux c5.large Instance Hour,2024-09-01 00:00:00,1,Hours,AWS,us-east-1,Compute,Amazon Elastic Compute Cloud,S,0.085\n");
    }
    let e = estimate_reader(text.as_bytes(), EstimateOptions::default()).unwrap();
    assert_eq!(e.estimated_rows, 50_000);
    assert_eq!(e.records.len(), 2);
}

#[test]
fn a_file_without_line_breaks_is_refused_not_buffered() {
    let junk = std::io::repeat(b'x').take(8 << 20);
    let e = estimate_reader(junk, EstimateOptions::default()).unwrap_err();
    assert!(e.message.contains("longer than 1 MiB"), "{e}");
    let mut text = format!("{HEADER}\n").into_bytes();
    text.extend(std::iter::repeat_n(0u8, 100));
    let e = estimate_reader(&text[..], EstimateOptions::default()).unwrap_err();
    assert!(e.message.contains("NUL"), "{e}");
}

#[test]
fn the_providers_own_figure_supersedes_the_estimate_of_its_account_and_month() {
    let e = run("A,Usage,$0.34 per On Demand Linux c5.2xlarge Instance Hour,2024-09-26 00:00:00,10,Hours,AWS,us-east-1,Compute,Amazon Elastic Compute Cloud,S1,3.4\n");
    let mut provider = e.records[0].clone();
    provider.tier = Tier::ProviderReported;
    provider.scope = Scope::Unsplit;
    provider.basis = Basis::Both;
    provider.grams = 1000.0;
    provider.low_g = None;
    provider.high_g = None;
    provider.energy_j = None;
    let mut all = e.records.clone();
    all.push(provider);
    let p = crate::portfolio::build("2024", all, &[]);
    // Only the provider's 1,000 g counts; the estimate is shown as superseded.
    assert!((p.location_g - 1000.0).abs() < 1e-9, "{}", p.location_g);
    assert_eq!(
        p.lines.iter().filter(|l| !l.counted).count(),
        e.records.len()
    );
}

/// Found by `tests/portfolio_props.rs`: a mutated cell of about 1e300 hours made a finite
/// quantity whose energy overflowed to infinity. Such a quantity is refused where it enters,
/// naming the line and field; the largest allowed one still gives finite figures.
#[test]
fn a_quantity_beyond_any_row_is_refused_and_the_largest_allowed_stays_finite() {
    let row = |q: &str| {
        format!(
            "{HEADER}\nA,Usage,$0.34 per On Demand Linux c5.2xlarge Instance Hour,\
             2024-09-26 00:00:00,{q},Hours,AWS,us-east-1,Compute,Amazon Elastic Compute Cloud,S1,3.4\n"
        )
    };
    let e = estimate_reader(row("1e300").as_bytes(), EstimateOptions::default()).unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "ConsumedQuantity"));
    assert!(e.message.contains("beyond any one row's usage"), "{e}");
    let est = estimate_reader(
        row(&format!("{MAX_ROW_QUANTITY}")).as_bytes(),
        EstimateOptions::default(),
    )
    .unwrap();
    assert!(!est.records.is_empty());
    for r in &est.records {
        assert!(r.grams.is_finite(), "{r:?}");
        assert!(r.energy_j.is_none_or(f64::is_finite), "{r:?}");
    }
}

/// Found by `tests/portfolio_props.rs`: a NUL byte (a binary file) was refused without its
/// line (line 0); the error now names the line it is on.
#[test]
fn a_nul_byte_is_refused_with_its_line() {
    let text = format!(
        "{HEADER}\nA,Usage,x,2024-09-26 00:00:00,1,Hours,AWS,us-east-1,Compute,EC2,S1,1\n\
         A,Usage,x,2024-09-26 00:00:00,1,Ho\0urs,AWS,us-east-1,Compute,EC2,S1,1\n"
    );
    let e = estimate_reader(text.as_bytes(), EstimateOptions::default()).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("NUL byte"), "{e}");
}
