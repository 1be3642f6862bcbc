//! Google Cloud Carbon Footprint export: one row per billing account x project x service x
//! location x month, kgCO2e, nested records flattened with dots (CSV) or kept nested (NDJSON).
//!
//! Scope 1 and scope 3 count in both totals; scope 2 comes location- and market-based. The
//! `carbon_footprint_total_kgCO2e.*` columns are only checked against the scopes (a counted
//! warning when they disagree), never added. Rows of one region that differ only by zone
//! (`location.location`) are summed into the region's figure.

use super::{read_rows, unit_or_err, Collector, Figure, PortfolioImport, RowHead, Source};
use crate::ParseError;
use std::collections::BTreeMap;
use wattprint_core::portfolio::{Basis, Provider, Scope};

const SHAPE_CSV: &str = "GCP Carbon Footprint export (CSV)";
const SHAPE_NDJSON: &str = "GCP Carbon Footprint export (newline-delimited JSON)";

/// The per-scope figures: (column suffix after the unit, scope, basis).
const SCOPES: [(&str, Scope, Basis); 4] = [
    ("scope1", Scope::Scope1, Basis::Both),
    ("scope2.location_based", Scope::Scope2, Basis::Location),
    ("scope2.market_based", Scope::Scope2, Basis::Market),
    ("scope3", Scope::Scope3, Basis::Both),
];

/// Relative difference between a total and the sum of its scopes beyond which a row is
/// counted in a warning (the export rounds each figure; 0.1 % is well above rounding).
const TOTAL_TOLERANCE: f64 = 1e-3;

pub(super) fn import(input: &str, src: &Source) -> Result<PortfolioImport, ParseError> {
    let rows = read_rows(input)?;
    let shape = if input
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
    {
        SHAPE_NDJSON
    } else {
        SHAPE_CSV
    };
    for c in [
        "usage_month",
        "billing_account_id",
        "project.id",
        "service.description",
        "carbon_model_version",
    ] {
        rows.need(c, shape)?;
    }
    if !rows.has("location.region") {
        rows.need("location.location", shape)?;
    }
    // carbon_footprint_<unit>.<suffix> and carbon_footprint_total_<unit>.<basis>.
    let mut scope_cols: BTreeMap<&str, (String, String)> = BTreeMap::new();
    let mut total_cols: BTreeMap<&str, (String, String)> = BTreeMap::new();
    for c in &rows.columns {
        let Some(rest) = c.strip_prefix("carbon_footprint_") else {
            continue;
        };
        let (total, rest) = match rest.strip_prefix("total_") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let Some((unit, suffix)) = rest.split_once('.') else {
            continue;
        };
        if total {
            for b in ["location_based", "market_based"] {
                if suffix == b {
                    total_cols.insert(b, (c.clone(), unit.to_string()));
                }
            }
        } else if let Some((s, _, _)) = SCOPES.iter().find(|(s, _, _)| *s == suffix) {
            scope_cols.insert(s, (c.clone(), unit.to_string()));
        }
    }
    let mut cols = Vec::new();
    for (suffix, scope, basis) in SCOPES {
        let Some((col, unit)) = scope_cols.get(suffix) else {
            return Err(rows.missing(&format!("carbon_footprint_kgCO2e.{suffix}"), shape));
        };
        let written = rows.as_written(col);
        let unit = written
            .split_once('.')
            .and_then(|(head, _)| head.get(head.len().saturating_sub(unit.len())..))
            .unwrap_or(unit);
        let g_per = unit_or_err(unit, 1, written)?;
        cols.push((col.clone(), g_per, scope, basis));
    }
    let totals: Vec<(String, f64, Basis)> = total_cols
        .iter()
        .map(|(b, (col, unit))| {
            let basis = if *b == "location_based" {
                Basis::Location
            } else {
                Basis::Market
            };
            unit_or_err(unit, 1, rows.as_written(col)).map(|g| (col.clone(), g, basis))
        })
        .collect::<Result<_, _>>()?;

    let mut c = Collector::new(src);
    let mut empty = 0usize;
    let mut disagree: Vec<usize> = Vec::new();
    for row in &rows.rows {
        let month = row.month("usage_month")?;
        let account = row.opt("billing_account_id").unwrap_or("").to_string();
        let project = row.opt("project.id").map(str::to_string);
        let region = row
            .opt("location.region")
            .or_else(|| row.opt("location.location"))
            .unwrap_or("global")
            .to_string();
        let model_version = row.get("carbon_model_version").to_string();
        if model_version.is_empty() {
            return Err(ParseError::new(
                row.line,
                "carbon_model_version",
                "empty: every row of the export names its carbon model".into(),
            ));
        }
        let note = (project.is_none() && row.opt("project.number").is_some())
            .then(|| "project deleted (GCP gives its number, no id)".to_string());
        let head = RowHead {
            provider: Provider::Gcp,
            account,
            project,
            service: row.get("service.description").to_string(),
            region,
            month,
            model_version,
            labels: BTreeMap::new(),
            note,
            part: row.get("location.location").to_string(),
            line: row.line,
        };
        let mut figures = Vec::new();
        let mut by_basis = [0.0f64; 2]; // location, market
        for (col, g_per, scope, basis) in &cols {
            let Some(v) = row.figure(col)? else {
                empty += 1;
                continue;
            };
            let grams = v * g_per;
            match basis {
                Basis::Location => by_basis[0] += grams,
                Basis::Market => by_basis[1] += grams,
                Basis::Both => {
                    by_basis[0] += grams;
                    by_basis[1] += grams;
                }
            }
            figures.push(Figure {
                scope: *scope,
                basis: *basis,
                grams,
                field: col.clone(),
            });
        }
        for (col, g_per, basis) in &totals {
            if let Some(t) = row.figure(col)? {
                let sum = if *basis == Basis::Location {
                    by_basis[0]
                } else {
                    by_basis[1]
                };
                let t = t * g_per;
                if (t - sum).abs() > TOTAL_TOLERANCE * t.abs().max(1.0) {
                    disagree.push(row.line);
                }
            }
        }
        c.add(&head, figures)?;
    }
    let mut warnings = Vec::new();
    if empty > 0 {
        warnings.push(format!(
            "{empty} empty scope figure(s) (NULL in the export): not imported, not zero"
        ));
    }
    disagree.dedup();
    if !disagree.is_empty() {
        let lines: Vec<String> = disagree.iter().take(10).map(|l| l.to_string()).collect();
        warnings.push(format!(
            "{} row(s) whose carbon_footprint_total_* differs from scope 1 + scope 2 + scope 3 \
             by more than 0.1 % (lines {}): the scopes are imported, the totals are not",
            disagree.len(),
            lines.join(", ")
        ));
    }
    Ok(PortfolioImport {
        records: c.finish(),
        breaks: Vec::new(),
        warnings,
        shape,
    })
}
