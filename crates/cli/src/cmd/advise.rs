//! `wattprint advise`: the metric plan for the team's goals and constraints (pure rules in
//! `wattprint_core::advise`), plus what only this machine knows: the sensors present, how
//! each metric would be measured with them, and the overhead measured here.

use std::io::Write;
use wattprint_core::advise::{advise, AdviseInput, DataSource, Frequency, Goal, Scope, Workload};
use wattprint_core::overhead_score::{self, ComputeOverhead, Route, RouteScore};
use wattprint_core::{stats, Method};
use wattprint_engine::{discover, SensorConfig};

/// Options of `wattprint advise`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What the numbers are for (repeatable).
    #[arg(long = "goal", value_enum, required = true)]
    pub goals: Vec<GoalArg>,
    #[arg(long, value_enum, default_value = "both")]
    pub workload: WorkloadArg,
    #[arg(long, value_enum, default_value = "workload")]
    pub scope: ScopeArg,
    #[arg(long, value_enum, default_value = "batch")]
    pub frequency: FrequencyArg,
    /// What data exists: cloud provider figures only, instrumented on-prem, self-hosted models.
    #[arg(long, value_enum, default_value = "on-prem")]
    pub data: DataArg,
    /// Overhead the team accepts for measuring, percent of a core (e.g. 1).
    #[arg(long = "overhead-budget", value_name = "PCT", value_parser = wattprint_report::compare::parse_pct)]
    pub overhead_budget: Option<f64>,
    /// Print `{"metrics": [...], "warnings": [...], "machine": {...}}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum GoalArg {
    Cost,
    Compliance,
    Esg,
    GreenAi,
    Procurement,
}
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum WorkloadArg {
    Training,
    Inference,
    Both,
}
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ScopeArg {
    Model,
    Workload,
    Portfolio,
}
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FrequencyArg {
    Realtime,
    Batch,
}
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum DataArg {
    Cloud,
    OnPrem,
    SelfHosted,
}

fn input(a: &Args) -> AdviseInput {
    AdviseInput {
        goals: a
            .goals
            .iter()
            .map(|g| match g {
                GoalArg::Cost => Goal::Cost,
                GoalArg::Compliance => Goal::Compliance,
                GoalArg::Esg => Goal::Esg,
                GoalArg::GreenAi => Goal::GreenAi,
                GoalArg::Procurement => Goal::Procurement,
            })
            .collect(),
        workload: match a.workload {
            WorkloadArg::Training => Workload::Training,
            WorkloadArg::Inference => Workload::Inference,
            WorkloadArg::Both => Workload::Both,
        },
        scope: match a.scope {
            ScopeArg::Model => Scope::Model,
            ScopeArg::Workload => Scope::Workload,
            ScopeArg::Portfolio => Scope::Portfolio,
        },
        frequency: match a.frequency {
            FrequencyArg::Realtime => Frequency::Realtime,
            FrequencyArg::Batch => Frequency::Batch,
        },
        data: match a.data {
            DataArg::Cloud => DataSource::Cloud,
            DataArg::OnPrem => DataSource::OnPrem,
            DataArg::SelfHosted => DataSource::SelfHosted,
        },
        overhead_budget_pct: a.overhead_budget,
    }
}

/// What this machine offers, summarised for the plan.
struct Machine {
    sensors: Vec<serde_json::Value>,
    counters: Vec<String>,
    models_only: bool,
    gpus: Vec<String>,
    absent: Vec<String>,
    overhead: Option<(f64, usize)>,
}

