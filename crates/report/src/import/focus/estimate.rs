//! The usage-based estimate of FOCUS rows by the Cloud Carbon Footprint (CCF) method. Pure:
//! rows in, records out; the tables are the embedded ones of `wattprint-data`.
//!
//! Per usage row (CCF methodology, <https://www.cloudcarbonfootprint.org/docs/methodology>):
//! - **compute**: instance-hours x vCPUs x (min W + utilisation x (max W - min W)) per vCPU,
//!   from CCF's `coefficients-{aws,gcp}-use.csv` row of the family's micro-architecture(s)
//!   (averaged over several, as CCF does); `vCPU-Hours` rows and vCPU hours of serverless
//!   containers take the provider's figure for unknown architectures. The range is idle (0 %)
//!   to full load (100 %); the figure is at the stated utilisation (CCF's default 50 %).
//! - **memory** billed on its own (`GB-Hours`, Fargate memory hours): 0.392 W per GB
//!   ([`wattprint_core::powermodel`]'s CCF constant). An instance's memory is inside its
//!   per-vCPU coefficients and is not added again.
//! - **storage** (`GB-Month`): GB x 730 h x 1.2 Wh/TB-h (SSD) or 0.65 Wh/TB-h (HDD) (CCF
//!   "Storage"); an unknown medium spans HDD to SSD with the mean as the figure. Replication
//!   factors are not applied (a known underestimate, stated in `docs/estimates.md`).
//! - **network**: data transfer GB x 0.001 kWh/GB (CCF "Networking").
//! - times the provider's PUE ([`wattprint_data::cloud::pue_default`]) and the region's
//!   location-based grid factor ([`wattprint_data::cloud::region`]: eGRID2023 subregion for US
//!   regions, see `docs/grids.md`) = scope 2, location-based.
//! - **embodied** (scope 3): instance-hours x the host's CCF embodied kgCO2e / 35,040 h x
//!   vCPUs / the family's largest vCPUs (`coefficients-{aws-embodied,gcp-embodied-mean}.csv`,
//!   the row's line cited in the record's note).
//!
//! Rows that are not usage (purchases, tax, credits, adjustments, unused commitments) are
//! skipped and counted; usage rows the method cannot place (SaaS, support, IP addresses, GPU
//! instances, unknown sizes or regions, negative corrections) are counted and listed by
//! reason, service and unit, never guessed.

use super::FocusRow;
use crate::ParseError;
use std::collections::{BTreeMap, HashMap};
use wattprint_core::portfolio::{
    Basis, Month, PortfolioRecord, Provider, RecordSource, Scope, Tier,
};
use wattprint_data::ccf::{self, Instance, VcpuWatts};
use wattprint_data::cloud;
use wattprint_data::grid::IntensityFactor;

/// The largest usage quantity one FOCUS row may carry, in its own unit: 10^15 (10^15 GB is a
/// million petabytes; 10^15 hours about 10^11 years), far beyond any real row. A larger
/// value is a corrupt cell, refused where it enters so no estimate overflows to infinity.
pub const MAX_ROW_QUANTITY: f64 = 1e15;

/// The method's version, kept in every record's `model_version`.
pub const METHOD_VERSION: &str = "CCF method (Cloud Carbon Footprint coefficients 2023)";

/// CCF's default average vCPU utilisation when none is known: 50 %.
pub const DEFAULT_UTILISATION: f64 = 0.5;

/// Memory power, W per GB (CCF: mean of Crucial 0.375 and Micron 0.408).
pub const MEMORY_W_PER_GB: f64 = 0.392;
/// SSD storage energy, Wh per TB-hour (CCF methodology, "Storage").
pub const SSD_WH_PER_TB_H: f64 = 1.2;
/// HDD storage energy, Wh per TB-hour (CCF methodology, "Storage").
pub const HDD_WH_PER_TB_H: f64 = 0.65;
/// Network energy, kWh per GB transferred (CCF methodology, "Networking").
pub const NETWORK_KWH_PER_GB: f64 = 0.001;
/// Hours in an average month (8,760 / 12), for GB-month storage.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Options of the estimate.
#[derive(Clone, Debug)]
pub struct EstimateOptions {
    /// The average vCPU utilisation assumed, 0..=1 (CCF default 0.5).
    pub utilisation: f64,
    /// The file name, for each record's source.
    pub file: String,
}

