//! Filling a report's carbon section, PUE, facility energy and carbon metrics.

use crate::*;

/// Resolves `opts` for the report's own start and duration ([`resolve`], the I/O) and applies
/// them ([`apply_resolved`]): for reports built outside a measuring session (imports,
/// `estimate`, `intensity`). Measured reports get carbon from the engine's carbon step.
pub fn apply(report: &mut RunReport, opts: &CarbonOptions) -> Result<(), CarbonError> {
    let c = resolve(opts, RunTime::of(report))?;
    apply_resolved(report, &c)
}

/// Fills `report.carbon`, `energy.pue`, `energy.facility_j`, the facility and carbon metrics
/// and warnings from `report.energy.total_j`, `duration_s`, `timeline`, `work` and
/// `host.gpu_models`, with the inputs [`resolve`] gathered. Pure: no file, clock or network.
///
/// Errors (nothing is applied then): a figure that overflows ([`CarbonError::Invalid`]), an
/// intensity file that does not cover the run ([`CarbonError::NotCovering`]).
pub fn apply_resolved(report: &mut RunReport, c: &ResolvedCarbon) -> Result<(), CarbonError> {
    let it_j = check(
        CarbonField::Energy,
        math::facility_j(report.energy.total_j, 1.0),
    )?;
    let duration_s = RunTime::of(report).duration_s();
    let mut warnings: Vec<String> = c.warnings.clone();
    let mut used = c.used.clone();
    let pue = c.pue;
    let (market, embodied_kg, lifetime_years, share, units) =
        (c.market, c.embodied_kg, c.lifetime_years, c.share, c.units);
    let (hardware, missing) = if c.count_run_hardware {
        run_hardware(report)
    } else {
        (c.hardware.clone(), Vec::new())
    };
    let facility_j = it_j * pue;

    // Operational grams: time-varying, live, or the static factor.
    let mut operational_g = check(
        CarbonField::Carbon,
        math::operational_g(it_j, pue, used.g_per_kwh),
    )?;
    if let Some(SeriesInput {
        path: p,
        file: f,
        origin_unix_s: origin,
    }) = &c.series
    {
        let (p, origin) = (p.clone(), *origin);
        let series = f
            .series(origin)
            .ok_or_else(|| file::FileError::Empty { path: p.clone() })?;
        let segments = energy_segments(report, it_j, duration_s);
        let w = math::weigh_by_series(&segments, &series)
            .map_err(math_err(CarbonField::IntensityFile))?;
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
            year: wallclock::year_utc(origin),
            basis: CarbonBasis::Unspecified,
            licence: None,
            fallback: used.fallback,
        };
    }

    // Market-based figure, separate.
    let market_operational_g = market
        .map(|m| check(CarbonField::MarketFactor, math::operational_g(it_j, pue, m)))
        .transpose()?;

    // Embodied carbon.
    let (embodied_g, embodied_source) = match embodied_kg {
        Some(kg) => {
            let life = lifetime_years.unwrap_or(SERVER_LIFETIME_YEARS);
            let g = check(
                CarbonField::EmbodiedKg,
                math::embodied_g(
                    kg * GRAMS_PER_KG,
                    duration_s,
                    life * SECONDS_PER_YEAR,
                    share,
                ),
            )?;
            (
                g,
                format!("given with --embodied-kg: {kg} kg over {life} years, share {share}"),
            )
        }
        None if hardware.is_empty() => {
            warnings
                .push("embodied carbon not counted: no hardware figure; pass --embodied-kg".into());
            (0.0, "none (no hardware figure)".to_string())
        }
        None => {
            let mut g = 0.0;
            let mut parts = Vec::new();
            for h in &hardware {
                let life = lifetime_years.unwrap_or(h.lifetime_years);
                g += check(
                    CarbonField::Embodied,
                    math::embodied_g(
                        h.kg * h.count * GRAMS_PER_KG,
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
    forecast_carbon(
        report,
        it_j,
        operational_g,
        pue * used.g_per_kwh,
        embodied_g,
        duration_s,
    );

    // Report.
    let k = &mut report.carbon;
    k.zone = used.zone;
    k.intensity_g_per_kwh = used.g_per_kwh;
    k.intensity_source = used.source;
    k.intensity_year = used.year;
    k.basis = used.basis;
    k.method = wattprint_core::report::CarbonMethod::Location;
    k.fallback = used.fallback;
    k.operational_g = operational_g;
    k.embodied_g = embodied_g;
    k.total_g = total_g;
    k.market_operational_g = market_operational_g;
    k.market_factor_g_per_kwh = market;
    k.embodied_source = Some(embodied_source);
    k.intensity_licence = used.licence;
    k.pue_source = Some(c.pue_source.clone());
    report.energy.pue = pue;
    report.energy.facility_j = facility_j;

    let m = &mut report.metrics;
    m.facility_energy_to_solution_j = facility_j;
    let inferences = report.work.inferences.unwrap_or(0.0);
    let tokens = report.work.tokens.unwrap_or(0.0);
    m.carbon_per_inference_g = math::per_inference_g(total_g, inferences);
    note_if_null(
        &mut m.notes,
        "carbon_per_inference_g",
        m.carbon_per_inference_g,
        "no inferences declared (--inferences)",
    );
    m.carbon_per_1k_tokens_g = math::per_1k_tokens_g(total_g, tokens);
    note_if_null(
        &mut m.notes,
        "carbon_per_1k_tokens_g",
        m.carbon_per_1k_tokens_g,
        "no tokens declared (--tokens)",
    );
    let (r, unit) = match (units, inferences > 0.0, tokens > 0.0) {
        (Some(r), _, _) => (
            Some(r),
            c.unit_name.clone().unwrap_or_else(|| "unit".into()),
        ),
        (None, true, _) => (Some(inferences), "inference".into()),
        (None, false, true) => (Some(tokens), "token".into()),
        (None, false, false) => (None, String::new()),
    };
    // SCI uses the location-based intensity, E including PUE.
    m.sci_g_per_unit = r.and_then(|r| math::sci_g_per_unit(operational_g, embodied_g, r));
    m.sci_unit = m.sci_g_per_unit.map(|_| unit);
    note_if_null(
        &mut m.notes,
        "sci_g_per_unit",
        m.sci_g_per_unit,
        "no functional unit: pass --unit-count (and --unit-name), or declare inferences or tokens",
    );
    report.warnings.extend(warnings);
    report.warnings.extend(missing);
    // The ranges of facility energy, grams and per-unit metrics follow the new figures.
    wattprint_core::bounds::fill_report_ranges(report);
    Ok(())
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

/// Keeps `notes[field]` in step with the metric: the reason when it is null, no note (not even
/// an earlier step's) once it has a value.
fn note_if_null(
    notes: &mut std::collections::BTreeMap<String, String>,
    field: &str,
    value: Option<f64>,
    why: &str,
) {
    if value.is_some() {
        notes.remove(field);
    } else {
        notes.insert(field.into(), why.into());
    }
}

/// The forecast's carbon at completion (`report.forecast`, when there is one): its energy at
/// the run's operational grams per joule so far (`facility_g_per_kwh` = PUE x intensity
/// when nothing was spent yet), plus the embodied share for its predicted duration.
fn forecast_carbon(
    report: &mut RunReport,
    it_j: f64,
    operational_g: f64,
    facility_g_per_kwh: f64,
    embodied_g: f64,
    duration_s: f64,
) {
    let Some(f) = report.forecast.as_mut() else {
        return;
    };
    let op_g_per_j = if it_j > 0.0 {
        operational_g / it_j
    } else {
        facility_g_per_kwh / JOULES_PER_KWH
    };
    let embodied_g_per_s = if duration_s > 0.0 {
        embodied_g / duration_s
    } else {
        0.0
    };
    let at_end_s = f.duration_s.unwrap_or(duration_s);
    let g = |j: f64| j * op_g_per_j + at_end_s * embodied_g_per_s;
    f.total_g = f.energy_to_solution_j.map(g);
    f.total_g_low = f.energy_to_solution_j_low.map(g);
    f.total_g_high = f.energy_to_solution_j_high.map(g);
}
