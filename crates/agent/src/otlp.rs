//! OTLP/HTTP metrics push (cargo feature `otlp`): every interval, the agent's counters and
//! gauges are encoded as an OTLP `ExportMetricsServiceRequest` in its JSON encoding and POSTed
//! to `<endpoint>` (e.g. `http://127.0.0.1:4318/v1/metrics`, an OpenTelemetry Collector, or an
//! `https://` backend).
//!
//! The transport follows the OTLP/HTTP specification (opentelemetry.io/docs/specs/otlp):
//! `ureq` (rustls for TLS, the system's web PKI roots bundled by `webpki-roots`), optional
//! `Content-Encoding: gzip`, extra headers for authentication, and retries only for the
//! retryable answers (429, 502, 503, 504, or no answer at all) with exponential back-off,
//! honouring `Retry-After`. Snapshots wait in a bounded queue ([`QUEUE_CAP`]); when it is
//! full the oldest is dropped and counted (each snapshot holds cumulative counters, so the
//! newest supersedes it). Failures are logged and counted, never fatal.

use crate::{lock, AgentState, Shared};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Snapshots waiting to be sent at most; beyond it the oldest is dropped and counted.
pub const QUEUE_CAP: usize = 8;
/// The first retry's delay; doubled at each further attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts, including a `Retry-After` the server asks for.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// One attempt's limit (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where, how often and how to push.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// `http://HOST:PORT/PATH` or `https://...`.
    pub endpoint: String,
    pub interval_s: f64,
    /// Extra request headers, e.g. `("authorization", "Bearer ...")`.
    pub headers: Vec<(String, String)>,
    /// Compress request bodies (`Content-Encoding: gzip`).
    pub gzip: bool,
}

/// Parse `http(s)://HOST[:PORT][/PATH]` (PATH defaults to `/v1/metrics`); returns the full URL.
///
/// # Errors
/// Another scheme, or no host.
pub fn parse_endpoint(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("--otlp-endpoint {url}: give an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/metrics")
        })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(format!(
            "--otlp-endpoint {url}: no host; e.g. http://127.0.0.1:4318/v1/metrics"
        ));
    }
    let scheme = &url[..url.len() - rest.len()];
    let path = if path.is_empty() || path == "/" {
        "/v1/metrics"
    } else {
        path
    };
    Ok(format!("{scheme}{host}{path}"))
}

/// Parse `--otlp-header NAME=VALUE` (also the `OTEL_EXPORTER_OTLP_HEADERS` form, a comma list
/// of them).
///
/// # Errors
/// No `=`, an empty or non-token name, or a control character in the value.
pub fn parse_headers(spec: &str) -> Result<Vec<(String, String)>, String> {
    spec.split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                format!("OTLP header {kv:?}: give NAME=VALUE, e.g. authorization=Bearer%20TOKEN")
            })?;
            let k = k.trim();
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!("OTLP header {k:?}: not a header name"));
            }
            // The OTel environment form percent-encodes values (spaces as %20).
            let v = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8_lossy()
                .into_owned();
            if v.chars().any(char::is_control) {
                return Err(format!("OTLP header {k}: control character in the value"));
            }
            Ok((k.to_ascii_lowercase(), v))
        })
        .collect()
}

/// What one attempt's answer means for the snapshot.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Accepted (2xx).
    Sent,
    /// Retryable (429, 502, 503, 504, or no answer): try again after this long.
    Retry(Duration),
    /// Not retryable (another 4xx or 5xx): dropped, with the reason.
    Drop(String),
}

/// The retry policy, pure: `status` is `None` when no answer came (connection refused, reset,
/// timed out); `retry_after` the header's value; `attempt` counts this snapshot's failed
/// attempts before this one (0 for the first). Back-off: [`FIRST_BACKOFF`] x 2^attempt, at
/// most [`MAX_BACKOFF`]; a `Retry-After` in seconds replaces it (also capped); an HTTP-date
/// `Retry-After` is not parsed and the back-off applies.
pub fn verdict(status: Option<u16>, retry_after: Option<&str>, attempt: u32) -> Verdict {
    let backoff = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    match status {
        Some(200..=299) => Verdict::Sent,
        None | Some(429 | 502 | 503 | 504) => Verdict::Retry(
            retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_BACKOFF))
                .unwrap_or(backoff),
        ),
        Some(c @ (401 | 403)) => Verdict::Drop(format!(
            "HTTP {c}: the backend refused the credentials (--otlp-header authorization=...)"
        )),
        Some(c) => Verdict::Drop(format!("HTTP {c}: not retryable")),
    }
}

/// gzip `body` (flate2, the crate ureq already uses to decode answers).
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}

