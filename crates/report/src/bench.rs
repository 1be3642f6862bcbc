//! Renderings of a bench (`wattprint.bench/v1`): the terminal text, Markdown, CSV and JSON.

use crate::render::{fmt_j, sig, text_table};
use wattprint_core::bench::{BenchReport, Estimate, GroupResult};
use wattprint_core::text::printable;

/// `mean ± half-width`, or the mean alone without an interval; a width below a millionth
/// of the mean (rounding in a constant quantity) is written 0.
fn pm(e: &Estimate, fmt: impl Fn(f64) -> String) -> String {
    match e.ci {
        Some(ci) => {
            let hw = ci.half_width();
            let hw = if hw.abs() < 1e-6 * e.mean.abs() {
                0.0
            } else {
                hw
            };
            format!("{} ± {}", fmt(e.mean), fmt(hw))
        }
        None => fmt(e.mean),
    }
}

fn s_fmt(x: f64) -> String {
    format!("{} s", sig(x))
}

fn w_fmt(x: f64) -> String {
    format!("{} W", sig(x))
}

/// The group's name: its number and its parameters, or its command.
pub fn group_name(g: &GroupResult) -> String {
    if g.parameters.is_empty() {
        format!("[{}] {}", g.group, g.command)
    } else {
        let p: Vec<String> = g
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("[{}] {}", g.group, p.join(" "))
    }
}

/// The terminal rendering: per group the mean ± half-width of the interval, the median and
/// the runs; outliers and failed runs; the ratios; the front and the recommendation.
pub fn text(r: &BenchReport) -> String {
    let mut s = String::new();
    let unit = r.unit.as_deref().unwrap_or("unit");
    for g in &r.groups {
        s.push_str(&format!("{}\n", printable(&group_name(g))));
        if !g.parameters.is_empty() {
            s.push_str(&format!("  command: {}\n", printable(&g.command)));
        }
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut row = |what: String, e: &Option<Estimate>, f: &dyn Fn(f64) -> String| {
            if let Some(e) = e {
                rows.push(vec![what, pm(e, f), f(e.median), e.n.to_string()]);
            }
        };
        row("energy (E2S)".into(), &g.energy_j, &fmt_j);
        row("time".into(), &g.time_s, &s_fmt);
        row("power".into(), &g.power_w, &w_fmt);
        row(format!("J/{unit}"), &g.j_per_unit, &|x| {
            format!("{} J", sig(x))
        });
        row(format!("s/{unit}"), &g.s_per_unit, &s_fmt);
        let h = [
            "",
            &format!("mean ± {}% CI", r.confidence_pct) as &str,
            "median",
            "runs",
        ];
        if rows.is_empty() {
            s.push_str("  no successful run\n");
        } else {
            for line in text_table(&h, &rows).lines() {
                s.push_str(&format!("  {line}\n"));
            }
        }
        if !g.outlier_run_ids.is_empty() {
            s.push_str(&format!(
                "  outliers (kept): {}: rerun on a quieter machine, or with more --runs\n",
                g.outlier_run_ids.join(", ")
            ));
        }
        if !g.failed.is_empty() {
            let codes: Vec<String> = g
                .failed
                .iter()
                .map(|f| match f.exit_code {
                    Some(c) => format!("{} (exit {c})", f.run_id),
                    None => format!("{} (did not start)", f.run_id),
                })
                .collect();
            s.push_str(&format!(
                "  FAILED {} of {} runs, not averaged in: {}\n",
                g.failed.len(),
                g.failed.len() + g.run_ids.len(),
                codes.join(", ")
            ));
        }
        s.push('\n');
    }
    let per = if r.unit.is_some() {
        format!(" per {unit}")
    } else {
        String::new()
    };
    for x in &r.ratios {
        let ci =
            x.ci.map(|c| {
                format!(
                    " ± {} ({}% CI {} .. {})",
                    sig2(c.half_width()),
                    r.confidence_pct,
                    sig2(c.low),
                    sig2(c.high)
                )
            })
            .unwrap_or_default();
        s.push_str(&format!(
            "[{}] uses {}{ci} x the energy{per} of [{}]\n",
            x.group,
            sig2(x.ratio),
            x.baseline
        ));
    }
    if r.groups.len() > 1 {
        s.push_str(&format!(
            "\nenergy / time front{per} (fastest first): {}\n",
            r.front
                .iter()
                .map(|k| format!("[{k}]"))
                .collect::<Vec<_>>()
                .join(" -> ")
        ));
        let limits = limits_text(r);
        match (r.recommended, &r.no_recommendation) {
            (Some(k), _) => {
                let g = &r.groups[k - 1];
                s.push_str(&format!(
                    "recommended{limits}: {} (lowest energy{per})\n",
                    printable(&group_name(g))
                ));
            }
            (None, Some(why)) => s.push_str(&format!("no recommendation{limits}: {why}\n")),
            (None, None) => {}
        }
    }
    s
}

