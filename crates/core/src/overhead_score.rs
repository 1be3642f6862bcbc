//! The Operational Overhead Score across sources: for each way of obtaining a carbon figure
//! (a provider's carbon export, a usage-based estimate from billing, `wattprint run`, the
//! agent, the Python package), the three costs the guide names: **data-collection latency**
//! (how long until the number exists), **instrumentation complexity** (the set-up steps) and
//! **compute overhead** of the monitoring (measured in the history where wattprint runs;
//! none where nothing runs on the user's machines).
//!
//! Pure: the caller passes what the history measured ([`Measured`]).

use crate::portfolio::Tier;
use crate::report::RunReport;
use crate::stats;
use serde::Serialize;

/// A way of obtaining a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// The cloud provider's own carbon export (GCP Carbon Footprint, AWS CARBON_EMISSIONS,
    /// Azure Carbon Optimization), `wattprint import`.
    ProviderExport,
    /// A usage-based estimate from the FOCUS billing export (CCF method), `wattprint import`.
    UsageEstimate,
    /// `wattprint run -- CMD`.
    Run,
    /// `wattprint agent` (windows and request spans of a serving process).
    Agent,
    /// The Python package (`wattprint.track()`).
    Python,
}

impl Route {
    /// Every route, from the least instrumentation to the most.
    pub const ALL: [Route; 5] = [
        Route::ProviderExport,
        Route::UsageEstimate,
        Route::Run,
        Route::Python,
        Route::Agent,
    ];

    /// The kebab-case id (`provider-export`, ...).
    pub fn id(self) -> &'static str {
        match self {
            Route::ProviderExport => "provider-export",
            Route::UsageEstimate => "usage-estimate",
            Route::Run => "run",
            Route::Agent => "agent",
            Route::Python => "python",
        }
    }

    /// The portfolio tier of the figures this route gives.
    pub fn tier(self) -> Tier {
        match self {
            Route::ProviderExport => Tier::ProviderReported,
            Route::UsageEstimate => Tier::Estimate,
            Route::Run | Route::Agent | Route::Python => Tier::Measured,
        }
    }

    /// The route a stored run came from: an agent window carries the label `window`, a
    /// Python session has no command, `run` has one. Runs with no sensor read (imports) have
    /// no route: their overhead is not wattprint's.
    pub fn of_run(r: &RunReport) -> Option<Route> {
        if r.overhead.reads == 0 {
            None
        } else if r.labels.contains_key("window") {
            Some(Route::Agent)
        } else if r.command.is_empty() {
            Some(Route::Python)
        } else {
            Some(Route::Run)
        }
    }
}

/// A level on one axis of the score (lower is less overhead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// The compute overhead of a route.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ComputeOverhead {
    /// Nothing runs on the user's machines (the provider computes the figure, or wattprint
    /// reads a file once).
    None { note: &'static str },
    /// The meter's CPU share, median over the stored runs of this route, percent of the run.
    Measured { median_cpu_pct: f64, runs: usize },
    /// Not measured here yet: the typical figure (docs/benchmarks.md), percent.
    Typical { cpu_pct: f64, note: &'static str },
}

/// The score of one route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteScore {
    pub route: Route,
    /// `provider-reported`, `estimate`, `measured`.
    pub tier: &'static str,
    /// Until the number exists, in words.
    pub latency: String,
    /// The same, s (typical), for comparison.
    pub latency_s: f64,
    pub setup_steps: &'static [&'static str],
    pub compute: ComputeOverhead,
    /// Per axis: latency, instrumentation complexity, compute.
    pub latency_level: Level,
    pub complexity_level: Level,
    pub compute_level: Level,
    /// The worst of the three: the route's Operational Overhead Score.
    pub score: Level,
}

/// The meter's CPU share measured in the history, per route: (median percent, runs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    pub run: Option<(f64, usize)>,
    pub agent: Option<(f64, usize)>,
    pub python: Option<(f64, usize)>,
    /// The agent's settle lag, s (its `--settle-lag`; 5 s by default).
    pub agent_settle_lag_s: Option<f64>,
}

