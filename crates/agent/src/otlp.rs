//! OTLP/HTTP export (cargo feature `otlp`) of two signals over one transport:
//!
//! - **metrics**: every interval, the agent's counters and gauges are encoded as an OTLP
//!   `ExportMetricsServiceRequest` in its JSON encoding and POSTed to the metrics endpoint
//!   (e.g. `http://127.0.0.1:4318/v1/metrics`), under the agent's own `wattprint.*` names and
//!   the OpenTelemetry hardware semantic conventions' `hw.*` names ([`encode`]);
//! - **traces**: each span received at `POST /v1/traces`, once its energy is settled, is
//!   exported as it came (ids, parent, name, kind, times, status, attributes, resource and
//!   scope) with `wattprint.energy_j`, `wattprint.carbon_g`, `wattprint.method` and
//!   `wattprint.attribution` added, as an OTLP/HTTP protobuf `ExportTraceServiceRequest`
//!   (see [`crate::traces::TraceTable::take_settled`]), so Jaeger, Tempo or Langfuse show it.
//!
//! The transport ([`Channel`], one per signal, driven by one thread) follows the OTLP/HTTP
//! specification (opentelemetry.io/docs/specs/otlp): `ureq` (rustls for TLS, the web PKI
//! roots bundled by `webpki-roots`), optional `Content-Encoding: gzip`, extra headers for
//! authentication (both shared by the two signals, as `OTEL_EXPORTER_OTLP_HEADERS` and
//! `OTEL_EXPORTER_OTLP_COMPRESSION` are in the SDKs), and retries only for the retryable
//! answers (429, 502, 503, 504, or no answer at all) with exponential back-off, honouring
//! `Retry-After`. Each signal's batches wait in its own bounded queue ([`QUEUE_CAP`]): a
//! backend that is down for one signal does not hold the other back. A full metrics queue
//! drops its oldest snapshot (each holds cumulative counters, so the newest supersedes it);
//! spans are not taken from the trace table while the traces queue is full (they wait there,
//! bounded by its caps). Drops and failures are counted per signal and logged, never fatal.

use crate::state::OtlpSignal;
use crate::traces::{Attribution, TraceTable};
use crate::{lock, AgentState, Shared};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Batches waiting to be sent per signal at most; beyond it the oldest is dropped and
/// counted.
pub const QUEUE_CAP: usize = 8;
/// Spans per trace export at most: the OpenTelemetry SDKs' default batch size
/// (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, 512).
pub const MAX_SPANS_PER_BATCH: usize = 512;
/// How often the trace table is looked through for settled spans.
pub const TRACE_POLL: Duration = Duration::from_millis(250);
/// The first retry's delay; doubled at each further attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts, including a `Retry-After` the server asks for.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// One attempt's limit (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The export thread's last chance at a stop (SIGTERM, SIGINT): from the stop, at most this
/// long to send the final metrics snapshot and every span already settled, retries included;
/// what is left is counted and logged, and the agent exits. Half of `docker stop`'s default
/// grace period (10 s before SIGKILL), so the rest of the stop (connections drained, the
/// spool written) still fits in it; Kubernetes (30 s) and systemd (90 s) allow more.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Where, how often and how to push.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// Metrics: `http://HOST:PORT/PATH` or `https://...` (path default `/v1/metrics`);
    /// `None` pushes no metrics.
    pub endpoint: Option<String>,
    /// Enriched spans: `http(s)://HOST[:PORT][/PATH]` (path default `/v1/traces`); `None`
    /// exports no spans.
    pub traces_endpoint: Option<String>,
    /// Metrics push interval, s.
    pub interval_s: f64,
    /// Extra request headers, e.g. `("authorization", "Bearer ...")`.
    pub headers: Vec<(String, String)>,
    /// Compress request bodies (`Content-Encoding: gzip`).
    pub gzip: bool,
}

/// Parse the metrics endpoint `http(s)://HOST[:PORT][/PATH]` (PATH defaults to
/// `/v1/metrics`); returns the full URL.
///
/// # Errors
/// Another scheme, or no host.
pub fn parse_endpoint(url: &str) -> Result<String, String> {
    parse_signal_endpoint(url, "--otlp-endpoint", "/v1/metrics")
}

