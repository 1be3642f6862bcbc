//! Options shared by several subcommands (SPEC: common options).

use clap::Args;
use std::path::PathBuf;

/// Output: `--json` on stdout, `-o FILE` (format from the extension, or `--format`).
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print the machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the result to FILE (format from its extension).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Carbon options shared by `run`, `import` and `estimate` (see `docs/carbon.md`).
#[derive(Args, Debug, Clone, Default)]
pub struct CarbonArgs {
    /// Grid zone: ISO 3166 alpha-2/alpha-3 (FR, FRA), gcp:REGION, aws:REGION, azure:REGION,
    /// WORLD or EU27. Without one, the World average is used and flagged as a fallback.
    #[arg(long, env = "WATTPRINT_ZONE", value_name = "ZONE")]
    pub zone: Option<String>,
    /// Power usage effectiveness (>= 1). Default: the provider's figure for cloud zones, else
    /// 1.0 with a warning.
    #[arg(long, value_name = "PUE")]
    pub pue: Option<f64>,
    /// Market-based factor in gCO2e/kWh (supplier or residual mix), reported separately.
    #[arg(long = "market-factor", value_name = "G_PER_KWH")]
    pub market_factor: Option<f64>,
    /// CSV of `timestamp,g_per_kwh` rows (hourly or finer): energy is weighed per interval.
    #[arg(long = "intensity-file", value_name = "FILE")]
    pub intensity_file: Option<PathBuf>,
    /// Live intensity, opt-in: electricitymaps, watttime, ukci or carbon-aware-sdk, with an
    /// optional :REGION (keys from the environment; offline factor on failure).
    #[arg(long, value_name = "PROVIDER[:REGION]")]
    pub live: Option<String>,
    /// Embodied carbon of the hardware, kgCO2e (estimate: per device).
    #[arg(long = "embodied-kg", value_name = "KG")]
    pub embodied_kg: Option<f64>,
    /// Hardware lifetime, years (defaults: 4 for servers, 3 for GPUs).
    #[arg(long = "lifetime-years", value_name = "YEARS")]
    pub lifetime_years: Option<f64>,
    /// Share of the machine reserved, 0..1 (default 1).
    #[arg(long, value_name = "SHARE")]
    pub share: Option<f64>,
    /// Functional units R for SCI (default: inferences, else tokens, when declared).
    #[arg(long = "unit-count", value_name = "R")]
    pub unit_count: Option<f64>,
    /// Name of the functional unit, e.g. `request`.
    #[arg(long = "unit-name", value_name = "NAME")]
    pub unit_name: Option<String>,
}

impl CarbonArgs {
    /// The library options; live-provider keys and cache from the environment.
    pub fn to_options(&self) -> Result<wattprint_carbon::CarbonOptions, crate::exit::BadInput> {
        let live = self
            .live
            .as_deref()
            .map(str::parse::<wattprint_carbon::LiveSpec>)
            .transpose()
            .map_err(|e| crate::exit::BadInput(format!("--live: {e}")))?;
        Ok(wattprint_carbon::CarbonOptions {
            zone: self.zone.clone(),
            pue: self.pue,
            market_factor_g_per_kwh: self.market_factor,
            intensity_file: self.intensity_file.clone(),
            live,
            live_config: wattprint_carbon::LiveConfig::from_env(),
            embodied_kg: self.embodied_kg,
            lifetime_years: self.lifetime_years,
            share: self.share,
            unit_count: self.unit_count,
            unit_name: self.unit_name.clone(),
            ..Default::default()
        })
    }
}

/// Carbon errors are all the user's input to fix: exit 2.
pub fn carbon_error(e: wattprint_carbon::CarbonError) -> anyhow::Error {
    crate::exit::BadInput(e.to_string()).into()
}
