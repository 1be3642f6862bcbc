//! Carbon lines of the terminal summary.

use crate::*;

/// Summary lines for the terminal: operational, embodied and total carbon with the zone, the
/// factor's source and vintage, the basis and the method.
pub fn summary_lines(report: &RunReport) -> Vec<String> {
    let c = &report.carbon;
    let basis = match &c.basis {
        CarbonBasis::Lifecycle => "lifecycle basis, not a Scope 2 factor".to_string(),
        CarbonBasis::Direct => "direct basis".to_string(),
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
        format!(
            "           {} CO2e total{}",
            Grams(c.total_g),
            match (c.total_g_low, c.total_g_high) {
                (Some(lo), Some(hi)) if lo < hi => format!(
                    " ({}, from the energy's range; the factor publishes no uncertainty)",
                    wattprint_core::bounds::range_text(lo, hi, |g| Grams(g).to_string())
                ),
                _ => String::new(),
            }
        ),
    ];
    if let (Some(g), Some(f)) = (c.market_operational_g, c.market_factor_g_per_kwh) {
        v.push(format!(
            "           {} CO2e operational, market-based ({f} gCO2e/kWh given)",
            Grams(g)
        ));
    }
    v
}
