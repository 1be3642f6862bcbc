//! One self-contained HTML file with inline SVG charts (power over time per domain, energy
//! breakdown, carbon), the numbers, methodology and data provenance. No script, no external
//! resource: it opens from disk in any browser and can be attached to a ticket.

use crate::render::{fmt_g, fmt_j, fmt_opt, sig};
use wattprint_core::report::RunReport;

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A "nice" axis maximum (1, 2, 2.5 or 5 x 10^k) at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

const W: f64 = 720.0;
const H: f64 = 300.0;
const L: f64 = 64.0;
const R: f64 = 16.0;
const T: f64 = 16.0;
const B: f64 = 40.0;

/// Power over time per domain: one polyline per series.
pub fn power_chart(r: &RunReport) -> Option<String> {
    let tl = r.timeline.as_ref()?;
    if tl.t_s.len() < 2 || tl.series.is_empty() {
        return None;
    }
    let t_max = nice_max(tl.t_s.iter().cloned().fold(0.0, f64::max));
    let w_max = nice_max(
        tl.series
            .iter()
            .flat_map(|s| s.watts.iter().copied())
            .filter(|w| w.is_finite())
            .fold(0.0, f64::max),
    );
    let x = |t: f64| L + (W - L - R) * (t / t_max);
    let y = |w: f64| T + (H - T - B) * (1.0 - w / w_max);
    let mut s = format!(
        r#"<svg class="chart" data-chart="power" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="Power over time per domain">"#
    );
    s.push_str(&axes(t_max, w_max, "time (s)", "power (W)"));
    for (k, ser) in tl.series.iter().enumerate() {
        let pts: Vec<String> = tl
            .t_s
            .iter()
            .zip(&ser.watts)
            .filter(|(t, w)| t.is_finite() && w.is_finite())
            .map(|(t, w)| format!("{:.1},{:.1}", x(*t), y(w.max(0.0))))
            .collect();
        s.push_str(&format!(
            r#"<polyline data-domain="{}" fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            esc(&ser.domain),
            COLORS[k % COLORS.len()],
            pts.join(" ")
        ));
        s.push_str(&format!(
            r#"<text x="{}" y="{}" font-size="11" fill="{}">{}</text>"#,
            W - R - 150.0,
            T + 12.0 + 14.0 * k as f64,
            COLORS[k % COLORS.len()],
            esc(&ser.domain)
        ));
    }
    s.push_str("</svg>");
    Some(s)
}

fn axes(x_max: f64, y_max: f64, x_label: &str, y_label: &str) -> String {
    let mut s = format!(
        r##"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="#444"/><line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="#444"/>"##,
        H - B,
        W - R,
        H - B,
        H - B
    );
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let xx = L + (W - L - R) * f;
        let yy = T + (H - T - B) * (1.0 - f);
        s.push_str(&format!(
            r##"<text x="{xx:.1}" y="{}" font-size="10" text-anchor="middle">{}</text><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{}</text><line x1="{L}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/>"##,
            H - B + 14.0,
            sig(x_max * f),
            L - 4.0,
            yy + 3.0,
            sig(y_max * f),
            W - R
        ));
    }
    s.push_str(&format!(
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text><text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        (L + W - R) / 2.0,
        H - 6.0,
        esc(x_label),
        (T + H - B) / 2.0,
        (T + H - B) / 2.0,
        esc(y_label)
    ));
    s
}

/// Horizontal bars: `(label, value, solid)`; hollow bars are shown but not counted.
fn bar_chart(
    kind: &str,
    aria: &str,
    bars: &[(String, f64, bool)],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let row_h = 26.0;
    let h = T + row_h * bars.len() as f64 + 8.0;
    let max = nice_max(bars.iter().map(|b| b.1).fold(0.0, f64::max));
    let left = 170.0;
    let width = W - left - 120.0;
    let mut s = format!(
        r#"<svg class="chart" data-chart="{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" role="img" aria-label="{}">"#,
        esc(aria)
    );
    for (i, (label, v, solid)) in bars.iter().enumerate() {
        let yy = T + row_h * i as f64;
        let bw = if v.is_finite() && *v > 0.0 {
            width * v / max
        } else {
            0.0
        };
        let c = COLORS[i % COLORS.len()];
        s.push_str(&format!(
            r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect data-value="{v}" x="{left}" y="{yy:.1}" width="{bw:.1}" height="18" fill="{}" stroke="{c}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            left - 6.0,
            yy + 13.0,
            esc(label),
            if *solid { c } else { "none" },
            left + bw + 6.0,
            yy + 13.0,
            esc(&fmt(*v))
        ));
    }
    s.push_str("</svg>");
    s
}

