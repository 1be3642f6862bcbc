//! `POST /v1/traces` and `GET /v1/traces/{id}` on 127.0.0.1: one agent task (an
//! `invoke_agent` span over three LLM calls and two tool calls) comes back with energy on
//! every span, and the trace's total is the energy attributed to its spans.

mod common;

use common::Conn;
use prost::Message;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wattprint_agent::traces::pb;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ns(t: f64) -> String {
    format!("{}", (t * 1e9) as u64)
}

fn span(trace: &str, id: u8, parent: Option<u8>, t0: f64, t1: f64, op: &str, out: u64) -> Value {
    json!({
        "traceId": trace, "spanId": format!("{id:016x}"),
        "parentSpanId": parent.map(|p| format!("{p:016x}")).unwrap_or_default(),
        "name": format!("{op} {id}"), "kind": 1,
        "startTimeUnixNano": ns(t0), "endTimeUnixNano": ns(t1),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": op}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "llama"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": out.to_string()}},
        ],
    })
}

#[test]
fn an_agent_task_trace_gets_energy_on_every_span_and_its_total_is_its_leaves() {
    let mut cfg = common::loopback_config(0.02);
    // Above the time the task takes to be reported (as --settle-lag must be above an
    // exporter's batch delay).
    cfg.limits.settle_lag_s = 1.5;
    let running = common::serve_100w(cfg);
    let addr = running.addr();
    let mut c = Conn::open(addr);
    // Let the meter take a few samples, then report a task that just ran: 5 leaves one
    // after the other, 0.1 s each, under one invoke_agent.
    std::thread::sleep(Duration::from_millis(100));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let t = now() - 0.05;
    let s = |k: f64| t + 0.1 * k;
    let spans = vec![
        span(trace, 2, Some(1), s(0.0), s(1.0), "chat", 30),
        span(trace, 3, Some(1), s(1.0), s(2.0), "execute_tool", 0),
        span(trace, 4, Some(1), s(2.0), s(3.0), "chat", 20),
        span(trace, 5, Some(1), s(3.0), s(4.0), "execute_tool", 0),
        span(trace, 6, Some(1), s(4.0), s(5.0), "chat", 10),
        span(trace, 1, None, s(0.0), s(5.0), "invoke_agent", 0),
    ];
    // Report once they have ended.
    while now() < s(5.0) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).to_string();
    let r = c.request("POST", "/v1/traces", Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["partialSuccess"]["rejectedSpans"], 0, "{}", r.body);
    assert_eq!(r.json()["wattprint"]["attributed"], 5);
    let t0 = Instant::now();
    let doc = loop {
        let d = c
            .request("GET", &format!("/v1/traces/{}", trace.to_uppercase()), None)
            .json();
        if d["status"] == "settled" {
            break d;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{d}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let list = doc["spans"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert!(
        list.iter()
            .all(|s| s["energy_j"].as_f64().is_some_and(|j| j > 0.0)),
        "{doc}"
    );
    let leaves: f64 = list
        .iter()
        .filter(|s| s["method"] == "attributed")
        .map(|s| s["own_energy_j"].as_f64().unwrap())
        .sum();
    let total = doc["energy_j"].as_f64().unwrap();
    let root = list
        .iter()
        .find(|s| s["operation"] == "invoke_agent")
        .unwrap();
    assert!((total - leaves).abs() < 1e-9);
    assert!((root["energy_j"].as_f64().unwrap() - total).abs() < 1e-9);
    // 100 W over 0.5 s of leaves, to the sampling jitter.
    assert!((total - 50.0).abs() < 10.0, "{total}");
    // Protobuf exports are read too.
    let pb_body = pb::ExportTraceServiceRequest {
        resource_spans: vec![pb::ResourceSpans {
            scope_spans: vec![pb::ScopeSpans {
                spans: vec![pb::Span {
                    trace_id: vec![9; 16],
                    span_id: vec![1; 8],
                    name: "chat".into(),
                    start_time_unix_nano: ((now() - 0.05) * 1e9) as u64,
                    end_time_unix_nano: (now() * 1e9) as u64,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let r = c.send_bytes("/v1/traces", "application/x-protobuf", &pb_body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["wattprint"]["accepted"], 1);
    assert_eq!(
        c.request("GET", &format!("/v1/traces/{}", "09".repeat(16)), None)
            .status,
        200
    );
    // A protobuf body claiming a billion-byte field: a clear 400, and the agent serves on.
    let r = c.send_bytes(
        "/v1/traces",
        "application/x-protobuf",
        &[0x0a, 0x80, 0x94, 0xeb, 0xdc, 0x03],
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("OTLP"));
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
    assert_eq!(c.request("GET", "/v1/traces/00ff", None).status, 404);
    running.stop();
}

/// A leaf that ended before the agent's settled horizon (here: before the agent started) is
/// refused by the ledger: `GET /v1/traces/{id}` gives it no energy (null, not 0) and the
/// reason; the root's energy is the other leaf's, marked partial, as is the trace's.
#[test]
fn a_leaf_too_late_to_attribute_has_no_energy_and_makes_its_parents_partial() {
    let mut cfg = common::loopback_config(0.02);
    cfg.limits.settle_lag_s = 1.5;
    let running = common::serve_100w(cfg);
    let mut c = Conn::open(running.addr());
    std::thread::sleep(Duration::from_millis(300));
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let t = now();
    let spans = vec![
        // Ended 99 s before now: before the agent started, so behind its horizon.
        span(trace, 2, Some(1), t - 100.0, t - 99.0, "execute_tool", 0),
        span(trace, 3, Some(1), t - 0.2, t - 0.05, "chat", 10),
        span(trace, 1, None, t - 100.0, t - 0.05, "invoke_agent", 0),
    ];
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).to_string();
    let r = c.request("POST", "/v1/traces", Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let w = &r.json()["wattprint"];
    assert_eq!(
        (w["attributed"].as_u64(), w["attribution_refused"].as_u64()),
        (Some(1), Some(1)),
        "{w}"
    );
    assert_eq!(r.json()["partialSuccess"]["rejectedSpans"], 1);
    let t0 = Instant::now();
    let doc = loop {
        let d = c
            .request("GET", &format!("/v1/traces/{trace}"), None)
            .json();
        if d["status"] == "settled" {
            break d;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{d}");
        std::thread::sleep(Duration::from_millis(20));
    };
    running.stop();
    let by = |id: u8| {
        doc["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["span_id"] == format!("{id:016x}"))
            .unwrap()
            .clone()
    };
    let (tool, chat, root) = (by(2), by(3), by(1));
    assert!(
        tool["energy_j"].is_null() && tool["own_energy_j"].is_null(),
        "{tool}"
    );
    assert!(tool["carbon_g"].is_null(), "{tool}");
    assert_eq!(tool["method"], "refused");
    assert_eq!(
        tool["refused_reason"],
        "the span ended before the agent's settled horizon (time it had already attributed): too late to attribute; a --settle-lag longer than the client's export delay avoids it"
    );
    let chat_j = chat["energy_j"].as_f64().unwrap();
    assert!(chat_j > 0.0, "{chat}");
    assert_eq!(chat["partial"], false);
    assert_eq!(root["energy_j"].as_f64(), Some(chat_j));
    assert_eq!(
        (root["method"].as_str(), root["partial"].as_bool()),
        (Some("rolled_up"), Some(true))
    );
    assert_eq!(doc["energy_j"].as_f64(), Some(chat_j));
    assert_eq!(
        (doc["refused_spans"].as_u64(), doc["partial"].as_bool()),
        (Some(1), Some(true))
    );
}
