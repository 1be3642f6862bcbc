//! Which of the node's GPUs are the job's: the visibility variables of CUDA, the NVIDIA
//! container runtime, ROCm and Slurm (or the user's `--gpus`), applied to the GPUs the
//! driver reports. Pure: the caller passes the environment as a map.
//!
//! # Precedence
//!
//! 1. The user's request (`--gpus`, Python's `gpus=`) decides alone: the environment is not
//!    read. Entries are `all`, `none`, driver indices (`gpu-N` / `amdgpu-N` as
//!    `wattprint sensors` lists them; a bare `N` names index N of whichever vendor has it),
//!    domain names, or UUIDs (full or a unique prefix, with or without `GPU-`; a MIG
//!    instance's UUID names its physical GPU).
//! 2. NVIDIA GPUs, outermost first:
//!    - `NVIDIA_VISIBLE_DEVICES` (the NVIDIA container runtime): `all` keeps every GPU,
//!      `none`, `void` or empty keep none, a list of indices or UUIDs keeps those
//!      ([node lists](#node-lists));
//!    - then `CUDA_VISIBLE_DEVICES`, exactly as the CUDA runtime applies it: indices in
//!      CUDA's order ([`CUDA_DEVICE_ORDER`](#cuda-order)) or UUIDs, read up to the first
//!      entry naming no GPU (CUDA ignores it and everything after it); set and empty: no GPU;
//!    - only when `CUDA_VISIBLE_DEVICES` is unset: Slurm's allocation, `SLURM_STEP_GPUS`
//!      else `SLURM_JOB_GPUS` (a node list). Slurm sets `CUDA_VISIBLE_DEVICES` itself, which
//!      is what the job's CUDA runtime obeys, so that variable wins where both are set.
//! 3. AMD GPUs: `ROCR_VISIBLE_DEVICES` (indices in the driver's order, or UUIDs), then
//!    `HIP_VISIBLE_DEVICES`, else `GPU_DEVICE_ORDINAL`, as indices into what ROCr left (the
//!    HIP runtime applies them on top of ROCr's list); with none of the three set, Slurm's
//!    allocation as for NVIDIA. `CUDA_VISIBLE_DEVICES` applies to NVIDIA GPUs only.
//!
//! # Node lists
//!
//! `NVIDIA_VISIBLE_DEVICES` and Slurm's variables name GPUs by the node's indices (the
//! driver's order, which NVML, `nvidia-smi` and Slurm's `AutoDetect=nvml` share: PCI bus
//! order). Where the driver shows exactly as many GPUs as an all-index list names, the
//! container or the job's device cgroup (Slurm's `ConstrainDevices=yes`) has already hidden
//! the rest and renumbered what is left: every GPU the driver shows is the job's. Otherwise
//! each index names the GPU with that driver index, and UUIDs are matched exactly.
//!
//! # CUDA order
//!
//! `CUDA_DEVICE_ORDER=PCI_BUS_ID`: PCI bus order (the PCI bus id when the driver gives it,
//! else its index, which NVML assigns in that order). `FASTEST_FIRST` (CUDA's default)
//! makes "the fastest" device 0 by a heuristic NVIDIA does not document, the order of the
//! others unspecified (CUDA C Programming Guide, *CUDA Environment Variables*). When every
//! GPU in view has the same name the order is PCI bus order. Otherwise wattprint
//! approximates it by peak FP32 FLOPs (the GPU table's figure; the rule of the CUDA samples'
//! `gpuGetMaxGflopsDeviceId`: cores x clock), highest first, ties and GPUs without a figure
//! in PCI bus order, and says so in the report when an index depended on it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The environment variables [`select_gpus`] reads.
pub const VISIBILITY_VARS: &[&str] = &[
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "SLURM_STEP_GPUS",
    "SLURM_JOB_GPUS",
];

/// Who made the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuVendor {
    Nvidia,
    Amd,
}

/// What the selection needs to know of one GPU the driver reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuIdentity {
    /// Energy domain, e.g. `gpu-1`, `amdgpu-0`.
    pub domain: String,
    pub vendor: Option<GpuVendor>,
    /// The driver's index (NVML, amdsmi / hwmon order).
    pub index: u32,
    /// Name as the driver reports it.
    pub name: String,
    /// `GPU-...` (NVIDIA) or the vendor's unique id.
    pub uuid: Option<String>,
    /// UUIDs of its MIG instances (`MIG-...`), when MIG is on.
    pub mig_uuids: Vec<String>,
    /// PCI bus id, `0000:3b:00.0` (any case).
    pub pci_bus_id: Option<String>,
    /// Peak dense FP32 TFLOPS from the GPU table, to approximate CUDA's fastest-first order.
    pub fp32_tflops: Option<f64>,
}

/// What the user asked for with `--gpus` / `gpus=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuRequest {
    /// Every GPU of the node.
    All,
    /// These entries (indices, domain names, UUIDs); empty: no GPU (`none`).
    Entries(Vec<String>),
}

/// A `--gpus` value that cannot be an entry list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuRequestError {
    #[error("--gpus is empty: use all, none, indices (0,2), gpu-1, or UUIDs")]
    Empty,
    #[error(
        "--gpus {value}: entry `{entry}` is not an index, a domain name (gpu-1) or a UUID \
         (letters, digits, `-` and `/` only)"
    )]
    BadEntry { value: String, entry: String },
}

impl FromStr for GpuRequest {
    type Err = GpuRequestError;

    /// `all`, `none`, or a comma-separated list of indices, domain names and UUIDs.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(GpuRequestError::Empty);
        }
        if t.eq_ignore_ascii_case("all") {
            return Ok(GpuRequest::All);
        }
        if t.eq_ignore_ascii_case("none") {
            return Ok(GpuRequest::Entries(Vec::new()));
        }
        let mut out = Vec::new();
        for e in t.split(',').map(str::trim) {
            let ok = !e.is_empty()
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/');
            if !ok {
                return Err(GpuRequestError::BadEntry {
                    value: s.to_string(),
                    entry: e.to_string(),
                });
            }
            out.push(e.to_string());
        }
        Ok(GpuRequest::Entries(out))
    }
}

