//! Assembly of the `wattprint.run/v1` report, as a fixed sequence of steps.
//!
//! Each step is a plain function `fn(&mut RunReport, &ReportInputs, &ReportContext)` that fills
//! its own part of the report from measured data ([`ReportInputs`]) and what the caller knows
//! ([`ReportContext`]). [`STEPS`] lists them in order; a new capability (declared work from
//! accelerators, carbon) is one more function and one more line there. Steps are pure: no
//! clock, file or sensor access.

use std::collections::BTreeMap;
use wattprint_core::attribution;
use wattprint_core::report::{
    Attribution, DomainEnergy, Gap, Overhead, PowerSeries, RunReport, TimelineReport, Work,
};
use wattprint_core::timeline::Timeline;
use wattprint_core::{DomainDesc, Method};

/// What the caller knows about the run, beyond what the meter measured.
#[derive(Clone, Debug, Default)]
pub struct ReportContext {
    /// Run id; generated when `None`.
    pub id: Option<String>,
    /// The wrapped command, if any.
    pub command: Vec<String>,
    /// The child's exit status (128+N when killed by signal N).
    pub exit_code: Option<i32>,
    /// `--label k=v` pairs.
    pub labels: BTreeMap<String, String>,
    /// The job's CPU time over the window, s, for attribution on a shared machine.
    pub job_cpu_s: Option<f64>,
    /// Where `job_cpu_s` comes from, e.g. `wait4 rusage of the process tree (µs)`.
    pub job_cpu_source: Option<String>,
    /// CPU time the measuring itself cost, s; `None`: the meter's own accounting.
    pub meter_cpu_s: Option<f64>,
    /// Peak RSS of the measuring process, bytes; `None`: this process's.
    pub peak_rss_bytes: Option<u64>,
    /// Work declared by the user or the workload.
    pub work: Work,
    /// Power usage effectiveness of the facility (default 1.0).
    pub pue: Option<f64>,
    /// Extra warnings from the caller.
    pub warnings: Vec<String>,
}

/// Everything measured for one window, gathered by the session (plain data).
#[derive(Clone, Debug, Default)]
pub struct ReportInputs {
    pub id: String,
    /// RFC 3339 wall-clock start (a label).
    pub started_at: String,
    pub duration_s: f64,
    pub hostname: String,
    pub cpu_model: Option<String>,
    /// Domains, in meter order.
    pub domains: Vec<DomainDesc>,
    /// Energy per domain over the window, J (meter order).
    pub joules: Vec<f64>,
    /// Idle power per domain when the sensor knows it, W (meter order).
    pub idle_w: Vec<Option<f64>>,
    /// Gaps overlapping the window, clipped to it, times relative to the window start.
    pub gaps: Vec<Gap>,
    /// Machine busy CPU time over the window, s (from `/proc/stat`).
    pub machine_busy_cpu_s: Option<f64>,
    /// The meter's own CPU time, s.
    pub meter_cpu_s: f64,
    pub peak_rss_bytes: u64,
    pub reads: u64,
    /// Set-up steps of the sensors used (`none` omitted).
    pub setup_steps: Vec<String>,
    /// The meter's timeline, clipped to the window, times relative to the window start.
    pub timeline: Timeline,
    /// Discovery notes (fallbacks).
    pub notes: Vec<String>,
}

/// One report step.
pub type Step = fn(&mut RunReport, &ReportInputs, &ReportContext);

/// The report steps, in order.
pub const STEPS: &[Step] = &[
    header,
    energy,
    attribution,
    work, // accelerators' work/FLOPs step goes here
    // carbon step goes here (fills report.carbon, energy.pue, energy.facility_j)
    metrics,
    overhead,
    timeline,
    warnings,
];

/// Run every step of [`STEPS`] on a fresh report.
pub fn assemble(inputs: &ReportInputs, ctx: &ReportContext) -> RunReport {
    let mut r = RunReport::new(inputs.id.clone());
    for step in STEPS {
        step(&mut r, inputs, ctx);
    }
    r
}

