//! Cloud regions and provider PUE defaults.
//!
//! - Google Cloud: the region's grid intensity for 2024 from GoogleCloudPlatform/region-carbon-info
//!   (Apache-2.0): average operational (direct) gross emissions of the local grid, location-based.
//! - AWS and Azure: each region mapped to the grid it draws from ([`crate::subnational`]): a US
//!   region to its eGRID2023 subregion (or state), a Canadian, Australian, Indian or Chinese one
//!   to its province or state; other regions to their country's Ember factor (the providers
//!   publish no per-region grid factor).

use crate::grid::{self, IntensityFactor, INTENSITY_UNIT};
use crate::subnational;
use crate::tables;
use wattprint_core::report::CarbonBasis;

pub const GCP_SOURCE: &str =
    "Google Cloud region carbon data 2024 (GoogleCloudPlatform/region-carbon-info)";
pub const GCP_LICENCE: &str = "Apache-2.0";
pub const GCP_YEAR: i32 = 2024;

/// A cloud provider wattprint knows regions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Gcp,
    Aws,
    Azure,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gcp => "gcp",
            Provider::Aws => "aws",
            Provider::Azure => "azure",
        }
    }

    /// `gcp`, `aws` or `azure` (case-insensitive).
    pub fn parse(s: &str) -> Option<Provider> {
        match s.to_ascii_lowercase().as_str() {
            "gcp" | "google" => Some(Provider::Gcp),
            "aws" => Some(Provider::Aws),
            "azure" => Some(Provider::Azure),
            _ => None,
        }
    }
}

/// A provider's published power usage effectiveness.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PueDefault {
    pub pue: f64,
    pub year: i32,
    pub source: &'static str,
}

/// The provider's fleet-wide PUE (see `docs/carbon.md`).
pub fn pue_default(provider: Provider) -> PueDefault {
    match provider {
        Provider::Aws => PueDefault {
            pue: 1.15,
            year: 2024,
            source: "AWS global data-centre PUE 2024 (AWS sustainability report)",
        },
        Provider::Gcp => PueDefault {
            pue: 1.09,
            year: 2024,
            source:
                "Google fleet-wide trailing-twelve-month PUE 2024 (Google environmental report)",
        },
        Provider::Azure => PueDefault {
            pue: 1.18,
            year: 2024,
            source: "Microsoft data-centre design PUE (Microsoft datacenter sustainability)",
        },
    }
}

/// The industry-average PUE, for on-premises machines when the user opts in.
pub const INDUSTRY_AVERAGE_PUE: PueDefault = PueDefault {
    pue: 1.56,
    year: 2024,
    source: "Uptime Institute Global Data Center Survey 2024 (industry average)",
};

/// The region names known for a provider.
pub fn regions(provider: Provider) -> Vec<&'static str> {
    match provider {
        Provider::Gcp => tables::GCP_REGIONS.iter().map(|r| r.0).collect(),
        p => tables::CLOUD_REGIONS
            .iter()
            .filter(|r| r.0 == p.as_str())
            .map(|r| r.1)
            .collect(),
    }
}

/// The intensity for `provider:region` (region case-insensitive).
pub fn region(provider: Provider, region: &str) -> Option<IntensityFactor> {
    match provider {
        Provider::Gcp => tables::GCP_REGIONS
            .iter()
            .find(|r| r.0.eq_ignore_ascii_case(region))
            .map(|&(name, location, _cfe, g_per_kwh)| IntensityFactor {
                zone: format!("gcp:{name}"),
                name: format!("{location} (gcp {name})"),
                g_per_kwh,
                unit: INTENSITY_UNIT,
                basis: CarbonBasis::Direct,
                year: GCP_YEAR,
                source: GCP_SOURCE,
                licence: GCP_LICENCE,
                note: None,
            }),
        p => {
            let &(_, name, location, alpha2, _, _) = tables::CLOUD_REGIONS
                .iter()
                .find(|r| r.0 == p.as_str() && r.1.eq_ignore_ascii_case(region))?;
            let zone = format!("{}:{name}", p.as_str());
            let grid_of = subnational::cloud_grid(p.as_str(), name);
            if let Some(sub) = grid_of.as_ref().and_then(|g| g.egrid_subregion) {
                let f = subnational::egrid_subregion(sub)?;
                let state = grid_of
                    .as_ref()
                    .and_then(|g| g.subdivision)
                    .and_then(subnational::subdivision);
                let versus = state.map_or(String::new(), |s| {
                    format!(" ({} {:.1} g/kWh)", s.zone, s.g_per_kwh)
                });
                return Some(IntensityFactor {
                    zone,
                    name: format!("{location}: grid {}", f.name),
                    note: Some(format!("{}{versus}", subnational::SUBREGION_OVER_STATE)),
                    ..f
                });
            }
            if let Some(f) = grid_of
                .as_ref()
                .and_then(|g| g.subdivision)
                .and_then(subnational::subdivision)
            {
                return Some(IntensityFactor {
                    zone,
                    name: format!("{location}: grid {} {}", f.zone, f.name),
                    ..f
                });
            }
            let country = grid::country(alpha2)?;
            Some(IntensityFactor {
                zone,
                name: format!("{location} (country grid: {})", country.name),
                ..country
            })
        }
    }
}

