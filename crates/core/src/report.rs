//! The JSON report of a run: schema `wattprint.run/v1` (SPEC: JSON report of a run).
//!
//! Every field name carries its unit. Optional metrics are `null` with the reason in
//! `metrics.notes`; nothing is silently zero. New fields may be added; none is renamed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const RUN_SCHEMA: &str = "wattprint.run/v1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema: String,
    pub id: String,
    pub command: Vec<String>,
    /// The child's exit status; 128+N when killed by signal N; `null` when it never ran.
    pub exit_code: Option<i32>,
    /// RFC 3339 with offset (wall clock, a label only).
    pub started_at: String,
    pub duration_s: f64,
    /// How far the run got: `finished`, `running` (a live run's last checkpoint) or
    /// `interrupted` (the wrapper died: energy up to its last checkpoint). Reports written
    /// before this field existed read as `finished`.
    #[serde(default)]
    pub status: RunStatus,
    #[serde(default)]
    pub host: HostInfo,
    pub energy: EnergyReport,
    pub carbon: CarbonReport,
    pub work: Work,
    pub metrics: Metrics,
    pub overhead: Overhead,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Everything the reader must know to trust the numbers: fallbacks, gaps, estimates.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Power over time at bounded resolution (for history and charts); omitted when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineReport>,
    /// The energy and carbon predicted at completion from the progress the workload
    /// reported (work-file `progress=` / `step= total=` lines, the Python callbacks);
    /// omitted when it reported none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<crate::forecast::ForecastReport>,
}

/// How far a stored run got (`RunReport::status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Measured to its end (every report not written by a checkpoint).
    #[default]
    Finished,
    /// A checkpoint of a run whose wrapper is still alive: energy up to that checkpoint.
    Running,
    /// The wrapper died (SIGKILL, OOM killer, reboot) before the end: energy up to its last
    /// checkpoint, labelled so in `warnings`.
    Interrupted,
}

impl RunStatus {
    /// The JSON and history name: `finished`, `running`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The inverse of [`RunStatus::as_str`].
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Finished,
            RunStatus::Running,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub cpu_model: Option<String>,
    #[serde(default)]
    pub gpu_models: Vec<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    /// The GPUs measured (the job's, where a run chose them), with how each was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuHost>,
    /// How the job's GPUs were chosen among the node's, e.g.
    /// `CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)`; absent where every GPU of
    /// the machine is measured (the agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_selection: Option<String>,
    /// The node's GPUs that are not the job's: not measured, outside the total, the
    /// attribution and the embodied share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_gpus: Vec<OtherGpu>,
}

/// A GPU of the node that is not the job's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OtherGpu {
    /// Its domain had it been measured, e.g. `gpu-0`.
    pub domain: String,
    /// Name as the driver reports it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Why it is not the job's, e.g. `not in CUDA_VISIBLE_DEVICES=1`.
    pub reason: String,
}

/// One GPU of the host, as found at discovery.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuHost {
    /// Its energy domain, e.g. `gpu-0`, `amdgpu-0`.
    pub domain: String,
    /// Name as the driver reports it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Enforced power limit, W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_w: Option<f64>,
    /// MIG mode on: the energy is the whole physical GPU's.
    #[serde(default)]
    pub mig_enabled: bool,
    /// `nvml`, `amdsmi` or `hwmon`.
    pub source: crate::SensorSource,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// Sum of the domains counted in the total (each joule once), J.
    pub total_j: f64,
    pub pue: f64,
    /// total_j x pue, J.
    pub facility_j: f64,
    pub domains: Vec<DomainEnergy>,
    /// Low bound of `total_j`: the sum of the counted domains' `joules_low`, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_j_low: Option<f64>,
    /// High bound of `total_j`, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_j_high: Option<f64>,
    /// Bounds of `facility_j` (the total's bounds x PUE), J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility_j_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility_j_high: Option<f64>,
    /// The wrapped job's share on a shared machine, when attribution ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// The wrapped job's share of the GPU energy when other processes shared its GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_attribution: Option<Attribution>,
    /// Intervals where a domain could not be read: its energy there is unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    /// Domains whose readings contradicted the evidence over this run (a counter that never
    /// advanced, an impossible power): listed, not counted, replaced where a standby source
    /// covers the same scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    /// Joules of `total_j` that the utilisation model supplied in place of a rejected
    /// measured domain, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_filled_j: Option<f64>,
}

