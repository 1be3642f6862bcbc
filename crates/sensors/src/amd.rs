//! AMD GPUs through amdsmi (ROCm), loaded at run time with `libloading` and a small binding
//! for the few calls used here; hwmon ([`crate::hwmon`]) is the fallback.
//!
//! The library is the path the caller gives (the engine takes it from `WATTPRINT_AMDSMI_LIB`),
//! else `libamd_smi.so`, else `/opt/rocm/lib/libamd_smi.so`; loaded and initialised
//! (`amdsmi_init(AMDSMI_INIT_AMD_GPUS)`) once per process. Energy per GPU:
//! `amdsmi_get_energy_count` gives an accumulator and its resolution; accumulator x
//! resolution is µJ, read at window boundaries (method `counter`). The name is the ASIC
//! info's market name (e.g. `AMD Instinct MI300X`).

use crate::gpu::{gpu_domain, AbsentSensor, GpuDevice, GpuDiscovery};
use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use libloading::Library;
use std::ffi::{c_char, c_void, OsString};
use std::path::Path;
use std::sync::OnceLock;
use wattprint_core::{Method, SensorSource};

pub const SOURCE: SensorSource = SensorSource::Amdsmi;
/// Environment variable naming the amdsmi library (test seam).
pub const AMDSMI_LIB_ENV: &str = "WATTPRINT_AMDSMI_LIB";
/// Libraries tried when none is named.
pub const AMDSMI_DEFAULT_LIBS: &[&str] = &["libamd_smi.so", "/opt/rocm/lib/libamd_smi.so"];
/// `AMDSMI_INIT_AMD_GPUS`.
const INIT_AMD_GPUS: u64 = 1 << 1;
/// `AMDSMI_MAX_STRING_LENGTH`: `market_name` is the first field of `amdsmi_asic_info_t`.
const MAX_STRING_LENGTH: usize = 256;
/// Room for `amdsmi_asic_info_t` (about 1 KiB in ROCm 6) with a wide margin.
const ASIC_INFO_BYTES: usize = 8192;

type Handle = *mut c_void;
type InitFn = unsafe extern "C" fn(u64) -> u32;
type HandlesFn = unsafe extern "C" fn(*mut u32, *mut Handle) -> u32;
type ProcHandlesFn = unsafe extern "C" fn(Handle, *mut u32, *mut Handle) -> u32;
type EnergyFn = unsafe extern "C" fn(Handle, *mut u64, *mut f32, *mut u64) -> u32;
type AsicFn = unsafe extern "C" fn(Handle, *mut u8) -> u32;
type UuidFn = unsafe extern "C" fn(Handle, *mut u32, *mut c_char) -> u32;

/// The bound library. Its functions stay valid as long as `_lib` lives (for the process).
struct AmdSmi {
    _lib: Library,
    socket_handles: HandlesFn,
    processor_handles: ProcHandlesFn,
    energy: EnergyFn,
    asic_info: Option<AsicFn>,
    uuid: Option<UuidFn>,
}

/// A processor handle. amdsmi handles are opaque ids valid for the life of the process, and
/// amdsmi's calls are thread-safe, so a handle may move to the meter's thread.
#[derive(Clone, Copy)]
struct Proc(Handle);
// SAFETY: see the type's docs: the pointer is an opaque id, never dereferenced here.
unsafe impl Send for Proc {}

struct Loaded {
    smi: Result<AmdSmi, AbsentSensor>,
}

static AMDSMI: OnceLock<Loaded> = OnceLock::new();

fn absent(reason: String, fix: Option<&str>) -> AbsentSensor {
    AbsentSensor {
        source: SOURCE,
        reason,
        fix: fix.map(str::to_string),
    }
}

/// # Safety
/// `lib` must be amdsmi (or export its symbols with its ABI).
unsafe fn sym<T: Copy>(lib: &Library, name: &[u8]) -> Option<T> {
    // SAFETY: the caller vouches for the ABI of the named symbol.
    unsafe { lib.get::<T>(name).ok().map(|s| *s) }
}

