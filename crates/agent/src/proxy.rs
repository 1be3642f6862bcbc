//! The OpenAI-compatible metering proxy (`wattprint agent --proxy LISTEN=UPSTREAM`): it
//! forwards `/v1/chat/completions`, `/v1/completions` and `/v1/embeddings` to an engine and
//! makes each request an attribution span, with no change to the client but its base URL.
//!
//! - Answers are passed through frame by frame as the engine sends them: streams (SSE) are
//!   never buffered, and a client that reads slowly slows the engine's connection down
//!   (hyper polls the engine's body only when the client's side can take more).
//! - Each request's span has its timing, the `model` of the request, the tokens of the
//!   answer's `usage` (`completion_tokens`; `total_tokens` for embeddings) or, without
//!   usage, the count of streamed chunks carrying content, and labels: the caller's
//!   (`x-wattprint-labels: k=v,k=v`), the task of a `/t/{task}/v1/...` path, the endpoint,
//!   the outcome and where the tokens come from.
//! - The answer carries `x-wattprint-request-id`; its settled energy and carbon are at
//!   `GET /v1/requests/{id}` on the agent's API.
//!
//! Memory per request is bounded: the request body ([`MAX_REQUEST_BYTES`]), the tail of a
//! JSON answer kept to read its usage ([`JSON_TAIL_BYTES`]) and one partial SSE line
//! ([`MAX_SSE_LINE_BYTES`]).

use crate::client::HttpUrl;
use crate::state::SpanReport;
use crate::{lock, Shared};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use http_body::Frame;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Largest request body forwarded, bytes (a 128k-token prompt is about 0.5 MB of JSON;
/// images in base64 make it larger: 32 MiB).
pub const MAX_REQUEST_BYTES: usize = 32 << 20;
/// Tail of a non-streamed JSON answer kept to read its `usage`, bytes (`usage` closes the
/// OpenAI answer; embeddings answers may be megabytes before it).
pub const JSON_TAIL_BYTES: usize = 64 * 1024;
/// Longest SSE line parsed, bytes (one chunk of a stream is a few hundred bytes).
pub const MAX_SSE_LINE_BYTES: usize = 1 << 20;
/// Time allowed for the engine's answer head, s (a long non-streamed completion sends
/// nothing until it is done: 10 minutes).
pub const UPSTREAM_HEAD_TIMEOUT_S: f64 = 600.0;
/// The header carrying the caller's labels.
pub const LABELS_HEADER: &str = "x-wattprint-labels";
/// The answer header carrying the request id.
pub const ID_HEADER: &str = "x-wattprint-request-id";

/// `--proxy LISTEN=UPSTREAM`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub upstream: HttpUrl,
}

/// Parse `LISTEN=UPSTREAM`, e.g. `127.0.0.1:8080=http://127.0.0.1:8000`.
pub fn parse_spec(spec: &str) -> Result<ProxyConfig, String> {
    let (l, u) = spec.split_once('=').ok_or_else(|| {
        format!("--proxy {spec:?}: give LISTEN=UPSTREAM, e.g. 127.0.0.1:8080=http://127.0.0.1:8000")
    })?;
    let listen = l.trim().parse().map_err(|_| {
        format!("--proxy {spec:?}: LISTEN must be HOST:PORT with a numeric address, e.g. 127.0.0.1:8080")
    })?;
    let upstream = HttpUrl::parse(u.trim()).map_err(|e| format!("--proxy: UPSTREAM {e}"))?;
    if upstream.path_and_query != "/" {
        return Err(format!(
            "--proxy {spec:?}: UPSTREAM is the engine's base URL without a path (the client's /v1/... path is appended)"
        ));
    }
    Ok(ProxyConfig { listen, upstream })
}

