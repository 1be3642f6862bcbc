//! Privilege separation: the agent serves its counters over a Unix socket with group
//! permissions, and `AgentSocketSensor` (crates/sensors) reads them into an ordinary meter.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use wattprint_agent::socket::SocketConfig;
use wattprint_agent::{Agent, AgentConfig, CarbonFactor};
use wattprint_sensors::agent_socket::AgentSocketSensor;
use wattprint_sensors::fake::FakeSensor;
use wattprint_sensors::{Meter, MeterOptions, RawReading, Sensor};

fn agent(path: &Path, watts: f64) -> Agent {
    let carbon = CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
        intensity_g_per_kwh: Some(100.0),
        pue: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let mut cfg = AgentConfig::new(carbon);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    // SAFETY: getgid has no preconditions.
    let gid = unsafe { libc::getgid() };
    cfg.socket = Some(SocketConfig {
        path: path.to_path_buf(),
        gid: Some(gid),
        mode: 0o660,
    });
    Agent::bind(
        cfg,
        vec![Box::new(FakeSensor::constant_counter(
            "package-0",
            watts,
            0.0,
            1e12,
        ))],
    )
    .unwrap()
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
    assert_eq!(s.info().source, "wattprint-agent");
    assert_eq!(s.info().domains.len(), 1);
    assert_eq!(s.info().domains[0].name, "package-0");
    assert_eq!(s.info().domains[0].source, "fake");
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
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.socket = Some(SocketConfig {
        path: file.clone(),
        gid: None,
        mode: 0o660,
    });
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
    assert_eq!(d.sensors[0].info().source, "wattprint-agent");
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
    assert!(d.absent.iter().any(|a| a.source == "wattprint-agent"));
}
