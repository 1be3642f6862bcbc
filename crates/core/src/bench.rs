//! Benchmarks of commands (`wattprint bench`), the pure part: parameters substituted into
//! commands as `{NAME}`, per-configuration estimates with bootstrap intervals, the energy /
//! time Pareto front and the lowest-energy configuration that meets the user's limits.
//!
//! Nothing here measures: the CLI runs the commands through the engine and hands the numbers
//! in.

use crate::stats::{self, Interval};
use serde::{Deserialize, Serialize};

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
        let e = check_used(&["python infer.py --batch 4".into()], &[p.clone()]).unwrap_err();
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
