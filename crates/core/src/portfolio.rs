//! The portfolio: periodic carbon records beside measured runs.
//!
//! A [`PortfolioRecord`] is one month of one provider's (or an estimator's) carbon figure for
//! one account, project, service and region, for one GHG scope and one Scope 2 method. Records
//! come from cloud providers' carbon exports (tier [`Tier::ProviderReported`]: carbon without
//! energy), from usage-based estimates ([`Tier::Estimate`], with a range) or from measured runs
//! summed per month ([`Tier::Measured`]). The history keeps them in their own table, one row
//! per [`RecordKey`], so a month imported twice is recognised, never counted twice.
//!
//! Pure data and arithmetic: no I/O.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The JSON schema name of a serialised record (`wattprint.portfolio/v1`).
pub const PORTFOLIO_SCHEMA: &str = "wattprint.portfolio/v1";

/// Grams in one kilogram.
pub const G_PER_KG: f64 = 1_000.0;
/// Grams in one metric tonne (t, MT, mt: `MTCO2e`, `mtCO2e`).
pub const G_PER_TONNE: f64 = 1_000_000.0;

/// The cloud (or data source) a record is about. Spelled as in wattprint's zones
/// (`gcp:europe-west1`, `aws:us-east-1`, `azure:westeurope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Google Cloud.
    Gcp,
    /// Oracle Cloud Infrastructure (FOCUS exports; no carbon export is imported).
    Oci,
    /// Machines that are no cloud's: measured runs without a cloud zone.
    Onprem,
}

impl Provider {
    /// Every provider, in display order.
    pub const ALL: [Provider; 5] = [
        Provider::Aws,
        Provider::Azure,
        Provider::Gcp,
        Provider::Oci,
        Provider::Onprem,
    ];

    /// The lowercase spelling, also the zone prefix: `aws`, `azure`, `gcp`, `oci`, `onprem`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
            Provider::Oci => "oci",
            Provider::Onprem => "onprem",
        }
    }

    /// Parses [`Provider::as_str`]'s spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A calendar month (the period of every record: providers export monthly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    /// Year, 1..=9999.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
}

impl Month {
    /// The month, `None` when the year is outside 1..=9999 or the month outside 1..=12.
    pub fn new(year: i32, month: u8) -> Option<Month> {
        ((1..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    /// Parses `YYYY-MM`, or a date or timestamp that starts with `YYYY-MM-` (`2026-03-01`,
    /// `2026-03-01 00:00:00Z`, `2026-03-01T00:00:00.000Z`) or an integer `yyyymmdd`
    /// (`20260301`, MCfS's `dateKey`): the month it falls in. `None` for anything else.
    pub fn parse(s: &str) -> Option<Month> {
        let s = s.trim();
        let (y, m) = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
            (&s[0..4], &s[4..6])
        } else {
            let b = s.as_bytes();
            if b.len() < 7 || b[4] != b'-' || (b.len() > 7 && b[7] != b'-') {
                return None;
            }
            (s.get(0..4)?, s.get(5..7)?)
        };
        if !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        Month::new(y.parse().ok()?, m.parse().ok()?)
    }

    /// The first day, `YYYY-MM-01` (the period's inclusive start).
    pub fn start_date(self) -> String {
        format!("{self}-01")
    }

    /// The month after this one (the period's exclusive end is its first day).
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first day of the next month, `YYYY-MM-01` (the period's exclusive end).
    pub fn end_date(self) -> String {
        self.next().start_date()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(s: String) -> Result<Month, String> {
        Month::parse(&s).ok_or_else(|| format!("not a month (YYYY-MM): {s:?}"))
    }
}

/// The GHG Protocol scope of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Direct emissions (the provider's own fuel: generators, refrigerants).
    #[serde(rename = "scope1")]
    Scope1,
    /// Purchased electricity, heat and cooling.
    #[serde(rename = "scope2")]
    Scope2,
    /// The value chain (embodied hardware, buildings, transport).
    #[serde(rename = "scope3")]
    Scope3,
    /// A provider total that does not split its scopes (AWS `total_lbm_emissions_value`
    /// without the per-scope columns, Azure Carbon Optimization items): kept apart from the
    /// three, never split by guess.
    #[serde(rename = "unsplit")]
    Unsplit,
}

impl Scope {
    /// The JSON and CSV spelling: `scope1`, `scope2`, `scope3`, `unsplit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scope1 => "scope1",
            Scope::Scope2 => "scope2",
            Scope::Scope3 => "scope3",
            Scope::Unsplit => "unsplit",
        }
    }

    /// Parses [`Scope::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Scope1, Scope::Scope2, Scope::Scope3, Scope::Unsplit]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Which of wattprint's two carbon totals (GHG Protocol Scope 2 methods) a figure counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Location-based only (grid-average factors): [`crate::report::CarbonMethod::Location`].
    Location,
    /// Market-based only (contractual instruments): [`crate::report::CarbonMethod::Market`].
    Market,
    /// The same figure under both methods: scope 1 and scope 3, which have no Scope 2
    /// method, or a provider figure that states none (Azure's); counted in both totals.
    Both,
}

impl Basis {
    /// The spelling: `location`, `market`, `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Location => "location",
            Basis::Market => "market",
            Basis::Both => "both",
        }
    }

    /// Parses [`Basis::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Basis> {
        [Basis::Location, Basis::Market, Basis::Both]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Whether the figure counts in the total of `method` (`Unset` counts nowhere).
    pub fn counts_in(self, method: crate::report::CarbonMethod) -> bool {
        use crate::report::CarbonMethod;
        matches!(
            (self, method),
            (Basis::Both, CarbonMethod::Location | CarbonMethod::Market)
                | (Basis::Location, CarbonMethod::Location)
                | (Basis::Market, CarbonMethod::Market)
        )
    }
}