/// Two decimals for ratios and their widths (`1.32 ± 0.05`); significant digits below
/// 0.01 and from 100 up.
fn sig2(x: f64) -> String {
    if x.abs() >= 0.01 && x.abs() < 100.0 {
        format!("{x:.2}")
    } else {
        sig(x)
    }
}

fn limits_text(r: &BenchReport) -> String {
    let mut l = Vec::new();
    if let Some(p) = r.limits.max_slowdown_pct {
        l.push(format!("at most {p}% slower than the fastest"));
    }
    if let Some(d) = r.limits.deadline_s {
        l.push(format!("within {} a run", s_fmt(d)));
    }
    if let Some(d) = r.limits.max_latency_s {
        l.push(format!("at most {} per unit", s_fmt(d)));
    }
    if l.is_empty() {
        String::new()
    } else {
        format!(" ({})", l.join(", "))
    }
}

fn cell(e: &Option<Estimate>, f: impl Fn(f64) -> String) -> String {
    e.as_ref().map(|e| pm(e, f)).unwrap_or_else(|| "-".into())
}

/// A Markdown table of the groups (for pull requests), then the ratios and recommendation.
pub fn markdown(r: &BenchReport) -> String {
    let unit = r.unit.as_deref().unwrap_or("unit");
    let mut s = format!(
        "| group | command | energy (J) | time (s) | power (W) | J/{unit} | runs | failed | front |\n\
         |---|---|---:|---:|---:|---:|---:|---:|:-:|\n"
    );
    for g in &r.groups {
        let md = |t: String| printable(&t).replace('|', "\\|");
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            md(group_name(g)),
            md(g.command.clone()).replace('`', "'"),
            cell(&g.energy_j, sig),
            cell(&g.time_s, sig),
            cell(&g.power_w, sig),
            cell(&g.j_per_unit, sig),
            g.run_ids.len(),
            g.failed.len(),
            if r.front.contains(&g.group) {
                "yes"
            } else {
                ""
            }
        ));
    }
    s.push_str(&format!(
        "\nIntervals: {}% bootstrap confidence intervals of the mean, as ±.\n",
        r.confidence_pct
    ));
    let tail = text_tail(r);
    if !tail.is_empty() {
        s.push('\n');
        s.push_str(&tail);
    }
    s
}

