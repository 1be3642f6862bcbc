//! The meter against scripted sensors with known answers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use wattprint_core::{DomainKind, Method};
use wattprint_sensors::fake::{domain, FakeSensor};
use wattprint_sensors::{
    Meter, MeterOptions, RawReading, ReadCadence, Sensor, SensorError, SensorInfo,
};

fn wait_for(meter: &Meter, t_s: f64) {
    while meter.now_s() < t_s {
        std::thread::yield_now();
    }
}

#[test]
fn counter_energy_matches_power_times_time_across_a_wrap() {
    // 50 W on a counter starting 10 J before a 1000 J range: wraps within the first 0.2 s.
    let s = FakeSensor::constant_counter("package-0", 50.0, 990.0, 1000.0);
    let meter = Meter::start(vec![Box::new(s)], MeterOptions::default());
    let w = meter.begin("run");
    wait_for(&meter, 0.3);
    let e = meter.end(w).unwrap();
    let expected = 50.0 * e.duration_s();
    assert!(
        (e.per_domain[0].0 - expected).abs() <= 0.005 * expected,
        "{} vs {}",
        e.per_domain[0].0,
        expected
    );
}

#[test]
fn power_sensor_is_polled_and_integrated() {
    let s = FakeSensor::power("gpu-0", 0.005, |_| 120.0);
    let meter = Meter::start(vec![Box::new(s)], MeterOptions::default());
    assert_eq!(meter.period_s(), Some(0.005));
    let w = meter.begin("run");
    wait_for(&meter, 0.1);
    let e = meter.end(w).unwrap();
    let expected = 120.0 * e.duration_s();
    assert!((e.per_domain[0].0 - expected).abs() <= 0.005 * expected);
    assert!(meter.reads() >= 10, "polled {} times", meter.reads());
}

#[test]
fn counters_alone_start_no_thread_when_no_guard_is_needed() {
    let info = SensorInfo {
        source: "fake".into(),
        domains: vec![domain(
            "package-0",
            DomainKind::CpuPackage,
            Method::Counter,
            true,
        )],
        cadence: ReadCadence::Boundaries { guard_s: None },
        setup: "none".into(),
    };
    let s = FakeSensor::new(info, |t, out| {
        out[0] = RawReading::EnergyCounter {
            joules: 7.0 * t,
            range_j: None,
        };
        Ok(())
    });
    let meter = Meter::start(vec![Box::new(s)], MeterOptions::default());
    assert_eq!(meter.period_s(), None);
    let w = meter.begin("a");
    let e = meter.end(w).unwrap();
    assert_eq!(meter.reads(), 3, "baseline, begin, end");
    assert!((e.per_domain[0].0 - 7.0 * e.duration_s()).abs() < 1e-9);
}

#[test]
fn a_failing_sensor_leaves_a_gap_and_the_others_keep_counting() {
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = Arc::clone(&calls);
    let info = SensorInfo {
        source: "fake".into(),
        domains: vec![domain("gpu-1", DomainKind::Gpu, Method::Counter, true)],
        cadence: ReadCadence::Boundaries { guard_s: None },
        setup: "none".into(),
    };
    let flaky = FakeSensor::new(info, move |t, out| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        if n == 2 {
            return Err(SensorError::Read("GPU is lost".into()));
        }
        out[0] = RawReading::EnergyCounter {
            joules: 100.0 * t,
            range_j: None,
        };
        Ok(())
    });
    let good = FakeSensor::constant_counter("package-0", 10.0, 0.0, 1e9);
    let meter = Meter::start(
        vec![Box::new(good), Box::new(flaky)],
        MeterOptions::default(),
    );
    let w = meter.begin("run"); // read 2
    let _ = meter.sample_now(); // read 3: fails
    let _ = meter.sample_now(); // read 4: recovers
    let e = meter.end(w).unwrap();
    let gaps = meter.gaps();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].domain, "gpu-1");
    assert!(gaps[0].reason.contains("GPU is lost"));
    assert!((e.per_domain[0].0 - 10.0 * e.duration_s()).abs() < 1e-6);
    // The counter is continuous: energy across the failed read is still recovered.
    assert!((e.per_domain[1].0 - 100.0 * e.duration_s()).abs() < 1e-6);
}

#[test]
fn garbage_readings_are_gaps_not_energy() {
    let info = SensorInfo {
        source: "fake".into(),
        domains: vec![domain(
            "package-0",
            DomainKind::CpuPackage,
            Method::Counter,
            true,
        )],
        cadence: ReadCadence::Boundaries { guard_s: None },
        setup: "none".into(),
    };
    let mut n = 0;
    let s = FakeSensor::new(info, move |_, out| {
        n += 1;
        out[0] = match n {
            1 => RawReading::EnergyCounter {
                joules: 5.0,
                range_j: None,
            },
            2 => RawReading::EnergyCounter {
                joules: f64::NAN,
                range_j: None,
            },
            _ => RawReading::EnergyCounter {
                joules: 9.0,
                range_j: None,
            },
        };
        Ok(())
    });
    let meter = Meter::start(
        vec![Box::new(s) as Box<dyn Sensor>],
        MeterOptions::default(),
    );
    meter.sample_now();
    let snap = meter.sample_now();
    assert_eq!(snap.cumulative[0].0, 4.0);
    assert_eq!(meter.gaps().len(), 1);
}

#[test]
fn an_implausible_jump_is_a_flagged_gap_not_energy() {
    // A counter with a 1000 J range and no declared maximum (bounded at 1000 W x 3): reads
    // 10 J, 20 J, then a "wrap" to 15 J (995 J in a few µs: a reset read as a wrap), then 25 J.
    let info = SensorInfo {
        source: "fake".into(),
        domains: vec![domain(
            "package-0",
            DomainKind::CpuPackage,
            Method::Counter,
            true,
        )],
        cadence: ReadCadence::Boundaries { guard_s: None },
        setup: "none".into(),
    };
    let n = Arc::new(AtomicU32::new(0));
    let k = Arc::clone(&n);
    let s = FakeSensor::new(info, move |_, out| {
        let j = [10.0, 20.0, 15.0, 25.0][k.fetch_add(1, Ordering::SeqCst).min(3) as usize];
        out[0] = RawReading::EnergyCounter {
            joules: j,
            range_j: Some(1000.0),
        };
        Ok(())
    });
    let meter = Meter::start(vec![Box::new(s)], MeterOptions::default());
    let w = meter.begin("run"); // reads 20 J (10 J was the baseline)
    meter.sample_now(); // 15 J: the bogus wrap, dropped
    let e = meter.end(w).unwrap(); // 25 J: +10 J
    assert_eq!(e.per_domain[0].0, 10.0);
    let gaps = meter.gaps();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(
        gaps[0].reason.starts_with("implausible: 995.000 J"),
        "{}",
        gaps[0].reason
    );
    assert!(gaps[0].to_s >= gaps[0].from_s);
}
