//! Carbon for wattprint reports (edge crate): zones and embedded factors with provenance,
//! `--intensity-file` series, opt-in live providers, PUE, embodied carbon and SCI.
//!
//! [`apply`] fills a [`RunReport`]'s `carbon` section, `energy.pue`, `energy.facility_j` and the
//! carbon metrics from its energy and work; the arithmetic is `wattprint_core::carbon`.

pub mod file;
pub mod live;
pub mod zone;

use std::path::PathBuf;
use wattprint_core::carbon::{self as math, CarbonMathError, SECONDS_PER_YEAR};
use wattprint_core::report::RunReport;
use wattprint_core::units::{Grams, JOULES_PER_KWH};
use wattprint_core::wallclock;
use wattprint_data::cloud;
use wattprint_data::grid::{self, IntensityFactor};

pub use live::{LiveConfig, LiveProvider, LiveSpec};
pub use zone::{UnknownZone, Zone};

/// Default lifetime of a server, years (SCI example; Cloud Carbon Footprint).
pub const SERVER_LIFETIME_YEARS: f64 = 4.0;
/// Default lifetime of a GPU, years.
pub const GPU_LIFETIME_YEARS: f64 = 3.0;
/// Default embodied carbon of a server, kgCO2e (Cloud Carbon Footprint base server).
pub const SERVER_EMBODIED_KG: f64 = 1000.0;

/// Embodied carbon of one kind of hardware the run reserved.
#[derive(Clone, Debug, PartialEq)]
pub struct HardwareEmbodied {
    /// E.g. `server`, `H100-SXM5-80GB`.
    pub what: String,
    /// Embodied carbon of one unit, kgCO2e.
    pub kg: f64,
    pub count: f64,
    pub lifetime_years: f64,
    pub source: String,
}

impl HardwareEmbodied {
    /// The default server: 1,000 kgCO2e over 4 years.
    pub fn default_server() -> Self {
        HardwareEmbodied {
            what: "server".into(),
            kg: SERVER_EMBODIED_KG,
            count: 1.0,
            lifetime_years: SERVER_LIFETIME_YEARS,
            source: "default server: Cloud Carbon Footprint base server, as in the SCI example"
                .into(),
        }
    }
}

/// Carbon options, as given on the command line (see `docs/carbon.md`).
#[derive(Clone, Debug, Default)]
pub struct CarbonOptions {
    /// ISO alpha-2/alpha-3, `gcp:R`, `aws:R`, `azure:R`, `WORLD`, `EU27`. None: world fallback.
    pub zone: Option<String>,
    /// A fixed location-based intensity instead of the zone's factor, g/kWh (`estimate --intensity`).
    pub intensity_g_per_kwh: Option<f64>,
    pub pue: Option<f64>,
    /// Supplier or residual-mix factor for the market-based figure, g/kWh.
    pub market_factor_g_per_kwh: Option<f64>,
    pub intensity_file: Option<PathBuf>,
    pub live: Option<LiveSpec>,
    pub live_config: LiveConfig,
    /// Embodied carbon of the whole machine, kgCO2e: replaces `hardware`.
    pub embodied_kg: Option<f64>,
    /// Overrides every lifetime (defaults: 4 for servers, 3 for GPUs).
    pub lifetime_years: Option<f64>,
    /// Share of the machine reserved, 0..=1 (default 1).
    pub share: Option<f64>,
    /// Functional units R for SCI.
    pub unit_count: Option<f64>,
    pub unit_name: Option<String>,
    /// Hardware whose embodied carbon is counted when `embodied_kg` is not given.
    pub hardware: Vec<HardwareEmbodied>,
}

