//! Load benchmark (not a timed test): span reports per second on loopback and their latency.
//!
//! `cargo bench -p wattprint-agent --bench load` (env: `LOAD_SECONDS` per phase, default 5;
//! `LOAD_CLIENTS`, default 2). Phase 1: one span per POST over keep-alive connections, so
//! every span is one HTTP request (the hard case). Phase 2: batches of 100 spans per POST.
//! Prints spans/s and per-request latency percentiles; figures go in docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wattprint_agent::{Agent, AgentConfig, CarbonFactor};
use wattprint_sensors::fake::FakeSensor;

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    wattprint_core::stats::percentile(sorted, q).unwrap_or(f64::NAN)
}

fn phase(addr: std::net::SocketAddr, clients: usize, seconds: f64, batch: usize) {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|k| {
            std::thread::spawn(move || {
                let mut c = common::Conn::open(addr);
                let mut lat = Vec::new();
                let mut spans = 0usize;
                while t0.elapsed().as_secs_f64() < seconds {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64();
                    let items: Vec<String> = (0..batch)
                        .map(|i| {
                            format!(
                                r#"{{"start_unix_s":{},"end_unix_s":{},"tokens":{},"labels":{{"model":"m{}"}}}}"#,
                                now - 0.05,
                                now,
                                10 + i,
                                k
                            )
                        })
                        .collect();
                    let body = format!("[{}]", items.join(","));
                    let s = Instant::now();
                    let r = c.request("POST", "/v1/spans", Some(&body));
                    lat.push(s.elapsed().as_secs_f64() * 1e3);
                    assert_eq!(r.status, 200, "{}", r.body);
                    spans += batch;
                }
                (spans, lat)
            })
        })
        .collect();
    let mut total = 0;
    let mut lat = Vec::new();
    for h in handles {
        let (s, l) = h.join().unwrap();
        total += s;
        lat.extend(l);
    }
    let el = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    println!(
        "batch {batch:>4}, {clients} clients: {:>9.0} spans/s, {:>8.0} requests/s, latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} requests in {el:.1} s)",
        total as f64 / el,
        lat.len() as f64 / el,
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        pct(&lat, 100.0),
        lat.len()
    );
}

fn main() {
    let seconds = env("LOAD_SECONDS", 5.0);
    let clients = env("LOAD_CLIENTS", 2.0).max(1.0) as usize;
    let carbon = CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
        zone: Some("FR".into()),
        pue: Some(1.0),
        ..Default::default()
    })
    .expect("FR resolves");
    let mut cfg = AgentConfig::new(carbon);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.interval_s = 1.0;
    let agent = Agent::bind(
        cfg,
        vec![Box::new(FakeSensor::constant_counter(
            "package-0",
            100.0,
            0.0,
            1e12,
        ))],
    )
    .expect("bind");
    let addr = agent.local_addr().unwrap();
    let shared = agent.shared();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        agent
            .serve(async {
                let _ = rx.await;
            })
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    phase(addr, clients, seconds, 1);
    phase(addr, clients, seconds, 100);
    {
        let st = wattprint_agent::lock(&shared);
        println!(
            "agent: {} spans received, {} pending, {} dropped, peak RSS {} MiB, CPU {:.2} s (process, clients included)",
            st.spans_received(),
            st.pending_spans(),
            st.losses().spans_dropped,
            wattprint_agent::overhead::peak_rss_bytes() >> 20,
            wattprint_agent::overhead::process_cpu_s()
        );
    }
    let _ = tx.send(());
    let _ = server.join();
}
