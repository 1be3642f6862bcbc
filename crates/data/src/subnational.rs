//! Subnational grid factors, where a country average misleads: US eGRID2023 subregions and
//! states, Canadian provinces, Australian states, Indian states and Chinese provinces; and the
//! grid each AWS/Azure region draws from.
//!
//! Every factor keeps its dataset's basis, year and licence (see `data/NOTICE.md`):
//!
//! | zones | dataset | basis | licence |
//! |---|---|---|---|
//! | `us-egrid:SRVC` | US EPA eGRID2023 rev2, Table 1 (subregion total output rates, CO2e, AR5 GWPs) | direct | public domain |
//! | `US-VA` | US EPA eGRID2023 rev2, Table 3 (state total output rates) | direct | public domain |
//! | `CA-ON` | ECCC National Inventory Report 1990-2022, Annex 13 (consumption intensity) | direct | OGL-Canada 2.0 |
//! | `AU-NSW` | DCCEEW NGA Factors (latest edition), Table 1 location-based scope 2 | direct | CC BY 4.0 |
//! | `IN-KA` | Ember, India Electricity Data (state CO2 intensity) | lifecycle | CC BY 4.0 |
//! | `CN-BJ` | MEE & NBS Announcement 2025 No. 47, Table 3 (via CodeCarbon 3.3.2; CO2 only) | direct | MIT (CodeCarbon file) |
//!
//! Cloud regions map to their grid through `data/cloud-regions.csv` (our subdivision and eGRID
//! subregion per region, checked at build time against Cloud Carbon Footprint's region table
//! `data/cloud-regions-grid.csv`, whose Electricity Maps zones are kept for mapping only: its
//! factors are old and of mixed basis, and are never used as values).

use crate::grid::{IntensityFactor, INTENSITY_UNIT};
use wattprint_core::report::CarbonBasis;

mod tables {
    include!(concat!(env!("OUT_DIR"), "/subnational_tables.rs"));
}

pub const EGRID_SUBREGION_SOURCE: &str =
    "US EPA, eGRID2023 rev2 (2025), Table 1 subregion total output emission rates";
pub const EGRID_STATE_SOURCE: &str =
    "US EPA, eGRID2023 rev2 (2025), Table 3 state total output emission rates";
pub const EGRID_LICENCE: &str = "public domain (US Government work)";
pub const ECCC_SOURCE: &str =
    "ECCC, National Inventory Report 1990-2022, Annex 13 (electricity consumption intensity)";
pub const ECCC_LICENCE: &str = "Open Government Licence - Canada 2.0 (contains information licensed under the Open Government Licence - Canada)";
pub const NGA_SOURCE: &str =
    "DCCEEW, Australian National Greenhouse Accounts Factors, Table 1 location-based scope 2";
pub const NGA_LICENCE: &str = "CC BY 4.0, Commonwealth of Australia (DCCEEW)";
pub const EMBER_INDIA_SOURCE: &str = "Ember, India Electricity Data (state CO2 intensity)";
pub const EMBER_INDIA_LICENCE: &str = "CC BY 4.0";
pub const CHINA_SOURCE: &str =
    "MEE & NBS Announcement 2025 No. 47, Table 3, provincial average CO2 factors (via CodeCarbon 3.3.2)";
pub const CHINA_LICENCE: &str =
    "MIT (CodeCarbon data file); the announcement states no licence (official notice)";

/// Why `aws:us-east-1` and other US cloud regions take their eGRID subregion rather than their
/// state's rate (printed with the factor).
pub const SUBREGION_OVER_STATE: &str = "eGRID subregion chosen over the state rate: EPA and the GHG Protocol Scope 2 Guidance recommend eGRID subregion output rates for location-based Scope 2, because a subregion approximates the grid a load draws from, whereas a state rate counts only the generators inside the state's borders (imports are missed)";

