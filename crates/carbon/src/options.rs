//! Carbon options as given on the command line, their errors and their validation.

use crate::*;

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
    #[error("{}", self.describe(CarbonField::flag))]
    NotCovering {
        path: String,
        file_from: String,
        file_to: String,
        run_from: String,
        run_to: String,
    },
    #[error("{}", self.describe(CarbonField::flag))]
    Invalid {
        field: CarbonField,
        source: CarbonMathError,
    },
}

/// Which input a carbon error is about. Messages name it the way the caller spells it:
/// [`CarbonField::flag`] for the command line (the `Display` of [`CarbonError`]),
/// [`CarbonField::keyword`] for the Python API (through [`CarbonError::describe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarbonField {
    Pue,
    MarketFactor,
    Intensity,
    IntensityFile,
    EmbodiedKg,
    LifetimeYears,
    Share,
    UnitCount,
    /// The embodied figures of the hardware table (not an option).
    Embodied,
    /// The report's energy (not an option).
    Energy,
    /// The operational carbon computed from the report (not an option).
    Carbon,
}

impl CarbonField {
    /// The command-line spelling: `--pue`, `--market-factor`... (`energy.total_j`, `carbon`,
    /// `embodied` for what is not an option).
    pub fn flag(self) -> &'static str {
        match self {
            CarbonField::Pue => "--pue",
            CarbonField::MarketFactor => "--market-factor",
            CarbonField::Intensity => "--intensity",
            CarbonField::IntensityFile => "--intensity-file",
            CarbonField::EmbodiedKg => "--embodied-kg",
            CarbonField::LifetimeYears => "--lifetime-years",
            CarbonField::Share => "--share",
            CarbonField::UnitCount => "--unit-count",
            CarbonField::Embodied => "embodied",
            CarbonField::Energy => "energy.total_j",
            CarbonField::Carbon => "carbon",
        }
    }

    /// The [`CarbonOptions`] field (the Python keyword): `pue`, `market_factor_g_per_kwh`...
    pub fn keyword(self) -> &'static str {
        match self {
            CarbonField::Pue => "pue",
            CarbonField::MarketFactor => "market_factor_g_per_kwh",
            CarbonField::Intensity => "intensity_g_per_kwh",
            CarbonField::IntensityFile => "intensity_file",
            CarbonField::EmbodiedKg => "embodied_kg",
            CarbonField::LifetimeYears => "lifetime_years",
            CarbonField::Share => "share",
            CarbonField::UnitCount => "unit_count",
            CarbonField::Embodied => "embodied",
            CarbonField::Energy => "energy.total_j",
            CarbonField::Carbon => "carbon",
        }
    }
}

impl CarbonError {
    /// The message with each field spelled by `name` ([`CarbonField::flag`] or
    /// [`CarbonField::keyword`]).
    pub fn describe(&self, name: fn(CarbonField) -> &'static str) -> String {
        match self {
            CarbonError::UnknownZone(e) => e.to_string(),
            CarbonError::File(e) => e.to_string(),
            CarbonError::NotCovering {
                path,
                file_from,
                file_to,
                run_from,
                run_to,
            } => format!(
                "{} {path}: covers {file_from} to {file_to}, but the run was {run_from} to \
                 {run_to}; give a file that covers the run",
                name(CarbonField::IntensityFile)
            ),
            CarbonError::Invalid { field, source } => format!("{}: {source}", name(*field)),
        }
    }
}

pub(crate) fn check(
    field: CarbonField,
    r: Result<f64, CarbonMathError>,
) -> Result<f64, CarbonError> {
    r.map_err(|source| CarbonError::Invalid { field, source })
}

/// Largest embodied carbon accepted, kgCO2e: a whole rack of GPU servers is about 10^4 kg
/// (NVIDIA's DGX H100 product carbon footprint is about 1,300 kg per server); 10^6 is a hall.
pub const MAX_EMBODIED_KG: f64 = 1e6;
/// Longest hardware lifetime accepted, years (servers are kept 3 to 7).
pub const MAX_LIFETIME_YEARS: f64 = 50.0;
/// Most functional units accepted for SCI (10^18: beyond any deployment's requests).
pub const MAX_UNIT_COUNT: f64 = 1e18;

/// An optional number checked against its physical range, named by its field.
pub(crate) fn ranged(
    field: CarbonField,
    v: Option<f64>,
    min: f64,
    max: f64,
    unit: &'static str,
) -> Result<Option<f64>, CarbonError> {
    v.map(|x| check(field, math::check_range(x, min, max, unit)))
        .transpose()
}

/// An optional strictly positive number up to `max`, named by its field.
pub(crate) fn positive_upto(
    field: CarbonField,
    v: Option<f64>,
    max: f64,
    unit: &'static str,
) -> Result<Option<f64>, CarbonError> {
    match v {
        Some(x) if x == 0.0 => Err(CarbonError::Invalid {
            field,
            source: CarbonMathError::NotPositive {
                name: "value",
                value: x,
            },
        }),
        other => ranged(field, other, 0.0, max, unit),
    }
}

pub(crate) fn math_err(field: CarbonField) -> impl Fn(CarbonMathError) -> CarbonError {
    move |source| CarbonError::Invalid { field, source }
}

pub(crate) fn rfc3339(unix_s: f64) -> String {
    wallclock::rfc3339_utc_auto(unix_s).unwrap_or_else(|| format!("{unix_s} s"))
}

pub(crate) fn now_unix_s() -> f64 {
    jiff::Timestamp::now().as_duration().as_secs_f64()
}

/// The validated numbers of a [`CarbonOptions`].
pub(crate) struct Checked {
    pub(crate) pue_given: Option<f64>,
    pub(crate) market: Option<f64>,
    pub(crate) given_i: Option<f64>,
    pub(crate) embodied_kg: Option<f64>,
    pub(crate) lifetime_years: Option<f64>,
    pub(crate) share: f64,
    pub(crate) units: Option<f64>,
}

pub(crate) fn checked(opts: &CarbonOptions) -> Result<Checked, CarbonError> {
    Ok(Checked {
        pue_given: opts
            .pue
            .map(|p| check(CarbonField::Pue, math::check_pue(p)))
            .transpose()?,
        market: ranged(
            CarbonField::MarketFactor,
            opts.market_factor_g_per_kwh,
            0.0,
            math::MAX_INTENSITY_G_PER_KWH,
            "gCO2e/kWh",
        )?,
        given_i: ranged(
            CarbonField::Intensity,
            opts.intensity_g_per_kwh,
            0.0,
            math::MAX_INTENSITY_G_PER_KWH,
            "gCO2e/kWh",
        )?,
        embodied_kg: ranged(
            CarbonField::EmbodiedKg,
            opts.embodied_kg,
            0.0,
            MAX_EMBODIED_KG,
            "kgCO2e",
        )?,
        lifetime_years: positive_upto(
            CarbonField::LifetimeYears,
            opts.lifetime_years,
            MAX_LIFETIME_YEARS,
            "years",
        )?,
        share: opts
            .share
            .map(|s| check(CarbonField::Share, math::check_share(s)))
            .transpose()?
            .unwrap_or(1.0),
        units: positive_upto(
            CarbonField::UnitCount,
            opts.unit_count,
            MAX_UNIT_COUNT,
            "units",
        )?,
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
