//! `wattprint import FILE`: scores a trace or another tool's output (nvidia-smi CSV,
//! CodeCarbon emissions.csv, wattprint CSV trace) like a measured run, and stores it.

use crate::common::{carbon_error, escape, CarbonArgs, WorkArgs};
use crate::exit::BadInput;
use std::io::Write;
use std::path::PathBuf;
use wattprint_report::import::{
    detect_format, export_trace, import_with, BadRows, ImportFormat, ImportOptions,
};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    NvidiaSmi,
    Codecarbon,
    Csv,
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
/// 500 MB, so 1 GiB; a larger file is refused.
pub const MAX_IMPORT_BYTES: u64 = 1 << 30;

/// Longest line of an imported file, bytes: a CodeCarbon row with every column is about
/// 2 KB; a file without line breaks (`/dev/zero`, a binary) is refused after this much.
pub const MAX_IMPORT_LINE_BYTES: usize = 1 << 20;

pub fn main(args: Args) -> anyhow::Result<u8> {
    let text =
        crate::common::read_lines_bounded(&args.file, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_BYTES)
            .map_err(|e| {
                BadInput(format!(
                    "{}: cannot read: {e} (split a larger log and import the parts)",
                    args.file.display()
                ))
            })?;
    let format = match args.format {
        Some(Format::NvidiaSmi) => ImportFormat::NvidiaSmi,
        Some(Format::Codecarbon) => ImportFormat::CodeCarbon,
        Some(Format::Csv) => ImportFormat::Trace,
        None => detect_format(&text).ok_or_else(|| {
            BadInput(format!(
                "{}: cannot tell the format from the header; give --format nvidia-smi, codecarbon or csv",
                args.file.display()
            ))
        })?,
    };
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
    let mut runs = import_with(&text, format, &name, &opts)
        .map_err(|e| BadInput(format!("{}: {e}", args.file.display())))?;
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
