//! A session over a fake RAPL tree whose counters a helper thread advances while the window is
//! open: the report's totals match the counters within 0.5 %.

use wattprint_engine::{ReportContext, SensorConfig, Session};
use wattprint_sensors::fake_tree::{write_fake_procfs, FakeRaplTree};
use wattprint_sensors::Meter;

/// Write `steps` increments to zone `id`, each seen by at least two meter reads.
fn advance(
    t: &FakeRaplTree,
    meter: &Meter,
    id: &str,
    start: u64,
    range: u64,
    inc: u64,
    steps: u32,
) {
    let mut raw = start;
    for _ in 0..steps {
        raw = (raw + inc) % range;
        t.set_energy_uj(id, raw).unwrap();
        let seen = meter.reads();
        while meter.reads() < seen + 2 {
            std::thread::yield_now();
        }
    }
}

#[test]
fn report_totals_match_counters_advanced_during_the_window() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("sys");
    let t = FakeRaplTree::new(&sys).unwrap();
    // 10 J ranges, 2000 W max: guard 2.5 ms. Counters start far from zero.
    let range = 10_000_000;
    t.add_zone("0", "package-0", 9_999_000, range, Some(2_000_000_000))
        .unwrap();
    t.add_zone("0:0", "core", 7_000_000, range, Some(2_000_000_000))
        .unwrap();
    t.add_zone("0:1", "dram", 3_000_000, range, Some(2_000_000_000))
        .unwrap();
    t.add_zone("1", "package-1", 1, range, Some(2_000_000_000))
        .unwrap();
    let proc = d.path().join("proc");
    write_fake_procfs(&proc, "x", 2, 1000, 100, 100).unwrap();
    let mut s = Session::start(SensorConfig {
        sysfs_root: sys,
        procfs_root: proc,
        ..SensorConfig::default()
    });
    let w = s.begin("job");
    std::thread::scope(|sc| {
        let m = s.meter();
        let t = &t;
        sc.spawn(move || advance(t, m, "0", 9_999_000, range, 3_700_000, 30));
        sc.spawn(move || advance(t, m, "0:0", 7_000_000, range, 2_100_000, 30));
        sc.spawn(move || advance(t, m, "0:1", 3_000_000, range, 900_000, 30));
        sc.spawn(move || advance(t, m, "1", 1, range, 4_900_000, 30));
    });
    let e = s.end(w).unwrap();
    let r = s.report(&e, &ReportContext::default());
    // Counted: both packages and dram (core is inside package 0).
    let truth = (3.7 + 0.9 + 4.9) * 30.0;
    let rel = (r.energy.total_j - truth).abs() / truth;
    assert!(rel < 0.005, "total {} vs {truth}", r.energy.total_j);
    let core = r
        .energy
        .domains
        .iter()
        .find(|d| d.name == "core-0")
        .unwrap();
    assert!(!core.counted_in_total);
    assert!((core.joules - 63.0).abs() < 1e-6, "{}", core.joules);
    assert!(r.energy.gaps.is_empty(), "{:?}", r.energy.gaps);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.overhead.setup_steps, vec!["read access to energy_uj"]);
}

#[test]
fn a_root_only_dram_falls_back_to_the_memory_model_and_the_package_stays_measured() {
    use wattprint_engine::Discovery;
    use wattprint_sensors::model::UtilisationModel;
    use wattprint_sensors::powercap::Powercap;
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("sys");
    let t = FakeRaplTree::new(&sys).unwrap();
    // 2 kW max: 12 J between two reads microseconds apart stays plausible.
    t.add_zone(
        "0",
        "package-0",
        5_000_000,
        262_143_328_850,
        Some(2_000_000_000),
    )
    .unwrap();
    t.add_zone("0:0", "dram", 1_000_000, 65_712_999_613, None)
        .unwrap();
    let proc = d.path().join("proc");
    write_fake_procfs(&proc, "x", 2, 1_000_000, 100, 100).unwrap();
    // Tests run as root, for whom mode 000 denies nothing: the opener plays the kernel.
    let opener = |p: &std::path::Path| {
        if p.to_string_lossy().contains("intel-rapl:0:0") {
            Err(std::io::Error::from_raw_os_error(libc::EACCES))
        } else {
            wattprint_sensors::pread::OpenFile::open(p)
        }
    };
    let pc = Powercap::open_with(&sys, &opener).unwrap();
    let mut disc = Discovery::default();
    disc.notes.extend(pc.notes().iter().cloned());
    disc.sensors.push(Box::new(pc));
    disc.standby.push(Box::new(
        UtilisationModel::open(&proc, &sys, 1.0)
            .unwrap()
            .into_standby(),
    ));
    let config = SensorConfig {
        sysfs_root: sys,
        procfs_root: proc,
        ..SensorConfig::default()
    };
    let mut s = Session::with_discovery(config, disc);
    let w = s.begin("job");
    t.set_energy_uj("0", 17_000_000).unwrap();
    let e = s.end(w).unwrap();
    let r = s.report(&e, &ReportContext::default());
    let by = |n: &str| r.energy.domains.iter().find(|d| d.name == n).unwrap();
    // The package stays measured: 12 J from the counter.
    assert!((by("package-0").joules - 12.0).abs() < 1e-9);
    assert!(by("package-0").counted_in_total);
    assert!(!by("dram-0").counted_in_total);
    assert_eq!(r.energy.rejected[0].domain, "dram-0");
    assert_eq!(r.energy.rejected[0].verdict, "unreadable");
    assert!(r.energy.rejected[0].reason.contains("permission denied"));
    assert_eq!(r.energy.rejected[0].replaced_by, vec!["memory-model"]);
    let mem = by("memory-model");
    assert!(mem.counted_in_total && mem.joules > 0.0);
    assert!((r.energy.total_j - 12.0 - mem.joules).abs() < 1e-9);
    assert_eq!(r.energy.model_filled_j, Some(mem.joules));
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("dram-0 unreadable (permission denied")));
}
