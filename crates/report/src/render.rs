//! Plain renderers: terminal table, Markdown (for pull requests), CSV (for spreadsheets), JSON.

use wattprint_core::report::{RunReport, RunStatus};
use wattprint_core::units::{Grams, Joules};

/// Energy with a readable unit (`Joules`' one human form): mJ, J, kJ, kWh; `n/a`.
pub fn fmt_j(j: f64) -> String {
    Joules(j).to_string()
}

/// Carbon with a readable unit (`Grams`' one human form) and the gas: mg, g, kg, t CO2e; `n/a`.
pub fn fmt_g(g: f64) -> String {
    if g.is_finite() {
        format!("{}CO2e", Grams(g))
    } else {
        "n/a".into()
    }
}

/// An optional number, or `n/a`.
pub fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{} {unit}", sig(x)),
        _ => "n/a".into(),
    }
}

/// Four significant figures, plain or scientific.
pub fn sig(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

fn carbon_cell(r: &RunReport) -> String {
    if r.carbon.zone.is_empty() && r.carbon.total_g == 0.0 {
        "n/a (no zone)".into()
    } else {
        fmt_g(r.carbon.total_g)
    }
}

fn short_command(r: &RunReport, max: usize) -> String {
    let c = r.command.join(" ");
    if c.chars().count() > max {
        let s: String = c.chars().take(max.saturating_sub(1)).collect();
        format!("{s}…")
    } else {
        c
    }
}

/// Aligned text table (columns padded to their widest cell).
pub fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Cells hold input (commands, ids, zones, labels): control characters and ANSI
    // sequences are escaped so a stored name cannot rewrite the terminal.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| wattprint_core::text::printable(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(c.chars().count());
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// The `wattprint runs` listing.
pub fn runs_table(runs: &[RunReport]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.started_at.clone(),
                r.status.as_str().to_string(),
                format!("{:.1} s", r.duration_s),
                fmt_j(r.energy.total_j),
                carbon_cell(r),
                if r.carbon.zone.is_empty() {
                    "-".into()
                } else {
                    r.carbon.zone.clone()
                },
                short_command(r, 40),
            ]
        })
        .collect();
    text_table(
        &[
            "ID", "STARTED", "STATUS", "DURATION", "ENERGY", "CARBON", "ZONE", "COMMAND",
        ],
        &rows,
    )
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// ` (interrupted)` / ` (running)` after a run's duration; empty for a finished run.
pub fn status_note(r: &RunReport) -> String {
    match r.status {
        RunStatus::Finished => String::new(),
        s => format!(" ({})", s.as_str()),
    }
}

