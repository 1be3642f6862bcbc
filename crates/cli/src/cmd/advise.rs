//! `wattprint advise`: the metric plan for the team's goals and constraints (pure rules in
//! `wattprint_core::advise`), plus what only this machine knows: the sensors present, how
//! each metric would be measured with them, and the overhead measured here.

use std::io::Write;
use wattprint_core::advise::{advise, AdviseInput, DataSource, Frequency, Goal, Scope, Workload};
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

pub fn main(args: Args) -> anyhow::Result<u8> {
    let plan = advise(&input(&args));
    let m = machine();
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut v = serde_json::to_value(&plan)?;
        if let Some(ms) = v.get_mut("metrics").and_then(|x| x.as_array_mut()) {
            for x in ms.iter_mut() {
                let id = x["id"].as_str().unwrap_or_default().to_string();
                x["on_this_machine"] = serde_json::Value::String(on_this_machine(&id, &m));
            }
        }
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
    }
    if !plan.warnings.is_empty() {
        writeln!(out, "\nWarnings")?;
        for w in &plan.warnings {
            writeln!(out, "  - {}", crate::common::escape(w))?;
        }
    }
    Ok(0)
}
