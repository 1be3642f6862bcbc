//! OpenMetrics text exposition of the agent's state (hand-written: the families are few and
//! their labels come from the state). Encoding happens at scrape time only; sensors are read
//! by the sampling task, never by a scrape.

use crate::state::AgentState;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Escape a label value (backslash, double quote, newline).
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A client label key as a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, never starting
/// with the reserved `__`.
pub fn label_name(k: &str) -> String {
    let mut s: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    while s.starts_with("__") {
        s.remove(0);
    }
    if s.is_empty() {
        s.push('_');
    }
    s
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn client_labels(m: &BTreeMap<String, String>) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let pairs: Vec<(String, String)> = m
        .iter()
        .map(|(k, v)| (label_name(k), v.clone()))
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    labels(&refs)
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, unit: Option<&str>, help: &str) {
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        if let Some(u) = unit {
            let _ = writeln!(self.0, "# UNIT {name} {u}");
        }
        let _ = writeln!(self.0, "# HELP {name} {help}");
    }
    fn sample(&mut self, name: &str, labels: &str, v: f64) {
        let _ = writeln!(self.0, "{name}{labels} {}", num(v));
    }
}

/// The whole exposition, ending with `# EOF`.
pub fn render(st: &AgentState) -> String {
    let mut o = Out(String::with_capacity(4096));
    let domains = st.domains();

    o.family(
        "wattprint_energy_joules",
        "counter",
        Some("joules"),
        "Energy per domain since the agent started (counted=false: contained in another domain).",
    );
    for (d, j) in domains.iter().zip(st.cumulative_j()) {
        let l = labels(&[
            ("domain", &d.name),
            ("device", d.device.as_deref().unwrap_or("")),
            ("kind", d.kind.as_str()),
            ("source", d.source.as_str()),
            ("counted", if d.counted_in_total { "true" } else { "false" }),
        ]);
        o.sample("wattprint_energy_joules_total", &l, *j);
    }

    o.family(
        "wattprint_power_watts",
        "gauge",
        Some("watts"),
        "Average power per domain over the last sampling interval.",
    );
    if let Some(last) = st.samples().back() {
        for (d, p) in domains.iter().zip(&last.power_w) {
            if let Some(w) = p {
                let l = labels(&[
                    ("domain", &d.name),
                    ("device", d.device.as_deref().unwrap_or("")),
                ]);
                o.sample("wattprint_power_watts", &l, *w);
            }
        }
    }

    o.family(
        "wattprint_window_energy_joules",
        "counter",
        Some("joules"),
        "Energy of ended windows, by window name (counted domains).",
    );
    for (name, w) in st.window_totals() {
        o.sample(
            "wattprint_window_energy_joules_total",
            &labels(&[("window", name)]),
            w.energy_j,
        );
    }
    o.family(
        "wattprint_window_carbon_grams",
        "counter",
        Some("grams"),
        "Carbon (gCO2e) of ended windows, by window name.",
    );
    for (name, w) in st.window_totals() {
        o.sample(
            "wattprint_window_carbon_grams_total",
            &labels(&[("window", name)]),
            w.carbon_g,
        );
    }
    o.family(
        "wattprint_windows_ended",
        "counter",
        None,
        "Windows ended, by name.",
    );
    for (name, w) in st.window_totals() {
        o.sample(
            "wattprint_windows_ended_total",
            &labels(&[("window", name)]),
            w.ended as f64,
        );
    }
    let open = st.open_windows();
    o.family(
        "wattprint_window_active_energy_joules",
        "gauge",
        Some("joules"),
        "Energy so far of each open window.",
    );
    for w in &open {
        let id = w.id.to_string();
        o.sample(
            "wattprint_window_active_energy_joules",
            &labels(&[("window", &w.name), ("id", &id)]),
            w.energy_j,
        );
    }
    o.family(
        "wattprint_window_active_carbon_grams",
        "gauge",
        Some("grams"),
        "Carbon (gCO2e) so far of each open window.",
    );
    for w in &open {
        let id = w.id.to_string();
        o.sample(
            "wattprint_window_active_carbon_grams",
            &labels(&[("window", &w.name), ("id", &id)]),
            w.carbon_g,
        );
    }

    let totals: Vec<_> = st.label_totals().collect();
    o.family(
        "wattprint_request_energy_joules",
        "counter",
        Some("joules"),
        "Energy attributed to requests, by the spans' labels.",
    );
    for (l, t) in &totals {
        o.sample(
            "wattprint_request_energy_joules_total",
            &client_labels(l),
            t.energy_j,
        );
    }
    o.family(
        "wattprint_request_carbon_grams",
        "counter",
        Some("grams"),
        "Carbon (gCO2e) attributed to requests, by the spans' labels.",
    );
    for (l, t) in &totals {
        o.sample(
            "wattprint_request_carbon_grams_total",
            &client_labels(l),
            t.carbon_g,
        );
    }
    o.family(
        "wattprint_requests",
        "counter",
        None,
        "Requests attributed, by labels.",
    );
    for (l, t) in &totals {
        o.sample(
            "wattprint_requests_total",
            &client_labels(l),
            t.requests as f64,
        );
    }
    o.family(
        "wattprint_request_tokens",
        "counter",
        None,
        "Tokens declared by attributed requests, by labels.",
    );
    for (l, t) in &totals {
        o.sample(
            "wattprint_request_tokens_total",
            &client_labels(l),
            t.tokens as f64,
        );
    }
    o.family(
        "wattprint_idle_energy_joules",
        "counter",
        Some("joules"),
        "Energy while no request was active (never spread over requests).",
    );
    o.sample("wattprint_idle_energy_joules_total", "", st.idle_j());

    let c = st.carbon();
    o.family(
        "wattprint_grid_intensity_grams_per_kwh",
        "gauge",
        None,
        "Carbon intensity the agent applies, gCO2e per kWh.",
    );
    o.sample(
        "wattprint_grid_intensity_grams_per_kwh",
        &labels(&[
            ("zone", &c.zone),
            ("source", &c.source),
            ("fallback", if c.fallback { "true" } else { "false" }),
        ]),
        c.intensity_g_per_kwh,
    );

    let l = st.losses();
    o.family(
        "wattprint_spans_received",
        "counter",
        None,
        "Request spans received.",
    );
    o.sample(
        "wattprint_spans_received_total",
        "",
        st.spans_received() as f64,
    );
    o.family(
        "wattprint_spans_dropped",
        "counter",
        None,
        "Spans dropped unattributed because the pending buffer was full.",
    );
    o.sample("wattprint_spans_dropped_total", "", l.spans_dropped as f64);
    o.family(
        "wattprint_spans_invalid",
        "counter",
        None,
        "Spans refused as invalid.",
    );
    o.sample("wattprint_spans_invalid_total", "", l.spans_invalid as f64);
    o.family(
        "wattprint_spans_late",
        "counter",
        None,
        "Spans reported after part of their time was settled.",
    );
    o.sample("wattprint_spans_late_total", "", l.spans_late as f64);
    o.family(
        "wattprint_otlp_push_failures",
        "counter",
        None,
        "OTLP pushes that failed (connection error or non-2xx answer); each is also logged.",
    );
    o.sample(
        "wattprint_otlp_push_failures_total",
        "",
        l.otlp_push_failures as f64,
    );
    o.family(
        "wattprint_otlp_batches_dropped",
        "counter",
        None,
        "OTLP snapshots dropped: the send queue was full, or the answer was not retryable.",
    );
    o.sample(
        "wattprint_otlp_batches_dropped_total",
        "",
        l.otlp_batches_dropped as f64,
    );
    o.family(
        "wattprint_otlp_trace_push_failures",
        "counter",
        None,
        "OTLP span exports that failed (connection error or non-2xx answer); each is also logged.",
    );
    o.sample(
        "wattprint_otlp_trace_push_failures_total",
        "",
        l.otlp_trace_push_failures as f64,
    );
    o.family(
        "wattprint_otlp_spans_dropped",
        "counter",
        None,
        "Enriched spans never exported: batch dropped (queue full, answer not retryable), trace forgotten before settling, or attribution dropped.",
    );
    o.sample(
        "wattprint_otlp_spans_dropped_total",
        "",
        l.otlp_spans_dropped as f64,
    );
    o.family(
        "wattprint_otlp_spans_exported",
        "counter",
        None,
        "Enriched spans (with wattprint.energy_j) accepted by the OTLP traces endpoint.",
    );
    o.sample(
        "wattprint_otlp_spans_exported_total",
        "",
        st.otlp_spans_exported() as f64,
    );
    o.family(
        "wattprint_spans_pending",
        "gauge",
        None,
        "Spans waiting for attribution.",
    );
    o.sample("wattprint_spans_pending", "", st.pending_spans() as f64);

    o.family(
        "wattprint_agent_cpu_seconds",
        "counter",
        Some("seconds"),
        "CPU time used by the agent process (user + system).",
    );
    o.sample(
        "wattprint_agent_cpu_seconds_total",
        "",
        crate::overhead::process_cpu_s(),
    );
    o.family(
        "wattprint_agent_resident_memory_bytes",
        "gauge",
        Some("bytes"),
        "Resident memory of the agent process.",
    );
    o.sample(
        "wattprint_agent_resident_memory_bytes",
        "",
        crate::overhead::rss_bytes() as f64,
    );
    o.family(
        "wattprint_meter_reads",
        "counter",
        None,
        "Sensor reads performed by the meter.",
    );
    o.sample("wattprint_meter_reads_total", "", st.meter().reads() as f64);
    let (restarts, downtime_s) = st.restarts();
    o.family(
        "wattprint_agent_restarts",
        "counter",
        None,
        "Starts that resumed from the spool (--spool): the counters continued across them.",
    );
    o.sample("wattprint_agent_restarts_total", "", restarts as f64);
    o.family(
        "wattprint_agent_downtime_seconds",
        "counter",
        Some("seconds"),
        "Time between the spool's last snapshot and each restart: energy in it is not measured.",
    );
    o.sample("wattprint_agent_downtime_seconds_total", "", downtime_s);
    o.family(
        "wattprint_spool_write_failures",
        "counter",
        None,
        "Spool writes that failed (each logged; the next sampling interval retries).",
    );
    o.sample(
        "wattprint_spool_write_failures_total",
        "",
        st.spool_write_failures() as f64,
    );
    if let Some(w) = st.workloads() {
        w.render(&mut o.0);
    }
    o.0.push_str("# EOF\n");
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_valid_prometheus_names() {
        assert_eq!(label_name("model"), "model");
        assert_eq!(label_name("model.name"), "model_name");
        assert_eq!(label_name("9lives"), "_9lives");
        assert_eq!(label_name("__secret"), "_secret");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("é"), "_");
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn numbers_use_openmetrics_spellings() {
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(f64::NAN), "NaN");
    }

    #[test]
    fn colliding_client_label_names_keep_the_first() {
        let m: BTreeMap<String, String> = [
            ("a-b".to_string(), "1".to_string()),
            ("a_b".to_string(), "2".to_string()),
        ]
        .into();
        assert_eq!(client_labels(&m), "{a_b=\"1\"}");
    }
}
