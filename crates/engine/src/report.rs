//! Assembly of the `wattprint.run/v1` report, as a fixed sequence of steps.
//!
//! Each step is a plain function `fn(&mut RunReport, &ReportInputs, &ReportContext)` that fills
//! its own part of the report from measured data ([`ReportInputs`]) and what the caller knows
//! ([`ReportContext`]). [`STEPS`] lists them in order; a new capability (declared work from
//! accelerators, carbon) is one more function and one more line there. Steps are pure: no
//! clock, file or sensor access.

use std::collections::{BTreeMap, BTreeSet};
use wattprint_core::attribution;
use wattprint_core::bounds;
use wattprint_core::gpu_share::{self, GpuEnergy, ProcUtil};
use wattprint_core::report::{
    Attribution, DomainEnergy, Gap, GpuHost, OtherGpu, Overhead, PowerSeries, Rejected, RunReport,
    TimelineReport, Work,
};
use wattprint_core::timeline::Timeline;
use wattprint_core::trust::{self as evidence, DomainWindow, Evidence, Verdict};
use wattprint_core::work::{self, MetricEnergy, Precision};
use wattprint_core::DomainKind;
use wattprint_core::{DomainDesc, Method, SensorSource};
use wattprint_sensors::gpu::GpuDevice;

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
    /// The carbon inputs, resolved before assembly ([`wattprint_carbon::resolve`]: the zone's
    /// factor, intensity file, live provider, PUE, embodied hardware); `None`: no carbon.
    pub carbon: Option<wattprint_carbon::ResolvedCarbon>,
    /// The git commit of the working directory the run started in.
    pub git_commit: Option<String>,
    /// The forecast at completion from the workload's progress reports (energy; the carbon
    /// step adds its grams), with the budget and why the run was stopped, if it was.
    pub forecast: Option<wattprint_core::forecast::ForecastReport>,
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
    /// The (low, high) power a sensor vouches for per domain, W (meter order; the model's
    /// span), for the energy's bounds.
    pub power_bounds_w: Vec<Option<(f64, f64)>>,
    /// Per domain (meter order): the bound of the trapezoid's integration error over the
    /// window, J (sampled power; zeros or missing for counters and the model).
    pub integration_err_j: Vec<f64>,
    /// Per domain (meter order): read by a standby sensor (not counted unless swapped in for
    /// a rejected domain). Missing entries: not standby.
    pub standby: Vec<bool>,
    /// Per domain (meter order): the maximum power its sensor declares, W.
    pub max_power_w: Vec<Option<f64>>,
    /// Gaps overlapping the window, clipped to it, times relative to the window start
    /// (standby domains' gaps left out).
    pub gaps: Vec<Gap>,
    /// Per domain (meter order): seconds of the window it went unread (its gaps), s.
    pub gap_s: Vec<f64>,
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
    /// GPUs measured (their domains are among `domains`): the job's where it chose them.
    pub gpus: Vec<GpuDevice>,
    /// How the job's GPUs were chosen and the node's others (not measured).
    pub gpu_choice: Option<crate::discover::GpuChoice>,
    /// Per-process GPU utilisation samples over the window.
    pub gpu_samples: Vec<ProcUtil>,
    /// The processes of the wrapped job seen in `gpu_samples`.
    pub gpu_job_pids: BTreeSet<u32>,
}

/// One report step.
pub type Step = fn(&mut RunReport, &ReportInputs, &ReportContext);

/// The report steps, in order.
pub const STEPS: &[Step] = &[
    header,
    energy,
    trust,
    attribution,
    gpu_attribution,
    work,
    metrics,
    forecast,
    overhead,
    timeline,
    warnings,
    carbon,
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
    r.host.git_commit = ctx.git_commit.clone();
}

/// Per-domain energy and average power, the total (each joule once), PUE, facility energy
/// and gaps.
pub fn energy(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    r.energy.domains = (0..i.domains.len())
        .filter(|&k| !is_standby(i, k))
        .map(|k| domain_energy(i, k, i.domains[k].counted_in_total))
        .collect();
    r.energy.pue = ctx
        .pue
        .filter(|p| p.is_finite() && *p >= 1.0)
        .unwrap_or(1.0);
    r.energy.gaps = i.gaps.clone();
    set_total(r);
}

fn is_standby(i: &ReportInputs, k: usize) -> bool {
    i.standby.get(k).copied().unwrap_or(false)
}