/// An eGRID subregion's factor (`SRVC`, case-insensitive; `US` is the eGRID US total); zone
/// `us-egrid:CODE`. Direct (combustion) CO2e, generation-based, Scope 2 grade.
pub fn egrid_subregion(code: &str) -> Option<IntensityFactor> {
    tables::EGRID_SUBREGIONS
        .iter()
        .find(|r| r.0.eq_ignore_ascii_case(code))
        .map(|&(code, name, g_per_kwh, year, edition)| IntensityFactor {
            zone: format!("us-egrid:{code}"),
            name: format!("{name} (eGRID subregion {code}, {edition})"),
            g_per_kwh,
            unit: INTENSITY_UNIT,
            basis: CarbonBasis::Direct,
            year,
            source: EGRID_SUBREGION_SOURCE,
            licence: EGRID_LICENCE,
            note: None,
        })
}

/// Every eGRID subregion code (27 and `US`).
pub fn egrid_subregions() -> impl Iterator<Item = &'static str> {
    tables::EGRID_SUBREGIONS.iter().map(|r| r.0)
}

/// India: ISO 3166-2 suffixes that differ from Ember's state codes (ISO's current code first).
const INDIA_ALIASES: &[(&str, &str)] = &[("OD", "OR"), ("TS", "TG"), ("UK", "UT"), ("CG", "CT")];

/// The factor of a subdivision, by ISO 3166-2 code (case-insensitive): `US-VA` (eGRID state,
/// also `US-DC`, `US-PR`), `CA-ON`, `AU-NSW`, `IN-KA`, `CN-BJ`. `AU-WA` is the South West
/// Interconnected System (Perth; the North West system is the smaller grid), `AU-ACT` shares the
/// NSW row, `CA-PE` takes New Brunswick's consumption intensity as the source directs.
pub fn subdivision(code: &str) -> Option<IntensityFactor> {
    let code = code.trim().to_ascii_uppercase();
    let (country, sub) = code.split_once('-')?;
    match country {
        "US" => tables::EGRID_STATES
            .iter()
            .find(|r| r.0 == sub && sub != "US")
            .map(|&(st, g_per_kwh, year, edition)| IntensityFactor {
                zone: format!("US-{st}"),
                name: format!("{} (eGRID state rate, {edition})", us_state_name(st)),
                g_per_kwh,
                unit: INTENSITY_UNIT,
                basis: CarbonBasis::Direct,
                year,
                source: EGRID_STATE_SOURCE,
                licence: EGRID_LICENCE,
                note: Some("a state rate counts the generators inside the state; prefer the eGRID subregion (us-egrid:CODE) when known".into()),
            }),
        "CA" => tables::CA_PROVINCES
            .iter()
            .find(|r| r.0 == code)
            .map(|&(c, name, g_per_kwh, year, prelim, note)| IntensityFactor {
                zone: c.to_string(),
                name: format!(
                    "{name} (ECCC consumption intensity{})",
                    if prelim { ", preliminary" } else { "" }
                ),
                g_per_kwh,
                unit: INTENSITY_UNIT,
                basis: CarbonBasis::Direct,
                year,
                source: ECCC_SOURCE,
                licence: ECCC_LICENCE,
                note: (!note.is_empty()).then(|| note.to_string()),
            }),
        "AU" => tables::AU_STATES
            .iter()
            .find(|r| r.0.split(';').any(|c| c == code))
            .map(|&(_, label, grid, g_per_kwh, edition)| IntensityFactor {
                zone: code.clone(),
                name: format!("{label} ({grid} grid, NGA Factors {edition} edition)"),
                g_per_kwh,
                unit: INTENSITY_UNIT,
                basis: CarbonBasis::Direct,
                year: edition,
                source: NGA_SOURCE,
                licence: NGA_LICENCE,
                note: Some(format!(
                    "year is the NGA edition ({edition}); the workbook does not state its data year; scope 3 factors are not added"
                )),
            }),
        "IN" => {
            let ember = INDIA_ALIASES
                .iter()
                .find(|a| a.0 == sub)
                .map_or(sub, |a| a.1);
            tables::IN_STATES
                .iter()
                .find(|r| r.0 == ember && r.0 != "IN")
                .map(|&(_, name, g_per_kwh, year)| IntensityFactor {
                    zone: code.clone(),
                    name: format!("{name} (India state power sector)"),
                    g_per_kwh,
                    unit: INTENSITY_UNIT,
                    basis: CarbonBasis::Lifecycle,
                    year,
                    source: EMBER_INDIA_SOURCE,
                    licence: EMBER_INDIA_LICENCE,
                    note: Some("production in the state, lifecycle basis: not a Scope 2 factor, and not comparable with the Ember/OWID country file".into()),
                })
        }
        "CN" => tables::CN_PROVINCES
            .iter()
            .find(|r| r.0 == code)
            .map(|&(iso, name, g_per_kwh, year)| IntensityFactor {
                zone: iso.to_string(),
                name: format!("{name} (provincial average, CO2 only)"),
                g_per_kwh,
                unit: INTENSITY_UNIT,
                basis: CarbonBasis::Direct,
                year,
                source: CHINA_SOURCE,
                licence: CHINA_LICENCE,
                note: Some("CO2 only (no CH4/N2O); accounts for inter-provincial transfers".into()),
            }),
        _ => None,
    }
}

