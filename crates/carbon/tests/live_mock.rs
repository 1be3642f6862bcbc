//! The live providers against mock HTTP servers on 127.0.0.1 serving the providers' documented
//! shapes (`tests/fixtures/`), including 401s, garbage and silence.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wattprint_carbon::live::{self, LiveConfig, LiveError, LiveProvider, LiveSpec};
use wattprint_carbon::{apply, CarbonOptions};
use wattprint_core::report::{CarbonBasis, RunReport};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// One canned answer: (path prefix, status, body).
type Route = (&'static str, u16, String);

struct Mock {
    url: String,
    handle: JoinHandle<Vec<String>>,
}

/// Serves `routes` in order, one request each, then stops (or after 10 s without a client).
/// Returns each request's first line and headers, lower-cased.
fn serve(routes: Vec<Route>) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        for (prefix, status, body) in routes {
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break Some(s),
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break None,
                }
            };
            let Some(stream) = stream else { break };
            stream.set_nonblocking(false).unwrap();
            let head = read_head(&stream);
            assert!(
                head.contains(&format!(" {}", prefix.to_ascii_lowercase())),
                "expected {prefix}, got {head}"
            );
            seen.push(head);
            let mut s = stream;
            let reason = if status == 200 { "OK" } else { "Error" };
            let _ = write!(
                s,
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        seen
    });
    Mock { url, handle }
}

fn read_head(stream: &TcpStream) -> String {
    let mut r = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    head
}

fn cfg() -> LiveConfig {
    LiveConfig {
        timeout: Duration::from_secs(5),
        ..LiveConfig::default()
    }
}

fn spec(s: &str) -> LiveSpec {
    s.parse().unwrap()
}

#[test]
fn electricitymaps_latest_with_key() {
    let m = serve(vec![(
        "/v3/carbon-intensity/latest?zone=DE",
        200,
        fixture("electricitymaps_v3_latest.json"),
    )]);
    let c = LiveConfig {
        electricitymaps_url: Some(m.url.clone()),
        electricitymaps_key: Some("k123".into()),
        ..cfg()
    };
    let r = live::fetch(&spec("electricitymaps"), "DE", (0.0, 1.0), 0.0, &c).unwrap();
    assert_eq!(r.g_per_kwh, 302.0);
    assert_eq!(r.basis, CarbonBasis::Lifecycle);
    assert_eq!(r.year, Some(2025));
    assert!(r.source.contains("estimated"), "{}", r.source);
    let seen = m.handle.join().unwrap();
    assert!(seen[0].contains("auth-token: k123"), "{}", seen[0]);
}

#[test]
fn electricitymaps_401_names_the_key_variable() {
    let m = serve(vec![(
        "/v3/",
        401,
        fixture("electricitymaps_v3_error_401.json"),
    )]);
    let c = LiveConfig {
        electricitymaps_url: Some(m.url.clone()),
        electricitymaps_key: Some("bad".into()),
        ..cfg()
    };
    let e = live::fetch(&spec("electricitymaps"), "DE", (0.0, 1.0), 0.0, &c).unwrap_err();
    assert!(matches!(e, LiveError::Status { status: 401, .. }), "{e}");
    let t = e.to_string();
    assert!(
        t.contains("ELECTRICITYMAPS_API_KEY") && t.contains("Invalid authentication"),
        "{t}"
    );
    m.handle.join().unwrap();
}

#[test]
fn electricitymaps_without_key_is_a_config_error_without_request() {
    let e = live::fetch(&spec("electricitymaps"), "DE", (0.0, 1.0), 0.0, &cfg()).unwrap_err();
    assert!(e.to_string().contains("set ELECTRICITYMAPS_API_KEY"), "{e}");
}

#[test]
fn watttime_logs_in_then_converts_lbs_per_mwh() {
    let m = serve(vec![
        ("/login", 200, fixture("watttime_login.json")),
        (
            "/v3/forecast?region=CAISO_NORTH",
            200,
            fixture("watttime_v3_forecast.json"),
        ),
    ]);
    let c = LiveConfig {
        watttime_url: Some(m.url.clone()),
        watttime_user: Some("user".into()),
        watttime_password: Some("pass".into()),
        ..cfg()
    };
    let r = live::fetch(
        &spec("watttime:CAISO_NORTH"),
        "CAISO_NORTH",
        (0.0, 1.0),
        0.0,
        &c,
    )
    .unwrap();
    assert!(
        (r.g_per_kwh - 812.0 * 0.4536).abs() < 1e-9,
        "{}",
        r.g_per_kwh
    );
    assert_eq!(r.basis, CarbonBasis::Direct);
    let seen = m.handle.join().unwrap();
    assert!(
        seen[0].contains("authorization: basic dxnlcjpwyxnz"),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].contains("authorization: bearer eyjhbgcioi...jwt"),
        "{}",
        seen[1]
    );
}

