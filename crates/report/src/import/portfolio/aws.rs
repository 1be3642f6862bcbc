//! AWS: the Data Exports table `CARBON_EMISSIONS` (CSV) and the Sustainability API's
//! `GetEstimatedCarbonEmissions` response (JSON). Both in metric tons CO2e.
//!
//! A row with the per-scope figures (`total_scope_1_emissions_value`, ... in newer exports;
//! `TOTAL_SCOPE_*` emission types in the API) gives scope 1 (both totals), scope 2 and
//! scope 3 location- and market-based; its totals are only checked. A row with the totals
//! only gives two `unsplit` figures (location-based and market-based), never split by guess:
//! AWS says they hold scope 1 and 2, and scope 3 from model v3.

use super::{
    array_element_lines, flatten_row, parse_json, read_rows, unit_or_err, Collector, Figure,
    PortfolioImport, Row, RowHead, Source,
};
use crate::ParseError;
use serde_json::Value;
use std::collections::BTreeMap;
use wattprint_core::portfolio::{Basis, Month, Provider, Scope, G_PER_TONNE};

const SHAPE_CSV: &str = "AWS Data Exports CARBON_EMISSIONS table (CSV)";
const SHAPE_API: &str = "AWS Sustainability API GetEstimatedCarbonEmissions response";

/// The optional per-scope columns of `CARBON_EMISSIONS` (prefix of `_value` / `_unit`).
const SCOPE_COLS: [(&str, Scope, Basis); 5] = [
    ("total_scope_1_emissions", Scope::Scope1, Basis::Both),
    (
        "total_scope_2_lbm_emissions",
        Scope::Scope2,
        Basis::Location,
    ),
    ("total_scope_2_mbm_emissions", Scope::Scope2, Basis::Market),
    (
        "total_scope_3_lbm_emissions",
        Scope::Scope3,
        Basis::Location,
    ),
    ("total_scope_3_mbm_emissions", Scope::Scope3, Basis::Market),
];
/// The totals: location-based (LBM) and market-based (MBM).
const TOTAL_COLS: [(&str, Basis); 2] = [
    ("total_lbm_emissions", Basis::Location),
    ("total_mbm_emissions", Basis::Market),
];
/// The API's emission types, in the same order as [`SCOPE_COLS`] and [`TOTAL_COLS`].
const SCOPE_TYPES: [&str; 5] = [
    "total_scope_1_carbon_emissions",
    "total_scope_2_lbm_carbon_emissions",
    "total_scope_2_mbm_carbon_emissions",
    "total_scope_3_lbm_carbon_emissions",
    "total_scope_3_mbm_carbon_emissions",
];
const TOTAL_TYPES: [&str; 2] = ["total_lbm_carbon_emissions", "total_mbm_carbon_emissions"];

/// Relative difference between a total and its scopes beyond which a row is counted in a
/// warning (0.1 %: well above the rounding of the export).
const TOTAL_TOLERANCE: f64 = 1e-3;

pub(super) fn import(input: &str, src: &Source) -> Result<PortfolioImport, ParseError> {
    if input
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
    {
        api(input, src)
    } else {
        csv(input, src)
    }
}

/// Counters shared by both shapes.
#[derive(Default)]
struct Tally {
    unit_defaulted: usize,
    disagree: Vec<usize>,
    partial_scopes: Vec<usize>,
}

impl Tally {
    fn warnings(mut self) -> Vec<String> {
        let mut w = Vec::new();
        if self.unit_defaulted > 0 {
            w.push(format!(
                "{} figure(s) with an empty unit read as MTCO2e, the unit AWS documents",
                self.unit_defaulted
            ));
        }
        self.disagree.dedup();
        if !self.disagree.is_empty() {
            w.push(format!(
                "{} row(s) whose totals differ from their scopes by more than 0.1 % (lines {}): \
                 the scopes are imported, the totals are not",
                self.disagree.len(),
                lines(&self.disagree)
            ));
        }
        if !self.partial_scopes.is_empty() {
            w.push(format!(
                "{} row(s) with only some per-scope figures (lines {}): their totals are \
                 imported as unsplit figures instead",
                self.partial_scopes.len(),
                lines(&self.partial_scopes)
            ));
        }
        w
    }
}

