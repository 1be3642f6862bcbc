//! What every GPU sensor (NVML, amdsmi, hwmon) shares: the device record, the discovery
//! outcome, absent entries.

use crate::sensor::Sensor;
use wattprint_core::{DomainDesc, DomainKind, Method, SensorSource};

/// A sensor that could not be set up, with why and how to fix it (for `wattprint sensors`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AbsentSensor {
    /// Source label, e.g. `nvml`, `amdsmi`, `hwmon`.
    pub source: SensorSource,
    pub reason: String,
    pub fix: Option<String>,
}

/// How a GPU's power is read when it has no energy counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerSource {
    /// Instantaneous power (NVML field 186, hwmon `power*_input`).
    Instant,
    /// An averaged power (`nvmlDeviceGetPowerUsage`: 1 s on Ampere and newer; hwmon
    /// `power*_average`).
    Average,
}

/// One GPU as found at discovery.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuDevice {
    /// Domain name: `gpu-N` (NVML index N), `amdgpu-N` (amdsmi/hwmon order N).
    pub domain: String,
    pub index: u32,
    /// Name as the driver reports it, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    pub uuid: Option<String>,
    /// Enforced power limit, W.
    pub power_limit_w: Option<f64>,
    /// MIG mode on: the energy is the whole physical GPU's, shared by its instances.
    pub mig_enabled: bool,
    pub method: Method,
    /// For `power` GPUs: where power comes from.
    pub power_source: Option<PowerSource>,
    /// Source label, `nvml`, `amdsmi` or `hwmon`.
    pub source: SensorSource,
    /// PCI bus id, e.g. `00000000:3B:00.0`, when the driver gives it (CUDA's PCI order).
    pub pci_bus_id: Option<String>,
    /// UUIDs of its MIG instances (`MIG-...`), when MIG is on and NVML lists them: a MIG
    /// UUID in `CUDA_VISIBLE_DEVICES` names this GPU.
    pub mig_uuids: Vec<String>,
}

impl GpuDevice {
    /// The domain's `device` label: `NAME [UUID]`.
    pub fn label(&self) -> String {
        match &self.uuid {
            Some(u) => format!("{} [{u}]", self.name),
            None => self.name.clone(),
        }
    }

    /// A one-line description for `wattprint sensors`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: {} via {}", self.domain, self.label(), self.source);
        match (self.method, self.power_source) {
            (Method::Counter, _) => s.push_str(", energy counter"),
            (_, Some(PowerSource::Instant)) => s.push_str(", power polled (instantaneous field)"),
            (_, Some(PowerSource::Average)) => {
                s.push_str(", power polled (averaged by the driver: short windows are smoothed)")
            }
            _ => s.push_str(", power polled"),
        }
        if let Some(w) = self.power_limit_w {
            s.push_str(&format!(", power limit {w} W"));
        }
        if self.mig_enabled {
            s.push_str(", MIG enabled (whole-GPU energy, shared by its instances)");
        }
        s
    }
}

/// Where per-process GPU utilisation comes from: NVML's sampler
/// ([`crate::nvml::GpuProcessSampler`]) on a host, a scripted one
/// (`crate::fake::FakeGpuProcesses`) in tests.
pub trait GpuProcessSource: Send {
    /// The samples taken since the previous call (none when the driver gave none).
    fn sample(&mut self) -> Vec<crate::nvml::GpuProcessSample>;
}

impl GpuProcessSource for crate::nvml::GpuProcessSampler {
    fn sample(&mut self) -> Vec<crate::nvml::GpuProcessSample> {
        crate::nvml::GpuProcessSampler::sample(self)
    }
}

/// What GPU discovery found: sensors for the meter, the devices, and absent entries.
#[derive(Default)]
pub struct GpuDiscovery {
    pub sensors: Vec<Box<dyn Sensor>>,
    pub devices: Vec<GpuDevice>,
    pub absent: Vec<AbsentSensor>,
    /// Per-process utilisation sampler for GPU attribution, when the library has one.
    pub process_sampler: Option<crate::nvml::GpuProcessSampler>,
}

impl GpuDiscovery {
    /// Append another discovery's results (NVML + AMD).
    pub fn extend(&mut self, other: GpuDiscovery) {
        self.sensors.extend(other.sensors);
        self.devices.extend(other.devices);
        self.absent.extend(other.absent);
        if self.process_sampler.is_none() {
            self.process_sampler = other.process_sampler;
        }
    }
}

/// Keep the entries of `items` (parallel to `info.domains`) whose domain `keep` accepts, and
/// the domains with them: what every GPU sensor's [`Sensor::retain_domains`] does.
pub(crate) fn retain_parallel<T>(
    info: &mut crate::sensor::SensorInfo,
    items: &mut Vec<T>,
    last_error: &mut Vec<Option<String>>,
    keep: &dyn Fn(&DomainDesc) -> bool,
) {
    let mask: Vec<bool> = info.domains.iter().map(keep).collect();
    let mut k = 0;
    items.retain(|_| {
        k += 1;
        mask[k - 1]
    });
    let mut k = 0;
    last_error.retain(|_| {
        k += 1;
        mask[k - 1]
    });
    info.domains.retain(|d| keep(d));
}

/// The meter domain of a GPU.
pub fn gpu_domain(d: &GpuDevice) -> DomainDesc {
    DomainDesc {
        name: d.domain.clone(),
        kind: DomainKind::Gpu,
        source: d.source.clone(),
        method: d.method,
        counted_in_total: true,
        device: Some(d.label()),
    }
}
