//! Importers of cloud providers' carbon exports into portfolio records.
//!
//! Each turns one file (CSV, newline-delimited JSON or one API response) into
//! [`PortfolioRecord`]s of tier `provider-reported`: carbon without energy, in grams, scopes
//! kept apart, location- and market-based mapped to [`Basis`], the provider's model version
//! kept. The whole file is checked before anything is returned: a bad row is an error naming
//! its line and field, never a partial import. Shapes are in `docs/portfolio.md` (from the
//! providers' documented schemas).

mod aws;
mod azure;
mod gcp;
#[cfg(test)]
mod tests;

use crate::ratefile::read_table;
use crate::ParseError;
use serde_json::Value;
use std::collections::BTreeMap;
use wattprint_core::portfolio::{
    series_breaks, Basis, Month, PortfolioRecord, RecordKey, RecordSource, Scope, SeriesBreak,
    Tier, G_PER_KG, G_PER_TONNE,
};

/// The provider export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortfolioFormat {
    /// Google Cloud Carbon Footprint export (BigQuery table as CSV or NDJSON), kgCO2e.
    GcpCarbon,
    /// AWS Data Exports `CARBON_EMISSIONS` (CSV) or the Sustainability API's
    /// `GetEstimatedCarbonEmissions` response, MTCO2e.
    AwsCarbon,
    /// Azure Carbon Optimization API response (kgCO2E) or the Cloud for Sustainability
    /// `EnrollmentEmission` export (mtCO2e).
    AzureCarbon,
}

impl PortfolioFormat {
    /// The `--format` spelling.
    pub fn name(self) -> &'static str {
        match self {
            PortfolioFormat::GcpCarbon => "gcp-carbon",
            PortfolioFormat::AwsCarbon => "aws-carbon",
            PortfolioFormat::AzureCarbon => "azure-carbon",
        }
    }
}

/// Options of a provider import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortfolioOptions {
    /// The month of a response that does not carry one (Azure `ItemDetailsReport`,
    /// `OverallSummaryReport`: their `latestMonthEmissions` is the request's last month).
    pub month: Option<Month>,
}

/// What one provider file held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortfolioImport {
    /// The records, in file order (rows of one key merged, see the importers).
    pub records: Vec<PortfolioRecord>,
    /// Model-version changes inside the file: figures on either side are not comparable.
    pub breaks: Vec<SeriesBreak>,
    /// Counted warnings (empty figures, totals that disagree with their scopes, more pages).
    pub warnings: Vec<String>,
    /// The shape read, for people (`GCP Carbon Footprint export, CSV`).
    pub shape: &'static str,
}

/// Guesses a provider format from the file's header (CSV) or shape (JSON); `None` when it
/// matches none. An API error body is detected as its provider's format, so that the
/// importer says what the error was.
pub fn detect_portfolio_format(input: &str) -> Option<PortfolioFormat> {
    let t = input.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        let first = t.lines().next().unwrap_or("");
        let v: Value = serde_json::from_str(t)
            .or_else(|_| serde_json::from_str(first))
            .ok()?;
        return detect_json(&v);
    }
    let header = t.lines().next()?.to_ascii_lowercase();
    if header.contains("carbon_model_version") || header.contains("carbon_footprint_") {
        Some(PortfolioFormat::GcpCarbon)
    } else if header.contains("total_lbm_emissions_value")
        || (header.contains("model_version") && header.contains("usage_account_id"))
    {
        Some(PortfolioFormat::AwsCarbon)
    } else if header.contains("totalemissions") && header.contains("datekey") {
        Some(PortfolioFormat::AzureCarbon)
    } else {
        None
    }
}

fn detect_json(v: &Value) -> Option<PortfolioFormat> {
    let o = v.as_object()?;
    if o.contains_key("usage_month") || o.contains_key("carbon_model_version") {
        return Some(PortfolioFormat::GcpCarbon);
    }
    if o.contains_key("Results") || o.contains_key("__type") || o.contains_key("Message") {
        return Some(PortfolioFormat::AwsCarbon);
    }
    if o.contains_key("error") || o.contains_key("subscriptionAccessDecisionList") {
        return Some(PortfolioFormat::AzureCarbon);
    }
    let first = o.get("value")?.as_array()?.first()?.as_object()?;
    (first.contains_key("dataType") || first.contains_key("dateKey"))
        .then_some(PortfolioFormat::AzureCarbon)
}

