//! `wattprint estimate`: the calculator for planning and for checking published figures
//! without measuring: devices x power x time x PUE x intensity, FLOPs -> time at an MFU,
//! embodied share, SCI.

use crate::common::{carbon_error, CarbonArgs};
use crate::exit::BadInput;
use serde_json::json;
use wattprint_carbon::HardwareEmbodied;
use wattprint_core::estimate;
use wattprint_core::report::Work;
use wattprint_core::units::{Grams, Joules};
use wattprint_core::work::{self, Precision};
use wattprint_data::gpu::{self, GpuMatch};

/// Options of `wattprint estimate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of devices.
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub devices: f64,
    /// Average power per device, W.
    #[arg(long = "power-w", value_name = "W", conflicts_with = "utilization")]
    pub power_w: Option<f64>,
    /// GPU model from the hardware table (e.g. V100-SXM2, H100-SXM5-80GB): TDP, peak, embodied.
    #[arg(long, value_name = "MODEL")]
    pub gpu: Option<String>,
    /// Utilisation 0..1 scaling the GPU's TDP when --power-w is not given (default 1).
    #[arg(long, value_name = "U")]
    pub utilization: Option<f64>,
    /// Duration, hours.
    #[arg(long, value_name = "H", conflicts_with_all = ["days", "flops"])]
    pub hours: Option<f64>,
    /// Duration, days.
    #[arg(long, value_name = "D", conflicts_with = "flops")]
    pub days: Option<f64>,
    /// Work in FLOPs: the time is FLOPs / (devices x peak x MFU).
    #[arg(long, value_name = "F", requires = "mfu")]
    pub flops: Option<f64>,
    /// Peak FLOP/s of one device (default: the --gpu's peak at --precision).
    #[arg(long = "peak-flops", value_name = "FLOP_PER_S")]
    pub peak_flops: Option<f64>,
    /// Model FLOPs utilisation 0..1 for --flops.
    #[arg(long, value_name = "U")]
    pub mfu: Option<f64>,
    /// Precision of the peak (bf16, fp16, fp8, tf32, fp32).
    #[arg(long, default_value = "bf16")]
    pub precision: String,
    /// A fixed location-based intensity, gCO2e/kWh, instead of the zone's factor.
    #[arg(long, value_name = "G_PER_KWH")]
    pub intensity: Option<f64>,
    /// Inferences served, for carbon per inference.
    #[arg(long, value_name = "N")]
    pub inferences: Option<f64>,
    /// Tokens processed, for gCO2e per 1k tokens.
    #[arg(long, value_name = "N")]
    pub tokens: Option<f64>,
    #[command(flatten)]
    pub carbon: CarbonArgs,
    /// Print the machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
}

fn bad(msg: String) -> anyhow::Error {
    BadInput(msg).into()
}

/// Physical upper bounds of the options (beyond them the input is a typo or a unit error):
/// 10^7 devices (ten times the largest clusters), 10^5 W per device (a whole rack), a
/// century of run time, 10^18 FLOP/s per device (a thousand times an H100's dense peak),
/// 10^30 FLOPs (see `wattprint_core::work::MAX_FLOPS`), 10^18 inferences or tokens.
const MAX_DEVICES: f64 = 1e7;
const MAX_POWER_W: f64 = 1e5;
const MAX_HOURS: f64 = 100.0 * 365.25 * 24.0;
const MAX_PEAK_FLOPS: f64 = 1e18;
const MAX_COUNT: f64 = 1e18;

fn positive(opt: &str, v: f64, max: f64) -> anyhow::Result<f64> {
    if v.is_finite() && v > 0.0 && v <= max {
        Ok(v)
    } else {
        Err(bad(format!(
            "{opt}: {v} must be a number > 0 and at most {max:e}"
        )))
    }
}

