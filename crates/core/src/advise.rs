//! The metric advisor: which metrics a team should track for its goals and constraints.
//!
//! The trade-offs of each metric are data ([`PROFILES`]); the rules that rank them are a
//! small pure function ([`advise`]) with one test per rule. The CLI adds what only the
//! machine knows: the sensors present and the overhead measured here.

use serde::{Deserialize, Serialize};

/// What the team wants the numbers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Goal {
    /// Cost reduction.
    Cost,
    /// Regulatory compliance (EU CSRD / ESRS E1).
    Compliance,
    /// ESG disclosure.
    Esg,
    /// Green AI research.
    GreenAi,
    /// Hardware procurement.
    Procurement,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Training,
    Inference,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Model,
    Workload,
    Portfolio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    Realtime,
    Batch,
}

/// What data exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// Cloud provider figures only.
    Cloud,
    /// Instrumented on-premises hardware.
    OnPrem,
    /// Self-hosted models that can be instrumented per request.
    SelfHosted,
}

/// The team's situation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdviseInput {
    pub goals: Vec<Goal>,
    pub workload: Workload,
    pub scope: Scope,
    pub frequency: Frequency,
    pub data: DataSource,
    /// The share of a core (or of latency) the team accepts for measuring, percent.
    pub overhead_budget_pct: Option<f64>,
}

/// A qualitative level on one trade-off axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Low,
    Medium,
    High,
}

/// The eight trade-off axes of a metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TradeOffs {
    /// Finest unit the metric is naturally reported at.
    pub granularity: &'static str,
    pub measurement_overhead: Level,
    pub cost_attribution_accuracy: Level,
    pub hardware_dependency: Level,
    pub cloud_provider_support: Level,
    pub regulatory_disclosure_readiness: Level,
    pub ease_of_benchmarking: Level,
    pub actionability: Level,
}

/// A metric's profile: its trade-offs, what it decides, and how it is measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricProfile {
    pub id: &'static str,
    pub name: &'static str,
    pub trade_offs: TradeOffs,
    /// Typical meter overhead when measuring it with wattprint, percent of one core.
    pub expected_overhead_pct: f64,
    /// The decisions this metric drives.
    pub decisions: &'static [&'static str],
    /// How to measure it with wattprint (machine-independent part).
    pub how: &'static str,
}

use Level::{High, Low, Medium};

/// The metrics the advisor knows, with their trade-offs encoded as data.
pub const PROFILES: [MetricProfile; 5] = [
    MetricProfile {
        id: "energy-to-solution",
        name: "Energy-to-Solution (J per task)",
        trade_offs: TradeOffs {
            granularity: "job / task window",
            measurement_overhead: Low,
            cost_attribution_accuracy: High,
            hardware_dependency: Medium,
            cloud_provider_support: Medium,
            regulatory_disclosure_readiness: High,
            ease_of_benchmarking: High,
            actionability: High,
        },
        expected_overhead_pct: 0.1,
        decisions: &[
            "choose between architectures and training recipes",
            "size the energy bill of a job",
            "report energy consumption (ESRS E1-5)",
        ],
        how: "`wattprint run -- CMD` (counters read at window boundaries); facility E2S with --pue",
    },
    MetricProfile {
        id: "flops-per-watt",
        name: "Performance per watt (FLOPs/W, achieved vs peak)",
        trade_offs: TradeOffs {
            granularity: "device / job",
            measurement_overhead: Low,
            cost_attribution_accuracy: Low,
            hardware_dependency: High,
            cloud_provider_support: Low,
            regulatory_disclosure_readiness: Low,
            ease_of_benchmarking: Medium,
            actionability: Medium,
        },
        expected_overhead_pct: 0.1,
        decisions: &[
            "choose hardware to buy or rent",
            "find jobs far from their hardware's peak efficiency",
        ],
        how: "`wattprint run --flops N` (or --params/--tokens/--mode) -- CMD; peak from the GPU table",
    },
    MetricProfile {
        id: "carbon-per-inference",
        name: "Carbon per inference (gCO2e per query, J/token)",
        trade_offs: TradeOffs {
            granularity: "request / token",
            measurement_overhead: Medium,
            cost_attribution_accuracy: High,
            hardware_dependency: Medium,
            cloud_provider_support: Low,
            regulatory_disclosure_readiness: Medium,
            ease_of_benchmarking: Medium,
            actionability: High,
        },
        expected_overhead_pct: 1.0,
        decisions: &[
            "optimise serving per query (batching, quantisation, model choice)",
            "report emissions of a high-volume service",
        ],
        how: "`wattprint agent` with request spans (per request), or `wattprint run --inferences N` (per batch)",
    },
    MetricProfile {
        id: "sci",
        name: "Software Carbon Intensity (ISO/IEC 21031:2024)",
        trade_offs: TradeOffs {
            granularity: "functional unit",
            measurement_overhead: Low,
            cost_attribution_accuracy: Medium,
            hardware_dependency: Low,
            cloud_provider_support: Medium,
            regulatory_disclosure_readiness: Medium,
            ease_of_benchmarking: High,
            actionability: Medium,
        },
        expected_overhead_pct: 0.1,
        decisions: &[
            "track a software's carbon over releases",
            "compare green-software choices including embodied carbon",
        ],
        how: "`wattprint run` with a functional unit (--inferences/--tokens) and embodied data; `wattprint estimate` for what-ifs",
    },
    MetricProfile {
        id: "operational-overhead",
        name: "Operational Overhead Score (what measuring costs)",
        trade_offs: TradeOffs {
            granularity: "meter / run",
            measurement_overhead: Low,
            cost_attribution_accuracy: Low,
            hardware_dependency: Low,
            cloud_provider_support: High,
            regulatory_disclosure_readiness: Low,
            ease_of_benchmarking: High,
            actionability: Medium,
        },
        expected_overhead_pct: 0.0,
        decisions: &[
            "keep the measurement programme within its budget",
            "choose the measurement granularity",
        ],
        how: "reported with every run (`overhead` in the JSON report): meter CPU s, peak RSS, reads, set-up steps",
    },
];

