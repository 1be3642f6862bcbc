//! `wattprint agent` end to end: refusals with exit 2 before anything starts, and a real
//! agent on a fake RAPL tree that serves, then stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use wattprint_sensors::fake_tree::FakeRaplTree;

mod common;

fn refused(args: &[&str], expect: &str) {
    let d = tempfile::tempdir().unwrap();
    let o = common::wattprint(d.path())
        .arg("agent")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(expect), "{err}");
}

#[test]
fn bad_settings_exit_2_and_say_what_to_fix() {
    refused(&["--listen", "0.0.0.0:9464"], "--token-file");
    refused(&["--listen", "localhost"], "HOST:PORT");
    refused(&["--interval", "fast"], "--interval");
    refused(
        &["--interval", "1ms", "--listen", "127.0.0.1:0"],
        "--interval",
    );
    refused(&["--zone", "Atlantis"], "Atlantis");
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("agent.toml");
    std::fs::write(&cfg, "zone = \"FR\"\nlisten_on = \"x\"\n").unwrap();
    refused(&["--config", cfg.to_str().unwrap()], "agent.toml:2");
    refused(&["--token-file", "/nonexistent/token"], "--token-file");
}

#[test]
fn the_agent_serves_a_fake_rapl_tree_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0", 1_000_000, 262_143_328_850, None)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .args([
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "50ms",
            "--zone",
            "FR",
        ])
        .env("WATTPRINT_SYSFS_ROOT", d.path())
        .env("WATTPRINT_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .env("WATTPRINT_AMDSMI_LIB", "/nonexistent/libamd_smi.so")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut log = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        log.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no listening line in:\n{log}"));
    t.set_energy_uj("0", 6_000_000).unwrap();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"domains\":1"), "{body}");
    // SAFETY: kill with a valid pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{log}{rest}");
    assert!(rest.contains("stopped"), "{rest}");
}

/// A failed OTLP push reaches stderr (a `tracing` subscriber is installed by `agent`).
#[cfg(feature = "otlp")]
#[test]
fn a_failed_otlp_push_is_logged_on_stderr() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0", 1_000_000, 262_143_328_850, None)
        .unwrap();
    // A port with nothing listening: every push fails to connect.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .args(["agent", "--listen", "127.0.0.1:0", "--zone", "FR"])
        .arg("--otlp-endpoint")
        .arg(format!("http://127.0.0.1:{port}/v1/metrics"))
        .args(["--otlp-interval", "100ms"])
        .env("WATTPRINT_SYSFS_ROOT", d.path())
        .env("WATTPRINT_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .env("WATTPRINT_AMDSMI_LIB", "/nonexistent/libamd_smi.so")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Bounded: the agent is stopped after 20 s whatever happens.
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(20));
        // SAFETY: kill with a pid of our own child (a no-op error if it is gone).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut found = false;
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        log.push_str(&line);
        if line.contains("OTLP push to") && line.contains("WARN") {
            found = true;
            break;
        }
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
    drop(watchdog);
    assert!(found, "no OTLP failure on stderr:\n{log}");
}