/// What the proxy counted (exported in `/metrics` and `/v1/requests/summary`).
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Requests forwarded to the engine.
    pub forwarded: AtomicU64,
    /// Requests refused before the engine (bad path, labels, body).
    pub refused: AtomicU64,
    /// Requests the engine could not be reached for, or whose answer head did not come.
    pub upstream_errors: AtomicU64,
    /// Answers the engine broke off mid-body.
    pub upstream_resets: AtomicU64,
    /// Answers the client went away from before their end.
    pub client_gone: AtomicU64,
    /// Spans the ledger refused (their time already settled).
    pub spans_refused: AtomicU64,
}

impl ProxyStats {
    /// Append the proxy's counters to an OpenMetrics exposition (before its `# EOF`).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# TYPE wattprint_proxy_requests counter");
        let _ = writeln!(
            out,
            "# HELP wattprint_proxy_requests Requests through the metering proxy, by outcome."
        );
        for (outcome, a) in [
            ("forwarded", &self.forwarded),
            ("refused", &self.refused),
            ("upstream_error", &self.upstream_errors),
            ("upstream_reset", &self.upstream_resets),
            ("client_gone", &self.client_gone),
            ("span_refused", &self.spans_refused),
        ] {
            let _ = writeln!(
                out,
                "wattprint_proxy_requests_total{{outcome=\"{outcome}\"}} {}",
                a.load(Ordering::Relaxed)
            );
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "forwarded": g(&self.forwarded),
            "refused": g(&self.refused),
            "upstream_errors": g(&self.upstream_errors),
            "upstream_resets": g(&self.upstream_resets),
            "client_gone": g(&self.client_gone),
            "spans_refused": g(&self.spans_refused),
        })
    }
}

#[derive(Clone)]
pub struct ProxyCtx {
    pub shared: Shared,
    pub upstream: HttpUrl,
    /// The address the proxy listens on (the `Host` check compares with it).
    pub listen: SocketAddr,
    pub body_timeout: Duration,
    pub stats: Arc<ProxyStats>,
}

/// The proxy's router: every path goes through [`forward`].
pub fn router(ctx: ProxyCtx) -> Router {
    Router::new().fallback(forward).with_state(ctx)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// The endpoints that become spans.
const METERED: [&str; 3] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

/// Parse `k=v,k=v` (keys and values trimmed; an empty header is no label).
pub fn parse_labels(v: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = part.split_once('=').ok_or_else(|| {
            format!("{LABELS_HEADER}: {part:?} is not k=v: send k=v pairs separated by commas")
        })?;
        let (k, val) = (k.trim(), val.trim());
        if k.is_empty() || k.chars().any(|c| c.is_control()) || val.chars().any(|c| c.is_control())
        {
            return Err(format!(
                "{LABELS_HEADER}: {part:?}: keys must be non-empty, keys and values printable"
            ));
        }
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// `(task, path)` of `/t/{task}/v1/...`, or `(None, path)`.
fn split_task(path: &str) -> Result<(Option<&str>, &str), String> {
    let Some(rest) = path.strip_prefix("/t/") else {
        return Ok((None, path));
    };
    let task = rest.split('/').next().unwrap_or(rest);
    if task.is_empty()
        || task.len() > crate::labels::MAX_LABEL_LEN
        || !task
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(format!(
            "task {:?} in /t/{{task}}/v1/...: use 1 to {} letters, digits, '-', '_', '.', ':'",
            wattprint_core::text::printable(&task.chars().take(80).collect::<String>()),
            crate::labels::MAX_LABEL_LEN
        ));
    }
    // The path starts right after `/t/{task}`.
    Ok((Some(task), &path[3 + task.len()..]))
}

/// Hop-by-hop headers (RFC 9110 7.6.1) and ours: never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | LABELS_HEADER
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if !hop_by_hop(k) {
            to.append(k.clone(), v.clone());
        }
    }
}

/// Refuse what only a browser would send (as the API does: `api::host_allowed`).
fn browser_refusal(h: &HeaderMap, listen: SocketAddr) -> Option<Response> {
    let text = |n: header::HeaderName| h.get(n).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if let Some(host) = text(header::HOST) {
        if !crate::api::host_allowed(host, listen) {
            return Some(error(
                StatusCode::FORBIDDEN,
                format!("Host is not this proxy ({listen}): a foreign Host is how DNS rebinding reaches a loopback service"),
            ));
        }
    }
    if h.contains_key(header::ORIGIN)
        || h.get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|s| s != "none" && s != "same-origin")
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: call the proxy from a program, not a web page",
        ));
    }
    None
}

