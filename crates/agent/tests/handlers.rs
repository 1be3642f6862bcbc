//! Invariant: the agent's HTTP handlers never read a sensor on the runtime's thread. Window
//! boundaries and the sampler read sensors in tokio's blocking pool, so a slow sensor (NVML
//! can take milliseconds) never stalls the requests being served.

mod common;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use wattprint_agent::Agent;
use wattprint_core::{DomainDesc, DomainKind, Method};
use wattprint_sensors::fake::FakeSensor;
use wattprint_sensors::{RawReading, ReadCadence, SensorInfo};

fn post(addr: &std::net::SocketAddr, path: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn windows_and_the_sampler_read_sensors_off_the_runtime_thread() {
    let readers: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
    let seen = Arc::clone(&readers);
    let info = SensorInfo {
        source: "fake".into(),
        domains: vec![DomainDesc {
            name: "package-0".into(),
            kind: DomainKind::CpuPackage,
            source: "fake".into(),
            method: Method::Counter,
            counted_in_total: true,
            device: None,
        }],
        cadence: ReadCadence::Boundaries { guard_s: None },
        setup: "none".into(),
    };
    let sensor = FakeSensor::new(info, move |t, out| {
        seen.lock().unwrap().push(std::thread::current().id());
        out[0] = RawReading::EnergyCounter {
            joules: 50.0 * t,
            range_j: None,
        };
        Ok(())
    });
    let cfg = common::loopback_config(0.02);
    let agent = Agent::bind(cfg, vec![Box::new(sensor)]).unwrap();
    let addr = agent.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (id_tx, id_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        // `serve` runs its current-thread runtime on this thread.
        id_tx.send(std::thread::current().id()).unwrap();
        agent
            .serve(async {
                let _ = rx.await;
            })
            .unwrap()
    });
    let runtime_thread = id_rx.recv().unwrap();
    let before = readers.lock().unwrap().len();
    let begun = post(&addr, "/v1/windows", r#"{"name": "w"}"#);
    assert!(begun.starts_with("HTTP/1.1 201"), "{begun}");
    let id: u64 = begun
        .split("\"id\":")
        .nth(1)
        .and_then(|r| r.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap();
    let ended = post(&addr, &format!("/v1/windows/{id}/end"), "");
    assert!(ended.starts_with("HTTP/1.1 200"), "{ended}");
    let _ = tx.send(());
    server.join().unwrap();
    let reads = readers.lock().unwrap().clone();
    // Begin and end each read the sensor, and the sampler ticked meanwhile.
    assert!(reads.len() >= before + 2, "{} reads", reads.len());
    assert!(
        reads[before..].iter().all(|t| *t != runtime_thread),
        "a sensor was read on the runtime's thread"
    );
}