impl Default for EstimateOptions {
    fn default() -> Self {
        EstimateOptions {
            utilisation: DEFAULT_UTILISATION,
            file: String::new(),
        }
    }
}

/// Rows of one kind that were not estimated.
#[derive(Clone, Debug, PartialEq)]
pub struct NotEstimated {
    /// Why (a sentence).
    pub reason: String,
    pub service: String,
    pub unit: String,
    /// Rows counted.
    pub rows: u64,
    /// The first such row's line.
    pub first_line: u64,
    /// Sum of `BilledCost` over those rows (what the unestimated share costs), when given.
    pub billed_cost: f64,
}

/// What a FOCUS file gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FocusEstimate {
    /// Estimated records: per provider x account x project x service x region x month (AWS and
    /// Azure: the FOCUS sub-account is the account; Google: billing account and project),
    /// one scope-2 (location-based, with a range and energy) and one scope-3 (embodied, when
    /// any) record.
    pub records: Vec<PortfolioRecord>,
    /// Data rows read.
    pub rows: u64,
    /// Usage rows estimated.
    pub estimated_rows: u64,
    /// Rows skipped as not usage (by reason).
    pub skipped: Vec<NotEstimated>,
    /// Usage rows not estimated (by reason, service and unit).
    pub not_estimated: Vec<NotEstimated>,
    /// The utilisation the figures assume, 0..=1.
    pub utilisation: f64,
}

impl FocusEstimate {
    /// Usage rows not estimated.
    pub fn not_estimated_rows(&self) -> u64 {
        self.not_estimated.iter().map(|n| n.rows).sum()
    }
    /// Rows skipped as not usage.
    pub fn skipped_rows(&self) -> u64 {
        self.skipped.iter().map(|n| n.rows).sum()
    }
}

/// IT energy (before PUE) at idle, stated and full utilisation, kWh; embodied g.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Part {
    low_kwh: f64,
    kwh: f64,
    high_kwh: f64,
    embodied_g: f64,
}

#[derive(Clone, Debug)]
struct Acc {
    /// The FOCUS billing account when the record's account is the sub-account (AWS payer,
    /// Azure billing account), for the `billing_account` label.
    billing_account: String,
    part: Part,
    rows: u64,
    first_line: u64,
    grid: IntensityFactor,
    pue: f64,
    pue_source: String,
    embodied_cites: Vec<String>,
    kinds: Vec<&'static str>,
}

type Key = (Provider, String, String, String, String, Month);

/// The streaming estimator: [`Estimator::add`] each row, then [`Estimator::finish`]. Memory
/// grows with the distinct keys (provider x account x sub-account x service x region x month)
/// and reasons, not with the rows.
pub struct Estimator {
    opts: EstimateOptions,
    acc: BTreeMap<Key, Acc>,
    skipped: BTreeMap<(String, String, String), NotEstimated>,
    not: BTreeMap<(String, String, String), NotEstimated>,
    rows: u64,
    estimated: u64,
    instances: HashMap<(Provider, String), Option<Instance>>,
    regions: HashMap<(Provider, String), Option<IntensityFactor>>,
}

fn provider_of(name: &str) -> Option<Provider> {
    let n = name.to_ascii_lowercase();
    if n.contains("amazon") || n == "aws" || n.starts_with("aws ") {
        Some(Provider::Aws)
    } else if n.contains("microsoft") || n.contains("azure") {
        Some(Provider::Azure)
    } else if n.contains("google") || n == "gcp" {
        Some(Provider::Gcp)
    } else if n.contains("oracle") || n == "oci" {
        Some(Provider::Oci)
    } else {
        None
    }
}

fn data_provider(p: Provider) -> Option<cloud::Provider> {
    match p {
        Provider::Aws => Some(cloud::Provider::Aws),
        Provider::Azure => Some(cloud::Provider::Azure),
        Provider::Gcp => Some(cloud::Provider::Gcp),
        _ => None,
    }
}

