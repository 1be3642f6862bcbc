//! Latency the metering proxy adds (not a timed test): the same small chat completion sent
//! straight to a stand-in engine on 127.0.0.1 and through `--proxy`, one client over a
//! keep-alive connection, alternating so both see the same machine load.
//!
//! `cargo bench -p wattprint-agent --bench proxy` (env `PROXY_REQUESTS`, default 2000).
//! Prints p50 and p99 of each path and of the difference; figures go in
//! docs/benchmarks.md. The proxy opens one connection to the engine per request (no pool),
//! which this figure includes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use wattprint_agent::Agent;
use wattprint_sensors::fake::FakeSensor;

const ANSWER: &str = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}"#;

/// A keep-alive stand-in engine answering every request with `ANSWER`.
fn engine() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = write!(
                        w,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
                        ANSWER.len()
                    );
                }
            });
        }
    });
    addr
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    wattprint_core::stats::percentile(sorted, q).unwrap_or(f64::NAN) * 1e3
}

fn main() {
    let n: usize = std::env::var("PROXY_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let up = engine();
    let mut cfg = common::loopback_config(1.0);
    cfg.proxy =
        Some(wattprint_agent::proxy::parse_spec(&format!("127.0.0.1:0=http://{up}")).unwrap());
    let agent = Agent::bind(
        cfg,
        vec![Box::new(FakeSensor::constant_counter(
            "package-0",
            100.0,
            0.0,
            1e12,
        ))],
    )
    .unwrap();
    let proxy = agent.proxy_addr().unwrap();
    std::thread::spawn(move || agent.serve(std::future::pending()).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let mut direct = common::Conn::open(up);
    let mut via = common::Conn::open(proxy);
    let (mut d, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for k in 0..n + 100 {
        for (conn, out) in [(&mut direct, &mut d), (&mut via, &mut p)] {
            let t = Instant::now();
            let r = conn.request("POST", "/v1/chat/completions", Some(body));
            let dt = t.elapsed().as_secs_f64();
            assert_eq!(r.status, 200, "{}", r.body);
            if k >= 100 {
                out.push(dt); // the first 100 warm up
            }
        }
    }
    let added: Vec<f64> = p.iter().zip(&d).map(|(a, b)| a - b).collect();
    let (d, p, added) = (
        wattprint_core::stats::sorted(d),
        wattprint_core::stats::sorted(p),
        wattprint_core::stats::sorted(added),
    );
    println!("{n} chat completions each way, one keep-alive client, loopback");
    println!(
        "direct  p50 {:.3} ms  p99 {:.3} ms",
        pct(&d, 50.0),
        pct(&d, 99.0)
    );
    println!(
        "proxied p50 {:.3} ms  p99 {:.3} ms",
        pct(&p, 50.0),
        pct(&p, 99.0)
    );
    println!(
        "added   p50 {:.3} ms  p99 {:.3} ms",
        pct(&added, 50.0),
        pct(&added, 99.0)
    );
}