fn domain_energy(i: &ReportInputs, k: usize, counted: bool) -> DomainEnergy {
    let d = &i.domains[k];
    let j = i.joules.get(k).copied().unwrap_or(0.0);
    let pb = i.power_bounds_w.get(k).copied().flatten();
    let (b, basis) = bounds::domain_bounds(d.method, &d.source, j, i.duration_s, pb);
    // Sampled power: the integration error between polls widens the sensor's own accuracy.
    let err = i.integration_err_j.get(k).copied().unwrap_or(0.0);
    let (b, basis) = if err > 0.0 && err.is_finite() {
        (
            bounds::Bounds::new((b.low - err).max(0.0), b.value, b.high + err),
            format!("{basis}; + trapezoid bound between polls {err:.3} J"),
        )
    } else {
        (b, basis.to_string())
    };
    DomainEnergy {
        name: d.name.clone(),
        kind: d.kind,
        joules: j,
        source: d.source.clone(),
        method: d.method,
        counted_in_total: counted,
        device: d.device.clone(),
        avg_power_w: (i.duration_s > 0.0).then(|| j / i.duration_s),
        joules_low: Some(b.low),
        joules_high: Some(b.high),
        range_basis: Some(basis),
    }
}

/// The total (each joule once) and facility energy from the domains' flags.
fn set_total(r: &mut RunReport) {
    r.energy.total_j = r
        .energy
        .domains
        .iter()
        .filter(|d| d.counted_in_total)
        .map(|d| d.joules)
        .sum();
    r.energy.facility_j = r.energy.total_j * r.energy.pue;
    bounds::fill_report_ranges(r);
}

/// Evidence before trust: judge every measured domain over the window against its length and
/// the machine's busy CPU time ([`wattprint_core::trust::judge`]); a rejected domain stays
/// listed, uncounted, in `energy.rejected`, and the standby domain of its scope is counted in
/// its place ([`wattprint_core::trust::plan_swaps`]). Domains with a gap in the window are
/// not judged (their energy is partial, and the gap is reported).
pub fn trust(r: &mut RunReport, i: &ReportInputs, _ctx: &ReportContext) {
    let ev = Evidence {
        window_s: i.duration_s,
        machine_busy_cpu_s: i.machine_busy_cpu_s,
    };
    let verdicts: Vec<Verdict> = (0..i.domains.len())
        .map(|k| {
            let d = &i.domains[k];
            let j = i.joules.get(k).copied().unwrap_or(0.0);
            let gap_s = i.gap_s.get(k).copied().unwrap_or(0.0);
            if gap_s > 0.0 {
                // Unread for the whole window: nothing measured at all. Partly unread: the
                // gap is reported (and filled below), the rest is not judged on less.
                if j == 0.0 && gap_s >= i.duration_s * (1.0 - WHOLE_WINDOW_TOLERANCE) {
                    let why = i
                        .gaps
                        .iter()
                        .find(|g| g.domain == d.name)
                        .map_or("no reading", |g| g.reason.as_str());
                    return Verdict::Unreadable(format!(
                        "no value over the whole {:.3} s ({why})",
                        i.duration_s
                    ));
                }
                return Verdict::Ok;
            }
            // Only the zone's own declared maximum bounds it: in a VM, cpuinfo's TDP x
            // sockets describes the guest, while a passed-through package counts the host's
            // whole socket.
            let max = i.max_power_w.get(k).copied().flatten();
            evidence::judge(
                &DomainWindow {
                    kind: d.kind,
                    method: d.method,
                    energy_j: j,
                    max_power_w: max,
                },
                &ev,
            )
        })
        .collect();
    let plan = evidence::plan_swaps(&i.domains, &i.standby, &verdicts);
    for d in r.energy.domains.iter_mut() {
        if let Some(k) = (0..i.domains.len()).find(|&k| {
            !is_standby(i, k) && i.domains[k].name == d.name && i.domains[k].source == d.source
        }) {
            d.counted_in_total = plan.counted[k];
        }
    }
    let mut filled_j = None::<f64>;
    for k in (0..i.domains.len()).filter(|&k| is_standby(i, k) && plan.counted[k]) {
        let de = domain_energy(i, k, true);
        if de.method == Method::Model {
            *filled_j.get_or_insert(0.0) += de.joules;
        }
        r.energy.domains.push(de);
    }
    for s in &plan.swaps {
        let d = &i.domains[s.rejected];
        let replaced_by: Vec<String> = s
            .replaced_by
            .iter()
            .map(|&k| i.domains[k].name.clone())
            .collect();
        let reason = verdicts[s.rejected]
            .reason()
            .unwrap_or_default()
            .to_string();
        let instead = if replaced_by.is_empty() {
            "nothing else covers it: its energy is missing from the total".to_string()
        } else {
            let src = &i.domains[s.replaced_by[0]].source;
            format!("counted instead: {} ({src})", replaced_by.join(", "))
        };
        r.warnings.push(format!(
            "{} ({}) REJECTED, {}: {reason}; {instead}",
            d.name,
            d.source,
            verdicts[s.rejected].as_str()
        ));
        r.energy.rejected.push(Rejected {
            source: d.source.clone(),
            domain: d.name.clone(),
            verdict: verdicts[s.rejected].as_str().to_string(),
            reason,
            replaced_by,
        });
    }
    for &k in &plan.covered {
        r.warnings.push(format!(
            "{} ({}) not counted: the model domain counted for a rejected domain covers it",
            i.domains[k].name, i.domains[k].source
        ));
    }
    for f in gap_fills(i, &plan.counted) {
        let de = &mut r.energy.domains;
        r.warnings.push(format!(
            "{} unread for {:.3} s of the window: {} from {} filled in",
            i.domains[f.gapped].name,
            f.gap_s,
            wattprint_core::Joules(f.joules),
            i.domains[f.model].name
        ));
        *filled_j.get_or_insert(0.0) += f.joules;
        let m = &i.domains[f.model];
        let pb = i.power_bounds_w.get(f.model).copied().flatten();
        let (b, basis) = bounds::domain_bounds(m.method, &m.source, f.joules, f.gap_s, pb);
        de.push(DomainEnergy {
            joules_low: Some(b.low),
            joules_high: Some(b.high),
            range_basis: Some(basis.to_string()),
            name: format!("{}-for-{}", m.name, i.domains[f.gapped].name),
            kind: m.kind,
            joules: f.joules,
            source: m.source.clone(),
            method: m.method,
            counted_in_total: true,
            device: Some(format!(
                "fills {}'s {:.3} s unread",
                i.domains[f.gapped].name, f.gap_s
            )),
            avg_power_w: (i.duration_s > 0.0).then(|| f.joules / i.duration_s),
        });
    }
    r.energy.model_filled_j = filled_j;
    set_total(r);
}