/// Imports a provider file. `source_name` (the file name) goes into every record's
/// provenance.
pub fn import_portfolio(
    input: &str,
    format: PortfolioFormat,
    source_name: &str,
    opts: &PortfolioOptions,
) -> Result<PortfolioImport, ParseError> {
    let src = Source {
        file: source_name,
        format,
    };
    let mut out = match format {
        PortfolioFormat::GcpCarbon => gcp::import(input, &src)?,
        PortfolioFormat::AwsCarbon => aws::import(input, &src)?,
        PortfolioFormat::AzureCarbon => azure::import(input, &src, opts)?,
    };
    if out.records.is_empty() {
        return Err(ParseError::new(
            1,
            "rows",
            format!(
                "no carbon figure in this {}: an export with no rows, or every figure empty",
                out.shape
            ),
        ));
    }
    out.breaks = series_breaks(&out.records);
    Ok(out)
}

/// The file and format every record of one import names.
pub(super) struct Source<'a> {
    file: &'a str,
    format: PortfolioFormat,
}

impl Source<'_> {
    fn at(&self, line: usize) -> RecordSource {
        RecordSource {
            file: self.file.to_string(),
            line: line as u64,
            format: self.format.name().to_string(),
        }
    }
}

/// One row of a table or one JSON object, nested objects flattened with dots
/// (`project.id`), keys compared case-insensitively.
pub(super) struct Row {
    /// 1-based line of the row (or of the object's start).
    pub line: usize,
    fields: BTreeMap<String, String>,
}

impl Row {
    /// The field's text; empty for a missing field, an empty cell or JSON `null`.
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(&name.to_ascii_lowercase())
            .map_or("", |s| s.trim())
    }

    /// The field's text, `None` when empty or `NULL`.
    pub fn opt(&self, name: &str) -> Option<&str> {
        let s = self.get(name);
        (!s.is_empty() && !s.eq_ignore_ascii_case("null")).then_some(s)
    }

    /// A non-negative figure, `None` when the field is empty; an error naming the line and
    /// field when it is not a number, negative or not finite.
    pub fn figure(&self, name: &str) -> Result<Option<f64>, ParseError> {
        let Some(s) = self.opt(name) else {
            return Ok(None);
        };
        let v = crate::ratefile::number(s, self.line, name)?;
        if v < 0.0 {
            return Err(ParseError::new(
                self.line,
                name,
                format!("{v} is negative: an emission figure is never below zero"),
            ));
        }
        Ok(Some(v))
    }

    /// The month of a date field; an error naming the line and field when it is none.
    pub fn month(&self, name: &str) -> Result<Month, ParseError> {
        let s = self.get(name);
        Month::parse(s).ok_or_else(|| {
            ParseError::new(
                self.line,
                name,
                format!("`{s}` is not a date (YYYY-MM-DD, the first day of the month)"),
            )
        })
    }
}

/// The rows of a CSV table, or of a newline-delimited JSON file (one object a line).
pub(super) struct Rows {
    /// The column names (CSV header, or every key of every object), lowercased.
    pub columns: Vec<String>,
    /// The column names as written, in the order of `columns`.
    pub written: Vec<String>,
    /// The header as written, for errors.
    pub header_text: String,
    pub rows: Vec<Row>,
}

impl Rows {
    /// Whether a column exists.
    pub fn has(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        self.columns.contains(&n)
    }

    /// A column's name as the file writes it.
    pub fn as_written<'a>(&'a self, lower: &'a str) -> &'a str {
        self.columns
            .iter()
            .position(|c| c == lower)
            .and_then(|i| self.written.get(i))
            .map_or(lower, String::as_str)
    }

    /// An error when a column is missing: a newer export may have renamed it.
    pub fn need(&self, name: &str, shape: &str) -> Result<(), ParseError> {
        if self.has(name) {
            return Ok(());
        }
        Err(self.missing(name, shape))
    }

    /// The error of a missing column.
    pub fn missing(&self, name: &str, shape: &str) -> ParseError {
        ParseError::new(
            1,
            name,
            format!(
                "missing column `{name}` of the {shape}: a newer version of the export may have \
                 renamed it; the file has: {}",
                self.header_text
            ),
        )
    }
}

