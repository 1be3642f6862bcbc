//! `wattprint intensity ZONE [--json]`: the carbon intensity wattprint would use for a zone,
//! with its provenance (source, licence, year, basis) and, for cloud zones, the PUE default.

use serde_json::json;
use wattprint_data::cloud;

/// Options of `wattprint intensity`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// ISO 3166 alpha-2/alpha-3 (FR, FRA), a subdivision (US-VA, CA-ON, AU-NSW, IN-KA, CN-BJ),
    /// an eGRID subregion (us-egrid:SRVC), an Electricity Maps zone (US-CAL-CISO),
    /// gcp:REGION, aws:REGION, azure:REGION, WORLD, EU27.
    #[arg(value_name = "ZONE", required_unless_present = "list")]
    pub zone: Option<String>,
    /// Print the machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// List every known zone with its intensity.
    #[arg(long)]
    pub list: bool,
    /// Ask a live provider (electricitymaps, watttime, ukci, carbon-aware-sdk, with an optional
    /// :REGION); on failure the embedded factor is printed and the warning says why.
    #[arg(long, value_name = "PROVIDER[:REGION]")]
    pub live: Option<String>,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    if args.list {
        for z in wattprint_carbon::zone::known_zones() {
            if let Ok((_, f)) = wattprint_carbon::zone::resolve(&z) {
                println!(
                    "{:<32} {:>8.1} g/kWh  {}  {}",
                    f.zone, f.g_per_kwh, f.year, f.name
                );
            }
        }
        return Ok(0);
    }
    let text = args.zone.unwrap_or_default();
    let (zone, f) =
        wattprint_carbon::zone::resolve(&text).map_err(|e| crate::exit::BadInput(e.to_string()))?;
    if let Some(live) = &args.live {
        return live_main(&text, live, args.json);
    }
    let pue = zone.provider().map(cloud::pue_default);
    let cfe = match &zone {
        wattprint_carbon::Zone::Cloud {
            provider: cloud::Provider::Gcp,
            region,
        } => cloud::gcp_cfe_share(region),
        _ => None,
    };
    let scope2 = f.basis == wattprint_core::report::CarbonBasis::Direct;
    if args.json {
        let v = json!({
            "zone": f.zone,
            "name": f.name,
            "intensity_g_per_kwh": f.g_per_kwh,
            "unit": f.unit,
            "year": f.year,
            "source": f.source,
            "licence": f.licence,
            "basis": f.basis.as_str(),
            "method": "location",
            "scope2_basis": scope2,
            "pue_default": pue.map(|p| json!({"pue": p.pue, "year": p.year, "source": p.source})),
            "google_cfe_share": cfe,
            "note": f.note,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("{}  {}", f.zone, f.name);
    println!(
        "  {:.1} {} ({}), {} basis, location-based{}",
        f.g_per_kwh,
        f.unit,
        f.year,
        f.basis,
        if scope2 {
            ""
        } else {
            " (lifecycle: not a Scope 2 factor)"
        }
    );
    println!("  source: {}; licence {}", f.source, f.licence);
    if let Some(n) = &f.note {
        println!("  note: {n}");
    }
    if let Some(p) = pue {
        println!("  PUE default {} ({}, {})", p.pue, p.source, p.year);
    }
    if let Some(c) = cfe {
        println!(
            "  Google carbon-free energy share {:.0} % (2024)",
            c * 100.0
        );
    }
    Ok(0)
}

/// `--live`: the provider's current intensity for the zone, or the stated offline fallback.
fn live_main(zone: &str, live: &str, json_out: bool) -> anyhow::Result<u8> {
    let carbon = crate::common::CarbonArgs {
        zone: Some(zone.to_string()),
        live: Some(live.to_string()),
        pue: Some(1.0),
        ..Default::default()
    };
    let opts = carbon.to_options()?;
    // The live provider is asked about now.
    let c = wattprint_carbon::resolve(&opts, wattprint_carbon::RunTime::default())
        .map_err(crate::common::carbon_error)?;
    let warnings: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.starts_with("live intensity"))
        .collect();
    if json_out {
        let v = json!({
            "zone": c.zone(),
            "intensity_g_per_kwh": c.intensity_g_per_kwh(),
            "year": c.intensity_year(),
            "source": c.intensity_source(),
            "basis": c.basis(),
            "method": "location",
            "live_fallback": !warnings.is_empty(),
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        // The zone is the user's, the source and warnings may quote a provider's answer.
        println!(
            "{}  {:.1} gCO2e/kWh, {} basis: {}",
            crate::common::escape(c.zone()),
            c.intensity_g_per_kwh(),
            c.basis(),
            crate::common::escape(c.intensity_source())
        );
        for w in warnings {
            eprintln!("warning: {}", crate::common::escape(w));
        }
    }
    Ok(0)
}