/// Parse the traces endpoint `http(s)://HOST[:PORT][/PATH]` (PATH defaults to `/v1/traces`);
/// returns the full URL.
///
/// # Errors
/// Another scheme, or no host.
pub fn parse_traces_endpoint(url: &str) -> Result<String, String> {
    parse_signal_endpoint(url, "--otlp-traces-endpoint", "/v1/traces")
}

fn parse_signal_endpoint(url: &str, flag: &str, default_path: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("{flag} {url}: give an http:// or https:// URL, e.g. http://127.0.0.1:4318{default_path}")
        })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(format!(
            "{flag} {url}: no host; e.g. http://127.0.0.1:4318{default_path}"
        ));
    }
    let scheme = &url[..url.len() - rest.len()];
    let path = if path.is_empty() || path == "/" {
        default_path
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
    content_type: &str,
    cfg: &OtlpConfig,
    body: &[u8],
    limit: Duration,
) -> (Option<u16>, Option<String>, String) {
    let mut req = agent
        .post(url)
        .config()
        .timeout_global(Some(limit))
        .build()
        .header("content-type", content_type);
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

/// `hw.type` of a domain under the hardware semantic conventions, `None` for the domains
/// that span the whole host (psys, node: reported as `hw.host.*` only, as the conventions ask,
/// so that `hw.energy` never sums overlapping values). `accelerator` is not among the
/// conventions' well-known values, which allow a custom one.
pub fn hw_type(kind: wattprint_core::DomainKind) -> Option<&'static str> {
    use wattprint_core::DomainKind as K;
    match kind {
        K::CpuPackage | K::CpuCore | K::CpuUncore | K::CpuModel => Some("cpu"),
        K::Dram | K::MemoryModel => Some("memory"),
        K::Gpu => Some("gpu"),
        K::Accelerator => Some("accelerator"),
        K::Psys | K::Node => None,
    }
}

/// The same energy and power under the OpenTelemetry hardware semantic conventions
/// (opentelemetry.io/docs/specs/semconv/hardware/common/ and .../hardware/host/, status
/// Development, read 2026-11-30): `hw.energy` (Counter, `J`) and `hw.power` (Gauge, `W`) per
/// component with the required `hw.id` (the domain's name, unique within the host) and
/// `hw.type`, and `hw.name` (the device, else the domain); `hw.host.energy` (Counter, `J`)
/// and `hw.host.power` (Gauge, `W`) for the host, `hw.id` `host`. Only the domains counted in
/// the total are reported, so `hw.energy` never counts a joule twice (a core inside its
/// package); the host's figures are the agent's total (the counted domains), not a wall
/// meter's.
fn hw_metrics(st: &AgentState, t0: u64, t1: u64) -> Vec<Value> {
    let domains = st.domains();
    let last = st.samples().back();
    let component = |k: usize| -> Option<Vec<Value>> {
        let d = &domains[k];
        let ty = hw_type(d.kind).filter(|_| d.counted_in_total)?;
        Some(vec![
            attr("hw.id", &d.name),
            attr("hw.type", ty),
            attr("hw.name", d.device.as_deref().unwrap_or(&d.name)),
        ])
    };
    let mut energy = Vec::new();
    let mut power = Vec::new();
    let (mut host_j, mut host_w) = (0.0, Some(0.0));
    for (k, d) in domains.iter().enumerate() {
        if !d.counted_in_total {
            continue;
        }
        let j = st.cumulative_j().get(k).copied().unwrap_or(0.0);
        host_j += j;
        let w = last.and_then(|s| s.power_w.get(k).copied().flatten());
        host_w = host_w.zip(w).map(|(a, b)| a + b);
        if let Some(attrs) = component(k) {
            energy.push(point(attrs.clone(), t0, t1, j));
            if let Some(w) = w {
                power.push(point(attrs, t0, t1, w));
            }
        }
    }
    let host = || vec![attr("hw.id", "host")];
    let mut out = vec![
        sum(
            "hw.energy",
            "J",
            "Energy consumed by the component.",
            energy,
        ),
        gauge(
            "hw.power",
            "W",
            "Instantaneous power consumed by the component.",
            power,
        ),
        sum(
            "hw.host.energy",
            "J",
            "Total energy consumed by the entire physical host, in joules (the domains the agent counts).",
            vec![point(host(), t0, t1, host_j)],
        ),
    ];
    if let Some(w) = host_w.filter(|_| last.is_some()) {
        out.push(gauge(
            "hw.host.power",
            "W",
            "Instantaneous power consumed by the entire physical host in Watts (the domains the agent counts).",
            vec![point(host(), t0, t1, w)],
        ));
    }
    out
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
    let mut metrics = metrics;
    metrics.extend(hw_metrics(st, t0, t1));
    json!({ "resourceMetrics": [{
        "resource": { "attributes": [attr("service.name", "wattprint-agent"),
                                      attr("zone", &st.carbon().zone)] },
        "scopeMetrics": [{ "scope": { "name": "wattprint", "version": env!("CARGO_PKG_VERSION") },
                           "metrics": metrics }],
    }]})
}

