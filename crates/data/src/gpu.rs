//! GPU hardware table: peak dense TFLOPS by precision, board power (TDP) and embodied carbon,
//! from `data/gpu-specs.csv` (vendor datasheets and whitepapers; see `data/NOTICE.md`).
//!
//! `build.rs` reads the CSV (with the `csv` crate, checking every row) and generates the
//! static table: nothing is parsed at run time.
//!
//! # Name matching
//!
//! NVML and amdsmi report marketing names such as `NVIDIA H100 80GB HBM3` or
//! `Tesla V100-SXM2-32GB`; the table uses short model keys (`H100-SXM5-80GB`). [`lookup`]
//! normalises the reported name (upper case; spaces and underscores become `-`; leading
//! `NVIDIA-`, `TESLA-`, `AMD-`, `INSTINCT-` dropped) and then accepts only an exact match
//! with a table key or with one of the documented aliases in [`ALIASES`]. There is no
//! substring or fuzzy matching: `NVIDIA H100 NVL` (a different board) is *unknown*, not
//! silently taken for an H100 SXM. MIG instances (`... MIG 1g.10gb`) are never matched: a
//! slice has no datasheet peak.

use wattprint_core::work::{DevicePeak, Precision};

include!(concat!(env!("OUT_DIR"), "/gpu_specs.rs"));

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSpec {
    /// Table key, e.g. `H100-SXM5-80GB`.
    pub model: &'static str,
    /// `nvidia` or `amd`.
    pub vendor: &'static str,
    /// Board power (TDP), W.
    pub tdp_w: f64,
    pub fp32_tflops: Option<f64>,
    pub tf32_tflops: Option<f64>,
    /// The 16-bit dense tensor peak (BF16; FP16 on V100 and T4, which lack BF16), TFLOPS.
    pub bf16_tflops: Option<f64>,
    pub fp8_tflops: Option<f64>,
    /// Embodied emissions of the board, kgCO2e, with its source.
    pub embodied_kgco2e: Option<f64>,
    pub embodied_source: Option<&'static str>,
    /// Where the specs come from: `datasheet`, `whitepaper`, `product brief`, or
    /// `unverified` / `approximate` (which output must say); `unstated` when the row is
    /// empty.
    pub spec_confidence: &'static str,
}

impl GpuSpec {
    /// Peak dense TFLOPS at `precision`. FP16 uses the 16-bit tensor column (dense FP16 and
    /// BF16 peaks are equal on every listed part). `Err` says the table has no figure.
    pub fn peak_tflops(&self, precision: Precision) -> Result<f64, String> {
        let v = match precision {
            Precision::Fp32 => self.fp32_tflops,
            Precision::Tf32 => self.tf32_tflops,
            Precision::Bf16 | Precision::Fp16 => self.bf16_tflops,
            Precision::Fp8 => self.fp8_tflops,
        };
        v.ok_or_else(|| {
            format!(
                "the hardware table has no {} peak for {}",
                precision.as_str(),
                self.model
            )
        })
    }

    /// False for rows marked `unverified` or `approximate`: output must say so.
    pub fn is_verified(&self) -> bool {
        !matches!(self.spec_confidence, "unverified" | "approximate")
    }

    /// A label for reports: `H100-SXM5-80GB (whitepaper)`, or with `UNVERIFIED` spelled out.
    pub fn label(&self) -> String {
        if self.is_verified() {
            format!("{} ({})", self.model, self.spec_confidence)
        } else {
            format!(
                "{} (spec_confidence: {}: figures not checked against a datasheet)",
                self.model, self.spec_confidence
            )
        }
    }
}

/// Reported-name aliases (after normalisation) → table key. Each is an exact name NVML or
/// amdsmi reports for the board the row describes (or a board with identical peaks and TDP,
/// noted).
pub const ALIASES: &[(&str, &str)] = &[
    ("V100-SXM2-16GB", "V100-SXM2"),
    ("V100-SXM2-32GB", "V100-SXM2"),
    ("V100-PCIE-16GB", "V100-PCIE"),
    ("V100-PCIE-32GB", "V100-PCIE"),
    // 40 GB SXM4: same peaks and 400 W TDP as the 80 GB row.
    ("A100-SXM4-40GB", "A100-SXM4-80GB"),
    ("A100-80GB-PCIE", "A100-PCIE-80GB"),
    ("H100-80GB-HBM3", "H100-SXM5-80GB"),
    ("H100-SXM5", "H100-SXM5-80GB"),
    ("H100-PCIE", "H100-PCIE-80GB"),
    ("H200", "H200-SXM-141GB"),
    ("H200-SXM", "H200-SXM-141GB"),
    ("MI300X-OAM", "MI300X"),
];