/// Google's carbon-free-energy share (0..=1) for a GCP region, 2024.
pub fn gcp_cfe_share(region: &str) -> Option<f64> {
    tables::GCP_REGIONS
        .iter()
        .find(|r| r.0.eq_ignore_ascii_case(region))
        .map(|r| r.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcp_europe_west1_is_belgium_103() {
        let f = region(Provider::Gcp, "europe-west1").unwrap();
        assert_eq!(f.zone, "gcp:europe-west1");
        assert_eq!(f.g_per_kwh, 103.37);
        assert_eq!(f.year, 2024);
        assert_eq!(f.basis, CarbonBasis::Direct);
        assert_eq!(gcp_cfe_share("europe-west1"), Some(0.84));
    }

    #[test]
    fn aws_us_east_1_is_the_srvc_subregion_of_egrid2023() {
        let f = region(Provider::Aws, "us-east-1").unwrap();
        assert_eq!(f.zone, "aws:us-east-1");
        assert_eq!(f.g_per_kwh, 270.489);
        assert_eq!(f.year, 2023);
        assert_eq!(f.basis, CarbonBasis::Direct);
        assert_eq!(f.source, subnational::EGRID_SUBREGION_SOURCE);
        assert!(f.name.contains("SRVC"), "{}", f.name);
        let note = f.note.unwrap();
        assert!(note.contains("US-VA 244.8 g/kWh"), "{note}");
        // Azure's Virginia regions draw from the same grid.
        assert_eq!(
            region(Provider::Azure, "eastus2").unwrap().g_per_kwh,
            270.489
        );
    }

    #[test]
    fn regions_take_their_province_or_state() {
        let f = region(Provider::Aws, "ca-central-1").unwrap();
        assert_eq!(
            f.g_per_kwh,
            subnational::subdivision("CA-QC").unwrap().g_per_kwh
        );
        let f = region(Provider::Azure, "australiaeast").unwrap();
        assert_eq!(f.g_per_kwh, 640.0);
        let f = region(Provider::Aws, "ap-south-1").unwrap();
        assert_eq!(f.zone, "aws:ap-south-1");
        assert_eq!(f.basis, CarbonBasis::Lifecycle);
        assert_eq!(
            f.g_per_kwh,
            subnational::subdivision("IN-MH").unwrap().g_per_kwh
        );
        // Wyoming splits between two eGRID subregions: the state rate stands.
        let f = region(Provider::Azure, "westcentralus").unwrap();
        assert_eq!(f.source, subnational::EGRID_STATE_SOURCE);
    }

    #[test]
    fn aws_and_azure_regions_take_their_country_factor() {
        let f = region(Provider::Aws, "eu-west-3").unwrap();
        assert_eq!(f.g_per_kwh, grid::country("FR").unwrap().g_per_kwh);
        assert_eq!(f.zone, "aws:eu-west-3");
        let z = region(Provider::Azure, "WestEurope").unwrap();
        assert_eq!(z.g_per_kwh, grid::country("NL").unwrap().g_per_kwh);
        assert!(region(Provider::Aws, "mars-1").is_none());
    }

    #[test]
    fn every_listed_region_resolves() {
        for p in [Provider::Gcp, Provider::Aws, Provider::Azure] {
            let names = regions(p);
            assert!(names.len() > 30, "{p:?}");
            for r in names {
                assert!(region(p, r).is_some(), "{p:?}:{r}");
            }
        }
    }

    #[test]
    fn pue_defaults_are_the_published_ones() {
        assert_eq!(pue_default(Provider::Aws).pue, 1.15);
        assert_eq!(pue_default(Provider::Gcp).pue, 1.09);
        assert_eq!(pue_default(Provider::Azure).pue, 1.18);
        assert_eq!(INDUSTRY_AVERAGE_PUE.pue, 1.56);
        assert_eq!(Provider::parse("AWS"), Some(Provider::Aws));
        assert_eq!(Provider::parse("ibm"), None);
    }
}