/// The push thread; stops (with its last chance, [`SHUTDOWN_FLUSH`]) at
/// [`Pusher::finish`] or when dropped.
pub struct Pusher {
    /// Set at the stop: the flush's deadline.
    stop: Arc<OnceLock<Instant>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Receives once the thread is done.
    done: std::sync::mpsc::Receiver<()>,
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A batch waiting to be sent: its body, how many items (snapshots, spans) it holds, its
/// failed attempts so far.
struct Queued {
    body: Vec<u8>,
    items: u64,
    attempts: u32,
}

/// One signal's half of the transport: its URL and content type, its bounded queue, and when
/// the next attempt is due. The retry policy is [`verdict`]; the counters are the state's,
/// per [`OtlpSignal`].
pub struct Channel {
    signal: OtlpSignal,
    url: String,
    content_type: &'static str,
    queue: VecDeque<Queued>,
    next_attempt: Instant,
}

impl Channel {
    /// An empty channel to `url` (already parsed).
    pub fn new(signal: OtlpSignal, url: String) -> Channel {
        Channel {
            signal,
            url,
            content_type: match signal {
                OtlpSignal::Metrics => "application/json",
                OtlpSignal::Traces => "application/x-protobuf",
            },
            queue: VecDeque::new(),
            next_attempt: Instant::now(),
        }
    }

    fn what(&self) -> &'static str {
        match self.signal {
            OtlpSignal::Metrics => "OTLP metrics push",
            OtlpSignal::Traces => "OTLP span export",
        }
    }

    /// Whether a batch can be queued without dropping one.
    pub fn has_room(&self) -> bool {
        self.queue.len() < QUEUE_CAP
    }

    /// Queue a batch of `items`; at [`QUEUE_CAP`] the oldest is dropped and counted.
    pub fn offer(&mut self, body: Vec<u8>, items: u64, shared: &Shared) {
        if !self.has_room() {
            if let Some(old) = self.queue.pop_front() {
                lock(shared).record_otlp_dropped(self.signal, old.items);
                tracing::warn!(
                    "{} to {}: queue full ({QUEUE_CAP}), oldest batch dropped",
                    self.what(),
                    self.url
                );
            }
        }
        self.queue.push_back(Queued {
            body,
            items,
            attempts: 0,
        });
    }

    /// Send the oldest batch if an attempt is due, the attempt limited to `limit`; `true`
    /// when it was accepted (another may follow at once).
    pub fn poll(
        &mut self,
        agent: &ureq::Agent,
        cfg: &OtlpConfig,
        shared: &Shared,
        limit: Duration,
    ) -> bool {
        if Instant::now() < self.next_attempt {
            return false;
        }
        let Some(q) = self.queue.front_mut() else {
            return false;
        };
        let (status, retry_after, err) =
            attempt(agent, &self.url, self.content_type, cfg, &q.body, limit);
        match verdict(status, retry_after.as_deref(), q.attempts) {
            Verdict::Sent => {
                let items = q.items;
                self.queue.pop_front();
                lock(shared).record_otlp_sent(self.signal, items);
                true
            }
            Verdict::Retry(after) => {
                q.attempts += 1;
                let n = q.attempts;
                self.next_attempt = Instant::now() + after;
                lock(shared).record_otlp_failure(self.signal);
                let why = status.map_or(err, |c| format!("HTTP {c}"));
                tracing::warn!(
                    "{} to {}: {why}; retry {n} in {:.1} s",
                    self.what(),
                    self.url,
                    after.as_secs_f64()
                );
                false
            }
            Verdict::Drop(why) => {
                let items = q.items;
                self.queue.pop_front();
                let mut s = lock(shared);
                s.record_otlp_failure(self.signal);
                s.record_otlp_dropped(self.signal, items);
                drop(s);
                tracing::warn!("{} to {}: {why}; batch dropped", self.what(), self.url);
                false
            }
        }
    }
}