/// Energy per domain.
pub fn energy_chart(r: &RunReport) -> String {
    let bars: Vec<_> = r
        .energy
        .domains
        .iter()
        .map(|d| {
            (
                format!("{} ({})", d.name, d.method),
                d.joules,
                d.counted_in_total,
            )
        })
        .collect();
    bar_chart("energy", "Energy per domain", &bars, &|v| fmt_j(v))
}

/// Carbon: operational (location), market-based when known, embodied.
pub fn carbon_chart(r: &RunReport) -> Option<String> {
    if r.carbon.zone.is_empty() {
        return None;
    }
    let mut bars = vec![(
        format!("operational ({})", r.carbon.method),
        r.carbon.operational_g,
        true,
    )];
    if let Some(m) = r.carbon.market_operational_g {
        bars.push(("operational (market)".into(), m, true));
    }
    bars.push(("embodied".into(), r.carbon.embodied_g, true));
    Some(bar_chart("carbon", "Carbon", &bars, &|v| fmt_g(v)))
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}td.n{text-align:right}svg.chart{width:100%;height:auto;background:#fafafa;border:1px solid #eee;margin:.5em 0}.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4em .8em}code{background:#f3f3f3;padding:0 3px}";

/// The whole HTML document for one or more runs.
pub fn html(runs: &[RunReport]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wattprint report</title><style>{STYLE}</style></head><body>\n<h1>wattprint report</h1>\n"
    );
    if runs.len() > 1 {
        s.push_str("<h2>All runs</h2>\n");
        let bars: Vec<_> = runs
            .iter()
            .map(|r| (r.id.clone(), r.energy.total_j, true))
            .collect();
        s.push_str(&bar_chart("runs-energy", "Energy per run", &bars, &|v| {
            fmt_j(v)
        }));
        let with_c: Vec<_> = runs
            .iter()
            .filter(|r| !r.carbon.zone.is_empty())
            .map(|r| (r.id.clone(), r.carbon.total_g, true))
            .collect();
        if !with_c.is_empty() {
            s.push_str(&bar_chart("runs-carbon", "Carbon per run", &with_c, &|v| {
                fmt_g(v)
            }));
        }
    }
    for r in runs {
        s.push_str(&format!(
            "<section><h2>Run <code>{}</code></h2>\n",
            esc(&r.id)
        ));
        s.push_str("<table>");
        let rows = [
            ("command", r.command.join(" ")),
            ("started", r.started_at.clone()),
            (
                "duration",
                format!("{:.2} s{}", r.duration_s, crate::render::status_note(r)),
            ),
            (
                "exit code",
                r.exit_code.map_or("n/a".into(), |c| c.to_string()),
            ),
            ("host", r.host.hostname.clone()),
            ("CPU", r.host.cpu_model.clone().unwrap_or_default()),
            ("GPUs", r.host.gpu_models.join(", ")),
            (
                "GPUs not the job's",
                r.host
                    .other_gpus
                    .iter()
                    .map(|g| format!("{} ({}): {}", g.domain, g.name, g.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ("git commit", r.host.git_commit.clone().unwrap_or_default()),
            (
                "Energy-to-Solution",
                format!(
                    "{}{}",
                    fmt_j(r.energy.total_j),
                    range(r.energy.total_j_low, r.energy.total_j_high, fmt_j)
                ),
            ),
            (
                "facility energy",
                format!(
                    "{} (PUE {}){}",
                    fmt_j(r.energy.facility_j),
                    sig(r.energy.pue),
                    range(r.energy.facility_j_low, r.energy.facility_j_high, fmt_j)
                ),
            ),
            (
                "carbon",
                if r.carbon.zone.is_empty() {
                    "not computed (no zone)".into()
                } else {
                    format!(
                        "{}{}",
                        fmt_g(r.carbon.total_g),
                        range(r.carbon.total_g_low, r.carbon.total_g_high, fmt_g)
                    )
                },
            ),
            ("FLOPs/W", fmt_opt(r.metrics.flops_per_watt, "FLOP/J")),
            ("J per token", fmt_opt(r.metrics.joules_per_token, "J")),
            (
                "carbon per inference",
                fmt_opt(r.metrics.carbon_per_inference_g, "g"),
            ),
        ];
        for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) {
            s.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", esc(v)));
        }
        s.push_str("</table>\n");
        s.push_str("<h3>Power over time</h3>\n");
        match power_chart(r) {
            Some(c) => s.push_str(&c),
            None => s.push_str("<p>No timeline was recorded for this run.</p>"),
        }
        s.push_str("\n<h3>Energy by domain</h3>\n");
        s.push_str(&energy_chart(r));
        s.push_str("\n<p>Hollow bars are read but not counted in the total (they sit inside another domain, or were rejected: see the warnings).</p>\n");
        if let Some(c) = carbon_chart(r) {
            s.push_str("<h3>Carbon</h3>\n");
            s.push_str(&c);
        }
        s.push_str("\n<h3>Provenance</h3>\n<table><tr><th>domain</th><th>kind</th><th>energy</th><th>range</th><th>source</th><th>method</th><th>in total</th></tr>");
        for d in &r.energy.domains {
            let basis = d
                .range_basis
                .as_deref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default();
            s.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.name),
                d.kind,
                fmt_j(d.joules),
                esc(&format!(
                    "{}{basis}",
                    range(d.joules_low, d.joules_high, fmt_j).trim()
                )),
                esc(d.source.as_str()),
                d.method,
                if d.counted_in_total { "yes" } else { "no" }
            ));
        }
        s.push_str("</table>\n");
        if !r.carbon.zone.is_empty() {
            s.push_str(&format!(
                "<p>Carbon intensity {} gCO2e/kWh for <code>{}</code>: {}{}, {} basis, {}-based{}.</p>\n",
                sig(r.carbon.intensity_g_per_kwh),
                esc(&r.carbon.zone),
                esc(&r.carbon.intensity_source),
                r.carbon.intensity_year.map(|y| format!(" ({y})")).unwrap_or_default(),
                esc(r.carbon.basis.as_str()),
                esc(r.carbon.method.as_str()),
                if r.carbon.fallback { ", <strong>fallback factor</strong>" } else { "" }
            ));
        }
        for w in &r.warnings {
            s.push_str(&format!("<p class=\"warn\">{}</p>\n", esc(w)));
        }
        s.push_str("</section>\n");
    }
    s.push_str("<h2>Methodology</h2>\n<ul>\
<li>Energy-to-Solution is the sum of the domains counted in the total over the run; each joule is counted once (cores and uncore sit inside the package, the package inside psys).</li>\
<li>Hardware energy counters are differenced at the run's boundaries (wraparound handled); power-only sensors are integrated with the trapezoid rule; <em>model</em> domains are estimates from utilisation and say so.</li>\
<li>Facility energy = energy x PUE. Carbon = facility energy x grid intensity (+ embodied share), with the factor's source, vintage and basis shown; location- and market-based figures are kept apart.</li>\
<li>The power chart shows average power per interval of the run's bounded timeline.</li>\
</ul>\n<p>Generated by wattprint.</p>\n</body></html>\n");
    s
}