/// One metric of the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedMetric {
    pub id: &'static str,
    /// 1 is the first metric to set up.
    pub rank: usize,
    pub name: &'static str,
    pub reason: String,
    pub decisions: &'static [&'static str],
    pub trade_offs: TradeOffs,
    pub expected_overhead_pct: f64,
    pub how_to_measure: String,
    /// Extra requirements the situation imposes (e.g. both Scope 2 methods).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<String>,
}

/// The advisor's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub metrics: Vec<PlannedMetric>,
    pub warnings: Vec<String>,
    /// Where the figures come from, in the order to set them up (for cloud data or a
    /// portfolio scope; empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceStep>,
    /// How measured runs, provider figures and estimates are merged (portfolio scope).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge: Vec<String>,
}

/// One way of obtaining figures, ranked: what it gives, its data-quality tier, what it
/// cannot decide and when to add the next.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceStep {
    /// 1 is the first to set up.
    pub rank: usize,
    /// `provider-export`, `usage-estimate`, `measured-runs`, `agent`.
    pub id: &'static str,
    pub name: &'static str,
    /// The tier its figures carry: `provider-reported`, `estimate (CCF method)`, `measured`.
    pub tier: &'static str,
    pub why: String,
    pub how: String,
    /// What its figures cannot decide.
    pub cannot_decide: Vec<String>,
    /// When to add the next source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_when: Option<String>,
}

