//! FinOps FOCUS billing exports: a streaming reader and the usage-based estimate.
//!
//! [`FocusReader`] reads a FOCUS CSV (1.0 to 1.2 column names; the sample's quirks: bare
//! `NULL`, `"2024-09-18 22:00:00"` dates, extra non-FOCUS columns) row by row with the `csv`
//! crate over a [`BufReader`], reusing one record buffer: memory does not grow with the file.
//! [`estimate`](estimate::Estimator) turns usage rows into [`PortfolioRecord`]s of tier
//! `estimate` by the Cloud Carbon Footprint method; rows it cannot estimate are counted and
//! listed, never guessed. The method and its constants are in `docs/estimates.md`.
//!
//! [`PortfolioRecord`]: wattprint_core::portfolio::PortfolioRecord

pub mod estimate;
#[cfg(test)]
mod tests;

use crate::ParseError;
use std::io::{BufReader, Read};

/// The `--format` name.
pub const FORMAT: &str = "focus";

/// Whether a CSV header line is a FOCUS billing export: it names `ChargeCategory`,
/// `ProviderName` and a quantity column (`ConsumedQuantity` or `PricingQuantity`).
pub fn is_focus_header(line: &str) -> bool {
    let cols: Vec<String> = line
        .split(',')
        .map(|c| {
            c.trim()
                .trim_matches('"')
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
        })
        .collect();
    let has = |n: &str| cols.iter().any(|c| c == n);
    has("chargecategory")
        && has("providername")
        && (has("consumedquantity") || has("pricingquantity"))
}

/// Column indexes of the fields the estimate reads (`None`: absent in this file).
#[derive(Clone, Debug, Default)]
struct Cols {
    charge_category: usize,
    period_start: usize,
    provider: usize,
    billing_account: Option<usize>,
    sub_account: Option<usize>,
    service: Option<usize>,
    service_category: Option<usize>,
    region: Option<usize>,
    consumed_quantity: Option<usize>,
    consumed_unit: Option<usize>,
    pricing_quantity: Option<usize>,
    pricing_unit: Option<usize>,
    description: Option<usize>,
    resource_type: Option<usize>,
    sku_price_details: Option<usize>,
    commitment_status: Option<usize>,
    billed_cost: Option<usize>,
}

/// One FOCUS row, borrowed from the reader's buffer. Empty strings for absent columns and
/// for `NULL`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FocusRow<'a> {
    /// 1-based line of the row in the file.
    pub line: u64,
    /// `Usage`, `Purchase`, `Tax`, `Credit`, `Adjustment`.
    pub charge_category: &'a str,
    /// `ChargePeriodStart`, as written.
    pub period_start: &'a str,
    /// `ProviderName` (`AWS`, `Microsoft`, `Google Cloud Platform`, `Oracle`).
    pub provider: &'a str,
    pub billing_account: &'a str,
    pub sub_account: &'a str,
    pub service: &'a str,
    pub service_category: &'a str,
    pub region: &'a str,
    /// `ConsumedQuantity`, else `PricingQuantity`, as written.
    pub quantity: &'a str,
    /// The unit of [`FocusRow::quantity`].
    pub unit: &'a str,
    /// The column the quantity came from (`ConsumedQuantity` / `PricingQuantity`).
    pub quantity_field: &'static str,
    pub description: &'a str,
    pub resource_type: &'a str,
    /// FOCUS 1.1 `SkuPriceDetails` (JSON with `InstanceType`, `CoreCount`...), if present.
    pub sku_price_details: &'a str,
    pub commitment_status: &'a str,
    pub billed_cost: &'a str,
}

/// Longest line of a FOCUS file, bytes (a FOCUS 1.2 row with every column and long tags is a
/// few KB): a file without line breaks (`/dev/zero`, a binary) is refused after this much,
/// never buffered whole.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A reader that fails once a line runs past [`MAX_LINE_BYTES`] or a NUL byte appears (a
/// binary file), so the CSV parser's record buffer stays bounded.
struct LineBound<R> {
    inner: R,
    line_len: usize,
    /// Line breaks read so far: the line being read is `lines + 1`.
    lines: usize,
}

/// Why [`LineBound`] stopped, and on which line (1-based): carried inside the I/O error.
#[derive(Debug)]
struct BadLine {
    line: usize,
    message: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadLine {}

/// The [`BadLine`] inside a CSV reader's I/O error, if that is why it stopped.
fn bad_line(e: &csv::Error) -> Option<&BadLine> {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<BadLine>()),
        _ => None,
    }
}