/// The ratio and recommendation lines of [`text`].
fn text_tail(r: &BenchReport) -> String {
    text(r)
        .lines()
        .filter(|l| {
            l.starts_with('[') && l.contains(" uses ")
                || l.starts_with("recommended")
                || l.starts_with("no recommendation")
                || l.starts_with("energy / time front")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// One CSV row per group: means, medians and interval bounds of each quantity.
pub fn csv(r: &BenchReport) -> String {
    let mut s = String::from("group,command,parameters,runs,failed");
    for q in ["energy_j", "time_s", "power_w", "j_per_unit", "s_per_unit"] {
        s.push_str(&format!(",{q}_mean,{q}_median,{q}_ci_low,{q}_ci_high"));
    }
    s.push_str(",on_front,recommended\n");
    let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
    for g in &r.groups {
        let params: Vec<String> = g
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(
            "{},{},{},{},{}",
            g.group,
            quote(&g.command),
            quote(&params.join(" ")),
            g.run_ids.len(),
            g.failed.len()
        ));
        for e in [
            &g.energy_j,
            &g.time_s,
            &g.power_w,
            &g.j_per_unit,
            &g.s_per_unit,
        ] {
            match e {
                Some(e) => {
                    let (lo, hi) =
                        e.ci.map(|c| (c.low.to_string(), c.high.to_string()))
                            .unwrap_or_default();
                    s.push_str(&format!(",{},{},{lo},{hi}", e.mean, e.median));
                }
                None => s.push_str(",,,,"),
            }
        }
        s.push_str(&format!(
            ",{},{}\n",
            r.front.contains(&g.group),
            r.recommended == Some(g.group)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::bench::{summarize, GroupRuns, Limits, RunFigures};

    fn bench() -> BenchReport {
        let group = |batch: &str, j: f64, t: f64| GroupRuns {
            command: format!("python digits.py --batch {batch}"),
            parameters: [("batch".to_string(), batch.to_string())].into(),
            runs: (0..4)
                .map(|k| RunFigures {
                    run_id: format!("r{batch}{k}"),
                    exit_code: Some(if batch == "8" && k == 0 { 2 } else { 0 }),
                    energy_j: j + k as f64,
                    time_s: t + 0.01 * k as f64,
                    units: Some(100.0),
                })
                .collect(),
        };
        summarize(
            "b-1",
            &[group("1", 132.0, 1.0), group("8", 100.0, 2.0)],
            4,
            1,
            95.0,
            Some("inference"),
            Limits::default(),
        )
    }

    #[test]
    fn the_text_has_intervals_ratios_failures_and_a_recommendation() {
        let t = text(&bench());
        assert!(t.contains("[1] batch=1"), "{t}");
        assert!(t.contains("mean ± 95% CI"), "{t}");
        assert!(
            t.contains("FAILED 1 of 4 runs, not averaged in: r80 (exit 2)"),
            "{t}"
        );
        assert!(t.contains("[1] uses 1.3"), "{t}");
        assert!(t.contains("x the energy per inference of [2]"), "{t}");
        assert!(t.contains("recommended: [2] batch=8"), "{t}");
        assert!(
            t.contains("front per inference (fastest first): [1] -> [2]"),
            "{t}"
        );
    }

    #[test]
    fn the_html_export_draws_the_front_and_rings_the_recommendation() {
        let b = bench();
        let h = crate::html::bench_html(&b);
        assert!(h.contains(r#"data-chart="front""#), "{h}");
        assert_eq!(h.matches("<circle data-group=").count(), 2);
        assert!(h.contains(r#"data-recommended="2""#), "{h}");
        assert!(h.contains("energy per inference (J)"), "{h}");
        // Both groups are on the front ([1] faster, [2] frugal): one dashed line joins them.
        assert!(h.contains(r#"data-front="true""#), "{h}");
        assert!(!h.contains("<script"), "self-contained, no script");
    }

    #[test]
    fn markdown_and_csv_have_a_row_per_group() {
        let b = bench();
        let m = markdown(&b);
        assert_eq!(m.lines().filter(|l| l.starts_with("| [")).count(), 2, "{m}");
        assert!(m.contains("recommended: [2]"), "{m}");
        let c = csv(&b);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 3);
        let fields = lines[0].split(',').count();
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.matches(',').count() + 1 == fields),
            "{c}"
        );
        assert!(lines[2].ends_with(",true,true"), "{c}");
    }
}