fn ccf_provider(p: Provider) -> Option<ccf::Provider> {
    match p {
        Provider::Aws => Some(ccf::Provider::Aws),
        Provider::Azure => Some(ccf::Provider::Azure),
        Provider::Gcp => Some(ccf::Provider::Gcp),
        _ => None,
    }
}

/// A JSON string or number field of `SkuPriceDetails` (`"InstanceType": "m5.large"`,
/// `"CoreCount": 4`), without a JSON parser per row.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        s.split('"').next()
    } else {
        rest.split([',', '}']).next().map(str::trim)
    }
}

fn unit_is(unit: &str, names: &[&str]) -> bool {
    names.iter().any(|n| unit.eq_ignore_ascii_case(n))
}

/// How a usage row is estimated.
enum Kind<'a> {
    Instance(&'a str),
    Cores(f64),
    VcpuHours,
    MemoryGbHours,
    StorageGbMonths,
    NetworkGb,
}

fn classify<'a>(row: &FocusRow<'a>) -> Result<Kind<'a>, String> {
    let unit = row.unit.trim();
    let desc = row.description.to_ascii_lowercase();
    let hours = unit_is(
        unit,
        &["hours", "hour", "hrs", "hr", "1 hour", "instance-hours"],
    );
    if hours {
        if let Some(t) = json_field(row.sku_price_details, "InstanceType") {
            return Ok(Kind::Instance(t));
        }
        if let Some(n) = json_field(row.sku_price_details, "CoreCount")
            .and_then(|c| c.parse::<f64>().ok())
            .filter(|c| c.is_finite() && *c > 0.0)
        {
            return Ok(Kind::Cores(n));
        }
        if desc.contains("instance hour") {
            // AWS: "$0.34 per On Demand Linux c5.2xlarge Instance Hour".
            if let Some(t) = row.description.split_whitespace().find(|w| {
                w.contains('.')
                    && !w.starts_with('$')
                    && w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            }) {
                return Ok(Kind::Instance(t));
            }
        }
        if desc.contains("vcpu") {
            return Ok(Kind::VcpuHours);
        }
        if desc.contains("memory") {
            return Ok(Kind::MemoryGbHours);
        }
        return Err(
            "hours of a resource with no energy model (not an instance with a known size)".into(),
        );
    }
    if unit_is(unit, &["vcpu-hours", "vcpu hours", "vcpu-hour"]) {
        return Ok(Kind::VcpuHours);
    }
    if unit_is(
        unit,
        &["gb hours", "gb-hours", "gib-hours", "gib hours", "gb-hour"],
    ) {
        return Ok(Kind::MemoryGbHours);
    }
    if unit_is(
        unit,
        &[
            "gb-month",
            "gb/month",
            "gb-mo",
            "gb months",
            "gib-month",
            "gib-months",
            "gb-months",
            "gibibyte month",
        ],
    ) {
        if row.service_category.eq_ignore_ascii_case("networking") || desc.contains("transfer") {
            return Err("GB-months of network usage: no CCF coefficient".into());
        }
        return Ok(Kind::StorageGbMonths);
    }
    if unit_is(unit, &["gb", "gib", "gigabytes"]) && desc.contains("data transfer") {
        return Ok(Kind::NetworkGb);
    }
    Err("unit with no energy model in the CCF method".into())
}

impl Estimator {
    /// A new estimator. Errors: utilisation outside 0..=1 (named, with the fix).
    pub fn new(opts: EstimateOptions) -> Result<Self, String> {
        if !(opts.utilisation.is_finite() && (0.0..=1.0).contains(&opts.utilisation)) {
            return Err(format!(
                "utilisation {} is outside 0..=1 (give a fraction, e.g. 0.5 for 50 %)",
                opts.utilisation
            ));
        }
        Ok(Estimator {
            opts,
            acc: BTreeMap::new(),
            skipped: BTreeMap::new(),
            not: BTreeMap::new(),
            rows: 0,
            estimated: 0,
            instances: HashMap::new(),
            regions: HashMap::new(),
        })
    }

