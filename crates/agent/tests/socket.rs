//! Privilege separation: the agent serves its counters over a Unix socket with group
//! permissions, and `AgentSocketSensor` (crates/sensors) reads them into an ordinary meter.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use wattprint_agent::socket::SocketConfig;
use wattprint_agent::{Agent, AgentConfig, CarbonFactor};
use wattprint_core::SensorSource;
use wattprint_sensors::agent_socket::AgentSocketSensor;
use wattprint_sensors::fake::FakeSensor;
use wattprint_sensors::{Meter, MeterOptions, RawReading, Sensor};

fn agent(path: &Path, watts: f64) -> Agent {
    agent_with(path, watts, |_| {})
}

fn agent_with(path: &Path, watts: f64, tune: impl FnOnce(&mut SocketConfig)) -> Agent {
    try_agent(path, watts, tune).unwrap()
}

fn try_agent(
    path: &Path,
    watts: f64,
    tune: impl FnOnce(&mut SocketConfig),
) -> Result<Agent, wattprint_agent::AgentError> {
    let carbon = CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
        intensity_g_per_kwh: Some(100.0),
        pue: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let mut cfg = AgentConfig::new(carbon);
    cfg.listen = None;
    // SAFETY: getgid has no preconditions.
    let gid = unsafe { libc::getgid() };
    let mut sc = SocketConfig::new(path.to_path_buf());
    sc.gid = Some(gid);
    tune(&mut sc);
    cfg.socket = Some(sc);
    Agent::bind(
        cfg,
        vec![Box::new(FakeSensor::constant_counter(
            "package-0",
            watts,
            0.0,
            1e12,
        ))],
    )
}

#[test]
fn the_socket_has_group_permissions_and_serves_increasing_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent(&path, 100.0);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    // SAFETY: getgid has no preconditions.
    assert_eq!(meta.gid(), unsafe { libc::getgid() });

    let mut s = AgentSocketSensor::connect(&path).unwrap();
    assert_eq!(s.info().source, SensorSource::AgentSocket);
    assert_eq!(s.info().domains.len(), 1);
    assert_eq!(s.info().domains[0].name, "package-0");
    assert_eq!(s.info().domains[0].source, SensorSource::from("fake"));
    let mut out = [RawReading::Missing];
    s.read(0.0, &mut out).unwrap();
    let RawReading::EnergyCounter { joules: j0, .. } = out[0] else {
        panic!("{out:?}")
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    s.read(0.0, &mut out).unwrap();
    let RawReading::EnergyCounter { joules: j1, .. } = out[0] else {
        panic!("{out:?}")
    };
    // 100 W for at least 50 ms.
    assert!(j1 - j0 >= 5.0 - 1e-9, "{j0} -> {j1}");
}

#[test]
fn an_unprivileged_meter_measures_a_window_through_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent(&path, 40.0);
    let sensor = AgentSocketSensor::connect(&path).unwrap();
    let meter = Meter::start(vec![Box::new(sensor)], MeterOptions::default());
    let w = meter.begin("job");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let e = meter.end(w).unwrap();
    // The agent's fake counter is exactly 40 W on the agent's clock; the agent reads when the
    // client asks, a little after the client's own boundaries, hence the loose bounds.
    let j = e.per_domain[0].0;
    assert!(
        j > 40.0 * 0.05 && j < 40.0 * (e.duration_s() + 1.0),
        "{j} J"
    );
    assert!(meter.gaps().is_empty());
}

#[test]
fn an_agent_restart_is_a_gap_not_a_wrong_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let a = agent(&path, 1000.0);
    let sensor = AgentSocketSensor::connect(&path).unwrap();
    let meter = Meter::start(vec![Box::new(sensor)], MeterOptions::default());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before_j = meter.sample_now().cumulative[0].0;
    assert!(before_j >= 150.0, "{before_j}");
    let t_drop = std::time::Instant::now();
    drop(a);
    // Agent down: reads fail, a gap opens.
    meter.sample_now();
    assert_eq!(meter.gaps().len(), 1);
    // A new agent (counters from zero): the client reconnects; the counter went backwards,
    // which re-baselines inside the same gap instead of counting a bogus delta.
    let _b = agent(&path, 1000.0);
    meter.sample_now();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let after_j = meter.sample_now().cumulative[0].0;
    let gaps = meter.gaps();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].reason.contains("reconnecting"), "{gaps:?}");
    let grew = after_j - before_j;
    assert!(
        grew > 0.0 && grew <= 1000.0 * t_drop.elapsed().as_secs_f64(),
        "{before_j} -> {after_j}"
    );
}

