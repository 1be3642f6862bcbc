//! Domains: what a sensor measures, and whether its joules are counted in the total.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a measured domain (SPEC: Measurement model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainKind {
    CpuPackage,
    CpuCore,
    CpuUncore,
    Dram,
    Psys,
    Gpu,
    Accelerator,
    Node,
    MemoryModel,
    CpuModel,
}

impl DomainKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainKind::CpuPackage => "cpu-package",
            DomainKind::CpuCore => "cpu-core",
            DomainKind::CpuUncore => "cpu-uncore",
            DomainKind::Dram => "dram",
            DomainKind::Psys => "psys",
            DomainKind::Gpu => "gpu",
            DomainKind::Accelerator => "accelerator",
            DomainKind::Node => "node",
            DomainKind::MemoryModel => "memory-model",
            DomainKind::CpuModel => "cpu-model",
        }
    }
}

impl fmt::Display for DomainKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a domain's energy is obtained: its accuracy class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A hardware energy counter, differenced.
    Counter,
    /// Sampled power, integrated by the trapezoid rule.
    Power,
    /// Estimated from utilisation through a power model.
    Model,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Counter => "counter",
            Method::Power => "power",
            Method::Model => "model",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::open_enum::open_enum! {
    /// The sensor a reading comes from. Serialised as [`SensorSource::as_str`]; an open set:
    /// fakes, imported reports and estimates name their own.
    pub enum SensorSource {
        /// Intel/AMD RAPL counters through the powercap sysfs tree.
        RaplPowercap => "rapl-powercap",
        /// RAPL counters through the perf `power` PMU.
        RaplPerf => "rapl-perf",
        /// NVIDIA GPUs through NVML.
        Nvml => "nvml",
        /// AMD GPUs through amdsmi.
        Amdsmi => "amdsmi",
        /// hwmon power or energy channels.
        Hwmon => "hwmon",
        /// The utilisation power model (no hardware sensor).
        UtilisationModel => "utilisation-model",
        /// Counters served by a wattprint agent over its Unix socket.
        AgentSocket => "wattprint-agent",
    }
}

/// No source named: the empty string (what a defaulted report field held).
impl Default for SensorSource {
    fn default() -> Self {
        SensorSource::Other(String::new())
    }
}

impl SensorSource {
    /// True for the RAPL sources (powercap or perf).
    pub fn is_rapl(&self) -> bool {
        matches!(self, SensorSource::RaplPowercap | SensorSource::RaplPerf)
    }
}

/// One measured domain, as declared by its sensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainDesc {
    /// Unique within a meter, e.g. `package-0`, `dram-0`, `gpu-0`, `cpu-model`.
    pub name: String,
    pub kind: DomainKind,
    /// The sensor that reads it, e.g. `rapl-powercap`, `nvml`, `utilisation-model`.
    pub source: SensorSource,
    pub method: Method,
    /// Whether its joules enter the total (each joule counted once: core/uncore sit inside
    /// the package, psys contains the packages).
    pub counted_in_total: bool,
    /// Device label for GPUs and sockets (model name, UUID), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Decide `counted_in_total` for a set of CPU-side domains so that each joule counts once.
///
/// Rules (SPEC, issue 2): package and dram count; core and uncore are inside the package;
/// psys contains the packages, so it counts only when no package is present. Domains of other
/// kinds (GPU, node, models) keep the flag they were given.
pub fn assign_counted_in_total(domains: &mut [DomainDesc]) {
    let has_package = domains.iter().any(|d| d.kind == DomainKind::CpuPackage);
    for d in domains.iter_mut() {
        match d.kind {
            DomainKind::CpuPackage | DomainKind::Dram => d.counted_in_total = true,
            DomainKind::CpuCore | DomainKind::CpuUncore => d.counted_in_total = false,
            DomainKind::Psys => d.counted_in_total = !has_package,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, kind: DomainKind) -> DomainDesc {
        DomainDesc {
            name: name.into(),
            kind,
            source: "test".into(),
            method: Method::Counter,
            counted_in_total: false,
            device: None,
        }
    }

    #[test]
    fn package_and_dram_count_core_uncore_and_psys_do_not() {
        let mut v = vec![
            d("package-0", DomainKind::CpuPackage),
            d("core-0", DomainKind::CpuCore),
            d("uncore-0", DomainKind::CpuUncore),
            d("dram-0", DomainKind::Dram),
            d("psys", DomainKind::Psys),
        ];
        assign_counted_in_total(&mut v);
        let counted: Vec<_> = v.iter().map(|x| x.counted_in_total).collect();
        assert_eq!(counted, vec![true, false, false, true, false]);
    }

    #[test]
    fn psys_alone_is_the_total() {
        let mut v = vec![d("psys", DomainKind::Psys)];
        assign_counted_in_total(&mut v);
        assert!(v[0].counted_in_total);
    }

    #[test]
    fn kinds_serialize_kebab_case() {
        assert_eq!(
            serde_json::to_string(&DomainKind::CpuPackage).unwrap(),
            "\"cpu-package\""
        );
        assert_eq!(serde_json::to_string(&Method::Model).unwrap(), "\"model\"");
        assert_eq!(DomainKind::MemoryModel.as_str(), "memory-model");
    }
}