fn machine() -> Machine {
    let d = discover(&SensorConfig::from_env().unwrap_or_else(|_| SensorConfig::seams_from_env()));
    let mut sensors = Vec::new();
    let mut counters = Vec::new();
    let mut any_measured = false;
    for s in &d.sensors {
        let i = s.info();
        let domains: Vec<String> = i.domains.iter().map(|x| x.name.clone()).collect();
        let methods: Vec<&str> = i.domains.iter().map(|x| x.method.as_str()).collect();
        if i.domains.iter().any(|x| x.method != Method::Model) {
            any_measured = true;
        }
        if i.domains.iter().any(|x| x.method == Method::Counter) {
            counters.push(format!("{} ({})", i.source, domains.join(", ")));
        }
        sensors.push(serde_json::json!({
            "source": i.source, "domains": domains, "methods": methods, "setup": i.setup,
        }));
    }
    let absent = d
        .absent
        .iter()
        .map(|a| match &a.fix {
            Some(f) => format!("{}: {} (fix: {f})", a.source, a.reason),
            None => format!("{}: {}", a.source, a.reason),
        })
        .collect();
    // The overhead measured here: the meter's CPU share over the stored runs of this machine.
    let overhead = crate::cmd::runs::open_store_for_reading()
        .ok()
        .and_then(|s| {
            s.list(&wattprint_store::Filter {
                limit: Some(50),
                ..Default::default()
            })
            .ok()
            .map(|l| l.runs)
        })
        .and_then(|runs| {
            let f: Vec<f64> = runs
                .iter()
                .filter(|r| r.overhead.reads > 0)
                .map(|r| r.overhead.meter_cpu_fraction)
                .filter(|x| x.is_finite())
                .collect();
            stats::median(f.iter().copied()).map(|m| (m * 100.0, f.len()))
        });
    Machine {
        sensors,
        counters,
        models_only: !any_measured,
        gpus: d.gpus.iter().map(|g| g.name.clone()).collect(),
        absent,
        overhead,
    }
}

fn on_this_machine(id: &str, m: &Machine) -> String {
    let energy = if m.models_only {
        "only the utilisation model is usable here: energy is an ESTIMATE (see `wattprint sensors` for the fix)".to_string()
    } else if m.counters.is_empty() {
        "power sensors here are sampled and integrated (trapezoid); no hardware energy counter"
            .to_string()
    } else {
        format!("hardware energy counters here: {}", m.counters.join("; "))
    };
    match id {
        "energy-to-solution" => format!("`wattprint run -- CMD`; {energy}"),
        "flops-per-watt" => {
            if m.gpus.is_empty() {
                format!("no GPU found here: achieved FLOPs/W from declared --flops only, no datasheet peak; {energy}")
            } else {
                format!("GPUs here: {} (peak from the embedded GPU table); declare the work with --flops or --params/--tokens", m.gpus.join(", "))
            }
        }
        "carbon-per-inference" => format!(
            "`wattprint agent` with request spans, or `wattprint run --inferences N`; zone: {}; {energy}",
            std::env::var("WATTPRINT_ZONE").unwrap_or_else(|_| "not set (give --zone or WATTPRINT_ZONE)".into())
        ),
        "sci" => format!("`wattprint run --unit-count R --embodied-kg KG`; {energy}"),
        _ => match m.overhead {
            Some((pct, n)) => format!("measured here: median meter CPU {pct:.3}% of the run over {n} stored run(s)"),
            None => "no measured run stored yet: `wattprint run -- sleep 1` measures it here".into(),
        },
    }
}

/// The Operational Overhead Score of every route, with the compute overhead measured in the
/// history (the last 200 stored runs).
fn overhead_scores() -> Vec<RouteScore> {
    let runs = crate::cmd::runs::open_store_for_reading()
        .ok()
        .and_then(|s| {
            s.list(&wattprint_store::Filter {
                limit: Some(200),
                ..Default::default()
            })
            .ok()
            .map(|l| l.runs)
        })
        .unwrap_or_default();
    overhead_score::score(&overhead_score::Measured::from_runs(&runs))
}

/// The route of a data source of the plan (`provider-export`, `usage-estimate`,
/// `measured-runs`, `agent`).
fn route_of_source(id: &str) -> Option<Route> {
    match id {
        "provider-export" => Some(Route::ProviderExport),
        "usage-estimate" => Some(Route::UsageEstimate),
        "measured-runs" => Some(Route::Run),
        "agent" => Some(Route::Agent),
        _ => None,
    }
}

/// The route a metric of the plan is obtained by, for the data the team has.
fn route_of(id: &str, data: DataSource) -> Route {
    match (id, data) {
        (_, DataSource::Cloud) => Route::ProviderExport,
        ("carbon-per-inference", DataSource::SelfHosted) => Route::Agent,
        _ => Route::Run,
    }
}

fn compute_text(c: &ComputeOverhead) -> String {
    match c {
        ComputeOverhead::None { note } => format!("none ({note})"),
        ComputeOverhead::Measured {
            median_cpu_pct,
            runs,
        } => format!("meter CPU {median_cpu_pct:.3} % of the run (median of {runs} stored run(s))"),
        ComputeOverhead::Typical { cpu_pct, note } => {
            format!("about {cpu_pct} % of a core ({note})")
        }
    }
}