impl Measured {
    /// The medians of `meter_cpu_fraction` (as percent) over `runs`, by [`Route::of_run`].
    pub fn from_runs<'a>(runs: impl IntoIterator<Item = &'a RunReport>) -> Measured {
        let mut by: [Vec<f64>; 3] = [vec![], vec![], vec![]];
        for r in runs {
            let f = r.overhead.meter_cpu_fraction;
            if !f.is_finite() || f < 0.0 {
                continue;
            }
            match Route::of_run(r) {
                Some(Route::Run) => by[0].push(f * 100.0),
                Some(Route::Agent) => by[1].push(f * 100.0),
                Some(Route::Python) => by[2].push(f * 100.0),
                _ => {}
            }
        }
        let med = |v: &Vec<f64>| stats::median(v.iter().copied()).map(|m| (m, v.len()));
        Measured {
            run: med(&by[0]),
            agent: med(&by[1]),
            python: med(&by[2]),
            agent_settle_lag_s: None,
        }
    }
}

/// The agent's default settle lag, s (`crates/agent`, `Limits::settle_lag_s`).
pub const AGENT_DEFAULT_SETTLE_LAG_S: f64 = 5.0;

const DAY_S: f64 = 86_400.0;

fn latency_level(s: f64) -> Level {
    if s <= 60.0 {
        Level::Low
    } else if s <= 2.0 * DAY_S {
        Level::Medium
    } else {
        Level::High
    }
}

fn complexity_level(steps: usize) -> Level {
    match steps {
        0..=1 => Level::Low,
        2..=3 => Level::Medium,
        _ => Level::High,
    }
}

fn compute_level(c: &ComputeOverhead) -> Level {
    let pct = match c {
        ComputeOverhead::None { .. } => return Level::Low,
        ComputeOverhead::Measured { median_cpu_pct, .. } => *median_cpu_pct,
        ComputeOverhead::Typical { cpu_pct, .. } => *cpu_pct,
    };
    if pct < 1.0 {
        Level::Low
    } else if pct < 5.0 {
        Level::Medium
    } else {
        Level::High
    }
}

