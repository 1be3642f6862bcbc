//! The HTTP API (see `docs/agent-api.md`). Handlers parse, lock the state briefly, answer.
//! No endpoint reads a file named by a client; bodies are bounded; every error is JSON
//! `{"error": "..."}` saying what to fix.

use crate::state::{SpanReport, StateError};
use crate::{lock, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Spans accepted in one batch at most.
pub const MAX_SPANS_PER_BATCH: usize = 10_000;

#[derive(Clone)]
pub struct Ctx {
    pub shared: Shared,
    pub token: Option<String>,
    pub max_body_bytes: usize,
    /// A body not received within this long is refused (408).
    pub body_timeout: Duration,
    pub started_unix_s: f64,
    pub interval_s: f64,
    /// The address actually bound (the `Host` check compares with it).
    pub listen: SocketAddr,
    /// Open connections (reported by `/healthz`).
    pub connections: crate::conn::Registry,
    /// Scraped engines (`--scrape`).
    pub engines: crate::scrape::Engines,
    /// The metering proxy's counts, when it runs (`--proxy`).
    pub proxy: Option<std::sync::Arc<crate::proxy::ProxyStats>>,
    /// Traces received at `POST /v1/traces`.
    pub traces: std::sync::Arc<std::sync::Mutex<crate::traces::TraceTable>>,
}

pub fn router(ctx: Ctx) -> Router {
    let limit = ctx.max_body_bytes;
    Router::new()
        .route("/", get(crate::dashboard::page))
        .route("/assets/uPlot.iife.min.js", get(crate::dashboard::uplot_js))
        .route("/assets/uPlot.min.css", get(crate::dashboard::uplot_css))
        .route("/metrics", get(metrics))
        .route("/v1/windows", post(begin_window))
        .route("/v1/windows/{id}/end", post(end_window))
        .route("/v1/spans", post(spans))
        .route("/v1/requests/summary", get(summary))
        .route("/v1/requests/{id}", get(request_by_id))
        .route("/v1/live", get(live))
        .route("/v1/workloads", get(workloads))
        .route("/v1/engines", get(engines))
        .route("/v1/traces", post(post_traces))
        .route("/v1/traces/{trace_id}", get(get_trace))
        .layer(middleware::from_fn_with_state(ctx.clone(), auth))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(ctx.clone(), read_body))
        .layer(middleware::from_fn_with_state(ctx.clone(), browser_guard))
        .with_state(ctx)
}

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {} {}: see docs/agent-api.md",
            req.method(),
            printable(req.uri().path())
        ),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}: see docs/agent-api.md",
            req.method(),
            printable(req.uri().path())
        ),
    )
}

/// At most 80 characters of client text, control characters escaped, for error messages.
fn printable(s: &str) -> String {
    let head: String = s.chars().take(80).collect();
    wattprint_core::text::printable(&head).into_owned()
}

/// `host[:port]` split; IPv6 literals in brackets keep them.
fn split_host_port(v: &str) -> (&str, Option<u16>) {
    if let Some(rest) = v.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
        return (v, None);
    }
    match v.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (v, None),
        },
        None => (v, None),
    }
}

/// Whether `Host` names this loopback agent: `localhost` or a loopback address, and the
/// listening port when a port is given (DNS rebinding sends the attacker's name).
pub fn host_allowed(host: &str, listen: SocketAddr) -> bool {
    if !listen.ip().is_loopback() {
        return true; // off loopback the token is mandatory: a browser does not hold it
    }
    let (name, port) = split_host_port(host.trim());
    let local = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    local && port.is_none_or(|p| p == listen.port())
}

/// Refuse what only a browser would send (see `docs/security.md`): a `Host` that is not this
/// agent (DNS rebinding), a cross-origin request (`Origin` or `Sec-Fetch-Site`), a write
/// whose body is not declared `application/json` (HTML forms and `text/plain` need no CORS
/// preflight).
async fn browser_guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let text = |name: header::HeaderName| h.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = text(header::HOST);
    if let Some(host) = host {
        if !host_allowed(host, ctx.listen) {
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {:?} is not this agent ({}): use http://{}/ (a foreign Host is how DNS rebinding reaches a loopback service)",
                    printable(host),
                    ctx.listen,
                    ctx.listen
                ),
            );
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        let same = origin
            .split_once("://")
            .is_some_and(|(_, o)| host.is_some_and(|h| o.eq_ignore_ascii_case(h)));
        if !same {
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin request from {:?} refused: the agent serves no browser page but its own dashboard",
                    printable(origin)
                ),
            );
        }
    }
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return error(
                StatusCode::FORBIDDEN,
                format!("{} request refused (Sec-Fetch-Site: {}): call the agent from a program, not a web page", req.method(), printable(site)),
            );
        }
    }
    if req.method() == axum::http::Method::POST {
        // Neither type may be sent cross-origin without a CORS preflight, which the agent
        // never grants; protobuf only where OTLP sends it.
        let mime = text(header::CONTENT_TYPE)
            .and_then(|ct| ct.split(';').next())
            .map(str::trim);
        let ok = mime.is_some_and(|m| {
            m.eq_ignore_ascii_case("application/json")
                || (m.eq_ignore_ascii_case("application/x-protobuf")
                    && req.uri().path() == "/v1/traces")
        });
        if !ok {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "POST needs `Content-Type: application/json` (even with an empty body; OTLP traces may also be application/x-protobuf)",
            );
        }
    }
    next.run(req).await
}

