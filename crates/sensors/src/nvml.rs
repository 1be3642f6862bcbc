//! NVIDIA GPUs through NVML, loaded at run time (never linked at build time).
//!
//! The library is the path the caller gives (the engine takes it from `WATTPRINT_NVML_LIB`),
//! else `libnvidia-ml.so.1`; it is loaded and initialised once per process ([`discover`]
//! keeps it in a process-wide cell, never shuts it down, and later calls reuse the first
//! library whatever path they give). Per GPU:
//!
//! - the total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ, Volta and newer),
//!   read at window boundaries (method `counter`), plus a slow guard read so a GPU that
//!   disappears mid-run loses at most the last guard period;
//! - where the counter is not supported, power is polled (method `power`, integrated by the
//!   meter's trapezoid): the instantaneous field 186 (`NVML_FI_DEV_POWER_INSTANT`) where the
//!   driver has it, else `nvmlDeviceGetPowerUsage` (a 1 s average on Ampere and newer, which
//!   the device list says);
//! - name, UUID, enforced power limit and MIG mode are recorded in [`GpuDevice`].
//!
//! A GPU that errors mid-run reads [`RawReading::Missing`] (the meter records a gap) and does
//! not stop the others. MIG: NVML's counter covers the whole physical GPU; MIG instances are
//! not separate domains. No library, a library that is not NVML, or a driver that is not
//! running: an [`AbsentSensor`] with the reason and the fix, and nothing else changes.

use crate::gpu::{gpu_domain, retain_parallel};
pub use crate::gpu::{AbsentSensor, GpuDevice, GpuDiscovery, PowerSource};
use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;
use wattprint_core::{DomainDesc, Method, SensorSource};

/// Environment variable naming the NVML library to load (test seam, SPEC).
pub const NVML_LIB_ENV: &str = "WATTPRINT_NVML_LIB";
/// The library loaded when [`NVML_LIB_ENV`] is not set.
pub const NVML_DEFAULT_SONAME: &str = "libnvidia-ml.so.1";
/// `NVML_FI_DEV_POWER_INSTANT`: instantaneous board power, mW.
pub const FIELD_POWER_INSTANT: u32 = 186;
/// Guard read period of the energy counters, s (the mJ counter never wraps in practice; the
/// guard bounds what a GPU lost mid-run takes with it).
pub const COUNTER_GUARD_S: f64 = 10.0;
/// Poll period of power-only GPUs, s.
pub const POWER_POLL_S: f64 = 0.1;

struct Loaded {
    path: OsString,
    explicit: bool,
    nvml: Result<Nvml, AbsentSensor>,
}

static NVML: OnceLock<Loaded> = OnceLock::new();

fn absent(reason: String, fix: &str) -> AbsentSensor {
    AbsentSensor {
        source: SensorSource::Nvml,
        reason,
        fix: Some(fix.to_string()),
    }
}

fn classify_init_error(path: &str, explicit: bool, e: NvmlError) -> AbsentSensor {
    match e {
        NvmlError::LibloadingError(err) if explicit => absent(
            format!("{NVML_LIB_ENV}={path} could not be loaded: {err}"),
            &format!("point {NVML_LIB_ENV} at the driver's libnvidia-ml.so.1, or unset it"),
        ),
        NvmlError::LibloadingError(_) => absent(
            format!("no NVIDIA driver library ({path} not found)"),
            &format!(
                "install the NVIDIA driver, or set {NVML_LIB_ENV} to libnvidia-ml.so.1's path"
            ),
        ),
        NvmlError::FailedToLoadSymbol(sym) => absent(
            format!("{path} is not NVML: it lacks the NVML entry points ({sym})"),
            &format!("point {NVML_LIB_ENV} at libnvidia-ml.so.1 from the NVIDIA driver"),
        ),
        NvmlError::DriverNotLoaded => absent(
            format!("{path} loaded, but the NVIDIA driver is not running"),
            "load the nvidia kernel module (nvidia-smi must work)",
        ),
        NvmlError::NoPermission => absent(
            format!("{path} loaded, but NVML may not talk to the driver (no permission)"),
            "run as a user with access to /dev/nvidia*",
        ),
        other => absent(
            format!("NVML ({path}) failed to initialise: {other}"),
            "check that nvidia-smi works on this machine",
        ),
    }
}

