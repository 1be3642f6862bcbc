//! The portfolio report: measured runs, provider-reported and estimated records in one
//! statement, each line with its data-quality tier, nothing counted twice.
//!
//! Rules (docs/portfolio.md):
//! - Measured runs are summed per month, zone and label set into `measured` records:
//!   operational carbon is Scope 2 (location- and market-based as the run has them),
//!   embodied carbon Scope 3.
//! - A measured record inside a cloud project (or account) and month that a provider or an
//!   estimate covers (same provider and region, and the run's `project` or `account` label
//!   naming it) is detail of that figure: shown, never added.
//! - An estimate of a provider, account and month that the provider itself reports (and the
//!   same project when both name one) is superseded: shown, never added.
//! - Totals: location-based counts `location` and `both` figures, market-based `market` and
//!   `both`; by tier, provider, month, scope and label; the shares per tier.

use crate::render::{fmt_g, sig};
use serde::Serialize;
use std::collections::BTreeMap;
use wattprint_core::overhead_score::{self, ComputeOverhead, Measured, RouteScore};
use wattprint_core::portfolio::{
    series_breaks, Basis, Month, PortfolioRecord, Provider, RecordSource, Scope, SeriesBreak, Tier,
};
use wattprint_core::report::{CarbonMethod, RunReport};
use wattprint_core::units::{GRAMS_PER_TONNE, JOULES_PER_KWH, KWH_PER_MWH};

/// The JSON schema of the report.
pub const SCHEMA: &str = "wattprint.portfolio-report/v1";

const J_PER_MWH: f64 = JOULES_PER_KWH * KWH_PER_MWH;

/// The labels totals are grouped by unless told otherwise.
pub const DEFAULT_LABEL_KEYS: [&str; 3] = ["team", "project", "model"];

/// Most contributors listed in [`PortfolioReport::largest`].
pub const LARGEST: usize = 5;

/// The service name of measured records.
pub const MEASURED_SERVICE: &str = "measured runs";