#[test]
fn watttime_percentile_signal_is_refused() {
    let m = serve(vec![
        ("/login", 200, fixture("watttime_login.json")),
        (
            "/v3/forecast",
            200,
            fixture("watttime_v3_signal_index.json"),
        ),
    ]);
    let c = LiveConfig {
        watttime_url: Some(m.url.clone()),
        watttime_user: Some("u".into()),
        watttime_password: Some("p".into()),
        ..cfg()
    };
    let e = live::fetch(
        &spec("watttime:CAISO_NORTH"),
        "CAISO_NORTH",
        (0.0, 1.0),
        0.0,
        &c,
    )
    .unwrap_err();
    assert!(e.to_string().contains("percentile"), "{e}");
    m.handle.join().unwrap();
}

#[test]
fn watttime_historical_shape_also_parses() {
    let r = live::parse_watttime(&fixture("watttime_v3_historical.json")).unwrap();
    assert!((r.g_per_kwh - 870.0 * 0.4536).abs() < 1e-9);
}

#[test]
fn ukci_actual_and_400() {
    let m = serve(vec![("/intensity", 200, fixture("ukci_intensity.json"))]);
    let c = LiveConfig {
        ukci_url: Some(m.url.clone()),
        ..cfg()
    };
    let r = live::fetch(&spec("ukci"), "GB", (0.0, 1.0), 0.0, &c).unwrap();
    assert_eq!(r.g_per_kwh, 263.0);
    assert_eq!(r.year, Some(2018));
    m.handle.join().unwrap();

    let m = serve(vec![("/intensity", 400, fixture("ukci_error_400.json"))]);
    let c = LiveConfig {
        ukci_url: Some(m.url.clone()),
        ..cfg()
    };
    let e = live::fetch(&spec("ukci"), "GB", (0.0, 1.0), 0.0, &c).unwrap_err();
    assert!(
        e.to_string().contains("HTTP 400") && e.to_string().contains("ISO8601"),
        "{e}"
    );
    m.handle.join().unwrap();
}

#[test]
fn ukci_regional_forecast_only_uses_the_forecast() {
    // The regional shape nests data one level deeper: not the national shape, so refused.
    assert!(live::parse_ukci(&fixture("ukci_regional_postcode.json")).is_err());
    let r = live::parse_ukci(
        r#"{"data":[{"from":"2018-01-20T12:00Z","intensity":{"forecast":266,"actual":null}}]}"#,
    )
    .unwrap();
    assert_eq!(r.g_per_kwh, 266.0);
    assert!(r.source.contains("forecast"));
}

#[test]
fn carbon_aware_sdk_average_over_the_window() {
    let m = serve(vec![(
        "/emissions/average-carbon-intensity?location=eastus&starttime=2022-07-19t14",
        200,
        fixture("casdk_average_carbon_intensity.json"),
    )]);
    let c = LiveConfig {
        carbon_aware_sdk_url: Some(m.url.clone()),
        ..cfg()
    };
    let start = 1_658_239_200.0; // 2022-07-19T14:00:00Z
    let r = live::fetch(
        &spec("carbon-aware-sdk"),
        "eastus",
        (start, start + 14_400.0),
        0.0,
        &c,
    )
    .unwrap();
    assert_eq!(r.g_per_kwh, 345.434);
    assert_eq!(r.basis, CarbonBasis::Unspecified);
    m.handle.join().unwrap();
}

