//! Embodied carbon: the hardware a run reserved and its defaults.

use crate::*;

/// Default lifetime of a server, years (SCI example; Cloud Carbon Footprint).
pub const SERVER_LIFETIME_YEARS: f64 = 4.0;
/// Default lifetime of a GPU, years.
pub const GPU_LIFETIME_YEARS: f64 = 3.0;
/// Default embodied carbon of a server, kgCO2e (Cloud Carbon Footprint base server).
pub const SERVER_EMBODIED_KG: f64 = 1000.0;

/// Embodied carbon of one kind of hardware the run reserved.
#[derive(Clone, Debug, PartialEq)]
pub struct HardwareEmbodied {
    /// E.g. `server`, `H100-SXM5-80GB`.
    pub what: String,
    /// Embodied carbon of one unit, kgCO2e.
    pub kg: f64,
    pub count: f64,
    pub lifetime_years: f64,
    pub source: String,
}

impl HardwareEmbodied {
    /// The default server: 1,000 kgCO2e over 4 years.
    pub fn default_server() -> Self {
        HardwareEmbodied {
            what: "server".into(),
            kg: SERVER_EMBODIED_KG,
            count: 1.0,
            lifetime_years: SERVER_LIFETIME_YEARS,
            source: "default server: Cloud Carbon Footprint base server, as in the SCI example"
                .into(),
        }
    }
}

/// Hardware whose embodied carbon a measured run counts by default: one server (1,000 kg over
/// 4 years) and each GPU in `report.host.gpu_models` that has an embodied figure in the GPU
/// table (over 3 years). The second list names the GPUs left out, and why.
pub fn run_hardware(report: &RunReport) -> (Vec<HardwareEmbodied>, Vec<String>) {
    let mut hw = vec![HardwareEmbodied::default_server()];
    let mut missing = Vec::new();
    for name in &report.host.gpu_models {
        match wattprint_data::gpu::lookup(name) {
            wattprint_data::gpu::GpuMatch::Found { spec, .. } => match spec.embodied_kgco2e {
                Some(kg) => match hw.iter_mut().find(|h| h.what == spec.model) {
                    Some(h) => h.count += 1.0,
                    None => hw.push(HardwareEmbodied {
                        what: spec.model.to_string(),
                        kg,
                        count: 1.0,
                        lifetime_years: GPU_LIFETIME_YEARS,
                        source: spec.embodied_source.unwrap_or("GPU table").to_string(),
                    }),
                },
                None => missing.push(format!(
                    "embodied carbon of GPU `{name}` not counted: the GPU table has no figure for {}; pass --embodied-kg for the whole machine",
                    spec.model
                )),
            },
            wattprint_data::gpu::GpuMatch::Unknown { reason } => missing.push(format!(
                "embodied carbon of GPU `{name}` not counted: {reason}"
            )),
        }
    }
    (hw, missing)
}