/// Measured runs as monthly `measured` records: one per provider x account x project x
/// region x month x label set, summed. Runs without a start time are left out and named in
/// the returned warnings.
pub fn measured_records(runs: &[RunReport]) -> (Vec<PortfolioRecord>, Vec<String>) {
    type Key = (
        Provider,
        String,
        Option<String>,
        String,
        Month,
        BTreeMap<String, String>,
        Scope,
        Basis,
    );
    let mut acc: BTreeMap<Key, (PortfolioRecord, Vec<String>, usize)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for r in runs {
        let Some(month) = Month::parse(&r.started_at) else {
            warnings.push(format!(
                "run {} has no start time: left out of the portfolio",
                r.id
            ));
            continue;
        };
        let c = &r.carbon;
        let (provider, region) = match c.zone.split_once(':') {
            Some((p, reg)) => match Provider::parse(p) {
                Some(pr) => (pr, reg.to_ascii_lowercase()),
                None => (Provider::Onprem, c.zone.clone()),
            },
            None => (Provider::Onprem, c.zone.clone()),
        };
        let account = r.labels.get("account").cloned().unwrap_or_default();
        let project = r.labels.get("project").cloned();
        let facility_j = if r.energy.facility_j > 0.0 {
            r.energy.facility_j
        } else {
            r.energy.total_j * r.energy.pue.max(1.0)
        };
        let has_carbon = !c.zone.is_empty();
        let (loc, mkt) = match c.method {
            CarbonMethod::Market => (None, Some(c.operational_g)),
            _ => (Some(c.operational_g), c.market_operational_g),
        };
        let mut figures: Vec<(Scope, Basis, f64, Option<f64>)> = Vec::new();
        if !has_carbon {
            figures.push((Scope::Scope2, Basis::Location, 0.0, Some(facility_j)));
        } else {
            if let Some(g) = loc {
                figures.push((Scope::Scope2, Basis::Location, g, Some(facility_j)));
            }
            if let Some(g) = mkt {
                let e = loc.is_none().then_some(facility_j);
                figures.push((Scope::Scope2, Basis::Market, g, e));
            }
            if c.embodied_g > 0.0 {
                figures.push((Scope::Scope3, Basis::Both, c.embodied_g, None));
            }
        }
        for (scope, basis, g, e) in figures {
            let key = (
                provider,
                account.clone(),
                project.clone(),
                region.clone(),
                month,
                r.labels.clone(),
                scope,
                basis,
            );
            let (rec, names, n) = acc.entry(key).or_insert_with(|| {
                (
                    PortfolioRecord {
                        provider,
                        account: account.clone(),
                        project: project.clone(),
                        service: MEASURED_SERVICE.into(),
                        region: region.clone(),
                        month,
                        scope,
                        basis,
                        grams: 0.0,
                        low_g: None,
                        high_g: None,
                        tier: Tier::Measured,
                        energy_j: None,
                        model_version: String::new(),
                        labels: r.labels.clone(),
                        source: RecordSource {
                            file: "history".into(),
                            line: 0,
                            format: "run".into(),
                        },
                        note: None,
                    },
                    Vec::new(),
                    0,
                )
            });
            rec.grams += g;
            if let Some(e) = e {
                *rec.energy_j.get_or_insert(0.0) += e;
            }
            *n += 1;
            let name = run_name(r);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let out = acc
        .into_values()
        .map(|(mut rec, names, n)| {
            let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
            rec.note = Some(format!(
                "{n} run(s): {}{}{}",
                shown.join("; "),
                if names.len() > 3 { "; ..." } else { "" },
                if rec.region.is_empty() {
                    "; no zone: energy only, no carbon"
                } else {
                    ""
                }
            ));
            rec
        })
        .collect();
    (out, warnings)
}

/// Most characters of a command shown in [`run_name`].
const COMMAND_CHARS: usize = 40;

/// What people call a run: its `model` and `team` labels and its command (the program's
/// file name and its arguments, at most 40 characters), e.g. `model=llama-8b team=search:
/// python train.py --epochs 3`; the run id only when it has none of these.
pub fn run_name(r: &RunReport) -> String {
    let mut parts: Vec<String> = ["model", "team"]
        .iter()
        .filter_map(|k| r.labels.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    if let Some((prog, args)) = r.command.split_first() {
        let prog = prog.rsplit('/').next().unwrap_or(prog);
        let mut cmd = std::iter::once(prog)
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if cmd.chars().count() > COMMAND_CHARS {
            cmd = cmd.chars().take(COMMAND_CHARS).collect::<String>() + "...";
        }
        let joined = if parts.is_empty() {
            cmd
        } else {
            format!("{}: {cmd}", parts.join(" "))
        };
        parts = vec![joined];
    }
    if parts.is_empty() {
        format!("run {}", r.id)
    } else {
        parts.join(" ")
    }
}

/// One line of the report: a record, and whether it counts in the totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortfolioLine {
    #[serde(flatten)]
    pub record: PortfolioRecord,
    /// The tier as printed (`estimate (CCF method)`).
    pub tier_label: &'static str,
    /// False when the line is detail of (or superseded by) another figure: shown, not added.
    pub counted: bool,
    /// The figure this line is detail of, when not counted.
    pub detail_of: Option<String>,
}

/// Totals of a group of counted lines.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupTotal {
    pub name: String,
    /// Location-based, g CO2e (`location` + `both` figures).
    pub location_g: f64,
    /// Market-based, g CO2e (`market` + `both` figures).
    pub market_g: f64,
    /// Counted lines in the group.
    pub lines: usize,
}

/// Totals by the values of one label.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelTotals {
    pub key: String,
    pub groups: Vec<GroupTotal>,
}

/// The share of the footprint a tier holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierShare {
    pub tier: Tier,
    pub label: &'static str,
    /// Fraction of the location-based total, 0..1.
    pub location_share: f64,
    /// Fraction of the market-based total, 0..1.
    pub market_share: f64,
}

