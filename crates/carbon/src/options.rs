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

pub(crate) fn check(
    option: &'static str,
    r: Result<f64, CarbonMathError>,
) -> Result<f64, CarbonError> {
    r.map_err(|source| CarbonError::Invalid { option, source })
}

pub(crate) fn non_negative(
    option: &'static str,
    v: Option<f64>,
) -> Result<Option<f64>, CarbonError> {
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

pub(crate) fn positive(option: &'static str, v: Option<f64>) -> Result<Option<f64>, CarbonError> {
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

pub(crate) fn math_err(option: &'static str) -> impl Fn(CarbonMathError) -> CarbonError {
    move |source| CarbonError::Invalid { option, source }
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
