//! Benchmarks of commands (`wattprint bench`), the pure part: parameters substituted into
//! commands as `{NAME}`, per-configuration estimates with bootstrap intervals, the energy /
//! time Pareto front and the lowest-energy configuration that meets the user's limits.
//!
//! Nothing here measures: the CLI runs the commands through the engine and hands the numbers
//! in.

use crate::stats::{self, Interval};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema name of a bench's JSON export (`--export-json`).
pub const BENCH_SCHEMA: &str = "wattprint.bench/v1";

/// Most values one parameter may take (a scan from 1 to 1e9 is a typo, not a benchmark).
pub const MAX_VALUES: usize = 1000;

/// A parameter of a sweep: its name (used in commands as `{name}`) and its values, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    /// The name, as written in `{name}`: letters, digits, `_` and `-`.
    pub name: String,
    /// The values substituted, as text, in the order they are run.
    pub values: Vec<String>,
}

/// Bad benchmark input; each says which option and how to fix it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BenchInputError {
    #[error(
        "parameter `{name}`: the list is empty; give values like `--parameter-list {name} 1,8,32`"
    )]
    EmptyList { name: String },
    #[error("parameter `{name}`: the list has an empty value (`{text}`); remove the extra comma")]
    EmptyValue { name: String, text: String },
    #[error(
        "parameter name `{name}`: use letters, digits, `_` and `-` only (it is written `{{{name}}}` in the command)"
    )]
    BadName { name: String },
    #[error("parameter `{name}` is given twice; give each parameter once")]
    Duplicate { name: String },
    #[error("--parameter-scan {name}: {why}")]
    BadScan { name: String, why: String },
    #[error("parameter `{name}` has {count} values, more than {MAX_VALUES}; use a coarser step")]
    TooMany { name: String, count: usize },
    #[error(
        "parameter `{name}` never appears in a command: write `{{{name}}}` where its value goes, e.g. `python infer.py --batch {{{name}}}`"
    )]
    NotUsed { name: String },
}

fn check_name(name: &str) -> Result<(), BenchInputError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(BenchInputError::BadName { name: name.into() })
    }
}

/// `--parameter-list NAME a,b,c`: the comma-separated values, in order.
pub fn parse_list(name: &str, text: &str) -> Result<Parameter, BenchInputError> {
    check_name(name)?;
    if text.trim().is_empty() {
        return Err(BenchInputError::EmptyList { name: name.into() });
    }
    let values: Vec<String> = text.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(BenchInputError::EmptyValue {
            name: name.into(),
            text: text.into(),
        });
    }
    if values.len() > MAX_VALUES {
        return Err(BenchInputError::TooMany {
            name: name.into(),
            count: values.len(),
        });
    }
    Ok(Parameter {
        name: name.into(),
        values,
    })
}

/// Decimals needed to write `x` as Rust's shortest round-trip form does.
fn decimals(x: f64) -> usize {
    let s = format!("{x}");
    s.split_once('.').map_or(0, |(_, f)| f.len())
}

/// `--parameter-scan NAME MIN MAX [--parameter-step-size STEP]`: MIN, MIN + STEP, ... up to
/// MAX (included when on the grid), written with as many decimals as MIN and STEP have
/// (`0.1, 0.2, 0.3`, not `0.30000000000000004`). STEP defaults to 1.
pub fn scan(
    name: &str,
    min: f64,
    max: f64,
    step: Option<f64>,
) -> Result<Parameter, BenchInputError> {
    check_name(name)?;
    let step = step.unwrap_or(1.0);
    let bad = |why: String| BenchInputError::BadScan {
        name: name.into(),
        why,
    };
    if !(min.is_finite() && max.is_finite()) {
        return Err(bad(format!("MIN {min} and MAX {max} must be numbers")));
    }
    if min > max {
        return Err(bad(format!("MIN {min} is above MAX {max}; swap them")));
    }
    if !(step.is_finite() && step > 0.0) {
        return Err(bad(format!(
            "the step {step} must be a positive number (--parameter-step-size)"
        )));
    }
    // A tolerance of a millionth of a step keeps MAX when float steps land a hair past it.
    let count = ((max - min) / step + 1e-6).floor() + 1.0;
    if count > MAX_VALUES as f64 {
        return Err(BenchInputError::TooMany {
            name: name.into(),
            count: count.min(usize::MAX as f64) as usize,
        });
    }
    let places = decimals(min).max(decimals(step));
    let values = (0..count as usize)
        .map(|i| format!("{:.*}", places, min + i as f64 * step))
        .collect();
    Ok(Parameter {
        name: name.into(),
        values,
    })
}