fn score_line(s: &RouteScore) -> String {
    format!(
        "{} [{}]: score {} (latency {}: {}; set-up {}: {} step(s); compute {}: {})",
        s.route.id(),
        s.tier,
        s.score.as_str(),
        s.latency_level.as_str(),
        s.latency,
        s.complexity_level.as_str(),
        s.setup_steps.len(),
        s.compute_level.as_str(),
        compute_text(&s.compute)
    )
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let plan = advise(&input(&args));
    let m = machine();
    let scores = overhead_scores();
    let data = input(&args).data;
    let score_of = |id: &str| scores.iter().find(|s| s.route == route_of(id, data));
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut v = serde_json::to_value(&plan)?;
        if let Some(ms) = v.get_mut("metrics").and_then(|x| x.as_array_mut()) {
            for x in ms.iter_mut() {
                let id = x["id"].as_str().unwrap_or_default().to_string();
                x["on_this_machine"] = serde_json::Value::String(on_this_machine(&id, &m));
                if let Some(sc) = score_of(&id) {
                    x["operational_overhead"] = serde_json::to_value(sc)?;
                }
            }
        }
        if let Some(ss) = v.get_mut("sources").and_then(|x| x.as_array_mut()) {
            for x in ss.iter_mut() {
                let route = route_of_source(x["id"].as_str().unwrap_or_default());
                if let Some(sc) = route.and_then(|r| scores.iter().find(|s| s.route == r)) {
                    x["operational_overhead"] = serde_json::to_value(sc)?;
                }
            }
        }
        v["operational_overhead_by_source"] = serde_json::to_value(&scores)?;
        v["machine"] = serde_json::json!({
            "sensors": m.sensors,
            "absent": m.absent,
            "gpus": m.gpus,
            "measured_meter_cpu_pct": m.overhead.map(|o| o.0),
            "measured_runs": m.overhead.map(|o| o.1),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(0);
    }
    if !plan.sources.is_empty() {
        writeln!(out, "Data sources, in the order to set them up")?;
        for s in &plan.sources {
            writeln!(
                out,
                "\n{}. {} [{}] (tier: {})",
                s.rank, s.name, s.id, s.tier
            )?;
            writeln!(out, "   why: {}", s.why)?;
            writeln!(out, "   how: {}", s.how)?;
            for c in &s.cannot_decide {
                writeln!(out, "   cannot decide: {c}")?;
            }
            if let Some(w) = &s.add_when {
                writeln!(out, "   next: {w}")?;
            }
            let route = route_of_source(s.id);
            if let Some(sc) = route.and_then(|r| scores.iter().find(|x| x.route == r)) {
                writeln!(out, "   operational overhead: {}", score_line(sc))?;
            }
        }
        writeln!(out)?;
    }
    if !plan.merge.is_empty() {
        writeln!(out, "Portfolio merge plan")?;
        for (i, m) in plan.merge.iter().enumerate() {
            writeln!(out, "  {}. {m}", i + 1)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Metric plan")?;
    for p in &plan.metrics {
        writeln!(out, "\n{}. {} [{}]", p.rank, p.name, p.id)?;
        writeln!(out, "   why: {}", p.reason)?;
        writeln!(out, "   decides: {}", p.decisions.join("; "))?;
        for r in &p.requirements {
            writeln!(out, "   requires: {r}")?;
        }
        writeln!(out, "   how: {}", p.how_to_measure)?;
        writeln!(out, "   on this machine: {}", on_this_machine(p.id, &m))?;
        writeln!(
            out,
            "   typical overhead: {:.1}% of a core",
            p.expected_overhead_pct
        )?;
        if let Some(sc) = score_of(p.id) {
            writeln!(out, "   operational overhead: {}", score_line(sc))?;
        }
    }
    writeln!(
        out,
        "\nOperational Overhead Score by source (latency until the number exists, set-up steps, compute overhead)"
    )?;
    for sc in &scores {
        writeln!(out, "  - {}", score_line(sc))?;
    }
    if !plan.warnings.is_empty() {
        writeln!(out, "\nWarnings")?;
        for w in &plan.warnings {
            writeln!(out, "  - {}", crate::common::escape(w))?;
        }
    }
    Ok(0)
}