/// Reads CSV (with the one CSV reader and its row rule) or newline-delimited JSON.
pub(super) fn read_rows(input: &str) -> Result<Rows, ParseError> {
    let t = input.trim_start_matches('\u{feff}');
    if t.trim_start().starts_with('{') {
        return read_ndjson(t);
    }
    let table = read_table(t, "header")?;
    let columns: Vec<String> = table
        .header
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let rows = table
        .rows
        .iter()
        .map(|(line, rec)| Row {
            line: *line,
            fields: columns
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect(),
        })
        .collect();
    Ok(Rows {
        header_text: table.header.join(", "),
        written: table.header.clone(),
        columns,
        rows,
    })
}

fn read_ndjson(input: &str) -> Result<Rows, ParseError> {
    let mut rows = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for (i, l) in input.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(l).map_err(|e| {
            ParseError::new(
                line,
                "json",
                format!("not a JSON object ({e}): a newline-delimited export holds one per line"),
            )
        })?;
        let Value::Object(_) = v else {
            return Err(ParseError::new(
                line,
                "json",
                "not a JSON object: a newline-delimited export holds one per line".into(),
            ));
        };
        let row = flatten_row(&v, line);
        for k in row.fields.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
        rows.push(row);
    }
    Ok(Rows {
        header_text: columns.join(", "),
        written: columns.clone(),
        columns,
        rows,
    })
}

/// A JSON object as a [`Row`], nested objects flattened with dots.
pub(super) fn flatten_row(v: &Value, line: usize) -> Row {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    let key = if prefix.is_empty() {
                        k.to_ascii_lowercase()
                    } else {
                        format!("{prefix}.{}", k.to_ascii_lowercase())
                    };
                    walk(&key, x, out);
                }
            }
            Value::Null => {
                out.insert(prefix.to_string(), String::new());
            }
            Value::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut fields = BTreeMap::new();
    walk("", v, &mut fields);
    Row { line, fields }
}

/// Grams in one unit of a provider's carbon unit (`kgCO2e`, `kgCO2E`, `MTCO2e`, `mtCO2e`,
/// `tCO2e`, `gCO2e`, case-insensitive); `None` for a unit the importer does not know.
/// Sources: GCP and Azure Carbon Optimization document kgCO2e, AWS and MCfS metric tons.
pub fn grams_per_unit(unit: &str) -> Option<f64> {
    let u = unit.trim().to_ascii_lowercase();
    let u = u
        .strip_suffix("co2e")
        .or_else(|| u.strip_suffix("co2eq"))
        .unwrap_or(&u);
    match u {
        "g" => Some(1.0),
        "kg" => Some(G_PER_KG),
        "t" | "mt" | "tonne" | "tonnes" | "metric ton" | "metric tons" => Some(G_PER_TONNE),
        _ => None,
    }
}

/// `grams_per_unit` or an error naming the line, field and the units known.
pub(super) fn unit_or_err(unit: &str, line: usize, field: &str) -> Result<f64, ParseError> {
    grams_per_unit(unit).ok_or_else(|| {
        ParseError::new(
            line,
            field,
            format!(
                "unit `{unit}` is not one the importer knows (kgCO2e, MTCO2e / mtCO2e / tCO2e, \
                 gCO2e): a figure is never read in a unit it cannot convert; tell us the unit"
            ),
        )
    })
}

/// Largest plausible figure of one record, g CO2e (1 Mt: a whole cloud provider's month is
/// below it): beyond it a value is a unit mistake.
pub const MAX_RECORD_G: f64 = 1.0e12;

/// One figure of a row, before merging.
pub(super) struct Figure {
    pub scope: Scope,
    pub basis: Basis,
    pub grams: f64,
    /// The column or JSON field it came from (errors).
    pub field: String,
}

/// Everything of a row but its figures.
pub(super) struct RowHead {
    pub provider: wattprint_core::portfolio::Provider,
    pub account: String,
    pub project: Option<String>,
    pub service: String,
    pub region: String,
    pub month: Month,
    pub model_version: String,
    pub labels: BTreeMap<String, String>,
    pub note: Option<String>,
    /// What tells two rows of one key apart when they are parts of one figure (GCP zones
    /// of one region, Azure resources of one type): rows of one key with different parts
    /// are summed; the same part twice is the same figure present twice, an error.
    pub part: String,
    pub line: usize,
}

/// Collects the figures of every row, merging the parts of one key and refusing a figure
/// present twice.
pub(super) struct Collector<'a> {
    src: &'a Source<'a>,
    records: Vec<PortfolioRecord>,
    index: BTreeMap<RecordKey, (usize, Vec<(String, usize)>)>,
}