/// The totals of the period before, for the change against it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreviousPeriod {
    pub period: String,
    /// Location-based total, g CO2e.
    pub location_g: f64,
    /// Market-based total, g CO2e.
    pub market_g: f64,
}

impl PreviousPeriod {
    /// The relative change of `now_g` against `then_g`, `None` when `then_g` is 0.
    pub fn change(now_g: f64, then_g: f64) -> Option<f64> {
        (then_g > 0.0).then(|| (now_g - then_g) / then_g)
    }
}

/// The portfolio report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortfolioReport {
    pub schema: &'static str,
    pub period: String,
    /// The period before (set by the caller, which reads the history), for the change.
    pub previous: Option<PreviousPeriod>,
    /// Location-based total, g CO2e.
    pub location_g: f64,
    /// Market-based total, g CO2e.
    pub market_g: f64,
    /// Low and high ends of the location-based total, g CO2e (the estimates' ranges; other
    /// figures counted at their value).
    pub location_low_g: f64,
    pub location_high_g: f64,
    /// Facility energy of the measured runs, MWh (provider figures carry no energy). Runs that
    /// are detail of a provider figure count here: the provider's figure has no energy.
    pub measured_energy_mwh: f64,
    /// Facility energy of the counted estimates, MWh (an estimate superseded by the
    /// provider's own figure is left out with its carbon).
    pub estimated_energy_mwh: f64,
    /// The portfolio's energy, MWh: measured plus estimated. Provider-reported figures carry
    /// none and add nothing: the figure is a lower bound when there are any.
    pub energy_mwh: f64,
    /// Counted provider-reported lines, whose energy is unknown.
    pub lines_without_energy: usize,
    /// The Operational Overhead Score of each way of obtaining a figure, by tier (set by
    /// the caller from the history, [`overhead`]); empty when not computed.
    pub overhead: Vec<RouteScore>,
    pub by_tier: Vec<GroupTotal>,
    pub by_provider: Vec<GroupTotal>,
    pub by_month: Vec<GroupTotal>,
    pub by_scope: Vec<GroupTotal>,
    pub by_label: Vec<LabelTotals>,
    /// The largest contributors (provider, account, project, service), location-based,
    /// at most [`LARGEST`], largest first.
    pub largest: Vec<GroupTotal>,
    pub shares: Vec<TierShare>,
    pub breaks: Vec<SeriesBreak>,
    pub lines: Vec<PortfolioLine>,
    pub notes: Vec<String>,
}

fn covers_measured(m: &PortfolioRecord, r: &PortfolioRecord) -> bool {
    r.tier != Tier::Measured
        && r.provider == m.provider
        && r.month == m.month
        && m.provider != Provider::Onprem
        && r.zone().is_some()
        && r.zone() == m.zone()
        && (m.project.is_some() && r.project == m.project
            || !m.account.is_empty() && r.account == m.account)
}

/// The provider-reported or estimated figure that a measured run is detail of, described,
/// or `None` when the run counts on its own.
pub fn run_detail_of(run: &RunReport, records: &[PortfolioRecord]) -> Option<String> {
    if records.is_empty() {
        return None;
    }
    let (measured, _) = measured_records(std::slice::from_ref(run));
    measured
        .iter()
        .find_map(|m| records.iter().find(|r| covers_measured(m, r)))
        .map(describe)
}

fn supersedes_estimate(e: &PortfolioRecord, r: &PortfolioRecord) -> bool {
    r.tier == Tier::ProviderReported
        && r.provider == e.provider
        && r.month == e.month
        && r.account == e.account
        && (e.project.is_none() || r.project.is_none() || e.project == r.project)
}

fn describe(r: &PortfolioRecord) -> String {
    format!(
        "{} {} {} {}{} {} ({} line {})",
        r.tier.as_str(),
        r.provider,
        if r.account.is_empty() {
            "-"
        } else {
            &r.account
        },
        r.project
            .as_deref()
            .map(|p| format!("{p} "))
            .unwrap_or_default(),
        r.region,
        r.month,
        r.source.file,
        r.source.line
    )
}

