//! Where sensors look, and how often the meter reads: from the documented environment seams.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use wattprint_core::gpu_select::{GpuRequest, VISIBILITY_VARS};
use wattprint_core::SensorSource;

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

/// The sensor names a user may choose, with the source label each stands for (the label in
/// reports and `wattprint sensors`).
pub const SENSOR_NAMES: &[(&str, SensorSource)] = &[
    ("model", wattprint_sensors::model::SOURCE),
    ("rapl-perf", wattprint_sensors::perf_rapl::SOURCE),
    ("rapl-powercap", wattprint_sensors::powercap::SOURCE),
    ("nvml", SensorSource::Nvml),
    ("amdsmi", wattprint_sensors::amd::SOURCE),
    ("hwmon", wattprint_sensors::hwmon::SOURCE),
    ("agent-socket", wattprint_sensors::agent_socket::SOURCE),
];

/// A sensor name that is not one of [`SENSOR_NAMES`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("unknown sensor `{name}` in {origin}: use one of {}", known_names())]
pub struct UnknownSensor {
    pub name: String,
    /// Where it was given, e.g. `--sensor`, `WATTPRINT_SENSORS`.
    pub origin: String,
}

fn known_names() -> String {
    SENSOR_NAMES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which sensors the user allows: `--sensor` (only these), `--no-sensor` (not these), or
/// `WATTPRINT_SENSORS` (`model`, or `-rapl-perf,-nvml`). Holds user names ([`SENSOR_NAMES`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SensorSelection {
    /// When set, only these sensors are probed.
    pub only: Option<BTreeSet<String>>,
    /// Never probed.
    pub excluded: BTreeSet<String>,
}

impl SensorSelection {
    /// From repeated `--sensor` and `--no-sensor` values.
    pub fn from_flags(only: &[String], excluded: &[String]) -> Result<Self, UnknownSensor> {
        let check = |v: &[String], origin: &str| -> Result<BTreeSet<String>, UnknownSensor> {
            v.iter().map(|n| checked(n, origin)).collect()
        };
        Ok(SensorSelection {
            only: (!only.is_empty())
                .then(|| check(only, "--sensor"))
                .transpose()?,
            excluded: check(excluded, "--no-sensor")?,
        })
    }

    /// From a comma-separated list: plain names are the only ones allowed, names after `-`
    /// are excluded (`model`, `-rapl-perf,-nvml`, `rapl-powercap,nvml`).
    pub fn parse_list(text: &str, origin: &str) -> Result<Self, UnknownSensor> {
        let mut only = BTreeSet::new();
        let mut excluded = BTreeSet::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.strip_prefix('-') {
                Some(n) => excluded.insert(checked(n, origin)?),
                None => only.insert(checked(item, origin)?),
            };
        }
        Ok(SensorSelection {
            only: (!only.is_empty()).then_some(only),
            excluded,
        })
    }

    /// Whether nothing was chosen.
    pub fn is_default(&self) -> bool {
        self.only.is_none() && self.excluded.is_empty()
    }

    /// Whether the sensor with source label `source` (e.g. `utilisation-model`) may be used.
    pub fn allows(&self, source: &SensorSource) -> bool {
        let name = user_name(source);
        !self.excluded.contains(name) && self.only.as_ref().is_none_or(|o| o.contains(name))
    }

    /// Why `source` is not used, when the selection is the reason.
    pub fn refusal(&self, source: &SensorSource) -> Option<String> {
        if self.allows(source) {
            return None;
        }
        Some(match &self.only {
            Some(o) if !self.excluded.contains(user_name(source)) => format!(
                "not selected: only {} chosen (--sensor / WATTPRINT_SENSORS)",
                o.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            _ => "excluded by the user (--no-sensor / WATTPRINT_SENSORS)".to_string(),
        })
    }
}

/// The user name of a source label (`utilisation-model` -> `model`).
fn user_name(source: &SensorSource) -> &str {
    SENSOR_NAMES
        .iter()
        .find(|(_, label)| label == source)
        .map_or(source.as_str(), |(n, _)| *n)
}

fn checked(name: &str, origin: &str) -> Result<String, UnknownSensor> {
    let n = name.trim();
    if SENSOR_NAMES.iter().any(|(k, _)| *k == n) {
        Ok(n.to_string())
    } else {
        Err(UnknownSensor {
            name: n.to_string(),
            origin: origin.to_string(),
        })
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
    /// Which sensors the user allows (`--sensor`, `--no-sensor`, `WATTPRINT_SENSORS`).
    pub selection: SensorSelection,
    /// Read perf RAPL counts from files in this directory instead of the kernel
    /// (`WATTPRINT_PERF_COUNTERS_DIR`; a test seam, see `perf_rapl::FileCounters`).
    pub perf_counters_dir: Option<PathBuf>,
    /// Keep the next CPU sources in line (powercap after perf, the model after either) as
    /// standby sensors read at the same instants, to replace a rejected domain (default on;
    /// the agent, which reads no windows, turns it off).
    pub standby: bool,
    /// Before choosing a CPU counter sensor, read it twice this far apart and pass over it
    /// when a domain that always draws power did not advance, s (`None`: no wait; `wattprint
    /// sensors` waits, `run` relies on the per-window check).
    pub discovery_check_s: Option<f64>,
    /// Which GPUs are measured: the node's (default) or the job's.
    pub gpu_scope: GpuScope,
}

/// The environment variable choosing sensors (`model`, `-rapl-perf,-nvml`).
pub const SENSORS_ENV: &str = "WATTPRINT_SENSORS";

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
            selection: SensorSelection::default(),
            perf_counters_dir: None,
            standby: true,
            discovery_check_s: None,
            gpu_scope: GpuScope::Node,
        }
    }
}