/// The data-quality tier of a figure: what an assurer asks first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// Energy measured by wattprint (sensors or its utilisation model) times a grid factor.
    #[serde(rename = "measured")]
    Measured,
    /// The cloud provider's own carbon figure (carbon without energy; never an E2S).
    #[serde(rename = "provider-reported")]
    ProviderReported,
    /// A usage-based estimate (billing usage x Cloud Carbon Footprint coefficients), with a
    /// range.
    #[serde(rename = "estimate")]
    Estimate,
}

impl Tier {
    /// Every tier, from the best evidence to the weakest.
    pub const ALL: [Tier; 3] = [Tier::Measured, Tier::ProviderReported, Tier::Estimate];

    /// The JSON and CSV spelling: `measured`, `provider-reported`, `estimate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Measured => "measured",
            Tier::ProviderReported => "provider-reported",
            Tier::Estimate => "estimate",
        }
    }

    /// The label printed beside a figure: `measured`, `provider-reported`,
    /// `estimate (CCF method)`.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Measured => "measured",
            Tier::ProviderReported => "provider-reported",
            Tier::Estimate => "estimate (CCF method)",
        }
    }

    /// Parses [`Tier::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a record came from: the file and the line (1-based; for JSON, the line where its
/// object starts) that held it, and the import format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSource {
    /// The file name as given to `wattprint import`.
    pub file: String,
    /// 1-based line of the row or object in that file.
    pub line: u64,
    /// The import format (`gcp-carbon`, `aws-carbon`, `azure-carbon`, `focus`, ...).
    pub format: String,
}