#[test]
fn garbage_answers_are_errors() {
    for body in [
        "<html>oops</html>",
        "{\"carbonIntensity\": null}",
        "{\"carbonIntensity\": -1}",
    ] {
        let m = serve(vec![("/v3/", 200, body.to_string())]);
        let c = LiveConfig {
            electricitymaps_url: Some(m.url.clone()),
            electricitymaps_key: Some("k".into()),
            ..cfg()
        };
        let e = live::fetch(&spec("electricitymaps"), "DE", (0.0, 1.0), 0.0, &c).unwrap_err();
        assert!(matches!(e, LiveError::Garbage { .. }), "{body}: {e}");
        m.handle.join().unwrap();
    }
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        // Accept and hold the connection without answering until the client gave up.
        let conn = listener.accept();
        let _ = rx.recv_timeout(Duration::from_secs(10));
        drop(conn);
    });
    let c = LiveConfig {
        ukci_url: Some(url),
        timeout: Duration::from_millis(300),
        ..cfg()
    };
    let t0 = Instant::now();
    let e = live::fetch(&spec("ukci"), "GB", (0.0, 1.0), 0.0, &c).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        e.to_string().to_ascii_lowercase().contains("timeout")
            || e.to_string().contains("timed out"),
        "{e}"
    );
    tx.send(()).unwrap();
    h.join().unwrap();
}

#[test]
fn a_closed_port_is_an_http_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = LiveConfig {
        ukci_url: Some(format!("http://127.0.0.1:{port}")),
        ..cfg()
    };
    let e = live::fetch(&spec("ukci"), "GB", (0.0, 1.0), 0.0, &c).unwrap_err();
    assert!(matches!(e, LiveError::Http { .. }), "{e}");
}

#[test]
fn answers_are_cached_and_reused_within_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let m = serve(vec![("/intensity", 200, fixture("ukci_intensity.json"))]);
    let c = LiveConfig {
        ukci_url: Some(m.url.clone()),
        cache_dir: Some(dir.path().to_path_buf()),
        ..cfg()
    };
    let now = 1_700_000_000.0;
    let r1 = live::fetch(&spec("ukci"), "GB", (0.0, 1.0), now, &c).unwrap();
    assert!(!r1.cached);
    m.handle.join().unwrap(); // the server is gone: a second answer must come from the cache
    let r2 = live::fetch(&spec("ukci"), "GB", (0.0, 1.0), now + 60.0, &c).unwrap();
    assert!(r2.cached);
    assert_eq!(r2.g_per_kwh, 263.0);
    // Past the TTL the cache is not used: the (closed) server is asked and fails.
    assert!(live::fetch(
        &spec("ukci"),
        "GB",
        (0.0, 1.0),
        now + live::CACHE_TTL_S + 1.0,
        &c
    )
    .is_err());
}

#[test]
fn apply_uses_a_live_answer_and_falls_back_with_a_warning() {
    let m = serve(vec![(
        "/v3/carbon-intensity/latest?zone=DE",
        200,
        fixture("electricitymaps_v3_latest.json"),
    )]);
    let mut r = RunReport::new("r".into());
    r.energy.total_j = 3.6e6;
    r.duration_s = 10.0;
    r.started_at = "2025-01-15T10:00:00Z".into();
    let mut o = CarbonOptions {
        zone: Some("DE".into()),
        pue: Some(1.0),
        live: Some(spec("electricitymaps")),
        live_config: LiveConfig {
            electricitymaps_url: Some(m.url.clone()),
            electricitymaps_key: Some("k".into()),
            ..cfg()
        },
        ..Default::default()
    };
    apply(&mut r, &o).unwrap();
    assert_eq!(r.carbon.operational_g, 302.0);
    assert!(r.carbon.intensity_source.starts_with("Electricity Maps v3"));
    m.handle.join().unwrap();

    // 401: the offline factor is used and the report says so.
    let m = serve(vec![(
        "/v3/",
        401,
        fixture("electricitymaps_v3_error_401.json"),
    )]);
    o.live_config.electricitymaps_url = Some(m.url.clone());
    let mut r2 = RunReport::new("r".into());
    r2.energy.total_j = 3.6e6;
    r2.started_at = "2025-01-15T10:00:00Z".into();
    apply(&mut r2, &o).unwrap();
    assert_eq!(r2.carbon.intensity_g_per_kwh, 344.13992);
    assert!(r2.carbon.intensity_source.contains("Ember"));
    assert!(
        r2.warnings
            .iter()
            .any(|w| w.contains("live intensity unavailable") && w.contains("401")),
        "{:?}",
        r2.warnings
    );
    m.handle.join().unwrap();

    // WattTime without a region: stated fallback, no request.
    let mut r3 = RunReport::new("r".into());
    o.live = Some(spec("watttime"));
    apply(&mut r3, &o).unwrap();
    assert!(r3.warnings.iter().any(|w| w.contains("PROVIDER:REGION")));
    assert_eq!(LiveProvider::WattTime.as_str(), "watttime");
}