/// A gap's share filled by a standby model domain.
struct GapFill {
    gapped: usize,
    model: usize,
    gap_s: f64,
    joules: f64,
}

/// How long a domain may go unread and still be "unread for the whole window": a relative
/// tolerance for the gap's end falling one read before the window's end.
const WHOLE_WINDOW_TOLERANCE: f64 = 0.02;

/// Partly unread counted domains, each filled by the standby model domain of its scope: the
/// model's average power over the window x the unread seconds, split evenly between the
/// counted measured domains that model domain covers (two packages share `cpu-model`). An
/// approximation (the model's power is averaged over the window, not over the gap), labelled
/// as such in the report.
fn gap_fills(i: &ReportInputs, counted: &[bool]) -> Vec<GapFill> {
    if i.duration_s <= 0.0 {
        return Vec::new();
    }
    let measured_counted = |kind: DomainKind| {
        (0..i.domains.len())
            .filter(|&k| counted[k] && i.domains[k].method != Method::Model)
            .filter(|&k| i.domains[k].kind == kind)
            .count()
    };
    let mut fills = Vec::new();
    for g in 0..i.domains.len() {
        let gap_s = i.gap_s.get(g).copied().unwrap_or(0.0);
        if !counted[g] || is_standby(i, g) || gap_s <= 0.0 || i.domains[g].method == Method::Model {
            continue;
        }
        for mk in evidence::model_scope(i.domains[g].kind) {
            let Some(m) = (0..i.domains.len())
                .find(|&k| is_standby(i, k) && !counted[k] && i.domains[k].kind == *mk)
            else {
                continue;
            };
            let sharing: usize = evidence::covered_by(*mk)
                .iter()
                .map(|&k| measured_counted(k))
                .sum();
            let model_j = i.joules.get(m).copied().unwrap_or(0.0);
            fills.push(GapFill {
                gapped: g,
                model: m,
                gap_s,
                joules: model_j * (gap_s / i.duration_s).min(1.0) / sharing.max(1) as f64,
            });
        }
    }
    fills
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
    // Counted after the trust step, in meter order (a standby domain may have been swapped in).
    let counted: Vec<usize> = r
        .energy
        .domains
        .iter()
        .filter(|d| d.counted_in_total)
        .filter_map(|d| {
            (0..i.domains.len())
                .find(|&k| i.domains[k].name == d.name && i.domains[k].source == d.source)
        })
        .collect();
    let idle_known: Vec<f64> = counted
        .iter()
        .filter_map(|&k| i.idle_w.get(k).copied().flatten())
        .collect();
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
        ..Default::default()
    });
}

