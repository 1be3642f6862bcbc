//! The metering proxy between a real HTTP client (hyper's) and a stand-in engine, both on
//! 127.0.0.1: bytes pass through unchanged, each request settles as a span, and a broken
//! engine or a client that never reads cost bounded memory while the agent keeps serving.

mod common;

use bytes::Bytes;
use common::Conn;
use http_body_util::{BodyExt, Full};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wattprint_agent::client::{connect, HttpUrl};

struct Req {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A stand-in engine on 127.0.0.1: one thread per connection runs `handler`. Stops when
/// dropped (and after 60 s at most).
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn upstream(handler: impl Fn(Req, TcpStream) + Send + Sync + 'static) -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let handler = Arc::new(handler);
    let thread = std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut workers = Vec::new();
        while !s.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(60) {
            let Ok((stream, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let h = Arc::clone(&handler);
            workers.push(std::thread::spawn(move || {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                let mut len = 0;
                loop {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (k, v) = l.split_once(':').unwrap();
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                    headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                h(
                    Req {
                        path,
                        headers,
                        body,
                    },
                    stream,
                );
            }));
        }
        for w in workers {
            let _ = w.join();
        }
    });
    Upstream {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// Write `events` as one chunked `text/event-stream` answer, one chunk per event, with a
/// `pause` between them (the engine generating); returns the payload bytes sent.
fn write_sse(mut s: TcpStream, events: &[String], end: bool, pause: Duration) {
    write!(
        s,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-engine: stand-in\r\n\r\n"
    )
    .unwrap();
    for e in events {
        write!(s, "{:x}\r\n{e}\r\n", e.len()).unwrap();
        s.flush().unwrap();
        std::thread::sleep(pause);
    }
    if end {
        s.write_all(b"0\r\n\r\n").unwrap();
    } else {
        // Broken off mid-stream: a reset, not an end.
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

fn chunk(content: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\n")
}

/// An agent with a 100 W fake counter whose metering proxy forwards to `up`.
fn agent(up: SocketAddr, idle_timeout_s: f64) -> common::Running {
    let mut cfg = common::loopback_config(0.02);
    cfg.limits.settle_lag_s = 0.05;
    cfg.idle_timeout_s = idle_timeout_s;
    cfg.proxy =
        Some(wattprint_agent::proxy::parse_spec(&format!("127.0.0.1:0=http://{up}")).unwrap());
    common::serve_100w(cfg)
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Result<Vec<u8>, String>,
}

/// POST through the proxy with hyper's client; the body read frame by frame.
fn post(proxy: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = HttpUrl::parse(&format!("http://{proxy}{path}")).unwrap();
        let mut sender = connect::<Full<Bytes>>(&url).await.unwrap();
        let mut req = hyper::Request::post(url.path_and_query.as_str())
            .header("host", url.authority())
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
            .unwrap();
        let (parts, mut b) = resp.into_parts();
        let mut got = Vec::new();
        let mut err = None;
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        got.extend_from_slice(&d);
                    }
                }
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: match err {
                Some(e) => Err(e),
                None => Ok(got),
            },
        }
    })
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "not reached in 15 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn settled(api: SocketAddr, id: &str) -> serde_json::Value {
    let mut c = Conn::open(api);
    wait_for(|| {
        let r = c.request("GET", &format!("/v1/requests/{id}"), None);
        let j = r.json();
        (j["status"] == "settled").then_some(j)
    })
}

#[test]
fn streams_pass_byte_for_byte_and_each_request_settles_with_its_tokens_and_labels() {
    let sent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let s2 = Arc::clone(&sent);
    let up = upstream(move |req, stream| {
        let body = String::from_utf8_lossy(&req.body).to_string();
        assert!(
            req.headers.iter().all(|(k, _)| k != "x-wattprint-labels"),
            "our header must not reach the engine"
        );
        if body.contains("\"stream\":true") {
            let mut events: Vec<String> = ["Hel", "lo", " wor", "ld"]
                .iter()
                .map(|c| chunk(c))
                .collect();
            if !body.contains("no-usage") {
                events.push(
                    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":5}}\n\n"
                        .into(),
                );
            }
            events.push("data: [DONE]\n\n".into());
            // Recorded before it is sent: the client may see the end first.
            s2.lock().unwrap().push(events.concat().into_bytes());
            write_sse(stream, &events, true, Duration::from_millis(80));
        } else {
            let answer = format!(
                "{{\"id\":\"c1\",\"object\":\"text_completion\",\"path\":\"{}\",\"choices\":[{{\"text\":\"ok\"}}],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":7,\"total_tokens\":10}}}}",
                req.path
            );
            let mut s = stream;
            write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    let a = agent(up.addr, 10.0);
    // Streamed, with usage, a task prefix and the caller's labels.
    let r = post(
        a.proxy(),
        "/t/task-7/v1/chat/completions",
        &[("x-wattprint-labels", "team=search, tenant=acme")],
        r#"{"model":"m1","stream":true,"messages":[]}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    assert_eq!(r.headers["x-engine"], "stand-in");
    let body = r.body.unwrap();
    assert_eq!(
        body,
        sent.lock().unwrap()[0],
        "the stream must pass unchanged"
    );
    let id = r.headers["x-wattprint-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let j = settled(a.addr(), &id);
    assert_eq!(j["tokens"], 5);
    let l = &j["labels"];
    for (k, v) in [
        ("model", "m1"),
        ("task", "task-7"),
        ("team", "search"),
        ("tenant", "acme"),
        ("endpoint", "chat/completions"),
        ("outcome", "complete"),
        ("tokens_from", "usage"),
    ] {
        assert_eq!(l[k], v, "{l}");
    }
    // Alone on a constant 100 W meter, the request carries 100 W over its own time (to the
    // tens of ms by which a sample's time and its sensor read may differ on a loaded
    // machine: 10 % of ~0.5 s).
    let secs = j["end_unix_s"].as_f64().unwrap() - j["start_unix_s"].as_f64().unwrap();
    let e = j["energy_j"].as_f64().unwrap();
    assert!(secs > 0.4, "{secs}");
    assert!(
        (e - 100.0 * secs).abs() <= 0.1 * 100.0 * secs,
        "{e} J over {secs} s"
    );
    // Streamed without usage: content chunks counted (the role-only and [DONE] lines not).
    let r = post(
        a.proxy(),
        "/v1/chat/completions",
        &[],
        r#"{"model":"m1","stream":true,"user":"no-usage"}"#,
    );
    assert_eq!(r.body.unwrap(), sent.lock().unwrap()[1]);
    let j = settled(
        a.addr(),
        r.headers["x-wattprint-request-id"].to_str().unwrap(),
    );
    assert_eq!(
        (j["tokens"].as_u64(), j["labels"]["tokens_from"].as_str()),
        (Some(4), Some("chunks"))
    );
    // Not streamed: the usage of the JSON answer; the query string reaches the engine.
    let r = post(
        a.proxy(),
        "/v1/completions?x=1",
        &[],
        r#"{"model":"m2","prompt":"hi"}"#,
    );
    let text = String::from_utf8(r.body.unwrap()).unwrap();
    assert!(text.contains("\"path\":\"/v1/completions?x=1\""), "{text}");
    let j = settled(
        a.addr(),
        r.headers["x-wattprint-request-id"].to_str().unwrap(),
    );
    assert_eq!(j["tokens"], 7);
    assert_eq!(j["labels"]["model"], "m2");
    // Other paths are not forwarded.
    let r = post(a.proxy(), "/admin", &[], "{}");
    assert_eq!(r.status, 404);
    let mut c = Conn::open(a.addr());
    let s = c.request("GET", "/v1/requests/summary", None).json();
    assert_eq!(s["proxy"]["forwarded"], 3);
    assert_eq!(s["proxy"]["refused"], 1);
    assert_eq!(c.request("GET", "/v1/requests/999999", None).status, 404);
}

#[test]
fn an_engine_resetting_mid_stream_is_counted_and_the_agent_keeps_serving() {
    let up = upstream(|_, stream| {
        write_sse(
            stream,
            &[chunk("a"), chunk("b")],
            false,
            Duration::from_millis(5),
        );
    });
    let a = agent(up.addr, 10.0);
    let r = post(
        a.proxy(),
        "/v1/chat/completions",
        &[],
        r#"{"model":"m","stream":true}"#,
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body.is_err(),
        "a broken-off stream must not look complete to the client"
    );
    let id = r.headers["x-wattprint-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let j = settled(a.addr(), &id);
    assert_eq!(j["labels"]["outcome"], "upstream_reset");
    assert_eq!(j["tokens"], 2);
    let mut c = Conn::open(a.addr());
    let s = c.request("GET", "/v1/requests/summary", None).json();
    assert_eq!(s["proxy"]["upstream_resets"], 1);
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
    let m = c.request("GET", "/metrics", None).body;
    assert!(
        m.contains("wattprint_proxy_requests_total{outcome=\"upstream_reset\"} 1"),
        "{m}"
    );
    // An engine that is not there: 502 with a JSON error.
    drop(up);
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = agent(dead, 10.0);
    let r = post(b.proxy(), "/v1/completions", &[], r#"{"model":"m"}"#);
    assert_eq!(r.status, 502);
    let e: serde_json::Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
    assert!(e["error"].as_str().unwrap().contains("connecting"), "{e}");
}

#[test]
fn a_client_that_never_reads_holds_bounded_memory_and_is_cut_off() {
    // The engine streams as fast as it can; how much it got rid of is the proxy's buffering
    // plus the sockets' buffers.
    let written = Arc::new(Mutex::new((0usize, false)));
    let w2 = Arc::clone(&written);
    let up = upstream(move |_, mut s| {
        write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        .unwrap();
        let event = chunk(&"x".repeat(4000));
        let frame = format!("{:x}\r\n{event}\r\n", event.len());
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if s.write_all(frame.as_bytes()).is_err() {
                w2.lock().unwrap().1 = true;
                return;
            }
            w2.lock().unwrap().0 += frame.len();
        }
    });
    let a = agent(up.addr, 0.5);
    let mut client = TcpStream::connect(a.proxy()).unwrap();
    let body = r#"{"model":"m","stream":true}"#;
    write!(
        client,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        a.proxy(),
        body.len()
    )
    .unwrap();
    // Never read: the proxy stops taking from the engine, then cuts the client off after
    // the idle timeout, which ends the engine's connection too.
    let t0 = Instant::now();
    let (total, failed) = wait_for(|| {
        let w = *written.lock().unwrap();
        w.1.then_some(w)
    });
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(
        total < 64 << 20,
        "{total} bytes left the engine for a client that reads nothing: the proxy buffers"
    );
    assert!(failed);
    let mut c = Conn::open(a.addr());
    assert_eq!(c.request("GET", "/healthz", None).status, 200);
    let s = wait_for(|| {
        let s = c.request("GET", "/v1/requests/summary", None).json();
        (s["proxy"]["client_gone"] == 1).then_some(s)
    });
    assert_eq!(s["proxy"]["forwarded"], 1);
    drop(client);
}