fn lines(v: &[usize]) -> String {
    let s: Vec<String> = v.iter().take(10).map(|l| l.to_string()).collect();
    s.join(", ")
}

/// A figure in grams from a value field and a unit field; `None` when the value is empty.
fn grams(row: &Row, value: &str, unit: &str, tally: &mut Tally) -> Result<Option<f64>, ParseError> {
    let Some(v) = row.figure(value)? else {
        return Ok(None);
    };
    let g_per = match row.opt(unit) {
        Some(u) => unit_or_err(u, row.line, unit)?,
        None => {
            tally.unit_defaulted += 1;
            G_PER_TONNE
        }
    };
    Ok(Some(v * g_per))
}

/// The figures of one row: its scopes when all are given, else its totals as `unsplit`.
/// `fields` are (value field, unit field) for the five scopes then the two totals.
fn figures(
    row: &Row,
    fields: &[(String, String); 7],
    tally: &mut Tally,
) -> Result<Vec<Figure>, ParseError> {
    let mut scopes = Vec::new();
    for (i, (scope, basis)) in SCOPE_COLS.iter().map(|(_, s, b)| (*s, *b)).enumerate() {
        let (v, u) = &fields[i];
        if let Some(g) = grams(row, v, u, tally)? {
            scopes.push(Figure {
                scope,
                basis,
                grams: g,
                field: v.clone(),
            });
        }
    }
    let mut totals = Vec::new();
    for (i, basis) in TOTAL_COLS.iter().map(|(_, b)| *b).enumerate() {
        let (v, u) = &fields[5 + i];
        if let Some(g) = grams(row, v, u, tally)? {
            totals.push(Figure {
                scope: Scope::Unsplit,
                basis,
                grams: g,
                field: v.clone(),
            });
        }
    }
    if scopes.len() == SCOPE_COLS.len() {
        for t in &totals {
            let sum: f64 = scopes
                .iter()
                .filter(|s| s.basis == t.basis || s.basis == Basis::Both)
                .map(|s| s.grams)
                .sum();
            if (t.grams - sum).abs() > TOTAL_TOLERANCE * t.grams.max(1.0) {
                tally.disagree.push(row.line);
            }
        }
        return Ok(scopes);
    }
    if !scopes.is_empty() {
        tally.partial_scopes.push(row.line);
    }
    Ok(totals)
}

/// The month of a period, refusing one that is not a whole calendar month.
fn monthly(row: &Row, start: &str, end: &str) -> Result<Month, ParseError> {
    let m = row.month(start)?;
    if let Some(e) = row.opt(end) {
        let em = Month::parse(e);
        let first_day = e.get(8..10) == Some("01");
        if em != Some(m.next()) || !first_day {
            return Err(ParseError::new(
                row.line,
                end,
                format!(
                    "the period {} .. {e} is not one calendar month: request MONTHLY granularity \
                     (the portfolio keeps months)",
                    row.get(start)
                ),
            ));
        }
    }
    Ok(m)
}

fn csv(input: &str, src: &Source) -> Result<PortfolioImport, ParseError> {
    let rows = read_rows(input)?;
    for c in [
        "usage_period_start",
        "usage_account_id",
        "model_version",
        "total_lbm_emissions_value",
        "total_lbm_emissions_unit",
        "total_mbm_emissions_value",
        "total_mbm_emissions_unit",
    ] {
        rows.need(c, SHAPE_CSV)?;
    }
    let fields: [(String, String); 7] = std::array::from_fn(|i| {
        let p = if i < 5 {
            SCOPE_COLS[i].0
        } else {
            TOTAL_COLS[i - 5].0
        };
        (format!("{p}_value"), format!("{p}_unit"))
    });
    let mut c = Collector::new(src);
    let mut tally = Tally::default();
    for row in &rows.rows {
        let month = monthly(row, "usage_period_start", "usage_period_end")?;
        let model_version = row.get("model_version").to_string();
        if model_version.is_empty() {
            return Err(ParseError::new(
                row.line,
                "model_version",
                "empty: every row of CARBON_EMISSIONS names its model version".into(),
            ));
        }
        let mut labels = BTreeMap::new();
        if let Some(p) = row.opt("payer_account_id") {
            labels.insert("payer_account".to_string(), p.to_string());
        }
        let head = RowHead {
            provider: Provider::Aws,
            account: row.get("usage_account_id").to_string(),
            project: None,
            service: row.get("product_code").to_string(),
            region: row.opt("region_code").unwrap_or("global").to_string(),
            month,
            model_version,
            labels,
            note: None,
            part: String::new(),
            line: row.line,
        };
        let f = figures(row, &fields, &mut tally)?;
        c.add(&head, f)?;
    }
    Ok(PortfolioImport {
        records: c.finish(),
        breaks: Vec::new(),
        warnings: tally.warnings(),
        shape: SHAPE_CSV,
    })
}