/// Every combination of the parameters' values (the first parameter varies slowest), each as
/// `(name, value)` pairs in parameter order; one empty configuration when there are none.
/// Errors on a parameter given twice.
pub fn configurations(params: &[Parameter]) -> Result<Vec<Vec<(String, String)>>, BenchInputError> {
    for (i, p) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.name == p.name) {
            return Err(BenchInputError::Duplicate {
                name: p.name.clone(),
            });
        }
    }
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for p in params {
        out = out
            .into_iter()
            .flat_map(|c| {
                p.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((p.name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    Ok(out)
}

/// Every parameter must appear as `{NAME}` in at least one command (else it varies nothing).
pub fn check_used(commands: &[String], params: &[Parameter]) -> Result<(), BenchInputError> {
    for p in params {
        let mark = format!("{{{}}}", p.name);
        if !commands.iter().any(|c| c.contains(&mark)) {
            return Err(BenchInputError::NotUsed {
                name: p.name.clone(),
            });
        }
    }
    Ok(())
}

/// `command` with every `{NAME}` of `config` replaced by its value (other braces untouched).
pub fn substitute(command: &str, config: &[(String, String)]) -> String {
    config.iter().fold(command.to_string(), |c, (name, value)| {
        c.replace(&format!("{{{name}}}"), value)
    })
}

/// A quantity measured over repeated runs: mean, median and the bootstrap interval of the
/// mean, in the quantity's unit (named by the field that holds it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Runs the figures are over.
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Percentile-bootstrap interval of the mean ([`stats::bootstrap`]); `None` for one run.
    pub ci: Option<Interval>,
}

/// The [`Estimate`] of `values` (NaN dropped) at `confidence` (a fraction), seeded with
/// [`stats::DEFAULT_SEED`]; `None` when no value is left.
pub fn estimate(values: &[f64], confidence: f64) -> Option<Estimate> {
    let mean = stats::mean(values.iter().copied())?;
    let median = stats::median(values.iter().copied())?;
    let ci = stats::bootstrap(
        values,
        |x| stats::mean(x.iter().copied()).unwrap_or(f64::NAN),
        confidence,
        stats::RESAMPLES,
        stats::DEFAULT_SEED,
    );
    Some(Estimate {
        n: values.iter().filter(|x| !x.is_nan()).count(),
        mean,
        median,
        ci,
    })
}

/// One configuration on the energy / time plane: mean energy (J, or J per declared unit) and
/// mean time (s, or s per unit when units are declared: the latency).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub energy: f64,
    pub time_s: f64,
}

/// Indices of the points on the Pareto front (none both faster-or-equal and lower-or-equal
/// in energy, and strictly better in one), fastest first. Points with a non-finite
/// coordinate are left out.
pub fn pareto_front(points: &[Point]) -> Vec<usize> {
    let ok = |p: &Point| p.energy.is_finite() && p.time_s.is_finite();
    let dominated = |i: usize| {
        let p = points[i];
        points.iter().any(|q| {
            ok(q)
                && q.energy <= p.energy
                && q.time_s <= p.time_s
                && (q.energy < p.energy || q.time_s < p.time_s)
        })
    };
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| ok(&points[i]) && !dominated(i))
        .collect();
    front.sort_by(|&a, &b| {
        points[a]
            .time_s
            .total_cmp(&points[b].time_s)
            .then(points[a].energy.total_cmp(&points[b].energy))
    });
    front
}

/// Limits a recommended configuration must meet (all that are set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// At most this much slower than the fastest configuration, percent (`--max-slowdown`).
    pub max_slowdown_pct: Option<f64>,
    /// Mean run time at most this, s (`--deadline`).
    pub deadline_s: Option<f64>,
    /// Mean time per declared unit at most this, s (`--max-latency`).
    pub max_latency_s: Option<f64>,
}