/// ` (low-high unit)` when both bounds are known and differ; empty otherwise.
fn range(low: Option<f64>, high: Option<f64>, fmt: fn(f64) -> String) -> String {
    match (low, high) {
        (Some(lo), Some(hi)) if lo < hi => {
            format!(" ({})", wattprint_core::bounds::range_text(lo, hi, fmt))
        }
        _ => String::new(),
    }
}

/// Printing (`--print-to-pdf`, a browser's print): charts and table rows are never cut
/// across pages, headings stay with what follows, the lines table repeats its header.
const PRINT_STYLE: &str = "@media print{body{max-width:none;margin:0}svg.chart,tr{break-inside:avoid}h2{break-after:avoid}thead{display:table-header-group}}";

/// The portfolio statement as one self-contained HTML page: the headline figures first
/// (location- and market-based tCO2e, measured MWh, shares per tier), then bar charts by
/// month, provider and tier (location-based, with units), then the tables and every line with
/// its tier and provenance.
pub fn portfolio_html(p: &crate::portfolio::PortfolioReport) -> String {
    use crate::render::sig;
    let t = |g: f64| format!("{} tCO2e", sig(g / 1e6));
    let mut o = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Portfolio carbon statement {}</title><style>{STYLE}{PRINT_STYLE}</style></head><body>\n<h1>Portfolio carbon statement — {}</h1>\n",
        esc(&p.period),
        esc(&p.period)
    );
    o.push_str("<table data-table=\"headline\"><tr><th>figure</th><th>value</th></tr>");
    let mut row = |k: &str, v: String| {
        o.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(k),
            esc(&v)
        ))
    };
    row("Location-based", t(p.location_g));
    if p.location_high_g > p.location_low_g {
        row(
            "Location-based range (estimates)",
            format!("{} .. {}", t(p.location_low_g), t(p.location_high_g)),
        );
    }
    row("Market-based", t(p.market_g));
    if let Some(line) = crate::portfolio::change_line(p) {
        if let Some((period, change)) = line.split_once(" | ") {
            row(&format!("Change against {period}"), change.to_string());
        }
    }
    row("Energy (facility)", crate::portfolio::energy_text(p));
    for s in &p.shares {
        row(
            &format!("Share {}", s.label),
            format!("{:.1} % of location-based", s.location_share * 100.0),
        );
    }
    o.push_str("</table>\n<h2>Largest contributors (location-based)</h2>\n<table data-table=\"largest\"><tr><th>provider, account, project, service</th><th>location-based</th><th>market-based</th></tr>");
    for g in &p.largest {
        o.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&g.name),
            esc(&t(g.location_g)),
            esc(&t(g.market_g))
        ));
    }
    o.push_str("</table>\n");
    let chart = |kind: &str, title: &str, gs: &[crate::portfolio::GroupTotal]| {
        let bars: Vec<(String, f64, bool)> = gs
            .iter()
            .map(|g| (g.name.clone(), g.location_g / 1e6, true))
            .collect();
        format!(
            "<h2>Location-based tCO2e by {}</h2>\n{}\n",
            esc(title),
            bar_chart(
                kind,
                &format!("Location-based tCO2e by {title}"),
                &bars,
                &|v| fmt_g(v * 1e6),
            )
        )
    };
    o.push_str("<h2>Location-based tCO2e by month and data-quality tier</h2>\n");
    o.push_str(&month_tier_chart(p));
    o.push_str(&chart("month", "month", &p.by_month));
    o.push_str(&chart("provider", "provider", &p.by_provider));
    o.push_str(&chart("tier", "data-quality tier", &p.by_tier));
    for l in &p.by_label {
        o.push_str(&chart(
            &format!("label-{}", l.key),
            &format!("label {}", l.key),
            &l.groups,
        ));
    }
    if !p.breaks.is_empty() {
        o.push_str("<h2>Series breaks</h2><div class=\"warn\"><ul>");
        for b in &p.breaks {
            o.push_str(&format!(
                "<li>{} account {}: model {} from {} (was {}): not comparable across</li>",
                b.provider,
                esc(&b.account),
                esc(&b.to_version),
                b.month,
                esc(&b.from_version)
            ));
        }
        o.push_str("</ul></div>\n");
    }
    if !p.overhead.is_empty() {
        o.push_str("<h2>Operational Overhead Score by tier</h2>\n<table data-table=\"overhead\"><tr><th>tier</th><th>way</th><th>latency until the number exists</th><th>set-up steps</th><th>compute overhead</th><th>score</th></tr>");
        for s in &p.overhead {
            o.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(s.route.tier().label()),
                esc(s.route.id()),
                esc(&s.latency),
                s.setup_steps.len(),
                esc(&crate::portfolio::compute_text(&s.compute)),
                s.score.as_str()
            ));
        }
        o.push_str("</table>\n");
    }
    o.push_str(&portfolio_methodology(p));
    o.push_str("<h2>Lines</h2>\n<table data-table=\"lines\"><tr><th>tier</th><th>what</th><th>provider</th><th>account</th><th>project</th><th>service</th><th>region</th><th>month</th><th>scope</th><th>basis</th><th>kgCO2e</th><th>counted</th><th>source</th></tr>");
    for l in &p.lines {
        let r = &l.record;
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(l.tier_label),
            esc(&line_what(l)),
            r.provider,
            esc(&r.account),
            esc(r.project.as_deref().unwrap_or("")),
            esc(&r.service),
            esc(&r.region),
            r.month,
            r.scope.as_str(),
            r.basis.as_str(),
            sig(r.grams / 1e3),
            match &l.detail_of {
                None => "yes".to_string(),
                Some(d) => format!("no: detail of {}", esc(d)),
            },
            esc(&if r.source.line > 0 {
                format!("{} line {}", r.source.file, r.source.line)
            } else {
                r.source.file.clone()
            })
        ));
    }
    o.push_str("</table>\n<h2>Notes</h2><ul>");
    for n in &p.notes {
        o.push_str(&format!("<li>{}</li>", esc(n)));
    }
    o.push_str("</ul>\n</body></html>\n");
    o
}