/// A measured domain not trusted for this run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// The sensor that read it, e.g. `rapl-perf`.
    pub source: crate::SensorSource,
    /// Its domain name, e.g. `psys`.
    pub domain: String,
    /// `stuck` or `implausible`.
    pub verdict: String,
    /// The evidence, in words.
    pub reason: String,
    /// The domains counted in its place (empty: nothing covers its scope).
    #[serde(default)]
    pub replaced_by: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEnergy {
    pub name: String,
    pub kind: crate::DomainKind,
    pub joules: f64,
    pub source: crate::SensorSource,
    pub method: crate::Method,
    pub counted_in_total: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Average power over the run, W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_power_w: Option<f64>,
    /// Low bound of `joules` (see `range_basis`), J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules_low: Option<f64>,
    /// High bound of `joules`, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules_high: Option<f64>,
    /// Where the bounds come from, e.g. `the model's span (idle to full load)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_basis: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// How the share was computed, e.g. `cpu-time share of process tree (schedstat, ns)`.
    pub method: String,
    /// The job's share of the attributed domains, 0..=1.
    pub share: f64,
    /// Energy of the whole machine over the run (counted domains), J.
    pub machine_j: f64,
    /// Energy attributed to the wrapped job, J.
    pub job_j: f64,
    /// Machine energy not attributed to the job (neighbours and idle), J.
    pub rest_j: f64,
    /// Idle part of the machine energy when the sensor can tell it, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_j: Option<f64>,
    /// Bounds of `job_j`: the total's range at the same share, J.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_j_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_j_high: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub domain: String,
    pub from_s: f64,
    pub to_s: f64,
    pub reason: String,
}

crate::open_enum::open_enum! {
    /// What emissions a carbon factor counts. Serialised as [`CarbonBasis::as_str`]; an open
    /// set: a live provider or an imported report may name another basis.
    #[derive(Default)]
    pub enum CarbonBasis {
        /// No carbon was computed (a report built without the carbon step): `""`.
        #[default]
        Unset => "",
        /// Lifecycle emissions (construction, fuel supply, combustion): not a Scope 2 factor.
        Lifecycle => "lifecycle",
        /// Direct (combustion) emissions only: the Scope 2 basis.
        Direct => "direct",
        /// The factor's source does not say (`--intensity`, intensity files).
        Unspecified => "unspecified",
    }
}

/// The GHG Protocol Scope 2 method of a carbon figure. Serialised as [`CarbonMethod::as_str`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarbonMethod {
    /// No carbon was computed (a report built without the carbon step): `""`.
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Grid-average factors of where the energy was used.
    Location,
    /// Supplier or residual-mix factors (contractual instruments).
    Market,
}

impl CarbonMethod {
    /// The JSON spelling: `location`, `market`, or empty.
    pub fn as_str(self) -> &'static str {
        match self {
            CarbonMethod::Unset => "",
            CarbonMethod::Location => "location",
            CarbonMethod::Market => "market",
        }
    }
}

