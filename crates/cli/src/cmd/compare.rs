//! `wattprint compare A B`: side by side with deltas; `--fail-over PCT` exits 1 when B is
//! worse than A by more than PCT percent (a CI gate). A and B are run ids, report JSON files,
//! or `label:K=V` groups of repeated runs (compared by median, with their spread).

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
    /// Exit 1 when B is worse than A by more than this percentage (`5` or `5%`).
    #[arg(long = "fail-over", value_name = "PCT", value_parser = parse_pct)]
    pub fail_over: Option<f64>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    /// Markdown table (for pull requests).
    #[arg(long)]
    pub markdown: bool,
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
    let c = compare(&args.a, &a, &args.b, &b, metric, args.fail_over)
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