#[derive(serde::Deserialize, Default)]
struct Peek {
    #[serde(default)]
    model: Option<String>,
}

async fn forward(State(ctx): State<ProxyCtx>, req: Request) -> Response {
    if let Some(r) = browser_refusal(req.headers(), ctx.listen) {
        ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
        return r;
    }
    let refuse = |status, msg: String| {
        ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
        error(status, msg)
    };
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let (task, endpoint) = match split_task(&path) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let metered = METERED.contains(&endpoint);
    let passthrough = endpoint == "/v1/models" && req.method() == axum::http::Method::GET;
    let post = req.method() == axum::http::Method::POST;
    if !(passthrough || (metered && post)) {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "the proxy forwards POST {} (optionally under /t/{{task}}) and GET /v1/models, not {} {}: see docs/serving.md",
                METERED.join(", "),
                req.method(),
                wattprint_core::text::printable(&path.chars().take(80).collect::<String>())
            ),
        );
    }
    let mut labels = match req.headers().get(LABELS_HEADER).map(|v| v.to_str()) {
        None => BTreeMap::new(),
        Some(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("{LABELS_HEADER} is not ASCII text: send k=v,k=v"),
            )
        }
        Some(Ok(v)) => match parse_labels(v) {
            Ok(l) => l,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
        },
    };
    let (parts, body) = req.into_parts();
    let body = match read_bounded(body, ctx.body_timeout).await {
        Ok(b) => b,
        Err((status, e)) => return refuse(status, e),
    };
    let start_unix_s = crate::unix_now_s();
    // Settlement waits for this request from now on; the guard lets go if it never gets
    // an answer.
    let open = metered.then(|| {
        let mut st = lock(&ctx.shared);
        let id = st.next_request_id();
        st.begin_request(id, start_unix_s);
        OpenRequest {
            id,
            shared: Arc::clone(&ctx.shared),
            armed: true,
        }
    });
    let model = if metered {
        serde_json::from_slice::<Peek>(&body)
            .unwrap_or_default()
            .model
            .unwrap_or_else(|| "unknown".into())
    } else {
        String::new()
    };
    // Connect and send, bounded in time until the answer's head.
    let target = ctx.upstream.with_path(&format!("{endpoint}{query}"));
    let send = async {
        let mut sender = crate::client::connect::<http_body_util::Full<Bytes>>(&target).await?;
        let mut up = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(target.path_and_query.as_str());
        if let Some(h) = up.headers_mut() {
            copy_headers(&parts.headers, h);
            if let Ok(v) = HeaderValue::from_str(&target.authority()) {
                h.insert(header::HOST, v);
            }
        }
        let up = up
            .body(http_body_util::Full::new(body))
            .map_err(|e| format!("building the request: {e}"))?;
        sender
            .send_request(up)
            .await
            .map_err(|e| format!("{} {target}: {e}", parts.method))
    };
    let head = tokio::time::timeout(Duration::from_secs_f64(UPSTREAM_HEAD_TIMEOUT_S), send).await;
    let resp = match head {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            ctx.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_GATEWAY, format!("the engine: {e}"));
        }
        Err(_) => {
            ctx.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the engine sent no answer within {UPSTREAM_HEAD_TIMEOUT_S} s"),
            );
        }
    };
    ctx.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let (up_parts, up_body) = resp.into_parts();
    let mut out = Response::builder().status(up_parts.status);
    if let Some(h) = out.headers_mut() {
        copy_headers(&up_parts.headers, h);
    }
    let Some(open) = open else {
        return out
            .body(Body::new(up_body))
            .unwrap_or_else(|e| error(StatusCode::BAD_GATEWAY, e.to_string()));
    };
    // From here the span's end (MeterBody::finish) closes the request.
    let id = open.disarm();
    if let Some(h) = out.headers_mut() {
        h.insert(ID_HEADER, HeaderValue::from(id));
    }
    let sse = up_parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    labels.insert("model".into(), model);
    labels.insert(
        "endpoint".into(),
        endpoint.trim_start_matches("/v1/").into(),
    );
    if let Some(t) = task {
        labels.insert("task".into(), t.into());
    }
    if !up_parts.status.is_success() {
        labels.insert("status".into(), up_parts.status.as_u16().to_string());
    }
    let remaining_bytes = up_parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let meter = MeterBody {
        inner: up_body,
        remaining_bytes,
        reader: if sse {
            Reader::Sse(SseReader::default())
        } else {
            Reader::Json(Vec::new())
        },
        embeddings: endpoint == "/v1/embeddings",
        span: Some(PendingSpan {
            id,
            start_unix_s,
            labels,
            shared: Arc::clone(&ctx.shared),
            stats: Arc::clone(&ctx.stats),
        }),
    };
    out.body(Body::new(meter))
        .unwrap_or_else(|e| error(StatusCode::BAD_GATEWAY, e.to_string()))
}