fn api(input: &str, src: &Source) -> Result<PortfolioImport, ParseError> {
    let v = parse_json(input)?;
    let Some(o) = v.as_object() else {
        return Err(ParseError::new(
            1,
            "json",
            format!("not a JSON object: the {SHAPE_API} is one object with `Results`"),
        ));
    };
    let Some(results) = o.get("Results") else {
        let message = ["Message", "message"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str));
        let kind = o.get("__type").and_then(Value::as_str);
        return Err(match (kind, message) {
            (None, None) => ParseError::new(
                1,
                "Results",
                format!(
                    "no `Results`: not a {SHAPE_API} (keys: {})",
                    o.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ),
            (k, m) => ParseError::new(
                1,
                "Message",
                format!(
                    "the file is an error response of the AWS Sustainability API ({}: {}), not \
                     data; nothing imported: fix the request and save its response again",
                    k.unwrap_or("error"),
                    m.unwrap_or("no message")
                ),
            ),
        });
    };
    let Some(results) = results.as_array() else {
        return Err(ParseError::new(
            1,
            "Results",
            "`Results` is not a list".into(),
        ));
    };
    let starts = array_element_lines(input, "Results");
    let fields: [(String, String); 7] = std::array::from_fn(|i| {
        let t = if i < 5 {
            SCOPE_TYPES[i]
        } else {
            TOTAL_TYPES[i - 5]
        };
        (
            format!("emissionsvalues.{t}.value"),
            format!("emissionsvalues.{t}.unit"),
        )
    });
    let known: Vec<&str> = SCOPE_TYPES
        .iter()
        .chain(TOTAL_TYPES.iter())
        .copied()
        .collect();
    let mut c = Collector::new(src);
    let mut tally = Tally::default();
    let mut unknown_types: Vec<String> = Vec::new();
    for (i, item) in results.iter().enumerate() {
        let line = starts.get(i).copied().unwrap_or(1);
        if !item.is_object() {
            return Err(ParseError::new(
                line,
                "Results",
                format!("element {i} is not an object"),
            ));
        }
        if let Some(ev) = item.get("EmissionsValues").and_then(Value::as_object) {
            for k in ev.keys() {
                if !known.contains(&k.to_ascii_lowercase().as_str()) && !unknown_types.contains(k) {
                    unknown_types.push(k.clone());
                }
            }
        }
        let row = flatten_row(item, line);
        let month = monthly(&row, "timeperiod.start", "timeperiod.end")?;
        let model_version = row.get("modelversion").to_string();
        if model_version.is_empty() {
            return Err(ParseError::new(
                line,
                "ModelVersion",
                "missing: every result of GetEstimatedCarbonEmissions names its model".into(),
            ));
        }
        let head = RowHead {
            provider: Provider::Aws,
            account: row.get("dimensionsvalues.usage_account_id").to_string(),
            project: None,
            service: row.get("dimensionsvalues.service").to_string(),
            region: row
                .opt("dimensionsvalues.region")
                .unwrap_or("global")
                .to_string(),
            month,
            model_version,
            labels: BTreeMap::new(),
            note: None,
            part: String::new(),
            line,
        };
        let f = figures(&row, &fields, &mut tally)?;
        c.add(&head, f)?;
    }
    let mut warnings = tally.warnings();
    if !unknown_types.is_empty() {
        warnings.push(format!(
            "emission type(s) not known to this wattprint, not imported: {}",
            unknown_types.join(", ")
        ));
    }
    if o.get("NextToken")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        warnings.push(
            "the response has a NextToken: more pages exist; request them and import each"
                .to_string(),
        );
    }
    Ok(PortfolioImport {
        records: c.finish(),
        breaks: Vec::new(),
        warnings,
        shape: SHAPE_API,
    })
}