impl<R: Read> Read for LineBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line_len = 0;
                self.lines += 1;
            } else {
                self.line_len += 1;
                if b == 0 || self.line_len > MAX_LINE_BYTES {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        BadLine {
                            line: self.lines + 1,
                            message: if b == 0 {
                                "a NUL byte: not a text file".to_string()
                            } else {
                                format!(
                                    "a line longer than {} MiB: not a FOCUS CSV",
                                    MAX_LINE_BYTES >> 20
                                )
                            },
                        },
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// A streaming FOCUS reader: one row at a time, one record buffer.
pub struct FocusReader<R: Read> {
    rdr: csv::Reader<BufReader<LineBound<R>>>,
    cols: Cols,
    rec: csv::StringRecord,
    rows: u64,
}

fn null(s: &str) -> &str {
    let s = s.trim();
    if s.eq_ignore_ascii_case("null") {
        ""
    } else {
        s
    }
}

impl<R: Read> FocusReader<R> {
    /// Reads the header. Errors: not CSV, or a required column missing (`ChargeCategory`,
    /// `ChargePeriodStart`, `ProviderName`, and `ConsumedQuantity` or `PricingQuantity`),
    /// named with line 1.
    pub fn new(input: R) -> Result<Self, ParseError> {
        let mut rdr =
            csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(BufReader::with_capacity(
                    1 << 16,
                    LineBound {
                        inner: input,
                        line_len: 0,
                        lines: 0,
                    },
                ));
        let header = rdr
            .headers()
            .map_err(|e| match bad_line(&e) {
                // Read ahead with the header: the refused byte is further down.
                Some(bad) if bad.line > 1 => {
                    ParseError::new(bad.line, "row", format!("cannot read: {bad}"))
                }
                _ => ParseError::new(1, "header", format!("not a CSV header: {e}")),
            })?
            .clone();
        let find = |name: &str| {
            header.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                ParseError::new(
                    1,
                    name,
                    format!("missing: a FOCUS export has a `{name}` column; is this a FOCUS file?"),
                )
            })
        };
        let cols = Cols {
            charge_category: need("ChargeCategory")?,
            period_start: need("ChargePeriodStart")?,
            provider: find("ProviderName")
                .or_else(|| find("ServiceProviderName"))
                .ok_or_else(|| {
                    ParseError::new(
                        1,
                        "ProviderName",
                        "missing: a FOCUS export names its provider".into(),
                    )
                })?,
            billing_account: find("BillingAccountId"),
            sub_account: find("SubAccountId"),
            service: find("ServiceName"),
            service_category: find("ServiceCategory"),
            region: find("RegionId"),
            consumed_quantity: find("ConsumedQuantity"),
            consumed_unit: find("ConsumedUnit"),
            pricing_quantity: find("PricingQuantity"),
            pricing_unit: find("PricingUnit"),
            description: find("ChargeDescription"),
            resource_type: find("ResourceType"),
            sku_price_details: find("SkuPriceDetails"),
            commitment_status: find("CommitmentDiscountStatus"),
            billed_cost: find("BilledCost"),
        };
        if cols.consumed_quantity.is_none() && cols.pricing_quantity.is_none() {
            return Err(ParseError::new(
                1,
                "ConsumedQuantity",
                "missing, and no `PricingQuantity` either: no usage quantity to estimate from"
                    .into(),
            ));
        }
        Ok(FocusReader {
            rdr,
            cols,
            rec: csv::StringRecord::new(),
            rows: 0,
        })
    }

    /// Data rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The next row, `None` at the end. Errors: a row that is not valid CSV or whose field
    /// count differs from the header's, naming its line.
    pub fn next_row(&mut self) -> Option<Result<FocusRow<'_>, ParseError>> {
        match self.rdr.read_record(&mut self.rec) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => {
                let mut line = e.position().map_or(0, |p| p.line()) as usize;
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header has {expected_len}"),
                    csv::ErrorKind::Io(io) => {
                        if let Some(bad) = bad_line(&e) {
                            line = bad.line;
                        }
                        format!("cannot read: {io}")
                    }
                    _ => format!("not valid CSV: {e}"),
                };
                return Some(Err(ParseError::new(line, "row", msg)));
            }
        }
        self.rows += 1;
        let rec = &self.rec;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |i: usize| null(rec.get(i).unwrap_or(""));
        let opt = |i: Option<usize>| i.map_or("", get);
        let c = &self.cols;
        let consumed = opt(c.consumed_quantity);
        let (quantity, unit, quantity_field) =
            if consumed.is_empty() && c.pricing_quantity.is_some() {
                (
                    opt(c.pricing_quantity),
                    opt(c.pricing_unit),
                    "PricingQuantity",
                )
            } else {
                (
                    consumed,
                    match opt(c.consumed_unit) {
                        "" => opt(c.pricing_unit),
                        u => u,
                    },
                    "ConsumedQuantity",
                )
            };
        Some(Ok(FocusRow {
            line,
            charge_category: get(c.charge_category),
            period_start: get(c.period_start),
            provider: get(c.provider),
            billing_account: opt(c.billing_account),
            sub_account: opt(c.sub_account),
            service: opt(c.service),
            service_category: opt(c.service_category),
            region: opt(c.region),
            quantity,
            unit,
            quantity_field,
            description: opt(c.description),
            resource_type: opt(c.resource_type),
            sku_price_details: opt(c.sku_price_details),
            commitment_status: opt(c.commitment_status),
            billed_cost: opt(c.billed_cost),
        }))
    }
}