/// Builds the report over `records` (measured ones from [`measured_records`] included),
/// grouping totals by `label_keys`.
pub fn build(period: &str, records: Vec<PortfolioRecord>, label_keys: &[&str]) -> PortfolioReport {
    let mut lines: Vec<PortfolioLine> = Vec::with_capacity(records.len());
    for r in &records {
        let detail_of = match r.tier {
            Tier::Measured => records.iter().find(|o| covers_measured(r, o)).map(describe),
            Tier::Estimate => records
                .iter()
                .find(|o| supersedes_estimate(r, o))
                .map(describe),
            Tier::ProviderReported => None,
        };
        lines.push(PortfolioLine {
            record: r.clone(),
            tier_label: r.tier.label(),
            counted: detail_of.is_none(),
            detail_of,
        });
    }
    let counted: Vec<&PortfolioRecord> = lines
        .iter()
        .filter(|l| l.counted)
        .map(|l| &l.record)
        .collect();
    let loc = |r: &PortfolioRecord| {
        if r.basis.counts_in(CarbonMethod::Location) {
            r.grams
        } else {
            0.0
        }
    };
    let mkt = |r: &PortfolioRecord| {
        if r.basis.counts_in(CarbonMethod::Market) {
            r.grams
        } else {
            0.0
        }
    };
    let group = |name_of: &dyn Fn(&PortfolioRecord) -> String| -> Vec<GroupTotal> {
        let mut m: BTreeMap<String, GroupTotal> = BTreeMap::new();
        for r in &counted {
            let name = name_of(r);
            let g = m.entry(name.clone()).or_insert_with(|| GroupTotal {
                name,
                ..Default::default()
            });
            g.location_g += loc(r);
            g.market_g += mkt(r);
            g.lines += 1;
        }
        m.into_values().collect()
    };
    let location_g: f64 = counted.iter().map(|r| loc(r)).sum();
    let market_g: f64 = counted.iter().map(|r| mkt(r)).sum();
    let location_low_g: f64 = counted
        .iter()
        .map(|r| {
            if loc(r) > 0.0 {
                r.low_g.unwrap_or(r.grams)
            } else {
                0.0
            }
        })
        .sum();
    let location_high_g: f64 = counted
        .iter()
        .map(|r| {
            if loc(r) > 0.0 {
                r.high_g.unwrap_or(r.grams)
            } else {
                0.0
            }
        })
        .sum();
    let measured_energy_mwh = lines
        .iter()
        .filter(|l| l.record.tier == Tier::Measured)
        .filter_map(|l| l.record.energy_j)
        .sum::<f64>()
        / J_PER_MWH;
    let estimated_energy_mwh = lines
        .iter()
        .filter(|l| l.counted && l.record.tier == Tier::Estimate)
        .filter_map(|l| l.record.energy_j)
        .sum::<f64>()
        / J_PER_MWH;
    let lines_without_energy = lines
        .iter()
        .filter(|l| l.counted && l.record.tier == Tier::ProviderReported)
        .count();
    let by_tier = group(&|r| r.tier.label().to_string());
    let shares = Tier::ALL
        .iter()
        .map(|t| {
            let g = by_tier.iter().find(|g| g.name == t.label());
            let frac = |part: f64, whole: f64| {
                if whole > 0.0 {
                    part / whole + 0.0
                } else {
                    0.0
                }
            };
            TierShare {
                tier: *t,
                label: t.label(),
                location_share: frac(g.map_or(0.0, |g| g.location_g), location_g),
                market_share: frac(g.map_or(0.0, |g| g.market_g), market_g),
            }
        })
        .collect();
    let by_label = label_keys
        .iter()
        .map(|k| LabelTotals {
            key: k.to_string(),
            groups: group(&|r| label_value(r, k)),
        })
        .collect();
    let mut notes = vec![
        "Provider-reported figures are the clouds' own carbon accounting: monthly, carbon \
         without energy; they are never shown as an energy-to-solution."
            .to_string(),
        "A measured run inside a cloud project (or account) and month that a provider figure \
         or an estimate covers is detail of it: shown, never added."
            .to_string(),
        "Location-based totals count location-based figures and figures without a Scope 2 \
         method (scope 1, scope 3, figures a provider states no method for); market-based \
         totals likewise."
            .to_string(),
    ];
    let detail = lines.iter().filter(|l| !l.counted).count();
    if detail > 0 {
        notes.push(format!(
            "{detail} line(s) are detail of another figure and not counted in the totals."
        ));
    }
    if counted.iter().any(|r| r.scope == Scope::Unsplit) {
        notes.push(
            "Some provider figures do not split their scopes (AWS totals without the per-scope \
             columns, Azure Carbon Optimization): they are listed as `unsplit`, never split by \
             guess."
                .into(),
        );
    }
    let no_market: usize = counted
        .iter()
        .filter(|r| r.tier == Tier::Measured && r.basis == Basis::Location)
        .filter(|r| {
            !counted.iter().any(|o| {
                o.tier == Tier::Measured
                    && o.basis == Basis::Market
                    && o.month == r.month
                    && o.provider == r.provider
                    && o.region == r.region
                    && o.labels == r.labels
            })
        })
        .count();
    if no_market > 0 {
        notes.push(format!(
            "{no_market} measured line(s) have no market-based figure (no --market-factor): \
             the market-based total leaves them out."
        ));
    }
    let breaks = series_breaks(&records);
    if !breaks.is_empty() {
        notes.push(
            "The provider's carbon model changed within the period (series breaks below): \
             months on either side are not comparable."
                .into(),
        );
    }
    let mut largest = group(&|r| {
        format!(
            "{} {}{}{}",
            r.provider,
            if r.account.is_empty() {
                "-"
            } else {
                &r.account
            },
            r.project
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default(),
            if r.service.is_empty() {
                String::new()
            } else {
                format!(" {}", r.service)
            }
        )
    });
    largest.sort_by(|a, b| b.location_g.total_cmp(&a.location_g));
    largest.truncate(LARGEST);
    PortfolioReport {
        schema: SCHEMA,
        previous: None,
        largest,
        period: period.to_string(),
        location_g,
        market_g,
        location_low_g,
        location_high_g,
        measured_energy_mwh,
        estimated_energy_mwh,
        energy_mwh: measured_energy_mwh + estimated_energy_mwh,
        lines_without_energy,
        overhead: Vec::new(),
        by_provider: group(&|r| r.provider.to_string()),
        by_month: group(&|r| r.month.to_string()),
        by_scope: group(&|r| r.scope.as_str().to_string()),
        by_tier,
        by_label,
        shares,
        breaks,
        lines,
        notes,
    }
}