fn bind(path: &OsString) -> Result<AmdSmi, AbsentSensor> {
    let shown = path.to_string_lossy();
    // SAFETY: loading a shared library runs its initialisers; amdsmi's are benign. A library
    // that is not amdsmi is rejected below by its missing symbols.
    let lib = unsafe { Library::new(path) }
        .map_err(|e| absent(format!("{shown} could not be loaded: {e}"), None))?;
    // SAFETY: the signatures are amdsmi's (amdsmi.h, ROCm 6).
    let (init, socket_handles, processor_handles, energy, asic_info, uuid) = unsafe {
        (
            sym::<InitFn>(&lib, b"amdsmi_init\0"),
            sym::<HandlesFn>(&lib, b"amdsmi_get_socket_handles\0"),
            sym::<ProcHandlesFn>(&lib, b"amdsmi_get_processor_handles\0"),
            sym::<EnergyFn>(&lib, b"amdsmi_get_energy_count\0"),
            sym::<AsicFn>(&lib, b"amdsmi_get_gpu_asic_info\0"),
            sym::<UuidFn>(&lib, b"amdsmi_get_gpu_device_uuid\0"),
        )
    };
    let (Some(init), Some(socket_handles), Some(processor_handles), Some(energy)) =
        (init, socket_handles, processor_handles, energy)
    else {
        return Err(absent(
            format!("{shown} is not amdsmi: it lacks amdsmi_init/amdsmi_get_energy_count"),
            Some("point WATTPRINT_AMDSMI_LIB at ROCm's libamd_smi.so"),
        ));
    };
    // SAFETY: amdsmi_init takes a flags word.
    let rc = unsafe { init(INIT_AMD_GPUS) };
    if rc != 0 {
        return Err(absent(
            format!("{shown} loaded, but amdsmi_init failed (status {rc})"),
            Some("check that the amdgpu driver is loaded (amd-smi list must work)"),
        ));
    }
    Ok(AmdSmi {
        _lib: lib,
        socket_handles,
        processor_handles,
        energy,
        asic_info,
        uuid,
    })
}

fn load(lib: Option<&Path>) -> &'static Loaded {
    AMDSMI.get_or_init(|| {
        let candidates: Vec<OsString> = match lib {
            Some(p) if !p.as_os_str().is_empty() => vec![p.as_os_str().to_owned()],
            _ => AMDSMI_DEFAULT_LIBS.iter().map(OsString::from).collect(),
        };
        let mut last = absent("no amdsmi library".into(), None);
        for c in &candidates {
            match bind(c) {
                Ok(smi) => return Loaded { smi: Ok(smi) },
                Err(e) => last = e,
            }
        }
        if lib.is_none() {
            last = absent(
                "no amdsmi library (libamd_smi.so not found)".into(),
                Some("install ROCm's amdsmi, or set WATTPRINT_AMDSMI_LIB; hwmon is tried instead"),
            );
        }
        Loaded { smi: Err(last) }
    })
}