/// Identity, command, exit status, times, host, labels.
pub fn header(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    r.command = ctx.command.clone();
    r.exit_code = ctx.exit_code;
    r.started_at = i.started_at.clone();
    r.duration_s = i.duration_s;
    r.host.hostname = i.hostname.clone();
    r.host.cpu_model = i.cpu_model.clone();
    r.labels = ctx.labels.clone();
}

/// Per-domain energy and average power, the total (each joule once), PUE, facility energy
/// and gaps.
pub fn energy(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    r.energy.domains = i
        .domains
        .iter()
        .zip(&i.joules)
        .map(|(d, j)| DomainEnergy {
            name: d.name.clone(),
            kind: d.kind,
            joules: *j,
            source: d.source.clone(),
            method: d.method,
            counted_in_total: d.counted_in_total,
            device: d.device.clone(),
            avg_power_w: (i.duration_s > 0.0).then(|| j / i.duration_s),
        })
        .collect();
    r.energy.total_j = r
        .energy
        .domains
        .iter()
        .filter(|d| d.counted_in_total)
        .map(|d| d.joules)
        .sum();
    r.energy.pue = ctx
        .pue
        .filter(|p| p.is_finite() && *p >= 1.0)
        .unwrap_or(1.0);
    r.energy.facility_j = r.energy.total_j * r.energy.pue;
    r.energy.gaps = i.gaps.clone();
}

/// The job's CPU-time share of the machine's energy, idle kept apart when known.
pub fn attribution(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    let Some(job_cpu_s) = ctx.job_cpu_s else {
        return;
    };
    let Some(share) = i
        .machine_busy_cpu_s
        .and_then(|busy| attribution::cpu_share(job_cpu_s, busy))
    else {
        r.warnings
            .push("attribution skipped: the machine recorded no busy CPU time over the run".into());
        return;
    };
    let counted: Vec<usize> = (0..i.domains.len())
        .filter(|&k| i.domains[k].counted_in_total)
        .collect();
    let idle_known: Vec<f64> = counted.iter().filter_map(|&k| i.idle_w[k]).collect();
    let idle_j = (!idle_known.is_empty() && idle_known.len() == counted.len())
        .then(|| idle_known.iter().sum::<f64>() * i.duration_s);
    let split = attribution::split(r.energy.total_j, share, idle_j);
    let source = ctx
        .job_cpu_source
        .clone()
        .unwrap_or_else(|| "job CPU time".into());
    let idle_note = if idle_j.is_some() {
        "share of active energy (machine minus modelled idle)"
    } else {
        "share of all machine energy (idle not separable with these sensors)"
    };
    r.energy.attribution = Some(Attribution {
        method: format!(
            "cpu-time share: {source} / machine busy CPU time (/proc/stat, 10 ms ticks); \
             {idle_note}"
        ),
        share,
        machine_j: split.machine_j,
        job_j: split.job_j,
        rest_j: split.rest_j,
        idle_j: split.idle_j,
    });
}

/// Declared work.
pub fn work(r: &mut RunReport, _i: &ReportInputs, ctx: &ReportContext) {
    r.work = ctx.work.clone();
}

/// Energy-to-solution and the per-unit metrics that need no carbon; a note for every null.
pub fn metrics(r: &mut RunReport, _i: &ReportInputs, _ctx: &ReportContext) {
    let e2s = r.energy.total_j;
    let m = &mut r.metrics;
    m.energy_to_solution_j = e2s;
    m.facility_energy_to_solution_j = r.energy.facility_j;
    let per = |x: Option<f64>| x.filter(|v| *v > 0.0 && e2s > 0.0);
    m.flops_per_watt = per(r.work.flops).map(|f| f / e2s);
    m.joules_per_token = per(r.work.tokens).map(|t| e2s / t);
    m.joules_per_inference = per(r.work.inferences).map(|n| e2s / n);
    let mut note = |field: &str, set: bool, why: &str| {
        if !set {
            m.notes.entry(field.into()).or_insert_with(|| why.into());
        }
    };
    let zero = if e2s > 0.0 {
        ""
    } else {
        " (or no energy measured)"
    };
    note(
        "flops_per_watt",
        m.flops_per_watt.is_some(),
        &format!("no FLOPs declared (--flops, or --params with --tokens){zero}"),
    );
    note(
        "joules_per_token",
        m.joules_per_token.is_some(),
        &format!("no tokens declared (--tokens){zero}"),
    );
    note(
        "joules_per_inference",
        m.joules_per_inference.is_some(),
        &format!("no inferences declared (--inferences){zero}"),
    );
    for (f, set) in [
        ("peak_flops_per_watt", m.peak_flops_per_watt.is_some()),
        ("carbon_per_inference_g", m.carbon_per_inference_g.is_some()),
        ("sci_g_per_unit", m.sci_g_per_unit.is_some()),
    ] {
        note(
            f,
            set,
            "not computed in this build (needs accelerator specs / carbon intensity)",
        );
    }
}

