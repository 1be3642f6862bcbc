//! The HTTP API on 127.0.0.1 with an ephemeral port, over a fake sensor.

mod common;

use common::Conn;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wattprint_agent::{Agent, AgentConfig, CarbonFactor, Limits};
use wattprint_sensors::fake::FakeSensor;
use wattprint_sensors::Sensor;

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn factor() -> CarbonFactor {
    CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
        intensity_g_per_kwh: Some(1800.0),
        pue: Some(1.0),
        ..Default::default()
    })
    .unwrap()
}

fn start_with(cfg: AgentConfig, sensors: Vec<Box<dyn Sensor>>) -> Running {
    let agent = Agent::bind(cfg, sensors).expect("bind");
    let addr = agent.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        agent
            .serve(async {
                let _ = rx.await;
            })
            .unwrap()
    });
    Running {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    }
}

fn config() -> AgentConfig {
    let mut cfg = AgentConfig::new(factor());
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.interval_s = 0.02;
    cfg.limits = Limits {
        settle_lag_s: 2.0,
        ..Limits::default()
    };
    cfg
}

fn counter(watts: f64) -> Vec<Box<dyn Sensor>> {
    vec![Box::new(FakeSensor::constant_counter(
        "package-0",
        watts,
        0.0,
        1e12,
    ))]
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Poll `f` until it returns Some, for at most 10 s.
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "condition not reached in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn healthz_answers_and_metrics_are_openmetrics() {
    let a = start_with(config(), counter(100.0));
    let mut c = Conn::open(a.addr);
    let r = c.request("GET", "/healthz", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.json()["domains"], 1);
    // Let a few samples pass so energy is non-zero.
    let r = wait_for(|| {
        let r = c.request("GET", "/metrics", None);
        r.body
            .lines()
            .any(|l| l.starts_with("wattprint_power_watts{"))
            .then_some(r)
    });
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"));
    let line = r
        .body
        .lines()
        .find(|l| l.starts_with("wattprint_energy_joules_total{"))
        .unwrap();
    assert!(line.contains("domain=\"package-0\""), "{line}");
    let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(v > 0.0);
    for f in [
        "# TYPE wattprint_energy_joules counter",
        "wattprint_agent_cpu_seconds_total ",
        "wattprint_agent_resident_memory_bytes ",
        "wattprint_idle_energy_joules_total ",
    ] {
        assert!(r.body.contains(f), "missing {f}");
    }
}