/// Markdown report (one section per run), for pull requests.
pub fn markdown(runs: &[RunReport]) -> String {
    let mut s = String::from("# wattprint report\n\n");
    if runs.len() > 1 {
        s.push_str("| run | started | duration | energy | carbon | command |\n|---|---|---:|---:|---:|---|\n");
        for r in runs {
            s.push_str(&format!(
                "| `{}` | {} | {:.1} s{} | {} | {} | `{}` |\n",
                r.id,
                r.started_at,
                r.duration_s,
                status_note(r),
                fmt_j(r.energy.total_j),
                carbon_cell(r),
                md_escape(&short_command(r, 60))
            ));
        }
        s.push('\n');
    }
    for r in runs {
        s.push_str(&format!("## Run `{}`\n\n", r.id));
        s.push_str(&format!(
            "- command: `{}`\n- started: {} · duration {:.2} s · exit {}\n",
            md_escape(&r.command.join(" ")),
            r.started_at,
            r.duration_s,
            r.exit_code.map_or("n/a".into(), |c| c.to_string())
        ));
        if r.status != RunStatus::Finished {
            s.push_str(&format!(
                "- status: **{}**: energy, carbon and duration up to the last checkpoint\n",
                r.status.as_str()
            ));
        }
        if !r.host.hostname.is_empty() || r.host.cpu_model.is_some() {
            s.push_str(&format!(
                "- host: {} · CPU {} · GPU {}\n",
                if r.host.hostname.is_empty() {
                    "-"
                } else {
                    &r.host.hostname
                },
                r.host.cpu_model.as_deref().unwrap_or("-"),
                if r.host.gpu_models.is_empty() {
                    "-".into()
                } else {
                    r.host.gpu_models.join(", ")
                }
            ));
        }
        s.push_str(&format!(
            "- **Energy-to-Solution: {}** (facility, PUE {}: {})\n\n",
            fmt_j(r.energy.total_j),
            sig(r.energy.pue),
            fmt_j(r.energy.facility_j)
        ));
        s.push_str("| domain | kind | energy | avg power | source | method | in total |\n|---|---|---:|---:|---|---|---|\n");
        for d in &r.energy.domains {
            let rejected = r
                .energy
                .rejected
                .iter()
                .find(|x| x.domain == d.name && x.source == d.source);
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                md_escape(&d.name),
                d.kind,
                fmt_j(d.joules),
                fmt_opt(d.avg_power_w, "W"),
                md_escape(d.source.as_str()),
                d.method,
                match rejected {
                    Some(x) => format!("no (REJECTED: {})", x.verdict),
                    None if d.counted_in_total => "yes".into(),
                    None => "no (inside another)".into(),
                }
            ));
        }
        s.push('\n');
        if r.carbon.zone.is_empty() {
            s.push_str("Carbon: not computed (no zone given).\n\n");
        } else {
            s.push_str(&format!(
                "Carbon: **{}** (operational {}, embodied {}) at {} gCO2e/kWh for `{}`, {}-based, {} basis, source {}{}{}\n\n",
                fmt_g(r.carbon.total_g),
                fmt_g(r.carbon.operational_g),
                fmt_g(r.carbon.embodied_g),
                sig(r.carbon.intensity_g_per_kwh),
                r.carbon.zone,
                r.carbon.method,
                r.carbon.basis,
                md_escape(&r.carbon.intensity_source),
                r.carbon.intensity_year.map(|y| format!(" ({y})")).unwrap_or_default(),
                if r.carbon.fallback { " — **fallback factor**" } else { "" }
            ));
        }
        let m = &r.metrics;
        let rows = [
            ("FLOPs/W (achieved)", fmt_opt(m.flops_per_watt, "FLOP/J")),
            ("FLOPs/W (peak)", fmt_opt(m.peak_flops_per_watt, "FLOP/J")),
            ("J per token", fmt_opt(m.joules_per_token, "J")),
            ("J per inference", fmt_opt(m.joules_per_inference, "J")),
            (
                "carbon per inference",
                fmt_opt(m.carbon_per_inference_g, "g"),
            ),
            ("SCI", fmt_opt(m.sci_g_per_unit, "g per unit")),
        ];
        if rows.iter().any(|(_, v)| v != "n/a") {
            s.push_str("| metric | value |\n|---|---:|\n");
            for (k, v) in rows.iter().filter(|(_, v)| v != "n/a") {
                s.push_str(&format!("| {k} | {v} |\n"));
            }
            s.push('\n');
        }
        s.push_str(&format!(
            "Overhead: meter {:.3} CPU s ({:.3}% of the run), {} reads\n\n",
            r.overhead.meter_cpu_s,
            r.overhead.meter_cpu_fraction * 100.0,
            r.overhead.reads
        ));
        if !r.warnings.is_empty() {
            s.push_str("Warnings:\n");
            for w in &r.warnings {
                s.push_str(&format!("- {}\n", md_escape(w)));
            }
            s.push('\n');
        }
    }
    s
}

