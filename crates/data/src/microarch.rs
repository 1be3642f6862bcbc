//! CPU micro-architecture from what `/proc/cpuinfo` says besides the name (vendor, family,
//! model, flags; implementer and part on Arm), mapped to the Cloud Carbon Footprint row that
//! stands for it ([`crate::ccf::Architecture`]).
//!
//! Virtual machines often report a generic name (`Intel(R) Xeon(R) Processor`,
//! `AMD EPYC Processor`) but pass the CPUID signature and feature flags through, so these
//! identify the hardware when the name cannot.
//!
//! Sources of the mapping:
//! - Intel: family 6 display models from the Intel 64 and IA-32 Architectures Software
//!   Developer's Manual, Vol. 4, Table 2-1 ("CPUID Signature Values of
//!   DisplayFamily_DisplayModel"), and Linux `arch/x86/include/asm/intel-family.h`
//!   (`INTEL_SAPPHIRERAPIDS_X` = 0x8F, `INTEL_EMERALDRAPIDS_X` = 0xCF, `INTEL_GRANITERAPIDS_X`
//!   = 0xAD...). Model 0x55 is shared by Skylake-SP, Cascade Lake and Cooper Lake: the flags
//!   tell them apart (`avx512_vnni` arrived with Cascade Lake, `avx512_bf16` with Cooper Lake).
//! - AMD: families 0x17 (Zen, Zen 2), 0x19 (Zen 3, Zen 4) and 0x1A (Zen 5) with the model
//!   ranges of Linux `arch/x86/kernel/cpu/amd.c` and AMD's Processor Programming Reference
//!   manuals (Naples 0x17/0x01, Rome 0x17/0x31, Milan 0x19/0x01, Genoa 0x19/0x11, Bergamo
//!   0x19/0xA0, Turin 0x1A/0x02).
//! - Arm: implementer 0x41 with the part numbers of Linux `arch/arm64/include/asm/cputype.h`
//!   (Cortex-A72 0xd08 = Graviton, Neoverse N1 0xd0c = Graviton2, V1 0xd40, V2 0xd4f).
//! - Flags alone, for an Intel model number not listed: the newest feature found gives the
//!   oldest generation it can be (`amx_tile`: Sapphire Rapids or newer; `avx512_vnni`: Cascade
//!   Lake or newer; `avx512f`: Skylake-SP or newer; `avx2`: Haswell or newer; `avx`: Sandy
//!   Bridge or newer).
//!
//! CCF lists nothing newer than Cascade Lake, EPYC 3rd Gen and Graviton2. A newer architecture
//! takes the row of the newest listed one of its line (Xeon Scalable -> Cascade Lake, EPYC ->
//! EPYC 3rd Gen, Neoverse -> Graviton2) and is marked a stand-in ([`Microarch::exact`] false),
//! which the model's basis says.

use crate::ccf::Architecture;

/// What `/proc/cpuinfo`'s first record says about the CPU, besides its name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSignature<'a> {
    /// `vendor_id` (`GenuineIntel`, `AuthenticAMD`); empty on Arm.
    pub vendor: &'a str,
    /// `cpu family` (x86).
    pub family: Option<u32>,
    /// `model` (x86 display model).
    pub model: Option<u32>,
    /// `flags`, space-separated (x86).
    pub flags: &'a str,
    /// `CPU implementer` (Arm; 0x41 is Arm Ltd).
    pub arm_implementer: Option<u32>,
    /// `CPU part` (Arm).
    pub arm_part: Option<u32>,
}

impl CpuSignature<'_> {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.split_whitespace().any(|f| f == flag)
    }
}

/// An identified micro-architecture and the CCF row used for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Microarch {
    /// What was identified, e.g. `Emerald Rapids` or `Cascade Lake or newer (avx512_vnni)`.
    pub name: &'static str,
    /// The CCF row that stands for it.
    pub ccf: Architecture,
    /// True when CCF lists this very architecture; false for a stand-in (a newer
    /// architecture, or one identified by its flags only).
    pub exact: bool,
}

