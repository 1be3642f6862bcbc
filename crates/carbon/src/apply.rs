//! Filling a report's carbon section, PUE, facility energy and carbon metrics.

use crate::*;

/// Fills `report.carbon`, `energy.pue`, `energy.facility_j`, the facility and carbon metrics and
/// warnings, from `report.energy.total_j`, `duration_s`, `started_at` and `work`. Run it after
/// the work metrics are filled.
pub fn apply(report: &mut RunReport, opts: &CarbonOptions) -> Result<(), CarbonError> {
    // Validate every input first: nothing is half-applied on bad input.
    let Checked {
        pue_given,
        market,
        given_i,
        embodied_kg,
        lifetime_years,
        share,
        units,
    } = checked(opts)?;
    let it_j = check(
        "energy.total_j",
        math::facility_j(report.energy.total_j, 1.0),
    )?;
    let duration_s = if report.duration_s.is_finite() && report.duration_s > 0.0 {
        report.duration_s
    } else {
        0.0
    };

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
            basis: "unspecified".into(),
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
    let facility_j = it_j * pue;

    let started_unix_s = report
        .started_at
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond() as f64 / 1000.0);

    // Operational grams: time-varying, live, or the static factor.
    let mut operational_g = check("carbon", math::operational_g(it_j, pue, used.g_per_kwh))?;
    if let Some(path) = &opts.intensity_file {
        let f = file::read(path)?;
        let p = path.display().to_string();
        let first = f.points.first().map_or(0.0, |x| x.0);
        let origin = match started_unix_s {
            Some(s) => s,
            None => {
                warnings.push(format!(
                    "no start time known: the run is placed at the start of {p} ({})",
                    rfc3339(first)
                ));
                first
            }
        };
        let series = f
            .series(origin)
            .ok_or_else(|| file::FileError::Empty { path: p.clone() })?;
        let segments = energy_segments(report, it_j, duration_s);
        let w = math::weigh_by_series(&segments, &series).map_err(math_err("--intensity-file"))?;
        let run_overlaps = series.from_s() <= duration_s && series.to_s() > 0.0;
        if (it_j > 0.0 && w.covered_j == 0.0) || (it_j == 0.0 && !run_overlaps) {
            return Err(CarbonError::NotCovering {
                path: p,
                file_from: rfc3339(origin + series.from_s()),
                file_to: rfc3339(origin + series.to_s()),
                run_from: rfc3339(origin),
                run_to: rfc3339(origin + duration_s),
            });
        }
        if let Some(share) = w.uncovered_share().filter(|s| *s > 0.0) {
            warnings.push(format!(
                "--intensity-file {p} does not cover the whole run: {:.1} % of the energy is weighed by the fallback factor {:.1} g/kWh ({})",
                share * 100.0,
                used.g_per_kwh,
                used.source
            ));
        }
        let it_g = w.covered_g + w.uncovered_j / JOULES_PER_KWH * used.g_per_kwh;
        operational_g = it_g * pue;
        let mean = if it_j > 0.0 {
            it_g / (it_j / JOULES_PER_KWH)
        } else {
            series
                .intervals()
                .iter()
                .find(|i| i.to_s > 0.0)
                .map_or(used.g_per_kwh, |i| i.g_per_kwh)
        };
        used = Used {
            zone: used.zone.clone(),
            g_per_kwh: mean,
            source: format!(
                "--intensity-file {p} ({} rows, step {:.0} s), energy-weighted mean",
                f.points.len(),
                f.step_s()
            ),
            year: year_of_unix(origin),
            basis: "unspecified".into(),
            licence: None,
            fallback: used.fallback,
        };
    } else if let Some(spec) = &opts.live {
        let start = started_unix_s.unwrap_or_else(now_unix_s);
        let result = match live_region(spec, zone.as_ref()) {
            Some(region) => live::fetch(
                spec,
                &region,
                (start, start + duration_s),
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
                operational_g = check("carbon", math::operational_g(it_j, pue, r.g_per_kwh))?;
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

    // Market-based figure, separate.
    let market_operational_g = market
        .map(|m| check("--market-factor", math::operational_g(it_j, pue, m)))
        .transpose()?;

    // Embodied carbon.
    let (embodied_g, embodied_source) = match embodied_kg {
        Some(kg) => {
            let life = lifetime_years.unwrap_or(SERVER_LIFETIME_YEARS);
            let g = check(
                "--embodied-kg",
                math::embodied_g(kg * 1000.0, duration_s, life * SECONDS_PER_YEAR, share),
            )?;
            (
                g,
                format!("given with --embodied-kg: {kg} kg over {life} years, share {share}"),
            )
        }
        None if opts.hardware.is_empty() => {
            warnings
                .push("embodied carbon not counted: no hardware figure; pass --embodied-kg".into());
            (0.0, "none (no hardware figure)".to_string())
        }
        None => {
            let mut g = 0.0;
            let mut parts = Vec::new();
            for h in &opts.hardware {
                let life = lifetime_years.unwrap_or(h.lifetime_years);
                g += check(
                    "embodied",
                    math::embodied_g(
                        h.kg * h.count * 1000.0,
                        duration_s,
                        life * SECONDS_PER_YEAR,
                        share,
                    ),
                )?;
                parts.push(format!(
                    "{} x {} {} kg over {life} years ({})",
                    h.count, h.what, h.kg, h.source
                ));
            }
            (g, format!("{}; share {share}", parts.join(" + ")))
        }
    };
    let total_g = operational_g + embodied_g;

    // Report.
    let c = &mut report.carbon;
    c.zone = used.zone;
    c.intensity_g_per_kwh = used.g_per_kwh;
    c.intensity_source = used.source;
    c.intensity_year = used.year;
    c.basis = used.basis;
    c.method = "location".into();
    c.fallback = used.fallback;
    c.operational_g = operational_g;
    c.embodied_g = embodied_g;
    c.total_g = total_g;
    c.market_operational_g = market_operational_g;
    c.market_factor_g_per_kwh = market;
    c.embodied_source = Some(embodied_source);
    c.intensity_licence = used.licence;
    c.pue_source = Some(pue_source);
    report.energy.pue = pue;
    report.energy.facility_j = facility_j;

    let m = &mut report.metrics;
    m.facility_energy_to_solution_j = facility_j;
    let inferences = report.work.inferences.unwrap_or(0.0);
    let tokens = report.work.tokens.unwrap_or(0.0);
    m.carbon_per_inference_g = math::per_inference_g(total_g, inferences);
    if m.carbon_per_inference_g.is_none() {
        m.notes.insert(
            "carbon_per_inference_g".into(),
            "no inferences declared (--inferences)".into(),
        );
    }
    m.carbon_per_1k_tokens_g = math::per_1k_tokens_g(total_g, tokens);
    if m.carbon_per_1k_tokens_g.is_none() {
        m.notes.insert(
            "carbon_per_1k_tokens_g".into(),
            "no tokens declared (--tokens)".into(),
        );
    }
    let (r, unit) = match (units, inferences > 0.0, tokens > 0.0) {
        (Some(r), _, _) => (
            Some(r),
            opts.unit_name.clone().unwrap_or_else(|| "unit".into()),
        ),
        (None, true, _) => (Some(inferences), "inference".into()),
        (None, false, true) => (Some(tokens), "token".into()),
        (None, false, false) => (None, String::new()),
    };
    // SCI uses the location-based intensity, E including PUE.
    m.sci_g_per_unit = r.and_then(|r| math::sci_g_per_unit(operational_g, embodied_g, r));
    if m.sci_g_per_unit.is_some() {
        m.sci_unit = Some(unit);
    } else {
        m.sci_unit = None;
        m.notes.insert(
            "sci_g_per_unit".into(),
            "no functional unit: pass --unit-count (and --unit-name), or declare inferences or tokens".into(),
        );
    }
    report.warnings.extend(warnings);
    Ok(())
}

pub(crate) fn year_of_unix(unix_s: f64) -> Option<i32> {
    let t = jiff::Timestamp::from_second(unix_s.floor() as i64).ok()?;
    Some(i32::from(t.to_zoned(jiff::tz::TimeZone::UTC).year()))
}

/// When the energy was used: from the report's power timeline (counted domains) when present,
/// else spread evenly over the run.
pub(crate) fn energy_segments(
    report: &RunReport,
    it_j: f64,
    duration_s: f64,
) -> Vec<math::EnergySegment> {
    if let Some(tl) = &report.timeline {
        let counted: Vec<&str> = report
            .energy
            .domains
            .iter()
            .filter(|d| d.counted_in_total)
            .map(|d| d.name.as_str())
            .collect();
        let mut power = vec![0.0; tl.t_s.len()];
        for s in tl
            .series
            .iter()
            .filter(|s| counted.contains(&s.domain.as_str()))
        {
            for (p, w) in power.iter_mut().zip(&s.watts) {
                *p += w;
            }
        }
        let segs = math::segments_from_power(&tl.t_s, &power, duration_s, it_j);
        if !segs.is_empty() {
            return segs;
        }
    }
    vec![math::EnergySegment {
        from_s: 0.0,
        to_s: duration_s,
        energy_j: it_j,
    }]
}
