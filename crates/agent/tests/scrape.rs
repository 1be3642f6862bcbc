//! `--scrape`: the agent reads a stand-in engine's Prometheus page (127.0.0.1) every
//! interval and turns its counters and the measured energy into per-model figures.

mod common;

use common::Conn;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stand-in engine on 127.0.0.1: every GET answers `page(n)` for the n-th request. Stops
/// when dropped.
struct StandIn {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stand_in(page: impl Fn(u64) -> String + Send + 'static) -> StandIn {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let n = AtomicU64::new(0);
    let thread = std::thread::spawn(move || {
        let t0 = Instant::now();
        while !s.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(30) {
            let Ok((stream, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|k| k > 2) {
                line.clear();
            }
            let body = page(n.fetch_add(1, Ordering::SeqCst));
            let mut w = stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    StandIn {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// vLLM-shaped counters that grow by 10 output tokens, 30 prompt tokens and one finished
/// request per scrape, with one request always running.
fn vllm_page(n: u64) -> String {
    let m = "model_name=\"m\"";
    format!(
        "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{{m}}} 1\n\
         # TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{{{m}}} {}\n\
         # TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total{{{m}}} {}\n\
         # TYPE vllm:request_success_total counter\nvllm:request_success_total{{finished_reason=\"stop\",{m}}} {}\n\
         # TYPE vllm:estimated_flops_per_gpu_total counter\nvllm:estimated_flops_per_gpu_total{{{m}}} {}\n",
        30 * n,
        10 * n,
        n,
        1e12 * n as f64
    )
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

#[test]
fn a_scraped_engine_gets_joules_per_token_and_a_broken_one_is_counted() {
    let engine = stand_in(vllm_page);
    let broken = stand_in(|_| "<html>not metrics</html>\n".to_string());
    let mut cfg = common::loopback_config(0.05);
    cfg.scrape = vec![
        wattprint_agent::scrape::parse_target(&format!("vllm=http://{}/metrics", engine.addr))
            .unwrap(),
        wattprint_agent::scrape::parse_target(&format!("junk=http://{}/metrics", broken.addr))
            .unwrap(),
    ];
    let running = common::serve_100w(cfg);
    let addr = running.addr();
    let mut c = Conn::open(addr);
    let doc = wait_for(|| {
        let r = c.request("GET", "/v1/engines", None);
        let j = r.json();
        let m = &j["engines"][0]["models"][0];
        (m["output_tokens"].as_f64()? >= 50.0
            && j["engines"][1]["losses"]["failures"].as_u64()? >= 3)
            .then_some(j)
    });
    let e = &doc["engines"][0];
    assert_eq!(e["engine"], "vllm");
    let m = &e["models"][0];
    assert_eq!(m["model"], "m");
    let (energy, tokens) = (
        m["energy_j"].as_f64().unwrap(),
        m["output_tokens"].as_f64().unwrap(),
    );
    // Something always runs: no idle, every measured joule goes to the model.
    assert_eq!(e["idle_j"].as_f64(), Some(0.0));
    assert!((energy - e["measured_j"].as_f64().unwrap()).abs() < 1e-9);
    // 100 W over the settled intervals.
    let per_token = m["joules_per_output_token"].as_f64().unwrap();
    assert!((per_token - energy / tokens).abs() < 1e-9);
    assert!(energy > 0.0);
    let requests = m["requests"].as_f64().unwrap();
    assert_eq!(tokens, 10.0 * requests);
    assert!((m["joules_per_request"].as_f64().unwrap() - energy / requests).abs() < 1e-9);
    // 1e12 FLOPs per 10 tokens, one GPU counted (no GPU domain: at least one).
    let fpw = m["flops_per_watt"].as_f64().unwrap();
    assert!((fpw - 1e11 * tokens / energy).abs() / fpw < 1e-9);
    // 100 g/kWh, PUE 1.
    let g1k = m["carbon_g_per_1k_output_tokens"].as_f64().unwrap();
    assert!((g1k - energy / 3.6e6 * 100.0 / tokens * 1000.0).abs() < 1e-12);
    let junk = &doc["engines"][1];
    assert!(junk["losses"]["malformed"].as_u64().unwrap() >= 3);
    assert!(junk["last_error"]
        .as_str()
        .unwrap()
        .contains("not Prometheus text"));
    // The agent keeps serving, and /metrics carries the figures.
    let r = c.request("GET", "/metrics", None);
    assert_eq!(r.status, 200);
    assert!(r.body.ends_with("# EOF\n"));
    assert!(
        r.body.contains(
            "wattprint_engine_joules_per_output_token{target=\"vllm\",engine=\"vllm\",model=\"m\"} "
        ),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("wattprint_engine_scrape_failures_total{target=\"junk\"} "));
    running.stop();
}