/// One configuration's figures for [`recommend`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Mean energy, J or J per unit: what is minimised.
    pub energy: f64,
    /// Mean run time, s.
    pub time_s: f64,
    /// Mean time per declared unit, s; `None` without units.
    pub latency_s: Option<f64>,
}

/// Why no configuration can be recommended.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecommendError {
    #[error("no configuration has a finished run")]
    NoRuns,
    #[error("no configuration meets the limits (the fastest takes {fastest_s:.3} s a run)")]
    NoneMeets { fastest_s: f64 },
    #[error("--max-latency needs declared units (--inferences or --tokens, or the work file)")]
    NoUnits,
}

/// The lowest-energy candidate meeting every limit (ties: the faster). Slowdown is against
/// the fastest candidate's mean run time.
pub fn recommend(candidates: &[Candidate], limits: &Limits) -> Result<usize, RecommendError> {
    let ok = |c: &Candidate| c.energy.is_finite() && c.time_s.is_finite();
    let fastest_s = candidates
        .iter()
        .filter(|c| ok(c))
        .map(|c| c.time_s)
        .min_by(f64::total_cmp)
        .ok_or(RecommendError::NoRuns)?;
    if limits.max_latency_s.is_some() && candidates.iter().all(|c| c.latency_s.is_none()) {
        return Err(RecommendError::NoUnits);
    }
    let meets = |c: &Candidate| {
        ok(c)
            && limits
                .max_slowdown_pct
                .is_none_or(|p| c.time_s <= fastest_s * (1.0 + p / 100.0))
            && limits.deadline_s.is_none_or(|d| c.time_s <= d)
            && limits
                .max_latency_s
                .is_none_or(|l| c.latency_s.is_some_and(|x| x <= l))
    };
    (0..candidates.len())
        .filter(|&i| meets(&candidates[i]))
        .min_by(|&a, &b| {
            let (a, b) = (&candidates[a], &candidates[b]);
            a.energy
                .total_cmp(&b.energy)
                .then(a.time_s.total_cmp(&b.time_s))
        })
        .ok_or(RecommendError::NoneMeets { fastest_s })
}

/// An outlier must be at least this far from the median, as a fraction (5 %): closer, it
/// moves no decision a bench informs (our judgement; the statistical test is
/// [`stats::outliers`]'s modified z-score).
pub const OUTLIER_MIN_REL: f64 = 0.05;

/// One measured run of a group, as the engine reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFigures {
    /// The run's id in the history.
    pub run_id: String,
    /// The command's exit status (`None`: it did not start).
    pub exit_code: Option<i32>,
    /// Energy-to-Solution, J.
    pub energy_j: f64,
    /// Wall time, s.
    pub time_s: f64,
    /// Declared units of work (inferences or tokens) the run did; `None` when undeclared.
    pub units: Option<f64>,
}

/// The runs of one group: one command in one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRuns {
    /// The command after substitution (a shell string).
    pub command: String,
    /// The parameters' values in this configuration.
    pub parameters: BTreeMap<String, String>,
    /// Every measured run (warm-ups excluded), failed ones too.
    pub runs: Vec<RunFigures>,
}

/// A run that failed: reported, not averaged in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedRun {
    pub run_id: String,
    /// Exit status; `None` when the command did not start.
    pub exit_code: Option<i32>,
}