/// The job's share of shared GPUs, from per-process SM utilisation samples.
pub fn gpu_attribution(r: &mut RunReport, i: &ReportInputs, _ctx: &ReportContext) {
    if i.gpus.is_empty() || i.gpu_samples.is_empty() {
        return;
    }
    // Per-process samples come from NVML: only NVML GPUs take part (AMD indices overlap).
    let energies: Vec<GpuEnergy> = i
        .gpus
        .iter()
        .filter(|g| g.source == SensorSource::Nvml)
        .filter_map(|g| {
            let k = i.domains.iter().position(|d| d.name == g.domain)?;
            Some(GpuEnergy {
                gpu_index: g.index,
                joules: *i.joules.get(k)?,
            })
        })
        .collect();
    match gpu_share::attribute_gpu_energy(&energies, &i.gpu_samples, &i.gpu_job_pids) {
        Ok((a, _)) => r.energy.gpu_attribution = Some(a),
        Err(why) => r
            .warnings
            .push(format!("GPU attribution not applied: {why}")),
    }
}

/// Declared work, the GPUs measured, and the node's GPUs that are not the job's.
pub fn work(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    r.work = ctx.work.clone();
    r.host.gpu_models = i.gpus.iter().map(|g| g.name.clone()).collect();
    r.host.gpus = i
        .gpus
        .iter()
        .map(|g| GpuHost {
            domain: g.domain.clone(),
            name: g.name.clone(),
            uuid: g.uuid.clone(),
            power_limit_w: g.power_limit_w,
            mig_enabled: g.mig_enabled,
            source: g.source.clone(),
        })
        .collect();
    if let Some(c) = &i.gpu_choice {
        r.host.gpu_selection = Some(c.basis.clone());
        r.host.other_gpus = c
            .excluded
            .iter()
            .map(|(g, reason)| OtherGpu {
                domain: g.domain.clone(),
                name: g.name.clone(),
                uuid: g.uuid.clone(),
                reason: reason.clone(),
            })
            .collect();
    }
}

/// Peak FLOPs/W inputs of the GPUs measured, at `precision`, and a source line.
fn gpu_peaks(gpus: &[GpuDevice], precision: Precision) -> (Vec<work::DevicePeak>, Option<String>) {
    let mut peaks = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for g in gpus {
        let (p, label) = wattprint_data::gpu::device_peak(&g.name, precision);
        peaks.push(p);
        labels.push(label.unwrap_or_else(|| format!("{} (not in the table)", g.name)));
    }
    let source = (!labels.is_empty()).then(|| {
        format!(
            "sum of peaks / sum of TDPs at {precision}: {} (data/gpu-specs.csv)",
            labels.join(", ")
        )
    });
    (peaks, source)
}

/// The forecast section as the front end computed it (the carbon step adds its grams).
pub fn forecast(r: &mut RunReport, _i: &ReportInputs, ctx: &ReportContext) {
    r.forecast = ctx.forecast.clone();
}