/// Why carbon could not be computed: every variant is the user's input to fix.
#[derive(Debug, thiserror::Error)]
pub enum CarbonError {
    #[error(transparent)]
    UnknownZone(#[from] UnknownZone),
    #[error(transparent)]
    File(#[from] file::FileError),
    #[error("--intensity-file {path}: covers {file_from} to {file_to}, but the run was {run_from} to {run_to}; give a file that covers the run")]
    NotCovering {
        path: String,
        file_from: String,
        file_to: String,
        run_from: String,
        run_to: String,
    },
    #[error("{option}: {source}")]
    Invalid {
        option: &'static str,
        source: CarbonMathError,
    },
}

fn check(option: &'static str, r: Result<f64, CarbonMathError>) -> Result<f64, CarbonError> {
    r.map_err(|source| CarbonError::Invalid { option, source })
}

fn non_negative(option: &'static str, v: Option<f64>) -> Result<Option<f64>, CarbonError> {
    v.map(|x| {
        check(
            option,
            if x.is_finite() && x >= 0.0 {
                Ok(x)
            } else {
                Err(CarbonMathError::Negative {
                    name: "value",
                    value: x,
                })
            },
        )
    })
    .transpose()
}

fn positive(option: &'static str, v: Option<f64>) -> Result<Option<f64>, CarbonError> {
    v.map(|x| {
        check(
            option,
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(CarbonMathError::NotPositive {
                    name: "value",
                    value: x,
                })
            },
        )
    })
    .transpose()
}

fn math_err(option: &'static str) -> impl Fn(CarbonMathError) -> CarbonError {
    move |source| CarbonError::Invalid { option, source }
}

fn rfc3339(unix_s: f64) -> String {
    wallclock::rfc3339_utc_auto(unix_s).unwrap_or_else(|| format!("{unix_s} s"))
}

/// The current wall-clock time, RFC 3339 (UTC), for reports built outside a run.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

fn now_unix_s() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

/// The validated numbers of a [`CarbonOptions`].
struct Checked {
    pue_given: Option<f64>,
    market: Option<f64>,
    given_i: Option<f64>,
    embodied_kg: Option<f64>,
    lifetime_years: Option<f64>,
    share: f64,
    units: Option<f64>,
}

fn checked(opts: &CarbonOptions) -> Result<Checked, CarbonError> {
    Ok(Checked {
        pue_given: opts
            .pue
            .map(|p| check("--pue", math::check_pue(p)))
            .transpose()?,
        market: non_negative("--market-factor", opts.market_factor_g_per_kwh)?,
        given_i: non_negative("--intensity", opts.intensity_g_per_kwh)?,
        embodied_kg: non_negative("--embodied-kg", opts.embodied_kg)?,
        lifetime_years: positive("--lifetime-years", opts.lifetime_years)?,
        share: opts
            .share
            .map(|s| check("--share", math::check_share(s)))
            .transpose()?
            .unwrap_or(1.0),
        units: positive("--unit-count", opts.unit_count)?,
    })
}

/// Checks the options before anything is measured: numbers, zone, and the intensity file's
/// syntax (its coverage can only be checked against the run). `run` calls it before starting
/// the child, so bad input never costs a run.
pub fn validate(opts: &CarbonOptions) -> Result<(), CarbonError> {
    checked(opts)?;
    if let Some(z) = opts
        .zone
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty())
    {
        zone::resolve(z)?;
    }
    if let Some(p) = &opts.intensity_file {
        file::read(p)?;
    }
    Ok(())
}

/// Hardware whose embodied carbon a measured run counts by default: one server (1,000 kg over
/// 4 years) and each GPU in `report.host.gpu_models` that has an embodied figure in the GPU
/// table (over 3 years). The second list names the GPUs left out, and why.
pub fn run_hardware(report: &RunReport) -> (Vec<HardwareEmbodied>, Vec<String>) {
    let mut hw = vec![HardwareEmbodied::default_server()];
    let mut missing = Vec::new();
    for name in &report.host.gpu_models {
        match wattprint_data::gpu::lookup(name) {
            wattprint_data::gpu::GpuMatch::Found { spec, .. } => match spec.embodied_kgco2e {
                Some(kg) => match hw.iter_mut().find(|h| h.what == spec.model) {
                    Some(h) => h.count += 1.0,
                    None => hw.push(HardwareEmbodied {
                        what: spec.model.clone(),
                        kg,
                        count: 1.0,
                        lifetime_years: GPU_LIFETIME_YEARS,
                        source: spec
                            .embodied_source
                            .clone()
                            .unwrap_or_else(|| "GPU table".into()),
                    }),
                },
                None => missing.push(format!(
                    "embodied carbon of GPU `{name}` not counted: the GPU table has no figure for {}; pass --embodied-kg for the whole machine",
                    spec.model
                )),
            },
            wattprint_data::gpu::GpuMatch::Unknown { reason } => missing.push(format!(
                "embodied carbon of GPU `{name}` not counted: {reason}"
            )),
        }
    }
    (hw, missing)
}