/// Receive the whole body within the body timeout and size cap, so every refusal is JSON
/// and a client trickling its body holds nothing for long.
async fn read_body(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt;
    let (parts, mut body) = req.into_parts();
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body larger than {} bytes: send less per request",
                ctx.max_body_bytes
            ),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > ctx.max_body_bytes as u64) {
        return too_large();
    }
    let collect = async {
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > ctx.max_body_bytes {
                    return Ok(None);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok::<_, String>(Some(buf))
    };
    match tokio::time::timeout(ctx.body_timeout, collect).await {
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s: send it at once",
                ctx.body_timeout.as_secs_f64()
            ),
        ),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
        Ok(Ok(None)) => too_large(),
        Ok(Ok(Some(buf))) => next.run(Request::from_parts(parts, Body::from(buf))).await,
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// Compare without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(ctx): State<Ctx>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(token) = &ctx.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.trim().as_bytes(), token.trim().as_bytes()) {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token: send `Authorization: Bearer <token from --token-file>`",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(req).await
}

/// Parse a JSON body; the error is the 400 message.
fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes, what: &str) -> Result<T, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("{what}: invalid JSON body: {e} (see docs/agent-api.md)"))
}

async fn healthz(State(ctx): State<Ctx>) -> Response {
    let st = lock(&ctx.shared);
    Json(json!({
        "status": "ok",
        "started_unix_s": ctx.started_unix_s,
        "domains": st.domains().len(),
        "interval_s": ctx.interval_s,
        "open_connections": ctx.connections.open(),
        "resumed": st.last_resume(),
    }))
    .into_response()
}

async fn metrics(State(ctx): State<Ctx>) -> Response {
    let (mut body, g_per_j) = {
        let st = lock(&ctx.shared);
        (crate::metrics::render(&st), grams_per_joule(&st))
    };
    let engines = crate::scrape::lock(&ctx.engines);
    if !engines.is_empty() {
        let eof = body.rfind("# EOF").unwrap_or(body.len());
        body.truncate(eof);
        crate::scrape::render(&mut body, &engines, g_per_j);
        body.push_str("# EOF\n");
    }
    if let Some(p) = &ctx.proxy {
        let eof = body.rfind("# EOF").unwrap_or(body.len());
        body.truncate(eof);
        p.render(&mut body);
        body.push_str("# EOF\n");
    }
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeginBody {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

async fn begin_window(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let b: BeginBody = match parse(&body, "POST /v1/windows {\"name\": .., \"labels\": {..}}") {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    if b.name.is_empty() || b.name.len() > crate::labels::MAX_LABEL_LEN {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "window name must be 1 to {} bytes long",
                crate::labels::MAX_LABEL_LEN
            ),
        );
    }
    // Names and labels end up in /metrics, logs, reports and terminals: no control
    // character (ESC and so every ANSI sequence) enters.
    let control = |s: &str| s.chars().any(char::is_control);
    let bad = if control(&b.name) {
        Some(format!(
            "window name {:?} holds control characters: use printable text",
            wattprint_core::text::printable(&b.name)
        ))
    } else {
        b.labels
            .iter()
            .find(|(k, v)| control(k) || control(v))
            .map(|(k, _)| {
                format!(
                    "window label {:?} holds control characters: use printable text",
                    wattprint_core::text::printable(k)
                )
            })
    };
    if let Some(m) = bad {
        return error(StatusCode::BAD_REQUEST, m);
    }
    // Beginning a window reads every sensor: off the runtime's thread (see `off_runtime`).
    match off_runtime(&ctx, move |st| st.begin_window(&b.name, b.labels)).await {
        Ok(Ok(id)) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Ok(Err(e)) => state_error(e),
        Err(r) => r,
    }
}

/// Runs `f` on the state in tokio's blocking pool: what reads sensors (window boundaries)
/// never runs on the runtime's single thread, which keeps serving every other request.
async fn off_runtime<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce(&mut crate::state::AgentState) -> T + Send + 'static,
) -> Result<T, Response> {
    let shared = std::sync::Arc::clone(&ctx.shared);
    tokio::task::spawn_blocking(move || f(&mut lock(&shared)))
        .await
        .map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the window operation failed: {e}"),
            )
        })
}

