//! `wattprint import FILE`: scores a trace or another tool's output (nvidia-smi CSV,
//! CodeCarbon emissions.csv, wattprint CSV trace) like a measured run, and stores it; or
//! reads a cloud provider's carbon export (GCP, AWS, Azure) into the portfolio; a FOCUS billing
//! export becomes usage-based estimates (`cmd/import_focus.rs`).

use crate::common::{carbon_error, escape, CarbonArgs, WorkArgs};
use crate::exit::BadInput;
use std::io::Write;
use std::path::PathBuf;
use wattprint_core::portfolio::{Basis, Month, PortfolioRecord};
use wattprint_core::textpos::{BoundedLines, LineError};
use wattprint_report::import::portfolio::{
    detect_portfolio_format, import_portfolio, PortfolioFormat, PortfolioOptions,
};
use wattprint_report::import::{
    detect_format, export_trace, import_reader, BadRows, ImportError, ImportFormat, ImportOptions,
    ReadLimits,
};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    NvidiaSmi,
    Codecarbon,
    Csv,
    /// A FinOps FOCUS billing export: usage-based estimates (CCF method).
    Focus,
    /// Google Cloud Carbon Footprint export (CSV or newline-delimited JSON).
    GcpCarbon,
    /// AWS CARBON_EMISSIONS export (CSV) or Sustainability API response (JSON).
    AwsCarbon,
    /// Azure Carbon Optimization response or Cloud for Sustainability EnrollmentEmission.
    AzureCarbon,
}

impl Format {
    fn portfolio(self) -> Option<PortfolioFormat> {
        match self {
            Format::GcpCarbon => Some(PortfolioFormat::GcpCarbon),
            Format::AwsCarbon => Some(PortfolioFormat::AwsCarbon),
            Format::AzureCarbon => Some(PortfolioFormat::AzureCarbon),
            Format::NvidiaSmi | Format::Codecarbon | Format::Csv | Format::Focus => None,
        }
    }
}

/// Options of `wattprint import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to import.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Its format (default: detected from the header).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print a JSON array of `wattprint.run/v1` reports.
    #[arg(long)]
    pub json: bool,
    /// Do not store the imported runs in the history.
    #[arg(long)]
    pub no_store: bool,
    /// Skip rows whose field count differs from the header's (counted and named in the
    /// report's warnings) instead of refusing the file.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// FOCUS only: the average vCPU utilisation the estimate assumes, 0..=1 (Cloud Carbon
    /// Footprint's default 0.5); the range printed is idle to full load whatever this is.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.5)]
    pub utilisation: f64,
    /// The month of a provider report that does not carry one (Azure `ItemDetailsReport`,
    /// `OverallSummaryReport`): the last month of the request's date range, `YYYY-MM`.
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: Option<Month>,
    /// Provider figures that differ from those already stored for the same month (a
    /// provider's restatement) replace them; without it such a file is refused whole.
    #[arg(long)]
    pub replace: bool,
    /// Label the imported runs (repeatable).
    #[arg(long = "label", value_name = "K=V", value_parser = crate::cmd::run::parse_label)]
    pub labels: Vec<(String, String)>,
    /// Also write each imported run as a wattprint CSV trace to this file (one run only).
    #[arg(long = "export-trace", value_name = "FILE")]
    pub export_trace: Option<PathBuf>,
    #[command(flatten)]
    pub carbon: CarbonArgs,
    /// Work the imported run(s) did (--tokens, --inferences, --flops...): gives J per token,
    /// per inference and FLOPs/W like a measured run.
    #[command(flatten)]
    pub work: WorkArgs,
}

/// Largest file imported, bytes: a day of nvidia-smi logs of 8 GPUs every 100 ms is about
/// 500 MB, so 1 GiB; a larger file is refused. It bounds the time an import takes, and the
/// memory of what is read whole (a provider's JSON export, `report FILE`): an nvidia-smi log,
/// a CodeCarbon file or a trace is streamed, its memory that of one line whatever its size.
pub const MAX_IMPORT_BYTES: u64 = 1 << 30;