fn load(lib: Option<&Path>) -> &'static Loaded {
    NVML.get_or_init(|| {
        let (path, explicit) = match lib {
            Some(p) if !p.as_os_str().is_empty() => (p.as_os_str().to_owned(), true),
            _ => (OsString::from(NVML_DEFAULT_SONAME), false),
        };
        let shown = path.to_string_lossy().into_owned();
        let nvml = Nvml::builder()
            .lib_path(&path)
            .init()
            .map_err(|e| classify_init_error(&shown, explicit, e));
        Loaded {
            path,
            explicit,
            nvml,
        }
    })
}

/// The library NVML discovery loaded (or tried to), and whether the caller named it;
/// `None` before the first [`discover`].
pub fn library_path() -> Option<(String, bool)> {
    NVML.get()
        .map(|l| (l.path.to_string_lossy().into_owned(), l.explicit))
}

struct Probed<'n> {
    dev: Device<'n>,
    info: GpuDevice,
}

fn probe(nvml: &'static Nvml, index: u32) -> Result<Probed<'static>, AbsentSensor> {
    let dev = nvml.device_by_index(index).map_err(|e| AbsentSensor {
        source: SensorSource::Nvml,
        reason: format!("GPU {index}: NVML cannot open it: {e}"),
        fix: Some("check the GPU with nvidia-smi".into()),
    })?;
    let name = dev
        .name()
        .unwrap_or_else(|e| format!("GPU {index} (name unreadable: {e})"));
    let uuid = dev.uuid().ok();
    let power_limit_w = dev
        .enforced_power_limit()
        .ok()
        .map(|mw| f64::from(mw) / 1000.0);
    let mig_enabled = dev.mig_mode().map(|m| m.current == 1).unwrap_or(false);
    let mut info = GpuDevice {
        domain: format!("gpu-{index}"),
        index,
        name,
        uuid,
        power_limit_w,
        mig_enabled,
        method: Method::Counter,
        power_source: None,
        source: SensorSource::Nvml,
        pci_bus_id: dev.pci_info().ok().map(|p| p.bus_id),
        mig_uuids: if mig_enabled {
            mig_uuids(&dev)
        } else {
            Vec::new()
        },
    };
    if dev.total_energy_consumption().is_ok() {
        return Ok(Probed { dev, info });
    }
    info.method = Method::Power;
    if instant_power_w(&dev).is_ok() {
        info.power_source = Some(PowerSource::Instant);
    } else if dev.power_usage().is_ok() {
        info.power_source = Some(PowerSource::Average);
    } else {
        return Err(AbsentSensor {
            source: SensorSource::Nvml,
            reason: format!(
                "gpu-{index} ({}): neither the energy counter nor power is readable",
                info.name
            ),
            fix: Some("NVML reports no power for this GPU; nothing to fix here".into()),
        });
    }
    Ok(Probed { dev, info })
}

/// The UUIDs of a MIG-enabled GPU's instances (empty slots and errors skipped).
fn mig_uuids(dev: &Device<'_>) -> Vec<String> {
    let n = dev.mig_device_count().unwrap_or(0);
    (0..n)
        .filter_map(|i| dev.mig_device_by_index(i).ok()?.uuid().ok())
        .collect()
}

fn instant_power_w(dev: &Device<'_>) -> Result<f64, String> {
    let samples = dev
        .field_values_for(&[FieldId(FIELD_POWER_INSTANT)])
        .map_err(|e| e.to_string())?;
    let sample: &FieldValueSample = samples
        .first()
        .ok_or("no field value returned")?
        .as_ref()
        .map_err(|e| e.to_string())?;
    let mw = match sample.value.as_ref().map_err(|e| e.to_string())? {
        SampleValue::F64(v) => *v,
        SampleValue::U32(v) => f64::from(*v),
        SampleValue::U64(v) => *v as f64,
        SampleValue::I64(v) => *v as f64,
    };
    Ok(mw / 1000.0)
}

/// Find the NVIDIA GPUs (loading NVML from `lib`, else the default soname, once per process)
/// and build their sensors: one `counter` sensor for the GPUs with an energy counter, one
/// `power` sensor for the rest.
pub fn discover(lib: Option<&Path>) -> GpuDiscovery {
    let loaded = load(lib);
    let nvml = match &loaded.nvml {
        Ok(n) => n,
        Err(a) => {
            return GpuDiscovery {
                absent: vec![a.clone()],
                ..Default::default()
            }
        }
    };
    let mut out = GpuDiscovery::default();
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            out.absent.push(absent(
                format!("NVML loaded but cannot count GPUs: {e}"),
                "check the GPUs with nvidia-smi",
            ));
            return out;
        }
    };
    if count == 0 {
        out.absent.push(absent(
            "NVML loaded but reports no GPU".into(),
            "none needed if this machine has no NVIDIA GPU",
        ));
        return out;
    }
    let mut counters = Vec::new();
    let mut powers = Vec::new();
    let mut sampler = Vec::new();
    for index in 0..count {
        match probe(nvml, index) {
            Ok(p) => {
                out.devices.push(p.info.clone());
                if !p.info.mig_enabled {
                    if let Ok(d) = nvml.device_by_index(index) {
                        sampler.push((index, d, 0u64));
                    }
                }
                match p.info.power_source {
                    None => counters.push((p.dev, p.info)),
                    Some(src) => powers.push((p.dev, p.info, src)),
                }
            }
            Err(a) => out.absent.push(a),
        }
    }
    if !counters.is_empty() {
        out.sensors.push(Box::new(NvmlCounterSensor::new(counters)));
    }
    if !powers.is_empty() {
        out.sensors.push(Box::new(NvmlPowerSensor::new(powers)));
    }
    if !sampler.is_empty() {
        out.process_sampler = Some(GpuProcessSampler { devices: sampler });
    }
    out
}