/// The Operational Overhead Score of every way of obtaining a figure (provider export,
/// usage estimate, `run`, Python, the agent), its compute overhead measured over `runs`
/// (the meter's median CPU share per route, [`Measured::from_runs`]).
pub fn overhead(runs: &[RunReport]) -> Vec<RouteScore> {
    overhead_score::score(&Measured::from_runs(runs))
}

/// The compute overhead of a route in words: `none (...)`, `median 0.2 % CPU over 3
/// run(s) (measured)`, `about 0.1 % CPU (typical: ...)`.
pub fn compute_text(c: &ComputeOverhead) -> String {
    match c {
        ComputeOverhead::None { note } => format!("none ({note})"),
        ComputeOverhead::Measured {
            median_cpu_pct,
            runs,
        } => format!(
            "median {} % CPU over {runs} run(s) (measured in the history)",
            sig(*median_cpu_pct)
        ),
        ComputeOverhead::Typical { cpu_pct, note } => {
            format!("about {} % CPU (typical: {note})", sig(*cpu_pct))
        }
    }
}

/// The value of label `key` for a record: its labels, else its project for `project` and
/// its account for `account`; `(none)` when it has none.
fn label_value(r: &PortfolioRecord, key: &str) -> String {
    if let Some(v) = r.labels.get(key) {
        return v.clone();
    }
    match key {
        "project" => r.project.clone(),
        "account" => (!r.account.is_empty()).then(|| r.account.clone()),
        _ => None,
    }
    .unwrap_or_else(|| "(none)".into())
}