/// One month of carbon for one provider x account x project x service x region, one scope
/// and one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortfolioRecord {
    /// The provider the figure is about.
    pub provider: Provider,
    /// Billing account (GCP `billing_account_id`), AWS `usage_account_id`, Azure subscription
    /// or enrollment; empty when the source gives none.
    pub account: String,
    /// GCP project id (`None`: no project, or deleted); Azure resource group; `None` for AWS.
    pub project: Option<String>,
    /// The provider's service (`Compute Engine`, `AmazonEC2`, `Virtual Machines`); empty
    /// for a figure over all services.
    pub service: String,
    /// The provider's region code (`europe-west1`, `us-east-1`, `westeurope`); empty or
    /// `global` when the source gives none.
    pub region: String,
    /// The month of the figure (period start = its first day, end = the next month's).
    pub month: Month,
    /// GHG scope.
    pub scope: Scope,
    /// Which carbon total(s) the figure counts in.
    pub basis: Basis,
    /// The figure, g CO2e.
    pub grams: f64,
    /// Low end of the range, g CO2e (estimates; `None` for a single figure).
    pub low_g: Option<f64>,
    /// High end of the range, g CO2e (estimates; `None` for a single figure).
    pub high_g: Option<f64>,
    /// Data-quality tier.
    pub tier: Tier,
    /// Energy behind the figure, J: `None` for provider rows (they give none), which are
    /// never shown as an energy-to-solution.
    pub energy_j: Option<f64>,
    /// The provider's carbon model version (`carbon_model_version`, `model_version`,
    /// `ModelVersion`); for estimates the method's version; empty when not given.
    pub model_version: String,
    /// Labels (team, project, model...) for totals by label.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Provenance.
    pub source: RecordSource,
    /// A note printed beside the figure (a stated assumption), if any.
    #[serde(default)]
    pub note: Option<String>,
}

/// The identity of a record in the history: at most one figure per key, so re-importing a
/// month is recognised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    pub provider: Provider,
    pub account: String,
    pub project: String,
    pub service: String,
    pub region: String,
    pub month: Month,
    pub scope: Scope,
    pub basis: Basis,
    pub tier: Tier,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} account {:?} project {:?} service {:?} region {:?} {} {} ({})",
            self.provider,
            self.month,
            self.account,
            self.project,
            self.service,
            self.region,
            self.scope.as_str(),
            self.basis.as_str(),
            self.tier.as_str()
        )
    }
}

impl PortfolioRecord {
    /// The record's identity (a `None` project is the empty string).
    pub fn key(&self) -> RecordKey {
        RecordKey {
            provider: self.provider,
            account: self.account.clone(),
            project: self.project.clone().unwrap_or_default(),
            service: self.service.clone(),
            region: self.region.clone(),
            month: self.month,
            scope: self.scope,
            basis: self.basis,
            tier: self.tier,
        }
    }

    /// The wattprint zone of the record's region (`gcp:europe-west1`); `None` without one.
    pub fn zone(&self) -> Option<String> {
        let r = self.region.trim();
        if r.is_empty() || r.eq_ignore_ascii_case("global") {
            return None;
        }
        Some(format!(
            "{}:{}",
            self.provider,
            r.to_ascii_lowercase().replace(' ', "")
        ))
    }

    /// What is wrong with the record, if anything: a figure or range that is not finite or
    /// negative, a range that does not hold the figure, an energy that is not finite.
    pub fn check(&self) -> Result<(), String> {
        let finite_nonneg = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {v} is not a finite, non-negative number"))
            }
        };
        finite_nonneg("grams", self.grams)?;
        if let Some(l) = self.low_g {
            finite_nonneg("low_g", l)?;
            if l > self.grams {
                return Err(format!("low_g {l} is above the figure {}", self.grams));
            }
        }
        if let Some(h) = self.high_g {
            finite_nonneg("high_g", h)?;
            if h < self.grams {
                return Err(format!("high_g {h} is below the figure {}", self.grams));
            }
        }
        if let Some(e) = self.energy_j {
            finite_nonneg("energy_j", e)?;
        }
        Ok(())
    }
}

/// A change of the provider's carbon model between two consecutive months of one series
/// (provider x account): figures on either side are not comparable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeriesBreak {
    pub provider: Provider,
    pub account: String,
    /// The first month under the new model.
    pub month: Month,
    pub from_version: String,
    pub to_version: String,
}