/// Longest line of an imported file, bytes: a CodeCarbon row with every column is about
/// 2 KB; a file without line breaks (`/dev/zero`, a binary) is refused after this much.
pub const MAX_IMPORT_LINE_BYTES: usize = 1 << 20;

pub fn main(args: Args) -> anyhow::Result<u8> {
    // FOCUS files are streamed (1 M rows and more), never read whole.
    let focus = match args.format {
        Some(Format::Focus) => true,
        Some(_) => false,
        None => crate::cmd::import_focus::looks_like_focus(&args.file)?,
    };
    if focus {
        if args.month.is_some() || args.export_trace.is_some() || args.skip_bad_rows {
            return Err(BadInput(
                "--month, --export-trace and --skip-bad-rows do not apply to a FOCUS billing export"
                    .into(),
            )
            .into());
        }
        return crate::cmd::import_focus::main(
            &args.file,
            args.utilisation,
            args.json,
            args.no_store,
            args.replace,
            &args.labels,
        );
    }
    let cannot_read =
        |e: &dyn std::fmt::Display| BadInput(format!("{}: cannot read: {e}", args.file.display()));
    let file = std::fs::File::open(&args.file).map_err(|e| cannot_read(&e))?;
    let mut input = std::io::BufReader::new(file);
    // The lines read to find the header, handed back to the importer before the rest.
    let mut head = Vec::new();
    let run_format = match args.format {
        Some(Format::NvidiaSmi) => Some(ImportFormat::NvidiaSmi),
        Some(Format::Codecarbon) => Some(ImportFormat::CodeCarbon),
        Some(Format::Csv) => Some(ImportFormat::Trace),
        Some(_) => None,
        None => {
            head = peek_header(&mut input).map_err(|e| cannot_read(&too_big_hint(e)))?;
            detect_format(&String::from_utf8_lossy(&head))
        }
    };
    let input = std::io::Read::chain(std::io::Cursor::new(head), input);
    let Some(format) = run_format else {
        // A provider export (JSON or CSV): read whole, within the caps.
        let text =
            crate::common::read_lines_bounded_from(input, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_BYTES)
                .map_err(|e| {
                    cannot_read(&format!("{e} (split a larger log and import the parts)"))
                })?;
        let p = match args.format.and_then(Format::portfolio) {
            Some(p) => p,
            None => detect_portfolio_format(&text).ok_or_else(|| {
                BadInput(format!(
                    "{}: cannot tell the format from the header or shape; give --format \
                     nvidia-smi, codecarbon, csv, gcp-carbon, aws-carbon, azure-carbon or focus",
                    args.file.display()
                ))
            })?,
        };
        return portfolio(&args, &text, p);
    };
    if args.month.is_some() || args.replace {
        return Err(BadInput(
            "--month and --replace are for provider carbon exports (gcp-carbon, aws-carbon, \
             azure-carbon)"
                .into(),
        )
        .into());
    }
    let carbon_opts = args.carbon.to_options()?;
    let work_decl = args.work.to_decl()?;
    let work = wattprint_core::work::resolve_work(&work_decl, None);
    let declared = work.flops.is_some() || work.tokens.is_some() || work.inferences.is_some();
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let opts = ImportOptions {
        bad_rows: if args.skip_bad_rows {
            BadRows::Skip
        } else {
            BadRows::Error
        },
    };
    let limits = ReadLimits {
        max_line_bytes: MAX_IMPORT_LINE_BYTES,
        max_total_bytes: MAX_IMPORT_BYTES,
    };
    let mut runs = import_reader(input, format, &name, &opts, limits).map_err(|e| match e {
        ImportError::Read(e) => cannot_read(&too_big_hint(e)),
        ImportError::Parse(e) => BadInput(format!("{}: {e}", args.file.display())),
    })?;
    for r in &mut runs {
        for (k, v) in &args.labels {
            r.labels.insert(k.clone(), v.clone());
        }
        if declared {
            r.work = work.clone();
            let gpu_j = r
                .energy
                .domains
                .iter()
                .filter(|d| d.kind == wattprint_core::DomainKind::Gpu && d.counted_in_total)
                .map(|d| d.joules)
                .reduce(|a, b| a + b);
            wattprint_core::work::fill_work_metrics(
                &mut r.metrics,
                &r.work,
                wattprint_core::work::MetricEnergy {
                    e2s_j: r.energy.total_j,
                    gpu_j,
                },
                &[],
            );
        }
        // Other tools' carbon (CodeCarbon) is kept as reported; the rest is scored here.
        if r.carbon.zone.is_empty() {
            if let Err(e) = wattprint_carbon::apply(r, &carbon_opts) {
                let e = carbon_error(e);
                r.warnings.push(format!("carbon not computed: {e}"));
            }
        }
    }
    if let Some(p) = &args.export_trace {
        if runs.len() != 1 {
            return Err(BadInput(format!(
                "--export-trace: the file holds {} runs; a trace holds one",
                runs.len()
            ))
            .into());
        }
        crate::common::write_atomic(p, export_trace(&runs[0]).as_bytes())
            .map_err(|e| anyhow::anyhow!("writing the trace to {}: {e}", p.display()))?;
    }
    if args.json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            wattprint_report::render::json(&runs)
        )?;
    }
    for r in &runs {
        eprintln!(
            "wattprint: imported {} ({}): {} over {:.1} s{}",
            escape(&r.id),
            format.name(),
            wattprint_report::render::fmt_j(r.energy.total_j),
            r.duration_s,
            if r.carbon.zone.is_empty() {
                String::new()
            } else {
                format!(", {}", wattprint_report::render::fmt_g(r.carbon.total_g))
            }
        );
    }
    if !args.no_store {
        // Like `run`: a locked history that outlasts the wait keeps the runs in the spool
        // beside the database (the warning says where); the next run or import stores them.
        crate::cmd::runs::store_all_or_warn(&runs, |r, how| {
            if how == wattprint_store::Inserted::AlreadyStored {
                eprintln!(
                    "wattprint: {} was already in the history (same file imported before)",
                    escape(&r.id)
                );
            }
        });
    }
    Ok(0)
}