impl fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuRequest::All => f.write_str("all"),
            GpuRequest::Entries(e) if e.is_empty() => f.write_str("none"),
            GpuRequest::Entries(e) => f.write_str(&e.join(",")),
        }
    }
}

/// A GPU of the node that is not the job's, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct ExcludedGpu {
    pub domain: String,
    pub reason: String,
}

/// The outcome of [`select_gpus`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuSelection {
    /// The job's GPUs (domains), in the input's order.
    pub selected: Vec<String>,
    /// The node's other GPUs, each with why it is not the job's, in the input's order.
    pub excluded: Vec<ExcludedGpu>,
    /// What decided, e.g. `CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)`.
    pub basis: String,
    /// What the reader must know: approximations, entries ignored.
    pub notes: Vec<String>,
    /// Entries of the user's request that name no GPU (or more than one): the caller refuses
    /// the request, naming them.
    pub unmatched: Vec<String>,
}

fn var<'a>(env: &'a BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    env.get(k).map(String::as_str)
}

fn is_index(e: &str) -> bool {
    !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
}

/// Lower-case hex digits and dashes of a UUID without its `GPU-` prefix.
fn bare_uuid(u: &str) -> String {
    let l = u.trim().to_ascii_lowercase();
    l.strip_prefix("gpu-").unwrap_or(&l).to_string()
}

/// The GPUs (positions in `gpus`) a UUID entry names: an exact or unique-prefix match of a
/// GPU UUID (with or without `GPU-`), a MIG UUID (`MIG-...`: its physical GPU), or the
/// legacy MIG form `MIG-GPU-<uuid>/<gi>/<ci>`. Case-insensitive.
fn match_uuid(entry: &str, gpus: &[&GpuIdentity]) -> Vec<usize> {
    let e = entry.trim().to_ascii_lowercase();
    if let Some(rest) = e.strip_prefix("mig-") {
        if rest.starts_with("gpu-") {
            let parent = rest.split('/').next().unwrap_or(rest);
            return match_uuid(parent, gpus);
        }
        let hits: Vec<usize> = (0..gpus.len())
            .filter(|&k| {
                gpus[k]
                    .mig_uuids
                    .iter()
                    .any(|m| m.to_ascii_lowercase().starts_with(&e))
            })
            .collect();
        return hits;
    }
    let want = bare_uuid(&e);
    if want.is_empty() {
        return Vec::new();
    }
    let exact: Vec<usize> = (0..gpus.len())
        .filter(|&k| gpus[k].uuid.as_deref().map(bare_uuid).as_deref() == Some(&want))
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    (0..gpus.len())
        .filter(|&k| {
            gpus[k]
                .uuid
                .as_deref()
                .is_some_and(|u| bare_uuid(u).starts_with(&want))
        })
        .collect()
}

/// What one entry of a list names among `view`: positions in `view`, or why none.
enum Named {
    One(usize),
    NoGpu(String),
}

fn name_in(entry: &str, view: &[&GpuIdentity], by_position: bool) -> Named {
    if is_index(entry) {
        let Ok(n) = entry.parse::<usize>() else {
            return Named::NoGpu(format!("index {entry} is out of range"));
        };
        let k = if by_position {
            (n < view.len()).then_some(n)
        } else {
            view.iter().position(|g| g.index as usize == n)
        };
        return match k {
            Some(k) => Named::One(k),
            None => Named::NoGpu(format!("no GPU has index {entry} here")),
        };
    }
    match match_uuid(entry, view).as_slice() {
        [k] => Named::One(*k),
        [] => Named::NoGpu(format!(
            "`{entry}` is not an index or the UUID of a GPU here"
        )),
        _ => Named::NoGpu(format!("`{entry}` is a prefix of several GPUs' UUIDs")),
    }
}

/// One layer's outcome: the GPUs kept (positions into the view) and what it says.
struct Layer {
    kept: Vec<usize>,
    notes: Vec<String>,
}

/// A process-view variable (`CUDA_VISIBLE_DEVICES`, `ROCR_VISIBLE_DEVICES`, ...): entries
/// in order, indices are positions in `view`, read up to the first entry naming no GPU.
fn process_list(name: &str, value: &str, view: &[&GpuIdentity]) -> Layer {
    let mut kept = Vec::new();
    let mut notes = Vec::new();
    if value.trim().is_empty() {
        return Layer { kept, notes };
    }
    for (i, e) in value.split(',').map(str::trim).enumerate() {
        match name_in(e, view, true) {
            Named::One(k) if kept.contains(&k) => notes.push(format!(
                "{name}: `{e}` names a GPU already listed: counted once"
            )),
            Named::One(k) => kept.push(k),
            Named::NoGpu(why) => {
                let rest = value.split(',').count() - i - 1;
                notes.push(format!(
                    "{name}={value}: {why}; the runtime ignores that entry{}",
                    if rest > 0 {
                        " and every entry after it"
                    } else {
                        ""
                    }
                ));
                break;
            }
        }
    }
    Layer { kept, notes }
}

/// A node list (`NVIDIA_VISIBLE_DEVICES`, `SLURM_*_GPUS`): see the module docs.
fn node_list(name: &str, value: &str, view: &[&GpuIdentity]) -> (Layer, bool) {
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let mut distinct = entries.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if !distinct.is_empty() && distinct.iter().all(|e| is_index(e)) && distinct.len() == view.len()
    {
        return (
            Layer {
                kept: (0..view.len()).collect(),
                notes: Vec::new(),
            },
            true,
        );
    }
    let mut kept = Vec::new();
    let mut notes = Vec::new();
    for e in entries {
        match name_in(e, view, false) {
            Named::One(k) if !kept.contains(&k) => kept.push(k),
            Named::One(_) => {}
            Named::NoGpu(why) => notes.push(format!("{name}={value}: {why}: entry ignored")),
        }
    }
    kept.sort_unstable();
    (Layer { kept, notes }, false)
}

