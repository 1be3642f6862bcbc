//! What can be measured here (`wattprint sensors`): every sensor with its domains, accuracy
//! class and measured read cost, and every absent one with its reason and fix.

use crate::config::SensorConfig;
use crate::discover::discover;
use serde::Serialize;
use std::time::Instant;
use wattprint_core::{stats, DomainKind, Method, SensorSource};
use wattprint_sensors::{RawReading, ReadCadence};

/// Reads timed per sensor to measure its read cost.
pub const TIMED_READS: usize = 9;

#[derive(Clone, Debug, Serialize)]
pub struct Inventory {
    pub sensors: Vec<SensorEntry>,
    pub absent: Vec<AbsentEntry>,
    /// Fallback notes (e.g. the model is in use because RAPL is unreadable).
    pub notes: Vec<String>,
    /// GPUs found: name, UUID, how they are read, power limit, MIG.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SensorEntry {
    pub source: SensorSource,
    /// Accuracy class of its domains (`counter`, `power`, `model`).
    pub methods: Vec<Method>,
    pub domains: Vec<DomainEntry>,
    /// Median wall time of one read of all its domains, µs.
    pub read_cost_us: f64,
    /// `boundaries` (counters, with the wrap guard period) or `poll` (with the interval).
    pub cadence: String,
    pub setup: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DomainEntry {
    pub name: String,
    pub kind: DomainKind,
    pub method: Method,
    pub counted_in_total: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Whether the timed reads returned a value for it.
    pub readable: bool,
}

/// A sensor not used here, as `wattprint sensors` lists it.
pub type AbsentEntry = crate::discover::AbsentSensor;

/// Discover and time every sensor.
pub fn inventory(config: &SensorConfig) -> Inventory {
    let d = discover(config);
    let gpus = d.gpus.iter().map(|g| g.describe()).collect();
    let start = Instant::now();
    let mut sensors = Vec::new();
    for mut s in d.sensors {
        let info = s.info().clone();
        let mut buf = vec![RawReading::Missing; info.domains.len()];
        let mut times = Vec::with_capacity(TIMED_READS);
        let mut readable = vec![true; info.domains.len()];
        for _ in 0..TIMED_READS {
            let t0 = Instant::now();
            let res = s.read(start.elapsed().as_secs_f64(), &mut buf);
            times.push(t0.elapsed().as_secs_f64() * 1e6);
            for (k, r) in buf.iter().enumerate() {
                if res.is_err() || matches!(r, RawReading::Missing) {
                    readable[k] = false;
                }
            }
        }
        let mut methods: Vec<Method> = info.domains.iter().map(|d| d.method).collect();
        methods.sort();
        methods.dedup();
        sensors.push(SensorEntry {
            source: info.source.clone(),
            methods,
            domains: info
                .domains
                .iter()
                .zip(readable)
                .map(|(d, ok)| DomainEntry {
                    name: d.name.clone(),
                    kind: d.kind,
                    method: d.method,
                    counted_in_total: d.counted_in_total,
                    device: d.device.clone(),
                    readable: ok,
                })
                .collect(),
            read_cost_us: stats::median(times).unwrap_or(0.0),
            cadence: match info.cadence {
                ReadCadence::Boundaries { guard_s: Some(g) } => {
                    format!("boundaries (wrap guard every {g:.3} s)")
                }
                ReadCadence::Boundaries { guard_s: None } => "boundaries (no wrap guard)".into(),
                ReadCadence::Poll { preferred_s } => format!("poll every {preferred_s} s"),
            },
            setup: info.setup.clone(),
        });
    }
    Inventory {
        sensors,
        absent: d.absent,
        notes: d.notes,
        gpus,
    }
}

/// Human text for `wattprint sensors`.
pub fn render(inv: &Inventory) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if inv.sensors.is_empty() {
        let _ = writeln!(s, "No usable sensor.");
    }
    for e in &inv.sensors {
        let methods: Vec<&str> = e.methods.iter().map(|m| m.as_str()).collect();
        let _ = writeln!(
            s,
            "{} [{}]  read cost {:.1} µs, {}; setup: {}",
            e.source,
            methods.join(", "),
            e.read_cost_us,
            e.cadence,
            e.setup
        );
        for d in &e.domains {
            let _ = writeln!(
                s,
                "  {:<16} {:<13} {:<8} {}{}{}",
                d.name,
                d.kind.as_str(),
                d.method.as_str(),
                if d.counted_in_total {
                    "in total"
                } else {
                    "not in total (inside another domain)"
                },
                if d.readable { "" } else { ", UNREADABLE now" },
                d.device
                    .as_deref()
                    .map_or_else(String::new, |x| format!("  [{x}]"))
            );
        }
    }
    if !inv.gpus.is_empty() {
        let _ = writeln!(s, "\nGPUs:");
    }
    for g in &inv.gpus {
        let _ = writeln!(s, "  {g}");
    }
    if !inv.absent.is_empty() {
        let _ = writeln!(s, "\nNot used:");
    }
    for a in &inv.absent {
        let _ = writeln!(s, "  {}: {}", a.source, a.reason);
        if let Some(f) = &a.fix {
            let _ = writeln!(s, "    fix: {f}");
        }
    }
    for n in &inv.notes {
        let _ = writeln!(s, "\nnote: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_sensors::fake_tree::FakeRaplTree;

    #[test]
    fn a_fake_rapl_tree_is_listed_with_its_read_cost() {
        let d = tempfile::tempdir().unwrap();
        let t = FakeRaplTree::new(d.path()).unwrap();
        t.add_zone("0", "package-0", 1, 262_143_328_850, Some(125_000_000))
            .unwrap();
        t.add_zone("0:0", "dram", 1, 65_712_999_613, None).unwrap();
        let inv = inventory(&SensorConfig {
            sysfs_root: d.path().into(),
            ..SensorConfig::default()
        });
        assert_eq!(inv.sensors.len(), 1);
        let e = &inv.sensors[0];
        assert_eq!(e.source, SensorSource::RaplPowercap);
        assert_eq!(e.methods, vec![Method::Counter]);
        assert!(e.read_cost_us > 0.0);
        assert!(e.domains.iter().all(|d| d.readable && d.counted_in_total));
        let text = render(&inv);
        assert!(text.contains("package-0"), "{text}");
        assert!(text.contains("rapl-perf: "), "{text}");
    }
}