/// The model-version changes in `records` (provider-reported only), per provider x account,
/// in month order. A month with several versions counts as a break at that month.
pub fn series_breaks(records: &[PortfolioRecord]) -> Vec<SeriesBreak> {
    let mut by_series: BTreeMap<(Provider, &str), BTreeMap<Month, Vec<&str>>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.tier == Tier::ProviderReported) {
        let versions = by_series
            .entry((r.provider, r.account.as_str()))
            .or_default()
            .entry(r.month)
            .or_default();
        if !versions.contains(&r.model_version.as_str()) {
            versions.push(r.model_version.as_str());
        }
    }
    let mut out = Vec::new();
    for ((provider, account), months) in by_series {
        let mut last: Option<&str> = None;
        for (month, mut versions) in months {
            versions.sort_unstable();
            for v in versions {
                if let Some(prev) = last {
                    if prev != v {
                        out.push(SeriesBreak {
                            provider,
                            account: account.to_string(),
                            month,
                            from_version: prev.to_string(),
                            to_version: v.to_string(),
                        });
                    }
                }
                last = Some(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CarbonMethod;

    fn rec(month: Month, version: &str) -> PortfolioRecord {
        PortfolioRecord {
            provider: Provider::Gcp,
            account: "A".into(),
            project: None,
            service: "Compute Engine".into(),
            region: "europe-west1".into(),
            month,
            scope: Scope::Scope2,
            basis: Basis::Location,
            grams: 1500.0,
            low_g: None,
            high_g: None,
            tier: Tier::ProviderReported,
            energy_j: None,
            model_version: version.into(),
            labels: BTreeMap::new(),
            source: RecordSource::default(),
            note: None,
        }
    }

    #[test]
    fn months_parse_from_dates_timestamps_and_date_keys() {
        let m = Month::new(2026, 3).unwrap();
        assert_eq!(Month::parse("2026-03"), Some(m));
        assert_eq!(Month::parse("2026-03-01"), Some(m));
        assert_eq!(Month::parse("2026-03-01 00:00:00Z"), Some(m));
        assert_eq!(Month::parse("2026-03-01T00:00:00.000Z"), Some(m));
        assert_eq!(Month::parse("20260301"), Some(m));
        assert_eq!(Month::parse("2026-13-01"), None);
        assert_eq!(Month::parse("26-03-01"), None);
        assert_eq!(Month::parse("2026/03/01"), None);
        assert_eq!(m.start_date(), "2026-03-01");
        assert_eq!(Month::new(2026, 12).unwrap().end_date(), "2027-01-01");
    }

    #[test]
    fn a_month_round_trips_through_json_as_yyyy_mm() {
        let r = rec(Month::new(2026, 1).unwrap(), "12");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["month"], "2026-01");
        assert_eq!(j["tier"], "provider-reported");
        assert_eq!(j["scope"], "scope2");
        let back: PortfolioRecord = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn scope1_and_3_count_in_both_totals_scope2_in_its_own() {
        assert!(Basis::Both.counts_in(CarbonMethod::Location));
        assert!(Basis::Both.counts_in(CarbonMethod::Market));
        assert!(Basis::Location.counts_in(CarbonMethod::Location));
        assert!(!Basis::Location.counts_in(CarbonMethod::Market));
        assert!(!Basis::Market.counts_in(CarbonMethod::Unset));
    }

    #[test]
    fn a_model_version_change_is_a_break_at_the_first_month_of_the_new_model() {
        let m = |k| Month::new(2026, k).unwrap();
        let rs = vec![
            rec(m(1), "11"),
            rec(m(2), "11"),
            rec(m(3), "12"),
            rec(m(4), "12"),
        ];
        let b = series_breaks(&rs);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].month, m(3));
        assert_eq!(
            (b[0].from_version.as_str(), b[0].to_version.as_str()),
            ("11", "12")
        );
        assert!(series_breaks(&rs[..2]).is_empty());
    }

    #[test]
    fn check_refuses_negative_and_out_of_range_figures() {
        let mut r = rec(Month::new(2026, 1).unwrap(), "1");
        assert!(r.check().is_ok());
        r.grams = -1.0;
        assert!(r.check().unwrap_err().contains("grams"));
        r.grams = 10.0;
        r.low_g = Some(12.0);
        assert!(r.check().unwrap_err().contains("low_g"));
    }

    #[test]
    fn the_zone_of_a_record_is_provider_colon_region() {
        let mut r = rec(Month::new(2026, 1).unwrap(), "1");
        assert_eq!(r.zone().as_deref(), Some("gcp:europe-west1"));
        r.region = "Global".into();
        assert_eq!(r.zone(), None);
    }
}
