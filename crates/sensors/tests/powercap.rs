//! RAPL powercap on fake sysfs trees laid out as the kernel lays them out, with counters
//! advanced in place by a helper thread while the meter runs.

use wattprint_core::DomainKind;
use wattprint_sensors::fake_tree::FakeRaplTree;
use wattprint_sensors::powercap::{find_zones, Powercap};
use wattprint_sensors::{Meter, MeterOptions, ReadCadence, Sensor};

const RANGE_UJ: u64 = 262_143_328_850;

fn server_tree(root: &std::path::Path) -> FakeRaplTree {
    let t = FakeRaplTree::new(root).unwrap();
    t.add_zone("0", "package-0", 1_000, RANGE_UJ, Some(125_000_000))
        .unwrap();
    t.add_zone("0:0", "core", 2_000, RANGE_UJ, None).unwrap();
    t.add_zone("0:1", "uncore", 3_000, RANGE_UJ, None).unwrap();
    t.add_zone("0:2", "dram", 4_000, 65_712_999_613, Some(40_000_000))
        .unwrap();
    t.add_zone("1", "package-1", 5_000, RANGE_UJ, Some(125_000_000))
        .unwrap();
    t.add_zone("1:0", "dram", 6_000, 65_712_999_613, None)
        .unwrap();
    t
}

#[test]
fn subzones_listed_twice_are_read_once() {
    let d = tempfile::tempdir().unwrap();
    let t = server_tree(d.path());
    // Both listings exist: nested and flat.
    assert!(t.zone_dir("0:2").join("energy_uj").exists());
    assert!(d
        .path()
        .join("class/powercap/intel-rapl:0:2/energy_uj")
        .exists());
    let zones = find_zones(d.path()).unwrap();
    let names: Vec<_> = zones.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "package-0",
            "package-1",
            "core-0",
            "uncore-0",
            "dram-0",
            "dram-1"
        ]
    );
    let p = Powercap::open(d.path()).unwrap();
    let counted: Vec<_> = p
        .info()
        .domains
        .iter()
        .map(|d| (d.name.as_str(), d.counted_in_total))
        .collect();
    assert_eq!(
        counted,
        vec![
            ("package-0", true),
            ("package-1", true),
            ("core-0", false),
            ("uncore-0", false),
            ("dram-0", true),
            ("dram-1", true)
        ]
    );
}

#[test]
fn psys_with_packages_is_shown_but_not_counted() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0", 0, RANGE_UJ, None).unwrap();
    t.add_zone("1", "psys", 0, RANGE_UJ, None).unwrap();
    let p = Powercap::open(d.path()).unwrap();
    let psys = p
        .info()
        .domains
        .iter()
        .find(|d| d.kind == DomainKind::Psys)
        .unwrap();
    assert_eq!(psys.name, "psys");
    assert!(!psys.counted_in_total);
}

#[test]
fn psys_alone_is_the_total() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("1", "psys", 0, RANGE_UJ, None).unwrap();
    let p = Powercap::open(d.path()).unwrap();
    assert_eq!(p.info().domains.len(), 1);
    assert!(p.info().domains[0].counted_in_total);
}