/// Energy-to-solution and the per-unit metrics that need no carbon (FLOPs/W achieved, for the
/// GPUs alone and at peak, J/token, J/inference: [`work::fill_work_metrics`]); a note for
/// every null.
pub fn metrics(r: &mut RunReport, i: &ReportInputs, _ctx: &ReportContext) {
    let e2s = r.energy.total_j;
    r.metrics.energy_to_solution_j = e2s;
    r.metrics.facility_energy_to_solution_j = r.energy.facility_j;
    let gpu_j = (!i.gpus.is_empty()).then(|| {
        r.energy
            .domains
            .iter()
            .filter(|d| d.kind == DomainKind::Gpu)
            .map(|d| d.joules)
            .sum::<f64>()
    });
    let precision = r.work.precision.unwrap_or_default();
    let (peaks, source) = gpu_peaks(&i.gpus, precision);
    work::fill_work_metrics(
        &mut r.metrics,
        &r.work,
        MetricEnergy { e2s_j: e2s, gpu_j },
        &peaks,
    );
    r.metrics.peak_flops_source = source;
    bounds::fill_report_ranges(r);
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
            .filter(|(k, d)| {
                !is_standby(i, *k)
                    || r.energy
                        .domains
                        .iter()
                        .any(|e| e.name == d.name && e.source == d.source)
            })
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

/// Carbon: PUE, facility energy, operational (location- and market-based) and embodied
/// carbon and the carbon metrics, from the inputs resolved before assembly
/// ([`ReportContext::carbon`]), by the pure [`wattprint_carbon::apply_resolved`]. Last, so that
/// it sees the work, the timeline (for intensity series) and the GPUs measured (embodied), and
/// its warnings follow the measurement's. A failure keeps the measured energy and says why
/// carbon is missing; every carbon metric left null has a note.
pub fn carbon(r: &mut RunReport, _i: &ReportInputs, ctx: &ReportContext) {
    let why = match &ctx.carbon {
        Some(c) => match wattprint_carbon::apply_resolved(r, c) {
            Ok(()) => return,
            Err(e) => {
                r.warnings.push(format!("carbon not computed: {e}"));
                format!("carbon not computed: {e}")
            }
        },
        None => "carbon not computed: no carbon options were resolved for this report".into(),
    };
    for f in [
        "carbon_per_inference_g",
        "carbon_per_1k_tokens_g",
        "sci_g_per_unit",
    ] {
        r.metrics
            .notes
            .entry(f.into())
            .or_insert_with(|| why.clone());
    }
}

/// Everything the reader must know to trust the numbers: fallbacks, estimates, gaps.
pub fn warnings(r: &mut RunReport, i: &ReportInputs, ctx: &ReportContext) {
    r.warnings.extend(i.notes.iter().cloned());
    if i.domains.is_empty() {
        r.warnings.push(
            "no energy sensor was usable: energy is unknown (see `wattprint sensors`)".into(),
        );
    } else if r
        .energy
        .domains
        .iter()
        .any(|d| d.counted_in_total && d.method == Method::Model)
        && i.notes.is_empty()
        && r.energy.rejected.is_empty()
    {
        r.warnings
            .push("part of the total is an ESTIMATE from the utilisation model".into());
    }
    for g in &i.gaps {
        let filled = r
            .energy
            .domains
            .iter()
            .any(|d| d.name.ends_with(&format!("-for-{}", g.domain)))
            || r.energy
                .rejected
                .iter()
                .any(|x| x.domain == g.domain && !x.replaced_by.is_empty());
        r.warnings.push(format!(
            "{} unreadable from {:.3} s to {:.3} s ({}): {}",
            g.domain,
            g.from_s,
            g.to_s,
            g.reason,
            if filled {
                "the model stands in for it there (see above)"
            } else {
                "its energy there is missing from the total"
            }
        ));
    }
    r.warnings.extend(ctx.warnings.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::report::Work;
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

    fn gpu_inputs() -> ReportInputs {
        let mut i = inputs();
        let mut g = dom("gpu-0", DomainKind::Gpu, Method::Counter, true);
        g.device = Some("NVIDIA H100 80GB HBM3 [GPU-0]".into());
        i.domains.push(g);
        i.joules.push(1290.0);
        i.idle_w.push(None);
        i.gpus = vec![GpuDevice {
            domain: "gpu-0".into(),
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: Some("GPU-0".into()),
            power_limit_w: Some(700.0),
            mig_enabled: false,
            method: Method::Counter,
            power_source: None,
            source: SensorSource::Nvml,
            pci_bus_id: None,
            mig_uuids: Vec::new(),
        }];
        i
    }

    #[test]
    fn the_nodes_other_gpus_are_listed_apart_and_outside_the_total() {
        let mut i = gpu_inputs();
        let other = GpuDevice {
            domain: "gpu-1".into(),
            index: 1,
            name: "NVIDIA A100 80GB PCIe".into(),
            uuid: Some("GPU-1".into()),
            ..i.gpus[0].clone()
        };
        i.gpu_choice = Some(crate::discover::GpuChoice {
            basis: "CUDA_VISIBLE_DEVICES=0".into(),
            excluded: vec![(other, "not in CUDA_VISIBLE_DEVICES=0".into())],
            unmatched: Vec::new(),
        });
        let r = assemble(&i, &ReportContext::default());
        assert_eq!(r.host.gpu_models, vec!["NVIDIA H100 80GB HBM3".to_string()]);
        assert_eq!(r.host.gpus.len(), 1);
        assert_eq!(
            r.host.gpu_selection.as_deref(),
            Some("CUDA_VISIBLE_DEVICES=0")
        );
        assert_eq!(r.host.other_gpus.len(), 1);
        assert_eq!(r.host.other_gpus[0].domain, "gpu-1");
        assert_eq!(r.host.other_gpus[0].reason, "not in CUDA_VISIBLE_DEVICES=0");
        assert!(r.energy.domains.iter().all(|d| d.name != "gpu-1"));
        assert_eq!(r.metrics.energy_to_solution_j, r.energy.total_j);
    }

    #[test]
    fn declared_work_gives_flops_per_watt_whole_job_gpu_and_peak() {
        let ctx = ReportContext {
            work: work::resolve_work(
                &work::WorkDecl {
                    flops: Some(1.4e15),
                    tokens: Some(700.0),
                    ..Default::default()
                },
                None,
            ),
            ..Default::default()
        };
        let r = assemble(&gpu_inputs(), &ctx);
        // E2S: package 100 + dram 10 + GPU 1290 = 1400 J.
        assert_eq!(r.metrics.energy_to_solution_j, 1400.0);
        assert_eq!(r.metrics.flops_per_watt, Some(1e12));
        assert_eq!(r.metrics.gpu_flops_per_watt, Some(1.4e15 / 1290.0));
        assert_eq!(r.metrics.peak_flops_per_watt, Some(989.4e12 / 700.0));
        assert_eq!(r.metrics.joules_per_token, Some(2.0));
        assert!(r.metrics.flops_per_watt_ratio.is_some());
        assert_eq!(
            r.metrics.peak_flops_source.as_deref(),
            Some("sum of peaks / sum of TDPs at bf16: H100-SXM5-80GB (whitepaper) (data/gpu-specs.csv)")
        );
        assert_eq!(r.host.gpu_models, vec!["NVIDIA H100 80GB HBM3".to_string()]);
        assert_eq!(r.host.gpus[0].power_limit_w, Some(700.0));
        assert_eq!(r.host.gpus[0].uuid.as_deref(), Some("GPU-0"));
        assert!(r.metrics.notes["joules_per_inference"].contains("no inferences"));
    }

    #[test]
    fn shared_gpu_energy_is_attributed_by_utilisation() {
        let mut i = gpu_inputs();
        i.gpu_samples = vec![
            ProcUtil {
                gpu_index: 0,
                pid: 10,
                sm_util_pct: 30.0,
            },
            ProcUtil {
                gpu_index: 0,
                pid: 99,
                sm_util_pct: 10.0,
            },
        ];
        i.gpu_job_pids = [10].into_iter().collect();
        let r = assemble(&i, &ReportContext::default());
        let a = r.energy.gpu_attribution.unwrap();
        assert_eq!((a.share, a.job_j, a.rest_j), (0.75, 967.5, 322.5));
        assert!(a.method.contains("SM utilisation"));
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

    /// This project's VMs: perf psys reads 0 J over 1 s; the model on standby read 19 J.
    fn dead_psys_inputs() -> ReportInputs {
        let mut psys = dom("psys", DomainKind::Psys, Method::Counter, true);
        psys.source = "rapl-perf".into();
        let mut cpu = dom("cpu-model", DomainKind::CpuModel, Method::Model, false);
        cpu.source = "utilisation-model".into();
        let mut mem = dom(
            "memory-model",
            DomainKind::MemoryModel,
            Method::Model,
            false,
        );
        mem.source = "utilisation-model".into();
        ReportInputs {
            duration_s: 1.0,
            domains: vec![psys, cpu, mem],
            joules: vec![0.0, 9.0, 10.0],
            idle_w: vec![None, Some(4.0), Some(10.0)],
            standby: vec![false, true, true],
            max_power_w: vec![None; 3],
            machine_busy_cpu_s: Some(0.01),
            ..Default::default()
        }
    }

    #[test]
    fn a_dead_psys_is_rejected_and_the_standby_model_counted() {
        let ctx = ReportContext {
            job_cpu_s: Some(0.005),
            ..Default::default()
        };
        let r = assemble(&dead_psys_inputs(), &ctx);
        assert_eq!(r.energy.total_j, 19.0);
        assert_eq!(r.energy.model_filled_j, Some(19.0));
        let rej = &r.energy.rejected[0];
        assert_eq!(
            (&rej.source, rej.domain.as_str()),
            (&SensorSource::RaplPerf, "psys")
        );
        assert_eq!(rej.verdict, "stuck");
        assert_eq!(rej.replaced_by, vec!["cpu-model", "memory-model"]);
        let names: Vec<(&str, bool)> = r
            .energy
            .domains
            .iter()
            .map(|d| (d.name.as_str(), d.counted_in_total))
            .collect();
        assert_eq!(
            names,
            vec![("psys", false), ("cpu-model", true), ("memory-model", true)]
        );
        // Attribution follows the swap: the model's idle 14 W is kept apart.
        let a = r.energy.attribution.unwrap();
        assert_eq!(a.idle_j, Some(14.0));
        assert!(r
            .warnings
            .iter()
            .any(|w| w.contains("psys (rapl-perf) REJECTED")));
    }

    #[test]
    fn a_trusted_counter_leaves_the_standby_out_of_the_report() {
        let mut i = dead_psys_inputs();
        i.joules[0] = 25.0;
        let r = assemble(&i, &ReportContext::default());
        assert_eq!(r.energy.total_j, 25.0);
        assert_eq!(r.energy.domains.len(), 1);
        assert!(r.energy.rejected.is_empty() && r.energy.model_filled_j.is_none());
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["energy"].get("rejected").is_none());
    }

    #[test]
    fn a_domain_unread_all_window_is_rejected_as_unreadable() {
        let mut i = dead_psys_inputs();
        i.gaps = vec![Gap {
            domain: "psys".into(),
            from_s: 0.0,
            to_s: 1.0,
            reason: "permission denied".into(),
        }];
        i.gap_s = vec![1.0, 0.0, 0.0];
        let r = assemble(&i, &ReportContext::default());
        assert_eq!(r.energy.rejected[0].verdict, "unreadable");
        assert!(r.energy.rejected[0].reason.contains("permission denied"));
        assert_eq!(r.energy.total_j, 19.0);
        assert!(r
            .warnings
            .iter()
            .any(|w| w.contains("psys unreadable") && w.contains("the model stands in")));
    }

    #[test]
    fn a_partly_unread_dram_is_filled_by_its_share_of_the_model() {
        let mut i = inputs();
        // dram-0 unread for 0.5 s of 2 s; the standby memory model read 4 J over the window.
        let mut mem = dom(
            "memory-model",
            DomainKind::MemoryModel,
            Method::Model,
            false,
        );
        mem.source = "utilisation-model".into();
        i.domains.push(mem);
        i.joules.push(4.0);
        i.idle_w.push(Some(2.0));
        i.standby = vec![false, false, false, true];
        i.gap_s = vec![0.0, 0.0, 0.5, 0.0];
        i.gaps = vec![Gap {
            domain: "dram-0".into(),
            from_s: 1.0,
            to_s: 1.5,
            reason: "read failed".into(),
        }];
        let r = assemble(&i, &ReportContext::default());
        // package 100 + dram 10 (measured part) + 4 J x 0.5/2 filled.
        assert_eq!(r.energy.total_j, 111.0);
        assert_eq!(r.energy.model_filled_j, Some(1.0));
        assert!(r.energy.rejected.is_empty());
        let fill = r.energy.domains.last().unwrap();
        assert_eq!(fill.name, "memory-model-for-dram-0");
        assert!(fill.counted_in_total);
        assert_eq!(fill.method, Method::Model);
    }

    #[test]
    fn an_implausible_package_is_replaced_by_the_same_zone_on_standby() {
        let mut i = inputs();
        // perf package-0 says 10 kJ in 2 s; powercap's package-0 (max 125 W) says 100 J.
        i.domains[0].source = "rapl-perf".into();
        i.joules[0] = 10_000.0;
        let mut pc = dom("package-0", DomainKind::CpuPackage, Method::Counter, true);
        pc.source = "rapl-powercap".into();
        i.domains.push(pc);
        i.joules.push(100.0);
        i.idle_w.push(None);
        i.standby = vec![false, false, false, true];
        i.max_power_w = vec![Some(125.0), None, None, Some(125.0)];
        let r = assemble(&i, &ReportContext::default());
        assert_eq!(r.energy.total_j, 110.0);
        assert_eq!(r.energy.rejected[0].verdict, "implausible");
        assert_eq!(r.energy.rejected[0].replaced_by, vec!["package-0"]);
        assert_eq!(r.energy.model_filled_j, None);
        let last = r.energy.domains.last().unwrap();
        assert_eq!(
            (&last.source, last.counted_in_total),
            (&SensorSource::RaplPowercap, true)
        );
    }

    #[test]
    fn carbon_is_one_step_of_steps_and_the_last() {
        let n = STEPS
            .iter()
            .filter(|s| std::ptr::fn_addr_eq(**s, carbon as Step))
            .count();
        assert_eq!(n, 1);
        assert!(std::ptr::fn_addr_eq(*STEPS.last().unwrap(), carbon as Step));
    }

    fn with_carbon(inferences: Option<f64>) -> ReportContext {
        let opts = wattprint_carbon::CarbonOptions {
            zone: Some("FR".into()),
            pue: Some(1.5),
            ..Default::default()
        };
        let when = wattprint_carbon::RunTime::new("2026-11-29T02:31:12Z", 2.0);
        ReportContext {
            carbon: Some(wattprint_carbon::resolve(&opts, when).unwrap()),
            work: Work {
                inferences,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_carbon_step_fills_carbon_pue_and_facility_energy() {
        let r = assemble(&inputs(), &with_carbon(Some(10.0)));
        assert_eq!(r.carbon.zone, "FR");
        assert_eq!(r.energy.pue, 1.5);
        assert_eq!(r.energy.facility_j, 165.0);
        assert_eq!(r.metrics.facility_energy_to_solution_j, 165.0);
        let g = 165.0 / 3.6e6 * r.carbon.intensity_g_per_kwh;
        assert!((r.carbon.operational_g - g).abs() < 1e-12);
    }

    #[test]
    fn a_carbon_metric_with_a_value_keeps_no_why_null_note() {
        let r = assemble(&inputs(), &with_carbon(Some(10.0)));
        let per = r.metrics.carbon_per_inference_g.unwrap();
        assert!((per - r.carbon.total_g / 10.0).abs() < 1e-12);
        assert!(!r.metrics.notes.contains_key("carbon_per_inference_g"));
        assert!(r.metrics.sci_g_per_unit.is_some());
        assert!(!r.metrics.notes.contains_key("sci_g_per_unit"));
        // Without tokens the per-token metric stays null, with its reason.
        assert_eq!(
            r.metrics
                .notes
                .get("carbon_per_1k_tokens_g")
                .map(String::as_str),
            Some("no tokens declared (--tokens)")
        );
    }

    #[test]
    fn without_carbon_inputs_every_carbon_metric_says_why_it_is_null() {
        let r = assemble(&inputs(), &ReportContext::default());
        for f in [
            "carbon_per_inference_g",
            "carbon_per_1k_tokens_g",
            "sci_g_per_unit",
        ] {
            assert!(
                r.metrics.notes[f].starts_with("carbon not computed"),
                "{f}: {:?}",
                r.metrics.notes.get(f)
            );
        }
        assert!(r.carbon.zone.is_empty());
    }

    #[test]
    fn sampled_power_widens_its_range_by_the_integration_bound() {
        let mut i = inputs();
        i.domains.push(DomainDesc {
            name: "gpu-0".into(),
            kind: DomainKind::Gpu,
            source: SensorSource::Nvml,
            method: Method::Power,
            counted_in_total: true,
            device: None,
        });
        i.joules.push(200.0);
        i.idle_w.push(None);
        i.integration_err_j = vec![0.0, 0.0, 0.0, 4.0];
        let r = assemble(&i, &ReportContext::default());
        let g = r.energy.domains.iter().find(|d| d.name == "gpu-0").unwrap();
        // NVML: +/- max(5 W x 2 s, 5 %) = 10 J, plus 4 J between polls.
        assert_eq!((g.joules_low, g.joules_high), (Some(186.0), Some(214.0)));
        assert!(g
            .range_basis
            .as_deref()
            .unwrap()
            .contains("trapezoid bound between polls 4.000 J"));
        // A counter with no integration error keeps its own range only.
        let p = r
            .energy
            .domains
            .iter()
            .find(|d| d.name == "package-0")
            .unwrap();
        assert_eq!((p.joules_low, p.joules_high), (Some(100.0), Some(100.0)));
    }
}