/// One group's figures over its successful runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    /// 1-based, as in `bench:ID/N` and the `bench.group` label.
    pub group: usize,
    pub command: String,
    pub parameters: BTreeMap<String, String>,
    /// The successful runs averaged in.
    pub run_ids: Vec<String>,
    /// Runs with a non-zero exit status: left out of every figure.
    pub failed: Vec<FailedRun>,
    /// Energy-to-Solution per run, J.
    pub energy_j: Option<Estimate>,
    /// Wall time per run, s.
    pub time_s: Option<Estimate>,
    /// Average power per run (energy / time), W.
    pub power_w: Option<Estimate>,
    /// Energy per declared unit, J; `None` unless every successful run declared units.
    pub j_per_unit: Option<Estimate>,
    /// Time per declared unit (latency), s; `None` as `j_per_unit`.
    pub s_per_unit: Option<Estimate>,
    /// Runs whose energy or time is an outlier ([`stats::outliers`]); still averaged in.
    pub outlier_run_ids: Vec<String>,
}

/// "group uses `ratio` x the energy of baseline": ratio of mean energies (or J per unit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyRatio {
    pub group: usize,
    pub baseline: usize,
    pub ratio: f64,
    /// Bootstrap interval of the ratio ([`stats::bootstrap_ratio`]).
    pub ci: Option<Interval>,
}

/// A bench's result (`wattprint.bench/v1`): the groups, how they compare, the front and the
/// recommendation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub schema: String,
    /// The id every run of this bench carries as its `bench` label.
    pub bench_id: String,
    /// Measured runs per group (warm-ups not counted).
    pub runs: usize,
    /// Warm-up runs per group, discarded.
    pub warmup: usize,
    /// Confidence of every interval, percent.
    pub confidence_pct: f64,
    /// The declared unit (`inference`, `token`) when every group declared one.
    pub unit: Option<String>,
    pub groups: Vec<GroupResult>,
    /// Each other group against the lowest-energy one (empty with one group).
    pub ratios: Vec<EnergyRatio>,
    /// Groups on the energy / time Pareto front (J and s, or per unit), fastest first.
    pub front: Vec<usize>,
    pub limits: Limits,
    /// The lowest-energy group meeting the limits.
    pub recommended: Option<usize>,
    /// Why nothing is recommended, when nothing is.
    pub no_recommendation: Option<String>,
}

