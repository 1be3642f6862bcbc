//! The live dashboard: one HTML page (no build step) with uPlot vendored under `assets/`
//! (MIT, see `assets/uPlot.LICENSE`), polling `/v1/live`.

use crate::AgentState;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Value};

const PAGE: &str = include_str!("../assets/dashboard.html");
const UPLOT_JS: &str = include_str!("../assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uPlot.min.css");

/// Points of power history sent to the dashboard at most.
pub const LIVE_POINTS: usize = 600;
/// Recent requests sent to the dashboard.
pub const LIVE_REQUESTS: usize = 20;

pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub async fn uplot_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        UPLOT_JS,
    )
        .into_response()
}

pub async fn uplot_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        UPLOT_CSS,
    )
        .into_response()
}

/// Power per domain over time, open windows, recent requests and totals.
pub fn live_json(st: &AgentState) -> Value {
    let samples = st.samples();
    let skip = samples.len().saturating_sub(LIVE_POINTS);
    let pts: Vec<_> = samples.iter().skip(skip).collect();
    let t: Vec<f64> = pts.iter().map(|s| st.unix_of(s.t_s)).collect();
    let series: Vec<Value> = st
        .domains()
        .iter()
        .enumerate()
        .map(|(k, d)| {
            let w: Vec<Option<f64>> = pts
                .iter()
                .map(|s| s.power_w.get(k).copied().flatten())
                .collect();
            json!({ "domain": d.name, "kind": d.kind.as_str(), "counted": d.counted_in_total, "watts": w })
        })
        .collect();
    let windows: Vec<Value> = st
        .open_windows()
        .into_iter()
        .map(|w| {
            json!({ "id": w.id, "name": w.name, "begin_unix_s": w.begin_unix_s,
                    "energy_j": w.energy_j, "carbon_g": w.carbon_g })
        })
        .collect();
    let recent: Vec<_> = st.recent(LIVE_REQUESTS).collect();
    let s = st.summary();
    json!({
        "t_unix_s": t,
        "series": series,
        "windows": windows,
        "recent": recent,
        "totals": {
            "requests": s.requests, "attributed_j": s.attributed_j, "idle_j": st.idle_j(),
            "attributed_g": s.attributed_g, "joules_per_request_p50": s.joules_per_request.p50,
            "joules_per_1k_tokens_p50": s.joules_per_1k_tokens.p50,
            "pending_spans": st.pending_spans(), "spans_dropped": st.losses().spans_dropped,
        },
        "carbon": { "zone": st.carbon().zone, "intensity_g_per_kwh": st.carbon().intensity_g_per_kwh },
    })
}