/// `measured` when every counted domain is read from hardware (a counter or a power
/// reading), `estimated` when one is a utilisation model: the `wattprint.method` of exported
/// spans.
pub fn span_method(st: &AgentState) -> &'static str {
    if st
        .domains()
        .iter()
        .any(|d| d.counted_in_total && d.method == wattprint_core::Method::Model)
    {
        "estimated"
    } else {
        "measured"
    }
}

/// Take the settled spans from `traces` (at most [`MAX_SPANS_PER_BATCH`]) and count the
/// spans given up; the export body, and how many spans it holds, or `None` when none is ready.
pub fn collect_spans(traces: &Mutex<TraceTable>, shared: &Shared) -> Option<(Vec<u8>, u64)> {
    // Lock order as the API's: the trace table, then the state.
    let mut table = traces.lock().unwrap_or_else(|e| e.into_inner());
    let mut st = lock(shared);
    let method = span_method(&st);
    let horizon_unix_s = st.settled_until_unix_s();
    let settled = table.take_settled(
        |l, span| {
            if let Some(s) = st.settled_request(l) {
                return Attribution::Settled {
                    energy_j: s.energy_j,
                    carbon_g: s.carbon_g,
                };
            }
            // Not settled yet, surely, when it ends past the horizon: no scan of the
            // pending spans under the lock for those.
            if span.end_unix_s > horizon_unix_s {
                return Attribution::Pending;
            }
            match st.request(l) {
                Some(crate::state::RequestStatus::Settled(s)) => Attribution::Settled {
                    energy_j: s.energy_j,
                    carbon_g: s.carbon_g,
                },
                Some(crate::state::RequestStatus::Pending { .. }) => Attribution::Pending,
                None => Attribution::Gone,
            }
        },
        method,
        MAX_SPANS_PER_BATCH,
    );
    if settled.given_up > 0 {
        st.record_otlp_dropped(OtlpSignal::Traces, settled.given_up);
    }
    drop(st);
    drop(table);
    let n = settled.spans.len() as u64;
    (n > 0).then(|| (crate::traces::encode_export(settled.spans), n))
}

impl Pusher {
    /// Start pushing metrics every `cfg.interval_s` (when `cfg.endpoint` is set) and
    /// exporting the settled spans of `traces` (when `cfg.traces_endpoint` is set).
    ///
    /// # Errors
    /// A malformed endpoint, or no thread could be started.
    pub fn start(
        cfg: &OtlpConfig,
        shared: Shared,
        traces: Arc<Mutex<TraceTable>>,
        start_unix_s: f64,
    ) -> Result<Pusher, String> {
        let mut metrics = cfg
            .endpoint
            .as_deref()
            .map(parse_endpoint)
            .transpose()?
            .map(|u| Channel::new(OtlpSignal::Metrics, u));
        let mut spans = cfg
            .traces_endpoint
            .as_deref()
            .map(parse_traces_endpoint)
            .transpose()?
            .map(|u| Channel::new(OtlpSignal::Traces, u));
        let period = Duration::from_secs_f64(cfg.interval_s.max(0.1));
        let stop = Arc::new(OnceLock::<Instant>::new());
        let st = Arc::clone(&stop);
        let (done_tx, done) = std::sync::mpsc::channel();
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
                let mut next_snapshot = Instant::now() + period;
                let mut next_trace_poll = Instant::now() + TRACE_POLL;
                while st.get().is_none() {
                    let now = Instant::now();
                    if let Some(ch) = metrics.as_mut() {
                        if now >= next_snapshot {
                            next_snapshot += period;
                            let body =
                                encode(&lock(&shared), start_unix_s, unix_now_s()).to_string();
                            ch.offer(body.into_bytes(), 1, &shared);
                        }
                    }
                    if let Some(ch) = spans.as_mut() {
                        if now >= next_trace_poll {
                            next_trace_poll = now + TRACE_POLL;
                            while ch.has_room() {
                                match collect_spans(&traces, &shared) {
                                    Some((body, n)) => ch.offer(body, n, &shared),
                                    None => break,
                                }
                            }
                        }
                    }
                    let mut busy = false;
                    for ch in [metrics.as_mut(), spans.as_mut()].into_iter().flatten() {
                        busy |= ch.poll(&agent, &cfg, &shared, ATTEMPT_TIMEOUT);
                    }
                    if !busy {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                let deadline = st.get().copied().unwrap_or_else(Instant::now);
                let mut last = LastChance {
                    metrics: metrics.as_mut(),
                    spans: spans.as_mut(),
                    agent: &agent,
                    cfg: &cfg,
                    shared: &shared,
                    traces: &traces,
                };
                last.flush(start_unix_s, deadline);
                let _ = done_tx.send(());
            })
            .map_err(|e| e.to_string())?;
        Ok(Pusher {
            stop,
            thread: Some(thread),
            done,
        })
    }