impl std::fmt::Display for CarbonMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarbonReport {
    pub zone: String,
    pub intensity_g_per_kwh: f64,
    pub intensity_source: String,
    pub intensity_year: Option<i32>,
    /// `lifecycle`, `direct`, `unspecified`, or what the provider says.
    pub basis: CarbonBasis,
    /// `location` or `market` (empty when no carbon was computed).
    pub method: CarbonMethod,
    /// True when the zone was not given and a fallback factor was used.
    pub fallback: bool,
    pub operational_g: f64,
    pub embodied_g: f64,
    pub total_g: f64,
    /// Bounds of `total_g`: operational grams scaled by the energy's bounds (the intensity
    /// factors embedded publish no uncertainty), plus embodied grams, g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_g_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_g_high: Option<f64>,
    /// Market-based operational grams when a market factor was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_operational_g: Option<f64>,
    /// Bounds of `market_operational_g`: the energy's range at the market factor, g.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_operational_g_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_operational_g_high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_factor_g_per_kwh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embodied_source: Option<String>,
    /// Licence of the intensity factor's source, e.g. `CC BY 4.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_licence: Option<String>,
    /// Where the PUE came from (`--pue`, a provider's published figure, or the 1.0 default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pue_source: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub flops: Option<f64>,
    pub inferences: Option<f64>,
    pub tokens: Option<f64>,
    /// How `flops` was obtained, e.g. `declared`, `6*N*D (params=.., tokens=..)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops_formula: Option<String>,
    /// Numeric precision the peak FLOPs are taken at, e.g. `bf16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::work::Precision>,
    /// Model parameters N when FLOPs come from the dense-transformer model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<f64>,
    /// `train` (6·N·D) or `infer` (2·N·D) when FLOPs come from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::work::Mode>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub energy_to_solution_j: f64,
    #[serde(default)]
    pub facility_energy_to_solution_j: f64,
    pub flops_per_watt: Option<f64>,
    #[serde(default)]
    pub gpu_flops_per_watt: Option<f64>,
    pub peak_flops_per_watt: Option<f64>,
    /// Where the peak came from: devices, precision, table row and its confidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops_source: Option<String>,
    /// flops_per_watt / peak_flops_per_watt.
    #[serde(default)]
    pub flops_per_watt_ratio: Option<f64>,
    pub carbon_per_inference_g: Option<f64>,
    #[serde(default)]
    pub carbon_per_1k_tokens_g: Option<f64>,
    pub joules_per_token: Option<f64>,
    #[serde(default)]
    pub joules_per_inference: Option<f64>,
    pub sci_g_per_unit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sci_unit: Option<String>,
    /// Bounds of the metrics that derive from energy or carbon (metric field name ->
    /// range), carried from the energy's bounds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ranges: BTreeMap<String, Range>,
    /// Why a metric is null (metric field name -> reason).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, String>,
}

/// A low and a high bound, in the unit of the figure they bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// CPU time the meter itself used (all wattprint threads), s.
    pub meter_cpu_s: f64,
    /// meter_cpu_s / duration_s.
    pub meter_cpu_fraction: f64,
    pub peak_rss_bytes: u64,
    /// Sensor reads performed.
    pub reads: u64,
    /// Set-up steps the chosen sensors needed (e.g. `none`, `read access to energy_uj`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_steps: Vec<String>,
}

/// Average power per domain over time, for charts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineReport {
    /// Seconds since the start of the run (interval midpoints).
    pub t_s: Vec<f64>,
    pub series: Vec<PowerSeries>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PowerSeries {
    pub domain: String,
    pub watts: Vec<f64>,
}

impl RunReport {
    /// An empty report with the schema set.
    pub fn new(id: String) -> Self {
        RunReport {
            schema: RUN_SCHEMA.to_string(),
            id,
            energy: EnergyReport {
                pue: 1.0,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carbon_method_keeps_its_json_strings() {
        for (m, text) in [
            (CarbonMethod::Unset, ""),
            (CarbonMethod::Location, "location"),
            (CarbonMethod::Market, "market"),
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), text);
            assert_eq!(m.as_str(), text);
            let back: CarbonMethod = serde_json::from_value(text.into()).unwrap();
            assert_eq!(back, m);
        }
        let r = RunReport::new("x".into());
        assert_eq!(serde_json::to_value(&r).unwrap()["carbon"]["method"], "");
    }

    #[test]
    fn report_has_the_spec_fields() {
        let r = RunReport::new("r1".into());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["schema"], "wattprint.run/v1");
        for k in [
            "id",
            "command",
            "exit_code",
            "started_at",
            "duration_s",
            "energy",
            "carbon",
            "work",
            "metrics",
            "overhead",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        for k in ["total_j", "pue", "facility_j", "domains"] {
            assert!(v["energy"].get(k).is_some(), "missing energy.{k}");
        }
        for k in [
            "energy_to_solution_j",
            "flops_per_watt",
            "peak_flops_per_watt",
            "carbon_per_inference_g",
            "joules_per_token",
            "sci_g_per_unit",
        ] {
            assert!(v["metrics"].get(k).is_some(), "missing metrics.{k}");
        }
        for k in [
            "meter_cpu_s",
            "meter_cpu_fraction",
            "peak_rss_bytes",
            "reads",
        ] {
            assert!(v["overhead"].get(k).is_some(), "missing overhead.{k}");
        }
        let back: RunReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