/// The score of every route, in [`Route::ALL`] order.
///
/// Latencies: provider exports are monthly and published after the month closes (about a
/// month: 30 days); a FOCUS billing export is refreshed at least daily (about a day); `run`
/// and Python give the figure when the run or block ends (0 s after it); the agent when a
/// window closes plus its settle lag. Compute: the history's medians where measured, else
/// the typical meter share of `docs/benchmarks.md` (0.1 % of a core at default settings).
pub fn score(m: &Measured) -> Vec<RouteScore> {
    Route::ALL
        .iter()
        .map(|&route| {
            let (latency, latency_s, setup_steps, compute): (String, f64, &'static [&'static str], ComputeOverhead) =
                match route {
                    Route::ProviderExport => (
                        "about a month: monthly figures, published after the month closes".into(),
                        30.0 * DAY_S,
                        &["enable the provider's carbon export (GCP BigQuery transfer, AWS Data Exports, Azure Carbon Optimization access)", "`wattprint import FILE` each month"],
                        ComputeOverhead::None { note: "the provider computes the figure; nothing runs on your machines" },
                    ),
                    Route::UsageEstimate => (
                        "about a day: FOCUS billing exports are refreshed at least daily".into(),
                        DAY_S,
                        &["enable the FOCUS billing export", "`wattprint import FILE` (one pass over the file)"],
                        ComputeOverhead::None { note: "one pass over the billing file, off the workload's machines" },
                    ),
                    Route::Run => (
                        "at the end of the run".into(),
                        0.0,
                        &["install wattprint", "prefix the command: `wattprint run -- CMD` (read access to the energy counters for measured, not modelled, energy)"],
                        m.run.map_or(
                            ComputeOverhead::Typical { cpu_pct: 0.1, note: "no `run` stored yet: the typical meter share (docs/benchmarks.md)" },
                            |(p, n)| ComputeOverhead::Measured { median_cpu_pct: p, runs: n },
                        ),
                    ),
                    Route::Python => (
                        "at the end of the `track()` block".into(),
                        0.0,
                        &["`pip install wattprint`", "wrap the code in `with wattprint.track():`", "read access to the energy counters (or accept the model)"],
                        m.python.map_or(
                            ComputeOverhead::Typical { cpu_pct: 0.1, note: "no Python session stored yet: the typical meter share (docs/benchmarks.md)" },
                            |(p, n)| ComputeOverhead::Measured { median_cpu_pct: p, runs: n },
                        ),
                    ),
                    Route::Agent => {
                        let lag = m.agent_settle_lag_s.unwrap_or(AGENT_DEFAULT_SETTLE_LAG_S);
                        (
                            format!("when a window closes, plus the settle lag ({lag} s)"),
                            lag,
                            &["run `wattprint agent` as a service (systemd unit or DaemonSet)", "give it a token and the counters' read access", "report windows or request spans from the serving code", "scrape or push its metrics"],
                            m.agent.map_or(
                                ComputeOverhead::Typical { cpu_pct: 0.1, note: "no agent window stored yet: the typical meter share (docs/benchmarks.md)" },
                                |(p, n)| ComputeOverhead::Measured { median_cpu_pct: p, runs: n },
                            ),
                        )
                    }
                };
            let latency_level = latency_level(latency_s);
            let complexity_level = complexity_level(setup_steps.len());
            let compute_level = compute_level(&compute);
            RouteScore {
                route,
                tier: route.tier().as_str(),
                latency,
                latency_s,
                setup_steps,
                compute,
                latency_level,
                complexity_level,
                compute_level,
                score: latency_level.max(complexity_level).max(compute_level),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: &[&str], window: bool, reads: u64, frac: f64) -> RunReport {
        let mut r = RunReport::new("x".into());
        r.command = cmd.iter().map(|s| s.to_string()).collect();
        if window {
            r.labels.insert("window".into(), "w".into());
        }
        r.overhead.reads = reads;
        r.overhead.meter_cpu_fraction = frac;
        r
    }

    #[test]
    fn stored_runs_are_told_apart_by_route() {
        assert_eq!(
            Route::of_run(&run(&["true"], false, 3, 0.001)),
            Some(Route::Run)
        );
        assert_eq!(
            Route::of_run(&run(&[], false, 3, 0.001)),
            Some(Route::Python)
        );
        assert_eq!(
            Route::of_run(&run(&["w"], true, 3, 0.001)),
            Some(Route::Agent)
        );
        assert_eq!(Route::of_run(&run(&["import"], false, 0, 0.0)), None);
    }

    #[test]
    fn medians_come_from_the_history_per_route() {
        let runs = [
            run(&["a"], false, 5, 0.001),
            run(&["b"], false, 5, 0.003),
            run(&["c"], false, 5, 0.002),
            run(&[], false, 5, 0.02),
            run(&["x"], false, 0, 0.5),
        ];
        let m = Measured::from_runs(&runs);
        let (p, n) = m.run.unwrap();
        assert!((p - 0.2).abs() < 1e-12, "{p}");
        assert_eq!(n, 3);
        assert_eq!(m.python.map(|x| x.1), Some(1));
        assert!(m.agent.is_none());
        let s = score(&m);
        let py = s.iter().find(|r| r.route == Route::Python).unwrap();
        assert_eq!(py.compute_level, Level::Medium); // 2 % of the run
        let r = s.iter().find(|r| r.route == Route::Run).unwrap();
        assert_eq!(
            r.compute,
            ComputeOverhead::Measured {
                median_cpu_pct: p,
                runs: 3
            }
        );
    }

    #[test]
    fn the_export_costs_latency_not_compute_and_run_the_reverse() {
        let s = score(&Measured::default());
        assert_eq!(s.len(), 5);
        let export = &s[0];
        assert_eq!(export.route, Route::ProviderExport);
        assert_eq!(export.tier, "provider-reported");
        assert_eq!(
            (export.latency_level, export.compute_level),
            (Level::High, Level::Low)
        );
        assert_eq!(export.score, Level::High);
        let est = &s[1];
        assert_eq!((est.tier, est.latency_level), ("estimate", Level::Medium));
        let run = s.iter().find(|r| r.route == Route::Run).unwrap();
        assert_eq!(
            (run.latency_level, run.complexity_level),
            (Level::Low, Level::Medium)
        );
        assert!(matches!(run.compute, ComputeOverhead::Typical { .. }));
        let agent = s.iter().find(|r| r.route == Route::Agent).unwrap();
        assert!(agent.latency.contains("5 s"));
        assert_eq!(agent.complexity_level, Level::High);
        let lag = score(&Measured {
            agent_settle_lag_s: Some(120.0),
            ..Default::default()
        });
        assert_eq!(lag[4].latency_level, Level::Medium);
    }
}