async fn read_bounded(body: Body, timeout: Duration) -> Result<Bytes, (StatusCode, String)> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BYTES);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s: send it at once",
                timeout.as_secs_f64()
            ),
        )),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {MAX_REQUEST_BYTES} bytes"),
                ))
            } else {
                Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}")))
            }
        }
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// An open request without an answer yet: dropped on an early return, it stops holding
/// settlement back.
struct OpenRequest {
    id: u64,
    shared: Shared,
    armed: bool,
}

impl OpenRequest {
    /// The answer came: its body's end closes the request.
    fn disarm(mut self) -> u64 {
        self.armed = false;
        self.id
    }
}

impl Drop for OpenRequest {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.shared).abandon_request(self.id);
        }
    }
}

/// Tokens read from an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tokens {
    /// From the answer's `usage`.
    pub usage: Option<u64>,
    /// Streamed chunks that carried content.
    pub chunks: u64,
}

/// The tokens of an OpenAI `usage` object: `completion_tokens`, or `total_tokens` for
/// embeddings (which have no completion).
fn usage_tokens(v: &serde_json::Value, embeddings: bool) -> Option<u64> {
    let u = v.get("usage")?;
    let key = if embeddings {
        "total_tokens"
    } else {
        "completion_tokens"
    };
    u.get(key)?.as_u64()
}

/// Whether a streamed chunk carries content (a token or more): some choice has non-empty
/// `delta.content`, `delta.reasoning_content`, `delta.tool_calls` or `text`.
fn has_content(v: &serde_json::Value) -> bool {
    let Some(choices) = v.get("choices").and_then(|c| c.as_array()) else {
        return false;
    };
    choices.iter().any(|c| {
        let nonempty = |x: Option<&serde_json::Value>| match x {
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            _ => false,
        };
        let d = c.get("delta");
        nonempty(c.get("text"))
            || nonempty(d.and_then(|d| d.get("content")))
            || nonempty(d.and_then(|d| d.get("reasoning_content")))
            || nonempty(d.and_then(|d| d.get("tool_calls")))
    })
}

/// Reads SSE lines as they pass, keeping one partial line at most.
#[derive(Debug, Default)]
pub struct SseReader {
    line: Vec<u8>,
    /// The current line grew past [`MAX_SSE_LINE_BYTES`]: skipped to its end.
    skipping: bool,
    pub tokens: Tokens,
}