/// What a line is, in words people recognise: for measured lines the runs' models, teams
/// and commands (from the record's note, [`crate::portfolio::run_name`]), else the
/// provider's service.
fn line_what(l: &crate::portfolio::PortfolioLine) -> String {
    let r = &l.record;
    match (r.tier, r.note.as_deref()) {
        (wattprint_core::portfolio::Tier::Measured, Some(n)) => n.to_string(),
        _ => r.service.clone(),
    }
}

/// Location-based tCO2e per month, stacked by tier (counted lines only): vertical bars with
/// both axes labelled and a legend.
fn month_tier_chart(p: &crate::portfolio::PortfolioReport) -> String {
    use std::collections::BTreeMap;
    use wattprint_core::portfolio::{Month, Tier};
    use wattprint_core::report::CarbonMethod;
    let mut by: BTreeMap<Month, [f64; 3]> = BTreeMap::new();
    for l in p.lines.iter().filter(|l| l.counted) {
        let r = &l.record;
        if !r.basis.counts_in(CarbonMethod::Location) {
            continue;
        }
        let i = Tier::ALL.iter().position(|t| *t == r.tier).unwrap_or(0);
        by.entry(r.month).or_default()[i] += r.grams / 1e6;
    }
    let n = by.len().max(1) as f64;
    let y_max = nice_max(
        by.values()
            .map(|v| v.iter().sum::<f64>())
            .fold(0.0, f64::max),
    );
    let plot_w = W - L - R;
    let slot = plot_w / n;
    let bw = (slot * 0.7).min(48.0);
    let y = |v: f64| T + (H - T - B) * (1.0 - v / y_max);
    let mut s = format!(
        r##"<svg class="chart" data-chart="month-tier" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {}" role="img" aria-label="Location-based tCO2e by month, stacked by data-quality tier">"##,
        H + 22.0
    );
    s.push_str(&format!(
        r##"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="#444"/><line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="#444"/>"##,
        H - B,
        W - R,
        H - B,
        H - B
    ));
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        s.push_str(&format!(
            r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end">{}</text><line x1="{L}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/>"##,
            L - 4.0,
            y(v) + 3.0,
            sig(v),
            y(v),
            W - R,
            y(v)
        ));
    }
    for (k, (month, parts)) in by.iter().enumerate() {
        let x = L + slot * k as f64 + (slot - bw) / 2.0;
        let mut base = 0.0;
        for (i, v) in parts.iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            s.push_str(&format!(
                r##"<rect data-month="{month}" data-tier="{}" data-value="{v}" x="{x:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}"/>"##,
                Tier::ALL[i].as_str(),
                y(base + v),
                y(base) - y(base + v),
                COLORS[i]
            ));
            base += v;
        }
        s.push_str(&format!(
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{month}</text>"##,
            x + bw / 2.0,
            H - B + 14.0
        ));
    }
    s.push_str(&format!(
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">month</text><text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">location-based tCO2e</text>"#,
        (L + W - R) / 2.0,
        H - 8.0,
        (T + H - B) / 2.0,
        (T + H - B) / 2.0
    ));
    for (i, t) in Tier::ALL.iter().enumerate() {
        let x = L + 200.0 * i as f64;
        s.push_str(&format!(
            r##"<rect x="{x:.1}" y="{}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{}" font-size="11">{}</text>"##,
            H + 6.0,
            COLORS[i],
            x + 16.0,
            H + 16.0,
            esc(t.label())
        ));
    }
    s.push_str("</svg>");
    s
}