#[test]
fn the_guard_period_comes_from_range_and_max_power() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    // 1 J range at 100 W: wraps every 10 ms at most; guard 5 ms.
    t.add_zone("0", "package-0", 0, 1_000_000, Some(100_000_000))
        .unwrap();
    let p = Powercap::open(d.path()).unwrap();
    match p.info().cadence {
        ReadCadence::Boundaries { guard_s: Some(g) } => assert!((g - 0.005).abs() < 1e-12),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_tree_is_unavailable_with_a_fix() {
    let d = tempfile::tempdir().unwrap();
    FakeRaplTree::new(d.path()).unwrap();
    let e = Powercap::open(d.path()).err().unwrap();
    assert!(e.to_string().contains("no RAPL zone"), "{e}");
    let e = Powercap::open(&d.path().join("nothing")).err().unwrap();
    assert!(e.to_string().contains("no powercap tree"), "{e}");
}

/// Advance zone `id` by `steps` increments of `inc_uj`, waiting after each write until the
/// meter has read again, so no two wraps fall between reads; returns the true energy, J.
fn advance(
    t: &FakeRaplTree,
    meter: &Meter,
    id: &str,
    start_uj: u64,
    range_uj: u64,
    inc_uj: u64,
    steps: u32,
) -> f64 {
    let mut raw = start_uj;
    for _ in 0..steps {
        raw = (raw + inc_uj) % range_uj;
        t.set_energy_uj(id, raw).unwrap();
        let seen = meter.reads();
        while meter.reads() < seen + 2 {
            std::thread::yield_now();
        }
    }
    (inc_uj * u64::from(steps)) as f64 * 1e-6
}

#[test]
fn totals_match_counters_that_start_far_from_zero_and_wrap_mid_run() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    // 5 J range, 1000 W max -> guard 2.5 ms; starts 0.5 J below the wrap.
    let range = 5_000_000;
    let start = 4_500_000;
    t.add_zone("0", "package-0", start, range, Some(1_000_000_000))
        .unwrap();
    t.add_zone("0:0", "dram", 17, range, None).unwrap();
    let sensor = Powercap::open(d.path()).unwrap();
    let meter = Meter::start(vec![Box::new(sensor)], MeterOptions::default());
    assert!(meter.period_s().is_some_and(|p| p <= 0.0025 + 1e-12));
    let w = meter.begin("run");
    // 40 steps of 1.3 J on the package: about 10 wraps; dram 0.7 J a step, written too.
    let truth_pkg = advance(&t, &meter, "0", start, range, 1_300_000, 40);
    let truth_dram = advance(&t, &meter, "0:0", 17, range, 700_000, 20);
    let e = meter.end(w).unwrap();
    let domains = meter.domains();
    let pkg = domains.iter().position(|d| d.name == "package-0").unwrap();
    let dram = domains.iter().position(|d| d.name == "dram-0").unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    assert!(
        rel(e.per_domain[pkg].0, truth_pkg) < 0.005,
        "{:?} vs {truth_pkg}",
        e.per_domain
    );
    assert!(
        rel(e.per_domain[dram].0, truth_dram) < 0.005,
        "{:?} vs {truth_dram}",
        e.per_domain
    );
    assert!((e.per_domain[pkg].0 - 52.0).abs() < 1e-6);
    assert!(meter.gaps().is_empty(), "{:?}", meter.gaps());
}

#[test]
fn garbage_in_energy_uj_is_a_gap_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone(
        "0",
        "package-0",
        1_000_000,
        RANGE_UJ,
        Some(1_000_000_000_000),
    )
    .unwrap();
    let sensor = Powercap::open(d.path()).unwrap();
    let meter = Meter::start(vec![Box::new(sensor)], MeterOptions::default());
    let w = meter.begin("run");
    let wait_read = || {
        let seen = meter.reads();
        while meter.reads() < seen + 2 {
            std::thread::yield_now();
        }
    };
    t.set_energy_uj("0", 3_000_000).unwrap();
    wait_read();
    for garbage in [&b"abc\n"[..], b"", b"-5\n", b"1e9\n"] {
        t.write_raw("0", garbage).unwrap();
        wait_read();
    }
    t.set_energy_uj("0", 4_000_000).unwrap();
    wait_read();
    let e = meter.end(w).unwrap();
    // The counter kept counting through the unreadable stretch: nothing is lost.
    assert!((e.per_domain[0].0 - 3.0).abs() < 1e-9, "{:?}", e.per_domain);
    let gaps = meter.gaps();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].reason.contains("energy_uj"), "{}", gaps[0].reason);
}

#[test]
fn a_vanishing_zone_leaves_an_open_gap() {
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0", 0, RANGE_UJ, Some(1_000_000_000_000))
        .unwrap();
    let sensor = Powercap::open(d.path()).unwrap();
    let meter = Meter::start(vec![Box::new(sensor)], MeterOptions::default());
    let w = meter.begin("run");
    t.set_energy_uj("0", 2_000_000).unwrap();
    meter.sample_now();
    t.remove_energy("0").unwrap();
    meter.sample_now();
    let e = meter.end(w).unwrap();
    assert!((e.per_domain[0].0 - 2.0).abs() < 1e-9);
    let gaps = meter.gaps();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0].reason.contains("vanished"), "{}", gaps[0].reason);
}