/// Every subdivision code with data, as accepted by [`subdivision`] (canonical spelling).
pub fn subdivision_codes() -> Vec<String> {
    let mut v: Vec<String> = tables::EGRID_STATES
        .iter()
        .filter(|r| r.0 != "US")
        .map(|r| format!("US-{}", r.0))
        .collect();
    v.extend(
        tables::CA_PROVINCES
            .iter()
            .filter(|r| r.0 != "CA")
            .map(|r| r.0.to_string()),
    );
    for r in tables::AU_STATES {
        for c in r.0.split(';') {
            if c.contains('-') && !v.iter().any(|x| x == c) {
                v.push(c.to_string());
            }
        }
    }
    v.extend(tables::IN_STATES.iter().filter(|r| r.0 != "IN").map(|r| {
        let iso = INDIA_ALIASES
            .iter()
            .find(|a| a.1 == r.0)
            .map_or(r.0, |a| a.0);
        format!("IN-{iso}")
    }));
    v.extend(tables::CN_PROVINCES.iter().map(|r| r.0.to_string()));
    v
}

/// Every subnational factor: eGRID subregions (`us-egrid:CODE`) then subdivisions.
pub fn all() -> Vec<IntensityFactor> {
    egrid_subregions()
        .filter_map(egrid_subregion)
        .chain(subdivision_codes().iter().filter_map(|c| subdivision(c)))
        .collect()
}

/// Electricity Maps' US zones (balancing authorities) that lie within one eGRID subregion,
/// mapped to it (eGRID assigns each balancing authority's plants to subregions; a zone spanning
/// several is in [`EM_US_AMBIGUOUS`]).
pub const EM_US_ZONES: &[(&str, &str)] = &[
    ("US-CAL-CISO", "CAMX"),
    ("US-CAL-LDWP", "CAMX"),
    ("US-CAL-BANC", "CAMX"),
    ("US-CAL-IID", "CAMX"),
    ("US-TEX-ERCO", "ERCT"),
    ("US-NE-ISNE", "NEWE"),
    ("US-FLA-FPL", "FRCC"),
    ("US-FLA-FPC", "FRCC"),
    ("US-FLA-TEC", "FRCC"),
    ("US-FLA-JEA", "FRCC"),
    ("US-SE-SOCO", "SRSO"),
    ("US-TEN-TVA", "SRTV"),
    ("US-CAR-DUK", "SRVC"),
    ("US-CAR-CPLE", "SRVC"),
    ("US-CAR-SCEG", "SRVC"),
    ("US-CAR-SC", "SRVC"),
    ("US-NW-BPAT", "NWPP"),
    ("US-NW-PACW", "NWPP"),
    ("US-NW-PACE", "NWPP"),
    ("US-NW-NEVP", "NWPP"),
    ("US-NW-PSEI", "NWPP"),
    ("US-NW-SCL", "NWPP"),
    ("US-NW-PGE", "NWPP"),
    ("US-SW-AZPS", "AZNM"),
    ("US-SW-SRP", "AZNM"),
    ("US-SW-TEPC", "AZNM"),
    ("US-SW-PNM", "AZNM"),
    ("US-HI-OA", "HIOA"),
];