/// The methodology of the portfolio: the tiers, the rule against counting twice, the factors
/// of the estimates with their provenance and licences, the series breaks.
fn portfolio_methodology(p: &crate::portfolio::PortfolioReport) -> String {
    use wattprint_core::portfolio::{Scope, Tier};
    let mut o = String::from("<h2>Methodology</h2>\n<section data-section=\"methodology\">\n<h3>Data-quality tiers</h3>\n<table data-table=\"tiers\"><tr><th>tier</th><th>what it is</th><th>energy</th></tr>");
    for t in Tier::ALL {
        let (what, energy) = match t {
            Tier::Measured => ("Measured by wattprint (`run`, an imported trace, Python, the agent): the machine's energy counters times the zone's grid factor, per run, summed by month", "yes, measured"),
            Tier::ProviderReported => ("The cloud provider's own carbon accounting from its export (GCP Carbon Footprint, AWS CARBON_EMISSIONS, Azure Carbon Optimization): monthly, per account, project, service and region, in the provider's method and model version", "none: carbon only; never shown as energy"),
            Tier::Estimate => ("A usage-based estimate from a FOCUS billing export by the Cloud Carbon Footprint method: usage x power coefficients x the provider's PUE x the region's grid factor, with a range from idle to full load", "yes, estimated"),
        };
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(t.label()),
            esc(what),
            esc(energy)
        ));
    }
    o.push_str("</table>\n<h3>Nothing counted twice</h3>\n<p>A measured run inside a cloud provider's project (or account) and month, in the same region, is detail of the provider's figure (or of the estimate for it): it is listed with <code>counted: no</code> and never added, because the provider's figure already contains it. Its energy still counts in the energy figure, which the provider's figure does not carry. An estimate of an account and month that the provider itself reports is superseded by the provider's figure and listed, not added. Location-based totals count location-based figures plus those without a Scope 2 method (Scope 1, Scope 3, provider figures that state no method); market-based likewise.</p>\n");
    let mut factors: Vec<String> = p
        .lines
        .iter()
        .filter(|l| l.record.tier == Tier::Estimate && l.record.scope == Scope::Scope2)
        .filter_map(|l| l.record.note.as_deref())
        .filter_map(|n| n.find("vCPU utilisation").map(|i| n[i..].to_string()))
        .collect();
    factors.sort();
    factors.dedup();
    o.push_str("<h3>Factors of the estimates and their provenance</h3>\n");
    if !p.lines.iter().any(|l| l.record.tier == Tier::Estimate) {
        o.push_str("<p>No estimate in this period.</p>\n");
    } else {
        o.push_str("<p>Power coefficients: Cloud Carbon Footprint coefficients (2023), min/max W per vCPU per micro-architecture, memory 0.392 W/GB, storage and network per the CCF methodology; embodied carbon per instance type from CCF; licence Apache-2.0 (Cloud Carbon Footprint). Region to grid: CCF's region table (Apache-2.0), the values from the grid datasets named below with their year and basis (licences: <code>wattprint intensity ZONE</code> prints each).</p>\n");
        if !factors.is_empty() {
            o.push_str("<ul data-list=\"factors\">");
            for f in &factors {
                o.push_str(&format!("<li>{}</li>", esc(f)));
            }
            o.push_str("</ul>\n");
        } else {
            o.push_str("<p>The estimates of this period name no factor of their own (see their source files).</p>\n");
        }
    }
    o.push_str("<h3>Model versions and series breaks</h3>\n");
    let mut versions: Vec<String> = p
        .lines
        .iter()
        .filter(|l| l.record.tier == Tier::ProviderReported && !l.record.model_version.is_empty())
        .map(|l| format!("{} {}", l.record.provider, l.record.model_version))
        .collect();
    versions.sort();
    versions.dedup();
    if versions.is_empty() {
        o.push_str("<p>No provider-reported figure in this period.</p>\n");
    } else {
        o.push_str(&format!(
            "<p>Providers' carbon model versions in this period: {}. ",
            esc(&versions.join(", "))
        ));
        if p.breaks.is_empty() {
            o.push_str("No version changed within an account: the months are comparable.</p>\n");
        } else {
            o.push_str(&format!(
                "{} series break(s), listed above: months on either side of a break were computed by different models and are not comparable.</p>\n",
                p.breaks.len()
            ));
        }
    }
    o.push_str("</section>\n");
    o
}