impl<'a> Collector<'a> {
    pub fn new(src: &'a Source<'a>) -> Self {
        Collector {
            src,
            records: Vec::new(),
            index: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, head: &RowHead, figures: Vec<Figure>) -> Result<(), ParseError> {
        for f in figures {
            if f.grams > MAX_RECORD_G {
                return Err(ParseError::new(
                    head.line,
                    &f.field,
                    format!(
                        "{} t CO2e in one month of one service is beyond any cloud account's: \
                         check the unit",
                        f.grams / G_PER_TONNE
                    ),
                ));
            }
            let rec = PortfolioRecord {
                provider: head.provider,
                account: head.account.clone(),
                project: head.project.clone(),
                service: head.service.clone(),
                region: head.region.clone(),
                month: head.month,
                scope: f.scope,
                basis: f.basis,
                grams: f.grams,
                low_g: None,
                high_g: None,
                tier: Tier::ProviderReported,
                energy_j: None,
                model_version: head.model_version.clone(),
                labels: head.labels.clone(),
                source: self.src.at(head.line),
                note: head.note.clone(),
            };
            let key = rec.key();
            match self.index.get_mut(&key) {
                None => {
                    self.index.insert(
                        key,
                        (self.records.len(), vec![(head.part.clone(), head.line)]),
                    );
                    self.records.push(rec);
                }
                Some((i, parts)) => {
                    if let Some((_, first)) = parts.iter().find(|(p, _)| *p == head.part) {
                        return Err(ParseError::new(
                            head.line,
                            &f.field,
                            format!(
                                "present twice: line {first} already holds {} {} for this \
                                 account, project, service and region{}; remove one of the two \
                                 rows (an export appended twice?)",
                                head.month,
                                f.scope.as_str(),
                                if head.part.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({})", head.part)
                                }
                            ),
                        ));
                    }
                    parts.push((head.part.clone(), head.line));
                    let r = &mut self.records[*i];
                    if r.model_version != rec.model_version {
                        return Err(ParseError::new(
                            head.line,
                            "model version",
                            format!(
                                "model version {} where line {} of the same month has {}: one \
                                 month is never summed across two models",
                                rec.model_version, r.source.line, r.model_version
                            ),
                        ));
                    }
                    r.grams += rec.grams;
                    let names: Vec<&str> = parts.iter().map(|(p, _)| p.as_str()).collect();
                    r.note = Some(format!(
                        "sum of {} parts: {}",
                        names.len(),
                        names.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Vec<PortfolioRecord> {
        self.records
    }
}

/// The 1-based line where each element of the array under the top-level `key` starts
/// (for provenance of records read from one JSON document). Empty when there is none.
pub(super) fn array_element_lines(text: &str, key: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1usize, 0usize);
    let mut last_key_at_1: Option<(usize, usize)> = None; // byte range of the last string at depth 1
    let mut in_array_depth: Option<usize> = None;
    let mut expect_element = false;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => line += 1,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    } else if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if depth == 1 {
                    last_key_at_1 = Some((start, i.min(b.len())));
                }
                if expect_element {
                    out.push(line);
                    expect_element = false;
                }
            }
            b'{' | b'[' => {
                if expect_element {
                    out.push(line);
                    expect_element = false;
                }
                depth += 1;
                if c == b'[' && depth == 2 && in_array_depth.is_none() {
                    if let Some((s, e)) = last_key_at_1 {
                        if &text[s..e] == key {
                            in_array_depth = Some(2);
                            expect_element = true;
                        }
                    }
                }
            }
            b'}' | b']' => {
                if in_array_depth == Some(depth) && c == b']' {
                    in_array_depth = None;
                    expect_element = false;
                    // Only the first array under the key counts.
                    last_key_at_1 = None;
                }
                depth = depth.saturating_sub(1);
            }
            b',' if in_array_depth == Some(depth) => expect_element = true,
            b' ' | b'\t' | b'\r' | b':' => {}
            _ => {
                if expect_element {
                    out.push(line);
                    expect_element = false;
                }
            }
        }
        i += 1;
    }
    out
}

/// Parses a whole JSON document, naming the line and column of a syntax error.
pub(super) fn parse_json(input: &str) -> Result<Value, ParseError> {
    serde_json::from_str(input.trim_start_matches('\u{feff}')).map_err(|e| {
        ParseError::new(
            e.line(),
            "json",
            format!("not valid JSON at column {}: {e}", e.column()),
        )
    })
}
