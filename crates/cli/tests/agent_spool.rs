//! `wattprint agent --spool`: a real agent process on a fake RAPL tree is SIGKILLed with a
//! window open, restarted on the same spool, and the window resumes (same id, its energy
//! before the kill kept, the downtime a gap); the counters never go back.

use std::io::{BufReader, Read, Write};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wattprint_sensors::fake_tree::FakeRaplTree;

mod common;

/// Kills the agent if the test fails half-way.
struct Agent {
    child: Child,
    err: BufReader<ChildStderr>,
    addr: String,
    log: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(sys: &std::path::Path, spool: &std::path::Path) -> Agent {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .args(["agent", "--listen", "127.0.0.1:0", "--interval", "100ms"])
        .args(["--zone", "FR", "--pue", "1.0", "--spool"])
        .arg(spool)
        .env("WATTPRINT_SYSFS_ROOT", sys)
        .env("WATTPRINT_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .env("WATTPRINT_AMDSMI_LIB", "/nonexistent/libamd_smi.so")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let addr = common::listening_addr(&mut err, &mut log);
    let addr = addr.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no listening line in:\n{log}")
    });
    Agent {
        child,
        err,
        addr,
        log,
    }
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

/// The value of the first sample of `series` (name and labels, as exposed).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Poll `f` until it gives a value, for at most 10 s.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const ENERGY: &str = "wattprint_energy_joules_total{domain=\"package-0\",device=\"\",kind=\"cpu-package\",source=\"rapl-powercap\",counted=\"true\"}";

#[test]
fn a_sigkilled_agent_resumes_its_open_window_and_its_counters_from_the_spool() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("sys");
    let spool = d.path().join("spool.sqlite");
    let t = FakeRaplTree::new(&sys).unwrap();
    t.add_zone("0", "package-0", 1_000_000, 262_143_328_850, None)
        .unwrap();
    // 10 W: the counter advances 100 mJ every 10 ms for the whole test.
    let on = Arc::new(AtomicBool::new(true));
    let ticker = {
        let (root, on) = (sys.clone(), Arc::clone(&on));
        std::thread::spawn(move || {
            let t = FakeRaplTree::new(&root).unwrap();
            let mut uj = 1_000_000u64;
            while on.load(Ordering::SeqCst) {
                uj += 100_000;
                t.set_energy_uj("0", uj).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let mut a = start(&sys, &spool);
    let (status, body) = http(&a.addr, "POST", "/v1/windows", r#"{"name":"job"}"#);
    assert_eq!(status, 201, "{body}");
    let id: u64 = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_u64()
        .unwrap();
    // Energy counted in the window, then a snapshot written after that: the spool has it.
    let (before, window_before) = until("energy in the window", || {
        let (_, m) = http(&a.addr, "GET", "/metrics", "");
        let w = metric(
            &m,
            &format!("wattprint_window_active_energy_joules{{window=\"job\",id=\"{id}\"}}"),
        );
        (w > 0.0).then_some((m, w))
    });
    let seen_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    until("a snapshot after that", || {
        let s = wattprint_store::spool::Spool::open(&spool).ok()?;
        let snap = s.read().ok()??;
        (snap.written_unix_s > seen_unix_s && snap.body.contains("\"name\":\"job\"")).then_some(())
    });
    let energy_before = metric(&before, ENERGY);
    assert!(energy_before > 0.0, "{before}");
    // SAFETY: kill with the pid of our own child.
    unsafe { libc::kill(a.child.id() as i32, libc::SIGKILL) };
    a.child.wait().unwrap();
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_millis(300));

    let mut b = start(&sys, &spool);
    assert!(
        b.log.contains("resumed from the spool: 1 open window(s)"),
        "{}",
        b.log
    );
    let after = until("a tick after the restart", || {
        let (_, m) = http(&b.addr, "GET", "/metrics", "");
        (metric(&m, ENERGY) > energy_before).then_some(m)
    });
    assert_eq!(metric(&after, "wattprint_agent_restarts_total"), 1.0);
    let downtime = metric(&after, "wattprint_agent_downtime_seconds_total");
    assert!(
        downtime >= 0.3 && downtime < killed_at.elapsed().as_secs_f64() + 0.5,
        "{downtime}"
    );
    let (status, body) = http(&b.addr, "POST", &format!("/v1/windows/{id}/end"), "{}");
    assert_eq!(status, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    let total = r["energy"]["total_j"].as_f64().unwrap();
    assert!(
        total > window_before,
        "{total} J after, {window_before} J before the kill"
    );
    let gaps = r["energy"]["gaps"].as_array().unwrap();
    assert!(
        gaps.iter()
            .any(|g| g["reason"].as_str().unwrap().contains("was down")),
        "{gaps:?}"
    );
    // A window begun after the restart never reuses an id.
    let (_, body) = http(&b.addr, "POST", "/v1/windows", r#"{"name":"next"}"#);
    let id2 = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_u64()
        .unwrap();
    assert!(id2 > id, "{id2} after {id}");

    // SAFETY: kill with the pid of our own child.
    unsafe { libc::kill(b.child.id() as i32, libc::SIGTERM) };
    let status = b.child.wait().unwrap();
    let mut rest = String::new();
    b.err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    on.store(false, Ordering::SeqCst);
    ticker.join().unwrap();
}