/// The order CUDA enumerates `view` in (positions into `view`), and a note when it is an
/// approximation.
fn cuda_order(order_var: Option<&str>, view: &[&GpuIdentity]) -> (Vec<usize>, Option<String>) {
    let mut pci: Vec<usize> = (0..view.len()).collect();
    if view.iter().all(|g| g.pci_bus_id.is_some()) {
        pci.sort_by_key(|&k| {
            view[k]
                .pci_bus_id
                .as_deref()
                .map(str::to_ascii_lowercase)
                .unwrap_or_default()
        });
    } else {
        pci.sort_by_key(|&k| view[k].index);
    }
    let order = order_var.map(str::trim).unwrap_or("");
    if order == "PCI_BUS_ID" {
        return (pci, None);
    }
    let same_model = view.windows(2).all(|w| w[0].name == w[1].name);
    if same_model {
        return (pci, None);
    }
    let mut fast = pci.clone();
    // Stable: ties and unknowns keep PCI order; unknowns go last.
    fast.sort_by(|&a, &b| {
        let key = |k: usize| view[k].fp32_tflops.filter(|v| v.is_finite());
        match (key(a), key(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    let shown = if order.is_empty() {
        "unset (FASTEST_FIRST, CUDA's default)".to_string()
    } else if order == "FASTEST_FIRST" {
        "FASTEST_FIRST".to_string()
    } else {
        format!("`{order}` (not PCI_BUS_ID: CUDA's default, FASTEST_FIRST)")
    };
    let names: Vec<String> = fast
        .iter()
        .map(|&k| format!("{} ({})", view[k].domain, view[k].name))
        .collect();
    let note = format!(
        "CUDA_DEVICE_ORDER is {shown} and the GPUs differ: CUDA's order is approximated by \
         peak FP32 FLOPs (GPU table), ties and unknown models in PCI bus order: {}; set \
         CUDA_DEVICE_ORDER=PCI_BUS_ID or name the GPUs by UUID for an exact selection",
        names.join(", ")
    );
    (fast, Some(note))
}

/// One vendor's GPUs through its variables: positions into `gpus` kept, with the reason for
/// the others, the basis parts and the notes.
struct VendorOutcome {
    kept: Vec<usize>,
    reasons: BTreeMap<usize, String>,
    basis: Vec<String>,
    notes: Vec<String>,
}

fn shown(name: &str, value: &str) -> String {
    format!("{name}={value}")
}

/// Keep `keep` of `out.kept`; the others get `reason`.
fn drop_except(out: &mut VendorOutcome, keep: Vec<usize>, reason: &str) {
    for &k in &out.kept {
        if !keep.contains(&k) {
            out.reasons.insert(k, reason.to_string());
        }
    }
    out.kept = keep;
}

fn nvidia(env: &BTreeMap<String, String>, gpus: &[GpuIdentity], mine: &[usize]) -> VendorOutcome {
    let mut out = VendorOutcome {
        kept: mine.to_vec(),
        reasons: BTreeMap::new(),
        basis: Vec::new(),
        notes: Vec::new(),
    };
    if mine.is_empty() {
        return out;
    }
    if let Some(v) = var(env, "NVIDIA_VISIBLE_DEVICES") {
        let t = v.trim();
        let lower = t.to_ascii_lowercase();
        if lower == "all" {
            out.basis.push(shown("NVIDIA_VISIBLE_DEVICES", t));
        } else if lower.is_empty() || lower == "none" || lower == "void" {
            out.basis.push(shown("NVIDIA_VISIBLE_DEVICES", t));
            drop_except(
                &mut out,
                Vec::new(),
                &format!("NVIDIA_VISIBLE_DEVICES={t}: the container runtime gives this job no GPU"),
            );
        } else {
            let view: Vec<&GpuIdentity> = out.kept.iter().map(|&k| &gpus[k]).collect();
            let (layer, renumbered) = node_list("NVIDIA_VISIBLE_DEVICES", t, &view);
            let keep = layer.kept.iter().map(|&p| out.kept[p]).collect();
            out.basis.push(if renumbered {
                format!("NVIDIA_VISIBLE_DEVICES={t} (the container shows only these)")
            } else {
                shown("NVIDIA_VISIBLE_DEVICES", t)
            });
            out.notes.extend(layer.notes);
            drop_except(
                &mut out,
                keep,
                &format!("not in NVIDIA_VISIBLE_DEVICES={t} (the container's GPUs)"),
            );
        }
    }
    if out.kept.is_empty() {
        // The container gave none: nothing for CUDA or Slurm to choose from.
        return out;
    }
    if let Some(v) = var(env, "CUDA_VISIBLE_DEVICES") {
        let view_idx = out.kept.clone();
        let view: Vec<&GpuIdentity> = view_idx.iter().map(|&k| &gpus[k]).collect();
        let order_var = var(env, "CUDA_DEVICE_ORDER");
        let (order, approx) = cuda_order(order_var, &view);
        let ordered: Vec<&GpuIdentity> = order.iter().map(|&p| view[p]).collect();
        let layer = process_list("CUDA_VISIBLE_DEVICES", v, &ordered);
        let uses_index = v
            .split(',')
            .map(str::trim)
            .take(layer.kept.len() + 1)
            .any(is_index);
        if uses_index {
            out.notes.extend(approx);
        }
        let order_shown = match order_var.map(str::trim) {
            Some(o) if !o.is_empty() => format!(" (CUDA_DEVICE_ORDER={o})"),
            _ => String::new(),
        };
        let what = format!("CUDA_VISIBLE_DEVICES={}{order_shown}", v.trim());
        out.basis.push(what.clone());
        out.notes.extend(layer.notes);
        let mut keep: Vec<usize> = layer.kept.iter().map(|&p| view_idx[order[p]]).collect();
        keep.sort_unstable();
        drop_except(&mut out, keep, &format!("not in {what}"));
    } else if let Some((name, v)) = slurm(env) {
        let view: Vec<&GpuIdentity> = out.kept.iter().map(|&k| &gpus[k]).collect();
        let (layer, renumbered) = node_list(name, v, &view);
        let keep = layer.kept.iter().map(|&p| out.kept[p]).collect();
        out.basis.push(slurm_basis(name, v, renumbered));
        out.notes.extend(layer.notes);
        drop_except(
            &mut out,
            keep,
            &format!("not in the Slurm allocation {name}={}", v.trim()),
        );
    }
    out
}

fn slurm(env: &BTreeMap<String, String>) -> Option<(&'static str, &str)> {
    ["SLURM_STEP_GPUS", "SLURM_JOB_GPUS"]
        .into_iter()
        .find_map(|k| var(env, k).map(|v| (k, v)))
}

fn slurm_basis(name: &str, v: &str, renumbered: bool) -> String {
    if renumbered {
        format!(
            "{name}={} (the job's device cgroup shows only these)",
            v.trim()
        )
    } else {
        shown(name, v.trim())
    }
}

fn amd(env: &BTreeMap<String, String>, gpus: &[GpuIdentity], mine: &[usize]) -> VendorOutcome {
    let mut out = VendorOutcome {
        kept: mine.to_vec(),
        reasons: BTreeMap::new(),
        basis: Vec::new(),
        notes: Vec::new(),
    };
    if mine.is_empty() {
        return out;
    }
    let rocr = var(env, "ROCR_VISIBLE_DEVICES");
    let hip = ["HIP_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"]
        .into_iter()
        .find_map(|k| var(env, k).map(|v| (k, v)));
    let apply = |out: &mut VendorOutcome, name: &str, v: &str| {
        let view: Vec<&GpuIdentity> = out.kept.iter().map(|&k| &gpus[k]).collect();
        let layer = process_list(name, v, &view);
        let mut keep: Vec<usize> = layer.kept.iter().map(|&p| out.kept[p]).collect();
        keep.sort_unstable();
        let what = shown(name, v.trim());
        drop_except(out, keep, &format!("not in {what}"));
        out.basis.push(what);
        out.notes.extend(layer.notes);
    };
    if let Some(v) = rocr {
        apply(&mut out, "ROCR_VISIBLE_DEVICES", v);
    }
    if let Some((name, v)) = hip {
        apply(&mut out, name, v);
    }
    if rocr.is_none() && hip.is_none() {
        if let Some((name, v)) = slurm(env) {
            let view: Vec<&GpuIdentity> = out.kept.iter().map(|&k| &gpus[k]).collect();
            let (layer, renumbered) = node_list(name, v, &view);
            let keep: Vec<usize> = layer.kept.iter().map(|&p| out.kept[p]).collect();
            out.basis.push(slurm_basis(name, v, renumbered));
            out.notes.extend(layer.notes);
            drop_except(
                &mut out,
                keep,
                &format!("not in the Slurm allocation {name}={}", v.trim()),
            );
        }
    }
    out
}

/// The user's request over every GPU of the node.
fn requested(req: &GpuRequest, gpus: &[GpuIdentity]) -> GpuSelection {
    let entries = match req {
        GpuRequest::All => {
            return GpuSelection {
                selected: gpus.iter().map(|g| g.domain.clone()).collect(),
                basis: "--gpus all".into(),
                ..GpuSelection::default()
            }
        }
        GpuRequest::Entries(e) => e,
    };
    let all: Vec<&GpuIdentity> = gpus.iter().collect();
    let mut kept = Vec::new();
    let mut unmatched = Vec::new();
    for e in entries {
        let hits: Vec<usize> = if is_index(e) {
            (0..gpus.len())
                .filter(|&k| e.parse::<u32>().ok() == Some(gpus[k].index))
                .collect()
        } else if let Some(k) = gpus.iter().position(|g| g.domain.eq_ignore_ascii_case(e)) {
            vec![k]
        } else {
            match_uuid(e, &all)
        };
        match hits.as_slice() {
            [k] => kept.push(*k),
            [] => unmatched.push(format!("`{e}` names no GPU here")),
            many => unmatched.push(format!(
                "`{e}` names several GPUs ({}): use the domain name or the full UUID",
                many.iter()
                    .map(|&k| gpus[k].domain.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    let basis = format!("--gpus {req}");
    GpuSelection {
        selected: (0..gpus.len())
            .filter(|k| kept.contains(k))
            .map(|k| gpus[k].domain.clone())
            .collect(),
        excluded: (0..gpus.len())
            .filter(|k| !kept.contains(k))
            .map(|k| ExcludedGpu {
                domain: gpus[k].domain.clone(),
                reason: format!("not in {basis}"),
            })
            .collect(),
        basis,
        notes: Vec::new(),
        unmatched,
    }
}

/// The job's GPUs among `gpus` (every GPU the drivers report, in discovery order): the
/// user's `request` when given, else the visibility variables in `env` (see the module
/// docs for the precedence). Never fails: entries naming no GPU are ignored with a note
/// (the environment) or listed in [`GpuSelection::unmatched`] (the request).
pub fn select_gpus(
    env: &BTreeMap<String, String>,
    request: Option<&GpuRequest>,
    gpus: &[GpuIdentity],
) -> GpuSelection {
    if let Some(r) = request {
        return requested(r, gpus);
    }
    let of = |v: GpuVendor| -> Vec<usize> {
        (0..gpus.len())
            .filter(|&k| gpus[k].vendor == Some(v))
            .collect()
    };
    let mut kept: Vec<usize> = (0..gpus.len())
        .filter(|&k| gpus[k].vendor.is_none())
        .collect();
    let mut reasons = BTreeMap::new();
    let mut basis = Vec::new();
    let mut notes = Vec::new();
    for o in [
        nvidia(env, gpus, &of(GpuVendor::Nvidia)),
        amd(env, gpus, &of(GpuVendor::Amd)),
    ] {
        kept.extend(o.kept);
        reasons.extend(o.reasons);
        basis.extend(o.basis);
        notes.extend(o.notes);
    }
    let basis = if basis.is_empty() {
        "every GPU of the node (no visibility variable set)".to_string()
    } else {
        basis.join(", ")
    };
    GpuSelection {
        selected: (0..gpus.len())
            .filter(|k| kept.contains(k))
            .map(|k| gpus[k].domain.clone())
            .collect(),
        excluded: (0..gpus.len())
            .filter(|k| !kept.contains(k))
            .map(|k| ExcludedGpu {
                domain: gpus[k].domain.clone(),
                reason: reasons
                    .get(&k)
                    .cloned()
                    .unwrap_or_else(|| "not visible to the job".into()),
            })
            .collect(),
        basis,
        notes,
        unmatched: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nv(index: u32, name: &str, tflops: Option<f64>) -> GpuIdentity {
        GpuIdentity {
            domain: format!("gpu-{index}"),
            vendor: Some(GpuVendor::Nvidia),
            index,
            name: name.into(),
            uuid: Some(format!(
                "GPU-{index}{index}{index}{index}aaaa-0000-0000-0000-00000000000{index}"
            )),
            mig_uuids: Vec::new(),
            pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x10 + index)),
            fp32_tflops: tflops,
        }
    }

    fn amdgpu(index: u32) -> GpuIdentity {
        GpuIdentity {
            domain: format!("amdgpu-{index}"),
            vendor: Some(GpuVendor::Amd),
            index,
            name: "AMD Instinct MI250X".into(),
            uuid: Some(format!("GPU-{index}{index}d8a4e1c2b3f6{index}{index}")),
            ..GpuIdentity::default()
        }
    }

    /// A mixed node: two H100s around an A100 and a T4 (PCI order = index order), and two
    /// AMD GPUs.
    fn node() -> Vec<GpuIdentity> {
        let mut t4 = nv(2, "Tesla T4", Some(8.1));
        t4.mig_uuids = vec![];
        let mut a100 = nv(1, "NVIDIA A100 80GB PCIe", Some(19.5));
        a100.mig_uuids = vec![
            "MIG-9f2c1a7e-0d3b-5e44-b1a2-0c7d8e9f0a1b".into(),
            "MIG-3b4c5d6e-7f80-5912-a3b4-c5d6e7f80912".into(),
        ];
        vec![
            nv(0, "NVIDIA H100 80GB HBM3", Some(67.0)),
            a100,
            t4,
            nv(3, "NVIDIA H100 80GB HBM3", Some(67.0)),
            amdgpu(0),
            amdgpu(1),
        ]
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pick(pairs: &[(&str, &str)]) -> GpuSelection {
        select_gpus(&env(pairs), None, &node())
    }

    fn sel(s: &GpuSelection) -> Vec<&str> {
        s.selected.iter().map(String::as_str).collect()
    }

    fn reason<'a>(s: &'a GpuSelection, domain: &str) -> &'a str {
        &s.excluded
            .iter()
            .find(|e| e.domain == domain)
            .unwrap_or_else(|| panic!("{domain} not excluded: {s:?}"))
            .reason
    }

    const PCI: (&str, &str) = ("CUDA_DEVICE_ORDER", "PCI_BUS_ID");

    #[test]
    fn no_variable_keeps_every_gpu_of_the_node() {
        let s = pick(&[]);
        assert_eq!(
            sel(&s),
            ["gpu-0", "gpu-1", "gpu-2", "gpu-3", "amdgpu-0", "amdgpu-1"]
        );
        assert!(s.excluded.is_empty());
        assert_eq!(
            s.basis,
            "every GPU of the node (no visibility variable set)"
        );
        assert!(s.notes.is_empty());
    }

    #[test]
    fn a_cuda_index_in_pci_order_keeps_that_gpu_alone() {
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "1"), PCI]);
        assert_eq!(sel(&s), ["gpu-1", "amdgpu-0", "amdgpu-1"]);
        assert_eq!(
            reason(&s, "gpu-0"),
            "not in CUDA_VISIBLE_DEVICES=1 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"
        );
        assert_eq!(s.excluded.len(), 3);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn cuda_indices_follow_the_pci_bus_id_not_the_driver_index() {
        let mut gpus = node();
        // The driver's index 0 sits on a later bus than index 1.
        gpus[0].pci_bus_id = Some("00000000:AF:00.0".into());
        let s = select_gpus(&env(&[("CUDA_VISIBLE_DEVICES", "0"), PCI]), None, &gpus);
        assert_eq!(s.selected[0], "gpu-1");
        // Without every bus id known, the driver's index order stands.
        gpus[2].pci_bus_id = None;
        let s = select_gpus(&env(&[("CUDA_VISIBLE_DEVICES", "0"), PCI]), None, &gpus);
        assert_eq!(s.selected[0], "gpu-0");
    }

    #[test]
    fn set_and_empty_hides_every_nvidia_gpu() {
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "")]);
        assert_eq!(sel(&s), ["amdgpu-0", "amdgpu-1"]);
        assert_eq!(reason(&s, "gpu-3"), "not in CUDA_VISIBLE_DEVICES=");
    }

    #[test]
    fn cuda_reads_up_to_the_first_entry_naming_no_gpu() {
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "3,7,1"), PCI]);
        assert_eq!(sel(&s)[..1], ["gpu-3"]);
        assert!(!s.selected.contains(&"gpu-1".to_string()));
        assert!(
            s.notes[0].contains("no GPU has index 7")
                && s.notes[0].contains("and every entry after it"),
            "{:?}",
            s.notes
        );
        // -1 and Slurm's NoDevFiles are such entries at the head: no GPU at all.
        for v in ["-1", "NoDevFiles"] {
            let s = pick(&[("CUDA_VISIBLE_DEVICES", v)]);
            assert_eq!(sel(&s), ["amdgpu-0", "amdgpu-1"], "{v}");
        }
        // A GPU listed twice is one GPU.
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "2,2"), PCI]);
        assert_eq!(sel(&s)[..1], ["gpu-2"]);
        assert!(s.notes[0].contains("counted once"), "{:?}", s.notes);
    }

    #[test]
    fn uuids_match_whole_prefixed_bare_partial_and_in_any_case() {
        let full = "GPU-2222aaaa-0000-0000-0000-000000000002";
        for v in [
            full,
            "gpu-2222AAAA-0000-0000-0000-000000000002",
            "2222aaaa-0000-0000-0000-000000000002",
            "GPU-2222",
            "2222a",
        ] {
            let s = pick(&[("CUDA_VISIBLE_DEVICES", v)]);
            assert_eq!(sel(&s)[..1], ["gpu-2"], "{v}");
            assert_eq!(s.selected.len(), 3, "{v}: {s:?}");
            assert!(
                s.notes.is_empty(),
                "{v}: UUIDs need no order: {:?}",
                s.notes
            );
        }
        // Indices and UUIDs mix; order of the list does not matter for the set.
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "GPU-3333,GPU-0000aaaa"), PCI]);
        assert_eq!(sel(&s)[..2], ["gpu-0", "gpu-3"]);
    }

    #[test]
    fn an_ambiguous_uuid_prefix_names_no_gpu() {
        let mut gpus = node();
        gpus[1].uuid = Some("GPU-0000bbbb-0000-0000-0000-000000000001".into());
        let s = select_gpus(&env(&[("CUDA_VISIBLE_DEVICES", "GPU-0000")]), None, &gpus);
        assert_eq!(sel(&s), ["amdgpu-0", "amdgpu-1"]);
        assert!(s.notes[0].contains("prefix of several"), "{:?}", s.notes);
    }

    #[test]
    fn a_mig_uuid_names_its_physical_gpu() {
        for v in [
            "MIG-3b4c5d6e-7f80-5912-a3b4-c5d6e7f80912",
            "MIG-9f2c1a7e",
            // The legacy form names the parent by UUID.
            "MIG-GPU-1111aaaa-0000-0000-0000-000000000001/1/0",
        ] {
            let s = pick(&[("CUDA_VISIBLE_DEVICES", v)]);
            assert_eq!(sel(&s)[..1], ["gpu-1"], "{v}");
            assert_eq!(s.selected.len(), 3, "{v}");
        }
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "MIG-ffff")]);
        assert_eq!(sel(&s), ["amdgpu-0", "amdgpu-1"]);
    }

    #[test]
    fn fastest_first_on_mixed_gpus_is_approximated_and_said() {
        // Approximate order: gpu-0 (67), gpu-3 (67, later on the bus), gpu-1 (19.5), gpu-2.
        for order in [None, Some("FASTEST_FIRST"), Some("fastest")] {
            let mut pairs = vec![("CUDA_VISIBLE_DEVICES", "1")];
            if let Some(o) = order {
                pairs.push(("CUDA_DEVICE_ORDER", o));
            }
            let s = pick(&pairs);
            assert_eq!(sel(&s)[..1], ["gpu-3"], "{order:?}");
            assert_eq!(s.notes.len(), 1, "{order:?}: {:?}", s.notes);
            let n = &s.notes[0];
            assert!(n.contains("approximated by peak FP32 FLOPs"), "{n}");
            assert!(n.contains("gpu-0 (NVIDIA H100 80GB HBM3), gpu-3"), "{n}");
            assert!(n.contains("CUDA_DEVICE_ORDER=PCI_BUS_ID"), "{n}");
        }
        let s = pick(&[("CUDA_VISIBLE_DEVICES", "2")]);
        assert_eq!(sel(&s)[..1], ["gpu-1"]);
        // Models without a figure come last, in PCI order.
        let mut gpus = node();
        gpus[0].fp32_tflops = None;
        let s = select_gpus(&env(&[("CUDA_VISIBLE_DEVICES", "3")]), None, &gpus);
        assert_eq!(s.selected[0], "gpu-0");
    }

    #[test]
    fn fastest_first_on_identical_gpus_is_pci_order_without_a_note() {
        let gpus: Vec<_> = (0..4)
            .map(|i| nv(i, "NVIDIA H100 80GB HBM3", Some(67.0)))
            .collect();
        let s = select_gpus(&env(&[("CUDA_VISIBLE_DEVICES", "2,3")]), None, &gpus);
        assert_eq!(sel(&s), ["gpu-2", "gpu-3"]);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert_eq!(s.basis, "CUDA_VISIBLE_DEVICES=2,3");
    }

    #[test]
    fn the_container_runtime_variable_is_honoured() {
        for v in ["none", "void", "", "NONE"] {
            let s = pick(&[("NVIDIA_VISIBLE_DEVICES", v)]);
            assert_eq!(sel(&s), ["amdgpu-0", "amdgpu-1"], "{v}");
            assert!(
                reason(&s, "gpu-0").contains("gives this job no GPU"),
                "{v}: {s:?}"
            );
        }
        let s = pick(&[("NVIDIA_VISIBLE_DEVICES", "all")]);
        assert_eq!(s.selected.len(), 6);
        assert!(s.excluded.is_empty());
        // Node indices where the driver shows every GPU (a privileged container).
        let s = pick(&[("NVIDIA_VISIBLE_DEVICES", "2,3")]);
        assert_eq!(sel(&s)[..2], ["gpu-2", "gpu-3"]);
        assert_eq!(
            reason(&s, "gpu-0"),
            "not in NVIDIA_VISIBLE_DEVICES=2,3 (the container's GPUs)"
        );
        // UUIDs, as Kubernetes' device plugin sets them.
        let s = pick(&[(
            "NVIDIA_VISIBLE_DEVICES",
            "GPU-1111aaaa-0000-0000-0000-000000000001,GPU-3333aaaa-0000-0000-0000-000000000003",
        )]);
        assert_eq!(sel(&s)[..2], ["gpu-1", "gpu-3"]);
    }

    #[test]
    fn a_container_that_already_hid_the_others_keeps_what_it_shows() {
        // `--gpus '"device=5,6"'`: the driver inside shows two GPUs, renumbered 0 and 1.
        let gpus = vec![
            nv(0, "NVIDIA H100 80GB HBM3", Some(67.0)),
            nv(1, "NVIDIA H100 80GB HBM3", Some(67.0)),
        ];
        let s = select_gpus(&env(&[("NVIDIA_VISIBLE_DEVICES", "5,6")]), None, &gpus);
        assert_eq!(sel(&s), ["gpu-0", "gpu-1"]);
        assert!(
            s.basis.contains("the container shows only these"),
            "{}",
            s.basis
        );
        // CUDA_VISIBLE_DEVICES then counts within the container.
        let s = select_gpus(
            &env(&[
                ("NVIDIA_VISIBLE_DEVICES", "5,6"),
                ("CUDA_VISIBLE_DEVICES", "1"),
            ]),
            None,
            &gpus,
        );
        assert_eq!(sel(&s), ["gpu-1"]);
    }

    #[test]
    fn cuda_indices_count_within_the_containers_gpus() {
        let s = pick(&[
            ("NVIDIA_VISIBLE_DEVICES", "1,2,3"),
            ("CUDA_VISIBLE_DEVICES", "0"),
            PCI,
        ]);
        assert_eq!(sel(&s)[..1], ["gpu-1"]);
        assert!(reason(&s, "gpu-0").contains("NVIDIA_VISIBLE_DEVICES"));
        assert!(reason(&s, "gpu-2").contains("CUDA_VISIBLE_DEVICES=0"));
        assert_eq!(
            s.basis,
            "NVIDIA_VISIBLE_DEVICES=1,2,3, CUDA_VISIBLE_DEVICES=0 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"
        );
    }

    #[test]
    fn slurm_allocation_applies_when_cuda_visible_devices_is_unset() {
        let s = pick(&[("SLURM_JOB_GPUS", "1,3")]);
        assert_eq!(sel(&s)[..2], ["gpu-1", "gpu-3"]);
        assert_eq!(
            reason(&s, "gpu-0"),
            "not in the Slurm allocation SLURM_JOB_GPUS=1,3"
        );
        // The step's allocation is narrower than the job's: it wins.
        let s = pick(&[("SLURM_JOB_GPUS", "1,3"), ("SLURM_STEP_GPUS", "3")]);
        assert_eq!(sel(&s)[..1], ["gpu-3"]);
        assert!(s.basis.starts_with("SLURM_STEP_GPUS=3"), "{}", s.basis);
        // CUDA_VISIBLE_DEVICES is what the job's runtime obeys: it wins over Slurm's list.
        let s = pick(&[
            ("SLURM_JOB_GPUS", "1,3"),
            ("CUDA_VISIBLE_DEVICES", "0"),
            PCI,
        ]);
        assert_eq!(sel(&s)[..1], ["gpu-0"]);
        assert!(reason(&s, "gpu-1").contains("CUDA_VISIBLE_DEVICES=0"));
        assert!(
            s.basis.starts_with("CUDA_VISIBLE_DEVICES=0 "),
            "{}",
            s.basis
        );
    }

    #[test]
    fn a_vendor_without_gpus_here_says_nothing() {
        // An NVIDIA-only Slurm node: Slurm's list is not applied to absent AMD GPUs.
        let gpus: Vec<_> = node().into_iter().take(4).collect();
        let s = select_gpus(
            &env(&[
                ("SLURM_JOB_GPUS", "1,3"),
                ("CUDA_VISIBLE_DEVICES", "1,3"),
                ("ROCR_VISIBLE_DEVICES", "0"),
                PCI,
            ]),
            None,
            &gpus,
        );
        assert_eq!(sel(&s), ["gpu-1", "gpu-3"]);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert_eq!(
            s.basis,
            "CUDA_VISIBLE_DEVICES=1,3 (CUDA_DEVICE_ORDER=PCI_BUS_ID)"
        );
        // A container given no GPU: CUDA's list has nothing to name, and says nothing.
        let s = select_gpus(
            &env(&[
                ("NVIDIA_VISIBLE_DEVICES", "void"),
                ("CUDA_VISIBLE_DEVICES", "0"),
            ]),
            None,
            &gpus,
        );
        assert!(s.selected.is_empty() && s.notes.is_empty(), "{s:?}");
        // No GPU at all: nothing to say either.
        let s = select_gpus(&env(&[("CUDA_VISIBLE_DEVICES", "0")]), None, &[]);
        assert_eq!(
            s,
            GpuSelection {
                basis: "every GPU of the node (no visibility variable set)".into(),
                ..GpuSelection::default()
            }
        );
    }

    #[test]
    fn a_constrained_slurm_job_keeps_every_gpu_the_driver_shows() {
        // ConstrainDevices=yes: the device cgroup shows the job its two GPUs only.
        let gpus = vec![
            nv(0, "NVIDIA H100 80GB HBM3", Some(67.0)),
            nv(1, "NVIDIA H100 80GB HBM3", Some(67.0)),
        ];
        let s = select_gpus(&env(&[("SLURM_JOB_GPUS", "4,6")]), None, &gpus);
        assert_eq!(sel(&s), ["gpu-0", "gpu-1"]);
        assert!(s.basis.contains("device cgroup"), "{}", s.basis);
        // An index the driver does not show, on an unconstrained node: ignored, said.
        let s = pick(&[("SLURM_JOB_GPUS", "1,9")]);
        assert_eq!(sel(&s)[..1], ["gpu-1"]);
        assert!(s.notes.iter().any(|n| n.contains("no GPU has index 9")));
    }

    #[test]
    fn rocm_variables_select_amd_gpus_and_leave_nvidia_alone() {
        let s = pick(&[("ROCR_VISIBLE_DEVICES", "1")]);
        assert_eq!(sel(&s), ["gpu-0", "gpu-1", "gpu-2", "gpu-3", "amdgpu-1"]);
        assert_eq!(reason(&s, "amdgpu-0"), "not in ROCR_VISIBLE_DEVICES=1");
        // HIP counts within what ROCr left.
        let s = pick(&[
            ("ROCR_VISIBLE_DEVICES", "0,1"),
            ("HIP_VISIBLE_DEVICES", "1"),
        ]);
        assert_eq!(sel(&s)[4..], ["amdgpu-1"]);
        let s = pick(&[("ROCR_VISIBLE_DEVICES", "1"), ("HIP_VISIBLE_DEVICES", "0")]);
        assert_eq!(sel(&s)[4..], ["amdgpu-1"]);
        // GPU_DEVICE_ORDINAL stands in for HIP_VISIBLE_DEVICES.
        let s = pick(&[("GPU_DEVICE_ORDINAL", "0")]);
        assert_eq!(sel(&s)[4..], ["amdgpu-0"]);
        let s = pick(&[("HIP_VISIBLE_DEVICES", "1"), ("GPU_DEVICE_ORDINAL", "0")]);
        assert_eq!(sel(&s)[4..], ["amdgpu-1"]);
        // AMD UUIDs, and CUDA_VISIBLE_DEVICES does not touch AMD GPUs.
        let s = pick(&[
            ("ROCR_VISIBLE_DEVICES", "GPU-11d8"),
            ("CUDA_VISIBLE_DEVICES", "0"),
            PCI,
        ]);
        assert_eq!(sel(&s), ["gpu-0", "amdgpu-1"]);
        // Without ROCm variables, Slurm's allocation applies to AMD GPUs too.
        let s = pick(&[("SLURM_JOB_GPUS", "0"), ("CUDA_VISIBLE_DEVICES", "1"), PCI]);
        assert_eq!(sel(&s), ["gpu-1", "amdgpu-0"]);
    }

    #[test]
    fn the_users_request_decides_alone() {
        let all_hidden = [("CUDA_VISIBLE_DEVICES", ""), ("ROCR_VISIBLE_DEVICES", "")];
        let s = select_gpus(&env(&all_hidden), Some(&GpuRequest::All), &node());
        assert_eq!(s.selected.len(), 6);
        assert_eq!(s.basis, "--gpus all");
        let req: GpuRequest = "gpu-0, GPU-2222,amdgpu-1".parse().unwrap();
        let s = select_gpus(&env(&all_hidden), Some(&req), &node());
        assert_eq!(sel(&s), ["gpu-0", "gpu-2", "amdgpu-1"]);
        assert_eq!(reason(&s, "gpu-1"), "not in --gpus gpu-0,GPU-2222,amdgpu-1");
        assert!(s.unmatched.is_empty());
        let req: GpuRequest = "none".parse().unwrap();
        let s = select_gpus(&env(&[]), Some(&req), &node());
        assert!(s.selected.is_empty());
        assert_eq!(s.excluded.len(), 6);
        assert_eq!(reason(&s, "gpu-0"), "not in --gpus none");
        // Indices name the driver's index; a bare index two vendors share is refused.
        let req: GpuRequest = "3,1,9".parse().unwrap();
        let s = select_gpus(&env(&[]), Some(&req), &node());
        assert_eq!(sel(&s), ["gpu-3"]);
        assert_eq!(s.unmatched.len(), 2, "{:?}", s.unmatched);
        assert!(s.unmatched[0].contains("`1` names several GPUs (gpu-1, amdgpu-1)"));
        assert_eq!(s.unmatched[1], "`9` names no GPU here");
    }

    #[test]
    fn gpu_requests_parse_or_say_what_is_wrong() {
        assert_eq!("all".parse(), Ok(GpuRequest::All));
        assert_eq!(" ALL ".parse(), Ok(GpuRequest::All));
        assert_eq!("none".parse(), Ok(GpuRequest::Entries(vec![])));
        assert_eq!(
            "0,2".parse(),
            Ok(GpuRequest::Entries(vec!["0".into(), "2".into()]))
        );
        assert_eq!("".parse::<GpuRequest>(), Err(GpuRequestError::Empty));
        for bad in ["0,,1", "0;1", "gpu 1"] {
            let e = bad.parse::<GpuRequest>().unwrap_err();
            assert!(matches!(e, GpuRequestError::BadEntry { .. }), "{bad}");
            assert!(e.to_string().starts_with(&format!("--gpus {bad}:")), "{e}");
        }
        assert_eq!(GpuRequest::Entries(vec![]).to_string(), "none");
    }

    fn any_value() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop::sample::select(vec![
            "",
            "0",
            "1",
            "3",
            "1,0",
            "0,2,3",
            "7",
            "all",
            "none",
            "void",
            "GPU-1111",
            "MIG-9f2c",
            "2,9,1",
            "-1",
            "GPU-0000aaaa-0000-0000-0000-000000000000",
        ]))
        .prop_map(|o| o.map(str::to_string))
    }

    proptest! {
        /// Whatever the variables say, every GPU of the node is either the job's or listed
        /// with a reason, never both, never lost, in the driver's order.
        #[test]
        fn every_gpu_is_selected_or_excluded_exactly_once(
            values in prop::collection::vec(any_value(), VISIBILITY_VARS.len()),
            order_pci in any::<bool>(),
        ) {
            let mut e = BTreeMap::new();
            for (k, v) in VISIBILITY_VARS.iter().zip(values) {
                if let Some(v) = v {
                    e.insert(k.to_string(), v);
                }
            }
            if order_pci {
                e.insert("CUDA_DEVICE_ORDER".into(), "PCI_BUS_ID".into());
            }
            let gpus = node();
            let s = select_gpus(&e, None, &gpus);
            let mut seen: Vec<&str> = s.selected.iter().map(String::as_str).collect();
            seen.extend(s.excluded.iter().map(|x| x.domain.as_str()));
            seen.sort_unstable();
            let mut all: Vec<&str> = gpus.iter().map(|g| g.domain.as_str()).collect();
            all.sort_unstable();
            prop_assert_eq!(seen, all);
            prop_assert!(s.excluded.iter().all(|x| !x.reason.is_empty()));
            let order = |d: &str| gpus.iter().position(|g| g.domain == d);
            prop_assert!(s.selected.windows(2).all(|w| order(&w[0]) < order(&w[1])));
        }
    }
}
