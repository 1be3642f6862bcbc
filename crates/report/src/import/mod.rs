//! Importers: other tools' output and wattprint's own CSV trace, turned into run reports.
//!
//! Parsing of a stream the caller opens ([`import_reader`]; [`import`] over text in memory).
//! Rows are read one at a time, so memory holds one line, the reports being built and each
//! domain's bounded series ([`SERIES_POINTS`]), never the input: a 200 MB log imports in the
//! memory of a small one (figures in docs/security.md). Each importer checks the whole input
//! before returning, so a bad line means an error naming it and nothing half-imported.
//! Every importer reads its table with the one CSV reader (`ratefile::Rows`) and its one row
//! rule: a row whose field count differs from the header's is an error naming its line and
//! both counts, or, with [`ImportOptions::bad_rows`] = [`BadRows::Skip`], skipped and counted
//! in the report's warnings; never read out of position, never silently dropped.
//! Formats are documented in `docs/import.md`.

use crate::ratefile::{field, header_col, number, Comments, Rows, Skipped, FIELD_COUNT};
pub use crate::ratefile::{BadRows, ContentHash, ReadLimits, TableError as ImportError};
use crate::ParseError;
use std::collections::BTreeMap;
use wattprint_core::integrate::Trapezoid;
use wattprint_core::report::{
    CarbonReport, DomainEnergy, Gap, HostInfo, RunReport, TimelineReport,
};
use wattprint_core::timeline::Timeline;
use wattprint_core::wallclock::{parse_rfc3339_s, rfc3339_utc};
use wattprint_core::{DomainKind, Method, Watts};

mod codecarbon;
mod export;
pub mod focus;
mod nvidia_smi;
pub mod portfolio;
#[cfg(test)]
mod tests;
mod trace;

use codecarbon::codecarbon;
pub use export::export_trace;
use nvidia_smi::nvidia_smi;
use trace::trace;

/// The import formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// `nvidia-smi --query-gpu=timestamp,index,...,power.draw --format=csv` logs.
    NvidiaSmi,
    /// CodeCarbon's `emissions.csv`: one run per row.
    CodeCarbon,
    /// wattprint's own CSV trace (`t_s,domain,unit,value`, see docs/import.md).
    Trace,
}

impl ImportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImportFormat::NvidiaSmi => "nvidia-smi",
            ImportFormat::CodeCarbon => "codecarbon",
            ImportFormat::Trace => "csv",
        }
    }
}

/// Guesses the format from the header line; `None` when it matches none.
pub fn detect_format(input: &str) -> Option<ImportFormat> {
    let header = input
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .find(|l| !l.is_empty() && !l.starts_with('#'))?
        .to_ascii_lowercase();
    if header.contains("power.draw") {
        Some(ImportFormat::NvidiaSmi)
    } else if header.contains("energy_consumed") && header.contains("emissions") {
        Some(ImportFormat::CodeCarbon)
    } else if header.contains("t_s") && header.contains("domain") && header.contains("unit") {
        Some(ImportFormat::Trace)
    } else {
        None
    }
}

/// How to import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Rows whose field count differs from the header's: an error (default) or skipped and
    /// counted (`--skip-bad-rows`).
    pub bad_rows: BadRows,
}

/// Imports `input` in `format` with the default options (a bad row is an error);
/// `source_name` (the file name) labels the runs.
pub fn import(
    input: &str,
    format: ImportFormat,
    source_name: &str,
) -> Result<Vec<RunReport>, ParseError> {
    import_with(input, format, source_name, &ImportOptions::default())
}

/// [`import`] with options: [`import_reader`] over text already in memory.
pub fn import_with(
    input: &str,
    format: ImportFormat,
    source_name: &str,
    opts: &ImportOptions,
) -> Result<Vec<RunReport>, ParseError> {
    import_reader(
        input.as_bytes(),
        format,
        source_name,
        opts,
        ReadLimits::NONE,
    )
    .map_err(ImportError::into_parse)
}

/// Imports the stream `r` in `format`, row by row within `limits`: memory holds one line,
/// the reports and each domain's [`SERIES_POINTS`], whatever the input's size.
///
/// The run ids hold the input's [`ContentHash`] (FNV-1a 64 over its bytes, invalid UTF-8
/// replaced by U+FFFD), so importing the same file twice gives the same ids and the history
/// does not count it twice.
///
/// # Errors
/// [`ImportError::Read`] when the stream fails or breaks a cap (a line over
/// `max_line_bytes`: `/dev/zero` after one line's worth); [`ImportError::Parse`] naming the
/// line and field of the first wrong row. Either way nothing is returned.
pub fn import_reader<R: std::io::BufRead>(
    r: R,
    format: ImportFormat,
    source_name: &str,
    opts: &ImportOptions,
    limits: ReadLimits,
) -> Result<Vec<RunReport>, ImportError> {
    let b = opts.bad_rows;
    let comments = match format {
        ImportFormat::Trace => Comments::Keep(trace::META_KEYS),
        ImportFormat::NvidiaSmi | ImportFormat::CodeCarbon => Comments::None,
    };
    let add_hint = |e: ImportError| match e {
        ImportError::Parse(mut e) => {
            if e.field == FIELD_COUNT {
                e.message.push_str(
                    ", or import with --skip-bad-rows to skip such rows (counted in the \
                     report's warnings)",
                );
            }
            ImportError::Parse(e)
        }
        e => e,
    };
    let rows = Rows::new(r, "header", b, limits, comments).map_err(add_hint)?;
    match format {
        ImportFormat::NvidiaSmi => nvidia_smi(rows, source_name).map(|r| vec![r]),
        ImportFormat::CodeCarbon => codecarbon(rows, source_name),
        ImportFormat::Trace => trace(rows, source_name).map(|r| vec![r]),
    }
    .map_err(add_hint)
}

