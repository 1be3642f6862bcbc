//! Offline attribution throughput (a bench binary, not a timed test):
//! `cargo bench -p wattprint-core --bench attribute`. Attributes N spans (default 1,000,000;
//! env `SPANS`) over one-second slices, ~50 requests in flight, half with token counts, and
//! prints spans per second; figures go in docs/benchmarks.md.

use std::time::Instant;
use wattprint_core::requests::{attribute, Slice, Span};

fn main() {
    let n: usize = std::env::var("SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Deterministic pseudo-random spans: arrivals at 1000/s, durations 0-100 ms.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let spans: Vec<Span> = (0..n)
        .map(|k| {
            let start = k as f64 * 1e-3 + next() * 1e-3;
            let tokens = (k % 2 == 0).then(|| 1 + (next() * 500.0) as u64);
            Span {
                start_s: start,
                end_s: start + next() * 0.1,
                tokens,
            }
        })
        .collect();
    let horizon = n as f64 * 1e-3 + 1.0;
    let slices: Vec<Slice> = (0..horizon.ceil() as usize)
        .map(|k| Slice {
            start_s: k as f64,
            end_s: k as f64 + 1.0,
            energy_j: 100.0 + (k % 7) as f64,
        })
        .collect();
    let mut best = f64::INFINITY;
    let mut check = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = attribute(&slices, &spans);
        best = best.min(t.elapsed().as_secs_f64());
        check = r.attributed_j() + r.idle_j - r.total_j;
    }
    println!(
        "attributed {n} spans over {} slices: best of 5 {:.3} s = {:.2} M spans/s (conservation error {check:.2e} J)",
        slices.len(),
        best,
        n as f64 / best / 1e6
    );
}