/// The Operational Overhead Score inputs: the meter's CPU time and share, peak RSS, reads,
/// set-up steps.
pub fn overhead(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    let cpu_s = ctx.meter_cpu_s.unwrap_or(i.meter_cpu_s).max(0.0);
    r.overhead = Overhead {
        meter_cpu_s: cpu_s,
        meter_cpu_fraction: if i.duration_s > 0.0 {
            cpu_s / i.duration_s
        } else {
            0.0
        },
        peak_rss_bytes: ctx.peak_rss_bytes.unwrap_or(i.peak_rss_bytes),
        reads: i.reads,
        setup_steps: i.setup_steps.clone(),
    };
}

/// Power over time per domain (interval averages), omitted when fewer than two points.
pub fn timeline(r: &mut RunReport, i: &ReportInputs, _ctx: &ReportContext) {
    let series = i.timeline.power_series();
    if series.is_empty() {
        return;
    }
    r.timeline = Some(TimelineReport {
        t_s: series.iter().map(|(t, _)| *t).collect(),
        series: i
            .domains
            .iter()
            .enumerate()
            .map(|(k, d)| PowerSeries {
                domain: d.name.clone(),
                watts: series
                    .iter()
                    .map(|(_, w)| w.get(k).copied().unwrap_or(0.0))
                    .collect(),
            })
            .collect(),
    });
}