const fn exact(name: &'static str, ccf: Architecture) -> Microarch {
    Microarch {
        name,
        ccf,
        exact: true,
    }
}

const fn stand_in(name: &'static str, ccf: Architecture) -> Microarch {
    Microarch {
        name,
        ccf,
        exact: false,
    }
}

/// The micro-architecture of the CPU with `sig`, if it can be told (see the module docs).
pub fn identify(sig: &CpuSignature) -> Option<Microarch> {
    use Architecture as A;
    if sig.arm_implementer == Some(0x41) {
        return match sig.arm_part? {
            0xd08 => Some(exact("Cortex-A72 (Graviton)", A::Graviton)),
            0xd0c => Some(exact("Neoverse N1 (Graviton2)", A::Graviton2)),
            0xd40 => Some(stand_in("Neoverse V1 (Graviton3)", A::Graviton2)),
            0xd4f => Some(stand_in("Neoverse V2 (Graviton4)", A::Graviton2)),
            _ => None,
        };
    }
    let (family, model) = (sig.family?, sig.model?);
    match sig.vendor {
        "GenuineIntel" if family == 6 => intel(sig, model),
        "AuthenticAMD" => amd(family, model),
        _ => None,
    }
}

fn intel(sig: &CpuSignature, model: u32) -> Option<Microarch> {
    use Architecture as A;
    Some(match model {
        0x2A | 0x2D => exact("Sandy Bridge", A::SandyBridge),
        0x3A | 0x3E => exact("Ivy Bridge", A::IvyBridge),
        0x3C | 0x3F | 0x45 | 0x46 => exact("Haswell", A::Haswell),
        0x3D | 0x47 | 0x4F | 0x56 => exact("Broadwell", A::Broadwell),
        0x55 if sig.has_flag("avx512_bf16") => stand_in("Cooper Lake", A::CascadeLake),
        0x55 if sig.has_flag("avx512_vnni") => exact("Cascade Lake", A::CascadeLake),
        0x4E | 0x5E | 0x55 => exact("Skylake", A::Skylake),
        0x8E | 0x9E => exact("Kaby Lake / Coffee Lake", A::CoffeeLake),
        0xA5 | 0xA6 => stand_in("Comet Lake", A::CoffeeLake),
        0x6A | 0x6C => stand_in("Ice Lake-SP", A::CascadeLake),
        0x8F => stand_in("Sapphire Rapids", A::CascadeLake),
        0xCF => stand_in("Emerald Rapids", A::CascadeLake),
        0xAD | 0xAE => stand_in("Granite Rapids", A::CascadeLake),
        _ => return intel_by_flags(sig),
    })
}

fn intel_by_flags(sig: &CpuSignature) -> Option<Microarch> {
    use Architecture as A;
    let by_flag = [
        (
            "amx_tile",
            stand_in("Sapphire Rapids or newer (amx_tile)", A::CascadeLake),
        ),
        (
            "avx512_vnni",
            stand_in("Cascade Lake or newer (avx512_vnni)", A::CascadeLake),
        ),
        (
            "avx512f",
            stand_in("Skylake-SP or newer (avx512f)", A::Skylake),
        ),
        ("avx2", stand_in("Haswell or newer (avx2)", A::Haswell)),
        (
            "avx",
            stand_in("Sandy Bridge or newer (avx)", A::SandyBridge),
        ),
    ];
    by_flag
        .into_iter()
        .find(|(flag, _)| sig.has_flag(flag))
        .map(|(_, m)| m)
}