    /// Stop: the thread sends what it can within [`SHUTDOWN_FLUSH`] ([`LastChance::flush`])
    /// and this returns when it is done, or at that bound (plus 1 s for an attempt under
    /// way to time out) whatever happens, leaving the thread to the process's exit.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(t) = self.thread.take() else {
            return;
        };
        let _ = self.stop.set(Instant::now() + SHUTDOWN_FLUSH);
        match self.done.recv_timeout(SHUTDOWN_FLUSH + Duration::from_secs(1)) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = t.join();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => tracing::warn!(
                "OTLP export: an attempt was still under way {} s after the stop; exiting without it (what it held is not exported)",
                SHUTDOWN_FLUSH.as_secs() + 1
            ),
        }
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The export thread's last chance at a stop: its channels and what feeds them.
struct LastChance<'a> {
    metrics: Option<&'a mut Channel>,
    spans: Option<&'a mut Channel>,
    agent: &'a ureq::Agent,
    cfg: &'a OtlpConfig,
    shared: &'a Shared,
    traces: &'a Mutex<TraceTable>,
}

/// What the last chance left unsent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Unsent {
    /// Spans settled and taken from the table, not accepted by the backend.
    pub spans_queued: u64,
    /// Spans left in the trace table: still waiting for their energy to settle, or not
    /// reached in time (the trace table is not spooled: they are never exported).
    pub spans_pending: u64,
    /// Metrics snapshots not accepted.
    pub snapshots: u64,
}

