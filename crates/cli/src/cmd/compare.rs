//! `wattprint compare A B`: side by side with deltas; `--fail-over PCT` exits 1 when B is
//! worse than A by more than PCT percent (a CI gate). A and B are run ids, report JSON files,
//! `label:K=V` groups of repeated runs, or `bench:ID/N` (the runs of one command or
//! configuration of a `wattprint bench`), compared by median with their spread and, for
//! groups, a confidence interval of the change.

use crate::cmd::runs::resolve;
use crate::exit::BadInput;
use std::io::Write;
use wattprint_report::compare::{compare, parse_pct, render, CompareMetric};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Energy,
    Carbon,
    JPerToken,
    JPerInference,
}

/// Options of `wattprint compare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The baseline: a run id, a report JSON file, or `label:K=V`.
    #[arg(value_name = "A")]
    pub a: String,
    /// The candidate, same forms as A.
    #[arg(value_name = "B")]
    pub b: String,
    /// What to compare (lower is better).
    #[arg(long, value_enum, default_value = "energy")]
    pub metric: Metric,
    /// Exit 1 when B is worse than A by more than this percentage (`5` or `5%`). With two
    /// runs or more on each side, only when the whole confidence interval of the change is
    /// above it (noise does not trip the gate).
    #[arg(long = "fail-over", value_name = "PCT", value_parser = parse_pct)]
    pub fail_over: Option<f64>,
    /// Confidence of the interval the gate judges groups by, percent (50 to 99.9).
    #[arg(long, value_name = "PCT", default_value = "95", value_parser = parse_confidence)]
    pub confidence: f64,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    /// Markdown table (for pull requests).
    #[arg(long)]
    pub markdown: bool,
}

/// Parses `--confidence`: 95 or 95%, from 50 to 99.9.
pub fn parse_confidence(text: &str) -> Result<f64, String> {
    match parse_pct(text) {
        Ok(p) if (50.0..=99.9).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is not a confidence from 50 to 99.9 percent, like 95"
        )),
    }
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let mut store = None;
    let a = resolve(&args.a, &mut store)?;
    let b = resolve(&args.b, &mut store)?;
    let metric = match args.metric {
        Metric::Energy => CompareMetric::Energy,
        Metric::Carbon => CompareMetric::Carbon,
        Metric::JPerToken => CompareMetric::JPerToken,
        Metric::JPerInference => CompareMetric::JPerInference,
    };
    let c = compare(
        &args.a,
        &a,
        &args.b,
        &b,
        metric,
        args.fail_over,
        args.confidence,
    )
    .map_err(|e| BadInput(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&c)?)?;
    } else {
        write!(
            out,
            "{}",
            crate::common::escape_text(&render(&c, args.markdown))
        )?;
    }
    Ok(if c.failed { 1 } else { 0 })
}
