//! OTLP/HTTP metrics push (cargo feature `otlp`): every interval, the agent's counters and
//! gauges are encoded as an OTLP `ExportMetricsServiceRequest` in its JSON encoding and POSTed
//! to `<endpoint>` (e.g. `http://127.0.0.1:4318/v1/metrics`, an OpenTelemetry Collector).
//! Plain HTTP only, over std's TCP (no HTTP client crate): send to a local Collector and let it
//! handle TLS and fan-out. Failures are logged and counted, never fatal.

use crate::{lock, AgentState, Shared};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where and how often to push.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// `http://HOST:PORT/PATH`.
    pub endpoint: String,
    pub interval_s: f64,
}

/// A parsed `http://` endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub host_port: String,
    pub path: String,
}

/// Parse `http://HOST:PORT/PATH` (PATH defaults to `/v1/metrics`).
pub fn parse_endpoint(url: &str) -> Result<Endpoint, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--otlp-endpoint {url}: only http:// is supported; send to a local OpenTelemetry Collector for TLS")
    })?;
    let (hp, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/v1/metrics"),
    };
    if hp.is_empty() || !hp.contains(':') {
        return Err(format!(
            "--otlp-endpoint {url}: give HOST:PORT, e.g. http://127.0.0.1:4318/v1/metrics"
        ));
    }
    Ok(Endpoint {
        host_port: hp.to_string(),
        path: if path == "/" { "/v1/metrics" } else { path }.to_string(),
    })
}

fn attr(k: &str, v: &str) -> Value {
    json!({ "key": k, "value": { "stringValue": v } })
}

fn point(attrs: Vec<Value>, start_ns: u64, now_ns: u64, v: f64) -> Value {
    json!({
        "attributes": attrs,
        "startTimeUnixNano": start_ns.to_string(),
        "timeUnixNano": now_ns.to_string(),
        "asDouble": v,
    })
}

fn sum(name: &str, unit: &str, desc: &str, points: Vec<Value>) -> Value {
    json!({ "name": name, "unit": unit, "description": desc,
            "sum": { "aggregationTemporality": 2, "isMonotonic": true, "dataPoints": points } })
}

fn gauge(name: &str, unit: &str, desc: &str, points: Vec<Value>) -> Value {
    json!({ "name": name, "unit": unit, "description": desc, "gauge": { "dataPoints": points } })
}

/// The export request for the state as it is now (cumulative sums since the agent started).
pub fn encode(st: &AgentState, start_unix_s: f64, now_unix_s: f64) -> Value {
    let ns = |s: f64| (s.max(0.0) * 1e9) as u64;
    let (t0, t1) = (ns(start_unix_s), ns(now_unix_s));
    let domains = st.domains();
    let energy: Vec<Value> = domains
        .iter()
        .zip(st.cumulative_j())
        .map(|(d, j)| {
            let attrs = vec![
                attr("domain", &d.name),
                attr("device", d.device.as_deref().unwrap_or("")),
                attr("kind", d.kind.as_str()),
                attr("counted", if d.counted_in_total { "true" } else { "false" }),
            ];
            point(attrs, t0, t1, *j)
        })
        .collect();
    let power: Vec<Value> = st
        .samples()
        .back()
        .map(|s| {
            domains
                .iter()
                .zip(&s.power_w)
                .filter_map(|(d, p)| p.map(|w| point(vec![attr("domain", &d.name)], t0, t1, w)))
                .collect()
        })
        .unwrap_or_default();
    let labels = |l: &std::collections::BTreeMap<String, String>| -> Vec<Value> {
        l.iter().map(|(k, v)| attr(k, v)).collect()
    };
    let req_j: Vec<Value> = st
        .label_totals()
        .map(|(l, t)| point(labels(l), t0, t1, t.energy_j))
        .collect();
    let req_g: Vec<Value> = st
        .label_totals()
        .map(|(l, t)| point(labels(l), t0, t1, t.carbon_g))
        .collect();
    let win_j: Vec<Value> = st
        .window_totals()
        .iter()
        .map(|(n, w)| point(vec![attr("window", n)], t0, t1, w.energy_j))
        .collect();
    let win_g: Vec<Value> = st
        .window_totals()
        .iter()
        .map(|(n, w)| point(vec![attr("window", n)], t0, t1, w.carbon_g))
        .collect();
    let metrics = vec![
        sum(
            "wattprint.energy",
            "J",
            "Energy per domain since the agent started.",
            energy,
        ),
        gauge(
            "wattprint.power",
            "W",
            "Power per domain over the last interval.",
            power,
        ),
        sum(
            "wattprint.request.energy",
            "J",
            "Energy attributed to requests, by labels.",
            req_j,
        ),
        sum(
            "wattprint.request.carbon",
            "g",
            "Carbon (gCO2e) attributed to requests, by labels.",
            req_g,
        ),
        sum(
            "wattprint.window.energy",
            "J",
            "Energy of ended windows, by name.",
            win_j,
        ),
        sum(
            "wattprint.window.carbon",
            "g",
            "Carbon (gCO2e) of ended windows, by name.",
            win_g,
        ),
        sum(
            "wattprint.idle.energy",
            "J",
            "Energy while no request was active.",
            vec![point(vec![], t0, t1, st.idle_j())],
        ),
        sum(
            "wattprint.agent.cpu",
            "s",
            "CPU time used by the agent.",
            vec![point(vec![], t0, t1, crate::overhead::process_cpu_s())],
        ),
        gauge(
            "wattprint.agent.memory.resident",
            "By",
            "Resident memory of the agent.",
            vec![point(vec![], t0, t1, crate::overhead::rss_bytes() as f64)],
        ),
    ];
    json!({ "resourceMetrics": [{
        "resource": { "attributes": [attr("service.name", "wattprint-agent"),
                                      attr("zone", &st.carbon().zone)] },
        "scopeMetrics": [{ "scope": { "name": "wattprint", "version": env!("CARGO_PKG_VERSION") },
                           "metrics": metrics }],
    }]})
}