/// `2025 | location-based +12.5 %, market-based -3.0 %` (the change against the previous
/// period), `None` without one.
pub fn change_line(p: &PortfolioReport) -> Option<String> {
    let prev = p.previous.as_ref()?;
    let f = |now: f64, then: f64| {
        PreviousPeriod::change(now, then)
            .map(|c| format!("{:+.1} %", c * 100.0 + 0.0))
            .unwrap_or_else(|| "n/a (none before)".into())
    };
    Some(format!(
        "{} | location-based {}, market-based {}",
        prev.period,
        f(p.location_g, prev.location_g),
        f(p.market_g, prev.market_g)
    ))
}

fn t(g: f64) -> String {
    format!("{} t", sig(g / GRAMS_PER_TONNE))
}

fn pct(f: f64) -> String {
    // `+ 0.0`: an empty sum is -0.0, printed "-0.0 %".
    format!("{:.1} %", f * 100.0 + 0.0)
}

fn cell(s: &str) -> String {
    wattprint_core::text::printable(s).replace('|', "/")
}

fn group_table(o: &mut String, title: &str, gs: &[GroupTotal]) {
    o.push_str(&format!(
        "\n## By {title}\n\n| {title} | location-based tCO2e | market-based tCO2e | lines |\n|---|---:|---:|---:|\n"
    ));
    for g in gs {
        o.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&g.name),
            t(g.location_g),
            t(g.market_g),
            g.lines
        ));
    }
}

/// Markdown (also the terminal form).
pub fn markdown(p: &PortfolioReport) -> String {
    let mut o = format!("# Portfolio carbon statement — {}\n\n", cell(&p.period));
    o.push_str("| figure | value |\n|---|---:|\n");
    o.push_str(&format!("| Location-based | {}CO2e |\n", t(p.location_g)));
    if p.location_high_g > p.location_low_g {
        o.push_str(&format!(
            "| Location-based range (estimates) | {} .. {}CO2e |\n",
            t(p.location_low_g),
            t(p.location_high_g)
        ));
    }
    o.push_str(&format!("| Market-based | {}CO2e |\n", t(p.market_g)));
    if let Some((period, change)) = change_line(p).as_deref().and_then(|l| l.split_once(" | ")) {
        o.push_str(&format!(
            "| Change against {} | {} |\n",
            cell(period),
            cell(change)
        ));
    }
    o.push_str(&format!(
        "| Energy (facility) | {} |\n",
        cell(&energy_text(p))
    ));
    for s in &p.shares {
        o.push_str(&format!(
            "| Share {} | {} (market-based {}) |\n",
            s.label,
            pct(s.location_share),
            pct(s.market_share)
        ));
    }
    group_table(&mut o, "largest contributor", &p.largest);
    group_table(&mut o, "tier", &p.by_tier);
    group_table(&mut o, "provider", &p.by_provider);
    group_table(&mut o, "month", &p.by_month);
    group_table(&mut o, "scope", &p.by_scope);
    for l in &p.by_label {
        group_table(&mut o, &format!("label {}", l.key), &l.groups);
    }
    if !p.overhead.is_empty() {
        o.push_str("\n## Operational Overhead Score by tier\n\n| tier | way | latency until the number exists | set-up steps | compute overhead | score |\n|---|---|---|---:|---|---|\n");
        for s in &p.overhead {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                s.route.tier().label(),
                s.route.id(),
                cell(&s.latency),
                s.setup_steps.len(),
                cell(&compute_text(&s.compute)),
                s.score.as_str()
            ));
        }
    }
    if !p.breaks.is_empty() {
        o.push_str("\n## Series breaks\n\n| provider | account | from month | model |\n|---|---|---|---|\n");
        for b in &p.breaks {
            o.push_str(&format!(
                "| {} | {} | {} | {} -> {} |\n",
                b.provider,
                cell(&b.account),
                b.month,
                cell(&b.from_version),
                cell(&b.to_version)
            ));
        }
    }
    o.push_str("\n## Lines\n\n| tier | provider | account | project | service | region | month | scope | basis | gCO2e | range | counted | source | note |\n|---|---|---|---|---|---|---|---|---|---:|---|---|---|---|\n");
    for l in &p.lines {
        let r = &l.record;
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            l.tier_label,
            r.provider,
            cell(&r.account),
            cell(r.project.as_deref().unwrap_or("")),
            cell(&r.service),
            cell(&r.region),
            r.month,
            r.scope.as_str(),
            r.basis.as_str(),
            sig(r.grams),
            match (r.low_g, r.high_g) {
                (Some(lo), Some(hi)) => format!("{} .. {}", sig(lo), sig(hi)),
                _ => String::new(),
            },
            match &l.detail_of {
                None => "yes".to_string(),
                Some(d) => format!("no: detail of {}", cell(d)),
            },
            if r.source.line > 0 {
                format!("{} line {}", cell(&r.source.file), r.source.line)
            } else {
                cell(&r.source.file)
            },
            cell(r.note.as_deref().unwrap_or(""))
        ));
    }
    o.push_str("\nNotes:\n");
    for n in &p.notes {
        o.push_str(&format!("- {n}\n"));
    }
    o
}