#[test]
fn mirrored_dies_are_counted_once_and_keep_their_names() {
    // AMD: two die zones of one socket mirror one counter (same value, same increments).
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0-die-0", 123_456_789, RANGE_UJ, None)
        .unwrap();
    t.add_zone("1", "package-0-die-1", 123_456_789, RANGE_UJ, None)
        .unwrap();
    let p = Powercap::open(d.path()).unwrap();
    let doms: Vec<_> = p
        .info()
        .domains
        .iter()
        .map(|d| (d.name.as_str(), d.counted_in_total))
        .collect();
    assert_eq!(
        doms,
        vec![("package-0-die-0", true), ("package-0-die-1", false)]
    );
    assert!(
        p.notes()[0].contains("read the same counter"),
        "{:?}",
        p.notes()
    );
    // Through the meter: the total counts the energy once.
    let mut m = Meter::start(vec![Box::new(p)], MeterOptions::default());
    let w = m.begin("w");
    t.set_energy_uj("0", 133_456_789).unwrap();
    t.set_energy_uj("1", 133_456_789).unwrap();
    let e = m.end(w).unwrap();
    m.stop();
    let domains = m.domains();
    let total: f64 = domains
        .iter()
        .zip(&e.per_domain)
        .filter(|(d, _)| d.counted_in_total)
        .map(|(_, j)| j.0)
        .sum();
    assert!((total - 10.0).abs() < 1e-9, "{total}");
}

#[test]
fn dies_with_their_own_counters_stay_separate() {
    // Cascade Lake AP: two dies per package, each with its own counter.
    let d = tempfile::tempdir().unwrap();
    let t = FakeRaplTree::new(d.path()).unwrap();
    t.add_zone("0", "package-0-die-0", 123_456_789, RANGE_UJ, None)
        .unwrap();
    t.add_zone("1", "package-0-die-1", 98_765_432, RANGE_UJ, None)
        .unwrap();
    let p = Powercap::open(d.path()).unwrap();
    assert!(p.info().domains.iter().all(|d| d.counted_in_total));
    assert!(p.notes().is_empty());
    // Same names as an AMD part, different readings: the names decide nothing.
    assert_eq!(p.info().domains[1].name, "package-0-die-1");
}

#[test]
fn a_root_only_dram_beside_a_readable_package_leaves_the_package_measured() {
    let d = tempfile::tempdir().unwrap();
    let t = server_tree(d.path());
    // Tests run as root, for whom mode 000 denies nothing: the opener plays the kernel.
    let opener = |p: &std::path::Path| {
        if p.to_string_lossy().contains("intel-rapl:0:2") {
            Err(std::io::Error::from_raw_os_error(libc::EACCES))
        } else {
            wattprint_sensors::pread::OpenFile::open(p)
        }
    };
    let mut p = Powercap::open_with(d.path(), &opener).unwrap();
    let names: Vec<_> = p.info().domains.iter().map(|d| d.name.clone()).collect();
    let k = names.iter().position(|n| n == "dram-0").unwrap();
    assert!(
        p.notes()[0].contains("dram-0 unreadable"),
        "{:?}",
        p.notes()
    );
    assert!(p.notes()[0].contains("CVE-2020-8694"), "{:?}", p.notes());
    let mut out = vec![wattprint_sensors::RawReading::Missing; names.len()];
    p.read(0.0, &mut out).unwrap();
    assert_eq!(out[k], wattprint_sensors::RawReading::Missing);
    assert!(p.missing_reason(k).unwrap().contains("permission denied"));
    let pkg = names.iter().position(|n| n == "package-0").unwrap();
    assert!(matches!(
        out[pkg],
        wattprint_sensors::RawReading::EnergyCounter { .. }
    ));
    // Every zone denied: the sensor is unavailable, with the safe fix.
    let all_denied = |_: &std::path::Path| Err(std::io::Error::from_raw_os_error(libc::EACCES));
    match Powercap::open_with(d.path(), &all_denied) {
        Err(wattprint_sensors::SensorError::Unavailable { fix, .. }) => {
            assert!(fix.unwrap().contains("udev"))
        }
        _ => panic!("opened with every zone denied"),
    }
    let _ = t;
}
