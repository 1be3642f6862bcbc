//! NVIDIA GPUs when wattprint is built without the `nvml` feature: the same names as the
//! `nvml` module, and discovery reports NVML as an absent sensor that says so.

use std::path::Path;
use wattprint_core::SensorSource;

pub use crate::gpu::{AbsentSensor, GpuDevice, GpuDiscovery, PowerSource};

/// Environment variable naming the NVML library to load (test seam, SPEC).
pub const NVML_LIB_ENV: &str = "WATTPRINT_NVML_LIB";
/// Guard read period of energy counters, s (shared with hwmon's; see the `nvml` module).
pub const COUNTER_GUARD_S: f64 = 10.0;

/// One per-process utilisation sample of one GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuProcessSample {
    /// NVML index of the GPU.
    pub gpu_index: u32,
    pub pid: u32,
    /// SM (compute) utilisation over the sample period, percent.
    pub sm_util_pct: u32,
}

/// Never built without NVML: no value of it exists.
pub struct GpuProcessSampler {
    never: std::convert::Infallible,
}

impl GpuProcessSampler {
    pub fn retain_gpus(&mut self, _keep: impl Fn(u32) -> bool) {
        match self.never {}
    }

    pub fn is_empty(&self) -> bool {
        match self.never {}
    }

    pub fn sample(&mut self) -> Vec<GpuProcessSample> {
        match self.never {}
    }
}

/// No library is loaded in this build.
pub fn library_path() -> Option<(String, bool)> {
    None
}

/// NVML as an absent sensor: this build has no NVML support.
pub fn discover(_lib: Option<&Path>) -> GpuDiscovery {
    GpuDiscovery {
        absent: vec![AbsentSensor {
            source: SensorSource::Nvml,
            reason: "this wattprint was built without the `nvml` feature".into(),
            fix: Some(
                "build with the default features (`cargo install --path crates/cli --locked`)"
                    .into(),
            ),
        }],
        ..GpuDiscovery::default()
    }
}

/// One GPU's power limit (see the `nvml` module); never built without NVML.
#[derive(Clone, Debug, PartialEq)]
pub struct PowerLimit {
    pub index: u32,
    pub previous_w: f64,
    pub min_w: f64,
    pub max_w: f64,
}

/// Why power limits cannot be set (see the `nvml` module).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PowerLimitError {
    #[error("NVML is not available: {0}")]
    Unavailable(String),
}

/// Power limits need NVML: no value of it exists in this build.
pub struct PowerLimiter {
    never: std::convert::Infallible,
}

impl PowerLimiter {
    /// Always [`PowerLimitError::Unavailable`]: this build has no NVML support.
    pub fn open(
        _lib: Option<&Path>,
        _keep: impl Fn(u32) -> bool,
    ) -> Result<PowerLimiter, PowerLimitError> {
        Err(PowerLimitError::Unavailable(
            "this wattprint was built without the `nvml` feature".into(),
        ))
    }

    pub fn limits(&self) -> &[PowerLimit] {
        match self.never {}
    }

    pub fn check_w(&self, _w: f64) -> Result<(), PowerLimitError> {
        match self.never {}
    }

    pub fn set_w(&mut self, _w: f64) -> Result<(), PowerLimitError> {
        match self.never {}
    }

    pub fn restore(&mut self) -> Vec<PowerLimitError> {
        match self.never {}
    }
}