/// One attempt: POST `body`; the status and `Retry-After`, or `None` when no answer came
/// (with the error, for the log).
fn attempt(
    agent: &ureq::Agent,
    url: &str,
    cfg: &OtlpConfig,
    body: &[u8],
) -> (Option<u16>, Option<String>, String) {
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let sent;
    let body = if cfg.gzip {
        req = req.header("content-encoding", "gzip");
        sent = gzip(body);
        &sent[..]
    } else {
        body
    };
    match req.send(body) {
        Ok(resp) => {
            let ra = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (Some(resp.status().as_u16()), ra, String::new())
        }
        Err(e) => (None, None, e.to_string()),
    }
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

/// The push thread; stops when dropped.
pub struct Pusher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A snapshot waiting to be sent, and its failed attempts so far.
struct Queued {
    body: Vec<u8>,
    attempts: u32,
}

impl Pusher {
    /// Start pushing every `cfg.interval_s`.
    ///
    /// # Errors
    /// A malformed endpoint, or no thread could be started.
    pub fn start(cfg: &OtlpConfig, shared: Shared, start_unix_s: f64) -> Result<Pusher, String> {
        let url = parse_endpoint(&cfg.endpoint)?;
        let period = Duration::from_secs_f64(cfg.interval_s.max(0.1));
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let cfg = cfg.clone();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("wattprint-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let thread = std::thread::Builder::new()
            .name("wattprint-otlp".into())
            .spawn(move || {
                let mut queue: VecDeque<Queued> = VecDeque::new();
                let mut next_snapshot = Instant::now() + period;
                let mut next_attempt = Instant::now();
                while !st.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    if now >= next_snapshot {
                        next_snapshot += period;
                        let body = encode(&lock(&shared), start_unix_s, unix_now_s()).to_string();
                        if queue.len() >= QUEUE_CAP {
                            queue.pop_front();
                            lock(&shared).record_otlp_dropped();
                            tracing::warn!(
                                "OTLP push to {url}: queue full ({QUEUE_CAP}), oldest snapshot dropped"
                            );
                        }
                        queue.push_back(Queued {
                            body: body.into_bytes(),
                            attempts: 0,
                        });
                    }
                    if now >= next_attempt {
                        if let Some(q) = queue.front_mut() {
                            let (status, retry_after, err) = attempt(&agent, &url, &cfg, &q.body);
                            match verdict(status, retry_after.as_deref(), q.attempts) {
                                Verdict::Sent => {
                                    queue.pop_front();
                                    continue;
                                }
                                Verdict::Retry(after) => {
                                    q.attempts += 1;
                                    next_attempt = Instant::now() + after;
                                    lock(&shared).record_otlp_failure();
                                    let why = status.map_or(err, |c| format!("HTTP {c}"));
                                    tracing::warn!(
                                        "OTLP push to {url}: {why}; retry {} in {:.1} s",
                                        q.attempts,
                                        after.as_secs_f64()
                                    );
                                }
                                Verdict::Drop(why) => {
                                    queue.pop_front();
                                    let mut s = lock(&shared);
                                    s.record_otlp_failure();
                                    s.record_otlp_dropped();
                                    drop(s);
                                    tracing::warn!("OTLP push to {url}: {why}; snapshot dropped");
                                }
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Pusher {
            stop,
            thread: Some(thread),
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
    fn endpoints_are_http_or_https_with_a_default_path() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4318/v1/metrics").unwrap(),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            parse_endpoint("http://collector:4318").unwrap(),
            "http://collector:4318/v1/metrics"
        );
        assert_eq!(
            parse_endpoint("https://otlp.example.com/").unwrap(),
            "https://otlp.example.com/v1/metrics"
        );
        assert!(parse_endpoint("grpc://x:4317")
            .unwrap_err()
            .contains("http"));
        assert!(parse_endpoint("http:///v1/metrics").is_err());
        assert!(parse_endpoint("http://:4318").is_err());
    }

    #[test]
    fn headers_parse_as_the_otel_environment_form() {
        assert_eq!(
            parse_headers("Authorization=Bearer%20abc, x-team=search").unwrap(),
            [
                ("authorization".to_string(), "Bearer abc".to_string()),
                ("x-team".to_string(), "search".to_string())
            ]
        );
        assert!(parse_headers("novalue").is_err());
        assert!(parse_headers("bad name=x").is_err());
        assert!(parse_headers("k=a%0Ab").is_err());
    }

    #[test]
    fn only_retryable_answers_are_retried_with_back_off_or_retry_after() {
        let s = Duration::from_secs;
        assert_eq!(verdict(Some(200), None, 0), Verdict::Sent);
        assert_eq!(verdict(Some(204), None, 3), Verdict::Sent);
        for c in [429, 502, 503, 504] {
            assert_eq!(verdict(Some(c), None, 0), Verdict::Retry(s(1)), "{c}");
            assert_eq!(verdict(Some(c), None, 3), Verdict::Retry(s(8)), "{c}");
        }
        assert_eq!(verdict(None, None, 1), Verdict::Retry(s(2)));
        assert_eq!(verdict(None, None, 40), Verdict::Retry(MAX_BACKOFF));
        assert_eq!(verdict(Some(503), Some(" 7 "), 0), Verdict::Retry(s(7)));
        assert_eq!(
            verdict(Some(429), Some("100000"), 0),
            Verdict::Retry(MAX_BACKOFF)
        );
        // An HTTP-date is not parsed: the back-off applies.
        assert_eq!(
            verdict(Some(503), Some("Wed, 21 Oct 2026 07:28:00 GMT"), 2),
            Verdict::Retry(s(4))
        );
        for c in [400, 404, 413, 500] {
            assert!(matches!(verdict(Some(c), None, 0), Verdict::Drop(_)), "{c}");
        }
        match verdict(Some(401), None, 0) {
            Verdict::Drop(why) => assert!(why.contains("credentials"), "{why}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = br#"{"resourceMetrics":[]}"#.repeat(100);
        let z = gzip(&body);
        assert!(z.len() < body.len() / 5, "{} of {}", z.len(), body.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }
}