/// [`apply`] for a measured run: when neither `--embodied-kg` nor hardware was given, the
/// embodied carbon of [`run_hardware`] (the server and the GPUs seen) is counted, and GPUs
/// without a figure are named in the warnings.
pub fn apply_for_run(report: &mut RunReport, opts: &CarbonOptions) -> Result<(), CarbonError> {
    if opts.embodied_kg.is_some() || !opts.hardware.is_empty() {
        return apply(report, opts);
    }
    let (hardware, missing) = run_hardware(report);
    let opts = CarbonOptions {
        hardware,
        ..opts.clone()
    };
    apply(report, &opts)?;
    report.warnings.extend(missing);
    Ok(())
}

/// The intensity used: value and provenance.
struct Used {
    zone: String,
    g_per_kwh: f64,
    source: String,
    year: Option<i32>,
    basis: String,
    licence: Option<String>,
    fallback: bool,
}

impl Used {
    fn from_factor(f: &IntensityFactor) -> Self {
        Used {
            zone: f.zone.clone(),
            g_per_kwh: f.g_per_kwh,
            source: format!("{} ({})", f.source, f.name),
            year: Some(f.year),
            basis: f.basis.as_str().into(),
            licence: Some(f.licence.into()),
            fallback: false,
        }
    }
}

/// The live provider's own region id for a zone, when one can be derived.
fn live_region(spec: &LiveSpec, zone: Option<&Zone>) -> Option<String> {
    if let Some(r) = &spec.region {
        return Some(r.clone());
    }
    match (spec.provider, zone) {
        (LiveProvider::UkCarbonIntensity, _) => Some("GB".into()),
        (LiveProvider::ElectricityMaps, Some(Zone::Country(c))) => Some(c.clone()),
        (LiveProvider::CarbonAwareSdk, Some(Zone::Cloud { region, .. })) => Some(region.clone()),
        (LiveProvider::CarbonAwareSdk, Some(Zone::Country(c))) => Some(c.clone()),
        _ => None,
    }
}