impl SensorConfig {
    /// Defaults, overridden by the environment seams (empty values are ignored).
    ///
    /// # Errors
    /// An unknown name in `WATTPRINT_SENSORS`.
    pub fn from_env() -> Result<Self, UnknownSensor> {
        Self::from_lookup(|k| std::env::var_os(k))
    }

    /// As [`SensorConfig::from_env`], with an injectable environment (for tests).
    ///
    /// # Errors
    /// An unknown name in `WATTPRINT_SENSORS`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, UnknownSensor> {
        let selection = match get(SENSORS_ENV) {
            Some(v) => SensorSelection::parse_list(&v.to_string_lossy(), SENSORS_ENV)?,
            None => SensorSelection::default(),
        };
        Ok(SensorConfig {
            selection,
            ..Self::seams_from_lookup(get)
        })
    }

    /// The path seams alone (roots, libraries, the agent socket), without the sensor choice:
    /// for callers that read no sensor (the history settling interrupted runs), which a bad
    /// `WATTPRINT_SENSORS` must not stop.
    pub fn seams_from_env() -> Self {
        Self::seams_from_lookup(|k| std::env::var_os(k))
    }

    fn seams_from_lookup(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Self {
        let path = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let d = SensorConfig::default();
        SensorConfig {
            perf_counters_dir: path("WATTPRINT_PERF_COUNTERS_DIR"),
            sysfs_root: path("WATTPRINT_SYSFS_ROOT").unwrap_or(d.sysfs_root),
            procfs_root: path("WATTPRINT_PROCFS_ROOT").unwrap_or(d.procfs_root),
            nvml_lib: path("WATTPRINT_NVML_LIB"),
            amdsmi_lib: path("WATTPRINT_AMDSMI_LIB"),
            agent_socket: path("WATTPRINT_AGENT_SOCKET"),
            ..d
        }
    }

    /// Apply `--sensor` / `--no-sensor` flags: when any is given they replace
    /// `WATTPRINT_SENSORS`.
    ///
    /// # Errors
    /// An unknown name among the flags.
    pub fn select(&mut self, only: &[String], excluded: &[String]) -> Result<(), UnknownSensor> {
        if !only.is_empty() || !excluded.is_empty() {
            self.selection = SensorSelection::from_flags(only, excluded)?;
        }
        Ok(())
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
        })
        .unwrap();
        assert_eq!(c.sysfs_root, PathBuf::from("/tmp/sys"));
        assert_eq!(c.procfs_root, PathBuf::from("/proc"));
        assert_eq!(c.nvml_lib, Some(PathBuf::from("/x/libnvidia-ml.so.1")));
        assert_eq!(c.poll_interval_s, 1.0);
        assert!(c.selection.is_default());
        assert_eq!(c.gpu_scope, GpuScope::Node);
    }

    #[test]
    fn the_environment_list_includes_and_excludes() {
        let s = SensorSelection::parse_list("-rapl-perf, -nvml", "X").unwrap();
        assert!(!s.allows(&SensorSource::RaplPerf) && !s.allows(&SensorSource::Nvml));
        assert!(s.allows(&SensorSource::RaplPowercap) && s.allows(&SensorSource::UtilisationModel));
        let s = SensorSelection::parse_list("model", "X").unwrap();
        assert!(s.allows(&SensorSource::UtilisationModel));
        assert!(!s.allows(&SensorSource::RaplPerf) && !s.allows(&SensorSource::Hwmon));
        assert!(s
            .refusal(&SensorSource::RaplPerf)
            .unwrap()
            .contains("only model"));
        assert_eq!(s.refusal(&SensorSource::UtilisationModel), None);
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = SensorSelection::parse_list("rapl", "WATTPRINT_SENSORS").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("`rapl`") && m.contains("WATTPRINT_SENSORS"),
            "{m}"
        );
        for (n, _) in SENSOR_NAMES {
            assert!(m.contains(n), "{m}");
        }
        let e = SensorConfig::from_lookup(|k| (k == SENSORS_ENV).then(|| "-gpu".into()));
        assert_eq!(e.unwrap_err().name, "gpu");
        let mut c = SensorConfig::default();
        assert_eq!(
            c.select(&[], &["cuda".into()]).unwrap_err().origin,
            "--no-sensor"
        );
    }

    #[test]
    fn flags_replace_the_environment_list() {
        let mut c =
            SensorConfig::from_lookup(|k| (k == SENSORS_ENV).then(|| "model".into())).unwrap();
        c.select(&[], &["nvml".into()]).unwrap();
        assert!(c.selection.allows(&SensorSource::RaplPerf));
        assert!(!c.selection.allows(&SensorSource::Nvml));
        c.select(&[], &[]).unwrap();
        assert!(
            !c.selection.allows(&SensorSource::Nvml),
            "no flags: the selection stays"
        );
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