/// Reads `input` up to its header, the first line that is neither blank nor a `#` comment,
/// and returns the bytes read (the importer reads them again). Lines are read while fewer
/// than [`MAX_IMPORT_LINE_BYTES`] were: a header further down is not found (give
/// `--format`), and `/dev/zero` is refused after one line's worth.
fn peek_header(input: &mut impl std::io::BufRead) -> Result<Vec<u8>, LineError> {
    let mut head = Vec::new();
    let mut lines = BoundedLines::new(input, MAX_IMPORT_LINE_BYTES, u64::MAX);
    while head.len() < MAX_IMPORT_LINE_BYTES {
        let Some(line) = lines.next_bytes() else {
            break;
        };
        let (_, raw) = line?;
        head.extend_from_slice(raw);
        let text = String::from_utf8_lossy(raw);
        let t = text.trim_start_matches('\u{feff}').trim();
        if !t.is_empty() && !t.starts_with('#') {
            break;
        }
    }
    Ok(head)
}

/// A read error, with the way out where the file is over the size cap.
fn too_big_hint(e: LineError) -> String {
    match e {
        LineError::TooBig { .. } => format!("{e} (split a larger log and import the parts)"),
        e => e.to_string(),
    }
}

/// Parses `--month`.
fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("`{s}` is not a month: write YYYY-MM, e.g. 2026-03"))
}

