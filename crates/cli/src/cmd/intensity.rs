//! `wattprint intensity ZONE [--json]`: the carbon intensity wattprint would use for a zone,
//! with its provenance (source, licence, year, basis) and, for cloud zones, the PUE default.

use serde_json::json;
use wattprint_data::cloud;

/// Options of `wattprint intensity`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// ISO 3166 alpha-2/alpha-3 (FR, FRA), gcp:REGION, aws:REGION, azure:REGION, WORLD, EU27.
    #[arg(value_name = "ZONE", required_unless_present = "list")]
    pub zone: Option<String>,
    /// Print the machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// List every known zone with its intensity.
    #[arg(long)]
    pub list: bool,
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
    let pue = zone.provider().map(cloud::pue_default);
    let cfe = match &zone {
        wattprint_carbon::Zone::Cloud {
            provider: cloud::Provider::Gcp,
            region,
        } => cloud::gcp_cfe_share(region),
        _ => None,
    };
    let scope2 = f.basis == wattprint_data::grid::Basis::Direct;
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
