//! Grid carbon intensity per country (ISO 3166-1) and the World / EU-27 aggregates.
//!
//! Source: Ember (2025), Yearly Electricity Data; processed by Our World in Data (CC BY 4.0).
//! The latest year available for each country is kept with its year. Basis: lifecycle
//! emissions of the production mix: fit for SCI and footprints, NOT a Scope 2 (direct) factor.

use crate::tables;
use wattprint_core::report::CarbonBasis;

/// Unit of every intensity factor here.
pub const INTENSITY_UNIT: &str = "gCO2e/kWh";

pub const EMBER_SOURCE: &str =
    "Ember (2025), Yearly Electricity Data; processed by Our World in Data";
pub const EMBER_LICENCE: &str = "CC BY 4.0";

/// An embedded carbon-intensity factor with its provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct IntensityFactor {
    /// Canonical zone id, e.g. `FR`, `gcp:europe-west1`, `WORLD`.
    pub zone: String,
    /// Human name of the area, e.g. `France`, `Belgium (gcp europe-west1)`.
    pub name: String,
    pub g_per_kwh: f64,
    /// Always [`INTENSITY_UNIT`].
    pub unit: &'static str,
    pub basis: CarbonBasis,
    /// Vintage: the year the factor describes.
    pub year: i32,
    pub source: &'static str,
    pub licence: &'static str,
    /// What a reader must know to use the factor well (a choice made, a caveat of the
    /// dataset), printed with it; `None` when there is nothing to add.
    pub note: Option<String>,
}

/// One country of the ISO 3166-1 list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoCountry {
    pub alpha2: &'static str,
    pub alpha3: &'static str,
    pub name: &'static str,
}

/// Every ISO 3166-1 country (plus `XK`/`XKX` Kosovo), whether or not it has intensity data.
pub fn iso_countries() -> impl Iterator<Item = IsoCountry> {
    tables::ISO_CODES
        .iter()
        .map(|&(alpha2, alpha3, name)| IsoCountry {
            alpha2,
            alpha3,
            name,
        })
}

/// The ISO country for an alpha-2 or alpha-3 code (case-insensitive).
pub fn iso_country(code: &str) -> Option<IsoCountry> {
    iso_countries()
        .find(|c| c.alpha2.eq_ignore_ascii_case(code) || c.alpha3.eq_ignore_ascii_case(code))
}

fn country_factor(row: &(&str, &str, &str, f64, i32)) -> IntensityFactor {
    let &(alpha2, _alpha3, name, g_per_kwh, year) = row;
    IntensityFactor {
        zone: alpha2.to_string(),
        name: name.to_string(),
        g_per_kwh,
        unit: INTENSITY_UNIT,
        basis: CarbonBasis::Lifecycle,
        year,
        source: EMBER_SOURCE,
        licence: EMBER_LICENCE,
        note: None,
    }
}

/// The latest lifecycle intensity of a country, by ISO alpha-2 or alpha-3 code
/// (case-insensitive). The factor's `zone` is the alpha-2 code.
pub fn country(code: &str) -> Option<IntensityFactor> {
    tables::COUNTRY_INTENSITY
        .iter()
        .find(|r| r.0.eq_ignore_ascii_case(code) || r.1.eq_ignore_ascii_case(code))
        .map(country_factor)
}

/// Every country with intensity data, as factors (zone = alpha-2).
pub fn countries() -> impl Iterator<Item = IntensityFactor> {
    tables::COUNTRY_INTENSITY.iter().map(country_factor)
}

/// The World average: the fallback when no zone is known (Ember 2024: 473 g/kWh).
pub fn world() -> IntensityFactor {
    let (g_per_kwh, year) = tables::WORLD_INTENSITY;
    IntensityFactor {
        zone: "WORLD".into(),
        name: "World".into(),
        g_per_kwh,
        unit: INTENSITY_UNIT,
        basis: CarbonBasis::Lifecycle,
        year,
        source: EMBER_SOURCE,
        licence: EMBER_LICENCE,
        note: None,
    }
}

/// The European Union (27 members) average.
pub fn eu27() -> IntensityFactor {
    let (g_per_kwh, year) = tables::EU27_INTENSITY;
    IntensityFactor {
        zone: "EU27".into(),
        name: "European Union (27)".into(),
        g_per_kwh,
        unit: INTENSITY_UNIT,
        basis: CarbonBasis::Lifecycle,
        year,
        source: EMBER_SOURCE,
        licence: EMBER_LICENCE,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn france_and_germany_have_their_2024_ember_values() {
        let fr = country("FR").unwrap();
        assert_eq!(fr.zone, "FR");
        assert_eq!(fr.year, 2024);
        assert_eq!(fr.g_per_kwh, 44.179085);
        assert_eq!(fr.basis, CarbonBasis::Lifecycle);
        let de = country("deu").unwrap();
        assert_eq!(de.zone, "DE");
        assert!(
            de.g_per_kwh > 250.0 && de.g_per_kwh < 450.0,
            "{}",
            de.g_per_kwh
        );
    }

    #[test]
    fn world_is_the_473_fallback_of_2024() {
        let w = world();
        assert_eq!(w.year, 2024);
        assert_eq!(w.g_per_kwh.round(), 473.0);
    }

    #[test]
    fn eu27_aggregate_is_present() {
        let eu = eu27();
        assert!(eu.year >= 2023);
        assert!(eu.g_per_kwh > 100.0 && eu.g_per_kwh < 400.0);
    }

    #[test]
    fn alpha2_and_alpha3_map_both_ways() {
        let c = iso_country("gb").unwrap();
        assert_eq!(c.alpha3, "GBR");
        assert_eq!(iso_country("USA").unwrap().alpha2, "US");
        assert_eq!(country("XK").unwrap().zone, "XK");
        assert!(iso_country("ZZ").is_none());
    }

    #[test]
    fn every_country_factor_is_finite_and_non_negative() {
        let n = countries()
            .inspect(|f| assert!(f.g_per_kwh.is_finite() && f.g_per_kwh >= 0.0, "{f:?}"))
            .count();
        assert!(n > 200, "{n}");
    }
}