fn state_error(e: StateError) -> Response {
    let status = match e {
        StateError::NoWindow(_) => StatusCode::NOT_FOUND,
        StateError::TooManyWindows(_) => StatusCode::TOO_MANY_REQUESTS,
        StateError::BadInput(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndBody {
    #[serde(default)]
    inferences: Option<f64>,
    #[serde(default)]
    tokens: Option<f64>,
}

async fn end_window(State(ctx): State<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("window id {id:?} is not a number: use the id POST /v1/windows returned"),
        );
    };
    let b: EndBody = if body.iter().all(|c| c.is_ascii_whitespace()) {
        EndBody::default()
    } else {
        match parse(
            &body,
            "POST /v1/windows/{id}/end {\"inferences\": N, \"tokens\": N}",
        ) {
            Ok(b) => b,
            Err(m) => return error(StatusCode::BAD_REQUEST, m),
        }
    };
    match off_runtime(&ctx, move |st| st.end_window(id, b.inferences, b.tokens)).await {
        Ok(Ok(r)) => Json(r).into_response(),
        Ok(Err(e)) => state_error(e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SpansBody {
    List(Vec<SpanReport>),
    Wrapped { spans: Vec<SpanReport> },
}

async fn spans(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let b: SpansBody = match parse(
        &body,
        "POST /v1/spans [{\"start_unix_s\": .., \"end_unix_s\": .., \"tokens\": N, \"labels\": {..}}]",
    ) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let list = match b {
        SpansBody::List(l) | SpansBody::Wrapped { spans: l } => l,
    };
    if list.len() > MAX_SPANS_PER_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} spans in one batch: send at most {MAX_SPANS_PER_BATCH}",
                list.len()
            ),
        );
    }
    let n = list.len();
    let mut st = lock(&ctx.shared);
    let before = st.losses();
    let batch = st.add_spans_checked(list);
    let after = st.losses();
    Json(json!({
        "accepted": batch.accepted,
        "errors": batch.refusals,
        "refused_invalid": after.spans_invalid - before.spans_invalid,
        "late": after.spans_late - before.spans_late,
        "dropped_oldest": after.spans_dropped - before.spans_dropped,
        "received": n,
    }))
    .into_response()
}

/// The summary document (also used by the dashboard).
pub fn summary_json(st: &crate::AgentState) -> Value {
    let labels: Vec<Value> = st
        .label_totals()
        .map(|(l, t)| {
            json!({
                "labels": l, "requests": t.requests, "tokens": t.tokens,
                "energy_j": t.energy_j, "carbon_g": t.carbon_g,
            })
        })
        .collect();
    let summary = st.summary();
    let crate::state::RangeFactors {
        low: lo_k,
        high: hi_k,
    } = st.energy_range_factors();
    json!({
        "schema": "wattprint.requests/v1",
        "ranges": {
            "low_factor": lo_k, "high_factor": hi_k,
            "attributed_j_low": summary.attributed_j * lo_k,
            "attributed_j_high": summary.attributed_j * hi_k,
            "attributed_g_low": summary.attributed_g * lo_k,
            "attributed_g_high": summary.attributed_g * hi_k,
            "basis": "each counted domain's range since the agent started (the model's span, RAPL's and NVML's accuracy); every per-request figure scales by low_factor and high_factor",
        },
        "summary": summary,
        "by_labels": labels,
        "idle_j": st.idle_j(),
        "pending_spans": st.pending_spans(),
        "spans_received": st.spans_received(),
        "settled_until_unix_s": st.settled_until_unix_s(),
        "losses": st.losses(),
        "carbon": {
            "zone": st.carbon().zone, "intensity_g_per_kwh": st.carbon().intensity_g_per_kwh,
            "source": st.carbon().source, "fallback": st.carbon().fallback, "pue": st.pue(),
        },
        "note": "summary covers the most recent attributed requests (see losses.recent_rotated); by_labels and /metrics counters cover every request since the agent started",
    })
}

