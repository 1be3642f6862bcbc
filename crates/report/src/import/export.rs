//! Export of a run as wattprint's CSV trace, the format `trace` imports back.

use super::*;

/// Writes a run as a wattprint CSV trace: per domain, cumulative joules at 0 s, at the
/// timeline's points, and at the end (exactly the domain's energy), so importing it back
/// gives the same energy.
pub fn export_trace(r: &RunReport) -> String {
    let mut s = String::from("# wattprint trace v1\n");
    s.push_str(&format!("# id: {}\n", r.id));
    s.push_str(&format!("# started_at: {}\n", r.started_at));
    s.push_str(&format!("# duration_s: {}\n", r.duration_s));
    if !r.command.is_empty() {
        s.push_str(&format!("# command: {}\n", r.command.join(" ")));
    }
    if !r.host.hostname.is_empty() {
        s.push_str(&format!("# host: {}\n", r.host.hostname));
    }
    s.push_str("t_s,domain,kind,method,counted,unit,value\n");
    for d in &r.energy.domains {
        let row = |t: f64, j: f64| {
            format!(
                "{t},{},{},{},{},J,{j}\n",
                csv_safe(&d.name),
                d.kind,
                d.method,
                d.counted_in_total
            )
        };
        s.push_str(&row(0.0, 0.0));
        if let Some(tl) = &r.timeline {
            if let Some(ps) = tl.series.iter().find(|p| p.domain == d.name) {
                // Cumulative energy at the timeline's midpoints, scaled to end below the total.
                let mut cum = Vec::new();
                let mut acc = 0.0;
                let mut prev_t = 0.0;
                for (t, w) in tl.t_s.iter().zip(&ps.watts) {
                    acc += w.max(0.0) * (t - prev_t).max(0.0);
                    prev_t = *t;
                    cum.push((*t, acc));
                }
                let scale = if acc > d.joules && acc > 0.0 {
                    d.joules / acc
                } else {
                    1.0
                };
                for (t, j) in cum {
                    if t > 0.0 && t < r.duration_s {
                        s.push_str(&row(t, j * scale));
                    }
                }
            }
        }
        s.push_str(&row(r.duration_s.max(0.0), d.joules));
    }
    s
}

fn csv_safe(name: &str) -> String {
    name.replace([',', '"', '\n', '\r'], "_")
}