#[test]
fn a_stale_socket_is_replaced_but_another_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    {
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    }
    assert!(path.exists());
    let a = agent(&path, 1.0);
    assert!(AgentSocketSensor::connect(&path).is_ok());
    drop(a);
    assert!(!path.exists(), "the socket is removed when the agent stops");
    let file = dir.path().join("precious.txt");
    std::fs::write(&file, "keep me").unwrap();
    let carbon = CarbonFactor::resolve(Default::default()).unwrap();
    let mut cfg = AgentConfig::new(carbon);
    cfg.listen = None;
    cfg.socket = Some(SocketConfig::new(file.clone()));
    let e = Agent::bind(cfg, vec![]).err().unwrap();
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn an_absent_agent_is_an_unavailable_sensor_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let e = AgentSocketSensor::connect(&dir.path().join("none.sock"))
        .err()
        .unwrap();
    match e {
        wattprint_sensors::SensorError::Unavailable { fix, .. } => {
            assert!(fix.unwrap().contains("docs/privileges.md"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn discovery_uses_the_agent_socket_when_wattprint_agent_socket_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent(&path, 10.0);
    let config = wattprint_engine::SensorConfig::from_lookup(|k| {
        (k == "WATTPRINT_AGENT_SOCKET").then(|| path.clone().into_os_string())
    })
    .unwrap();
    let d = wattprint_engine::discover(&config);
    assert_eq!(d.sensors.len(), 1);
    assert_eq!(d.sensors[0].info().source, SensorSource::AgentSocket);
    assert!(d.notes.iter().any(|n| n.contains("privilege separation")));
    // Unreachable socket: local discovery goes on and the reason is listed.
    let config = wattprint_engine::SensorConfig {
        agent_socket: Some(dir.path().join("gone.sock")),
        sysfs_root: dir.path().join("no-sys"),
        procfs_root: dir.path().join("no-proc"),
        nvml_lib: Some("/nonexistent/libnvidia-ml.so.1".into()),
        amdsmi_lib: Some("/nonexistent/libamd_smi.so".into()),
        ..Default::default()
    };
    let d = wattprint_engine::discover(&config);
    assert!(d
        .absent
        .iter()
        .any(|a| a.source == SensorSource::AgentSocket));
}

#[test]
fn a_live_socket_is_never_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let first = agent(&path, 10.0);
    let e = try_agent(&path, 10.0, |_| {}).err().unwrap();
    assert!(e.to_string().contains("another process is serving"), "{e}");
    // The first agent still owns the path and answers.
    assert!(AgentSocketSensor::connect(&path).is_ok());
    drop(first);
    assert!(!path.exists());
}

#[test]
fn a_socket_that_is_no_longer_ours_is_not_deleted_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let a = agent(&path, 10.0);
    std::fs::remove_file(&path).unwrap();
    let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(a);
    assert!(
        path.exists(),
        "another process's socket must survive the agent's exit"
    );
}

#[test]
fn the_socket_is_born_private_and_the_umask_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    // SAFETY: umask has no preconditions; the value is put back.
    let before = unsafe { libc::umask(0o022) };
    let _a = agent_with(&path, 10.0, |c| c.mode = 0o600);
    // SAFETY: as above.
    let during = unsafe { libc::umask(before) };
    assert_eq!(during, 0o022, "the agent restored the process umask");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn an_idle_socket_client_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent_with(&path, 10.0, |c| c.idle_timeout_s = 0.2);
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    // A partial request, then silence: the agent hangs up (EOF), well before the 5 s bound.
    s.write_all(b"rea").unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    assert!(t0.elapsed() < Duration::from_secs(5));
    // A `wattprint run` client reconnects by itself after such a hang-up.
    let mut sensor = AgentSocketSensor::connect(&path).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let mut out = [RawReading::Missing];
    sensor.read(0.0, &mut out).unwrap();
    assert!(
        matches!(out[0], RawReading::EnergyCounter { .. }),
        "{out:?}"
    );
}