/// One GPU's power limit as NVML holds it, W.
#[derive(Clone, Debug, PartialEq)]
pub struct PowerLimit {
    /// NVML index.
    pub index: u32,
    /// The limit in force when the [`PowerLimiter`] opened: what it restores.
    pub previous_w: f64,
    /// The lowest and highest limit the driver accepts.
    pub min_w: f64,
    pub max_w: f64,
}

/// Why power limits cannot be set or restored; each names the GPU and the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PowerLimitError {
    #[error("NVML is not available: {0}")]
    Unavailable(String),
    #[error("no NVIDIA GPU of the job (NVML lists none, or none is visible to it): no power limit to set")]
    NoGpu,
    #[error(
        "gpu-{index}: {w} W is outside the limits the driver accepts ({min_w} .. {max_w} W); choose limits in that range"
    )]
    OutOfRange {
        index: u32,
        w: f64,
        min_w: f64,
        max_w: f64,
    },
    #[error("gpu-{index}: {what} failed: {error}")]
    Call {
        index: u32,
        what: &'static str,
        error: String,
    },
}

/// Sets the power limit of every NVIDIA GPU, and restores each GPU's previous limit when
/// [`restore`](PowerLimiter::restore)d or dropped (normal return, `?` and panic unwinding
/// alike; a signal must end the caller's loop so the drop runs). Setting limits needs root.
pub struct PowerLimiter {
    devices: Vec<Device<'static>>,
    limits: Vec<PowerLimit>,
    /// A limit other than the previous one may be in force.
    changed: bool,
}

fn mw_to_w(mw: u32) -> f64 {
    f64::from(mw) / 1000.0
}