/// Electricity Maps' US zones that span several eGRID subregions: (zone, subregions).
pub const EM_US_AMBIGUOUS: &[(&str, &[&str])] = &[
    ("US-MIDA-PJM", &["RFCE", "RFCW", "SRVC"]),
    (
        "US-MIDW-MISO",
        &["MROW", "MROE", "RFCM", "SRMW", "SRMV", "SPSO"],
    ),
    ("US-NY-NYIS", &["NYUP", "NYCW", "NYLI"]),
    ("US-CENT-SWPP", &["SPNO", "SPSO", "MROW"]),
];

/// Electricity Maps zones named in Cloud Carbon Footprint's region table (mapping only).
pub fn ccf_electricity_maps_zones() -> impl Iterator<Item = &'static str> {
    tables::CCF_REGIONS
        .iter()
        .map(|r| r.3)
        .filter(|z| !z.is_empty())
}

/// The grid a cloud region draws from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudGrid {
    /// ISO 3166-2 subdivision of the data centres (`US-VA`), when known.
    pub subdivision: Option<&'static str>,
    /// eGRID subregion (`SRVC`), for US regions whose utility is known.
    pub egrid_subregion: Option<&'static str>,
    /// Electricity Maps zone from Cloud Carbon Footprint's table (`US-MIDA-PJM`), for live
    /// look-ups; `None` when CCF lists none.
    pub electricity_maps_zone: Option<&'static str>,
}

/// The grid of an AWS or Azure region (`provider` is `aws` or `azure`; region
/// case-insensitive), or `None` for an unknown region.
pub fn cloud_grid(provider: &str, region: &str) -> Option<CloudGrid> {
    let r = crate::tables::CLOUD_REGIONS
        .iter()
        .find(|r| r.0 == provider && r.1.eq_ignore_ascii_case(region))?;
    let em = tables::CCF_REGIONS
        .iter()
        .find(|c| c.0 == provider && c.1.eq_ignore_ascii_case(region))
        .map(|c| c.3)
        .filter(|z| !z.is_empty());
    Some(CloudGrid {
        subdivision: (!r.4.is_empty()).then_some(r.4),
        egrid_subregion: (!r.5.is_empty()).then_some(r.5),
        electricity_maps_zone: em,
    })
}

