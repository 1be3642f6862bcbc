//! Resolving the carbon inputs of a report: the zone's embedded factor, a given value, an
//! intensity file or a live provider (all the I/O), PUE, the market factor and the embodied
//! hardware, each with its provenance. [`crate::apply_resolved`] applies the result, purely.

use crate::*;

/// The intensity used: value and provenance.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Used {
    pub(crate) zone: String,
    pub(crate) g_per_kwh: f64,
    pub(crate) source: String,
    pub(crate) year: Option<i32>,
    pub(crate) basis: CarbonBasis,
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
            basis: f.basis.clone(),
            licence: Some(f.licence.into()),
            fallback: false,
        }
    }
}

/// An `--intensity-file` read by [`resolve`]: its points and where the run sits on it.
#[derive(Clone, Debug)]
pub(crate) struct SeriesInput {
    /// The path, as given (for messages and provenance).
    pub(crate) path: String,
    pub(crate) file: file::IntensityFile,
    /// Unix time of the run's start on the file's axis, s.
    pub(crate) origin_unix_s: f64,
}

/// When a report's energy was used, for the time-dependent sources (intensity files, live
/// providers).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunTime {
    /// Unix time of the start, s; `None` when unknown (an intensity file then places the run at
    /// its own start, with a warning; a live provider is asked about now).
    pub started_unix_s: Option<f64>,
    /// Duration, s (non-finite or negative counts as 0).
    pub duration_s: f64,
}

impl RunTime {
    /// From a report's `started_at` (RFC 3339) and `duration_s`.
    pub fn of(report: &RunReport) -> RunTime {
        RunTime::new(&report.started_at, report.duration_s)
    }

    /// From an RFC 3339 start (unparseable: unknown) and a duration, s.
    pub fn new(started_at: &str, duration_s: f64) -> RunTime {
        RunTime {
            started_unix_s: wallclock::parse_rfc3339_s(started_at),
            duration_s,
        }
    }

    pub(crate) fn duration_s(&self) -> f64 {
        if self.duration_s.is_finite() && self.duration_s > 0.0 {
            self.duration_s
        } else {
            0.0
        }
    }
}

/// Everything carbon needs from outside the report, resolved once by [`resolve`] (the only
/// place that reads intensity files or asks live providers) and applied by the engine's pure
/// carbon step ([`crate::apply_resolved`]).
#[derive(Clone, Debug)]
pub struct ResolvedCarbon {
    pub(crate) used: Used,
    pub(crate) series: Option<SeriesInput>,
    /// PUE applied to the IT energy (>= 1).
    pub pue: f64,
    /// Where the PUE comes from (given, provider default, on-premises default).
    pub pue_source: String,
    pub(crate) market: Option<f64>,
    pub(crate) embodied_kg: Option<f64>,
    pub(crate) lifetime_years: Option<f64>,
    pub(crate) share: f64,
    pub(crate) units: Option<f64>,
    pub(crate) unit_name: Option<String>,
    pub(crate) hardware: Vec<HardwareEmbodied>,
    /// Count the embodied carbon of the hardware the report lists ([`run_hardware`]) when
    /// neither `--embodied-kg` nor hardware was given (measured runs).
    pub(crate) count_run_hardware: bool,
    /// What resolution had to say (fallback zone, default PUE, live provider unavailable).
    pub warnings: Vec<String>,
}

impl ResolvedCarbon {
    /// The zone id used (`FR`, `gcp:europe-west1`, `WORLD` for the fallback, `custom`).
    pub fn zone(&self) -> &str {
        &self.used.zone
    }

    /// The location-based intensity used, g/kWh (for an intensity file: before weighting).
    pub fn intensity_g_per_kwh(&self) -> f64 {
        self.used.g_per_kwh
    }

    /// The intensity's source and vintage, as reports print it.
    pub fn intensity_source(&self) -> &str {
        &self.used.source
    }

    /// The factor's year, when known.
    pub fn intensity_year(&self) -> Option<i32> {
        self.used.year
    }

    /// The factor's basis: `lifecycle`, `direct`, `unspecified`, or what the provider says.
    pub fn basis(&self) -> &CarbonBasis {
        &self.used.basis
    }

    /// True when no zone was given and the World average stands in (reported, never silent).
    pub fn fallback(&self) -> bool {
        self.used.fallback
    }

    /// Count the embodied carbon of the hardware a measured run lists (one server and each
    /// GPU with a figure) unless the options named hardware or `--embodied-kg`.
    pub fn counting_run_hardware(mut self) -> Self {
        self.count_run_hardware = self.embodied_kg.is_none() && self.hardware.is_empty();
        self
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
        // Canadian and Australian ISO 3166-2 codes are also Electricity Maps zone names.
        (LiveProvider::ElectricityMaps, Some(Zone::Grid(g)))
            if g.starts_with("CA-") || g.starts_with("AU-") =>
        {
            Some(g.clone())
        }
        (LiveProvider::ElectricityMaps, Some(Zone::Cloud { provider, region })) => {
            wattprint_data::subnational::cloud_grid(provider.as_str(), region)
                .and_then(|g| g.electricity_maps_zone)
                .map(str::to_string)
        }
        (LiveProvider::CarbonAwareSdk, Some(Zone::Cloud { region, .. })) => Some(region.clone()),
        (LiveProvider::CarbonAwareSdk, Some(Zone::Country(c))) => Some(c.clone()),
        _ => None,
    }
}