/// Summarises measured groups: estimates at `confidence_pct`, ratios against the
/// lowest-energy group, the front (per unit when `unit` is set and every group has units)
/// and the recommendation under `limits`.
pub fn summarize(
    bench_id: &str,
    groups: &[GroupRuns],
    runs: usize,
    warmup: usize,
    confidence_pct: f64,
    unit: Option<&str>,
    limits: Limits,
) -> BenchReport {
    let conf = confidence_pct / 100.0;
    let mut results = Vec::new();
    // Each group's energy values, whole runs and per unit (when every run declared units).
    let mut whole: Vec<Vec<f64>> = Vec::new();
    let mut per_unit_values: Vec<Option<Vec<f64>>> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let ok: Vec<&RunFigures> = g.runs.iter().filter(|r| r.exit_code == Some(0)).collect();
        let e: Vec<f64> = ok.iter().map(|r| r.energy_j).collect();
        let t: Vec<f64> = ok.iter().map(|r| r.time_s).collect();
        let w: Vec<f64> = ok
            .iter()
            .map(|r| {
                if r.time_s > 0.0 {
                    r.energy_j / r.time_s
                } else {
                    f64::NAN
                }
            })
            .collect();
        let units: Option<Vec<f64>> = ok
            .iter()
            .map(|r| r.units.filter(|u| *u > 0.0))
            .collect::<Option<Vec<f64>>>()
            .filter(|u| !u.is_empty());
        let per = |x: &[f64]| {
            units
                .as_ref()
                .map(|u| x.iter().zip(u).map(|(x, u)| x / u).collect::<Vec<f64>>())
        };
        let (jpu, spu) = (per(&e), per(&t));
        let (oe, ot) = (
            stats::outliers(&e, OUTLIER_MIN_REL),
            stats::outliers(&t, OUTLIER_MIN_REL),
        );
        results.push(GroupResult {
            group: i + 1,
            command: g.command.clone(),
            parameters: g.parameters.clone(),
            run_ids: ok.iter().map(|r| r.run_id.clone()).collect(),
            failed: g
                .runs
                .iter()
                .filter(|r| r.exit_code != Some(0))
                .map(|r| FailedRun {
                    run_id: r.run_id.clone(),
                    exit_code: r.exit_code,
                })
                .collect(),
            energy_j: estimate(&e, conf),
            time_s: estimate(&t, conf),
            power_w: estimate(&w, conf),
            j_per_unit: jpu.as_deref().and_then(|x| estimate(x, conf)),
            s_per_unit: spu.as_deref().and_then(|x| estimate(x, conf)),
            outlier_run_ids: ok
                .iter()
                .enumerate()
                .filter(|(k, _)| oe[*k] || ot[*k])
                .map(|(_, r)| r.run_id.clone())
                .collect(),
        });
        whole.push(e);
        per_unit_values.push(jpu);
    }
    let per_unit = unit.is_some() && results.iter().all(|g| g.j_per_unit.is_some());
    let energy_of = |g: &GroupResult| {
        if per_unit {
            g.j_per_unit.map(|e| e.mean)
        } else {
            g.energy_j.map(|e| e.mean)
        }
    };
    let points: Vec<Point> = results
        .iter()
        .map(|g| Point {
            energy: energy_of(g).unwrap_or(f64::NAN),
            time_s: if per_unit {
                g.s_per_unit.map_or(f64::NAN, |t| t.mean)
            } else {
                g.time_s.map_or(f64::NAN, |t| t.mean)
            },
        })
        .collect();
    let baseline = (0..results.len())
        .filter(|&i| points[i].energy.is_finite())
        .min_by(|&a, &b| points[a].energy.total_cmp(&points[b].energy));
    let mut ratios = Vec::new();
    if let Some(b) = baseline.filter(|_| results.len() > 1) {
        for (i, g) in results.iter().enumerate() {
            if i == b || !points[i].energy.is_finite() || points[b].energy == 0.0 {
                continue;
            }
            let ratio = points[i].energy / points[b].energy;
            // Like with like: per unit on both sides, or whole runs on both.
            let values = |k: usize| match (&per_unit_values[k], per_unit) {
                (Some(v), true) => v.as_slice(),
                _ => whole[k].as_slice(),
            };
            let ci = stats::bootstrap_ratio(
                values(b),
                values(i),
                |x| stats::mean(x.iter().copied()).unwrap_or(f64::NAN),
                conf,
                stats::RESAMPLES,
                stats::DEFAULT_SEED,
            );
            ratios.push(EnergyRatio {
                group: g.group,
                baseline: b + 1,
                ratio,
                ci,
            });
        }
    }
    let front = pareto_front(&points).into_iter().map(|i| i + 1).collect();
    let candidates: Vec<Candidate> = results
        .iter()
        .zip(&points)
        .map(|(g, p)| Candidate {
            energy: p.energy,
            time_s: g.time_s.map_or(f64::NAN, |t| t.mean),
            latency_s: g.s_per_unit.map(|t| t.mean),
        })
        .collect();
    let (recommended, no_recommendation) = match recommend(&candidates, &limits) {
        Ok(i) => (Some(i + 1), None),
        Err(e) => (None, Some(e.to_string())),
    };
    BenchReport {
        schema: BENCH_SCHEMA.into(),
        bench_id: bench_id.into(),
        runs,
        warmup,
        confidence_pct,
        unit: per_unit.then(|| unit.unwrap_or_default().to_string()),
        groups: results,
        ratios,
        front,
        limits,
        recommended,
        no_recommendation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_scans_give_their_values_in_order() {
        let p = parse_list("batch", "1, 8,32,128").unwrap();
        assert_eq!(p.values, ["1", "8", "32", "128"]);
        assert_eq!(
            scan("n", 1.0, 4.0, None).unwrap().values,
            ["1", "2", "3", "4"]
        );
        assert_eq!(
            scan("lr", 0.1, 0.3, Some(0.1)).unwrap().values,
            ["0.1", "0.2", "0.3"]
        );
        assert_eq!(
            scan("n", 0.0, 10.0, Some(4.0)).unwrap().values,
            ["0", "4", "8"]
        );
    }

    #[test]
    fn bad_parameters_are_errors_that_say_the_fix() {
        let e = parse_list("batch", "").unwrap_err();
        assert!(e.to_string().contains("the list is empty"), "{e}");
        assert!(matches!(
            parse_list("b", "1,,2"),
            Err(BenchInputError::EmptyValue { .. })
        ));
        assert!(matches!(
            parse_list("a b", "1"),
            Err(BenchInputError::BadName { .. })
        ));
        assert!(matches!(
            scan("n", 5.0, 1.0, None),
            Err(BenchInputError::BadScan { .. })
        ));
        assert!(matches!(
            scan("n", 1.0, 5.0, Some(0.0)),
            Err(BenchInputError::BadScan { .. })
        ));
        assert!(matches!(
            scan("n", 0.0, 1e9, None),
            Err(BenchInputError::TooMany { .. })
        ));
        let p = parse_list("batch", "1,2").unwrap();
        let e = check_used(
            &["python infer.py --batch 4".into()],
            std::slice::from_ref(&p),
        )
        .unwrap_err();
        assert!(e.to_string().contains("write `{batch}`"), "{e}");
        assert!(configurations(&[p.clone(), p]).is_err());
    }

    #[test]
    fn configurations_are_the_product_and_substitute_into_commands() {
        let a = parse_list("a", "1,2").unwrap();
        let b = parse_list("b", "x,y,z").unwrap();
        let c = configurations(&[a, b]).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[1],
            [("a".to_string(), "1".to_string()), ("b".into(), "y".into())]
        );
        assert_eq!(
            substitute("run --a {a} --b {b} {c}", &c[5]),
            "run --a 2 --b z {c}"
        );
        assert_eq!(configurations(&[]).unwrap(), vec![Vec::new()]);
    }

    #[test]
    fn the_front_keeps_what_nothing_beats_fastest_first() {
        // A known front: batch sizes where bigger batches save energy but add latency, plus
        // two configurations that are worse on both axes than one on the front.
        let p = |energy, time_s| Point { energy, time_s };
        let pts = [
            p(10.0, 1.0), // front
            p(6.0, 2.0),  // front
            p(7.0, 3.0),  // dominated by (6, 2)
            p(4.0, 5.0),  // front
            p(12.0, 1.5), // dominated by (10, 1)
            p(4.0, 6.0),  // dominated by (4, 5)
            p(f64::NAN, 0.1),
        ];
        assert_eq!(pareto_front(&pts), vec![0, 1, 3]);
    }

    #[test]
    fn the_recommendation_is_the_lowest_energy_within_the_limits() {
        let c = |energy, time_s, latency_s| Candidate {
            energy,
            time_s,
            latency_s,
        };
        let cands = [
            c(10.0, 1.0, Some(0.01)),
            c(6.0, 2.0, Some(0.02)),
            c(4.0, 5.0, Some(0.05)),
        ];
        assert_eq!(recommend(&cands, &Limits::default()), Ok(2));
        let slow = Limits {
            max_slowdown_pct: Some(100.0),
            ..Default::default()
        };
        assert_eq!(recommend(&cands, &slow), Ok(1));
        let deadline = Limits {
            deadline_s: Some(1.5),
            ..Default::default()
        };
        assert_eq!(recommend(&cands, &deadline), Ok(0));
        let latency = Limits {
            max_latency_s: Some(0.03),
            ..Default::default()
        };
        assert_eq!(recommend(&cands, &latency), Ok(1));
        let none = Limits {
            deadline_s: Some(0.5),
            ..Default::default()
        };
        let e = recommend(&cands, &none).unwrap_err();
        assert!(e.to_string().contains("fastest takes 1.000 s"), "{e}");
        let no_units = [c(1.0, 1.0, None)];
        assert_eq!(recommend(&no_units, &latency), Err(RecommendError::NoUnits));
        assert_eq!(
            recommend(&[], &Limits::default()),
            Err(RecommendError::NoRuns)
        );
    }

    /// A sweep on a scripted sensor: `batch` 1, 8, 32, 128 of 1000 inferences; energy falls
    /// and time per run grows with the batch, except batch 128, which is slower *and* uses
    /// more energy than 32 (memory-bound): off the front. Noise 1 %, seeded.
    fn scripted_sweep() -> Vec<GroupRuns> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut noise = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.02
        };
        let truth = [
            ("1", 100.0, 1.0),
            ("8", 60.0, 1.2),
            ("32", 40.0, 2.0),
            ("128", 45.0, 3.0),
        ];
        truth
            .iter()
            .map(|(batch, energy_j, time_s)| GroupRuns {
                command: format!("python digits.py --batch {batch}"),
                parameters: [("batch".to_string(), batch.to_string())].into(),
                runs: (0..10)
                    .map(|k| RunFigures {
                        run_id: format!("b{batch}-{k}"),
                        // Run 3 of batch 8 fails after burning little energy.
                        exit_code: Some(if *batch == "8" && k == 3 { 1 } else { 0 }),
                        energy_j: if *batch == "8" && k == 3 {
                            1.0
                        } else {
                            energy_j * (1.0 + noise())
                        },
                        time_s: time_s * (1.0 + noise()),
                        units: Some(1000.0),
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn a_sweep_gives_its_known_front_and_recommendation() {
        let groups = scripted_sweep();
        let r = summarize(
            "b1",
            &groups,
            10,
            1,
            95.0,
            Some("inference"),
            Limits::default(),
        );
        assert_eq!(r.schema, BENCH_SCHEMA);
        assert_eq!(r.unit.as_deref(), Some("inference"));
        assert_eq!(r.front, vec![1, 2, 3], "batch 128 is dominated by batch 32");
        assert_eq!(r.recommended, Some(3), "batch 32 uses least energy");
        let g8 = &r.groups[1];
        assert_eq!(
            g8.failed,
            vec![FailedRun {
                run_id: "b8-3".into(),
                exit_code: Some(1)
            }]
        );
        assert_eq!(g8.run_ids.len(), 9);
        let e = g8.energy_j.unwrap();
        assert!(
            (e.mean - 60.0).abs() < 0.6,
            "the failed run is not averaged in: {e:?}"
        );
        assert!(e.ci.unwrap().contains(60.0));
        let jpu = g8.j_per_unit.unwrap();
        assert!((jpu.mean - 0.06).abs() < 0.0006, "{jpu:?}");
        // Batch 1 against the baseline (batch 32): 100 / 40 = 2.5.
        let r1 = r.ratios.iter().find(|x| x.group == 1).unwrap();
        assert_eq!(r1.baseline, 3);
        let ci = r1.ci.unwrap();
        assert!(
            (r1.ratio - 2.5).abs() < 0.03 && ci.contains(r1.ratio),
            "{r1:?}"
        );
        assert!(ci.half_width() < 0.03, "1 % noise over 9-10 runs: {ci:?}");
        // Within 50 % of the fastest (batch 1: 1 s a run): batch 8.
        let limits = Limits {
            max_slowdown_pct: Some(50.0),
            ..Default::default()
        };
        let r = summarize("b1", &groups, 10, 1, 95.0, Some("inference"), limits);
        assert_eq!(r.recommended, Some(2));
        let limits = Limits {
            deadline_s: Some(0.5),
            ..Default::default()
        };
        let r = summarize("b1", &groups, 10, 1, 95.0, Some("inference"), limits);
        assert_eq!(r.recommended, None);
        assert!(r
            .no_recommendation
            .unwrap()
            .contains("no configuration meets"));
    }

    #[test]
    fn an_estimate_has_an_interval_from_two_runs() {
        let e = estimate(&[10.0, 12.0, 11.0], 0.95).unwrap();
        assert_eq!((e.n, e.mean, e.median), (3, 11.0, 11.0));
        let ci = e.ci.unwrap();
        assert!(
            ci.low >= 10.0 && ci.high <= 12.0 && ci.contains(11.0),
            "{ci:?}"
        );
        assert_eq!(estimate(&[5.0], 0.95).unwrap().ci, None);
        assert_eq!(estimate(&[], 0.95), None);
    }
}