/// The data-source plan: for cloud data, the provider's own export first (no
/// instrumentation, no overhead), then estimates where it gives nothing, then measurement
/// where a decision needs it; for a portfolio, all three. Empty for other situations.
pub fn data_sources(input: &AdviseInput) -> Vec<SourceStep> {
    let cloud = input.data == DataSource::Cloud;
    let portfolio = input.scope == Scope::Portfolio;
    if !cloud && !portfolio {
        return Vec::new();
    }
    let inference = matches!(input.workload, Workload::Inference | Workload::Both);
    let mut steps = Vec::new();
    steps.push(SourceStep {
        rank: 0,
        id: "provider-export",
        name: "The cloud provider's carbon export",
        tier: "provider-reported",
        why: "the highest impact for the lowest overhead: no instrumentation, no compute \
              overhead, every service and scopes 1, 2 and 3 of the whole account, in the \
              provider's own accounting"
            .into(),
        how: "export it (GCP Carbon Footprint to BigQuery, AWS Data Exports CARBON_EMISSIONS or \
              the Sustainability API, Azure Carbon Optimization or Cloud for Sustainability), \
              then `wattprint import FILE` (gcp-carbon, aws-carbon, azure-carbon) and \
              `wattprint report --format portfolio --period YYYY`"
            .into(),
        cannot_decide: vec![
            "anything finer than a month: no figure per job, per day or per deployment".into(),
            "energy: the exports give carbon without kWh, so no energy-to-solution and no \
             ESRS E1-5 energy from them"
                .into(),
            "per-inference or per-token figures, or which model or team caused a change \
             inside a project"
                .into(),
            "comparisons across a change of the provider's carbon model (a series break) or \
             across providers, whose methods differ"
                .into(),
            "recent changes: a month's figure exists only after the provider publishes it, \
             weeks after the month ends"
                .into(),
        ],
        add_when: Some(
            "add measurement when a decision needs per-job or per-request figures, energy in \
             MWh, or an effect visible before the next monthly export"
                .into(),
        ),
    });
    steps.push(SourceStep {
        rank: 0,
        id: "usage-estimate",
        name: "Usage-based estimate from the billing export (FOCUS)",
        tier: "estimate (CCF method)",
        why: "covers what no provider export covers (another cloud, a missing month) from \
              usage the bill already records; labelled as an estimate with a range"
            .into(),
        how: "instance-hours x vCPUs x the Cloud Carbon Footprint coefficients, the provider's \
              PUE and the region's grid factor; the provider's own figure supersedes it \
              wherever both exist"
            .into(),
        cannot_decide: vec![
            "anything the coefficients average away: the actual utilisation, the hardware \
             generation, the GPU's real power"
                .into(),
            "SaaS, support and tax lines: counted, never guessed".into(),
        ],
        add_when: None,
    });
    steps.push(SourceStep {
        rank: 0,
        id: "measured-runs",
        name: "Measured runs (`wattprint run`, Python `track()`)",
        tier: "measured",
        why: "energy and carbon per job, comparable across recipes and hardware; inside a \
              cloud project it is detail of the provider's figure, never added to it"
            .into(),
        how: "`wattprint run --zone gcp:REGION --label project=ID -- CMD` on the jobs whose \
              decisions need it"
            .into(),
        cannot_decide: vec![
            "the rest of the account: storage, networking and idle machines nobody ran \
             through wattprint"
                .into(),
        ],
        add_when: inference.then(|| {
            "add the agent with request spans when serving decisions need per-query figures"
                .to_string()
        }),
    });
    if inference {
        steps.push(SourceStep {
            rank: 0,
            id: "agent",
            name: "The agent on serving hosts (`wattprint agent`)",
            tier: "measured",
            why: "per-request energy and carbon of a self-hosted model, idle power apart".into(),
            how: "`wattprint agent` with request spans from the serving process".into(),
            cannot_decide: vec![
                "managed model APIs: their hosts cannot be instrumented; only the provider's \
                 export covers them"
                    .into(),
            ],
            add_when: None,
        });
    }
    // On premises with a portfolio scope the measured runs come first.
    if !cloud {
        steps.rotate_left(2);
    }
    for (i, s) in steps.iter_mut().enumerate() {
        s.rank = i + 1;
    }
    steps
}

/// How the portfolio is merged (portfolio scope), in order; empty for other scopes.
pub fn merge_plan(input: &AdviseInput) -> Vec<String> {
    if input.scope != Scope::Portfolio {
        return Vec::new();
    }
    vec![
        "import each provider's monthly export into the history (`wattprint import FILE`): a \
         month already stored is recognised, a restated one refused until `--replace`"
            .into(),
        "label every measured run with the cloud zone and the project or account it ran in \
         (`--zone gcp:REGION --label project=ID`, or `--label account=ID`): such runs are \
         detail of the provider's figure for that month, shown and never added"
            .into(),
        "fill the gaps with usage-based estimates (tier `estimate (CCF method)`, with a range); \
         an estimate the provider also reports is superseded, never added"
            .into(),
        "report with `wattprint report --format portfolio --period YYYY` (totals by label, \
         provider and month; the shares measured / provider-reported / estimated) and \
         `--format esrs` (provider figures as Scope 3 category 1)"
            .into(),
        "watch the series breaks: a change of a provider's carbon model makes months on either \
         side incomparable; say so beside any trend"
            .into(),
    ]
}

fn profile(id: &str) -> &'static MetricProfile {
    // Ids are the constants above; an unknown id is a programming error caught by the tests.
    PROFILES.iter().find(|p| p.id == id).unwrap_or(&PROFILES[0])
}