fn amd(family: u32, model: u32) -> Option<Microarch> {
    use Architecture as A;
    Some(match (family, model) {
        (0x17, 0x00..=0x0F) => exact("Zen / Zen+ (EPYC 1st Gen, Naples)", A::Epyc1),
        (0x17, 0x30..=0x3F) => exact("Zen 2 (EPYC 2nd Gen, Rome)", A::Epyc2),
        (0x17, _) => stand_in("Zen 2", A::Epyc2),
        (0x19, 0x00..=0x0F) => exact("Zen 3 (EPYC 3rd Gen, Milan)", A::Epyc3),
        (0x19, 0x10..=0x1F) => stand_in("Zen 4 (EPYC 4th Gen, Genoa)", A::Epyc3),
        (0x19, 0xA0..=0xAF) => stand_in("Zen 4c (EPYC Bergamo)", A::Epyc3),
        (0x19, _) => stand_in("Zen 3 / Zen 4", A::Epyc3),
        (0x1A, _) => stand_in("Zen 5 (EPYC 5th Gen, Turin)", A::Epyc3),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intel_sig(model: u32, flags: &str) -> CpuSignature<'_> {
        CpuSignature {
            vendor: "GenuineIntel",
            family: Some(6),
            model: Some(model),
            flags,
            ..CpuSignature::default()
        }
    }

    #[test]
    fn this_projects_vm_is_emerald_rapids_on_the_cascade_lake_row() {
        // `Intel(R) Xeon(R) Processor`, family 6, model 207, amx flags.
        let m = identify(&intel_sig(207, "fpu avx2 avx512f avx512_vnni amx_tile")).unwrap();
        assert_eq!(m.name, "Emerald Rapids");
        assert_eq!(m.ccf, Architecture::CascadeLake);
        assert!(!m.exact);
    }

    #[test]
    fn model_0x55_is_told_apart_by_its_flags() {
        assert_eq!(
            identify(&intel_sig(0x55, "avx512f")).unwrap().name,
            "Skylake"
        );
        let clx = identify(&intel_sig(0x55, "avx512f avx512_vnni")).unwrap();
        assert_eq!((clx.name, clx.exact), ("Cascade Lake", true));
        let cpx = identify(&intel_sig(0x55, "avx512f avx512_vnni avx512_bf16")).unwrap();
        assert_eq!(
            (cpx.name, cpx.ccf),
            ("Cooper Lake", Architecture::CascadeLake)
        );
    }

    #[test]
    fn an_unlisted_intel_model_is_placed_by_its_newest_flag() {
        let m = identify(&intel_sig(0xFE, "sse avx avx2 avx512f")).unwrap();
        assert_eq!(m.name, "Skylake-SP or newer (avx512f)");
        assert_eq!((m.ccf, m.exact), (Architecture::Skylake, false));
        assert_eq!(identify(&intel_sig(0xFE, "sse sse2")), None);
        // A flag that merely starts with `avx` is not `avx`.
        assert_eq!(identify(&intel_sig(0xFE, "avx_vnni")), None);
    }

    #[test]
    fn amd_families_map_to_epyc_generations() {
        let sig = |family, model| CpuSignature {
            vendor: "AuthenticAMD",
            family: Some(family),
            model: Some(model),
            ..CpuSignature::default()
        };
        assert_eq!(identify(&sig(0x17, 0x01)).unwrap().ccf, Architecture::Epyc1);
        assert_eq!(identify(&sig(0x17, 0x31)).unwrap().ccf, Architecture::Epyc2);
        let milan = identify(&sig(0x19, 0x01)).unwrap();
        assert_eq!((milan.ccf, milan.exact), (Architecture::Epyc3, true));
        let genoa = identify(&sig(0x19, 0x11)).unwrap();
        assert_eq!((genoa.ccf, genoa.exact), (Architecture::Epyc3, false));
        assert_eq!(identify(&sig(0x15, 0x01)), None);
    }

    #[test]
    fn arm_parts_map_to_gravitons() {
        let sig = |part| CpuSignature {
            arm_implementer: Some(0x41),
            arm_part: Some(part),
            ..CpuSignature::default()
        };
        assert_eq!(identify(&sig(0xd0c)).unwrap().ccf, Architecture::Graviton2);
        assert!(!identify(&sig(0xd40)).unwrap().exact);
        assert_eq!(identify(&sig(0xd03)), None);
    }

    #[test]
    fn nothing_known_is_nothing_identified() {
        assert_eq!(identify(&CpuSignature::default()), None);
        let other = CpuSignature {
            vendor: "CentaurHauls",
            family: Some(6),
            model: Some(0x0F),
            ..CpuSignature::default()
        };
        assert_eq!(identify(&other), None);
    }
}