impl SseReader {
    pub fn feed(&mut self, data: &[u8], embeddings: bool) {
        for chunk in data.split_inclusive(|&b| b == b'\n') {
            let complete = chunk.ends_with(b"\n");
            if !self.skipping {
                if self.line.len() + chunk.len() > MAX_SSE_LINE_BYTES {
                    self.skipping = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            if complete {
                if !self.skipping {
                    let line = std::mem::take(&mut self.line);
                    self.event_line(&line, embeddings);
                }
                self.skipping = false;
                self.line.clear();
            }
        }
    }

    fn event_line(&mut self, line: &[u8], embeddings: bool) {
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload = payload.trim_ascii();
        if payload == b"[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return;
        };
        if let Some(t) = usage_tokens(&v, embeddings) {
            self.tokens.usage = Some(t);
        }
        if has_content(&v) {
            self.tokens.chunks += 1;
        }
    }
}

/// The `usage` of a JSON answer from its tail.
pub fn json_tail_tokens(tail: &[u8], embeddings: bool) -> Option<u64> {
    // Whole answer kept: parse it.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(tail) {
        return usage_tokens(&v, embeddings);
    }
    // Otherwise the last `"usage"` object of the tail.
    let key = b"\"usage\"";
    let at = tail.windows(key.len()).rposition(|w| w == key)?;
    let rest = &tail[at + key.len()..];
    let open = rest.iter().position(|&b| b == b'{')?;
    let mut de =
        serde_json::Deserializer::from_slice(&rest[open..]).into_iter::<serde_json::Value>();
    let usage = de.next()?.ok()?;
    usage_tokens(&serde_json::json!({ "usage": usage }), embeddings)
}

enum Reader {
    Sse(SseReader),
    /// The tail of the answer, at most [`JSON_TAIL_BYTES`].
    Json(Vec<u8>),
}

struct PendingSpan {
    id: u64,
    start_unix_s: f64,
    labels: BTreeMap<String, String>,
    shared: Shared,
    stats: Arc<ProxyStats>,
}

/// How a proxied answer ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Complete,
    UpstreamReset,
    ClientGone,
}

/// The engine's answer body, passed through unchanged, read on the way.
struct MeterBody {
    inner: hyper::body::Incoming,
    /// Bytes of a body of known length (`Content-Length`) not yet passed on.
    remaining_bytes: Option<u64>,
    reader: Reader,
    embeddings: bool,
    span: Option<PendingSpan>,
}

impl MeterBody {
    /// Whether the whole body was passed on: its `Content-Length` reached, or hyper says so.
    fn ended(&self) -> bool {
        self.remaining_bytes == Some(0) || http_body::Body::is_end_stream(&self.inner)
    }