/// The warning of rows skipped under [`BadRows::Skip`] (`header_fields` the header's
/// count); `None` when none was.
pub(super) fn skipped_warning(skipped: &Skipped, header_fields: usize) -> Option<String> {
    if skipped.count == 0 {
        return None;
    }
    let named: Vec<String> = skipped
        .first
        .iter()
        .map(|s| format!("line {} ({} fields)", s.line, s.fields))
        .collect();
    let more = skipped.count.saturating_sub(named.len());
    Some(format!(
        "{} row(s) skipped (--skip-bad-rows): their field count differs from the header's {}: \
         {}{}; what they held is not in this report",
        skipped.count,
        header_fields,
        named.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// Largest plausible power of one device, W: beyond it a value is a unit mistake.
pub(super) const MAX_DEVICE_W: f64 = 1.0e6;
/// Largest plausible energy in one imported run, J (1 TWh).
pub(super) const MAX_RUN_J: f64 = 3.6e15;

pub(super) fn base_report(id: String, source_name: &str, format: ImportFormat) -> RunReport {
    let mut r = RunReport::new(id);
    r.command = vec![format!("import:{}", format.name()), source_name.to_string()];
    r.labels
        .insert("imported_from".into(), format.name().to_string());
    r.overhead.setup_steps = vec!["imported: the meter's overhead was not measured".into()];
    r
}

pub(super) fn finish_energy(r: &mut RunReport) {
    r.energy.total_j = r
        .energy
        .domains
        .iter()
        .filter(|d| d.counted_in_total)
        .map(|d| d.joules)
        .sum();
    r.energy.facility_j = r.energy.total_j * r.energy.pue;
    r.metrics.energy_to_solution_j = r.energy.total_j;
    r.metrics.facility_energy_to_solution_j = r.energy.facility_j;
    if r.duration_s > 0.0 {
        for d in &mut r.energy.domains {
            d.avg_power_w = Some(d.joules / r.duration_s);
        }
    }
}

/// Points of one domain's cumulative-energy series kept while a file streams: the core
/// [`Timeline`] halves its resolution when full (it keeps every `stride`-th sample, the
/// first included, and the newest; each halving doubles the stride), so a domain holds at
/// most this many points, evenly spread over the run, however long the file; energy is
/// integrated over every sample, not over these. 1024 is twice the 512 points
/// [`timeline_of`] draws: a file of up to 1024 samples per domain is charted exactly as
/// when it was read whole.
pub const SERIES_POINTS: usize = 1024;

/// One domain's cumulative energy at its own sample times (t_s from the run start), at
/// most [`SERIES_POINTS`] of them.
pub(super) struct Cumulative {
    pub(super) name: String,
    series: Timeline,
}

impl Cumulative {
    pub(super) fn new(name: String) -> Self {
        Cumulative {
            name,
            series: Timeline::new(SERIES_POINTS),
        }
    }

    /// Adds the cumulative energy `j` (J) at `t_s` (s).
    pub(super) fn push(&mut self, t_s: f64, j: f64) {
        self.series.push(t_s, vec![j]);
    }

    fn j(&self, i: usize) -> f64 {
        self.series.cumulative_j[i].first().copied().unwrap_or(0.0)
    }

    fn at(&self, t: f64) -> f64 {
        let t_s = &self.series.t_s;
        let i = t_s.partition_point(|x| *x <= t);
        if i == 0 {
            return 0.0;
        }
        if i >= t_s.len() {
            return self.j(t_s.len() - 1);
        }
        let (t0, t1, j0, j1) = (t_s[i - 1], t_s[i], self.j(i - 1), self.j(i));
        if t1 > t0 {
            j0 + (j1 - j0) * (t - t0) / (t1 - t0)
        } else {
            j0
        }
    }
}

/// Power over time for charts, from each domain's cumulative energy (at most 512 points).
pub(super) fn timeline_of(series: &[Cumulative]) -> Option<TimelineReport> {
    let mut times: Vec<f64> = series
        .iter()
        .flat_map(|s| s.series.t_s.iter().copied())
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    if times.len() < 2 {
        return None;
    }
    let step = times.len().div_ceil(512).max(1);
    let mut tl = Timeline::new(1024);
    let last = times[times.len() - 1];
    for (i, t) in times.iter().enumerate() {
        if i % step == 0 || *t == last {
            tl.push(*t, series.iter().map(|s| s.at(*t)).collect());
        }
    }
    let ps = tl.power_series();
    Some(TimelineReport {
        t_s: ps.iter().map(|(t, _)| *t).collect(),
        series: series
            .iter()
            .enumerate()
            .map(|(k, s)| wattprint_core::report::PowerSeries {
                domain: s.name.clone(),
                watts: ps.iter().map(|(_, w)| w[k]).collect(),
            })
            .collect(),
    })
}
