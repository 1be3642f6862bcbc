//! Azure: Carbon Optimization API responses (`Microsoft.Carbon` `carbonEmissionReports`,
//! api-version 2025-04-01; kgCO2E) and the Cloud for Sustainability `EnrollmentEmission`
//! export (OData JSON or CSV; mtCO2e).
//!
//! A Carbon Optimization item says neither its scopes (the request's `carbonScopeList`) nor a
//! Scope 2 method, so it is an `unsplit` figure counted in both totals, with a note. Its
//! `latestMonthEmissions` is the request's last month; `previousMonthEmissions` is not
//! imported (the next month's report would repeat it). Reports whose items carry no `date`
//! (`ItemDetailsReport`, `OverallSummaryReport`, `TopItemsSummaryReport`) need the month
//! from the caller (`import --month`).

use super::{
    array_element_lines, flatten_row, parse_json, read_rows, unit_or_err, Collector, Figure,
    PortfolioImport, PortfolioOptions, Row, RowHead, Source,
};
use crate::ParseError;
use serde_json::Value;
use std::collections::BTreeMap;
use wattprint_core::portfolio::{Basis, Provider, Scope, G_PER_KG, G_PER_TONNE};

const SHAPE_CO: &str = "Azure Carbon Optimization report (API response)";
const SHAPE_MCFS: &str = "Microsoft Cloud for Sustainability EnrollmentEmission export";

const CO_NOTE: &str = "Azure Carbon Optimization: scopes as requested (carbonScopeList), no \
                       Scope 2 method stated; counted in both totals";
const MCFS_SCOPE2_NOTE: &str = "Cloud for Sustainability: no Scope 2 method stated; counted \
                                in both totals";