/// POST `body` as JSON; Ok(status) when an HTTP answer came back.
pub fn post(ep: &Endpoint, body: &str, timeout: Duration) -> Result<u16, String> {
    let addr = ep
        .host_port
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", ep.host_port))?
        .next()
        .ok_or_else(|| format!("{}: no address", ep.host_port))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        ep.path,
        ep.host_port,
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

/// The push thread; stops when dropped.
pub struct Pusher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Pushes that failed (connection or non-2xx).
    pub failures: Arc<AtomicU64>,
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Pusher {
    pub fn start(cfg: &OtlpConfig, shared: Shared, start_unix_s: f64) -> Result<Pusher, String> {
        let ep = parse_endpoint(&cfg.endpoint)?;
        let period = Duration::from_secs_f64(cfg.interval_s.max(0.1));
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicU64::new(0));
        let (st, fl) = (Arc::clone(&stop), Arc::clone(&failures));
        let thread = std::thread::Builder::new()
            .name("wattprint-otlp".into())
            .spawn(move || {
                let mut next = std::time::Instant::now() + period;
                while !st.load(Ordering::SeqCst) {
                    let now = std::time::Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    next += period;
                    let body = encode(&lock(&shared), start_unix_s, unix_now_s()).to_string();
                    match post(&ep, &body, Duration::from_secs(5)) {
                        Ok(c) if (200..300).contains(&c) => {}
                        Ok(c) => {
                            fl.fetch_add(1, Ordering::SeqCst);
                            lock(&shared).record_otlp_failure();
                            tracing::warn!("OTLP push to {}{}: HTTP {c}", ep.host_port, ep.path);
                        }
                        Err(e) => {
                            fl.fetch_add(1, Ordering::SeqCst);
                            lock(&shared).record_otlp_failure();
                            tracing::warn!("OTLP push to {}{}: {e}", ep.host_port, ep.path);
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Pusher {
            stop,
            thread: Some(thread),
            failures,
        })
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_host_port_and_path() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4318/v1/metrics").unwrap(),
            Endpoint {
                host_port: "127.0.0.1:4318".into(),
                path: "/v1/metrics".into()
            }
        );
        assert_eq!(
            parse_endpoint("http://collector:4318").unwrap().path,
            "/v1/metrics"
        );
        assert!(parse_endpoint("https://x:4318")
            .unwrap_err()
            .contains("Collector"));
        assert!(parse_endpoint("http://nohostport/").is_err());
    }
}
