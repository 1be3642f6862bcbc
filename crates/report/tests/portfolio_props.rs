//! Property tests over the provider importers (`import::portfolio`: GCP, AWS, Azure) and the
//! FOCUS estimate (`import::focus`): arbitrary text and mutated committed examples give
//! records whose figures are finite and non-negative, or an error naming a line of the
//! input, never a panic. Cases per property: `CASES`, published in docs/security.md.

use proptest::prelude::*;
use wattprint_core::portfolio::{Month, PortfolioRecord};
use wattprint_report::import::focus::estimate::{estimate_reader, EstimateOptions};
use wattprint_report::import::portfolio::{
    detect_portfolio_format, import_portfolio, PortfolioFormat, PortfolioOptions,
};
use wattprint_report::ParseError;

const CASES: u32 = 256;

const PROVIDER_FILES: [&str; 8] = [
    include_str!("../../../examples/portfolio/gcp-carbon-footprint.csv"),
    include_str!("../../../examples/portfolio/gcp-carbon-footprint.ndjson"),
    include_str!("../../../examples/portfolio/aws-carbon-emissions.csv"),
    include_str!("../../../examples/portfolio/aws-carbon-emissions-scopes.csv"),
    include_str!("../../../examples/portfolio/aws-sustainability-api.json"),
    include_str!("../../../examples/portfolio/azure-monthly-summary.json"),
    include_str!("../../../examples/portfolio/azure-resource-item-details.json"),
    include_str!("../../../examples/portfolio/azure-enrollment-emissions.json"),
];

const FOCUS_FILES: [&str; 3] = [
    include_str!("../../../examples/focus/focus-1.0-sample-aws.csv"),
    include_str!("../../../examples/focus/focus-1.0-sample-microsoft.csv"),
    include_str!("../../../examples/focus/focus-1.0-sample-oracle.csv"),
];

const FORMATS: [PortfolioFormat; 3] = [
    PortfolioFormat::GcpCarbon,
    PortfolioFormat::AwsCarbon,
    PortfolioFormat::AzureCarbon,
];

fn check_records(records: &[PortfolioRecord]) -> Result<(), TestCaseError> {
    for r in records {
        let figures = [Some(r.grams), r.low_g, r.high_g, r.energy_j];
        for v in figures.into_iter().flatten() {
            prop_assert!(v.is_finite(), "{r:?}");
        }
        prop_assert!(r.source.line >= 1, "{r:?}");
    }
    Ok(())
}

/// An error names a line of the input (1-based; one past the last for an input cut short)
/// and says something.
fn check_error(e: &ParseError, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!e.message.is_empty(), "{e:?}");
    prop_assert!(
        e.line >= 1 && e.line <= text.lines().count() + 1,
        "{e:?} in {} lines",
        text.lines().count()
    );
    Ok(())
}

/// Options with and without `--month` (Azure's item details need it).
fn options() -> [PortfolioOptions; 2] {
    [
        PortfolioOptions::default(),
        PortfolioOptions {
            month: Month::new(2025, 3),
        },
    ]
}

fn check_provider(text: &str) -> Result<(), TestCaseError> {
    let detected = detect_portfolio_format(text);
    for (format, opts) in FORMATS.iter().flat_map(|f| options().map(|o| (*f, o))) {
        match import_portfolio(text, format, "file", &opts) {
            Ok(out) => check_records(&out.records)?,
            Err(e) => {
                if Some(format) == detected {
                    check_error(&e, text)?;
                }
            }
        }
    }
    Ok(())
}

fn check_focus(text: &str) -> Result<(), TestCaseError> {
    match estimate_reader(text.as_bytes(), EstimateOptions::default()) {
        Ok(est) => {
            check_records(&est.records)?;
            prop_assert!(est.estimated_rows <= est.rows);
        }
        Err(e) => check_error(&e, text)?,
    }
    Ok(())
}

/// An odd figure for a cell.
fn odd_figure() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e308".to_string()),
        Just("-1".to_string()),
        Just("-0".to_string()),
        Just(String::new()),
        Just("\"\"".to_string()),
        Just("null".to_string()),
        (-1e9f64..1e12).prop_map(|v| v.to_string()),
        "[0-9.eE+-]{1,12}",
        "\\PC{0,8}",
    ]
}

/// A committed file mutated: cut at a byte, a line repeated or dropped, a comma- or
/// colon-separated cell replaced by an odd figure, or bytes flipped.
fn mutated(files: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        0..files.len(),
        0usize..5,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        odd_figure(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    )
        .prop_map(move |(f, how, at, cell, figure, flips)| {
            let text = files[f];
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            match how {
                0 => {
                    let mut cut = at.index(text.len() + 1);
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    return text[..cut].to_string();
                }
                1 if !lines.is_empty() => {
                    let i = at.index(lines.len());
                    lines.insert(i, lines[i].clone());
                }
                2 if !lines.is_empty() => {
                    lines.remove(at.index(lines.len()));
                }
                3 if !lines.is_empty() => {
                    let i = at.index(lines.len());
                    let sep = if lines[i].contains(',') { ',' } else { ':' };
                    let mut cells: Vec<String> = lines[i].split(sep).map(str::to_string).collect();
                    let c = cell.index(cells.len());
                    // Keep a JSON value's trailing brace or comma out of the cell.
                    let tail: String = cells[c]
                        .chars()
                        .rev()
                        .take_while(|ch| matches!(ch, '}' | ']' | ' '))
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    cells[c] = format!("{figure}{tail}");
                    lines[i] = cells.join(&sep.to_string());
                }
                _ => {
                    let mut b = text.as_bytes().to_vec();
                    for (i, v) in flips {
                        let i = i.index(b.len());
                        b[i] = v;
                    }
                    return String::from_utf8_lossy(&b).into_owned();
                }
            }
            lines.join("\n") + "\n"
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Arbitrary text, arbitrary bytes made UTF-8 and mutated provider exports: records with
    /// finite figures or, from the importer of the format the file looks like, an error
    /// naming a line.
    #[test]
    fn any_provider_file_gives_finite_records_or_an_error_naming_a_line(
        text in "\\PC{0,300}",
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        file in mutated(&PROVIDER_FILES),
    ) {
        check_provider(&text)?;
        check_provider(&String::from_utf8_lossy(&bytes))?;
        check_provider(&file)?;
    }

    /// The same for the FOCUS estimate: every importer error names a line.
    #[test]
    fn any_focus_file_gives_finite_records_or_an_error_naming_a_line(
        text in "\\PC{0,300}",
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        file in mutated(&FOCUS_FILES),
    ) {
        check_focus(&text)?;
        check_focus(&String::from_utf8_lossy(&bytes))?;
        check_focus(&file)?;
    }
}

/// The properties above start from files that import: their mutations reach the row
/// parsers, not only the header checks.
#[test]
fn the_committed_files_import_with_finite_records() {
    for text in PROVIDER_FILES {
        let format = detect_portfolio_format(text).unwrap();
        let out = import_portfolio(text, format, "file", &options()[1]).unwrap();
        assert!(!out.records.is_empty());
        check_records(&out.records).unwrap();
    }
    let mut estimated = 0;
    for text in FOCUS_FILES {
        let est = estimate_reader(text.as_bytes(), EstimateOptions::default()).unwrap();
        assert!(est.rows > 0, "{est:?}");
        estimated += est.records.len();
        check_records(&est.records).unwrap();
    }
    // Oracle's sample has no CCF coefficients; the AWS and Microsoft ones are estimated.
    assert!(estimated > 0);
}
