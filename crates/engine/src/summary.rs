//! The human summary of a run (printed on stderr by `wattprint run`): pure text from a report.
//! Modelled numbers are labelled as estimates; carbon is shown when the report has it.

use std::fmt::Write;
use wattprint_core::bounds::range_text;
use wattprint_core::report::RunReport;
use wattprint_core::{Joules, Method, Watts};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

fn method_label(m: Method) -> &'static str {
    match m {
        Method::Counter => "counter",
        Method::Power => "power (sampled)",
        Method::Model => "model (ESTIMATE)",
    }
}

/// The method of a total: the one method of its counted domains, or `mixed`.
fn total_method(r: &RunReport) -> &'static str {
    let mut methods = r
        .energy
        .domains
        .iter()
        .filter(|d| d.counted_in_total)
        .map(|d| d.method);
    match methods.next() {
        Some(m) if methods.all(|n| n == m) => m.as_str(),
        Some(_) => "mixed",
        None => "none",
    }
}

/// Render the summary table of `r`.
pub fn render(r: &RunReport) -> String {
    render_with(r, &[])
}

/// Render the summary with `carbon_lines` (e.g. from the carbon crate) in place of the short
/// built-in carbon line.
pub fn render_with(r: &RunReport, carbon_lines: &[String]) -> String {
    let mut s = String::new();
    let cmd = if r.command.is_empty() {
        "(window)".to_string()
    } else {
        wattprint_core::text::printable(&r.command.join(" ")).into_owned()
    };
    let status = match r.exit_code {
        Some(c) if c > 128 => format!("exit {c} (signal {})", c - 128),
        Some(c) => format!("exit {c}"),
        None => "did not run".into(),
    };
    let _ = writeln!(s, "wattprint: {cmd}: {status}, {:.3} s", r.duration_s);
    if r.energy.domains.is_empty() {
        let _ = writeln!(s, "  no energy sensor was usable: energy unknown");
    } else {
        let _ = writeln!(
            s,
            "  {:<16} {:>12} {:>11}  {:<17} in total",
            "domain", "energy", "avg power", "method"
        );
        for d in &r.energy.domains {
            let rejected = r
                .energy
                .rejected
                .iter()
                .find(|x| x.domain == d.name && x.source == d.source);
            let p = d
                .avg_power_w
                .map_or_else(|| "-".to_string(), |w| Watts(w).to_string());
            let range = match (d.joules_low, d.joules_high) {
                (Some(lo), Some(hi)) if lo < hi => {
                    format!("  ({})", range_text(lo, hi, |j| Joules(j).to_string()))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<16} {:>12} {:>11}  {:<17} {}{range}",
                d.name,
                Joules(d.joules).to_string(),
                p,
                method_label(d.method),
                match rejected {
                    Some(x) => format!("no (REJECTED: {})", x.verdict),
                    None if d.counted_in_total => "yes".into(),
                    None => "no (inside another)".into(),
                }
            );
        }
        let estimate = r
            .energy
            .domains
            .iter()
            .any(|d| d.counted_in_total && d.method == Method::Model);
        let total_range = match (r.energy.total_j_low, r.energy.total_j_high) {
            (Some(lo), Some(hi)) if lo < hi => format!(
                " ({}, {})",
                total_method(r),
                range_text(lo, hi, |j| Joules(j).to_string())
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {:<16} {:>12}{total_range}{}",
            "total",
            Joules(r.energy.total_j).to_string(),
            match (estimate, r.energy.model_filled_j) {
                (true, Some(f)) => format!(
                    "  (ESTIMATE: {} of it from the utilisation model, in place of a rejected or unread \
                     counter)",
                    Joules(f)
                ),
                (true, None) => "  (ESTIMATE: utilisation model, no energy counter usable)".into(),
                _ => String::new(),
            }
        );
        if r.energy.pue != 1.0 {
            let range = match (r.energy.facility_j_low, r.energy.facility_j_high) {
                (Some(lo), Some(hi)) if lo < hi => {
                    format!(" ({})", range_text(lo, hi, |j| Joules(j).to_string()))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  facility (PUE {:.2}) {}{range}",
                r.energy.pue,
                Joules(r.energy.facility_j)
            );
        }
    }
    if let Some(a) = &r.energy.attribution {
        let idle = a
            .idle_j
            .map_or_else(String::new, |j| format!(", of which idle {}", Joules(j)));
        let _ = writeln!(
            s,
            "  attributed to this command: {} ({:.1} % of the machine's busy CPU time); \
             rest of the machine {}{idle}",
            Joules(a.job_j),
            a.share * 100.0,
            Joules(a.rest_j)
        );
    }
    if !r.host.other_gpus.is_empty() {
        let names: Vec<&str> = r
            .host
            .other_gpus
            .iter()
            .map(|g| g.domain.as_str())
            .collect();
        let _ = writeln!(
            s,
            "  not the job's GPUs (not measured, not in the total): {}; chosen by {}",
            names.join(", "),
            r.host.gpu_selection.as_deref().unwrap_or("visibility")
        );
    }
    if let Some(a) = &r.energy.gpu_attribution {
        let idle = a.idle_j.filter(|j| *j > 0.0).map_or_else(String::new, |j| {
            format!(", of which idle GPUs {}", Joules(j))
        });
        let _ = writeln!(
            s,
            "  GPU energy attributed to this command: {} ({:.1} % by SM utilisation); other \
             GPU processes {}{idle}",
            Joules(a.job_j),
            a.share * 100.0,
            Joules(a.rest_j)
        );
    }
    for l in work_lines(r) {
        let _ = writeln!(s, "  {l}");
    }
    for l in carbon_lines {
        let _ = writeln!(s, "  {l}");
    }
    if carbon_lines.is_empty() && !r.carbon.zone.is_empty() {
        let _ = writeln!(
            s,
            "  carbon: {:.3} gCO2e ({} {} g/kWh, {} {}, {}{})",
            r.carbon.total_g,
            r.carbon.zone,
            r.carbon.intensity_g_per_kwh,
            r.carbon.method,
            r.carbon.basis,
            r.carbon.intensity_source,
            if r.carbon.fallback {
                ", FALLBACK zone"
            } else {
                ""
            }
        );
    }
    let o = &r.overhead;
    let _ = writeln!(
        s,
        "  overhead: {:.2} ms CPU ({:.4} % of the run), peak RSS {}, {} sensor reads",
        o.meter_cpu_s * 1e3,
        o.meter_cpu_fraction * 100.0,
        mib(o.peak_rss_bytes),
        o.reads
    );
    for w in &r.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    // Domain names, zones, labels and warnings quote input (sensor names, files, flags):
    // nothing in them may reach the terminal as a control sequence.
    wattprint_core::text::printable_text(&s).into_owned()
}

/// The declared work and performance-per-watt lines; empty when no work was declared.
pub fn work_lines(r: &RunReport) -> Vec<String> {
    let w = &r.work;
    let m = &r.metrics;
    let mut out = Vec::new();
    let mut parts = Vec::new();
    if let Some(f) = w.flops {
        let how = w.flops_formula.as_deref().unwrap_or("declared");
        parts.push(format!("{f:.3e} FLOPs ({how})"));
    }
    if let Some(t) = w.tokens {
        parts.push(format!("{t} tokens"));
    }
    if let Some(n) = w.inferences {
        parts.push(format!("{n} inferences"));
    }
    if parts.is_empty() {
        return out;
    }
    out.push(format!("work: {}", parts.join(", ")));
    let why = |k: &str| {
        m.notes
            .get(k)
            .map_or_else(|| "unknown".to_string(), |n| format!("n/a: {n}"))
    };
    if w.flops.is_some() {
        let achieved = m
            .flops_per_watt
            .map_or_else(|| why("flops_per_watt"), |v| format!("{v:.3e}"));
        let gpu = m
            .gpu_flops_per_watt
            .map_or_else(String::new, |v| format!(" (GPU energy only {v:.3e})"));
        out.push(format!("FLOPs/W achieved: {achieved}{gpu}"));
        let precision = w.precision.unwrap_or_default();
        let peak = match (m.peak_flops_per_watt, m.flops_per_watt_ratio) {
            (Some(p), Some(ratio)) => {
                format!(
                    "{p:.3e} at {precision}, achieved/peak {:.1} %",
                    ratio * 100.0
                )
            }
            (Some(p), None) => format!("{p:.3e} at {precision}"),
            (None, _) => why("peak_flops_per_watt"),
        };
        out.push(format!("FLOPs/W peak: {peak}"));
        if let Some(src) = &m.peak_flops_source {
            out.push(format!("  peak from {src}"));
        }
    }
    if w.tokens.is_some() {
        out.push(format!(
            "energy per token: {}",
            m.joules_per_token
                .map_or_else(|| why("joules_per_token"), |j| Joules(j).to_string())
        ));
    }
    if w.inferences.is_some() {
        out.push(format!(
            "energy per inference: {}",
            m.joules_per_inference
                .map_or_else(|| why("joules_per_inference"), |j| Joules(j).to_string())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::report::{CarbonReport, DomainEnergy};
    use wattprint_core::DomainKind;

    #[test]
    fn modelled_totals_are_labelled_estimates_and_carbon_shows_when_present() {
        let mut r = RunReport::new("x".into());
        r.command = vec!["sleep".into(), "2".into()];
        r.exit_code = Some(130);
        r.duration_s = 2.0;
        r.energy.domains.push(DomainEnergy {
            name: "cpu-model".into(),
            kind: DomainKind::CpuModel,
            joules: 2.5,
            source: wattprint_core::SensorSource::UtilisationModel,
            method: Method::Model,
            counted_in_total: true,
            device: None,
            avg_power_w: Some(1.25),
            joules_low: None,
            joules_high: None,
            range_basis: None,
        });
        r.energy.total_j = 2.5;
        let s = render(&r);
        assert!(s.contains("sleep 2: exit 130 (signal 2)"), "{s}");
        assert!(s.contains("model (ESTIMATE)"), "{s}");
        assert!(s.contains("2.50 J  (ESTIMATE: utilisation model"), "{s}");
        assert!(!s.contains("carbon"), "{s}");
        r.carbon = CarbonReport {
            zone: "FR".into(),
            total_g: 0.1,
            ..Default::default()
        };
        assert!(render(&r).contains("carbon: 0.100 gCO2e (FR"));
    }

    #[test]
    fn work_lines_show_flops_per_watt_and_say_why_a_figure_is_missing() {
        let mut r = RunReport::new("x".into());
        assert!(work_lines(&r).is_empty());
        r.work.flops = Some(3.15e23);
        r.work.flops_formula = Some("6*N*D (train mode)".into());
        r.work.tokens = Some(0.0);
        r.work.precision = Some(wattprint_core::work::Precision::Bf16);
        r.metrics.flops_per_watt = Some(1.25e11);
        r.metrics.gpu_flops_per_watt = Some(1.5e11);
        r.metrics.peak_flops_per_watt = Some(1.4134e12);
        r.metrics.flops_per_watt_ratio = Some(0.1061);
        r.metrics
            .notes
            .insert("joules_per_token".into(), "zero tokens declared".into());
        let l = work_lines(&r);
        assert_eq!(l[0], "work: 3.150e23 FLOPs (6*N*D (train mode)), 0 tokens");
        assert_eq!(
            l[1],
            "FLOPs/W achieved: 1.250e11 (GPU energy only 1.500e11)"
        );
        assert_eq!(l[2], "FLOPs/W peak: 1.413e12 at bf16, achieved/peak 10.6 %");
        assert_eq!(l[3], "energy per token: n/a: zero tokens declared");
    }
}