const PREFIXES: &[&str] = &["NVIDIA-", "TESLA-", "AMD-", "INSTINCT-"];

/// Normalise a reported device name for matching (see the module docs).
pub fn normalize_name(name: &str) -> String {
    let mut s: String = name
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '_' => '-',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    loop {
        match PREFIXES.iter().find(|p| s.starts_with(*p)) {
            Some(p) => s = s[p.len()..].to_string(),
            None => return s,
        }
    }
}

/// The outcome of a lookup.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuMatch {
    /// Found; `via` says how (`exact` or `alias NAME`).
    Found { spec: &'static GpuSpec, via: String },
    /// Not in the table; `reason` says so and what to do.
    Unknown { reason: String },
}

/// Every row of the table.
pub fn all() -> &'static [GpuSpec] {
    GPU_SPECS
}

/// Find the table row for a device name as NVML or amdsmi reports it.
pub fn lookup(reported: &str) -> GpuMatch {
    let rows = all();
    let norm = normalize_name(reported);
    if norm.contains("-MIG-") || norm.ends_with("-MIG") {
        return GpuMatch::Unknown {
            reason: format!("`{reported}` is a MIG instance: a slice has no datasheet peak or TDP"),
        };
    }
    let (key, via) = match ALIASES.iter().find(|(a, _)| *a == norm) {
        Some((a, k)) => (k.to_string(), format!("alias {a}")),
        None => (norm.clone(), "exact".to_string()),
    };
    match rows.iter().find(|r| r.model.eq_ignore_ascii_case(&key)) {
        Some(spec) => GpuMatch::Found { spec, via },
        None => GpuMatch::Unknown {
            reason: format!(
                "`{reported}` is not in the GPU hardware table (data/gpu-specs.csv; normalised \
                 name `{norm}`): peak FLOPs/W is unknown"
            ),
        },
    }
}

