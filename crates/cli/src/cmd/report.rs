//! `wattprint report [RUN...]`: reports on stored runs (or report JSON files) as text,
//! Markdown, HTML with charts, JSON, CSV, the ESRS E1 statement for a period, or the
//! portfolio (measured runs, provider-reported and estimated records, each with its tier).

use crate::cmd::runs::{filter, resolve, SelectArgs};
use crate::exit::BadInput;
use std::io::Write;
use std::path::PathBuf;
use wattprint_core::portfolio::{Month, PortfolioRecord};
use wattprint_report::{esrs, html, portfolio, render};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Md,
    Html,
    Json,
    Csv,
    Esrs,
    /// Measured runs, provider-reported and estimated records in one statement (Markdown;
    /// JSON with --json, CSV / HTML / JSON from -o's extension).
    Portfolio,
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
    /// With --format esrs or portfolio: the statement as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --format portfolio: totals by this label (repeatable; default team, project,
    /// model).
    #[arg(long = "group-by", value_name = "LABEL")]
    pub group_by: Vec<String>,
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
        if !selection_given && !matches!(fmt, Format::Esrs | Format::Portfolio) {
            f.limit = Some(1);
        }
        let s = crate::cmd::runs::open_store_for_reading()?;
        let mut runs = crate::cmd::runs::list_or_skip(&s, &f)?;
        runs.reverse(); // oldest first reads better in a report
        runs
    };
    // Imported figures join the period's runs; runs named one by one (ids, files) are
    // reported alone unless a period is given too.
    let records = if matches!(fmt, Format::Esrs | Format::Portfolio)
        && (args.runs.is_empty() || args.select.period.is_some())
    {
        portfolio_records(&args.select)?
    } else {
        Vec::new()
    };
    if runs.is_empty() && fmt == Format::Portfolio && records.is_empty() {
        return Err(BadInput(
            "nothing to report: no runs and no imported provider figures for this selection \
             (see `wattprint runs`; import a provider export with `wattprint import FILE`)"
                .into(),
        )
        .into());
    }
    if runs.is_empty() && !matches!(fmt, Format::Esrs | Format::Portfolio) {
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
        Format::Portfolio => {
            let (mut all, warnings) = portfolio::measured_records(&runs);
            for w in warnings {
                eprintln!("wattprint: warning: {w}");
            }
            all.extend(records.iter().cloned());
            let keys: Vec<&str> = if args.group_by.is_empty() {
                portfolio::DEFAULT_LABEL_KEYS.to_vec()
            } else {
                args.group_by.iter().map(String::as_str).collect()
            };
            let mut p = portfolio::build(&period_label, all, &keys);
            p.overhead = portfolio::overhead(&runs);
            if args.runs.is_empty() {
                p.previous = previous_period(&args.select, &keys)?;
            }
            let ext = args
                .output
                .as_ref()
                .and_then(|p| p.extension())
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match (args.json, ext.as_deref()) {
                (true, _) | (_, Some("json")) => {
                    format!("{}\n", serde_json::to_string_pretty(&p)?)
                }
                (_, Some("csv")) => portfolio::csv(&p),
                (_, Some("html" | "htm")) => html::portfolio_html(&p),
                _ => portfolio::markdown(&p),
            }
        }
        Format::Esrs => {
            let st = esrs::statement_with_portfolio(&period_label, &runs, &records);
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
            let shown = crate::common::escape(&p.display().to_string()).into_owned();
            if records.is_empty() {
                eprintln!("wattprint: wrote {shown} ({} run(s))", runs.len());
            } else {
                eprintln!(
                    "wattprint: wrote {shown} ({} run(s), {} imported provider or estimated figure(s))",
                    runs.len(),
                    records.len()
                );
            }
        }
        // Commands, labels and ids are written as they are in the file formats; on stdout
        // (a terminal, often) their control characters are escaped. JSON escapes its own.
        None => std::io::stdout()
            .lock()
            .write_all(crate::common::escape_text(&text).as_bytes())?,
    }
    Ok(0)
}

