//! The report of a what-if estimate (`wattprint estimate`): the estimate from
//! [`wattprint_core::estimate`] as one modelled domain, through the same steps as a measured
//! run, carbon included.

use crate::report::{assemble, ReportContext, ReportInputs};
use wattprint_core::estimate::Estimate;
use wattprint_core::report::{RunReport, Work};
use wattprint_core::{DomainDesc, DomainKind, Method};
use wattprint_sensors::gpu::GpuDevice;

/// The `wattprint.run/v1`-shaped report of `e`: one `estimate` domain of kind `gpu` when
/// `gpu_model` names the device (its peak FLOPs/W then comes from the hardware table, as for a
/// measured GPU), else `node`; `work` as declared; carbon from `carbon` (its embodied hardware
/// given by the caller, per device).
pub fn report(
    e: &Estimate,
    gpu_model: Option<&str>,
    work: Work,
    carbon: wattprint_carbon::ResolvedCarbon,
) -> RunReport {
    let gpus: Vec<GpuDevice> = gpu_model
        .map(|m| GpuDevice {
            domain: "estimate".into(),
            index: 0,
            name: m.to_string(),
            uuid: None,
            power_limit_w: None,
            mig_enabled: false,
            method: Method::Model,
            power_source: None,
            source: "estimate".into(),
            pci_bus_id: None,
            mig_uuids: Vec::new(),
        })
        .into_iter()
        .collect();
    let inputs = ReportInputs {
        id: "estimate".into(),
        duration_s: e.duration_s,
        domains: vec![DomainDesc {
            name: "estimate".into(),
            kind: if gpu_model.is_some() {
                DomainKind::Gpu
            } else {
                DomainKind::Node
            },
            source: e.power_source.as_str().into(),
            method: Method::Model,
            counted_in_total: true,
            device: gpu_model.map(str::to_string),
        }],
        joules: vec![e.it_j],
        idle_w: vec![None],
        notes: vec!["an estimate (devices x power x time), not a measurement".into()],
        gpus,
        ..Default::default()
    };
    let ctx = ReportContext {
        work,
        carbon: Some(carbon),
        ..Default::default()
    };
    let mut r = assemble(&inputs, &ctx);
    // One domain stands for all the devices: its average power is theirs together.
    if let Some(d) = r.energy.domains.first_mut() {
        d.avg_power_w = Some(e.devices * e.power_w);
    }
    r
}