#[test]
fn a_window_reports_energy_carbon_work_and_metrics() {
    let a = start_with(config(), counter(100.0));
    let mut c = Conn::open(a.addr);
    let r = c.request(
        "POST",
        "/v1/windows",
        Some(r#"{"name":"batch","labels":{"model":"m1"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let r = c.request(
        "POST",
        &format!("/v1/windows/{id}/end"),
        Some(r#"{"inferences":4,"tokens":2000}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["schema"], "wattprint.run/v1");
    let total = v["energy"]["total_j"].as_f64().unwrap();
    let dur = v["duration_s"].as_f64().unwrap();
    // The fake counter runs at exactly 100 W on the meter's clock.
    assert!((total - 100.0 * dur).abs() < 1e-6, "{total} J over {dur} s");
    assert!(dur >= 0.1);
    // 1800 g/kWh = 0.5 mg per J.
    let g = v["carbon"]["total_g"].as_f64().unwrap();
    assert!((g - total / 2000.0).abs() < 1e-9);
    assert_eq!(v["work"]["tokens"], 2000.0);
    assert!((v["metrics"]["joules_per_token"].as_f64().unwrap() - total / 2000.0).abs() < 1e-9);
    assert!((v["metrics"]["carbon_per_inference_g"].as_f64().unwrap() - g / 4.0).abs() < 1e-12);
    assert_eq!(v["labels"]["model"], "m1");
    // Ending again: 404 that says why.
    let r = c.request("POST", &format!("/v1/windows/{id}/end"), Some("{}"));
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("not open"));
    // The ended window is a counter in /metrics with the same energy.
    let m = c.request("GET", "/metrics", None).body;
    let line = m
        .lines()
        .find(|l| l.starts_with("wattprint_window_energy_joules_total{window=\"batch\"}"))
        .unwrap();
    let mj: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (mj - total).abs() < 1e-9 * total.max(1.0),
        "{mj} vs {total}"
    );
}

#[test]
fn spans_are_attributed_and_summary_metrics_and_live_agree() {
    let a = start_with(config(), counter(100.0));
    let mut c = Conn::open(a.addr);
    // Two overlapping requests in the recent past, plus one in the future of the settle mark.
    std::thread::sleep(Duration::from_millis(300));
    let t = now();
    let spans = json!([
        {"start_unix_s": t - 0.15, "end_unix_s": t - 0.05, "tokens": 300, "labels": {"model": "a"}},
        {"start_unix_s": t - 0.1, "end_unix_s": t - 0.05, "tokens": 100, "labels": {"model": "b"}},
        {"start_unix_s": t - 0.1, "end_unix_s": t - 0.2, "labels": {}},
    ]);
    let r = c.request("POST", "/v1/spans", Some(&spans.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], 2);
    assert_eq!(r.json()["refused_invalid"], 1);
    assert_eq!(r.json()["late"], 0);
    let s = wait_for(|| {
        let s = c.request("GET", "/v1/requests/summary", None).json();
        (s["summary"]["requests"] == 2).then_some(s)
    });
    let att = s["summary"]["attributed_j"].as_f64().unwrap();
    // 100 W over the 0.1 s the two requests cover, give or take the sampling edges.
    assert!(att > 5.0 && att < 15.0, "{att}");
    assert!(s["idle_j"].as_f64().unwrap() > 0.0);
    assert_eq!(s["summary"]["tokens"], 400);
    let by: Vec<Value> = s["by_labels"].as_array().unwrap().clone();
    let ja = by.iter().find(|x| x["labels"]["model"] == "a").unwrap()["energy_j"]
        .as_f64()
        .unwrap();
    let jb = by.iter().find(|x| x["labels"]["model"] == "b").unwrap()["energy_j"]
        .as_f64()
        .unwrap();
    assert!((ja + jb - att).abs() < 1e-9);
    assert!(ja > jb);
    let m = c.request("GET", "/metrics", None).body;
    let line = m
        .lines()
        .find(|l| l.starts_with("wattprint_request_energy_joules_total{model=\"a\"}"))
        .unwrap();
    let mj: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((mj - ja).abs() < 1e-9 * ja.max(1.0), "{mj} vs {ja}");
    let live = c.request("GET", "/v1/live", None).json();
    assert_eq!(live["totals"]["requests"], 2);
    assert!((live["totals"]["attributed_j"].as_f64().unwrap() - att).abs() < 1e-9);
    assert_eq!(live["recent"].as_array().unwrap().len(), 2);
    assert!(!live["t_unix_s"].as_array().unwrap().is_empty());
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let a = start_with(config(), counter(10.0));
    let mut c = Conn::open(a.addr);
    let r = c.request("POST", "/v1/windows", Some("{not json"));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("invalid JSON"));
    let r = c.request("POST", "/v1/windows", Some(r#"{"name":""}"#));
    assert_eq!(r.status, 400);
    let r = c.request("POST", "/v1/windows", Some(r#"{"name":"x","extra":1}"#));
    assert_eq!(r.status, 400);
    let r = c.request("POST", "/v1/windows/abc/end", Some("{}"));
    assert_eq!(r.status, 400);
    let r = c.request("POST", "/v1/windows/12345/end", None);
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("restart"));
    let r = c.request("POST", "/v1/spans", Some(r#"[{"start_unix_s": 1}]"#));
    assert_eq!(r.status, 400);
    let r = c.request("GET", "/nope", None);
    assert_eq!(r.status, 404);
}

#[test]
fn bodies_are_bounded() {
    let mut cfg = config();
    cfg.max_body_bytes = 1000;
    let a = start_with(cfg, counter(10.0));
    let mut c = Conn::open(a.addr);
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(5000));
    let r = c.request("POST", "/v1/windows", Some(&big));
    assert_eq!(r.status, 413);
    // The agent still serves.
    let mut c = Conn::open(a.addr);
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
}

#[test]
fn a_token_is_required_when_configured_but_not_for_healthz() {
    let mut cfg = config();
    cfg.token = Some("0123456789abcdef-secret".into());
    let a = start_with(cfg, counter(10.0));
    let mut c = Conn::open(a.addr);
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
    let r = c.request("GET", "/metrics", None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    c.token = Some("wrong-token-of-some-length".into());
    assert_eq!(c.request("GET", "/v1/requests/summary", None).status, 401);
    c.token = Some("0123456789abcdef-secret".into());
    assert_eq!(c.request("GET", "/metrics", None).status, 200);
    assert_eq!(c.request("GET", "/", None).status, 200);
}

#[test]
fn binding_off_loopback_needs_a_token() {
    let mut cfg = config();
    cfg.listen = Some("0.0.0.0:0".parse().unwrap());
    let e = Agent::bind(cfg.clone(), counter(1.0)).err().unwrap();
    assert!(e.to_string().contains("--token-file"), "{e}");
    cfg.token = Some("short".into());
    assert!(Agent::bind(cfg, counter(1.0)).is_err());
}

#[test]
fn a_client_disconnecting_mid_request_does_not_stop_the_agent() {
    let a = start_with(config(), counter(10.0));
    for _ in 0..20 {
        let mut c = Conn::open(a.addr);
        c.send_raw(b"POST /v1/spans HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n[{\"start");
        drop(c);
    }
    let mut c = Conn::open(a.addr);
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
}

#[test]
fn a_vanishing_sensor_keeps_the_agent_serving_and_the_window_says_so() {
    use wattprint_sensors::{RawReading, ReadCadence, SensorError, SensorInfo};
    let info = SensorInfo {
        source: "fake".into(),
        domains: vec![wattprint_sensors::fake::domain(
            "package-0",
            wattprint_core::DomainKind::CpuPackage,
            wattprint_core::Method::Counter,
            true,
        )],
        cadence: ReadCadence::Boundaries { guard_s: None },
        setup: "none".into(),
    };
    // Readable for the first 4 reads, gone for the next 4, back afterwards (counted in
    // reads, not time, so a slow machine cannot skip the outage).
    let mut reads = 0u32;
    let s = FakeSensor::new(info, move |t, out: &mut [RawReading]| {
        reads += 1;
        if (5..=8).contains(&reads) {
            return Err(SensorError::Read("energy_uj vanished".into()));
        }
        out[0] = RawReading::EnergyCounter {
            joules: 50.0 * t,
            range_j: None,
        };
        Ok(())
    });
    let a = start_with(config(), vec![Box::new(s)]);
    let mut c = Conn::open(a.addr);
    let id = c
        .request("POST", "/v1/windows", Some(r#"{"name":"w"}"#))
        .json()["id"]
        .as_u64()
        .unwrap();
    wait_for(|| {
        let h = c.request("GET", "/healthz", None);
        (h.status == 200).then_some(())?;
        let m = c.request("GET", "/v1/live", None).json();
        (m["t_unix_s"].as_array()?.len() > 20).then_some(())
    });
    let r = c.request("POST", &format!("/v1/windows/{id}/end"), Some("{}"));
    assert_eq!(r.status, 200);
    let v = r.json();
    let w = v["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|x| x.as_str().unwrap().contains("energy_uj vanished")),
        "{w:?}"
    );
    assert!(!v["energy"]["gaps"].as_array().unwrap().is_empty());
}

#[test]
fn the_dashboard_and_its_assets_are_served() {
    let a = start_with(config(), counter(10.0));
    let mut c = Conn::open(a.addr);
    let r = c.request("GET", "/", None);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("uPlot.iife.min.js") && r.body.contains("data-points"));
    let r = c.request("GET", "/assets/uPlot.iife.min.js", None);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("uPlot"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(c.request("GET", "/assets/uPlot.min.css", None).status, 200);
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before the close
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn an_idle_flood_cannot_hold_more_than_the_cap_and_healthz_still_answers() {
    use std::io::Write;
    let mut cfg = config();
    cfg.max_connections = 8;
    cfg.idle_timeout_s = 60.0; // the cap, not the timeout, is what this pins
    let a = start_with(cfg, counter(10.0));
    let mut flood: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(a.addr).unwrap();
            s.write_all(b"GET /heal").unwrap(); // a partial request line, held open
            s
        })
        .collect();
    let mut c = Conn::open(a.addr);
    let t0 = Instant::now();
    let r = c.request("GET", "/healthz", None);
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() < Duration::from_secs(5));
    let open = r.json()["open_connections"].as_u64().unwrap();
    assert!(open <= 8, "{open} connections open, cap 8");
    // The agent closed the longest-idle flood connections to make room: at most 7 of the 40
    // may still be open (the healthz client holds the eighth slot).
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut closed = 0;
    for s in &mut flood {
        let left = deadline.saturating_duration_since(Instant::now());
        if closed_within(s, left.max(Duration::from_millis(10))) {
            closed += 1;
        }
    }
    assert!(closed >= 33, "only {closed} of 40 idle connections closed");
}

#[test]
fn a_partial_request_and_an_idle_keep_alive_are_closed_after_the_idle_timeout() {
    use std::io::Write;
    let mut cfg = config();
    cfg.idle_timeout_s = 0.2;
    let a = start_with(cfg, counter(10.0));
    let mut s = std::net::TcpStream::connect(a.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    // Keep-alive: one answered request, then silence.
    let mut c = Conn::open(a.addr);
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
    let mut raw = std::net::TcpStream::connect(a.addr).unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(closed_within(&mut raw, Duration::from_secs(5)));
}

#[test]
fn a_trickled_body_is_refused_with_408_json() {
    let mut cfg = config();
    cfg.body_timeout_s = 0.2;
    let a = start_with(cfg, counter(10.0));
    let mut c = Conn::open(a.addr);
    c.send_raw(b"POST /v1/spans HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"st");
    let r = c.read_response();
    assert_eq!(r.status, 408);
    assert!(r.json()["error"].as_str().unwrap().contains("not received"));
}

#[test]
fn browsers_cannot_talk_to_a_loopback_agent() {
    let a = start_with(config(), counter(10.0));
    let port = a.addr.port().to_string();
    let own = format!("127.0.0.1:{port}");
    let json_ct = [("Content-Type", "application/json")];
    let mut c = Conn::open(a.addr);
    // DNS rebinding: the attacker's name in Host.
    let evil = format!("evil.example:{port}");
    let r = c.request_with("GET", "/v1/live", &[("Host", &evil)], &[], None);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("DNS rebinding"));
    let r = c.request_with("GET", "/healthz", &[("Host", "127.0.0.1:1")], &[], None);
    assert_eq!(r.status, 403, "another port is another origin");
    let r = c.request_with("GET", "/v1/live", &[("Host", &own)], &[], None);
    assert_eq!(r.status, 200);
    let r = c.request_with(
        "GET",
        "/v1/live",
        &[("Host", &format!("localhost:{port}"))],
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    // Writes a page could send without a CORS preflight.
    let body = Some(r#"{"name":"w"}"#);
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = c.request_with(
            "POST",
            "/v1/windows",
            &[("Host", &own)],
            &[("Content-Type", ct)],
            body,
        );
        assert_eq!(r.status, 415, "{ct}");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }
    let r = c.request_with("POST", "/v1/windows/1/end", &[("Host", &own)], &[], None);
    assert_eq!(r.status, 415, "an empty POST needs the JSON type too");
    // Cross-origin, even with the right type.
    let r = c.request_with(
        "POST",
        "/v1/windows",
        &[("Host", &own)],
        &[json_ct[0], ("Origin", "http://localhost:3000")],
        body,
    );
    assert_eq!(r.status, 403);
    let r = c.request_with(
        "POST",
        "/v1/windows",
        &[("Host", &own)],
        &[json_ct[0], ("Sec-Fetch-Site", "same-site")],
        body,
    );
    assert_eq!(r.status, 403);
    // Same origin (the dashboard's own page) and programs are served.
    let origin = format!("http://{own}");
    let r = c.request_with(
        "POST",
        "/v1/windows",
        &[("Host", &own)],
        &[json_ct[0], ("Origin", &origin)],
        body,
    );
    assert_eq!(r.status, 201);
    let r = c.request_with("POST", "/v1/windows", &[("Host", &own)], &json_ct, body);
    assert_eq!(r.status, 201);
}

#[test]
fn every_refusal_is_a_json_error() {
    let mut cfg = config();
    cfg.max_body_bytes = 100;
    let a = start_with(cfg, counter(10.0));
    let mut c = Conn::open(a.addr);
    for (method, path, body, status) in [
        ("GET", "/no/such/\u{1b}[31mpath", None, 404),
        ("DELETE", "/v1/spans", None, 405),
        ("POST", "/v1/windows", Some("x".repeat(500)), 413),
    ] {
        let r = c.request(method, &path.replace('\u{1b}', "%1B"), body.as_deref());
        assert_eq!(r.status, status, "{method} {path}");
        assert!(r.json()["error"].is_string(), "{}", r.body);
    }
}

/// Requests hyper cannot parse are answered below every handler; the answer is still the
/// documented JSON error (`conn::JsonErrors`), with hyper's status.
#[test]
fn a_request_hyper_cannot_parse_gets_a_json_error_too() {
    use std::io::{Read, Write};
    let a = start_with(config(), counter(10.0));
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: [(&[u8], u16); 5] = [
        (b"\x01\x1b[2J garbage\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost localhost\r\n\r\n", 400),
        (b"GET /healthz HTTP/9.9\r\nHost: localhost\r\n\r\n", 400),
        (long_header.as_bytes(), 431),
        (many_headers.as_bytes(), 431),
    ];
    for (raw, status) in cases {
        let mut s = std::net::TcpStream::connect(a.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // hyper may answer (and close) before the whole head is sent: a failed write of the
        // rest is fine, the answer is what is checked.
        let _ = s.write_all(raw);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?}: {text}",
            String::from_utf8_lossy(&raw[..raw.len().min(40)])
        );
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{text}"
        );
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(v["error"].as_str().unwrap().len() > 20, "{body}");
    }
    // The agent keeps serving.
    let mut c = Conn::open(a.addr);
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
}

/// Control characters (an ANSI sequence here) in names never come back raw: a window name
/// or label with one is refused by name, a span label is kept escaped, so neither /metrics
/// nor any answer can rewrite the terminal of whoever reads it.
#[test]
fn control_characters_in_names_are_refused_or_escaped() {
    let a = start_with(config(), counter(100.0));
    let mut c = Conn::open(a.addr);
    for body in [
        json!({"name": "job\u{1b}[2J\u{7}"}),
        json!({"name": "job", "labels": {"model\u{1b}[31m": "a"}}),
        json!({"name": "job", "labels": {"model": "a\r\u{9b}31m"}}),
    ] {
        let r = c.request("POST", "/v1/windows", Some(&body.to_string()));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains("control characters"), "{e}");
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = now();
    let spans = json!([{"start_unix_s": t - 0.15, "end_unix_s": t - 0.05, "tokens": 3,
        "labels": {"model": "\u{1b}[31mred\u{1b}[0m", "k\u{1b}]0;title\u{7}": "v"}}]);
    let r = c.request("POST", "/v1/spans", Some(&spans.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], 1, "{}", r.body);
    wait_for(|| {
        let s = c.request("GET", "/v1/requests/summary", None).json();
        (s["summary"]["requests"] == 1).then_some(())
    });
    let m = c.request("GET", "/metrics", None).body;
    assert!(!m.contains('\u{1b}') && !m.contains('\u{7}'), "{m}");
    assert!(m.contains("model=\"\\\\u{1b}[31mred\\\\u{1b}[0m\""), "{m}");
    let s = c.request("GET", "/v1/requests/summary", None).body;
    assert!(s.contains("\\\\u{1b}[31mred"), "{s}");
}

/// A chunked body that never ends (no length declared) is cut at the body cap with a JSON
/// 413, read frame by frame: the agent never buffers past the cap.
#[test]
fn an_endless_chunked_body_is_refused_at_the_cap() {
    use std::io::{Read, Write};
    let mut cfg = config();
    cfg.max_body_bytes = 100;
    let a = start_with(cfg, counter(10.0));
    let mut s = std::net::TcpStream::connect(a.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // One 1,000-byte chunk and no final chunk: for the agent, a body still coming.
    write!(
        s,
        "POST /v1/windows HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n",
        "x".repeat(1000)
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(text.contains("\"error\""), "{text}");
}