fn lock_traces(
    t: &std::sync::Mutex<crate::traces::TraceTable>,
) -> std::sync::MutexGuard<'_, crate::traces::TraceTable> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// `POST /v1/traces`: an OTLP/HTTP export (protobuf or JSON); GenAI spans become
/// attribution spans.
async fn post_traces(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "compressed OTLP bodies are not read: configure the exporter without compression",
        );
    }
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/x-protobuf"));
    let decoded = if protobuf {
        crate::traces::decode_protobuf(&body)
    } else {
        crate::traces::decode_json(&body)
    };
    let spans = match decoded {
        Ok(s) => s,
        Err(e) => {
            lock_traces(&ctx.traces).losses.exports_refused += 1;
            let status = match e {
                crate::traces::DecodeError::TooManySpans(_) => StatusCode::PAYLOAD_TOO_LARGE,
                crate::traces::DecodeError::Malformed(_) => StatusCode::BAD_REQUEST,
            };
            return error(status, e.to_string());
        }
    };
    let mut table = lock_traces(&ctx.traces);
    let r = table.ingest(spans, |report| {
        let mut st = lock(&ctx.shared);
        let id = st.next_request_id();
        st.add_identified_span(id, report)
            .map(|()| id)
            .map_err(|e| e.error)
    });
    // OTLP/HTTP: a JSON answer is what OTLP/JSON clients expect; protobuf clients read the
    // status only.
    Json(json!({ "partialSuccess": {
        "rejectedSpans": r.refused + r.attribution_refused,
        "errorMessage": r.errors.join("; "),
    }, "wattprint": r }))
    .into_response()
}

/// `GET /v1/traces/{trace_id}`: energy and carbon per span and for the trace.
async fn get_trace(State(ctx): State<Ctx>, Path(trace_id): Path<String>) -> Response {
    let id = trace_id.to_ascii_lowercase();
    let table = lock_traces(&ctx.traces);
    let st = lock(&ctx.shared);
    let doc = table.report(&id, |l| match st.request(l) {
        Some(crate::state::RequestStatus::Settled(s)) => Some((s.energy_j, s.carbon_g)),
        _ => None,
    });
    match doc {
        Some(d) => Json(d).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "trace {:?} is unknown: never received, or forgotten (the agent keeps the {} most recent traces)",
                printable(&trace_id),
                crate::traces::MAX_TRACES
            ),
        ),
    }
}

/// Operational carbon per joule at the agent's factor (intensity x PUE), g/J.
fn grams_per_joule(st: &crate::AgentState) -> f64 {
    wattprint_core::requests::grams(st.pue(), st.carbon().intensity_g_per_kwh)
}

async fn engines(State(ctx): State<Ctx>) -> Response {
    let g_per_j = grams_per_joule(&lock(&ctx.shared));
    let list: Vec<Value> = crate::scrape::lock(&ctx.engines)
        .iter()
        .map(|e| e.json(g_per_j))
        .collect();
    Json(json!({
        "schema": "wattprint.engines/v1",
        "engines": list,
        "basis": "energy of each interval between two scrapes, measured by the agent's sensors, split among the engine's models by tokens processed (prompt + output); intervals where no model moved are idle",
    }))
    .into_response()
}

async fn summary(State(ctx): State<Ctx>) -> Response {
    let mut doc = summary_json(&lock(&ctx.shared));
    if let Some(p) = &ctx.proxy {
        doc["proxy"] = p.json();
    }
    Json(doc).into_response()
}

/// `GET /v1/requests/{id}`: a request the metering proxy measured.
async fn request_by_id(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "request id {:?} is not a number: use the proxy's x-wattprint-request-id header",
                printable(&id)
            ),
        );
    };
    let st = lock(&ctx.shared);
    let k = st.energy_range_factors();
    let (lo_k, hi_k) = (k.low, k.high);
    match st.request(id) {
        Some(crate::state::RequestStatus::Settled(s)) => Json(json!({
            "id": id,
            "status": "settled",
            "start_unix_s": s.start_unix_s,
            "end_unix_s": s.end_unix_s,
            "tokens": s.tokens,
            "energy_j": s.energy_j,
            "energy_j_low": s.energy_j * lo_k,
            "energy_j_high": s.energy_j * hi_k,
            "carbon_g": s.carbon_g,
            "joules_per_token": s.tokens.filter(|t| *t > 0).map(|t| s.energy_j / t as f64),
            "labels": s.labels,
        }))
        .into_response(),
        Some(crate::state::RequestStatus::Pending {
            start_unix_s,
            end_unix_s,
        }) => Json(json!({
            "id": id,
            "status": "pending",
            "start_unix_s": start_unix_s,
            "end_unix_s": end_unix_s,
            "settled_until_unix_s": st.settled_until_unix_s(),
            "note": "the energy is settled once the agent's horizon (newest sample minus --settle-lag) passes the request's end: ask again then",
        }))
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("request {id} is unknown: still in flight (asked before its answer ended), never proxied, or rotated out of the most recent requests kept"),
        ),
    }
}

/// `GET /v1/workloads`: per-workload energy and carbon (404 when `--workloads` is off).
async fn workloads(State(ctx): State<Ctx>) -> Response {
    match lock(&ctx.shared).workloads() {
        Some(w) => Json(w.json()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "per-workload attribution is off: start the agent with --workloads",
        ),
    }
}

async fn live(State(ctx): State<Ctx>) -> Response {
    Json(crate::dashboard::live_json(&lock(&ctx.shared))).into_response()
}
