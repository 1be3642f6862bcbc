//! The HTTP API (see `docs/agent-api.md`). Handlers parse, lock the state briefly, answer.
//! No endpoint reads a file named by a client; bodies are bounded; every error is JSON
//! `{"error": "..."}` saying what to fix.

use crate::state::{SpanReport, StateError};
use crate::{lock, Shared};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Spans accepted in one batch at most.
pub const MAX_SPANS_PER_BATCH: usize = 10_000;

#[derive(Clone)]
pub struct Ctx {
    pub shared: Shared,
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub started_unix_s: f64,
    pub interval_s: f64,
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
        .route("/v1/live", get(live))
        .layer(middleware::from_fn_with_state(ctx.clone(), auth))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(ctx)
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
    }))
    .into_response()
}

async fn metrics(State(ctx): State<Ctx>) -> Response {
    let body = crate::metrics::render(&lock(&ctx.shared));
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
    let before = st.losses().clone();
    let accepted = st.add_spans(list);
    let after = st.losses();
    Json(json!({
        "accepted": accepted,
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
    json!({
        "schema": "wattprint.requests/v1",
        "summary": st.summary(),
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

async fn summary(State(ctx): State<Ctx>) -> Response {
    Json(summary_json(&lock(&ctx.shared))).into_response()
}

async fn live(State(ctx): State<Ctx>) -> Response {
    Json(crate::dashboard::live_json(&lock(&ctx.shared))).into_response()
}