/// The energy / time plane of a bench: one point per group at its mean time and energy (per
/// declared unit when the bench has one), whiskers over both intervals, the Pareto front as a
/// line, the recommended group ringed. `None` when no group has figures.
pub fn bench_front_chart(b: &wattprint_core::bench::BenchReport) -> Option<String> {
    use wattprint_core::bench::Estimate;
    let per_unit = b.unit.is_some();
    let pick = |g: &wattprint_core::bench::GroupResult| -> Option<(Estimate, Estimate)> {
        if per_unit {
            Some((g.s_per_unit?, g.j_per_unit?))
        } else {
            Some((g.time_s?, g.energy_j?))
        }
    };
    let pts: Vec<(usize, Estimate, Estimate)> = b
        .groups
        .iter()
        .filter_map(|g| pick(g).map(|(t, e)| (g.group, t, e)))
        .filter(|(_, t, e)| t.mean.is_finite() && e.mean.is_finite())
        .collect();
    if pts.is_empty() {
        return None;
    }
    let hi = |e: &Estimate| e.ci.map_or(e.mean, |c| c.high.max(e.mean));
    let x_max = nice_max(pts.iter().map(|(_, t, _)| hi(t)).fold(0.0, f64::max));
    let y_max = nice_max(pts.iter().map(|(_, _, e)| hi(e)).fold(0.0, f64::max));
    let x = |v: f64| L + (W - L - R) * (v.max(0.0) / x_max);
    let y = |v: f64| T + (H - T - B) * (1.0 - v.max(0.0) / y_max);
    let unit = b.unit.as_deref().unwrap_or("");
    let (xl, yl) = if per_unit {
        (
            format!("time per {unit} (s)"),
            format!("energy per {unit} (J)"),
        )
    } else {
        (
            "time per run (s)".to_string(),
            "energy per run (J)".to_string(),
        )
    };
    let mut s = format!(
        r#"<svg class="chart" data-chart="front" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="Energy against time per configuration, with the Pareto front">"#
    );
    s.push_str(&axes(x_max, y_max, &xl, &yl));
    let front: Vec<String> = b
        .front
        .iter()
        .filter_map(|k| pts.iter().find(|(g, _, _)| g == k))
        .map(|(_, t, e)| format!("{:.1},{:.1}", x(t.mean), y(e.mean)))
        .collect();
    if front.len() > 1 {
        s.push_str(&format!(
            r##"<polyline data-front="true" fill="none" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="4 3" points="{}"/>"##,
            front.join(" ")
        ));
    }
    for (g, t, e) in &pts {
        let (cx, cy) = (x(t.mean), y(e.mean));
        if let Some(c) = t.ci {
            s.push_str(&format!(
                r##"<line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="#888"/>"##,
                x(c.low),
                x(c.high)
            ));
        }
        if let Some(c) = e.ci {
            s.push_str(&format!(
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#888"/>"##,
                y(c.low),
                y(c.high)
            ));
        }
        let on_front = b.front.contains(g);
        s.push_str(&format!(
            r#"<circle data-group="{g}" cx="{cx:.1}" cy="{cy:.1}" r="4" fill="{}"/>"#,
            if on_front { "#2ca02c" } else { "#1f77b4" }
        ));
        if b.recommended == Some(*g) {
            s.push_str(&format!(
                r##"<circle data-recommended="{g}" cx="{cx:.1}" cy="{cy:.1}" r="8" fill="none" stroke="#d62728" stroke-width="2"/>"##
            ));
        }
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="11">[{g}]</text>"#,
            cx + 7.0,
            cy - 6.0
        ));
    }
    s.push_str("</svg>");
    Some(s)
}