    fn count(
        map: &mut BTreeMap<(String, String, String), NotEstimated>,
        row: &FocusRow<'_>,
        reason: String,
    ) {
        let cost = row
            .billed_cost
            .parse::<f64>()
            .ok()
            .filter(|c| c.is_finite())
            .unwrap_or(0.0);
        let e = map
            .entry((
                reason.clone(),
                row.service.to_string(),
                row.unit.to_string(),
            ))
            .or_insert_with(|| NotEstimated {
                reason,
                service: row.service.to_string(),
                unit: row.unit.to_string(),
                rows: 0,
                first_line: row.line,
                billed_cost: 0.0,
            });
        e.rows += 1;
        e.billed_cost += cost;
    }

    /// Adds one row. Errors: a row whose quantity is not a number or whose
    /// `ChargePeriodStart` is not a date (naming line and field): the caller imports nothing.
    pub fn add(&mut self, row: &FocusRow<'_>) -> Result<(), ParseError> {
        self.rows += 1;
        let line = row.line as usize;
        if !row.charge_category.eq_ignore_ascii_case("usage") {
            let what = match row.charge_category {
                "" => "no ChargeCategory".to_string(),
                c => format!("{c}: not usage, no energy"),
            };
            Self::count(&mut self.skipped, row, what);
            return Ok(());
        }
        if row.commitment_status.eq_ignore_ascii_case("unused") {
            Self::count(
                &mut self.skipped,
                row,
                "unused commitment: no energy".into(),
            );
            return Ok(());
        }
        let month = Month::parse(row.period_start).ok_or_else(|| {
            ParseError::new(
                line,
                "ChargePeriodStart",
                format!("{:?} is not a date (YYYY-MM-DD...)", row.period_start),
            )
        })?;
        if row.quantity.is_empty() {
            Self::count(&mut self.not, row, "no quantity".into());
            return Ok(());
        }
        let qty: f64 = row.quantity.parse().map_err(|_| {
            ParseError::new(
                line,
                row.quantity_field,
                format!("{:?} is not a number", row.quantity),
            )
        })?;
        if !qty.is_finite() {
            return Err(ParseError::new(
                line,
                row.quantity_field,
                format!("{qty} is not finite"),
            ));
        }
        if qty > MAX_ROW_QUANTITY {
            return Err(ParseError::new(
                line,
                row.quantity_field,
                format!(
                    "{qty} is beyond any one row's usage (at most {MAX_ROW_QUANTITY:e} of its \
                     unit): a corrupt cell or a unit mistake; fix the row"
                ),
            ));
        }
        if qty < 0.0 {
            Self::count(
                &mut self.not,
                row,
                "negative quantity (a correction): not estimated".into(),
            );
            return Ok(());
        }
        let Some(provider) = provider_of(row.provider) else {
            Self::count(
                &mut self.not,
                row,
                format!("provider {:?} is not known to the CCF method", row.provider),
            );
            return Ok(());
        };
        let (Some(dp), Some(cp)) = (data_provider(provider), ccf_provider(provider)) else {
            Self::count(
                &mut self.not,
                row,
                format!("{provider}: no CCF coefficients"),
            );
            return Ok(());
        };
        let kind = match classify(row) {
            Ok(k) => k,
            Err(reason) => {
                Self::count(&mut self.not, row, reason);
                return Ok(());
            }
        };
        let region_key = (provider, row.region.to_ascii_lowercase());
        let grid = self
            .regions
            .entry(region_key)
            .or_insert_with(|| {
                if row.region.is_empty() {
                    None
                } else {
                    cloud::region(dp, row.region)
                }
            })
            .clone();
        let Some(grid) = grid else {
            let why = if row.region.is_empty() {
                "no region: no grid factor".to_string()
            } else {
                format!("region {:?} has no grid factor", row.region)
            };
            Self::count(&mut self.not, row, why);
            return Ok(());
        };
        let u = self.opts.utilisation;
        let vcpu_part = |vcpu_h: f64, w: VcpuWatts| Part {
            low_kwh: vcpu_h * w.min_w / 1000.0,
            kwh: vcpu_h * (w.min_w + u * (w.max_w - w.min_w)) / 1000.0,
            high_kwh: vcpu_h * w.max_w / 1000.0,
            embodied_g: 0.0,
        };
        let mut cite = None;
        let (part, kind_name) = match kind {
            Kind::Instance(t) => {
                let inst = self
                    .instances
                    .entry((provider, t.to_ascii_lowercase()))
                    .or_insert_with(|| ccf::instance(cp, t))
                    .clone();
                let Some(inst) = inst else {
                    Self::count(
                        &mut self.not,
                        row,
                        format!("instance size {t:?}: vCPUs unknown"),
                    );
                    return Ok(());
                };
                if !inst.accelerator.is_empty() {
                    Self::count(
                        &mut self.not,
                        row,
                        format!(
                            "{} instance ({}): its devices are not in the CCF CPU coefficients",
                            inst.accelerator, inst.family
                        ),
                    );
                    return Ok(());
                }
                let mut p = vcpu_part(qty * f64::from(inst.vcpus), inst.watts);
                if let (Some(g), Some(e)) = (inst.embodied_g_per_hour(), inst.embodied) {
                    p.embodied_g = qty * g;
                    cite = Some(format!("{} {}:{}", inst.instance_type, e.file, e.line));
                }
                (p, "compute")
            }
            Kind::Cores(n) => (
                vcpu_part(qty * n, ccf::unknown_architecture(Some(cp))),
                "compute",
            ),
            Kind::VcpuHours => (
                vcpu_part(qty, ccf::unknown_architecture(Some(cp))),
                "compute",
            ),
            Kind::MemoryGbHours => {
                let k = qty * MEMORY_W_PER_GB / 1000.0;
                (
                    Part {
                        low_kwh: k,
                        kwh: k,
                        high_kwh: k,
                        embodied_g: 0.0,
                    },
                    "memory",
                )
            }
            Kind::StorageGbMonths => {
                let d = row.description.to_ascii_lowercase();
                let tb_h = qty * HOURS_PER_MONTH / 1000.0;
                let ssd = ["ssd", "gp2", "gp3", "io1", "io2", "premium"]
                    .iter()
                    .any(|w| d.contains(w));
                let hdd = [
                    "hdd", "st1", "sc1", "cold", "archive", "glacier", "standard",
                ]
                .iter()
                .any(|w| d.contains(w));
                let (lo, mid, hi) = match (ssd, hdd) {
                    (true, _) => (SSD_WH_PER_TB_H, SSD_WH_PER_TB_H, SSD_WH_PER_TB_H),
                    (false, true) => (HDD_WH_PER_TB_H, HDD_WH_PER_TB_H, HDD_WH_PER_TB_H),
                    _ => (
                        HDD_WH_PER_TB_H,
                        (HDD_WH_PER_TB_H + SSD_WH_PER_TB_H) / 2.0,
                        SSD_WH_PER_TB_H,
                    ),
                };
                (
                    Part {
                        low_kwh: tb_h * lo / 1000.0,
                        kwh: tb_h * mid / 1000.0,
                        high_kwh: tb_h * hi / 1000.0,
                        embodied_g: 0.0,
                    },
                    "storage",
                )
            }
            Kind::NetworkGb => {
                let k = qty * NETWORK_KWH_PER_GB;
                (
                    Part {
                        low_kwh: k,
                        kwh: k,
                        high_kwh: k,
                        embodied_g: 0.0,
                    },
                    "network",
                )
            }
        };
        self.estimated += 1;
        // Accounts as the providers' carbon exports name them, so that the provider's own
        // figure supersedes the estimate (`report::portfolio`): AWS by usage account and Azure
        // by subscription (FOCUS `SubAccountId`; the billing account kept as a label), Google
        // by billing account and project (`BillingAccountId`, `SubAccountId`).
        let (account, project, billing_label) = match provider {
            Provider::Aws | Provider::Azure if !row.sub_account.is_empty() => {
                (row.sub_account, "", row.billing_account)
            }
            _ => (row.billing_account, row.sub_account, ""),
        };
        let key: Key = (
            provider,
            account.to_string(),
            project.to_string(),
            row.service.to_string(),
            grid.zone
                .split_once(':')
                .map_or(row.region, |z| z.1)
                .to_string(),
            month,
        );
        let pue = cloud::pue_default(dp);
        let a = self.acc.entry(key).or_insert_with(|| Acc {
            billing_account: billing_label.to_string(),
            part: Part::default(),
            rows: 0,
            first_line: row.line,
            grid: grid.clone(),
            pue: pue.pue,
            pue_source: format!("{} {}", pue.source, pue.year),
            embodied_cites: Vec::new(),
            kinds: Vec::new(),
        });
        a.part.low_kwh += part.low_kwh;
        a.part.kwh += part.kwh;
        a.part.high_kwh += part.high_kwh;
        a.part.embodied_g += part.embodied_g;
        a.rows += 1;
        if !a.kinds.contains(&kind_name) {
            a.kinds.push(kind_name);
        }
        if let Some(c) = cite {
            if a.embodied_cites.len() < 8 && !a.embodied_cites.contains(&c) {
                a.embodied_cites.push(c);
            }
        }
        Ok(())
    }

