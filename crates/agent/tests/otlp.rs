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

/// One raw request: its headers (names lower-cased) and body bytes; answers with `answer`.
fn receive_raw(l: &TcpListener, answer: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("POST /v1/metrics "), "{line}");
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