    fn finish(&mut self, outcome: Outcome) {
        let Some(mut p) = self.span.take() else {
            return;
        };
        let tokens = match &self.reader {
            Reader::Sse(r) => r.tokens,
            Reader::Json(tail) => Tokens {
                usage: json_tail_tokens(tail, self.embeddings),
                chunks: 0,
            },
        };
        let (n, from) = match tokens.usage {
            Some(u) => (Some(u), "usage"),
            None if tokens.chunks > 0 => (Some(tokens.chunks), "chunks"),
            None => (None, "none"),
        };
        p.labels.insert("tokens_from".into(), from.into());
        let outcome_label = match outcome {
            Outcome::Complete => "complete",
            Outcome::UpstreamReset => {
                p.stats.upstream_resets.fetch_add(1, Ordering::Relaxed);
                "upstream_reset"
            }
            Outcome::ClientGone => {
                p.stats.client_gone.fetch_add(1, Ordering::Relaxed);
                "client_gone"
            }
        };
        p.labels.insert("outcome".into(), outcome_label.into());
        let report = SpanReport {
            start_unix_s: p.start_unix_s,
            end_unix_s: crate::unix_now_s().max(p.start_unix_s),
            tokens: n,
            labels: std::mem::take(&mut p.labels),
        };
        if lock(&p.shared).add_identified_span(p.id, report).is_err() {
            p.stats.spans_refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl http_body::Body for MeterBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(n) = &mut this.remaining_bytes {
                        *n = n.saturating_sub(data.len() as u64);
                    }
                    match &mut this.reader {
                        Reader::Sse(s) => s.feed(data, this.embeddings),
                        Reader::Json(tail) => {
                            tail.extend_from_slice(data);
                            if tail.len() > JSON_TAIL_BYTES {
                                let cut = tail.len() - JSON_TAIL_BYTES;
                                tail.drain(..cut);
                            }
                        }
                    }
                }
                // A body of known length ends with its last frame: hyper's server then stops
                // polling (no `Ready(None)` follows) and drops the body.
                if this.ended() {
                    this.finish(Outcome::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Outcome::UpstreamReset),
            Poll::Ready(None) => this.finish(Outcome::Complete),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeterBody {
    fn drop(&mut self) {
        // Not ended: the client went away (or the connection was closed under it). A body
        // whose end was read but not yet reported (an empty body of known length) is complete.
        let outcome = if self.ended() {
            Outcome::Complete
        } else {
            Outcome::ClientGone
        };
        self.finish(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_labels_parse_and_errors_say_what_to_send() {
        let p = parse_spec("127.0.0.1:8080=http://127.0.0.1:8000").unwrap();
        assert_eq!(p.listen.port(), 8080);
        assert_eq!(p.upstream.port, 8000);
        assert!(parse_spec("8080=http://x:1")
            .unwrap_err()
            .contains("HOST:PORT"));
        assert!(parse_spec("127.0.0.1:1=http://x:1/v1")
            .unwrap_err()
            .contains("base URL"));
        let l = parse_labels(" team = search ,tenant=a").unwrap();
        assert_eq!(l["team"], "search");
        assert_eq!(l["tenant"], "a");
        assert!(parse_labels("x").unwrap_err().contains("k=v"));
        assert!(parse_labels("").unwrap().is_empty());
    }

    #[test]
    fn task_prefixes_split_and_bad_tasks_are_refused() {
        assert_eq!(
            split_task("/t/task-42/v1/chat/completions").unwrap(),
            (Some("task-42"), "/v1/chat/completions")
        );
        assert_eq!(
            split_task("/v1/completions").unwrap(),
            (None, "/v1/completions")
        );
        assert!(split_task("/t//v1/x").is_err());
        assert!(split_task("/t/a b/v1/x").is_err());
    }

    #[test]
    fn sse_usage_wins_and_content_chunks_are_counted_across_frame_boundaries() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        let mut r = SseReader::default();
        // Fed in 7-byte frames: lines cut anywhere.
        for c in stream.as_bytes().chunks(7) {
            r.feed(c, false);
        }
        assert_eq!(
            r.tokens,
            Tokens {
                usage: None,
                chunks: 2
            }
        );
        r.feed(
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
            false,
        );
        assert_eq!(
            r.tokens,
            Tokens {
                usage: Some(3),
                chunks: 2
            }
        );
    }

    #[test]
    fn an_overlong_sse_line_is_skipped_not_kept() {
        let mut r = SseReader::default();
        let big = vec![b'x'; MAX_SSE_LINE_BYTES + 10];
        r.feed(b"data: ", false);
        r.feed(&big, false);
        assert!(r.line.len() <= MAX_SSE_LINE_BYTES);
        r.feed(b"\ndata: {\"choices\":[{\"text\":\"a\"}]}\n", false);
        assert_eq!(r.tokens.chunks, 1);
    }

    #[test]
    fn json_usage_is_read_from_the_whole_answer_or_its_tail() {
        let whole = br#"{"id":"x","choices":[{"text":"hi"}],"usage":{"prompt_tokens":4,"completion_tokens":9,"total_tokens":13}}"#;
        assert_eq!(json_tail_tokens(whole, false), Some(9));
        assert_eq!(json_tail_tokens(whole, true), Some(13));
        // A tail cut inside the embedding vectors still has the usage.
        let tail = br#".25, 0.5]}], "usage": {"prompt_tokens": 7, "total_tokens": 7}}"#;
        assert_eq!(json_tail_tokens(tail, true), Some(7));
        assert_eq!(json_tail_tokens(b"{\"error\":\"x\"}", false), None);
    }
}
