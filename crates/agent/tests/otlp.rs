//! OTLP/HTTP push (feature `otlp`) to a mock receiver on 127.0.0.1.
#![cfg(feature = "otlp")]

mod common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;
use wattprint_agent::otlp::OtlpConfig;

/// Accept one POST and return (path, JSON body), answering 200.
fn receive(l: &TcpListener) -> (String, serde_json::Value) {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap().to_string();
    let mut len = 0;
    let mut ctype = String::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().unwrap();
        }
        if k.eq_ignore_ascii_case("content-type") {
            ctype = v.trim().to_string();
        }
    }
    assert_eq!(ctype, "application/json");
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let mut w = s;
    w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    (path, serde_json::from_slice(&body).unwrap())
}

#[test]
fn the_agent_pushes_otlp_json_metrics_to_the_collector() {
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = collector.local_addr().unwrap().port();
    let mut cfg = common::loopback_config(0.05);
    cfg.otlp = Some(OtlpConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}/v1/metrics")),
        traces_endpoint: None,
        interval_s: 0.2,
        headers: vec![],
        gzip: false,
    });
    let running = common::serve_100w(cfg);
    let (path, first) = receive(&collector);
    let (_, second) = receive(&collector);
    running.stop();
    assert_eq!(path, "/v1/metrics");
    let energy = |v: &serde_json::Value| -> f64 {
        let m = v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "wattprint.energy")
            .unwrap()
            .clone();
        assert_eq!(m["unit"], "J");
        assert_eq!(m["sum"]["isMonotonic"], true);
        assert_eq!(m["sum"]["aggregationTemporality"], 2);
        let p = &m["sum"]["dataPoints"][0];
        assert_eq!(p["attributes"][0]["value"]["stringValue"], "package-0");
        p["asDouble"].as_f64().unwrap()
    };
    let (e1, e2) = (energy(&first), energy(&second));
    assert!(e1 > 0.0 && e2 > e1, "{e1} then {e2}");
    let names: Vec<&str> = first["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for n in [
        "wattprint.power",
        "wattprint.request.energy",
        "wattprint.agent.cpu",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
}

#[test]
fn a_failed_push_is_counted_in_the_metrics() {
    // A collector that answers every push with 503.
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = collector.local_addr().unwrap().port();
    let mut cfg = common::loopback_config(0.05);
    cfg.otlp = Some(OtlpConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}/v1/metrics")),
        traces_endpoint: None,
        interval_s: 0.1,
        headers: vec![],
        gzip: false,
    });
    let running = common::serve_100w(cfg);
    let shared = running.shared.clone();
    for _ in 0..2 {
        let (s, _) = collector.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        let mut w = s;
        w.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    }
    // The second push was answered: the first failure is recorded by now.
    let failures = wattprint_agent::lock(&shared).losses().otlp_push_failures;
    running.stop();
    assert!(failures >= 1, "{failures}");
    let text = wattprint_agent::metrics::render(&wattprint_agent::lock(&shared));
    assert!(
        text.lines()
            .any(|l| l.starts_with("wattprint_otlp_push_failures_total ")
                && l.split(' ').nth(1).unwrap().parse::<f64>().unwrap() >= 1.0),
        "{text}"
    );
}

/// One raw request to `/v1/metrics`: its headers (names lower-cased) and body bytes; answers
/// with `answer`.
fn receive_raw(l: &TcpListener, answer: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    receive_at(l, "/v1/metrics", answer)
}

