//! Comparison of two runs, or two groups of repeated runs (medians and spread), with a CI gate:
//! B fails when it is worse than A by more than a threshold. Lower is better for every metric.
//!
//! Groups (two runs or more on each side) are judged by a confidence interval of the change
//! of B's median against A's (a seeded bootstrap, `stats::bootstrap_ratio`): the gate fails
//! only when the whole interval lies above the threshold, so noise between identical runs
//! does not trip it. Single runs have no interval and are judged by their values.

use crate::render::{fmt_j, sig};
use serde::Serialize;
use wattprint_core::report::{RunReport, RunStatus};
use wattprint_core::stats::{self, Interval};

/// What is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompareMetric {
    /// Energy-to-Solution, J.
    Energy,
    /// Total carbon, gCO2e.
    Carbon,
    /// Joules per token.
    JPerToken,
    /// Joules per inference.
    JPerInference,
}

impl CompareMetric {
    pub fn unit(self) -> &'static str {
        match self {
            CompareMetric::Energy => "J",
            CompareMetric::Carbon => "gCO2e",
            CompareMetric::JPerToken => "J/token",
            CompareMetric::JPerInference => "J/inference",
        }
    }

    /// The metric's value for one run, or why it has none.
    pub fn value(self, r: &RunReport) -> Result<f64, CompareError> {
        let per = |stored: Option<f64>, work: Option<f64>, what: &'static str| {
            stored
                .or_else(|| work.filter(|w| *w > 0.0).map(|w| r.energy.total_j / w))
                .ok_or_else(|| CompareError::NoWork {
                    run: r.id.clone(),
                    what,
                })
        };
        match self {
            CompareMetric::Energy => Ok(r.energy.total_j),
            CompareMetric::Carbon => {
                if r.carbon.zone.is_empty() && r.carbon.total_g == 0.0 {
                    Err(CompareError::NoCarbon { run: r.id.clone() })
                } else {
                    Ok(r.carbon.total_g)
                }
            }
            CompareMetric::JPerToken => per(r.metrics.joules_per_token, r.work.tokens, "tokens"),
            CompareMetric::JPerInference => per(
                r.metrics.joules_per_inference,
                r.work.inferences,
                "inferences",
            ),
        }
    }
}

/// One side: a run or a group of runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub label: String,
    pub run_ids: Vec<String>,
    /// Those of `run_ids` that were interrupted: their figures stop at their last
    /// checkpoint.
    pub interrupted: Vec<String>,
    pub values: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max - min) / median, percent; `None` for one run or a zero median.
    pub spread_pct: Option<f64>,
}

/// Per-domain energies side by side (single runs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainDelta {
    pub domain: String,
    pub a_j: Option<f64>,
    pub b_j: Option<f64>,
    pub delta_pct: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub metric: CompareMetric,
    pub unit: &'static str,
    pub a: Side,
    pub b: Side,
    /// median(B) - median(A).
    pub delta: f64,
    /// Change of B against A, percent; `None` when A's median is 0.
    pub delta_pct: Option<f64>,
    pub fail_over_pct: Option<f64>,
    /// Confidence of `delta_ci_pct`, percent (`--confidence`, default 95).
    pub confidence_pct: f64,
    /// Bootstrap interval of the change of B's median against A's, percent; `None` unless
    /// both sides have two runs or more (and A's median is not always 0).
    pub delta_ci_pct: Option<Interval>,
    /// True when B is worse than A beyond the threshold: with an interval, when all of it
    /// lies above the threshold (significant at `confidence_pct`); else by the values.
    pub failed: bool,
    pub domains: Vec<DomainDelta>,
}

/// Why two sets of runs cannot be compared; each names the run or side and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    #[error("{side}: no runs")]
    NoRuns { side: String },
    /// `what` is the work count (`tokens`, `inferences`), also the flag that declares it.
    #[error("run {run} has no {what} declared (use --{what} when running)")]
    NoWork { run: String, what: &'static str },
    #[error("run {run} has no carbon (no zone)")]
    NoCarbon { run: String },
}

/// A percentage that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a percentage like 5 or 5%")]
pub struct PctError {
    pub text: String,
}

