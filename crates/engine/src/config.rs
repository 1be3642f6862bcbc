//! Where sensors look, and how often the meter reads: from the documented environment seams.

use std::collections::BTreeMap;
use std::path::PathBuf;
use wattprint_core::gpu_select::{GpuRequest, VISIBILITY_VARS};

/// Which GPUs a session measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum GpuScope {
    /// Every GPU of the node (the agent, `wattprint sensors`).
    #[default]
    Node,
    /// The job's GPUs: the user's `request` (`--gpus`, Python's `gpus=`) when given, else
    /// the visibility variables in `env` (`CUDA_VISIBLE_DEVICES` and the others of
    /// [`VISIBILITY_VARS`], as the job sees them). The node's other GPUs are not read and
    /// are listed in the report as not the job's (`wattprint_core::gpu_select`).
    Job {
        env: BTreeMap<String, String>,
        request: Option<GpuRequest>,
    },
}

impl GpuScope {
    /// The job's GPUs, from this process's environment (which `wattprint run` passes on to
    /// the command unchanged) or `request`.
    pub fn job_from_env(request: Option<GpuRequest>) -> Self {
        Self::job_from_lookup(|k| std::env::var_os(k), request)
    }

    /// As [`GpuScope::job_from_env`], with an injectable environment. A variable set to
    /// an empty value is kept: `CUDA_VISIBLE_DEVICES=` hides every GPU.
    pub fn job_from_lookup(
        get: impl Fn(&str) -> Option<std::ffi::OsString>,
        request: Option<GpuRequest>,
    ) -> Self {
        let env = VISIBILITY_VARS
            .iter()
            .filter_map(|k| Some((k.to_string(), get(k)?.to_string_lossy().into_owned())))
            .collect();
        GpuScope::Job { env, request }
    }
}

/// Sensor and meter settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorConfig {
    /// Root of the sysfs tree (`WATTPRINT_SYSFS_ROOT`, default `/sys`).
    pub sysfs_root: PathBuf,
    /// Root of the procfs tree (`WATTPRINT_PROCFS_ROOT`, default `/proc`).
    pub procfs_root: PathBuf,
    /// The NVML library to load (`WATTPRINT_NVML_LIB`); `None`: the system's
    /// `libnvidia-ml.so.1`, looked up only when a GPU sensor is probed.
    pub nvml_lib: Option<PathBuf>,
    /// The amdsmi library to load (`WATTPRINT_AMDSMI_LIB`); `None`: `libamd_smi.so`, then
    /// `/opt/rocm/lib/libamd_smi.so`.
    pub amdsmi_lib: Option<PathBuf>,
    /// A privileged `wattprint agent`'s Unix socket (`WATTPRINT_AGENT_SOCKET`): when set and
    /// reachable, energy is read through it instead of the local sensors.
    pub agent_socket: Option<PathBuf>,
    /// Poll interval of power and model sensors, s (default 1 s).
    pub poll_interval_s: f64,
    /// Also read every sensor at this interval for the timeline and live views, s; `None`:
    /// counters are read only at window boundaries and by their wrap guard.
    pub timeline_interval_s: Option<f64>,
    /// Whether to fall back to the utilisation model when no CPU energy sensor is readable.
    pub cpu_model_fallback: bool,
    /// Which GPUs are measured: the node's (default) or the job's.
    pub gpu_scope: GpuScope,
}

/// Default poll interval of power and model sensors, s.
pub const DEFAULT_POLL_INTERVAL_S: f64 = 1.0;

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            sysfs_root: PathBuf::from("/sys"),
            procfs_root: PathBuf::from("/proc"),
            nvml_lib: None,
            amdsmi_lib: None,
            agent_socket: None,
            poll_interval_s: DEFAULT_POLL_INTERVAL_S,
            timeline_interval_s: None,
            cpu_model_fallback: true,
            gpu_scope: GpuScope::Node,
        }
    }
}

impl SensorConfig {
    /// Defaults, overridden by the environment seams (empty values are ignored).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var_os(k))
    }

    /// As [`SensorConfig::from_env`], with an injectable environment (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        let path = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let d = SensorConfig::default();
        SensorConfig {
            sysfs_root: path("WATTPRINT_SYSFS_ROOT").unwrap_or(d.sysfs_root),
            procfs_root: path("WATTPRINT_PROCFS_ROOT").unwrap_or(d.procfs_root),
            nvml_lib: path("WATTPRINT_NVML_LIB"),
            amdsmi_lib: path("WATTPRINT_AMDSMI_LIB"),
            agent_socket: path("WATTPRINT_AGENT_SOCKET"),
            ..d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seams_override_the_defaults() {
        let c = SensorConfig::from_lookup(|k| match k {
            "WATTPRINT_SYSFS_ROOT" => Some("/tmp/sys".into()),
            "WATTPRINT_PROCFS_ROOT" => Some("".into()),
            "WATTPRINT_NVML_LIB" => Some("/x/libnvidia-ml.so.1".into()),
            _ => None,
        });
        assert_eq!(c.sysfs_root, PathBuf::from("/tmp/sys"));
        assert_eq!(c.procfs_root, PathBuf::from("/proc"));
        assert_eq!(c.nvml_lib, Some(PathBuf::from("/x/libnvidia-ml.so.1")));
        assert_eq!(c.poll_interval_s, 1.0);
        assert_eq!(c.gpu_scope, GpuScope::Node);
    }

    #[test]
    fn the_job_scope_keeps_only_the_visibility_variables_empty_ones_too() {
        let s = GpuScope::job_from_lookup(
            |k| match k {
                "CUDA_VISIBLE_DEVICES" => Some("".into()),
                "SLURM_JOB_GPUS" => Some("1,3".into()),
                "HOME" => Some("/root".into()),
                _ => None,
            },
            None,
        );
        let GpuScope::Job { env, request } = s else {
            panic!("not a job scope");
        };
        assert_eq!(env.len(), 2);
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "");
        assert_eq!(env["SLURM_JOB_GPUS"], "1,3");
        assert_eq!(request, None);
    }
}
