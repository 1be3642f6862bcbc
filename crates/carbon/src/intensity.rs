//! The intensity a report uses: the zone's embedded factor, a given value, or a live provider, with provenance.

use crate::*;

/// The intensity used: value and provenance.
pub(crate) struct Used {
    pub(crate) zone: String,
    pub(crate) g_per_kwh: f64,
    pub(crate) source: String,
    pub(crate) year: Option<i32>,
    pub(crate) basis: String,
    pub(crate) licence: Option<String>,
    pub(crate) fallback: bool,
}

impl Used {
    pub(crate) fn from_factor(f: &IntensityFactor) -> Self {
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
pub(crate) fn live_region(spec: &LiveSpec, zone: Option<&Zone>) -> Option<String> {
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