    /// The records and the counts.
    pub fn finish(self) -> FocusEstimate {
        let u = self.opts.utilisation;
        let mut records = Vec::new();
        for ((provider, account, sub, service, region, month), a) in self.acc {
            let g = a.grid.g_per_kwh * a.pue;
            let base = PortfolioRecord {
                provider,
                account: account.clone(),
                project: (!sub.is_empty()).then(|| sub.clone()),
                service: service.clone(),
                region: region.clone(),
                month,
                scope: Scope::Scope2,
                basis: Basis::Location,
                grams: a.part.kwh * g,
                low_g: Some(a.part.low_kwh * g),
                high_g: Some(a.part.high_kwh * g),
                tier: Tier::Estimate,
                energy_j: Some(a.part.kwh * a.pue * 3.6e6),
                model_version: METHOD_VERSION.into(),
                labels: if a.billing_account.is_empty() {
                    BTreeMap::new()
                } else {
                    BTreeMap::from([("billing_account".to_string(), a.billing_account.clone())])
                },
                source: RecordSource {
                    file: self.opts.file.clone(),
                    line: a.first_line,
                    format: super::FORMAT.into(),
                },
                note: Some(format!(
                    "estimate (CCF method) of {} usage row(s) ({}); vCPU utilisation {:.0} % assumed (range: idle to full load); PUE {} ({}); grid {:.1} gCO2e/kWh {} ({}, {} {}, {} basis)",
                    a.rows,
                    a.kinds.join(", "),
                    u * 100.0,
                    a.pue,
                    a.pue_source,
                    a.grid.g_per_kwh,
                    a.grid.zone,
                    a.grid.name,
                    a.grid.source,
                    a.grid.year,
                    a.grid.basis
                )),
            };
            if a.part.embodied_g > 0.0 {
                records.push(PortfolioRecord {
                    scope: Scope::Scope3,
                    basis: Basis::Both,
                    grams: a.part.embodied_g,
                    low_g: None,
                    high_g: None,
                    energy_j: None,
                    note: Some(format!(
                        "embodied (CCF method): host kgCO2e / 35,040 h x vCPU share; rows {}",
                        a.embodied_cites.join(", ")
                    )),
                    ..base.clone()
                });
            }
            records.push(base);
        }
        FocusEstimate {
            records,
            rows: self.rows,
            estimated_rows: self.estimated,
            skipped: self.skipped.into_values().collect(),
            not_estimated: self.not.into_values().collect(),
            utilisation: u,
        }
    }
}

/// Reads and estimates a whole FOCUS input. Errors: the header, a malformed row, a bad
/// quantity or date (line and field named); nothing is returned half-done.
pub fn estimate_reader<R: std::io::Read>(
    input: R,
    opts: EstimateOptions,
) -> Result<FocusEstimate, ParseError> {
    let mut rdr = super::FocusReader::new(input)?;
    let mut est = Estimator::new(opts).map_err(|m| ParseError::new(0, "utilisation", m))?;
    while let Some(row) = rdr.next_row() {
        est.add(&row?)?;
    }
    Ok(est.finish())
}