/// Fills `report.carbon`, `energy.pue`, `energy.facility_j`, the facility and carbon metrics and
/// warnings, from `report.energy.total_j`, `duration_s`, `started_at` and `work`. Run it after
/// the work metrics are filled.
pub fn apply(report: &mut RunReport, opts: &CarbonOptions) -> Result<(), CarbonError> {
    // Validate every input first: nothing is half-applied on bad input.
    let Checked {
        pue_given,
        market,
        given_i,
        embodied_kg,
        lifetime_years,
        share,
        units,
    } = checked(opts)?;
    let it_j = check(
        "energy.total_j",
        math::facility_j(report.energy.total_j, 1.0),
    )?;
    let duration_s = if report.duration_s.is_finite() && report.duration_s > 0.0 {
        report.duration_s
    } else {
        0.0
    };

    let mut warnings: Vec<String> = Vec::new();

    // Zone and its embedded factor.
    let zone_text = opts
        .zone
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty());
    let resolved = zone_text.map(zone::resolve).transpose()?;
    let zone = resolved.as_ref().map(|(z, _)| z.clone());
    let mut used = match (&resolved, given_i) {
        (_, Some(g)) => Used {
            zone: zone.as_ref().map_or("custom".into(), Zone::id),
            g_per_kwh: g,
            source: "given with --intensity".into(),
            year: None,
            basis: "unspecified".into(),
            licence: None,
            fallback: false,
        },
        (Some((_, f)), None) => Used::from_factor(f),
        (None, None) => {
            let w = grid::world();
            warnings.push(format!(
                "no zone given (--zone or WATTPRINT_ZONE): carbon uses the World average {:.0} gCO2e/kWh ({} {}) as a FALLBACK; set the zone for a meaningful figure",
                w.g_per_kwh, w.source, w.year
            ));
            Used {
                fallback: true,
                ..Used::from_factor(&w)
            }
        }
    };

    // PUE.
    let (pue, pue_source) = match (pue_given, zone.as_ref().and_then(Zone::provider)) {
        (Some(p), _) => (p, "given with --pue".to_string()),
        (None, Some(provider)) => {
            let d = cloud::pue_default(provider);
            (d.pue, format!("{} {}", d.source, d.year))
        }
        (None, None) => {
            warnings.push(format!(
                "PUE 1.0 assumed (on-premises default): data-centre overhead is not counted; pass --pue (industry average {} per {})",
                cloud::INDUSTRY_AVERAGE_PUE.pue,
                cloud::INDUSTRY_AVERAGE_PUE.source
            ));
            (
                1.0,
                "default 1.0 (on-premises, unknown facility)".to_string(),
            )
        }
    };
    let facility_j = it_j * pue;

    let started_unix_s = wallclock::parse_rfc3339_s(&report.started_at);

    // Operational grams: time-varying, live, or the static factor.
    let mut operational_g = check("carbon", math::operational_g(it_j, pue, used.g_per_kwh))?;
    if let Some(path) = &opts.intensity_file {
        let f = file::read(path)?;
        let p = path.display().to_string();
        let first = f.points.first().map_or(0.0, |x| x.0);
        let origin = match started_unix_s {
            Some(s) => s,
            None => {
                warnings.push(format!(
                    "no start time known: the run is placed at the start of {p} ({})",
                    rfc3339(first)
                ));
                first
            }
        };
        let series = f
            .series(origin)
            .ok_or_else(|| file::FileError::Empty { path: p.clone() })?;
        let segments = energy_segments(report, it_j, duration_s);
        let w = math::weigh_by_series(&segments, &series).map_err(math_err("--intensity-file"))?;
        let run_overlaps = series.from_s() <= duration_s && series.to_s() > 0.0;
        if (it_j > 0.0 && w.covered_j == 0.0) || (it_j == 0.0 && !run_overlaps) {
            return Err(CarbonError::NotCovering {
                path: p,
                file_from: rfc3339(origin + series.from_s()),
                file_to: rfc3339(origin + series.to_s()),
                run_from: rfc3339(origin),
                run_to: rfc3339(origin + duration_s),
            });
        }
        if let Some(share) = w.uncovered_share().filter(|s| *s > 0.0) {
            warnings.push(format!(
                "--intensity-file {p} does not cover the whole run: {:.1} % of the energy is weighed by the fallback factor {:.1} g/kWh ({})",
                share * 100.0,
                used.g_per_kwh,
                used.source
            ));
        }
        let it_g = w.covered_g + w.uncovered_j / JOULES_PER_KWH * used.g_per_kwh;
        operational_g = it_g * pue;
        let mean = if it_j > 0.0 {
            it_g / (it_j / JOULES_PER_KWH)
        } else {
            series
                .intervals()
                .iter()
                .find(|i| i.to_s > 0.0)
                .map_or(used.g_per_kwh, |i| i.g_per_kwh)
        };
        used = Used {
            zone: used.zone.clone(),
            g_per_kwh: mean,
            source: format!(
                "--intensity-file {p} ({} rows, step {:.0} s), energy-weighted mean",
                f.points.len(),
                f.step_s()
            ),
            year: wallclock::year_utc(origin),
            basis: "unspecified".into(),
            licence: None,
            fallback: used.fallback,
        };
    } else if let Some(spec) = &opts.live {
        let start = started_unix_s.unwrap_or_else(now_unix_s);
        let result = match live_region(spec, zone.as_ref()) {
            Some(region) => live::fetch(
                spec,
                &region,
                (start, start + duration_s),
                now_unix_s(),
                &opts.live_config,
            ),
            None => Err(live::LiveError::Config {
                provider: spec.provider.as_str(),
                msg: "no provider region: give --live PROVIDER:REGION (e.g. watttime:CAISO_NORTH)"
                    .into(),
            }),
        };
        match result {
            Ok(r) => {
                operational_g = check("carbon", math::operational_g(it_j, pue, r.g_per_kwh))?;
                used = Used {
                    zone: used.zone.clone(),
                    g_per_kwh: r.g_per_kwh,
                    source: r.source,
                    year: r.year,
                    basis: r.basis,
                    licence: None,
                    fallback: used.fallback,
                };
            }
            Err(e) => warnings.push(format!(
                "live intensity unavailable ({e}); the offline factor was used: {:.1} g/kWh, {}",
                used.g_per_kwh, used.source
            )),
        }
    }

    // Market-based figure, separate.
    let market_operational_g = market
        .map(|m| check("--market-factor", math::operational_g(it_j, pue, m)))
        .transpose()?;

    // Embodied carbon.
    let (embodied_g, embodied_source) = match embodied_kg {
        Some(kg) => {
            let life = lifetime_years.unwrap_or(SERVER_LIFETIME_YEARS);
            let g = check(
                "--embodied-kg",
                math::embodied_g(kg * 1000.0, duration_s, life * SECONDS_PER_YEAR, share),
            )?;
            (
                g,
                format!("given with --embodied-kg: {kg} kg over {life} years, share {share}"),
            )
        }
        None if opts.hardware.is_empty() => {
            warnings
                .push("embodied carbon not counted: no hardware figure; pass --embodied-kg".into());
            (0.0, "none (no hardware figure)".to_string())
        }
        None => {
            let mut g = 0.0;
            let mut parts = Vec::new();
            for h in &opts.hardware {
                let life = lifetime_years.unwrap_or(h.lifetime_years);
                g += check(
                    "embodied",
                    math::embodied_g(
                        h.kg * h.count * 1000.0,
                        duration_s,
                        life * SECONDS_PER_YEAR,
                        share,
                    ),
                )?;
                parts.push(format!(
                    "{} x {} {} kg over {life} years ({})",
                    h.count, h.what, h.kg, h.source
                ));
            }
            (g, format!("{}; share {share}", parts.join(" + ")))
        }
    };
    let total_g = operational_g + embodied_g;

    // Report.
    let c = &mut report.carbon;
    c.zone = used.zone;
    c.intensity_g_per_kwh = used.g_per_kwh;
    c.intensity_source = used.source;
    c.intensity_year = used.year;
    c.basis = used.basis;
    c.method = "location".into();
    c.fallback = used.fallback;
    c.operational_g = operational_g;
    c.embodied_g = embodied_g;
    c.total_g = total_g;
    c.market_operational_g = market_operational_g;
    c.market_factor_g_per_kwh = market;
    c.embodied_source = Some(embodied_source);
    c.intensity_licence = used.licence;
    c.pue_source = Some(pue_source);
    report.energy.pue = pue;
    report.energy.facility_j = facility_j;

    let m = &mut report.metrics;
    m.facility_energy_to_solution_j = facility_j;
    let inferences = report.work.inferences.unwrap_or(0.0);
    let tokens = report.work.tokens.unwrap_or(0.0);
    m.carbon_per_inference_g = math::per_inference_g(total_g, inferences);
    if m.carbon_per_inference_g.is_none() {
        m.notes.insert(
            "carbon_per_inference_g".into(),
            "no inferences declared (--inferences)".into(),
        );
    }
    m.carbon_per_1k_tokens_g = math::per_1k_tokens_g(total_g, tokens);
    if m.carbon_per_1k_tokens_g.is_none() {
        m.notes.insert(
            "carbon_per_1k_tokens_g".into(),
            "no tokens declared (--tokens)".into(),
        );
    }
    let (r, unit) = match (units, inferences > 0.0, tokens > 0.0) {
        (Some(r), _, _) => (
            Some(r),
            opts.unit_name.clone().unwrap_or_else(|| "unit".into()),
        ),
        (None, true, _) => (Some(inferences), "inference".into()),
        (None, false, true) => (Some(tokens), "token".into()),
        (None, false, false) => (None, String::new()),
    };
    // SCI uses the location-based intensity, E including PUE.
    m.sci_g_per_unit = r.and_then(|r| math::sci_g_per_unit(operational_g, embodied_g, r));
    if m.sci_g_per_unit.is_some() {
        m.sci_unit = Some(unit);
    } else {
        m.sci_unit = None;
        m.notes.insert(
            "sci_g_per_unit".into(),
            "no functional unit: pass --unit-count (and --unit-name), or declare inferences or tokens".into(),
        );
    }
    report.warnings.extend(warnings);
    Ok(())
}