fn side(label: &str, runs: &[RunReport], m: CompareMetric) -> Result<Side, CompareError> {
    if runs.is_empty() {
        return Err(CompareError::NoRuns {
            side: label.to_string(),
        });
    }
    let values = runs
        .iter()
        .map(|r| m.value(r))
        .collect::<Result<Vec<_>, _>>()?;
    let sorted = stats::sorted(values.iter().copied());
    let med = stats::median_of_sorted(&sorted).unwrap_or(f64::NAN);
    let (min, max) = match (sorted.first(), sorted.last()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (f64::NAN, f64::NAN),
    };
    Ok(Side {
        label: label.to_string(),
        run_ids: runs.iter().map(|r| r.id.clone()).collect(),
        interrupted: runs
            .iter()
            .filter(|r| r.status == RunStatus::Interrupted)
            .map(|r| r.id.clone())
            .collect(),
        values,
        median: med,
        min,
        max,
        spread_pct: (runs.len() > 1 && med != 0.0).then(|| (max - min) / med * 100.0),
    })
}

/// Compares B against A. Errors say which run lacks the metric.
pub fn compare(
    a_label: &str,
    a: &[RunReport],
    b_label: &str,
    b: &[RunReport],
    metric: CompareMetric,
    fail_over_pct: Option<f64>,
    confidence_pct: f64,
) -> Result<Comparison, CompareError> {
    let sa = side(a_label, a, metric)?;
    let sb = side(b_label, b, metric)?;
    let delta = sb.median - sa.median;
    let delta_pct = (sa.median != 0.0).then(|| delta / sa.median * 100.0);
    let delta_ci_pct = stats::bootstrap_ratio(
        &sa.values,
        &sb.values,
        |x| stats::median(x.iter().copied()).unwrap_or(f64::NAN),
        confidence_pct / 100.0,
        stats::RESAMPLES,
        stats::DEFAULT_SEED,
    )
    .map(|r| Interval {
        low: (r.low - 1.0) * 100.0,
        high: (r.high - 1.0) * 100.0,
    });
    let failed = match (fail_over_pct, delta_ci_pct) {
        (None, _) => false,
        (Some(th), Some(ci)) => ci.low > th,
        (Some(th), None) => match delta_pct {
            Some(p) => p > th,
            // A is zero: any positive B is an unbounded regression.
            None => sb.median > 0.0,
        },
    };
    let mut domains = Vec::new();
    if a.len() == 1 && b.len() == 1 {
        let mut names: Vec<&str> = a[0]
            .energy
            .domains
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        for d in &b[0].energy.domains {
            if !names.contains(&d.name.as_str()) {
                names.push(&d.name);
            }
        }
        for n in names {
            let find = |r: &RunReport| {
                r.energy
                    .domains
                    .iter()
                    .find(|d| d.name == n)
                    .map(|d| d.joules)
            };
            let (aj, bj) = (find(&a[0]), find(&b[0]));
            domains.push(DomainDelta {
                domain: n.to_string(),
                a_j: aj,
                b_j: bj,
                delta_pct: match (aj, bj) {
                    (Some(x), Some(y)) if x != 0.0 => Some((y - x) / x * 100.0),
                    _ => None,
                },
            });
        }
    }
    Ok(Comparison {
        metric,
        unit: metric.unit(),
        a: sa,
        b: sb,
        delta,
        delta_pct,
        fail_over_pct,
        confidence_pct,
        delta_ci_pct,
        failed,
        domains,
    })
}

fn pct(p: Option<f64>) -> String {
    match p {
        Some(x) => format!("{x:+.2}%"),
        None => "n/a (A is 0)".into(),
    }
}

fn val(m: CompareMetric, v: f64) -> String {
    match m {
        CompareMetric::Energy => fmt_j(v),
        _ => format!("{} {}", sig(v), m.unit()),
    }
}

