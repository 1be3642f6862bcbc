//! The ESRS E1 statement over a period's runs: energy consumption (E1-5, MWh) and gross
//! Scope 2 emissions location-based and market-based (E1-6, tCO2e), with cloud usage shown
//! apart as Scope 3 category 1 (purchased services), one line per zone and factor, each with
//! its source and vintage. Lifecycle factors are never presented as Scope 2 without saying so.

use crate::render::sig;
use serde::Serialize;
use std::collections::BTreeMap;
use wattprint_core::portfolio::{PortfolioRecord, Tier};
use wattprint_core::report::{CarbonBasis, CarbonMethod, RunReport, RunStatus};
use wattprint_core::units::{GRAMS_PER_TONNE, JOULES_PER_KWH, KWH_PER_MWH};

const J_PER_MWH: f64 = JOULES_PER_KWH * KWH_PER_MWH;

/// Where a line's emissions belong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EsrsScope {
    /// Purchased electricity on premises: gross Scope 2.
    Scope2,
    /// Cloud regions: the provider's electricity is the customer's Scope 3 category 1.
    Scope3Category1,
    /// Runs without a zone: energy counted, emissions unknown.
    Unassigned,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EsrsLine {
    pub scope: EsrsScope,
    pub zone: String,
    pub runs: usize,
    /// Facility energy (PUE applied), MWh.
    pub energy_mwh: f64,
    pub location_based_tco2e: Option<f64>,
    pub market_based_tco2e: Option<f64>,
    pub factor_g_per_kwh: Option<f64>,
    pub factor_source: String,
    pub factor_vintage: Option<i32>,
    /// `lifecycle` or `direct` (as the factor's dataset states).
    pub basis: CarbonBasis,
    /// True when a fallback factor was used because the zone was unknown.
    pub fallback: bool,
    /// Data-quality tier: `measured`, `provider-reported`, `estimate (CCF method)`.
    pub tier: String,
    /// False when the line is detail of a provider figure or an estimate (a measured run
    /// inside a cloud project and month they cover): shown, not added to the totals.
    pub counted: bool,
    /// The figure the line is detail of, when not counted.
    pub detail_of: Option<String>,
    /// Imported portfolio records summed in the line (0 for measured runs).
    pub records: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EsrsStatement {
    pub schema: &'static str,
    pub period: String,
    pub runs: usize,
    /// Runs whose wrapper died before their end, included with the energy of their last
    /// checkpoint (their real consumption was higher).
    pub interrupted_runs: usize,
    /// E1-5: total energy consumption, MWh (facility energy of every run).
    pub energy_consumption_mwh: f64,
    /// E1-6: gross Scope 2, location-based, tCO2e (Scope 2 lines only).
    pub scope2_location_based_tco2e: f64,
    /// E1-6: gross Scope 2, market-based, tCO2e; `None` when no run had a market factor.
    pub scope2_market_based_tco2e: Option<f64>,
    /// Scope 3 category 1 (cloud), location-based, tCO2e.
    pub scope3_category1_tco2e: f64,
    /// Scope 3 category 1 (cloud), market-based, tCO2e: lines with a market-based figure.
    pub scope3_category1_market_based_tco2e: Option<f64>,
    /// Embodied emissions included in the runs' totals, excluded from Scope 2, tCO2e.
    pub embodied_excluded_tco2e: f64,
    /// Imported portfolio records (provider-reported, estimates) in the statement.
    pub records: usize,
    /// Share of the location-based emissions (Scope 2 + Scope 3 category 1) per data-quality
    /// tier, 0..1, in the order measured, provider-reported, estimate.
    pub tier_shares: Vec<(String, f64)>,
    pub lines: Vec<EsrsLine>,
    pub notes: Vec<String>,
}

fn is_cloud(zone: &str) -> bool {
    ["gcp:", "aws:", "azure:"]
        .iter()
        .any(|p| zone.to_ascii_lowercase().starts_with(p))
}

/// Builds the statement for `runs` (already selected for the period named `period`).
pub fn statement(period: &str, runs: &[RunReport]) -> EsrsStatement {
    statement_with_portfolio(period, runs, &[])
}

/// Builds the statement for `runs` and the imported portfolio `records` of the period:
/// provider-reported and estimated figures are Scope 3 category 1 (the cloud's emissions are
/// the customer's purchased services), one line per provider and tier; a measured run inside
/// a cloud project and month that they cover is detail, shown and not added.
pub fn statement_with_portfolio(
    period: &str,
    runs: &[RunReport],
    records: &[PortfolioRecord],
) -> EsrsStatement {
    type Key = (
        EsrsScope,
        String,
        String,
        Option<i32>,
        CarbonBasis,
        bool,
        Option<String>,
    );
    let mut lines: BTreeMap<Key, EsrsLine> = BTreeMap::new();
    let mut embodied_g = 0.0;
    let mut any_market = false;
    for r in runs {
        let c = &r.carbon;
        let has_carbon = !c.zone.is_empty();
        let scope = if !has_carbon {
            EsrsScope::Unassigned
        } else if is_cloud(&c.zone) {
            EsrsScope::Scope3Category1
        } else {
            EsrsScope::Scope2
        };
        let detail_of = crate::portfolio::run_detail_of(r, records);
        let key = (
            scope,
            c.zone.clone(),
            c.intensity_source.clone(),
            c.intensity_year,
            c.basis.clone(),
            c.fallback,
            detail_of.clone(),
        );
        let l = lines.entry(key).or_insert_with(|| EsrsLine {
            scope,
            zone: if has_carbon {
                c.zone.clone()
            } else {
                "(no zone)".into()
            },
            runs: 0,
            energy_mwh: 0.0,
            location_based_tco2e: has_carbon.then_some(0.0),
            market_based_tco2e: None,
            factor_g_per_kwh: has_carbon.then_some(c.intensity_g_per_kwh),
            factor_source: if has_carbon {
                c.intensity_source.clone()
            } else {
                "none".into()
            },
            factor_vintage: c.intensity_year,
            basis: c.basis.clone(),
            fallback: c.fallback,
            tier: Tier::Measured.label().to_string(),
            counted: detail_of.is_none(),
            detail_of: detail_of.clone(),
            records: 0,
        });
        l.runs += 1;
        let facility_j = if r.energy.facility_j > 0.0 {
            r.energy.facility_j
        } else {
            r.energy.total_j * r.energy.pue.max(1.0)
        };
        l.energy_mwh += facility_j / J_PER_MWH;
        if has_carbon {
            if detail_of.is_none() {
                embodied_g += c.embodied_g;
            }
            let (loc_g, mkt_g) = if c.method == CarbonMethod::Market {
                (None, Some(c.operational_g))
            } else {
                (Some(c.operational_g), c.market_operational_g)
            };
            match (loc_g, l.location_based_tco2e.as_mut()) {
                (Some(g), Some(t)) => *t += g / GRAMS_PER_TONNE,
                (None, _) => l.location_based_tco2e = None,
                _ => {}
            }
            if let Some(g) = mkt_g {
                any_market = true;
                *l.market_based_tco2e.get_or_insert(0.0) += g / GRAMS_PER_TONNE;
            }
        }
    }
    let mut lines: Vec<EsrsLine> = lines.into_values().collect();
    lines.extend(portfolio_lines(records));
    let sum = |scope: EsrsScope, f: &dyn Fn(&EsrsLine) -> Option<f64>| -> f64 {
        lines
            .iter()
            .filter(|l| l.scope == scope && l.counted)
            .filter_map(f)
            .sum()
    };
    let s3_market: Vec<f64> = lines
        .iter()
        .filter(|l| l.scope == EsrsScope::Scope3Category1 && l.counted)
        .filter_map(|l| l.market_based_tco2e)
        .collect();
    let total_loc: f64 = lines
        .iter()
        .filter(|l| l.counted)
        .filter_map(|l| l.location_based_tco2e)
        .sum();
    let tier_shares = Tier::ALL
        .iter()
        .map(|t| {
            let part: f64 = lines
                .iter()
                .filter(|l| l.counted && l.tier == t.label())
                .filter_map(|l| l.location_based_tco2e)
                .sum();
            (
                t.label().to_string(),
                if total_loc > 0.0 {
                    part / total_loc
                } else {
                    0.0
                },
            )
        })
        .collect();
    let mut notes = vec![
        "Energy consumption is the facility energy of the measured runs (device energy x PUE), in MWh (E1-5).".to_string(),
        "Gross Scope 2 covers on-premises zones only; cloud regions (gcp:, aws:, azure:) are the provider's electricity and are shown as Scope 3 category 1 (purchased services).".to_string(),
        "Embodied emissions are excluded from Scope 2.".to_string(),
    ];
    if lines
        .iter()
        .any(|l| l.basis == CarbonBasis::Lifecycle && l.scope == EsrsScope::Scope2)
    {
        notes.push("Some Scope 2 lines use LIFECYCLE emission factors (upstream included): they overstate combustion-only Scope 2; replace them with direct factors for a filing, or disclose the basis.".into());
    }
    if !any_market {
        notes.push("No run had a market-based factor (supplier or residual mix): market-based Scope 2 is not reported. Give one with --market-factor when running.".into());
    }
    if lines.iter().any(|l| l.fallback) {
        notes.push("Some runs used a FALLBACK factor because their zone was unknown.".into());
    }
    let interrupted_runs = runs
        .iter()
        .filter(|r| r.status == RunStatus::Interrupted)
        .count();
    if interrupted_runs > 0 {
        notes.push(format!(
            "{interrupted_runs} INTERRUPTED run(s) (the measuring process was killed or the machine restarted) are included with their energy up to their last checkpoint: the figures understate their real consumption."
        ));
    }
    if !records.is_empty() {
        notes.push("Provider-reported figures (the clouds' own carbon exports) and estimates are Scope 3 category 1 lines, one per provider and tier; they carry no energy, so E1-5 energy is the measured runs' only.".into());
    }
    let detail_runs: usize = lines.iter().filter(|l| !l.counted).map(|l| l.runs).sum();
    if detail_runs > 0 {
        notes.push(format!(
            "{detail_runs} measured run(s) ran inside a cloud project and month that a provider figure or an estimate covers: they are detail of that figure, listed but not added (their energy is in E1-5)."
        ));
    }
    if lines.iter().any(|l| l.scope == EsrsScope::Unassigned) {
        notes.push("Runs without a zone are counted in energy but not in emissions.".into());
    }
    EsrsStatement {
        schema: "wattprint.esrs-e1/v1",
        period: period.to_string(),
        runs: runs.len(),
        interrupted_runs,
        energy_consumption_mwh: lines.iter().map(|l| l.energy_mwh).sum(),
        scope2_location_based_tco2e: sum(EsrsScope::Scope2, &|l| l.location_based_tco2e),
        scope2_market_based_tco2e: any_market
            .then(|| sum(EsrsScope::Scope2, &|l| l.market_based_tco2e)),
        scope3_category1_tco2e: sum(EsrsScope::Scope3Category1, &|l| l.location_based_tco2e),
        scope3_category1_market_based_tco2e: (!s3_market.is_empty())
            .then(|| s3_market.iter().sum()),
        embodied_excluded_tco2e: embodied_g / GRAMS_PER_TONNE,
        records: records.len(),
        tier_shares,
        lines,
        notes,
    }
}

/// One Scope 3 category 1 line per provider x tier x source format of the imported records,
/// superseded estimates left out (as in the portfolio report).
fn portfolio_lines(records: &[PortfolioRecord]) -> Vec<EsrsLine> {
    use wattprint_core::portfolio::Basis;
    let report = crate::portfolio::build("", records.to_vec(), &[]);
    let mut by: BTreeMap<(String, Tier, String), (EsrsLine, Vec<String>)> = BTreeMap::new();
    for pl in &report.lines {
        let r = &pl.record;
        if r.tier == Tier::Measured {
            continue;
        }
        let key = (r.provider.to_string(), r.tier, r.source.format.clone());
        let (l, versions) = by.entry(key).or_insert_with(|| {
            (
                EsrsLine {
                    scope: EsrsScope::Scope3Category1,
                    zone: r.provider.to_string(),
                    runs: 0,
                    energy_mwh: 0.0,
                    location_based_tco2e: Some(0.0),
                    market_based_tco2e: Some(0.0),
                    factor_g_per_kwh: None,
                    factor_source: String::new(),
                    factor_vintage: None,
                    basis: match r.tier {
                        Tier::Estimate => "CCF coefficients".into(),
                        _ => "provider's model".into(),
                    },
                    fallback: false,
                    tier: r.tier.label().to_string(),
                    counted: pl.counted,
                    detail_of: pl.detail_of.clone(),
                    records: 0,
                },
                Vec::new(),
            )
        });
        if !pl.counted {
            continue;
        }
        l.records += 1;
        let t = r.grams / GRAMS_PER_TONNE;
        if r.basis != Basis::Market {
            *l.location_based_tco2e.get_or_insert(0.0) += t;
        }
        if r.basis != Basis::Location {
            *l.market_based_tco2e.get_or_insert(0.0) += t;
        }
        if !versions.contains(&r.model_version) {
            versions.push(r.model_version.clone());
        }
    }
    by.into_iter()
        .filter(|(_, (l, _))| l.records > 0)
        .map(|((_, _, format), (mut l, versions))| {
            let v: Vec<&str> = versions
                .iter()
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .collect();
            l.factor_source = if v.is_empty() {
                format!("{format} export")
            } else {
                format!("{format} export, model {}", v.join(", "))
            };
            l.detail_of = None;
            l.counted = true;
            l
        })
        .collect()
}

fn t(v: Option<f64>) -> String {
    v.map(|x| format!("{} t", sig(x)))
        .unwrap_or_else(|| "n/a".into())
}

/// Markdown rendering of the statement.
pub fn markdown(s: &EsrsStatement) -> String {
    let mut o = format!(
        "# ESRS E1 energy and emissions statement — {}\n\n",
        s.period
    );
    o.push_str(&format!("Runs: {}", s.runs));
    if s.interrupted_runs > 0 {
        o.push_str(&format!(
            " ({} interrupted: energy up to their last checkpoint)",
            s.interrupted_runs
        ));
    }
    o.push_str("\n\n");
    o.push_str("| disclosure | value |\n|---|---:|\n");
    o.push_str(&format!(
        "| E1-5 Energy consumption | {} MWh |\n",
        sig(s.energy_consumption_mwh)
    ));
    o.push_str(&format!(
        "| E1-6 Gross Scope 2, location-based | {}CO2e |\n",
        t(Some(s.scope2_location_based_tco2e))
    ));
    o.push_str(&format!(
        "| E1-6 Gross Scope 2, market-based | {} |\n",
        s.scope2_market_based_tco2e
            .map(|v| format!("{} tCO2e", sig(v)))
            .unwrap_or_else(|| "not reported (no market factor)".into())
    ));
    o.push_str(&format!(
        "| Scope 3 category 1 (cloud), location-based | {}CO2e |\n",
        t(Some(s.scope3_category1_tco2e))
    ));
    if let Some(m) = s.scope3_category1_market_based_tco2e {
        o.push_str(&format!(
            "| Scope 3 category 1 (cloud), market-based | {} tCO2e |\n",
            sig(m)
        ));
    }
    if s.records > 0 {
        for (tier, share) in &s.tier_shares {
            o.push_str(&format!(
                "| Share {tier} (location-based) | {:.1} % |\n",
                share * 100.0
            ));
        }
    }
    o.push('\n');
    o.push_str("| scope | zone | runs | MWh | location-based tCO2e | market-based tCO2e | factor gCO2e/kWh | source | vintage | basis | tier | counted |\n|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|\n");
    for l in &s.lines {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {}{} | {} | {} | {} | {} |\n",
            match l.scope {
                EsrsScope::Scope2 => "Scope 2",
                EsrsScope::Scope3Category1 => "Scope 3 cat. 1",
                EsrsScope::Unassigned => "unassigned",
            },
            l.zone,
            l.runs,
            sig(l.energy_mwh),
            t(l.location_based_tco2e),
            t(l.market_based_tco2e),
            l.factor_g_per_kwh.map(sig).unwrap_or_else(|| "n/a".into()),
            l.factor_source.replace('|', "/"),
            if l.fallback { " (fallback)" } else { "" },
            l.factor_vintage
                .map(|y| y.to_string())
                .unwrap_or_else(|| "n/a".into()),
            if l.basis == CarbonBasis::Unset {
                "n/a"
            } else {
                l.basis.as_str()
            },
            l.tier,
            match &l.detail_of {
                None => "yes".to_string(),
                Some(d) => format!("no: detail of {}", d.replace('|', "/")),
            },
        ));
    }
    o.push_str("\nNotes:\n");
    for n in &s.notes {
        o.push_str(&format!("- {n}\n"));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample;

    #[test]
    fn interrupted_runs_are_counted_in_and_said_to_understate() {
        let mut a = sample("a", 3.6e9);
        a.status = RunStatus::Interrupted;
        let s = statement("2026", &[a, sample("b", 3.6e9)]);
        assert_eq!((s.runs, s.interrupted_runs), (2, 1));
        assert!((s.energy_consumption_mwh - 2.4).abs() < 1e-12);
        assert!(s
            .notes
            .iter()
            .any(|n| n.starts_with("1 INTERRUPTED run(s)")));
        assert!(
            markdown(&s).contains("Runs: 2 (1 interrupted: energy up to their last checkpoint)")
        );
        let s = statement("2026", &[sample("b", 1.0)]);
        assert_eq!(s.interrupted_runs, 0);
        assert!(!s.notes.iter().any(|n| n.contains("INTERRUPTED")));
    }

    #[test]
    fn energy_in_mwh_and_scope2_location_and_market() {
        // 3.6e9 J x PUE 1.2 = 1.2 MWh at 56 g/kWh = 0.0672 t location-based.
        let mut a = sample("a", 3.6e9);
        a.carbon.market_operational_g = Some(1.2e3 * 300.0);
        let s = statement("2026", &[a]);
        assert!((s.energy_consumption_mwh - 1.2).abs() < 1e-12);
        assert!((s.scope2_location_based_tco2e - 0.0672).abs() < 1e-12);
        assert!((s.scope2_market_based_tco2e.unwrap() - 0.36).abs() < 1e-12);
        assert_eq!(s.scope3_category1_tco2e, 0.0);
        assert!(s.notes.iter().any(|n| n.contains("LIFECYCLE")));
        let md = markdown(&s);
        assert!(
            md.contains("| E1-5 Energy consumption | 1.200 MWh |"),
            "{md}"
        );
        assert!(md.contains("Ember/OWID | 2024 | lifecycle |"), "{md}");
    }

    #[test]
    fn cloud_zones_are_scope3_category1_not_scope2() {
        let mut c = sample("c", 3.6e9);
        c.carbon.zone = "gcp:europe-west1".into();
        let s = statement("2026", &[sample("a", 3.6e9), c]);
        assert_eq!(s.lines.len(), 2);
        assert!((s.scope2_location_based_tco2e - 0.0672).abs() < 1e-12);
        assert!((s.scope3_category1_tco2e - 0.0672).abs() < 1e-12);
        assert_eq!(s.scope2_market_based_tco2e, None);
        assert!((s.energy_consumption_mwh - 2.4).abs() < 1e-12);
    }

    #[test]
    fn runs_without_zone_count_energy_but_not_emissions() {
        let mut n = sample("n", 3.6e9);
        n.carbon = Default::default();
        let s = statement("2026", &[n]);
        assert_eq!(s.lines[0].scope, EsrsScope::Unassigned);
        assert_eq!(s.lines[0].location_based_tco2e, None);
        assert_eq!(s.scope2_location_based_tco2e, 0.0);
        assert!((s.energy_consumption_mwh - 1.2).abs() < 1e-12);
    }
}