/// Resolves `opts` for a run at `when`: validates every number, resolves the zone to its
/// embedded factor (or the World fallback, with a warning), reads `--intensity-file`, asks the
/// `--live` provider (its failure is a warning and the offline factor stands), and picks the
/// PUE (given, the cloud provider's published default, or 1.0 with a warning).
///
/// Errors: a bad number ([`CarbonError::Invalid`], naming the option), an unknown zone, an
/// unreadable or malformed intensity file. Nothing is resolved halfway.
pub fn resolve(opts: &CarbonOptions, when: RunTime) -> Result<ResolvedCarbon, CarbonError> {
    let Checked {
        pue_given,
        market,
        given_i,
        embodied_kg,
        lifetime_years,
        share,
        units,
    } = checked(opts)?;
    let mut warnings: Vec<String> = Vec::new();

    // Zone and its embedded factor.
    let zone_text = opts
        .zone
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty());
    let resolved = zone_text.map(zone::resolve).transpose()?;
    let zone = resolved.as_ref().map(|(z, _)| z.clone());
    let mut used = match (&resolved, given_i) {
        (_, Some(g)) => Used {
            zone: zone.as_ref().map_or("custom".into(), Zone::id),
            g_per_kwh: g,
            source: "given with --intensity".into(),
            year: None,
            basis: CarbonBasis::Unspecified,
            licence: None,
            fallback: false,
        },
        (Some((_, f)), None) => Used::from_factor(f),
        (None, None) => {
            let w = grid::world();
            warnings.push(format!(
                "no zone given (--zone or WATTPRINT_ZONE): carbon uses the World average {:.0} gCO2e/kWh ({} {}) as a FALLBACK; set the zone for a meaningful figure",
                w.g_per_kwh, w.source, w.year
            ));
            Used {
                fallback: true,
                ..Used::from_factor(&w)
            }
        }
    };

    // PUE.
    let (pue, pue_source) = match (pue_given, zone.as_ref().and_then(Zone::provider)) {
        (Some(p), _) => (p, "given with --pue".to_string()),
        (None, Some(provider)) => {
            let d = cloud::pue_default(provider);
            (d.pue, format!("{} {}", d.source, d.year))
        }
        (None, None) => {
            warnings.push(format!(
                "PUE 1.0 assumed (on-premises default): data-centre overhead is not counted; pass --pue (industry average {} per {})",
                cloud::INDUSTRY_AVERAGE_PUE.pue,
                cloud::INDUSTRY_AVERAGE_PUE.source
            ));
            (
                1.0,
                "default 1.0 (on-premises, unknown facility)".to_string(),
            )
        }
    };

    // Time-varying sources: an intensity file, else a live provider.
    let mut series = None;
    if let Some(path) = &opts.intensity_file {
        let f = file::read(path)?;
        let p = path.display().to_string();
        let first = f.points.first().map_or(0.0, |x| x.0);
        let origin_unix_s = match when.started_unix_s {
            Some(s) => s,
            None => {
                warnings.push(format!(
                    "no start time known: the run is placed at the start of {p} ({})",
                    rfc3339(first)
                ));
                first
            }
        };
        series = Some(SeriesInput {
            path: p,
            file: f,
            origin_unix_s,
        });
    } else if let Some(spec) = &opts.live {
        let start = when.started_unix_s.unwrap_or_else(now_unix_s);
        let result = match live_region(spec, zone.as_ref()) {
            Some(region) => live::fetch(
                spec,
                &region,
                (start, start + when.duration_s()),
                now_unix_s(),
                &opts.live_config,
            ),
            None => Err(live::LiveError::Config {
                provider: spec.provider.as_str(),
                msg: "no provider region: give --live PROVIDER:REGION (e.g. watttime:CAISO_NORTH)"
                    .into(),
            }),
        };
        match result {
            Ok(r) => {
                used = Used {
                    zone: used.zone.clone(),
                    g_per_kwh: r.g_per_kwh,
                    source: r.source,
                    year: r.year,
                    basis: r.basis,
                    licence: None,
                    fallback: used.fallback,
                };
            }
            Err(e) => warnings.push(format!(
                "live intensity unavailable ({e}); the offline factor was used: {:.1} g/kWh, {}",
                used.g_per_kwh, used.source
            )),
        }
    }

    Ok(ResolvedCarbon {
        used,
        series,
        pue,
        pue_source,
        market,
        embodied_kg,
        lifetime_years,
        share,
        units,
        unit_name: opts.unit_name.clone(),
        hardware: opts.hardware.clone(),
        count_run_hardware: false,
        warnings,
    })
}