/// Text or Markdown rendering of a comparison.
pub fn render(c: &Comparison, markdown: bool) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "".into(),
        c.a.label.clone(),
        c.b.label.clone(),
        "change".into(),
    ]];
    let group = c.a.values.len() > 1 || c.b.values.len() > 1;
    rows.push([
        format!("{:?}{}", c.metric, if group { " (median)" } else { "" }).to_lowercase(),
        val(c.metric, c.a.median),
        val(c.metric, c.b.median),
        pct(c.delta_pct),
    ]);
    if group {
        rows.push([
            "runs".into(),
            c.a.values.len().to_string(),
            c.b.values.len().to_string(),
            String::new(),
        ]);
        let sp = |s: &Side| {
            format!(
                "{} .. {}{}",
                val(c.metric, s.min),
                val(c.metric, s.max),
                s.spread_pct
                    .map(|p| format!(" ({p:.1}%)"))
                    .unwrap_or_default()
            )
        };
        rows.push(["spread".into(), sp(&c.a), sp(&c.b), String::new()]);
    }
    for d in &c.domains {
        let o = |v: Option<f64>| v.map(fmt_j).unwrap_or_else(|| "-".into());
        rows.push([
            format!("  {}", d.domain),
            o(d.a_j),
            o(d.b_j),
            d.delta_pct.map(|p| format!("{p:+.2}%")).unwrap_or_default(),
        ]);
    }
    let mut s = String::new();
    if markdown {
        s.push_str(&format!(
            "| | {} | {} | change |\n|---|---:|---:|---:|\n",
            c.a.label, c.b.label
        ));
        for r in &rows[1..] {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r[0].trim(),
                r[1],
                r[2],
                r[3]
            ));
        }
    } else {
        let body: Vec<Vec<String>> = rows[1..].iter().map(|r| r.to_vec()).collect();
        let h: Vec<&str> = rows[0].iter().map(String::as_str).collect();
        s.push_str(&crate::render::text_table(&h, &body));
    }
    for side in [&c.a, &c.b] {
        if !side.interrupted.is_empty() {
            s.push_str(&format!(
                "\nnote: {} has interrupted run(s) {}: their figures stop at their last \
                 checkpoint and understate the whole run\n",
                side.label,
                side.interrupted.join(", ")
            ));
        }
    }
    if let Some(ci) = c.delta_ci_pct {
        s.push_str(&format!(
            "\nchange of the median: {:+.2}% .. {:+.2}% ({}% confidence interval, bootstrap)\n",
            ci.low, ci.high, c.confidence_pct
        ));
    }
    if let Some(th) = c.fail_over_pct {
        let basis = match c.delta_ci_pct {
            Some(_) if c.failed => "; significant: all of the interval is above it".into(),
            Some(ci) if ci.high > th => format!(
                "; not significant: the interval reaches down to {:+.2}%",
                ci.low
            ),
            Some(_) => String::new(),
            None if c.a.values.len() > 1 || c.b.values.len() > 1 => {
                "; one run on a side: no interval, judged on the values".into()
            }
            None => String::new(),
        };
        s.push_str(&format!(
            "\n{}: B is {} A (threshold +{th}%{basis})\n",
            if c.failed { "FAIL" } else { "ok" },
            match c.delta_pct {
                Some(p) if p > 0.0 => format!("{p:.2}% worse than"),
                Some(p) if p < 0.0 => format!("{:.2}% better than", -p),
                Some(_) => "equal to".into(),
                None => "not comparable in percent to (A is 0) — compared by value against".into(),
            }
        ));
    }
    s
}