/// When the energy was used: from the report's power timeline (counted domains) when present,
/// else spread evenly over the run.
fn energy_segments(report: &RunReport, it_j: f64, duration_s: f64) -> Vec<math::EnergySegment> {
    if let Some(tl) = &report.timeline {
        let counted: Vec<&str> = report
            .energy
            .domains
            .iter()
            .filter(|d| d.counted_in_total)
            .map(|d| d.name.as_str())
            .collect();
        let mut power = vec![0.0; tl.t_s.len()];
        for s in tl
            .series
            .iter()
            .filter(|s| counted.contains(&s.domain.as_str()))
        {
            for (p, w) in power.iter_mut().zip(&s.watts) {
                *p += w;
            }
        }
        let segs = math::segments_from_power(&tl.t_s, &power, duration_s, it_j);
        if !segs.is_empty() {
            return segs;
        }
    }
    vec![math::EnergySegment {
        from_s: 0.0,
        to_s: duration_s,
        energy_j: it_j,
    }]
}

/// Summary lines for the terminal: operational, embodied and total carbon with the zone, the
/// factor's source and vintage, the basis and the method.
pub fn summary_lines(report: &RunReport) -> Vec<String> {
    let c = &report.carbon;
    let basis = match c.basis.as_str() {
        "lifecycle" => "lifecycle basis, not a Scope 2 factor".to_string(),
        "direct" => "direct basis".to_string(),
        other => format!("{other} basis"),
    };
    let year = c
        .intensity_year
        .map(|y| format!(", {y}"))
        .unwrap_or_default();
    let mut v = vec![
        format!(
            "carbon     {} CO2e operational, location-based: zone {}{}, {:.1} gCO2e/kWh ({basis}; {}{year}), PUE {:.2}",
            Grams(c.operational_g),
            c.zone,
            if c.fallback { " (FALLBACK: no zone given)" } else { "" },
            c.intensity_g_per_kwh,
            c.intensity_source,
            report.energy.pue
        ),
        format!(
            "           {} CO2e embodied ({})",
            Grams(c.embodied_g),
            c.embodied_source.as_deref().unwrap_or("none")
        ),
        format!("           {} CO2e total", Grams(c.total_g)),
    ];
    if let (Some(g), Some(f)) = (c.market_operational_g, c.market_factor_g_per_kwh) {
        v.push(format!(
            "           {} CO2e operational, market-based ({f} gCO2e/kWh given)",
            Grams(g)
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::report::Work;

    fn report(total_j: f64, duration_s: f64) -> RunReport {
        let mut r = RunReport::new("t".into());
        r.energy.total_j = total_j;
        r.duration_s = duration_s;
        r.started_at = "2025-01-15T10:00:00Z".into();
        r
    }

    #[test]
    fn no_zone_uses_the_world_fallback_loudly() {
        let mut r = report(3.6e6, 3600.0);
        apply(&mut r, &CarbonOptions::default()).unwrap();
        assert!(r.carbon.fallback);
        assert_eq!(r.carbon.zone, "WORLD");
        assert_eq!(r.carbon.intensity_g_per_kwh.round(), 473.0);
        assert_eq!(r.carbon.operational_g.round(), 473.0);
        assert!(r.warnings.iter().any(|w| w.contains("FALLBACK")));
        assert!(r.warnings.iter().any(|w| w.contains("PUE 1.0 assumed")));
        assert!(summary_lines(&r)[0].contains("FALLBACK"));
    }

    #[test]
    fn cloud_zone_takes_provider_pue_and_region_factor() {
        let mut r = report(3.6e6, 3600.0);
        let o = CarbonOptions {
            zone: Some("gcp:europe-west1".into()),
            ..Default::default()
        };
        apply(&mut r, &o).unwrap();
        assert_eq!(r.energy.pue, 1.09);
        assert_eq!(r.energy.facility_j, 3.6e6 * 1.09);
        assert_eq!(r.metrics.facility_energy_to_solution_j, 3.6e6 * 1.09);
        assert!((r.carbon.operational_g - 103.37 * 1.09).abs() < 1e-9);
        assert_eq!(r.carbon.basis, "direct");
        assert!(!r.carbon.fallback);
        assert!(!r.warnings.iter().any(|w| w.contains("PUE")));
    }

    #[test]
    fn lifecycle_factor_is_never_called_scope_2() {
        let mut r = report(3.6e6, 3600.0);
        let o = CarbonOptions {
            zone: Some("FR".into()),
            pue: Some(1.0),
            ..Default::default()
        };
        apply(&mut r, &o).unwrap();
        assert_eq!(r.carbon.basis, "lifecycle");
        let s = summary_lines(&r).join("\n");
        assert!(s.contains("not a Scope 2 factor"), "{s}");
        assert!(s.contains("Ember"), "{s}");
        assert!(s.contains("2024"), "{s}");
    }

    #[test]
    fn sci_spec_example_reproduces_28_5_g() {
        let mut r = report(0.0, 3600.0);
        let o = CarbonOptions {
            zone: Some("FR".into()),
            embodied_kg: Some(1000.0),
            lifetime_years: Some(4.0),
            share: Some(1.0),
            unit_count: Some(1.0),
            unit_name: Some("job".into()),
            ..Default::default()
        };
        apply(&mut r, &o).unwrap();
        assert_eq!((r.carbon.embodied_g * 10.0).round() / 10.0, 28.5);
        assert_eq!(
            r.metrics.sci_g_per_unit.map(|v| (v * 10.0).round() / 10.0),
            Some(28.5)
        );
        assert_eq!(r.metrics.sci_unit.as_deref(), Some("job"));
    }

    #[test]
    fn per_inference_and_per_token_metrics_and_market_figure() {
        let mut r = report(3.6e6, 100.0);
        r.work = Work {
            inferences: Some(1000.0),
            tokens: Some(50_000.0),
            ..Default::default()
        };
        let o = CarbonOptions {
            intensity_g_per_kwh: Some(400.0),
            pue: Some(1.5),
            market_factor_g_per_kwh: Some(100.0),
            hardware: vec![HardwareEmbodied::default_server()],
            ..Default::default()
        };
        apply(&mut r, &o).unwrap();
        assert_eq!(r.carbon.operational_g, 600.0);
        assert_eq!(r.carbon.market_operational_g, Some(150.0));
        let emb = 1e6 * 100.0 / (4.0 * SECONDS_PER_YEAR);
        assert!((r.carbon.embodied_g - emb).abs() < 1e-9);
        let total = 600.0 + emb;
        assert!((r.metrics.carbon_per_inference_g.unwrap() - total / 1000.0).abs() < 1e-12);
        assert!((r.metrics.carbon_per_1k_tokens_g.unwrap() - total / 50.0).abs() < 1e-12);
        assert_eq!(r.metrics.sci_unit.as_deref(), Some("inference"));
    }

    #[test]
    fn bad_numbers_are_named_errors_and_nothing_is_applied() {
        for (o, opt) in [
            (
                CarbonOptions {
                    pue: Some(0.5),
                    ..Default::default()
                },
                "--pue",
            ),
            (
                CarbonOptions {
                    pue: Some(f64::NAN),
                    ..Default::default()
                },
                "--pue",
            ),
            (
                CarbonOptions {
                    share: Some(2.0),
                    ..Default::default()
                },
                "--share",
            ),
            (
                CarbonOptions {
                    market_factor_g_per_kwh: Some(-1.0),
                    ..Default::default()
                },
                "--market-factor",
            ),
            (
                CarbonOptions {
                    lifetime_years: Some(0.0),
                    ..Default::default()
                },
                "--lifetime-years",
            ),
            (
                CarbonOptions {
                    unit_count: Some(0.0),
                    ..Default::default()
                },
                "--unit-count",
            ),
            (
                CarbonOptions {
                    embodied_kg: Some(f64::INFINITY),
                    ..Default::default()
                },
                "--embodied-kg",
            ),
        ] {
            let mut r = report(1.0, 1.0);
            let e = apply(&mut r, &o).unwrap_err().to_string();
            assert!(e.starts_with(opt), "{e}");
            assert!(r.warnings.is_empty());
        }
        let mut r = report(1.0, 1.0);
        let e = apply(
            &mut r,
            &CarbonOptions {
                zone: Some("Narnia".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, CarbonError::UnknownZone(_)));
    }

    #[test]
    fn intensity_file_weighs_energy_by_interval() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.csv");
        std::fs::write(
            &p,
            "timestamp,g\n2025-01-15T10:00:00Z,100\n2025-01-15T10:30:00Z,300\n",
        )
        .unwrap();
        let mut r = report(3.6e6, 3600.0); // 10:00 to 11:00, even power
        let o = CarbonOptions {
            zone: Some("DE".into()),
            pue: Some(1.0),
            intensity_file: Some(p.clone()),
            ..Default::default()
        };
        apply(&mut r, &o).unwrap();
        assert!(
            (r.carbon.operational_g - 200.0).abs() < 1e-9,
            "{}",
            r.carbon.operational_g
        );
        assert!((r.carbon.intensity_g_per_kwh - 200.0).abs() < 1e-9);
        assert!(!r.warnings.iter().any(|w| w.contains("does not cover")));

        // Run partly outside: the rest uses the zone factor, stated.
        let mut r = report(3.6e6, 7200.0);
        r.started_at = "2025-01-15T09:00:00Z".into();
        apply(&mut r, &o).unwrap();
        let de = grid::country("DE").unwrap().g_per_kwh;
        assert!((r.carbon.operational_g - (0.5 * de + 0.25 * 100.0 + 0.25 * 300.0)).abs() < 1e-6);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("50.0 % of the energy")),
            "{:?}",
            r.warnings
        );

        // Run entirely outside: an error naming both ranges.
        let mut r = report(3.6e6, 60.0);
        r.started_at = "2026-01-01T00:00:00Z".into();
        let e = apply(&mut r, &o).unwrap_err().to_string();
        assert!(
            e.contains("covers 2025-01-15T10:00:00Z") && e.contains("2026-01-01"),
            "{e}"
        );
    }

    #[test]
    fn missing_intensity_file_is_a_named_error() {
        let mut r = report(1.0, 1.0);
        let o = CarbonOptions {
            intensity_file: Some("/nonexistent/i.csv".into()),
            ..Default::default()
        };
        let e = apply(&mut r, &o).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/i.csv: cannot read"), "{e}");
    }

    #[test]
    fn validate_catches_bad_input_before_a_run() {
        assert!(validate(&CarbonOptions::default()).is_ok());
        let bad_zone = CarbonOptions {
            zone: Some("gcp:nowhere".into()),
            ..Default::default()
        };
        assert!(matches!(
            validate(&bad_zone),
            Err(CarbonError::UnknownZone(_))
        ));
        let bad_pue = CarbonOptions {
            pue: Some(-1.0),
            ..Default::default()
        };
        assert!(validate(&bad_pue)
            .unwrap_err()
            .to_string()
            .starts_with("--pue"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, "2025-01-15T10:00:00Z,x\n").unwrap();
        let bad_file = CarbonOptions {
            intensity_file: Some(p),
            ..Default::default()
        };
        assert!(validate(&bad_file)
            .unwrap_err()
            .to_string()
            .contains(":1: field"));
    }

    #[test]
    fn run_hardware_counts_the_server_and_known_gpus() {
        let mut r = report(0.0, 1.0);
        r.host.gpu_models = vec![
            "NVIDIA H100 80GB HBM3".into(),
            "NVIDIA H100 80GB HBM3".into(),
            "Tesla V100-SXM2-32GB".into(),
            "Mystery GPU".into(),
        ];
        let (hw, missing) = run_hardware(&r);
        assert_eq!(hw[0], HardwareEmbodied::default_server());
        let h100 = hw.iter().find(|h| h.what.starts_with("H100")).unwrap();
        assert_eq!(h100.count, 2.0);
        assert_eq!(h100.lifetime_years, 3.0);
        assert_eq!(missing.len(), 2, "{missing:?}");
    }

    #[test]
    fn intensity_file_follows_the_power_timeline() {
        use wattprint_core::report::{DomainEnergy, PowerSeries, TimelineReport};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.csv");
        std::fs::write(&p, "2025-01-15T10:00:00Z,100\n2025-01-15T10:30:00Z,300\n").unwrap();
        // 300 W in the first half hour, 100 W in the second: 0.15 kWh at 100, 0.05 kWh at 300.
        let mut r = report(720_000.0, 3600.0);
        r.energy.domains = vec![DomainEnergy {
            name: "package-0".into(),
            kind: wattprint_core::DomainKind::CpuPackage,
            joules: 720_000.0,
            source: "test".into(),
            method: wattprint_core::Method::Counter,
            counted_in_total: true,
            device: None,
            avg_power_w: None,
        }];
        r.timeline = Some(TimelineReport {
            t_s: vec![900.0, 2700.0],
            series: vec![
                PowerSeries {
                    domain: "package-0".into(),
                    watts: vec![300.0, 100.0],
                },
                PowerSeries {
                    domain: "not-counted".into(),
                    watts: vec![1e6, 1e6],
                },
            ],
        });
        let o = CarbonOptions {
            zone: Some("FR".into()),
            pue: Some(1.0),
            intensity_file: Some(p),
            ..Default::default()
        };
        apply(&mut r, &o).unwrap();
        assert!(
            (r.carbon.operational_g - 30.0).abs() < 1e-9,
            "{}",
            r.carbon.operational_g
        );
        assert!((r.carbon.intensity_g_per_kwh - 150.0).abs() < 1e-9);
    }

    #[test]
    fn a_run_counts_the_default_server_unless_told_otherwise() {
        let mut r = report(0.0, 3600.0);
        apply_for_run(&mut r, &CarbonOptions::default()).unwrap();
        let expect = 1e6 * 3600.0 / (4.0 * SECONDS_PER_YEAR);
        assert!((r.carbon.embodied_g - expect).abs() < 1e-9);
        assert!(r
            .carbon
            .embodied_source
            .as_deref()
            .unwrap()
            .contains("default server"));
        let mut r = report(0.0, 3600.0);
        let o = CarbonOptions {
            embodied_kg: Some(2000.0),
            share: Some(0.5),
            ..Default::default()
        };
        apply_for_run(&mut r, &o).unwrap();
        assert!((r.carbon.embodied_g - expect).abs() < 1e-9);
    }
}