impl PowerLimiter {
    /// Opens the GPUs NVML lists whose index `keep` accepts (the job's: a limit applies to
    /// whatever runs on the GPU), loading the library from `lib` as [`discover`] does, and
    /// reads each one's current limit and the driver's range. Nothing is changed yet.
    ///
    /// # Errors
    /// NVML absent, no GPU kept, or a GPU whose limits cannot be read.
    pub fn open(
        lib: Option<&Path>,
        keep: impl Fn(u32) -> bool,
    ) -> Result<PowerLimiter, PowerLimitError> {
        let nvml = match &load(lib).nvml {
            Ok(n) => n,
            Err(a) => return Err(PowerLimitError::Unavailable(a.reason.clone())),
        };
        let count = nvml
            .device_count()
            .map_err(|e| PowerLimitError::Unavailable(e.to_string()))?;
        let call = |index: u32, what: &'static str| {
            move |e: NvmlError| PowerLimitError::Call {
                index,
                what,
                error: e.to_string(),
            }
        };
        let mut devices = Vec::new();
        let mut limits = Vec::new();
        for index in (0..count).filter(|&i| keep(i)) {
            let dev = nvml
                .device_by_index(index)
                .map_err(call(index, "opening the GPU"))?;
            let previous = dev
                .power_management_limit()
                .map_err(call(index, "reading the power limit"))?;
            let range = dev
                .power_management_limit_constraints()
                .map_err(call(index, "reading the power limit range"))?;
            limits.push(PowerLimit {
                index,
                previous_w: mw_to_w(previous),
                min_w: mw_to_w(range.min_limit),
                max_w: mw_to_w(range.max_limit),
            });
            devices.push(dev);
        }
        if devices.is_empty() {
            return Err(PowerLimitError::NoGpu);
        }
        Ok(PowerLimiter {
            devices,
            limits,
            changed: false,
        })
    }

    /// Each GPU's limits as read at [`open`](PowerLimiter::open).
    pub fn limits(&self) -> &[PowerLimit] {
        &self.limits
    }

    /// Checks that every GPU accepts `w` watts, without setting anything.
    ///
    /// # Errors
    /// [`PowerLimitError::OutOfRange`] naming the first GPU that does not.
    pub fn check_w(&self, w: f64) -> Result<(), PowerLimitError> {
        match self
            .limits
            .iter()
            .find(|l| !(l.min_w..=l.max_w).contains(&w))
        {
            Some(l) => Err(PowerLimitError::OutOfRange {
                index: l.index,
                w,
                min_w: l.min_w,
                max_w: l.max_w,
            }),
            None => Ok(()),
        }
    }

    /// Sets every GPU's limit to `w` watts (rounded to the milliwatt NVML takes).
    ///
    /// # Errors
    /// Out of range (nothing set), or the driver refusing (those already set stay set until
    /// [`restore`](PowerLimiter::restore) or the drop).
    pub fn set_w(&mut self, w: f64) -> Result<(), PowerLimitError> {
        self.check_w(w)?;
        let mw = (w * 1000.0).round() as u32;
        self.changed = true;
        for (dev, l) in self.devices.iter_mut().zip(&self.limits) {
            dev.set_power_management_limit(mw)
                .map_err(|e| PowerLimitError::Call {
                    index: l.index,
                    what: "setting the power limit (root only)",
                    error: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Puts every GPU's previous limit back; the GPUs that refused, as errors. Idempotent.
    pub fn restore(&mut self) -> Vec<PowerLimitError> {
        if !self.changed {
            return Vec::new();
        }
        self.changed = false;
        let mut errors = Vec::new();
        for (dev, l) in self.devices.iter_mut().zip(&self.limits) {
            let mw = (l.previous_w * 1000.0).round() as u32;
            if let Err(e) = dev.set_power_management_limit(mw) {
                errors.push(PowerLimitError::Call {
                    index: l.index,
                    what: "restoring the previous power limit",
                    error: e.to_string(),
                });
            }
        }
        errors
    }
}

impl Drop for PowerLimiter {
    fn drop(&mut self) {
        for e in self.restore() {
            // Nothing below the CLI prints, but a limit left changed must not go unseen;
            // the caller restores explicitly (and reports) on every path it controls.
            tracing::error!("{e}; set it back with nvidia-smi -pl");
        }
    }
}

/// GPUs with the total-energy counter, read at boundaries.
pub struct NvmlCounterSensor {
    info: SensorInfo,
    devices: Vec<Device<'static>>,
    last_error: Vec<Option<String>>,
}

impl NvmlCounterSensor {
    fn new(gpus: Vec<(Device<'static>, GpuDevice)>) -> Self {
        let info = SensorInfo {
            source: SensorSource::Nvml,
            domains: gpus.iter().map(|(_, g)| gpu_domain(g)).collect(),
            cadence: ReadCadence::Boundaries {
                guard_s: Some(COUNTER_GUARD_S),
            },
            setup: "none".into(),
        };
        let n = gpus.len();
        NvmlCounterSensor {
            info,
            devices: gpus.into_iter().map(|(d, _)| d).collect(),
            last_error: vec![None; n],
        }
    }
}

impl Sensor for NvmlCounterSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn missing_reason(&self, domain: usize) -> Option<String> {
        self.last_error.get(domain).cloned().flatten()
    }

    fn retain_domains(&mut self, keep: &dyn Fn(&DomainDesc) -> bool) -> bool {
        retain_parallel(
            &mut self.info,
            &mut self.devices,
            &mut self.last_error,
            keep,
        );
        true
    }

    fn read(&mut self, _t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        for (k, dev) in self.devices.iter().enumerate() {
            out[k] = match dev.total_energy_consumption() {
                Ok(mj) => {
                    self.last_error[k] = None;
                    RawReading::EnergyCounter {
                        joules: mj as f64 / 1000.0,
                        range_j: None,
                    }
                }
                Err(e) => {
                    self.last_error[k] = Some(format!("NVML energy counter: {e}"));
                    RawReading::Missing
                }
            };
        }
        Ok(())
    }
}

/// GPUs without the counter: power polled.
pub struct NvmlPowerSensor {
    info: SensorInfo,
    devices: Vec<(Device<'static>, PowerSource)>,
    last_error: Vec<Option<String>>,
}

impl NvmlPowerSensor {
    fn new(gpus: Vec<(Device<'static>, GpuDevice, PowerSource)>) -> Self {
        let info = SensorInfo {
            source: SensorSource::Nvml,
            domains: gpus.iter().map(|(_, g, _)| gpu_domain(g)).collect(),
            cadence: ReadCadence::Poll {
                preferred_s: POWER_POLL_S,
            },
            setup: "none".into(),
        };
        let n = gpus.len();
        NvmlPowerSensor {
            info,
            devices: gpus.into_iter().map(|(d, _, s)| (d, s)).collect(),
            last_error: vec![None; n],
        }
    }
}

impl Sensor for NvmlPowerSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn missing_reason(&self, domain: usize) -> Option<String> {
        self.last_error.get(domain).cloned().flatten()
    }

    fn retain_domains(&mut self, keep: &dyn Fn(&DomainDesc) -> bool) -> bool {
        retain_parallel(
            &mut self.info,
            &mut self.devices,
            &mut self.last_error,
            keep,
        );
        true
    }

    fn read(&mut self, _t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        for (k, (dev, src)) in self.devices.iter().enumerate() {
            let r = match src {
                PowerSource::Instant => instant_power_w(dev),
                PowerSource::Average => dev
                    .power_usage()
                    .map(|mw| f64::from(mw) / 1000.0)
                    .map_err(|e| e.to_string()),
            };
            out[k] = match r {
                Ok(watts) => {
                    self.last_error[k] = None;
                    RawReading::Power { watts }
                }
                Err(e) => {
                    self.last_error[k] = Some(format!("NVML power: {e}"));
                    RawReading::Missing
                }
            };
        }
        Ok(())
    }
}

/// One per-process utilisation sample of one GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuProcessSample {
    /// NVML index of the GPU.
    pub gpu_index: u32,
    pub pid: u32,
    /// SM (compute) utilisation over the sample period, percent.
    pub sm_util_pct: u32,
}

/// Reads NVML's per-process utilisation samples (`nvmlDeviceGetProcessUtilization`),
/// returning only the samples taken since the previous call. MIG-enabled GPUs are left out
/// (NVML does not sample processes per instance).
pub struct GpuProcessSampler {
    devices: Vec<(u32, Device<'static>, u64)>,
}

impl GpuProcessSampler {
    /// Sample only the GPUs whose NVML index `keep` accepts (the job's).
    pub fn retain_gpus(&mut self, keep: impl Fn(u32) -> bool) {
        self.devices.retain(|(index, _, _)| keep(*index));
    }

    /// Whether no GPU is left to sample.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The samples taken since the last call. A GPU that errors contributes nothing.
    pub fn sample(&mut self) -> Vec<GpuProcessSample> {
        let mut out = Vec::new();
        for (index, dev, last_seen) in self.devices.iter_mut() {
            let Ok(samples) = dev.process_utilization_stats(*last_seen) else {
                continue;
            };
            for s in samples {
                *last_seen = (*last_seen).max(s.timestamp);
                out.push(GpuProcessSample {
                    gpu_index: *index,
                    pid: s.pid,
                    sm_util_pct: s.sm_util,
                });
            }
        }
        out
    }
}