/// Parses `5`, `5%` or `5.5 %` as a percentage.
pub fn parse_pct(s: &str) -> Result<f64, PctError> {
    let t = s.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(PctError {
            text: s.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample;

    #[test]
    fn an_interrupted_run_is_named_beside_the_comparison() {
        let mut b = sample("b-cut", 600.0);
        b.status = RunStatus::Interrupted;
        let c = compare(
            "A",
            &[sample("a", 1000.0)],
            "B",
            &[b],
            CompareMetric::Energy,
            None,
            95.0,
        )
        .unwrap();
        assert_eq!(c.b.interrupted, vec!["b-cut"]);
        assert!(c.a.interrupted.is_empty());
        let text = render(&c, false);
        assert!(
            text.contains(
                "note: B has interrupted run(s) b-cut: their figures stop at their last checkpoint"
            ),
            "{text}"
        );
        assert!(!text.contains("note: A"));
    }

    #[test]
    fn b_worse_beyond_the_threshold_fails() {
        let a = [sample("a", 1000.0)];
        let b = [sample("b", 1060.0)];
        let c = compare("A", &a, "B", &b, CompareMetric::Energy, Some(5.0), 95.0).unwrap();
        assert!((c.delta_pct.unwrap() - 6.0).abs() < 1e-9);
        assert!(c.failed);
        let c = compare("A", &a, "B", &b, CompareMetric::Energy, Some(6.5), 95.0).unwrap();
        assert!(!c.failed);
        let c = compare("A", &b, "B", &a, CompareMetric::Energy, Some(0.0), 95.0).unwrap();
        assert!(!c.failed, "an improvement never fails");
        assert_eq!(c.domains.len(), 2);
        assert!(render(&c, false).contains("ok: B is 5.66% better than A"));
    }

    #[test]
    fn groups_compare_medians_and_report_spread() {
        let a: Vec<_> = [100.0, 110.0, 90.0, 1000.0]
            .iter()
            .map(|j| sample("a", *j))
            .collect();
        let b: Vec<_> = [120.0, 100.0, 110.0]
            .iter()
            .map(|j| sample("b", *j))
            .collect();
        let c = compare(
            "base",
            &a,
            "new",
            &b,
            CompareMetric::Energy,
            Some(1.0),
            95.0,
        )
        .unwrap();
        assert_eq!(c.a.median, 105.0);
        assert_eq!(c.b.median, 110.0);
        assert!((c.a.spread_pct.unwrap() - (1000.0 - 90.0) / 105.0 * 100.0).abs() < 1e-9);
        // +4.8 % by the medians, but three or four noisy runs a side cannot tell that from 0.
        let ci = c.delta_ci_pct.unwrap();
        assert!(ci.low < 0.0 && ci.high > 1.0, "{ci:?}");
        assert!(!c.failed, "not significant: the gate holds");
        assert!(render(&c, false).contains("not significant"));
        assert!(c.domains.is_empty());
        let t = render(&c, true);
        assert!(t.contains("| energy (median) |"), "{t}");
    }

    /// `runs` reports of a scripted sensor: `mean_j` with 2 % normal noise, seeded.
    fn noisy(seed: u64, mean_j: f64, runs: usize) -> Vec<RunReport> {
        // xorshift64 and Box-Muller: enough for scripted noise, no generator to share.
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut u = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..runs)
            .map(|i| {
                let z = (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
                sample(&format!("r{seed}-{i}"), mean_j * (1.0 + 0.02 * z))
            })
            .collect()
    }

    #[test]
    fn identical_groups_pass_the_gate_and_a_ten_percent_regression_fails_it() {
        // 20 pairs of 10 runs a side, all of the same 1000 J workload with 2 % noise: a
        // point gate at 5 % would be tripped by noise now and then; the interval never is.
        for pair in 0..20 {
            let a = noisy(2 * pair, 1000.0, 10);
            let b = noisy(2 * pair + 1, 1000.0, 10);
            let c = compare("A", &a, "B", &b, CompareMetric::Energy, Some(5.0), 95.0).unwrap();
            assert!(!c.failed, "pair {pair}: {}", render(&c, false));
        }
        let a = noisy(100, 1000.0, 10);
        let b = noisy(101, 1100.0, 10);
        let c = compare("A", &a, "B", &b, CompareMetric::Energy, Some(5.0), 95.0).unwrap();
        assert!(c.failed, "{}", render(&c, false));
        let ci = c.delta_ci_pct.unwrap();
        assert!(ci.low > 5.0 && ci.contains(10.0), "{ci:?}");
        assert!(render(&c, false).contains("FAIL: B is"));
        assert!(render(&c, false).contains("95% confidence interval"));
    }

    #[test]
    fn a_zero_baseline_never_prints_a_division() {
        let a = [sample("a", 0.0)];
        let b = [sample("b", 5.0)];
        let c = compare("A", &a, "B", &b, CompareMetric::Energy, Some(5.0), 95.0).unwrap();
        assert_eq!(c.delta_pct, None);
        assert!(c.failed);
        let t = render(&c, false);
        assert!(!t.contains("inf") && !t.contains("NaN"), "{t}");
    }

    #[test]
    fn per_work_metrics_need_declared_work() {
        let mut a = sample("a", 1000.0);
        let e = compare(
            "A",
            std::slice::from_ref(&a),
            "B",
            std::slice::from_ref(&a),
            CompareMetric::JPerToken,
            None,
            95.0,
        )
        .unwrap_err();
        assert!(
            matches!(&e, CompareError::NoWork { what: "tokens", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("no tokens declared"), "{e}");
        a.work.tokens = Some(500.0);
        let c = compare(
            "A",
            std::slice::from_ref(&a),
            "B",
            std::slice::from_ref(&a),
            CompareMetric::JPerToken,
            None,
            95.0,
        )
        .unwrap();
        assert_eq!(c.a.median, 2.0);
    }

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        assert_eq!(parse_pct("5%"), Ok(5.0));
        assert_eq!(parse_pct(" 2.5 % "), Ok(2.5));
        assert!(parse_pct("-1").is_err());
        assert!(parse_pct("five").is_err());
    }
}