/// The core's estimate error in the command line's terms.
fn estimate_error(e: estimate::EstimateError, precision: Precision) -> anyhow::Error {
    use estimate::EstimateError as E;
    let flag = |f: &str| format!("--{}", f.replace('_', "-"));
    bad(match e {
        E::NotPositive { field, value } => format!("{}: {value} must be a finite number > 0", flag(field)),
        E::Negative { field, value } => format!("{}: {value} must be a finite number >= 0", flag(field)),
        E::NotFraction { field, value } => format!("{}: {value} must be within (0, 1]", flag(field)),
        E::NoPower => "give the power per device: --power-w W, or --gpu MODEL (TDP from the table)".into(),
        E::NoDuration => "give the duration: --hours H, --days D, or --flops F with --mfu U".into(),
        E::NoPeak => format!("--flops needs the device peak: --peak-flops, or a --gpu with a {precision} peak in the table"),
        e @ E::TooLarge { .. } => e.to_string(),
    })
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let devices = positive("--devices", args.devices, MAX_DEVICES)?;
    // Physical ranges, checked where the numbers enter (the core checks signs and zeros).
    for (opt, v, max) in [
        ("--power-w", args.power_w, MAX_POWER_W),
        ("--hours", args.hours, MAX_HOURS),
        ("--days", args.days, MAX_HOURS / 24.0),
        ("--peak-flops", args.peak_flops, MAX_PEAK_FLOPS),
        ("--flops", args.flops, wattprint_core::work::MAX_FLOPS),
    ] {
        if let Some(v) = v.filter(|v| *v > max) {
            return Err(bad(format!("{opt}: {v} must be at most {max:e}")));
        }
    }
    for (opt, v) in [("--inferences", args.inferences), ("--tokens", args.tokens)] {
        if let Some(v) = v {
            if !(v.is_finite() && (0.0..=MAX_COUNT).contains(&v)) {
                return Err(bad(format!(
                    "{opt}: {v} must be a count from 0 to {MAX_COUNT:e}"
                )));
            }
        }
    }
    let precision: Precision = args
        .precision
        .parse()
        .map_err(|e: work::UnknownPrecision| bad(format!("--precision: {e}")))?;
    let spec = match &args.gpu {
        None => None,
        Some(m) => match gpu::lookup(m) {
            GpuMatch::Found { spec, .. } => Some(spec),
            GpuMatch::Unknown { reason } => {
                let known: Vec<&str> = gpu::all().iter().map(|r| r.model).collect();
                return Err(bad(format!(
                    "--gpu: {reason}; known models: {}",
                    known.join(", ")
                )));
            }
        },
    };
    let mut warnings = Vec::new();
    if let Some(s) = spec {
        if !s.is_verified() {
            warnings.push(format!("GPU figures for {}", s.label()));
        }
    }

    let span = match (args.hours, args.days, args.flops) {
        (Some(h), _, _) => Some(estimate::Span::Hours(h)),
        (_, Some(d), _) => Some(estimate::Span::Days(d)),
        (_, _, Some(f)) => Some(estimate::Span::Flops {
            flops: f,
            mfu: args.mfu.unwrap_or(0.0),
        }),
        _ => None,
    };
    let e = estimate::estimate(&estimate::Inputs {
        devices,
        power_w: args.power_w,
        device: spec.map(|s| estimate::Device {
            label: s.label(),
            tdp_w: s.tdp_w,
            peak_flops_per_s: s.peak_tflops(precision).ok().map(|t| t * 1e12),
        }),
        utilization: args.utilization,
        span,
        peak_flops_per_s: args.peak_flops,
    })
    .map_err(|e| estimate_error(e, precision))?;
    let (power_w, power_source) = (e.power_w, e.power_source.clone());
    let (duration_s, duration_source) = (e.duration_s, e.duration_source.clone());
    let it_j = e.it_j;
    let work = Work {
        flops: args.flops,
        inferences: args.inferences,
        tokens: args.tokens,
        flops_formula: args.flops.map(|_| "declared".into()),
        precision: spec.map(|_| precision),
        ..Default::default()
    };

    // Carbon: --embodied-kg is per device here; else the GPU table's figure.
    let mut opts = args.carbon.to_options()?;
    opts.intensity_g_per_kwh = args.intensity;
    if let Some(kg) = opts.embodied_kg.take() {
        opts.hardware = vec![HardwareEmbodied {
            what: args.gpu.clone().unwrap_or_else(|| "device".into()),
            kg,
            count: devices,
            lifetime_years: wattprint_carbon::SERVER_LIFETIME_YEARS,
            source: "given with --embodied-kg".into(),
        }];
        if !(kg.is_finite() && (0.0..=wattprint_carbon::MAX_EMBODIED_KG).contains(&kg)) {
            return Err(bad(format!(
                "--embodied-kg: {kg} must be a number from 0 to {:e} kgCO2e",
                wattprint_carbon::MAX_EMBODIED_KG
            )));
        }
    } else if let Some((s, kg)) = spec.and_then(|s| s.embodied_kgco2e.map(|kg| (s, kg))) {
        opts.hardware = vec![HardwareEmbodied {
            what: s.model.to_string(),
            kg,
            count: devices,
            lifetime_years: wattprint_carbon::GPU_LIFETIME_YEARS,
            source: s.embodied_source.unwrap_or("GPU table").to_string(),
        }];
    }
    let carbon = wattprint_carbon::resolve(&opts, wattprint_carbon::RunTime::new("", duration_s))
        .map_err(carbon_error)?;
    let mut report = wattprint_engine::estimate::report(&e, spec.map(|s| s.model), work, carbon);
    if let Some(c) = report
        .warnings
        .iter()
        .find(|w| w.starts_with("carbon not computed: "))
    {
        return Err(bad(c
            .trim_start_matches("carbon not computed: ")
            .to_string()));
    }
    warnings.append(&mut report.warnings);
    report.warnings = warnings;

    if args.json {
        let v = json!({
            "schema": "wattprint.estimate/v1",
            "duration_s": report.duration_s,
            "duration_source": duration_source,
            "devices": devices,
            "power_w_per_device": power_w,
            "power_source": power_source,
            "energy": report.energy,
            "carbon": report.carbon,
            "work": report.work,
            "metrics": report.metrics,
            "warnings": report.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "estimate   {devices} devices x {power_w} W x {:.1} h ({duration_source}; power {power_source})",
        duration_s / 3600.0
    );
    println!(
        "energy     {} IT, {} facility (PUE {:.2}, {})",
        Joules(it_j),
        Joules(report.energy.facility_j),
        report.energy.pue,
        report.carbon.pue_source.as_deref().unwrap_or("")
    );
    for l in wattprint_carbon::summary_lines(&report) {
        println!("{l}");
    }
    let m = &report.metrics;
    if let Some(v) = m.carbon_per_inference_g {
        println!("           {} CO2e per inference", Grams(v));
    }
    if let Some(v) = m.carbon_per_1k_tokens_g {
        println!("           {} CO2e per 1k tokens", Grams(v));
    }
    if let (Some(v), Some(u)) = (m.sci_g_per_unit, &m.sci_unit) {
        println!(
            "SCI        {} CO2e per {}",
            Grams(v),
            crate::common::escape(u)
        );
    }
    if let (Some(a), Some(p)) = (m.flops_per_watt, m.peak_flops_per_watt) {
        println!("FLOPs/W    {a:.3e} achieved, {p:.3e} peak at {precision}");
    }
    for w in &report.warnings {
        eprintln!("warning: {}", crate::common::escape(w));
    }
    Ok(0)
}