/// The first and last month of the selection (`--period`, `--since`, `--until`), either
/// open when not given.
fn months(select: &SelectArgs) -> anyhow::Result<(Option<Month>, Option<Month>)> {
    let bad = |what: &str, v: &str| {
        anyhow::Error::from(BadInput(format!(
            "{what} `{v}`: write a year (2026), a month (2026-03) or a date"
        )))
    };
    let (mut from, mut to) = (None, None);
    if let Some(p) = &select.period {
        let p = p.trim();
        if p.len() == 4 {
            let y: i32 = p.parse().map_err(|_| bad("--period", p))?;
            from = Month::new(y, 1);
            to = Month::new(y, 12);
            if from.is_none() {
                return Err(bad("--period", p));
            }
        } else {
            let m = Month::parse(p).ok_or_else(|| bad("--period", p))?;
            (from, to) = (Some(m), Some(m));
        }
    }
    if let Some(s) = &select.since {
        from = Some(Month::parse(s).ok_or_else(|| bad("--since", s))?);
    }
    if let Some(u) = &select.until {
        // --until is exclusive: a date on the first of a month ends the month before.
        let m = Month::parse(u).ok_or_else(|| bad("--until", u))?;
        let first_day = u.get(8..10).is_none_or(|d| d == "01")
            && u.get(10..).is_none_or(|rest| {
                rest.trim_start_matches(['T', ' '])
                    .trim_start_matches("00:00:00")
                    .trim_start_matches('Z')
                    .is_empty()
            });
        to = Some(if first_day {
            let prev = if m.month == 1 {
                Month::new(m.year - 1, 12)
            } else {
                Month::new(m.year, m.month - 1)
            };
            prev.ok_or_else(|| bad("--until", u))?
        } else {
            m
        });
    }
    Ok((from, to))
}

/// The imported portfolio records of the selection's months and labels (none when the
/// history cannot be opened: the report says so on stderr).
fn portfolio_records(select: &SelectArgs) -> anyhow::Result<Vec<PortfolioRecord>> {
    let (from, to) = months(select)?;
    // No history yet: nothing imported (and no database created by reading).
    if !crate::cmd::runs::db_path().is_ok_and(|p| p.exists()) {
        return Ok(Vec::new());
    }
    let store = match crate::cmd::runs::open_store_for_reading() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wattprint: warning: no imported provider figures: {e}");
            return Ok(Vec::new());
        }
    };
    let mut rs = store.portfolio(from, to)?;
    rs.retain(|r| {
        select.labels.iter().all(|(k, v)| {
            r.labels.get(k) == Some(v)
                || (k == "project" && r.project.as_deref() == Some(v))
                || (k == "account" && r.account == *v)
        })
    });
    Ok(rs)
}

/// The totals of the period before `--period` (the year or month before), for the change
/// against it; `None` without `--period` or when that period holds nothing.
fn previous_period(
    select: &SelectArgs,
    keys: &[&str],
) -> anyhow::Result<Option<portfolio::PreviousPeriod>> {
    let Some(period) = select.period.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let prev = if period.len() == 4 {
        match period.parse::<i32>() {
            Ok(y) if y > 1 => format!("{}", y - 1),
            _ => return Ok(None),
        }
    } else {
        match Month::parse(period) {
            Some(m) if m.month > 1 => format!("{:04}-{:02}", m.year, m.month - 1),
            Some(m) if m.year > 1 => format!("{:04}-12", m.year - 1),
            _ => return Ok(None),
        }
    };
    let mut sel = select.clone();
    sel.period = Some(prev.clone());
    let (f, _) = filter(&sel, None)?;
    let runs = if crate::cmd::runs::db_path().is_ok_and(|p| p.exists()) {
        match crate::cmd::runs::open_store_for_reading() {
            Ok(s) => crate::cmd::runs::list_or_skip(&s, &f)?,
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let (mut all, _) = portfolio::measured_records(&runs);
    all.extend(portfolio_records(&sel)?);
    if all.is_empty() {
        return Ok(None);
    }
    let p = portfolio::build(&prev, all, keys);
    Ok(Some(portfolio::PreviousPeriod {
        period: prev,
        location_g: p.location_g,
        market_g: p.market_g,
    }))
}