#[test]
fn one_user_cannot_take_every_slot_and_a_refused_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent_with(&path, 10.0, |c| c.max_clients_per_uid = 2);
    let held: Vec<_> = (0..2)
        .map(|_| AgentSocketSensor::connect(&path).unwrap())
        .collect();
    let mut third = std::os::unix::net::UnixStream::connect(&path).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&mut third).read_line(&mut line).unwrap();
    assert!(line.contains("at most 2 per user"), "{line}");
    // A run that cannot use the agent measures locally, and its report says why.
    let config = wattprint_engine::SensorConfig {
        agent_socket: Some(path.clone()),
        sysfs_root: dir.path().join("no-sys"),
        procfs_root: dir.path().join("no-proc"),
        nvml_lib: Some("/nonexistent/libnvidia-ml.so.1".into()),
        amdsmi_lib: Some("/nonexistent/libamd_smi.so".into()),
        ..Default::default()
    };
    let d = wattprint_engine::discover(&config);
    let note = d
        .notes
        .iter()
        .find(|n| n.contains("WATTPRINT_AGENT_SOCKET"))
        .expect("a note about the agent");
    assert!(note.contains("refused"), "{note}");
    assert!(note.contains("own sensors instead"), "{note}");
    drop(held);
}

#[test]
fn socket_mode_serves_no_http_unless_a_token_protects_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let a = agent(&path, 10.0);
    assert_eq!(
        a.local_addr(),
        None,
        "no HTTP listener in socket mode by default"
    );
    drop(a);
    let carbon = CarbonFactor::resolve(Default::default()).unwrap();
    let mut cfg = AgentConfig::new(carbon);
    cfg.socket = Some(SocketConfig::new(path.clone()));
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    let e = wattprint_agent::check(&cfg).unwrap_err();
    assert!(e.to_string().contains("--token-file"), "{e}");
    cfg.token = Some("0123456789abcdef-secret".into());
    assert!(wattprint_agent::check(&cfg).is_ok());
    cfg.socket = None;
    cfg.listen = None;
    assert!(wattprint_agent::check(&cfg).is_err(), "nothing to serve");
}

#[test]
fn overlong_and_unknown_requests_get_a_json_error_and_the_client_stays_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent(&path, 10.0);
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    s.write_all(&[b'x'; 1000]).unwrap();
    s.write_all(b"\nwhat\ninfo\n").unwrap();
    let mut next = || {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    // One answer per line: the 1000-byte line gets one error, not four.
    let v = next();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("longer than 256 bytes"),
        "{v}"
    );
    let v = next();
    assert!(
        v["error"].as_str().unwrap().contains("unknown request"),
        "{v}"
    );
    assert!(next().get("domains").is_some());
}

/// Cases of the socket-protocol property, published in docs/security.md.
const PROTOCOL_CASES: u32 = 500;

#[test]
fn any_request_line_gets_one_json_answer_and_the_agent_keeps_serving() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent(&path, 10.0);
    let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn = std::cell::RefCell::new((s.try_clone().unwrap(), BufReader::new(s)));
    let mut runner = TestRunner::new(Config::with_cases(PROTOCOL_CASES));
    let lines = prop_oneof![
        Just("info".to_string()),
        Just("read".to_string()),
        "[^\n]{0,200}",
        "[^\n]{250,700}",
        "(info|read)[ \t\r]{0,3}",
    ];
    runner
        .run(&lines, |line| {
            let (w, r) = &mut *conn.borrow_mut();
            w.write_all(format!("{line}\n").as_bytes()).unwrap();
            let mut answer = String::new();
            r.read_line(&mut answer).unwrap();
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            let ok = v.get("error").is_some_and(|e| e.is_string())
                || v.get("domains").is_some_and(|d| d.is_array())
                || v.get("joules").is_some_and(|j| j.is_array());
            prop_assert!(ok, "{:?} -> {}", line, answer);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_client_flooding_reads_is_paced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let _a = agent(&path, 10.0);
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let t0 = std::time::Instant::now();
    s.write_all("read\n".repeat(40).as_bytes()).unwrap();
    for _ in 0..40 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("joules"), "{line}");
    }
    // 40 answers at most one per MIN_ANSWER_GAP: at least 39 gaps.
    let min = wattprint_agent::socket::MIN_ANSWER_GAP * 39;
    assert!(t0.elapsed() >= min, "{:?} < {min:?}", t0.elapsed());
}
