//! CodeCarbon's `emissions.csv`: one run per row, its own figures kept.

use super::*;
use wattprint_core::units::{GRAMS_PER_KG, JOULES_PER_KWH};

/// Reads the file row by row, a run per row; the ids (which hold the file's hash) and the
/// warning of skipped rows are set once the whole file is read.
pub(super) fn codecarbon<R: std::io::BufRead>(
    mut t: Rows<R>,
    source_name: &str,
) -> Result<Vec<RunReport>, ImportError> {
    let energy = t.need("energy_consumed", "header")?;
    let emissions = t.need("emissions", "header")?;
    let duration = t.need("duration", "header")?;
    let header = t.header().to_vec();
    let opt = |n: &str| header_col(&header, n);
    let (ts, cpu_e, gpu_e, ram_e) = (
        opt("timestamp"),
        opt("cpu_energy"),
        opt("gpu_energy"),
        opt("ram_energy"),
    );
    let mut out = Vec::new();
    while let Some((line, rec)) = t.next_row()? {
        let get = |c: Option<usize>| c.map(|c| field(rec, c)).filter(|s| !s.is_empty());
        let kwh = number(field(rec, energy), line, "energy_consumed")?;
        let kg = number(field(rec, emissions), line, "emissions")?;
        let dur = number(field(rec, duration), line, "duration")?;
        if kwh < 0.0 || kwh * JOULES_PER_KWH > MAX_RUN_J {
            return Err(ParseError::new(
                line,
                "energy_consumed",
                format!("{kwh} kWh is outside 0..1e9 kWh: the column is in kWh"),
            )
            .into());
        }
        if !(0.0..=1e12).contains(&kg) {
            return Err(ParseError::new(
                line,
                "emissions",
                format!("{kg} kg is outside 0..1e12 kg: the column is in kg CO2e"),
            )
            .into());
        }
        if !(0.0..=1e10).contains(&dur) {
            return Err(
                ParseError::new(line, "duration", format!("{dur} s is outside 0..1e10 s")).into(),
            );
        }
        // The id is set below, once the whole file is hashed.
        let mut r = base_report(String::new(), source_name, ImportFormat::CodeCarbon);
        r.command = vec![
            "codecarbon".into(),
            get(opt("project_name")).unwrap_or("codecarbon").to_string(),
        ];
        r.duration_s = dur;
        let end = match get(ts) {
            Some(s) => parse_rfc3339_s(s).ok_or_else(|| {
                ParseError::new(
                    line,
                    "timestamp",
                    format!("`{s}` is not an ISO 8601 timestamp"),
                )
            })?,
            None => dur,
        };
        r.started_at = rfc3339_utc((end - dur).floor() as i64);
        for (label, col) in [
            ("codecarbon.project", "project_name"),
            ("codecarbon.run_id", "run_id"),
            ("codecarbon.experiment_id", "experiment_id"),
            ("codecarbon.version", "codecarbon_version"),
            ("codecarbon.tracking_mode", "tracking_mode"),
        ] {
            if let Some(v) = get(opt(col)) {
                r.labels.insert(label.into(), v.to_string());
            }
        }
        r.host = HostInfo {
            hostname: String::new(),
            cpu_model: get(opt("cpu_model")).map(str::to_string),
            gpu_models: get(opt("gpu_model"))
                .map(|g| vec![g.to_string()])
                .unwrap_or_default(),
            git_commit: None,
            ..Default::default()
        };
        let mut parts = 0.0;
        for (name, kind, method, col) in [
            ("codecarbon-cpu", DomainKind::CpuModel, Method::Model, cpu_e),
            ("codecarbon-gpu", DomainKind::Gpu, Method::Power, gpu_e),
            (
                "codecarbon-ram",
                DomainKind::MemoryModel,
                Method::Model,
                ram_e,
            ),
        ] {
            if let Some(s) = get(col) {
                let v = number(s, line, name.trim_start_matches("codecarbon-"))?;
                if !(0.0..=MAX_RUN_J / JOULES_PER_KWH).contains(&v) {
                    return Err(
                        ParseError::new(line, name, format!("{v} kWh is out of range")).into(),
                    );
                }
                parts += v;
                r.energy.domains.push(DomainEnergy {
                    name: name.into(),
                    kind,
                    joules: v * JOULES_PER_KWH,
                    source: "codecarbon".into(),
                    method,
                    counted_in_total: true,
                    device: None,
                    avg_power_w: None,
                    joules_low: None,
                    joules_high: None,
                    range_basis: None,
                });
            }
        }
        if r.energy.domains.is_empty() || (parts - kwh).abs() > 1e-9_f64.max(kwh * 1e-6) {
            if !r.energy.domains.is_empty() {
                r.warnings.push(format!(
                    "CodeCarbon's parts ({parts} kWh) do not add up to energy_consumed ({kwh} kWh): the total is kept, the parts are shown uncounted"
                ));
                for d in &mut r.energy.domains {
                    d.counted_in_total = false;
                }
            }
            r.energy.domains.push(DomainEnergy {
                name: "codecarbon-total".into(),
                kind: DomainKind::Node,
                joules: kwh * JOULES_PER_KWH,
                source: "codecarbon energy_consumed".into(),
                method: Method::Model,
                counted_in_total: true,
                device: None,
                avg_power_w: None,
                joules_low: None,
                joules_high: None,
                range_basis: None,
            });
        }
        if let Some(p) = get(opt("pue")) {
            let p = number(p, line, "pue")?;
            if !(1.0..=10.0).contains(&p) {
                return Err(ParseError::new(line, "pue", format!("{p} is outside 1..10")).into());
            }
            r.energy.pue = p;
        }
        let provider = get(opt("cloud_provider")).map(str::to_ascii_lowercase);
        let region = get(opt("cloud_region"));
        let zone = match (provider.as_deref(), region) {
            (Some(p @ ("gcp" | "aws" | "azure")), Some(reg)) => format!("{p}:{reg}"),
            _ => get(opt("country_iso_code")).unwrap_or("").to_string(),
        };
        let grams = kg * GRAMS_PER_KG;
        r.carbon = CarbonReport {
            zone,
            intensity_g_per_kwh: if kwh > 0.0 { grams / kwh } else { 0.0 },
            intensity_source: format!(
                "CodeCarbon emissions.csv{}",
                get(opt("codecarbon_version"))
                    .map(|v| format!(" (codecarbon {v})"))
                    .unwrap_or_default()
            ),
            intensity_year: None,
            basis: "as computed by CodeCarbon".into(),
            method: wattprint_core::report::CarbonMethod::Location,
            fallback: false,
            operational_g: grams,
            embodied_g: 0.0,
            total_g: grams,
            ..Default::default()
        };
        r.warnings.push(
            "energy and emissions are CodeCarbon's own figures (energy_consumed kWh, emissions kg), kept as reported; CodeCarbon timestamps carry no zone: taken as UTC".into(),
        );
        finish_energy(&mut r);
        // CodeCarbon's energy_consumed already includes its own accounting: keep it exact.
        r.energy.total_j = kwh * JOULES_PER_KWH;
        r.metrics.energy_to_solution_j = r.energy.total_j;
        r.energy.facility_j = r.energy.total_j * r.energy.pue;
        r.metrics.facility_energy_to_solution_j = r.energy.facility_j;
        out.push(r);
    }
    if out.is_empty() {
        return Err(
            ParseError::new(t.header_line(), "rows", "no runs after the header".into()).into(),
        );
    }
    let id = t.content_hash().hex();
    let skipped = skipped_warning(t.skipped(), t.header().len());
    for (n, r) in out.iter_mut().enumerate() {
        r.id = format!("imp-{id}-{n}");
        r.warnings.extend(skipped.clone());
    }
    Ok(out)
}