/// Everything the reader must know to trust the numbers: fallbacks, estimates, gaps.
pub fn warnings(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    r.warnings.extend(i.notes.iter().cloned());
    if i.domains.is_empty() {
        r.warnings.push(
            "no energy sensor was usable: energy is unknown (see `wattprint sensors`)".into(),
        );
    } else if i
        .domains
        .iter()
        .any(|d| d.counted_in_total && d.method == Method::Model)
        && i.notes.is_empty()
    {
        r.warnings
            .push("part of the total is an ESTIMATE from the utilisation model".into());
    }
    for g in &i.gaps {
        r.warnings.push(format!(
            "{} unreadable from {:.3} s to {:.3} s ({}): its energy there is missing from the total",
            g.domain, g.from_s, g.to_s, g.reason
        ));
    }
    r.warnings.extend(ctx.warnings.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::DomainKind;

    fn dom(name: &str, kind: DomainKind, method: Method, counted: bool) -> DomainDesc {
        DomainDesc {
            name: name.into(),
            kind,
            source: "test".into(),
            method,
            counted_in_total: counted,
            device: None,
        }
    }

    fn inputs() -> ReportInputs {
        let mut tl = Timeline::new(100);
        tl.push(0.0, vec![0.0, 0.0, 0.0]);
        tl.push(1.0, vec![50.0, 20.0, 5.0]);
        tl.push(2.0, vec![100.0, 40.0, 10.0]);
        ReportInputs {
            id: "r1".into(),
            started_at: "2026-11-29T02:31:12Z".into(),
            duration_s: 2.0,
            domains: vec![
                dom("package-0", DomainKind::CpuPackage, Method::Counter, true),
                dom("core-0", DomainKind::CpuCore, Method::Counter, false),
                dom("dram-0", DomainKind::Dram, Method::Counter, true),
            ],
            joules: vec![100.0, 40.0, 10.0],
            idle_w: vec![None; 3],
            machine_busy_cpu_s: Some(4.0),
            meter_cpu_s: 0.001,
            peak_rss_bytes: 4 << 20,
            reads: 7,
            timeline: tl,
            ..Default::default()
        }
    }

    #[test]
    fn total_counts_package_and_dram_once() {
        let r = assemble(&inputs(), &ReportContext::default());
        assert_eq!(r.energy.total_j, 110.0);
        assert_eq!(r.energy.facility_j, 110.0);
        assert_eq!(r.metrics.energy_to_solution_j, 110.0);
        assert_eq!(r.energy.domains[0].avg_power_w, Some(50.0));
        assert_eq!(r.overhead.meter_cpu_fraction, 0.0005);
        assert_eq!(r.overhead.reads, 7);
        let tl = r.timeline.unwrap();
        assert_eq!(tl.t_s, vec![0.5, 1.5]);
        assert_eq!(tl.series[0].watts, vec![50.0, 50.0]);
        assert!(r.metrics.notes.contains_key("flops_per_watt"));
    }

    #[test]
    fn attribution_splits_by_cpu_share() {
        let ctx = ReportContext {
            job_cpu_s: Some(1.0),
            job_cpu_source: Some("rusage".into()),
            ..Default::default()
        };
        let r = assemble(&inputs(), &ctx);
        let a = r.energy.attribution.unwrap();
        assert_eq!(a.share, 0.25);
        assert_eq!(a.machine_j, 110.0);
        assert_eq!(a.job_j, 27.5);
        assert_eq!(a.rest_j, 82.5);
        assert_eq!(a.idle_j, None);
    }

    #[test]
    fn modelled_idle_is_kept_apart() {
        let mut i = inputs();
        i.domains = vec![dom("cpu-model", DomainKind::CpuModel, Method::Model, true)];
        i.joules = vec![30.0];
        i.idle_w = vec![Some(5.0)];
        let ctx = ReportContext {
            job_cpu_s: Some(2.0),
            ..Default::default()
        };
        let r = assemble(&i, &ctx);
        let a = r.energy.attribution.unwrap();
        // 10 J idle over 2 s; half the busy time of the 20 J active.
        assert_eq!((a.idle_j, a.job_j, a.rest_j), (Some(10.0), 10.0, 20.0));
        assert!(r.warnings.iter().any(|w| w.contains("ESTIMATE")));
    }

    #[test]
    fn no_busy_time_skips_attribution_with_a_warning() {
        let mut i = inputs();
        i.machine_busy_cpu_s = Some(0.0);
        let ctx = ReportContext {
            job_cpu_s: Some(1.0),
            ..Default::default()
        };
        let r = assemble(&i, &ctx);
        assert!(r.energy.attribution.is_none());
        assert!(r.warnings.iter().any(|w| w.contains("attribution skipped")));
    }

    #[test]
    fn declared_work_gives_per_unit_metrics() {
        let ctx = ReportContext {
            work: Work {
                flops: Some(1.1e12),
                tokens: Some(1100.0),
                ..Default::default()
            },
            pue: Some(1.5),
            ..Default::default()
        };
        let r = assemble(&inputs(), &ctx);
        assert_eq!(r.metrics.flops_per_watt, Some(1e10));
        assert_eq!(r.metrics.joules_per_token, Some(0.1));
        assert_eq!(r.energy.facility_j, 165.0);
        assert!(!r.metrics.notes.contains_key("flops_per_watt"));
    }

    #[test]
    fn zero_duration_never_divides() {
        let mut i = inputs();
        i.duration_s = 0.0;
        let r = assemble(&i, &ReportContext::default());
        assert_eq!(r.energy.domains[0].avg_power_w, None);
        assert_eq!(r.overhead.meter_cpu_fraction, 0.0);
    }

    #[test]
    fn gaps_become_warnings() {
        let mut i = inputs();
        i.gaps = vec![Gap {
            domain: "dram-0".into(),
            from_s: 0.5,
            to_s: 1.0,
            reason: "garbage".into(),
        }];
        let r = assemble(&i, &ReportContext::default());
        assert_eq!(r.energy.gaps.len(), 1);
        assert!(r.warnings.iter().any(|w| w.contains("dram-0 unreadable")));
    }
}