fn us_state_name(code: &str) -> &'static str {
    const NAMES: &[(&str, &str)] = &[
        ("AK", "Alaska"),
        ("AL", "Alabama"),
        ("AR", "Arkansas"),
        ("AZ", "Arizona"),
        ("CA", "California"),
        ("CO", "Colorado"),
        ("CT", "Connecticut"),
        ("DC", "District of Columbia"),
        ("DE", "Delaware"),
        ("FL", "Florida"),
        ("GA", "Georgia"),
        ("HI", "Hawaii"),
        ("IA", "Iowa"),
        ("ID", "Idaho"),
        ("IL", "Illinois"),
        ("IN", "Indiana"),
        ("KS", "Kansas"),
        ("KY", "Kentucky"),
        ("LA", "Louisiana"),
        ("MA", "Massachusetts"),
        ("MD", "Maryland"),
        ("ME", "Maine"),
        ("MI", "Michigan"),
        ("MN", "Minnesota"),
        ("MO", "Missouri"),
        ("MS", "Mississippi"),
        ("MT", "Montana"),
        ("NC", "North Carolina"),
        ("ND", "North Dakota"),
        ("NE", "Nebraska"),
        ("NH", "New Hampshire"),
        ("NJ", "New Jersey"),
        ("NM", "New Mexico"),
        ("NV", "Nevada"),
        ("NY", "New York"),
        ("OH", "Ohio"),
        ("OK", "Oklahoma"),
        ("OR", "Oregon"),
        ("PA", "Pennsylvania"),
        ("PR", "Puerto Rico"),
        ("RI", "Rhode Island"),
        ("SC", "South Carolina"),
        ("SD", "South Dakota"),
        ("TN", "Tennessee"),
        ("TX", "Texas"),
        ("UT", "Utah"),
        ("VA", "Virginia"),
        ("VT", "Vermont"),
        ("WA", "Washington"),
        ("WI", "Wisconsin"),
        ("WV", "West Virginia"),
        ("WY", "Wyoming"),
    ];
    NAMES
        .iter()
        .find(|n| n.0 == code)
        .map_or("US state", |n| n.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rows(file: &str) -> usize {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/");
        let text = std::fs::read_to_string(format!("{path}{file}")).unwrap();
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    #[test]
    fn every_egrid_row_loads_with_its_value() {
        assert_eq!(
            tables::EGRID_SUBREGIONS.len(),
            csv_rows("grid-us-egrid2023-subregions.csv")
        );
        assert_eq!(tables::EGRID_SUBREGIONS.len(), 28);
        for code in egrid_subregions() {
            let f = egrid_subregion(code).unwrap();
            assert_eq!(f.year, 2023);
            assert_eq!(f.basis, CarbonBasis::Direct);
            assert!(f.g_per_kwh > 50.0 && f.g_per_kwh < 1000.0, "{f:?}");
        }
        let srvc = egrid_subregion("srvc").unwrap();
        assert_eq!(srvc.zone, "us-egrid:SRVC");
        assert_eq!(srvc.g_per_kwh, 270.489);
        assert!(srvc.name.contains("SERC Virginia/Carolina"));
    }

    #[test]
    fn every_state_row_loads() {
        assert_eq!(tables::EGRID_STATES.len(), csv_rows("grid-us-states.csv"));
        assert_eq!(tables::EGRID_STATES.len(), 53);
        for r in tables::EGRID_STATES.iter().filter(|r| r.0 != "US") {
            let f = subdivision(&format!("us-{}", r.0)).unwrap();
            assert_eq!(f.g_per_kwh, r.1);
            assert_ne!(f.name, "US state", "{}", r.0);
        }
        let va = subdivision("US-VA").unwrap();
        assert_eq!(va.g_per_kwh, 244.758);
        assert!(va.name.starts_with("Virginia"));
        assert!(subdivision("US-US").is_none());
    }

    #[test]
    fn canada_takes_the_latest_consumption_intensity() {
        // 13 provinces and territories + Canada; latest year 2022 (preliminary).
        assert_eq!(tables::CA_PROVINCES.len(), 14);
        let on = subdivision("ca-on").unwrap();
        assert_eq!((on.g_per_kwh, on.year), (38.0, 2022));
        assert!(on.name.contains("preliminary"));
        let qc = subdivision("CA-QC").unwrap();
        assert_eq!(qc.g_per_kwh, 1.7);
        let pe = subdivision("CA-PE").unwrap();
        assert_eq!(pe.g_per_kwh, subdivision("CA-NB").unwrap().g_per_kwh);
        assert!(pe.note.unwrap().contains("New Brunswick"));
        // Every year of every region parses (the build checks the numbers): 280 rows.
        assert_eq!(csv_rows("grid-ca-provinces.csv"), 280);
    }

    #[test]
    fn australia_takes_the_2025_edition() {
        assert_eq!(csv_rows("grid-au-states.csv"), 45);
        let nsw = subdivision("AU-NSW").unwrap();
        assert_eq!((nsw.g_per_kwh, nsw.year), (640.0, 2025));
        assert_eq!(subdivision("AU-ACT").unwrap().g_per_kwh, 640.0);
        let wa = subdivision("AU-WA").unwrap();
        assert!(wa.name.contains("SWIS"), "{}", wa.name);
        assert_eq!(wa.g_per_kwh, 500.0);
        for c in ["AU-VIC", "AU-QLD", "AU-SA", "AU-TAS", "AU-NT"] {
            assert!(subdivision(c).is_some(), "{c}");
        }
    }

    #[test]
    fn india_and_china_load_every_state() {
        let f = subdivision("IN-KA").unwrap();
        assert_eq!((f.g_per_kwh, f.year), (405.66, 2023));
        assert_eq!(f.basis, CarbonBasis::Lifecycle);
        assert_eq!(subdivision("IN-OD").unwrap().g_per_kwh, 742.64);
        assert_eq!(subdivision("IN-OR").unwrap().g_per_kwh, 742.64);
        // 36 states/UTs (India Total and Others are not subdivisions).
        assert_eq!(
            subdivision_codes()
                .iter()
                .filter(|c| c.starts_with("IN-"))
                .count(),
            36
        );
        assert_eq!(
            tables::CN_PROVINCES.len(),
            csv_rows("grid-cn-provinces.csv")
        );
        let bj = subdivision("cn-bj").unwrap();
        assert_eq!((bj.g_per_kwh, bj.year), (555.4, 2023));
    }

    #[test]
    fn every_listed_code_resolves_and_is_plausible() {
        let all = all();
        assert_eq!(all.len(), 28 + subdivision_codes().len());
        for f in &all {
            assert!(f.g_per_kwh.is_finite() && f.g_per_kwh >= 0.0, "{f:?}");
            assert!(f.year >= 2022, "{f:?}");
            assert!(!f.source.is_empty() && !f.licence.is_empty());
        }
    }

    #[test]
    fn ccf_table_loads_every_row() {
        assert_eq!(
            tables::CCF_REGIONS.len(),
            csv_rows("cloud-regions-grid.csv")
        );
        assert!(ccf_electricity_maps_zones().any(|z| z == "US-MIDA-PJM"));
    }

    #[test]
    fn cloud_regions_map_to_their_grid() {
        let g = cloud_grid("aws", "us-east-1").unwrap();
        assert_eq!(g.subdivision, Some("US-VA"));
        assert_eq!(g.egrid_subregion, Some("SRVC"));
        assert_eq!(g.electricity_maps_zone, Some("US-MIDA-PJM"));
        let g = cloud_grid("azure", "CanadaCentral").unwrap();
        assert_eq!(g.subdivision, Some("CA-ON"));
        assert_eq!(g.electricity_maps_zone, Some("CA-ON"));
        assert!(cloud_grid("aws", "mars-1").is_none());
        // Every mapped subdivision and subregion has data.
        for r in crate::tables::CLOUD_REGIONS {
            if !r.4.is_empty() {
                assert!(subdivision(r.4).is_some(), "{r:?}");
            }
            if !r.5.is_empty() {
                assert!(egrid_subregion(r.5).is_some(), "{r:?}");
            }
        }
    }

    #[test]
    fn our_mapping_agrees_with_ccf_where_its_zone_is_a_subdivision() {
        for r in crate::tables::CLOUD_REGIONS {
            let Some(g) = cloud_grid(r.0, r.1) else {
                continue;
            };
            if let (Some(em), Some(sub)) = (g.electricity_maps_zone, g.subdivision) {
                if let Some(em_f) = subdivision(em) {
                    let ours = subdivision(sub).unwrap();
                    assert_eq!(em_f.g_per_kwh, ours.g_per_kwh, "{r:?}: CCF says {em}");
                }
            }
        }
    }

    #[test]
    fn em_us_zones_point_at_real_subregions() {
        for (z, s) in EM_US_ZONES {
            assert!(egrid_subregion(s).is_some(), "{z} -> {s}");
        }
        for (z, subs) in EM_US_AMBIGUOUS {
            for s in *subs {
                assert!(egrid_subregion(s).is_some(), "{z} -> {s}");
            }
        }
    }
}