/// A bench as one self-contained HTML file: the front chart, then one table row per group.
pub fn bench_html(b: &wattprint_core::bench::BenchReport) -> String {
    use wattprint_core::bench::Estimate;
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>wattprint bench {}</title><style>{STYLE}</style></head><body>\n<h1>wattprint bench <code>{}</code></h1>\n",
        esc(&b.bench_id),
        esc(&b.bench_id)
    );
    if let Some(chart) = bench_front_chart(b) {
        s.push_str("<h2>Energy and time</h2>\n");
        s.push_str(&chart);
        s.push_str(&format!(
            "<p>Points: means; whiskers: {}% bootstrap intervals; dashed green: the Pareto front; red ring: the recommendation.</p>\n",
            b.confidence_pct
        ));
    }
    let cell = |e: &Option<Estimate>| match e {
        Some(e) => match e.ci {
            Some(c) => format!("{} ± {}", sig(e.mean), sig(c.half_width())),
            None => sig(e.mean),
        },
        None => "-".into(),
    };
    let unit = b.unit.as_deref().unwrap_or("unit");
    s.push_str(&format!(
        "<table><tr><th>group</th><th>command</th><th>energy (J)</th><th>time (s)</th><th>power (W)</th><th>J/{}</th><th>runs</th><th>failed</th></tr>\n",
        esc(unit)
    ));
    for g in &b.groups {
        s.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&crate::bench::group_name(g)),
            esc(&g.command),
            cell(&g.energy_j),
            cell(&g.time_s),
            cell(&g.power_w),
            cell(&g.j_per_unit),
            g.run_ids.len(),
            g.failed.len()
        ));
    }
    s.push_str("</table>\n<pre>");
    s.push_str(&esc(&crate::bench::text(b)));
    s.push_str("</pre>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample;

    /// The `<svg ...>...</svg>` blocks of a document.
    fn svgs(doc: &str) -> Vec<&str> {
        let mut out = vec![];
        let mut rest = doc;
        while let Some(a) = rest.find("<svg") {
            let b = rest[a..].find("</svg>").unwrap() + a + 6;
            out.push(&rest[a..b]);
            rest = &rest[b..];
        }
        out
    }

    #[test]
    fn totals_and_domains_show_their_ranges_with_the_basis() {
        let mut r = sample("run-1", 2000.0);
        r.energy.total_j_low = Some(1800.0);
        r.energy.total_j_high = Some(2200.0);
        r.energy.domains[0].joules_low = Some(1400.0);
        r.energy.domains[0].joules_high = Some(1600.0);
        r.energy.domains[0].range_basis = Some("NVML +/- 5 W or 5 % (NVIDIA)".into());
        let doc = html(&[r]);
        assert!(
            doc.contains(&format!(
                "({}-{})",
                fmt_j(1800.0).rsplit_once(' ').unwrap().0,
                fmt_j(2200.0)
            )),
            "{doc}"
        );
        assert!(doc.contains("NVML +/- 5 W or 5 % (NVIDIA)"));
    }

    #[test]
    fn the_document_holds_power_energy_and_carbon_charts_with_data() {
        let doc = html(&[sample("run-1", 2000.0)]);
        assert!(doc.starts_with("<!DOCTYPE html>"));
        assert!(
            !doc.contains("<script") && !doc.contains("http://")
                || doc.matches("http://").count()
                    == doc.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
        let charts = svgs(&doc);
        let kinds: Vec<_> = charts
            .iter()
            .map(|c| {
                c.split("data-chart=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(kinds, vec!["power", "energy", "carbon"]);
        // The power chart: one polyline per domain, one point per timeline sample.
        let power = charts[0];
        assert_eq!(power.matches("<polyline").count(), 2);
        let pts = power
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 4);
        // The peak, 300 W on gpu-0, sits at the top of a 500 W axis: y = 16 + 244 * (1 - 0.6).
        assert!(power.contains(",113.6"), "{power}");
        // The energy chart carries the domain energies.
        assert!(charts[1].contains("data-value=\"1500\""));
        assert!(charts[1].contains("data-value=\"500\""));
        // Tags balance inside each chart (well-formed enough for a browser and an XML parser).
        for c in &charts {
            assert_eq!(c.matches("<text").count(), c.matches("</text>").count());
        }
        assert!(doc.contains("Methodology"));
        assert!(doc.contains("Ember/OWID (2024), lifecycle basis"));
    }

    #[test]
    fn text_is_escaped_and_several_runs_get_summary_charts() {
        let mut r = sample("<b>x</b>", 10.0);
        r.warnings.push("a & b < c".into());
        let doc = html(&[r, sample("y", 20.0)]);
        assert!(doc.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(doc.contains("a &amp; b &lt; c"));
        assert!(doc.contains("data-chart=\"runs-energy\""));
        assert!(!doc.contains("<b>x</b>"));
    }

    #[test]
    fn the_nodes_other_gpus_are_named_only_when_there_are_some() {
        let r = sample("run-1", 10.0);
        assert!(!html(std::slice::from_ref(&r)).contains("GPUs not the job's"));
        let mut r = r;
        r.host.other_gpus = vec![wattprint_core::report::OtherGpu {
            domain: "gpu-0".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: None,
            reason: "not in CUDA_VISIBLE_DEVICES=1".into(),
        }];
        assert!(html(&[r]).contains(
            "<tr><th>GPUs not the job's</th><td>gpu-0 (NVIDIA H100 80GB HBM3): not in \
             CUDA_VISIBLE_DEVICES=1</td></tr>"
        ));
    }

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_max(300.0), 500.0);
        assert_eq!(nice_max(3.5), 5.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
        assert_eq!(nice_max(200.0), 200.0);
    }
}