/// By the OTLP/HTTP specification: a 503 with `Retry-After` is retried with the same snapshot
/// after the time asked; bodies are gzip-compressed when asked; the authentication header
/// goes on every attempt; the failed attempt is counted, nothing is dropped.
#[test]
fn a_retryable_answer_is_retried_with_the_same_gzip_snapshot_and_headers() {
    use std::io::Read as _;
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = collector.local_addr().unwrap().port();
    let mut cfg = common::loopback_config(0.05);
    cfg.otlp = Some(OtlpConfig {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        traces_endpoint: None,
        // Longer than the retry (2 s): the second request is the retry, not a new snapshot.
        interval_s: 3.0,
        headers: wattprint_agent::otlp::parse_headers("authorization=Bearer%20s3cret").unwrap(),
        gzip: true,
    });
    let running = common::serve_100w(cfg);
    let shared = running.shared.clone();
    // The first snapshot is taken one interval after the start.
    let t0 = std::time::Instant::now();
    let (h1, b1) = receive_raw(
        &collector,
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
    );
    let t1 = std::time::Instant::now();
    let (h2, b2) = receive_raw(&collector, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let waited = t1.elapsed();
    let losses = wattprint_agent::lock(&shared).losses();
    running.stop();
    assert!(
        t1 - t0 < Duration::from_secs(20),
        "first push after {:?}",
        t1 - t0
    );
    // Retry-After: 2 was honoured (the pusher checks its queue every 50 ms).
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
    assert_eq!(b1, b2, "the retry sends the same snapshot");
    for h in [&h1, &h2] {
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("authorization"), Some("Bearer s3cret"));
        assert_eq!(get("content-encoding"), Some("gzip"));
        assert_eq!(get("content-type"), Some("application/json"));
    }
    let mut json = String::new();
    flate2::read::GzDecoder::new(&b2[..])
        .read_to_string(&mut json)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].is_array());
    assert_eq!(losses.otlp_push_failures, 1);
    assert_eq!(losses.otlp_batches_dropped, 0);
}

/// One raw request to `path`: its headers and body; answers with `answer`.
fn receive_at(l: &TcpListener, path: &str, answer: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with(&format!("POST {path} ")), "{line}");
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a content-length");
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let mut w = s;
    w.write_all(answer).unwrap();
    (headers, body)
}