fn handles(smi: &AmdSmi) -> Result<Vec<Proc>, String> {
    let mut n: u32 = 0;
    // SAFETY: amdsmi's count-then-fill protocol with a null array.
    let rc = unsafe { (smi.socket_handles)(&mut n, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(format!("amdsmi_get_socket_handles failed (status {rc})"));
    }
    let mut sockets: Vec<Handle> = vec![std::ptr::null_mut(); n as usize];
    // SAFETY: `sockets` has room for `n` handles.
    let rc = unsafe { (smi.socket_handles)(&mut n, sockets.as_mut_ptr()) };
    if rc != 0 {
        return Err(format!("amdsmi_get_socket_handles failed (status {rc})"));
    }
    sockets.truncate(n as usize);
    let mut out = Vec::new();
    for s in sockets {
        let mut m: u32 = 0;
        // SAFETY: as above, per socket.
        let rc = unsafe { (smi.processor_handles)(s, &mut m, std::ptr::null_mut()) };
        if rc != 0 {
            continue;
        }
        let mut procs: Vec<Handle> = vec![std::ptr::null_mut(); m as usize];
        // SAFETY: `procs` has room for `m` handles.
        let rc = unsafe { (smi.processor_handles)(s, &mut m, procs.as_mut_ptr()) };
        if rc != 0 {
            continue;
        }
        procs.truncate(m as usize);
        out.extend(procs.into_iter().map(Proc));
    }
    Ok(out)
}

fn energy_j(smi: &AmdSmi, p: Proc) -> Result<f64, String> {
    let (mut acc, mut res, mut ts) = (0u64, 0f32, 0u64);
    // SAFETY: three out-pointers to locals.
    let rc = unsafe { (smi.energy)(p.0, &mut acc, &mut res, &mut ts) };
    if rc != 0 {
        return Err(format!("amdsmi_get_energy_count failed (status {rc})"));
    }
    if !(res.is_finite() && res > 0.0) {
        return Err(format!("amdsmi energy resolution {res} is not usable"));
    }
    Ok(acc as f64 * f64::from(res) * 1e-6)
}

fn c_string(buf: &[u8]) -> Option<String> {
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let s = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn name_of(smi: &AmdSmi, p: Proc) -> Option<String> {
    let f = smi.asic_info?;
    let mut buf = vec![0u8; ASIC_INFO_BYTES];
    // SAFETY: `buf` is larger than amdsmi_asic_info_t; market_name is its first field.
    let rc = unsafe { f(p.0, buf.as_mut_ptr()) };
    (rc == 0).then(|| c_string(&buf[..MAX_STRING_LENGTH]))?
}

fn uuid_of(smi: &AmdSmi, p: Proc) -> Option<String> {
    let f = smi.uuid?;
    let mut buf = vec![0u8; 64];
    let mut len = buf.len() as u32;
    // SAFETY: `len` is the buffer's size, as the API requires.
    let rc = unsafe { f(p.0, &mut len, buf.as_mut_ptr().cast()) };
    (rc == 0).then(|| c_string(&buf))?
}

/// Find the AMD GPUs through amdsmi (loading it once per process from `lib` or the default
/// locations), numbering domains `amdgpu-N` from 0. Nothing found: absent entries only.
pub fn discover_amdsmi(lib: Option<&Path>) -> GpuDiscovery {
    let mut out = GpuDiscovery::default();
    let smi = match &load(lib).smi {
        Ok(s) => s,
        Err(a) => {
            out.absent.push(a.clone());
            return out;
        }
    };
    let procs = match handles(smi) {
        Ok(p) => p,
        Err(e) => {
            out.absent.push(absent(e, Some("amd-smi list must work")));
            return out;
        }
    };
    let mut kept = Vec::new();
    for p in procs {
        let index = kept.len() as u32;
        if let Err(e) = energy_j(smi, p) {
            out.absent.push(absent(
                format!("amdgpu-{index}: no energy counter ({e})"),
                Some("hwmon power is tried instead"),
            ));
            continue;
        }
        let device = GpuDevice {
            domain: format!("amdgpu-{index}"),
            index,
            name: name_of(smi, p).unwrap_or_else(|| format!("AMD GPU {index}")),
            uuid: uuid_of(smi, p),
            power_limit_w: None,
            mig_enabled: false,
            method: Method::Counter,
            power_source: None,
            source: SOURCE,
            pci_bus_id: None,
            mig_uuids: Vec::new(),
        };
        kept.push((p, device));
    }
    if kept.is_empty() {
        out.absent.push(absent(
            "amdsmi loaded but reports no GPU with an energy counter".into(),
            None,
        ));
        return out;
    }
    out.devices = kept.iter().map(|(_, d)| d.clone()).collect();
    out.sensors.push(Box::new(AmdSmiSensor {
        info: SensorInfo {
            source: SOURCE,
            domains: kept.iter().map(|(_, d)| gpu_domain(d)).collect(),
            cadence: ReadCadence::Boundaries {
                guard_s: Some(crate::nvml::COUNTER_GUARD_S),
            },
            setup: "none".into(),
        },
        smi,
        last_error: vec![None; kept.len()],
        procs: kept.into_iter().map(|(p, _)| p).collect(),
    }));
    out
}

/// AMD GPUs: amdsmi when it finds GPUs with energy counters, else hwmon under `sysfs_root`.
pub fn discover(lib: Option<&Path>, sysfs_root: &Path) -> GpuDiscovery {
    let mut d = discover_amdsmi(lib);
    if d.devices.is_empty() {
        let h = crate::hwmon::discover(sysfs_root, 0);
        d.extend(h);
    } else {
        d.absent.push(AbsentSensor {
            source: crate::hwmon::SOURCE,
            reason: "not used: amdsmi reads the same GPUs' energy counters".into(),
            fix: None,
        });
    }
    d
}

/// amdsmi energy counters.
pub struct AmdSmiSensor {
    info: SensorInfo,
    smi: &'static AmdSmi,
    procs: Vec<Proc>,
    last_error: Vec<Option<String>>,
}

impl Sensor for AmdSmiSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }

    fn read(&mut self, _t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        for (k, p) in self.procs.iter().enumerate() {
            let r = energy_j(self.smi, *p);
            out[k] = match &r {
                Ok(joules) => RawReading::EnergyCounter {
                    joules: *joules,
                    range_j: None,
                },
                Err(_) => RawReading::Missing,
            };
            self.last_error[k] = r.err();
        }
        Ok(())
    }

    fn missing_reason(&self, domain: usize) -> Option<String> {
        self.last_error.get(domain).cloned().flatten()
    }

    fn retain_domains(&mut self, keep: &dyn Fn(&wattprint_core::DomainDesc) -> bool) -> bool {
        crate::gpu::retain_parallel(&mut self.info, &mut self.procs, &mut self.last_error, keep);
        true
    }
}