pub(super) fn import(
    input: &str,
    src: &Source,
    opts: &PortfolioOptions,
) -> Result<PortfolioImport, ParseError> {
    if !input
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
    {
        let rows = read_rows(input)?;
        return mcfs(&rows.rows, src, |c| rows.need(c, SHAPE_MCFS));
    }
    let v = parse_json(input)?;
    let Some(o) = v.as_object() else {
        return Err(ParseError::new(1, "json", "not a JSON object".into()));
    };
    if let Some(e) = o.get("error") {
        let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
        let msg = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(ParseError::new(
            1,
            "error",
            format!(
                "the file is an error response of the Azure API ({code}: {msg}), not data; \
                 nothing imported: fix the request and save its response again"
            ),
        ));
    }
    let Some(items) = o.get("value").and_then(Value::as_array) else {
        return Err(ParseError::new(
            1,
            "value",
            format!(
                "no `value` list: neither a {SHAPE_CO} nor an {SHAPE_MCFS} (keys: {})",
                o.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let starts = array_element_lines(input, "value");
    let rows: Vec<Row> = items
        .iter()
        .enumerate()
        .map(|(i, it)| flatten_row(it, starts.get(i).copied().unwrap_or(1)))
        .collect();
    let is_mcfs = items.first().is_some_and(|f| f.get("dateKey").is_some());
    let mut out = if is_mcfs {
        mcfs(&rows, src, |c| {
            if rows.iter().all(|r| r.opt(c).is_none()) {
                Err(ParseError::new(
                    1,
                    c,
                    format!("missing field `{c}` of the {SHAPE_MCFS}"),
                ))
            } else {
                Ok(())
            }
        })?
    } else {
        carbon_optimization(&rows, src, opts)?
    };
    let more = ["skipToken", "@odata.nextLink"].iter().any(|k| {
        o.get(*k)
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
    });
    if more {
        out.warnings.push(
            "the response names a next page (skipToken / @odata.nextLink): request it and \
             import each page"
                .to_string(),
        );
    }
    Ok(out)
}

fn carbon_optimization(
    rows: &[Row],
    src: &Source,
    opts: &PortfolioOptions,
) -> Result<PortfolioImport, ParseError> {
    let mut c = Collector::new(src);
    for row in rows {
        let data_type = row.get("datatype");
        if data_type.is_empty() {
            return Err(ParseError::new(
                row.line,
                "dataType",
                format!("missing: every item of a {SHAPE_CO} names its dataType"),
            ));
        }
        let month = match row.opt("date") {
            Some(_) => row.month("date")?,
            None => opts.month.ok_or_else(|| {
                ParseError::new(
                    row.line,
                    "date",
                    format!(
                        "a {data_type} item does not say its month (its latestMonthEmissions is \
                         the last month of the request's dateRange): import with --month YYYY-MM"
                    ),
                )
            })?,
        };
        let Some(kg) = row.figure("latestmonthemissions")? else {
            return Err(ParseError::new(
                row.line,
                "latestMonthEmissions",
                "missing: the figure of the item".into(),
            ));
        };
        let item = row.get("itemname").to_string();
        let (mut account, mut project, mut service, mut region) =
            (String::new(), None, String::new(), String::new());
        match row.get("categorytype") {
            "Subscription" => account = item.clone(),
            "ResourceGroup" => {
                account = row.get("subscriptionid").to_string();
                project = Some(item.clone());
            }
            "Location" => region = item.clone(),
            "ResourceType" => service = item.clone(),
            "Resource" => {
                account = row.get("subscriptionid").to_string();
                project = row.opt("resourcegroup").map(str::to_string);
                service = row.get("resourcetype").to_string();
                region = row.get("location").to_string();
            }
            "" => {}
            other => {
                return Err(ParseError::new(
                    row.line,
                    "categoryType",
                    format!(
                        "`{other}` is not a category this wattprint knows (Subscription, \
                         ResourceGroup, Location, Resource, ResourceType)"
                    ),
                ))
            }
        }
        let part = row
            .opt("resourceid")
            .map(str::to_string)
            .unwrap_or_else(|| item.clone());
        let head = RowHead {
            provider: Provider::Azure,
            account,
            project,
            service,
            region: if region.is_empty() {
                "global".into()
            } else {
                region
            },
            month,
            model_version: String::new(),
            labels: BTreeMap::new(),
            note: Some(CO_NOTE.to_string()),
            part,
            line: row.line,
        };
        c.add(
            &head,
            vec![Figure {
                scope: Scope::Unsplit,
                basis: Basis::Both,
                grams: kg * G_PER_KG,
                field: "latestMonthEmissions".into(),
            }],
        )?;
    }
    Ok(PortfolioImport {
        records: c.finish(),
        breaks: Vec::new(),
        warnings: Vec::new(),
        shape: SHAPE_CO,
    })
}

fn mcfs(
    rows: &[Row],
    src: &Source,
    need: impl Fn(&str) -> Result<(), ParseError>,
) -> Result<PortfolioImport, ParseError> {
    for c in ["dateKey", "subscriptionId", "totalEmissions"] {
        need(c)?;
    }
    let mut c = Collector::new(src);
    for row in rows {
        let month = row.month("datekey")?;
        let scope = match (
            row.get("scopeid"),
            row.get("scope").to_ascii_lowercase().as_str(),
        ) {
            ("1", _) | (_, "scope 1" | "scope1") => Scope::Scope1,
            ("2", _) | (_, "scope 2" | "scope2") => Scope::Scope2,
            ("3", _) | (_, "scope 3" | "scope3") => Scope::Scope3,
            (id, s) => {
                return Err(ParseError::new(
                    row.line,
                    "scopeId",
                    format!("scope `{s}` (id `{id}`) is not scope 1, 2 or 3"),
                ))
            }
        };
        let g_per = match row.opt("unit") {
            Some(u) => unit_or_err(u, row.line, "unit")?,
            None => G_PER_TONNE,
        };
        let Some(v) = row.figure("totalemissions")? else {
            continue;
        };
        let service = match (row.get("azureservicename"), row.opt("subservice")) {
            (s, Some(sub)) => format!("{s} / {sub}"),
            (s, None) => s.to_string(),
        };
        let mut labels = BTreeMap::new();
        if let Some(e) = row.opt("enrollmentid") {
            labels.insert("enrollment".to_string(), e.to_string());
        }
        let head = RowHead {
            provider: Provider::Azure,
            account: row.get("subscriptionid").to_string(),
            project: None,
            service,
            region: row.opt("azureregionname").unwrap_or("global").to_string(),
            month,
            model_version: String::new(),
            labels,
            note: (scope == Scope::Scope2).then(|| MCFS_SCOPE2_NOTE.to_string()),
            part: String::new(),
            line: row.line,
        };
        c.add(
            &head,
            vec![Figure {
                scope,
                basis: Basis::Both,
                grams: v * g_per,
                field: "totalEmissions".into(),
            }],
        )?;
    }
    Ok(PortfolioImport {
        records: c.finish(),
        breaks: Vec::new(),
        warnings: Vec::new(),
        shape: SHAPE_MCFS,
    })
}