/// One CSV row per run, for spreadsheets.
pub fn csv(runs: &[RunReport]) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "started_at",
        "duration_s",
        "exit_code",
        "command",
        "host",
        "zone",
        "total_j",
        "pue",
        "facility_j",
        "carbon_total_g",
        "carbon_operational_g",
        "carbon_embodied_g",
        "intensity_g_per_kwh",
        "intensity_source",
        "intensity_year",
        "carbon_method",
        "carbon_basis",
        "market_operational_g",
        "flops",
        "inferences",
        "tokens",
        "flops_per_watt",
        "joules_per_token",
        "joules_per_inference",
        "carbon_per_inference_g",
        "meter_cpu_s",
        "methods",
        "labels",
        "status",
    ];
    let _ = w.write_record(header);
    let o = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in runs {
        let mut methods: Vec<&str> = r.energy.domains.iter().map(|d| d.method.as_str()).collect();
        methods.sort_unstable();
        methods.dedup();
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = w.write_record([
            r.id.clone(),
            r.started_at.clone(),
            r.duration_s.to_string(),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.command.join(" "),
            r.host.hostname.clone(),
            r.carbon.zone.clone(),
            r.energy.total_j.to_string(),
            r.energy.pue.to_string(),
            r.energy.facility_j.to_string(),
            r.carbon.total_g.to_string(),
            r.carbon.operational_g.to_string(),
            r.carbon.embodied_g.to_string(),
            r.carbon.intensity_g_per_kwh.to_string(),
            r.carbon.intensity_source.clone(),
            r.carbon
                .intensity_year
                .map(|y| y.to_string())
                .unwrap_or_default(),
            r.carbon.method.to_string(),
            r.carbon.basis.to_string(),
            o(r.carbon.market_operational_g),
            o(r.work.flops),
            o(r.work.inferences),
            o(r.work.tokens),
            o(r.metrics.flops_per_watt),
            o(r.metrics.joules_per_token),
            o(r.metrics.joules_per_inference),
            o(r.metrics.carbon_per_inference_g),
            r.overhead.meter_cpu_s.to_string(),
            methods.join(";"),
            labels.join(";"),
            r.status.as_str().to_string(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A JSON array of `wattprint.run/v1` reports.
pub fn json(runs: &[RunReport]) -> String {
    serde_json::to_string_pretty(runs).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wattprint_core::report::{CarbonBasis, DomainEnergy, PowerSeries, TimelineReport};
    use wattprint_core::{DomainKind, Method, SensorSource};

    pub fn sample(id: &str, j: f64) -> RunReport {
        let mut r = RunReport::new(id.into());
        r.started_at = "2026-03-01T10:00:00Z".into();
        r.duration_s = 4.0;
        r.command = vec!["python".into(), "train.py".into(), "--lr=1|2".into()];
        r.energy.domains = vec![
            DomainEnergy {
                name: "package-0".into(),
                kind: DomainKind::CpuPackage,
                joules: j * 0.25,
                source: SensorSource::RaplPowercap,
                method: Method::Counter,
                counted_in_total: true,
                device: None,
                avg_power_w: Some(j * 0.25 / 4.0),
                joules_low: None,
                joules_high: None,
                range_basis: None,
            },
            DomainEnergy {
                name: "gpu-0".into(),
                kind: DomainKind::Gpu,
                joules: j * 0.75,
                source: SensorSource::Nvml,
                method: Method::Counter,
                counted_in_total: true,
                device: Some("NVIDIA H100".into()),
                avg_power_w: Some(j * 0.75 / 4.0),
                joules_low: None,
                joules_high: None,
                range_basis: None,
            },
        ];
        r.energy.total_j = j;
        r.energy.facility_j = j * 1.2;
        r.energy.pue = 1.2;
        r.carbon.zone = "FR".into();
        r.carbon.intensity_g_per_kwh = 56.0;
        r.carbon.intensity_source = "Ember/OWID".into();
        r.carbon.intensity_year = Some(2024);
        r.carbon.basis = CarbonBasis::Lifecycle;
        r.carbon.method = wattprint_core::report::CarbonMethod::Location;
        r.carbon.operational_g = j * 1.2 / 3.6e6 * 56.0;
        r.carbon.total_g = r.carbon.operational_g;
        r.timeline = Some(TimelineReport {
            t_s: vec![0.5, 1.5, 2.5, 3.5],
            series: vec![
                PowerSeries {
                    domain: "package-0".into(),
                    watts: vec![10.0, 20.0, 30.0, 20.0],
                },
                PowerSeries {
                    domain: "gpu-0".into(),
                    watts: vec![100.0, 300.0, 250.0, 50.0],
                },
            ],
        });
        r
    }

    #[test]
    fn units_are_readable_and_never_print_nan() {
        assert_eq!(fmt_j(12.345), "12.35 J");
        assert_eq!(fmt_j(12_345.0), "12.35 kJ");
        assert_eq!(fmt_j(7.2e6), "2.000 kWh");
        assert_eq!(fmt_j(f64::NAN), "n/a");
        assert_eq!(fmt_g(0.0123), "12.300 mgCO2e");
        assert_eq!(fmt_g(2.5e6), "2.500 tCO2e");
        assert_eq!(fmt_opt(None, "J"), "n/a");
        assert_eq!(sig(1234.5678), "1235");
        assert_eq!(sig(0.012345), "0.01235");
    }

    #[test]
    fn markdown_marks_a_rejected_domain() {
        let mut r = sample("a", 1000.0);
        r.energy.domains[0].counted_in_total = false;
        r.energy.rejected.push(wattprint_core::report::Rejected {
            source: r.energy.domains[0].source.clone(),
            domain: r.energy.domains[0].name.clone(),
            verdict: "stuck".into(),
            reason: "did not advance".into(),
            replaced_by: vec!["cpu-model".into()],
        });
        let md = markdown(&[r]);
        assert!(md.contains("| no (REJECTED: stuck) |"), "{md}");
    }

    #[test]
    fn markdown_has_the_numbers_and_escapes_pipes() {
        let md = markdown(&[sample("a", 1000.0), sample("b", 2000.0)]);
        assert!(md.contains("| `a` |"));
        assert!(md.contains("Energy-to-Solution: 1.00 kJ"));
        assert!(md.contains("| gpu-0 | gpu | 1.50 kJ |"));
        assert!(md.contains("--lr=1\\|2"));
        assert!(md.contains("lifecycle basis"));
    }

    #[test]
    fn csv_round_trips_through_a_csv_reader() {
        let s = csv(&[sample("a", 1000.0)]);
        let mut rdr = ::csv::Reader::from_reader(s.as_bytes());
        let h = rdr.headers().unwrap().clone();
        let row = rdr.records().next().unwrap().unwrap();
        let get = |k: &str| {
            row.get(h.iter().position(|x| x == k).unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(get("total_j"), "1000");
        assert_eq!(get("command"), "python train.py --lr=1|2");
        assert_eq!(get("methods"), "counter");
    }

    #[test]
    fn an_interrupted_run_is_labelled_in_every_rendering() {
        let mut r = sample("cut", 500.0);
        r.status = RunStatus::Interrupted;
        let t = runs_table(&[r.clone(), sample("whole", 1.0)]);
        let lines: Vec<_> = t.lines().collect();
        let col = lines[0].find("STATUS").unwrap();
        assert_eq!(&lines[1][col..col + 11], "interrupted");
        assert_eq!(&lines[2][col..col + 8], "finished");
        let md = markdown(&[r.clone(), sample("whole", 1.0)]);
        assert!(md.contains(" s (interrupted) |"), "{md}");
        assert!(md.contains("- status: **interrupted**"), "{md}");
        let c = csv(&[r.clone()]);
        let mut rd = ::csv::Reader::from_reader(c.as_bytes());
        let h = rd.headers().unwrap().clone();
        let row = rd.records().next().unwrap().unwrap();
        let at = h.iter().position(|x| x == "status").unwrap();
        assert_eq!(&row[at], "interrupted");
        assert!(crate::html::html(&[r]).contains(" s (interrupted)"));
    }

    #[test]
    fn runs_table_aligns_columns() {
        let t = runs_table(&[sample("a", 1000.0), sample("bbbbbb", 2.0)]);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("STARTED").unwrap();
        assert_eq!(&lines[1][col..col + 4], "2026");
        assert_eq!(&lines[2][col..col + 4], "2026");
    }
}