struct Score {
    id: &'static str,
    points: i32,
    reasons: Vec<String>,
    requirements: Vec<String>,
}

/// Ranks the metrics for a situation. Pure: the same input always gives the same plan.
pub fn advise(input: &AdviseInput) -> Plan {
    let mut scores: Vec<Score> = PROFILES
        .iter()
        .map(|p| Score {
            id: p.id,
            points: 0,
            reasons: vec![],
            requirements: vec![],
        })
        .collect();
    let mut add = |id: &str, points: i32, reason: &str| {
        if let Some(s) = scores.iter_mut().find(|s| s.id == id) {
            s.points += points;
            s.reasons.push(reason.to_string());
        }
    };
    let has = |g: Goal| input.goals.contains(&g);
    let training = matches!(input.workload, Workload::Training | Workload::Both);
    let inference = matches!(input.workload, Workload::Inference | Workload::Both);

    if training {
        add(
            "energy-to-solution",
            100,
            "training: the energy to reach the target is what a run costs and what architectures are compared on",
        );
    }
    if inference {
        let high_volume = input.frequency == Frequency::Realtime || input.scope != Scope::Model;
        let pts = if input.workload == Workload::Both {
            95
        } else {
            100
        };
        add(
            "carbon-per-inference",
            if high_volume { pts } else { pts - 20 },
            "inference: emissions scale with query volume, so the per-query figure is the one to drive down",
        );
    }
    if has(Goal::Compliance) || has(Goal::Esg) {
        add(
            "energy-to-solution",
            80,
            "compliance/ESG: energy consumption in MWh is the ESRS E1-5 disclosure",
        );
        add(
            "carbon-per-inference",
            80,
            "compliance/ESG: emissions per unit of service, location- and market-based (ESRS E1-6)",
        );
    }
    if has(Goal::Procurement) {
        add(
            "flops-per-watt",
            150,
            "procurement: achieved and peak FLOPs/W compare hardware for the same work",
        );
        add(
            "energy-to-solution",
            30,
            "procurement: check that better FLOPs/W gives a lower E2S on your own workload",
        );
    }
    if has(Goal::GreenAi) {
        add(
            "sci",
            70,
            "green AI: SCI includes embodied carbon and is comparable over releases",
        );
        add(
            "energy-to-solution",
            50,
            "green AI: E2S is the measured quantity papers report",
        );
    }
    if has(Goal::Cost) {
        add(
            "energy-to-solution",
            40,
            "cost: energy per job maps directly to the power bill",
        );
        if inference {
            add(
                "carbon-per-inference",
                30,
                "cost: per-query energy shows which requests are expensive",
            );
        }
    }
    let budget_tight = input.overhead_budget_pct.is_some_and(|b| b < 1.0);
    add(
        "operational-overhead",
        if budget_tight { 60 } else { 10 },
        if budget_tight {
            "a tight overhead budget: track what measuring costs so the programme stays within it"
        } else {
            "keeps the measurement programme itself cheap; measured for every run"
        },
    );

    // Requirements that the situation attaches to a metric.
    for s in scores.iter_mut() {
        if (has(Goal::Compliance) || has(Goal::Esg))
            && matches!(s.id, "energy-to-solution" | "carbon-per-inference")
        {
            s.requirements.push(
                "report gross Scope 2 both location-based and market-based (ESRS E1-6), with factor source and vintage".into(),
            );
        }
        if s.id == "carbon-per-inference"
            && has(Goal::Cost)
            && input.frequency == Frequency::Realtime
        {
            s.requirements.push(
                "real-time cost optimisation needs per-inference data: instrument a self-hosted model (agent request spans)".into(),
            );
        }
    }

    let mut chosen: Vec<&Score> = scores
        .iter()
        .filter(|s| s.points > 10 || s.id == "operational-overhead")
        .collect();
    // Stable order: points descending, then the profile order.
    chosen.sort_by_key(|s| std::cmp::Reverse(s.points));

    let mut warnings = Vec::new();
    let in_plan = |id: &str| chosen.iter().any(|s| s.id == id);
    if in_plan("flops-per-watt") {
        warnings.push(
            "FLOPs/W alone misleads: idle power, data movement or a slower algorithm can raise Energy-to-Solution while FLOPs/W improves; always report it beside E2S".into(),
        );
    }
    if inference || input.scope == Scope::Portfolio {
        warnings.push(
            "do not ignore idle power: servers draw energy between requests; wattprint reports idle energy separately, include it in per-query figures for a fleet".into(),
        );
    }
    if has(Goal::Compliance) || has(Goal::Esg) {
        warnings.push(
            "lifecycle emission factors (the embedded Ember/OWID dataset's basis) are not Scope 2: use direct (combustion) location-based factors and supplier or residual-mix market-based factors, or say that lifecycle factors were used".into(),
        );
    }
    if has(Goal::Cost) && input.frequency == Frequency::Realtime && input.data == DataSource::Cloud
    {
        warnings.push(
            "real-time cost optimisation needs per-inference energy, feasible only with instrumented self-hosted models; cloud provider figures are aggregated monthly per account and cannot attribute single requests".into(),
        );
    }
    if input.data == DataSource::Cloud && in_plan("flops-per-watt") {
        warnings.push(
            "cloud data only: FLOPs/W needs device power, which most cloud instances do not expose; measure on a benchmark machine you control".into(),
        );
    }
    if let Some(budget) = input.overhead_budget_pct {
        for s in &chosen {
            let p = profile(s.id);
            if p.expected_overhead_pct > budget {
                warnings.push(format!(
                    "{}: typical overhead {:.1}% exceeds the budget of {budget}%; measure per batch window instead of per request",
                    p.id, p.expected_overhead_pct
                ));
            }
        }
    }
    let left_out: Vec<&str> = scores
        .iter()
        .filter(|s| !in_plan(s.id))
        .map(|s| s.id)
        .collect();
    if !left_out.is_empty() {
        warnings.push(format!(
            "not in the plan because no stated goal makes a decision with them (tracking them anyway makes vanity metrics): {}",
            left_out.join(", ")
        ));
    }

    let metrics = chosen
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = profile(s.id);
            PlannedMetric {
                id: p.id,
                rank: i + 1,
                name: p.name,
                reason: s.reasons.join("; "),
                decisions: p.decisions,
                trade_offs: p.trade_offs.clone(),
                expected_overhead_pct: p.expected_overhead_pct,
                how_to_measure: p.how.to_string(),
                requirements: s.requirements.clone(),
            }
        })
        .collect();
    if input.data == DataSource::Cloud {
        warnings.push(
            "cloud data only: the provider exports give carbon without energy, monthly; \
             energy in MWh (ESRS E1-5) and per-job or per-query figures need measurement"
                .into(),
        );
    }
    Plan {
        metrics,
        warnings,
        sources: data_sources(input),
        merge: merge_plan(input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(goals: &[Goal], workload: Workload) -> AdviseInput {
        AdviseInput {
            goals: goals.to_vec(),
            workload,
            scope: Scope::Workload,
            frequency: Frequency::Batch,
            data: DataSource::OnPrem,
            overhead_budget_pct: None,
        }
    }

    #[test]
    fn cloud_data_puts_the_provider_export_first_and_says_what_it_cannot_decide() {
        let mut i = input(&[Goal::Esg], Workload::Inference);
        i.data = DataSource::Cloud;
        let p = advise(&i);
        let ids: Vec<&str> = p.sources.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            vec![
                "provider-export",
                "usage-estimate",
                "measured-runs",
                "agent"
            ]
        );
        let first = &p.sources[0];
        assert_eq!((first.rank, first.tier), (1, "provider-reported"));
        let cannot = first.cannot_decide.join(" ");
        for what in ["month", "energy", "per-inference"] {
            assert!(cannot.contains(what), "{cannot}");
        }
        assert!(first.add_when.as_deref().unwrap().contains("measurement"));
        assert!(p.merge.is_empty());
        // On premises, workload scope: no source plan.
        assert!(advise(&input(&[Goal::Esg], Workload::Training))
            .sources
            .is_empty());
    }

    #[test]
    fn portfolio_scope_plans_the_merge_with_measured_runs_first_on_premises() {
        let mut i = input(&[Goal::Compliance], Workload::Training);
        i.scope = Scope::Portfolio;
        let p = advise(&i);
        assert_eq!(p.sources[0].id, "measured-runs");
        assert_eq!(p.merge.len(), 5);
        assert!(p.merge[1].contains("detail"));
        assert!(p.merge[3].contains("--format portfolio"));
    }

    fn ids(p: &Plan) -> Vec<&str> {
        p.metrics.iter().map(|m| m.id).collect()
    }

    #[test]
    fn every_profile_id_is_unique_and_known() {
        let mut ids: Vec<_> = PROFILES.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids,
            vec![
                "carbon-per-inference",
                "energy-to-solution",
                "flops-per-watt",
                "operational-overhead",
                "sci"
            ]
        );
    }

    #[test]
    fn training_puts_energy_to_solution_first() {
        let p = advise(&input(&[Goal::Cost], Workload::Training));
        assert_eq!(ids(&p)[0], "energy-to-solution");
        assert_eq!(p.metrics[0].rank, 1);
    }

    #[test]
    fn high_volume_inference_puts_carbon_per_inference_first() {
        let p = advise(&input(&[Goal::Cost], Workload::Inference));
        assert_eq!(ids(&p)[0], "carbon-per-inference");
    }

    #[test]
    fn compliance_needs_e2s_and_carbon_per_inference_with_both_scope2_methods() {
        for g in [Goal::Compliance, Goal::Esg] {
            let p = advise(&input(&[g], Workload::Inference));
            let top: Vec<_> = ids(&p)[..2].to_vec();
            assert!(top.contains(&"energy-to-solution"), "{top:?}");
            assert!(top.contains(&"carbon-per-inference"), "{top:?}");
            for m in &p.metrics[..2] {
                assert!(m
                    .requirements
                    .iter()
                    .any(|r| r.contains("location-based and market-based")));
            }
            assert!(p.warnings.iter().any(|w| w.contains("lifecycle")));
        }
    }

    #[test]
    fn procurement_puts_flops_per_watt_first_and_warns_about_it_alone() {
        let p = advise(&input(&[Goal::Procurement], Workload::Training));
        assert_eq!(ids(&p)[0], "flops-per-watt");
        assert!(ids(&p).contains(&"energy-to-solution"));
        assert!(p.warnings.iter().any(|w| w.contains("FLOPs/W alone")));
    }

    #[test]
    fn realtime_cost_with_cloud_data_warns_that_it_needs_self_hosted_instrumentation() {
        let mut i = input(&[Goal::Cost], Workload::Inference);
        i.frequency = Frequency::Realtime;
        i.data = DataSource::Cloud;
        let p = advise(&i);
        assert!(p.warnings.iter().any(|w| w.contains("self-hosted")));
        i.data = DataSource::SelfHosted;
        let p = advise(&i);
        assert!(!p.warnings.iter().any(|w| w.contains("feasible only")));
        assert!(p.metrics[0]
            .requirements
            .iter()
            .any(|r| r.contains("per-inference")));
    }

    #[test]
    fn metrics_that_drive_no_decision_are_left_out_and_named() {
        let p = advise(&input(&[Goal::Cost], Workload::Training));
        assert!(!ids(&p).contains(&"sci"));
        assert!(!ids(&p).contains(&"flops-per-watt"));
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("vanity") && w.contains("sci") && w.contains("flops-per-watt")));
    }

    #[test]
    fn inference_warns_about_idle_power_and_training_does_not() {
        let p = advise(&input(&[Goal::Cost], Workload::Inference));
        assert!(p.warnings.iter().any(|w| w.contains("idle power")));
        let p = advise(&input(&[Goal::Cost], Workload::Training));
        assert!(!p.warnings.iter().any(|w| w.contains("idle power")));
    }

    #[test]
    fn a_tight_overhead_budget_flags_per_request_measurement() {
        let mut i = input(&[Goal::Cost], Workload::Inference);
        i.overhead_budget_pct = Some(0.5);
        let p = advise(&i);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.starts_with("carbon-per-inference: typical overhead 1.0%")));
        assert!(ids(&p)[..3].contains(&"operational-overhead"));
    }

    #[test]
    fn ranks_are_consecutive_and_json_has_the_contract_fields() {
        let p = advise(&input(
            &[Goal::GreenAi, Goal::Compliance, Goal::Procurement],
            Workload::Both,
        ));
        for (i, m) in p.metrics.iter().enumerate() {
            assert_eq!(m.rank, i + 1);
        }
        let v = serde_json::to_value(&p).unwrap();
        assert!(v["metrics"][0]["id"].is_string());
        assert!(v["metrics"][0]["rank"].is_u64());
        assert!(v["metrics"][0]["reason"].is_string());
        assert!(v["warnings"].is_array());
        assert_eq!(v["metrics"].as_array().unwrap().len(), 5);
    }
}
