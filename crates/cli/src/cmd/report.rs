//! `wattprint report [RUN...]`: reports on stored runs (or report JSON files) as text,
//! Markdown, HTML with charts, JSON, CSV, or the ESRS E1 statement for a period.

use crate::cmd::runs::{filter, resolve, SelectArgs};
use crate::exit::BadInput;
use std::io::Write;
use std::path::PathBuf;
use wattprint_report::{esrs, html, render};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Md,
    Html,
    Json,
    Csv,
    Esrs,
}

/// Options of `wattprint report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Runs: ids (or id prefixes), report JSON files, or `label:K=V`. Default: the latest run,
    /// or every run of the selection (--period, --since, --label...) when one is given.
    #[arg(value_name = "RUN")]
    pub runs: Vec<String>,
    /// Output format (default: from -o's extension, else text).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With --format esrs: the statement as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub select: SelectArgs,
}

fn format_of(args: &Args) -> anyhow::Result<Format> {
    if let Some(f) = args.format {
        return Ok(f);
    }
    if args.json {
        return Ok(Format::Json);
    }
    let ext = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        None | Some("txt") => Format::Text,
        Some("md") | Some("markdown") => Format::Md,
        Some("html") | Some("htm") => Format::Html,
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(e) => {
            return Err(BadInput(format!(
                "-o: cannot tell the format from `.{e}`: use .md, .html, .json, .csv or --format"
            ))
            .into())
        }
    })
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let fmt = format_of(&args)?;
    let selection_given = args.select.period.is_some()
        || args.select.since.is_some()
        || args.select.until.is_some()
        || !args.select.labels.is_empty()
        || args.select.command.is_some();
    let (mut f, period_label) = filter(&args.select, None)?;
    let mut store = None;
    let runs = if !args.runs.is_empty() {
        let mut all = Vec::new();
        for sel in &args.runs {
            all.extend(resolve(sel, &mut store)?);
        }
        all
    } else {
        if !selection_given && fmt != Format::Esrs {
            f.limit = Some(1);
        }
        let s = crate::cmd::runs::open_store_for_reading()?;
        let mut runs = crate::cmd::runs::list_or_skip(&s, &f)?;
        runs.reverse(); // oldest first reads better in a report
        runs
    };
    if runs.is_empty() && fmt != Format::Esrs {
        return Err(BadInput(
            "no runs to report: none stored for this selection (see `wattprint runs`)".into(),
        )
        .into());
    }
    let text = match fmt {
        Format::Text | Format::Md => render::markdown(&runs),
        Format::Html => html::html(&runs),
        Format::Json => format!("{}\n", render::json(&runs)),
        Format::Csv => render::csv(&runs),
        Format::Esrs => {
            let st = esrs::statement(&period_label, &runs);
            if args.json {
                format!("{}\n", serde_json::to_string_pretty(&st)?)
            } else {
                esrs::markdown(&st)
            }
        }
    };
    match &args.output {
        Some(p) => {
            crate::common::write_atomic(p, text.as_bytes())
                .map_err(|e| anyhow::anyhow!("writing the report to {}: {e}", p.display()))?;
            eprintln!(
                "wattprint: wrote {} ({} run(s))",
                crate::common::escape(&p.display().to_string()),
                runs.len()
            );
        }
        // Commands, labels and ids are written as they are in the file formats; on stdout
        // (a terminal, often) their control characters are escaped. JSON escapes its own.
        None => std::io::stdout()
            .lock()
            .write_all(crate::common::escape_text(&text).as_bytes())?,
    }
    Ok(0)
}