/// The spans of an agent task posted to `POST /v1/traces` are exported once each, after
/// their energy settled, as OTLP protobuf with `wattprint.energy_j` (the leaves' summing to
/// the trace's total at `GET /v1/traces/{id}`); the backend's 503 is retried with the same
/// batch, counted in `/metrics`.
#[test]
fn settled_spans_are_exported_once_and_a_503_is_retried() {
    use prost::Message;
    use wattprint_agent::traces::pb;
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = backend.local_addr().unwrap().port();
    let mut cfg = common::loopback_config(0.05);
    // Long enough that the task's spans, posted 0.45 s after it began, are not late.
    cfg.limits.settle_lag_s = 1.0;
    cfg.otlp = Some(OtlpConfig {
        endpoint: None,
        traces_endpoint: Some(format!("http://127.0.0.1:{port}")),
        interval_s: 10.0,
        headers: vec![("x-scope-orgid".into(), "acme".into())],
        gzip: false,
    });
    let running = common::serve_100w(cfg);
    let shared = running.shared.clone();
    // The task's time must be measured: it starts now and ends 0.4 s later.
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let t0 = unix_now();
    std::thread::sleep(Duration::from_millis(450));
    let ms = |m: u64| t0 + m * 1_000_000;
    let kv = |k: &str, v: &str| pb::KeyValue::new(k, pb::Value::StringValue(v.into()));
    let span = |id: u8, parent: Option<u8>, a: u64, b: u64, op: &str| pb::Span {
        trace_id: vec![9; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("{op} {id}"),
        kind: 3,
        start_time_unix_nano: ms(a),
        end_time_unix_nano: ms(b),
        attributes: vec![kv("gen_ai.operation.name", op)],
        status: None,
    };
    let body = pb::ExportTraceServiceRequest {
        resource_spans: vec![pb::ResourceSpans {
            resource: Some(pb::Resource {
                attributes: vec![kv("service.name", "demo-agent")],
            }),
            scope_spans: vec![pb::ScopeSpans {
                scope: None,
                spans: vec![
                    span(2, Some(1), 0, 200, "chat"),
                    span(3, Some(1), 200, 250, "execute_tool"),
                    span(4, Some(1), 250, 400, "chat"),
                    span(1, None, 0, 400, "invoke_agent"),
                ],
            }],
        }],
    }
    .encode_to_vec();
    let mut c = common::Conn::open(running.addr());
    let r = c.send_bytes("/v1/traces", "application/x-protobuf", &body);
    assert_eq!(r.status, 200, "{}", r.body);

    let (h1, b1) = receive_at(
        &backend,
        "/v1/traces",
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n",
    );
    let (h2, b2) = receive_at(
        &backend,
        "/v1/traces",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(b1, b2, "the retry sends the same batch");
    for h in [&h1, &h2] {
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("content-type"), Some("application/x-protobuf"));
        assert_eq!(get("x-scope-orgid"), Some("acme"));
    }
    // The leaves settle tick by tick and the root after its last child: the spans come in
    // one or more batches, each span in exactly one.
    let mut exports = vec![pb::ExportTraceServiceRequest::decode(&b2[..]).unwrap()];
    let count = |e: &[pb::ExportTraceServiceRequest]| -> usize {
        e.iter()
            .flat_map(|x| &x.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    };
    while count(&exports) < 4 {
        let (_, b) = receive_at(
            &backend,
            "/v1/traces",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        exports.push(pb::ExportTraceServiceRequest::decode(&b[..]).unwrap());
    }
    for e in &exports {
        assert_eq!(
            e.resource_spans[0].resource.as_ref().unwrap().attributes,
            [kv("service.name", "demo-agent")]
        );
    }
    let spans: Vec<&pb::Span> = exports
        .iter()
        .flat_map(|x| &x.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let energy = |s: &pb::Span| -> f64 {
        let v = s
            .attributes
            .iter()
            .find(|kv| kv.key == "wattprint.energy_j")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref());
        match v {
            Some(pb::Value::DoubleValue(j)) => *j,
            v => panic!("span {:?}: wattprint.energy_j {v:?}", s.span_id),
        }
    };
    let mut ids: Vec<u8> = spans.iter().map(|s| s.span_id[0]).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4]);
    let root = spans.iter().find(|s| s.span_id == vec![1; 8]).unwrap();
    let leaves: f64 = spans
        .iter()
        .filter(|s| !s.parent_span_id.is_empty())
        .map(|s| energy(s))
        .sum();
    // Every leaf has energy (its share of the active part of the 100 W); the root's is
    // theirs, each joule once.
    assert!(spans.iter().all(|s| energy(s) > 0.0), "{spans:?}");
    assert!(
        (leaves - energy(root)).abs() < 1e-9,
        "{leaves} vs {}",
        energy(root)
    );
    let trace = c
        .request("GET", &format!("/v1/traces/{}", "09".repeat(16)), None)
        .json();
    assert_eq!(trace["status"], "settled");
    assert!((trace["energy_j"].as_f64().unwrap() - energy(root)).abs() < 1e-9);
    for s in &spans {
        let id: String = s.span_id.iter().map(|b| format!("{b:02x}")).collect();
        let got = trace["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["span_id"] == id.as_str())
            .unwrap();
        // serde_json's parser may land one ulp off the value it printed.
        let j = got["energy_j"].as_f64().unwrap();
        assert!((j - energy(s)).abs() < 1e-9, "{id}: {j} vs {}", energy(s));
    }

    // Exported once: posting the same spans again sends nothing more. The exporter looks at
    // the table every 250 ms: four looks go by without a request.
    let r = c.send_bytes("/v1/traces", "application/x-protobuf", &body);
    assert_eq!(r.status, 200);
    backend.set_nonblocking(true).unwrap();
    std::thread::sleep(wattprint_agent::otlp::TRACE_POLL * 4);
    assert!(
        backend.accept().is_err(),
        "a span was exported a second time"
    );
    let text = wattprint_agent::metrics::render(&wattprint_agent::lock(&shared));
    running.stop();
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name}"))
            .parse()
            .unwrap()
    };
    assert_eq!(sample("wattprint_otlp_trace_push_failures_total"), 1.0);
    assert_eq!(sample("wattprint_otlp_spans_exported_total"), 4.0);
    assert_eq!(sample("wattprint_otlp_spans_dropped_total"), 0.0);
    assert_eq!(sample("wattprint_otlp_push_failures_total"), 0.0);
}
