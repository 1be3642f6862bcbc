//! `wattprint import FILE --format focus` (or a FOCUS header): a FinOps FOCUS billing export,
//! streamed row by row, turned into usage-based estimates (`estimate (CCF method)`) stored as
//! portfolio records; rows it cannot estimate are counted and listed.

use crate::exit::BadInput;
use std::io::Write;
use std::path::Path;
use wattprint_report::import::focus::estimate::{estimate_reader, EstimateOptions, FocusEstimate};
use wattprint_report::render::fmt_g;

/// Whether the file's first line is a FOCUS header (read without loading the file).
fn kg(g: f64) -> String {
    fmt_g(g)
}

/// Imports `input`, read from `path` (named in messages); stores its records unless
/// `no_store` (figures that differ from stored ones refuse the whole file, or replace them
/// with `replace`).
pub fn main(
    input: impl std::io::Read,
    path: &Path,
    utilisation: f64,
    json: bool,
    no_store: bool,
    replace: bool,
    labels: &[(String, String)],
) -> anyhow::Result<u8> {
    if !(utilisation.is_finite() && (0.0..=1.0).contains(&utilisation)) {
        return Err(BadInput(format!(
            "--utilisation {utilisation}: give the average vCPU utilisation as a fraction 0..=1 (0.5 = 50 %)"
        ))
        .into());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let opts = EstimateOptions {
        utilisation,
        file: name,
    };
    let started = std::time::Instant::now();
    let mut est =
        estimate_reader(input, opts).map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    let elapsed_s = started.elapsed().as_secs_f64();
    for r in &mut est.records {
        for (k, v) in labels {
            r.labels.insert(k.clone(), v.clone());
        }
    }
    if json {
        writeln!(std::io::stdout().lock(), "{}", to_json(&est, elapsed_s))?;
    }
    print_summary(path, &est, elapsed_s);
    if !no_store && !est.records.is_empty() {
        let mut store = match crate::cmd::runs::open_store() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("wattprint: warning: estimates not stored in the history: {e}");
                return Ok(0);
            }
        };
        let done = store
            .insert_portfolio(
                &est.records,
                if replace {
                    wattprint_store::OnRestated::Replace
                } else {
                    wattprint_store::OnRestated::Refuse
                },
            )
            .map_err(|e| anyhow::anyhow!("storing the estimates: {e}"))?;
        if done.committed {
            eprintln!(
                "wattprint: stored {} estimate record(s) ({} already stored)",
                done.inserted, done.already
            );
        } else {
            for r in &done.restated {
                eprintln!(
                    "wattprint: {} is stored with {} (from {} line {}); this file gives {}",
                    r.key,
                    kg(r.stored_g),
                    r.stored_source.file,
                    r.stored_source.line,
                    kg(r.new_g)
                );
            }
            return Err(BadInput(format!(
                "{}: {} record(s) differ from the stored ones: nothing stored (--replace replaces them)",
                path.display(),
                done.restated.len()
            ))
            .into());
        }
    }
    Ok(0)
}

fn to_json(est: &FocusEstimate, elapsed_s: f64) -> String {
    let list = |v: &[wattprint_report::import::focus::estimate::NotEstimated]| {
        v.iter()
            .map(|n| {
                serde_json::json!({
                    "reason": n.reason, "service": n.service, "unit": n.unit,
                    "rows": n.rows, "first_line": n.first_line, "billed_cost": n.billed_cost,
                })
            })
            .collect::<Vec<_>>()
    };
    serde_json::to_string_pretty(&serde_json::json!({
        "format": "focus",
        "label": "estimate (CCF method)",
        "rows": est.rows,
        "estimated_rows": est.estimated_rows,
        "not_estimated_rows": est.not_estimated_rows(),
        "skipped_rows": est.skipped_rows(),
        "utilisation": est.utilisation,
        "seconds": elapsed_s,
        "records": est.records,
        "not_estimated": list(&est.not_estimated),
        "skipped": list(&est.skipped),
    }))
    .unwrap_or_default()
}

fn print_summary(path: &Path, est: &FocusEstimate, elapsed_s: f64) {
    let sum = |f: &dyn Fn(&wattprint_core::portfolio::PortfolioRecord) -> f64| {
        est.records.iter().map(f).sum::<f64>()
    };
    let g = sum(&|r| r.grams);
    let low = sum(&|r| r.low_g.unwrap_or(r.grams));
    let high = sum(&|r| r.high_g.unwrap_or(r.grams));
    let kwh = sum(&|r| r.energy_j.unwrap_or(0.0)) / 3.6e6;
    let rate = if elapsed_s > 0.0 {
        format!(", {:.0} rows/s", est.rows as f64 / elapsed_s)
    } else {
        String::new()
    };
    eprintln!(
        "wattprint: {}: FOCUS billing export, {} rows read{rate}: {} usage rows estimated, {} not estimated, {} not usage",
        crate::common::escape(&path.display().to_string()),
        est.rows,
        est.estimated_rows,
        est.not_estimated_rows(),
        est.skipped_rows()
    );
    eprintln!(
        "  estimate (CCF method): {} (range {} to {}), {:.3} kWh facility energy, {} record(s); vCPU utilisation {:.0} % assumed",
        fmt_g(g),
        fmt_g(low),
        fmt_g(high),
        kwh,
        est.records.len(),
        est.utilisation * 100.0
    );
    if !est.not_estimated.is_empty() {
        eprintln!("  not estimated (counted, never guessed):");
        for n in &est.not_estimated {
            eprintln!(
                "    {:>6} row(s)  {} [{}]: {} (first at line {})",
                n.rows,
                wattprint_core::text::printable(&n.service),
                wattprint_core::text::printable(&n.unit),
                n.reason,
                n.first_line
            );
        }
    }
    if !est.skipped.is_empty() {
        eprintln!("  not usage (no energy):");
        for n in &est.skipped {
            eprintln!(
                "    {:>6} row(s)  {}: {} (first at line {})",
                n.rows,
                wattprint_core::text::printable(&n.service),
                n.reason,
                n.first_line
            );
        }
    }
}
