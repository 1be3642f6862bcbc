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