impl LastChance<'_> {
    /// Queue the final metrics snapshot (the counters as they stand at the stop) and every
    /// settled span, then send until the queues are empty or `deadline`; a retry due after
    /// the deadline is not waited for. What is left is counted as dropped and logged
    /// (`N spans not exported at shutdown`).
    fn flush(&mut self, start_unix_s: f64, deadline: Instant) -> Unsent {
        if let Some(ch) = self.metrics.as_deref_mut() {
            let body = encode(&lock(self.shared), start_unix_s, unix_now_s()).to_string();
            ch.offer(body.into_bytes(), 1, self.shared);
        }
        let mut table_empty = self.spans.is_none();
        loop {
            if let Some(ch) = self.spans.as_deref_mut() {
                while !table_empty && ch.has_room() {
                    match collect_spans(self.traces, self.shared) {
                        Some((body, n)) => ch.offer(body, n, self.shared),
                        None => table_empty = true,
                    }
                }
            }
            let now = Instant::now();
            let mut live = false;
            let mut next_due = deadline;
            for ch in [self.metrics.as_deref_mut(), self.spans.as_deref_mut()]
                .into_iter()
                .flatten()
            {
                if ch.queue.is_empty() || ch.next_attempt >= deadline {
                    continue;
                }
                live = true;
                if ch.next_attempt <= now {
                    let limit = deadline.saturating_duration_since(now).min(ATTEMPT_TIMEOUT);
                    ch.poll(self.agent, self.cfg, self.shared, limit);
                }
                next_due = next_due.min(ch.next_attempt);
            }
            if !live || Instant::now() >= deadline {
                break;
            }
            let wait = next_due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait.min(Duration::from_millis(50)));
            }
        }
        let queued = |ch: Option<&mut Channel>| -> u64 {
            ch.map_or(0, |c| c.queue.drain(..).map(|q| q.items).sum())
        };
        let unsent = Unsent {
            snapshots: queued(self.metrics.as_deref_mut()),
            spans_queued: queued(self.spans.as_deref_mut()),
            spans_pending: if self.spans.is_some() {
                self.traces
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .awaiting_export() as u64
            } else {
                0
            },
        };
        let mut st = lock(self.shared);
        if unsent.snapshots > 0 {
            st.record_otlp_dropped(OtlpSignal::Metrics, unsent.snapshots);
            tracing::warn!(
                "OTLP metrics push: {} snapshots not sent at shutdown (within {} s)",
                unsent.snapshots,
                SHUTDOWN_FLUSH.as_secs()
            );
        }
        let spans = unsent.spans_queued + unsent.spans_pending;
        if spans > 0 {
            st.record_otlp_dropped(OtlpSignal::Traces, spans);
            tracing::warn!(
                "OTLP span export: {spans} spans not exported at shutdown ({} queued but not accepted within {} s, {} left in the trace table: energy not settled yet, or not reached)",
                unsent.spans_queued,
                SHUTDOWN_FLUSH.as_secs(),
                unsent.spans_pending
            );
        } else if self.spans.is_some() {
            tracing::info!("OTLP span export: every span exported at shutdown");
        }
        unsent
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

    /// A state over one scripted sensor: package-0 (counted, +100 J per read), core-0 (inside
    /// it, not counted, +30 J), gpu-0 (counted, +50 J), psys (contains the package, not
    /// counted, +400 J); two ticks.
    fn four_domain_state() -> AgentState {
        use wattprint_core::{DomainKind as K, Method as M};
        use wattprint_sensors::fake::{domain, FakeSensor};
        use wattprint_sensors::{RawReading, ReadCadence, SensorInfo};
        let mut gpu = domain("gpu-0", K::Gpu, M::Counter, true);
        gpu.device = Some("NVIDIA H100".into());
        let sensor = FakeSensor::new(
            SensorInfo {
                source: "fake".into(),
                domains: vec![
                    domain("package-0", K::CpuPackage, M::Counter, true),
                    domain("core-0", K::CpuCore, M::Counter, false),
                    gpu,
                    domain("psys", K::Psys, M::Counter, false),
                ],
                cadence: ReadCadence::Boundaries { guard_s: None },
                setup: "none".into(),
            },
            {
                let mut n = 0.0;
                move |_t, out| {
                    n += 1.0;
                    for (o, step) in out.iter_mut().zip([100.0, 30.0, 50.0, 400.0]) {
                        *o = RawReading::EnergyCounter {
                            joules: n * step,
                            range_j: None,
                        };
                    }
                    Ok(())
                }
            },
        );
        let meter = wattprint_sensors::Meter::start(vec![Box::new(sensor)], Default::default());
        let carbon = crate::CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
            intensity_g_per_kwh: Some(100.0),
            pue: Some(1.0),
            ..Default::default()
        })
        .unwrap();
        let mut st = AgentState::new(meter, 1000.0, 0.0, carbon, Default::default());
        st.tick();
        st.tick();
        st
    }

    fn metric<'a>(doc: &'a Value, name: &str) -> &'a Value {
        doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    fn attrs(p: &Value) -> Vec<(String, String)> {
        p["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["key"].as_str().unwrap().to_string(),
                    a["value"]["stringValue"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn energy_is_also_under_the_hardware_semantic_conventions() {
        let st = four_domain_state();
        let cum = st.cumulative_j().to_vec();
        assert_eq!(
            cum,
            [200.0, 60.0, 100.0, 800.0],
            "two reads after the first"
        );
        let doc = encode(&st, 1000.0, 1010.0);
        let hw = metric(&doc, "hw.energy");
        assert_eq!(
            (hw["unit"].as_str(), hw["sum"]["isMonotonic"].as_bool()),
            (Some("J"), Some(true))
        );
        assert_eq!(hw["sum"]["aggregationTemporality"], 2);
        let points = hw["sum"]["dataPoints"].as_array().unwrap();
        // The counted components only: no core (inside its package), no psys (the host).
        let got: Vec<(Vec<(String, String)>, f64)> = points
            .iter()
            .map(|p| (attrs(p), p["asDouble"].as_f64().unwrap()))
            .collect();
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            got,
            [
                (
                    vec![
                        kv("hw.id", "package-0"),
                        kv("hw.type", "cpu"),
                        kv("hw.name", "package-0")
                    ],
                    200.0
                ),
                (
                    vec![
                        kv("hw.id", "gpu-0"),
                        kv("hw.type", "gpu"),
                        kv("hw.name", "NVIDIA H100")
                    ],
                    100.0
                ),
            ]
        );
        let host = metric(&doc, "hw.host.energy");
        assert_eq!(host["unit"], "J");
        assert_eq!(host["sum"]["isMonotonic"], true);
        let p = &host["sum"]["dataPoints"][0];
        assert_eq!(attrs(p), [kv("hw.id", "host")]);
        assert_eq!(p["asDouble"], 300.0);
        assert_eq!(p["startTimeUnixNano"], "1000000000000");
        assert_eq!(p["timeUnixNano"], "1010000000000");
        // Power: a gauge per component and for the host, W, from the last interval.
        let pw = metric(&doc, "hw.power");
        assert_eq!(pw["unit"], "W");
        let w: Vec<f64> = pw["gauge"]["dataPoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["asDouble"].as_f64().unwrap())
            .collect();
        let last = st.samples().back().unwrap();
        assert_eq!(w, [last.power_w[0].unwrap(), last.power_w[2].unwrap()]);
        let hp = metric(&doc, "hw.host.power");
        assert_eq!(hp["unit"], "W");
        assert_eq!(
            hp["gauge"]["dataPoints"][0]["asDouble"].as_f64().unwrap(),
            w[0] + w[1]
        );
        // The agent's own names are still there, with every domain.
        let own = metric(&doc, "wattprint.energy");
        assert_eq!(own["sum"]["dataPoints"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn spans_are_measured_unless_a_counted_domain_is_a_model() {
        assert_eq!(span_method(&four_domain_state()), "measured");
        let meter = wattprint_sensors::Meter::start(
            vec![Box::new(wattprint_sensors::fake::FakeSensor::new(
                wattprint_sensors::SensorInfo {
                    source: "fake".into(),
                    domains: vec![wattprint_sensors::fake::domain(
                        "cpu-model",
                        wattprint_core::DomainKind::CpuModel,
                        wattprint_core::Method::Model,
                        true,
                    )],
                    cadence: wattprint_sensors::ReadCadence::Poll { preferred_s: 0.1 },
                    setup: "none".into(),
                },
                |_t, out| {
                    out[0] = wattprint_sensors::RawReading::Power { watts: 5.0 };
                    Ok(())
                },
            ))],
            Default::default(),
        );
        let st = AgentState::new(
            meter,
            0.0,
            0.0,
            crate::CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
                intensity_g_per_kwh: Some(1.0),
                ..Default::default()
            })
            .unwrap(),
            Default::default(),
        );
        assert_eq!(span_method(&st), "estimated");
    }

    #[test]
    fn traces_endpoints_default_to_v1_traces() {
        assert_eq!(
            parse_traces_endpoint("http://tempo:4318").unwrap(),
            "http://tempo:4318/v1/traces"
        );
        assert_eq!(
            parse_traces_endpoint("https://cloud.langfuse.com/api/public/otel/v1/traces").unwrap(),
            "https://cloud.langfuse.com/api/public/otel/v1/traces"
        );
        let e = parse_traces_endpoint("tempo:4318").unwrap_err();
        assert!(
            e.starts_with("--otlp-traces-endpoint") && e.contains("/v1/traces"),
            "{e}"
        );
    }
}