/// The peak and TDP of a reported device at `precision`, for
/// [`wattprint_core::work::peak_flops_per_watt`], plus the matched row's label (`None` when
/// unknown). Peaks are converted from TFLOPS to FLOP/s.
pub fn device_peak(reported: &str, precision: Precision) -> (DevicePeak, Option<String>) {
    match lookup(reported) {
        GpuMatch::Found { spec, .. } => (
            DevicePeak {
                device: reported.to_string(),
                peak_flops_per_s: spec.peak_tflops(precision).map(|t| t * 1e12),
                tdp_w: Ok(spec.tdp_w),
            },
            Some(spec.label()),
        ),
        GpuMatch::Unknown { reason } => (
            DevicePeak {
                device: reported.to_string(),
                peak_flops_per_s: Err(reason.clone()),
                tdp_w: Err(reason),
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str) -> &'static GpuSpec {
        match lookup(name) {
            GpuMatch::Found { spec, .. } => spec,
            GpuMatch::Unknown { reason } => panic!("{name}: {reason}"),
        }
    }

    #[test]
    fn embedded_table_parses_every_row() {
        let rows = all();
        assert_eq!(rows.len(), 13);
        let h100 = rows.iter().find(|r| r.model == "H100-SXM5-80GB").unwrap();
        assert_eq!(h100.tdp_w, 700.0);
        assert_eq!(h100.bf16_tflops, Some(989.4));
        assert_eq!(h100.fp8_tflops, Some(1978.9));
        assert_eq!(h100.embodied_kgco2e, Some(164.0));
        assert_eq!(h100.spec_confidence, "whitepaper");
        assert!(h100.embodied_source.unwrap().starts_with("NVIDIA HGX H100"));
    }

    #[test]
    fn names_nvml_reports_match_their_rows() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"),
            ("NVIDIA H100 PCIe", "H100-PCIE-80GB"),
            ("NVIDIA H200", "H200-SXM-141GB"),
            ("Tesla V100-SXM2-32GB", "V100-SXM2"),
            ("Tesla V100-PCIE-16GB", "V100-PCIE"),
            ("Tesla T4", "T4"),
            ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
            ("NVIDIA A100-SXM4-40GB", "A100-SXM4-80GB"),
            ("NVIDIA A100 80GB PCIe", "A100-PCIE-80GB"),
            ("NVIDIA A10G", "A10G"),
            ("NVIDIA L4", "L4"),
            ("NVIDIA L40S", "L40S"),
            ("NVIDIA B200", "B200"),
            ("AMD Instinct MI300X", "MI300X"),
            ("MI300X", "MI300X"),
            ("  nvidia  h100_80gb_hbm3 ", "H100-SXM5-80GB"),
        ];
        for (name, model) in cases {
            assert_eq!(found(name).model, model, "{name}");
        }
    }

    #[test]
    fn match_says_how_it_matched() {
        match lookup("NVIDIA H100 80GB HBM3") {
            GpuMatch::Found { via, .. } => assert_eq!(via, "alias H100-80GB-HBM3"),
            other => panic!("{other:?}"),
        }
        match lookup("NVIDIA L4") {
            GpuMatch::Found { via, .. } => assert_eq!(via, "exact"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn different_boards_and_unknown_names_are_unknown() {
        for name in [
            "NVIDIA H100 NVL",
            "NVIDIA A100-PCIE-40GB",
            "NVIDIA GeForce RTX 4090",
            "Tesla V100S-PCIE-32GB",
            "",
            "H1000",
        ] {
            match lookup(name) {
                GpuMatch::Unknown { reason } => {
                    assert!(reason.contains("not in the GPU hardware table"), "{reason}")
                }
                GpuMatch::Found { spec, .. } => panic!("{name} matched {}", spec.model),
            }
        }
    }

    #[test]
    fn mig_instances_are_not_matched() {
        match lookup("NVIDIA A100-SXM4-40GB MIG 1g.5gb") {
            GpuMatch::Unknown { reason } => assert!(reason.contains("MIG instance")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn peaks_by_precision_and_missing_columns() {
        let h = found("NVIDIA H100 80GB HBM3");
        assert_eq!(h.peak_tflops(Precision::Bf16), Ok(989.4));
        assert_eq!(h.peak_tflops(Precision::Fp16), Ok(989.4));
        assert_eq!(h.peak_tflops(Precision::Fp8), Ok(1978.9));
        assert_eq!(h.peak_tflops(Precision::Tf32), Ok(494.7));
        assert_eq!(h.peak_tflops(Precision::Fp32), Ok(66.9));
        let v = found("Tesla V100-SXM2-16GB");
        assert_eq!(
            v.peak_tflops(Precision::Fp8),
            Err("the hardware table has no fp8 peak for V100-SXM2".into())
        );
    }

    #[test]
    fn unverified_and_approximate_rows_say_so() {
        let l40s = found("NVIDIA L40S");
        assert!(!l40s.is_verified());
        assert!(l40s.label().contains("unverified"));
        let b200 = found("NVIDIA B200");
        assert!(b200.label().contains("approximate"));
        assert_eq!(found("NVIDIA L4").label(), "L4 (datasheet)");
    }

    #[test]
    fn device_peak_converts_tflops_to_flops() {
        let (p, label) = device_peak("NVIDIA H100 80GB HBM3", Precision::Bf16);
        assert_eq!(p.peak_flops_per_s, Ok(989.4e12));
        assert_eq!(p.tdp_w, Ok(700.0));
        assert_eq!(label.as_deref(), Some("H100-SXM5-80GB (whitepaper)"));
        let (p, label) = device_peak("Mystery", Precision::Bf16);
        assert!(p.peak_flops_per_s.is_err() && label.is_none());
    }

    #[test]
    fn mixed_devices_peak_is_sum_over_sum() {
        let devs = [
            device_peak("NVIDIA H100 80GB HBM3", Precision::Bf16).0,
            device_peak("NVIDIA L4", Precision::Bf16).0,
        ];
        let p = wattprint_core::work::peak_flops_per_watt(&devs).unwrap();
        assert_eq!(p, (989.4e12 + 121e12) / 772.0);
        assert!((p - 1.438e12).abs() < 1e9, "{p}");
    }

    #[test]
    fn normalisation_strips_vendor_prefixes() {
        assert_eq!(normalize_name("NVIDIA Tesla T4"), "T4");
        assert_eq!(normalize_name("AMD Instinct MI300X"), "MI300X");
        assert_eq!(normalize_name("a  b__c"), "A-B-C");
    }
}