/// The lines as CSV (one row per line, grams).
pub fn csv(p: &PortfolioReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "tier",
        "provider",
        "account",
        "project",
        "service",
        "region",
        "month",
        "scope",
        "basis",
        "grams",
        "low_g",
        "high_g",
        "energy_j",
        "counted",
        "detail_of",
        "model_version",
        "source_file",
        "source_line",
        "note",
    ]);
    for l in &p.lines {
        let r = &l.record;
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        let _ = w.write_record([
            r.tier.as_str().to_string(),
            r.provider.to_string(),
            r.account.clone(),
            r.project.clone().unwrap_or_default(),
            r.service.clone(),
            r.region.clone(),
            r.month.to_string(),
            r.scope.as_str().to_string(),
            r.basis.as_str().to_string(),
            r.grams.to_string(),
            opt(r.low_g),
            opt(r.high_g),
            opt(r.energy_j),
            l.counted.to_string(),
            l.detail_of.clone().unwrap_or_default(),
            r.model_version.clone(),
            r.source.file.clone(),
            r.source.line.to_string(),
            r.note.clone().unwrap_or_default(),
        ]);
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The portfolio's energy in words: `3.6 MWh (measured 3.5, estimated 0.1; 12
/// provider-reported line(s) carry no energy and add none)`, the number in MWh.
pub fn energy_text(p: &PortfolioReport) -> String {
    let mut s = format!(
        "{} MWh (measured {}, estimated {})",
        sig(p.energy_mwh),
        sig(p.measured_energy_mwh),
        sig(p.estimated_energy_mwh)
    );
    if p.lines_without_energy > 0 {
        s.push_str(&format!(
            "; {} provider-reported line(s) carry no energy and add none: a lower bound",
            p.lines_without_energy
        ));
    }
    s
}

/// One-line summary for stderr.
pub fn summary(p: &PortfolioReport) -> String {
    format!(
        "portfolio {}: location-based {}, market-based {}, {} line(s)",
        p.period,
        fmt_g(p.location_g),
        fmt_g(p.market_g),
        p.lines.len()
    )
}

#[cfg(test)]
mod tests;