/// Imports a provider carbon export into the portfolio: all its records in one transaction,
/// or none.
fn portfolio(args: &Args, text: &str, format: PortfolioFormat) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    if args.export_trace.is_some() || args.skip_bad_rows {
        return Err(BadInput(format!(
            "{file}: --export-trace and --skip-bad-rows are for measured traces; a provider \
             export is read whole or not at all"
        ))
        .into());
    }
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let opts = PortfolioOptions { month: args.month };
    let mut out = import_portfolio(text, format, &name, &opts)
        .map_err(|e| BadInput(format!("{file}: {e} (format {})", format.name())))?;
    for r in &mut out.records {
        for (k, v) in &args.labels {
            r.labels.insert(k.clone(), v.clone());
        }
    }
    for w in &out.warnings {
        say(format!("wattprint: warning: {file}: {w}"));
    }
    if args.json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&out.records)?
        )?;
    }
    let mut breaks = out.breaks.clone();
    let mut already = 0;
    if !args.no_store {
        let mut store = match crate::cmd::runs::open_store() {
            Ok(s) => Some(s),
            Err(e) => {
                say(format!(
                    "wattprint: warning: provider figures not stored in the history: {e}"
                ));
                None
            }
        };
        if let Some(store) = &mut store {
            // A break against what is already stored (an earlier file of the same account).
            let mut all: Vec<PortfolioRecord> = store
                .portfolio(None, None)?
                .into_iter()
                .filter(|s| out.records.iter().any(|r| r.provider == s.provider))
                .collect();
            all.extend(out.records.iter().cloned());
            for b in wattprint_core::portfolio::series_breaks(&all) {
                // Only the breaks at a month of this file: older ones were reported then.
                let here = out.records.iter().any(|r| r.month == b.month);
                if here && !breaks.contains(&b) {
                    breaks.push(b);
                }
            }
            let on = if args.replace {
                wattprint_store::OnRestated::Replace
            } else {
                wattprint_store::OnRestated::Refuse
            };
            let done = store.insert_portfolio(&out.records, on)?;
            if !done.committed {
                let named: Vec<String> = done
                    .restated
                    .iter()
                    .take(10)
                    .map(|r| {
                        format!(
                            "  {}: stored {} (from {} line {}), this file {}",
                            r.key,
                            wattprint_report::render::fmt_g(r.stored_g),
                            r.stored_source.file,
                            r.stored_source.line,
                            wattprint_report::render::fmt_g(r.new_g)
                        )
                    })
                    .collect();
                return Err(BadInput(format!(
                    "{file}: {} figure(s) differ from those already in the history for the \
                     same month (a provider's restatement?); nothing imported. Re-import with \
                     --replace to take this file's figures:\n{}{}",
                    done.restated.len(),
                    named.join("\n"),
                    if done.restated.len() > 10 {
                        format!("\n  and {} more", done.restated.len() - 10)
                    } else {
                        String::new()
                    }
                ))
                .into());
            }
            already = done.already;
            if !done.restated.is_empty() {
                say(format!(
                    "wattprint: {file}: {} stored figure(s) replaced by this file's (--replace)",
                    done.restated.len()
                ));
            }
        }
    }
    for b in &breaks {
        say(format!(
            "wattprint: series break: {} account {:?}: carbon model {} from {} (was {}); \
             figures before and after are not comparable",
            b.provider,
            b.account,
            b.to_version,
            b.month,
            if b.from_version.is_empty() {
                "none"
            } else {
                &b.from_version
            }
        ));
    }
    let months: Vec<Month> = out.records.iter().map(|r| r.month).collect();
    let (first, last) = (months.iter().min().copied(), months.iter().max().copied());
    let sum = |b: Basis| -> f64 {
        out.records
            .iter()
            .filter(|r| r.basis == b || r.basis == Basis::Both)
            .map(|r| r.grams)
            .sum()
    };
    let mut accounts: Vec<&str> = out.records.iter().map(|r| r.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    say(format!(
        "wattprint: imported {} provider-reported figure(s) from {file} ({}, {}): {}..{}, {} \
         account(s); location-based {}, market-based {}; carbon without energy{}",
        out.records.len(),
        format.name(),
        out.shape,
        first.map(|m| m.to_string()).unwrap_or_default(),
        last.map(|m| m.to_string()).unwrap_or_default(),
        accounts.len(),
        wattprint_report::render::fmt_g(sum(Basis::Location)),
        wattprint_report::render::fmt_g(sum(Basis::Market)),
        if already > 0 {
            format!("; {already} already in the history (same month imported before), not counted twice")
        } else {
            String::new()
        }
    ));
    Ok(0)
}

/// Prints a line on stderr with its control characters escaped (it quotes file contents).
fn say(line: String) {
    eprintln!("{}", escape(&line));
}
