//! A scripted sensor for tests of the meter and of everything above it.

use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use wattprint_core::{DomainDesc, DomainKind, Method};

type Script = Box<dyn FnMut(f64, &mut [RawReading]) -> Result<(), SensorError> + Send>;

/// A sensor whose readings are computed by a closure of the meter's time.
pub struct FakeSensor {
    info: SensorInfo,
    script: Script,
}

impl FakeSensor {
    pub fn new(
        info: SensorInfo,
        script: impl FnMut(f64, &mut [RawReading]) -> Result<(), SensorError> + Send + 'static,
    ) -> Self {
        FakeSensor {
            info,
            script: Box::new(script),
        }
    }

    /// One counter domain whose energy is `watts` x t, starting at `start_j` and wrapping at
    /// `range_j`.
    pub fn constant_counter(name: &str, watts: f64, start_j: f64, range_j: f64) -> Self {
        let info = SensorInfo {
            source: "fake".into(),
            domains: vec![domain(name, DomainKind::CpuPackage, Method::Counter, true)],
            cadence: ReadCadence::Boundaries {
                guard_s: crate::meter::guard_period_s(Some(range_j), Some(watts)),
            },
            setup: "none".into(),
        };
        FakeSensor::new(info, move |t, out| {
            out[0] = RawReading::EnergyCounter {
                joules: (start_j + watts * t) % range_j,
                range_j: Some(range_j),
            };
            Ok(())
        })
    }

    /// One power domain reading `watts(t)`, polled every `poll_s`.
    pub fn power(name: &str, poll_s: f64, watts: impl Fn(f64) -> f64 + Send + 'static) -> Self {
        let info = SensorInfo {
            source: "fake".into(),
            domains: vec![domain(name, DomainKind::Gpu, Method::Power, true)],
            cadence: ReadCadence::Poll {
                preferred_s: poll_s,
            },
            setup: "none".into(),
        };
        FakeSensor::new(info, move |t, out| {
            out[0] = RawReading::Power { watts: watts(t) };
            Ok(())
        })
    }
}

/// A domain description with the given fields and source `fake`.
pub fn domain(name: &str, kind: DomainKind, method: Method, counted: bool) -> DomainDesc {
    DomainDesc {
        name: name.into(),
        kind,
        source: "fake".into(),
        method,
        counted_in_total: counted,
        device: None,
    }
}

impl Sensor for FakeSensor {
    fn info(&self) -> &SensorInfo {
        &self.info
    }
    fn read(&mut self, t_s: f64, out: &mut [RawReading]) -> Result<(), SensorError> {
        (self.script)(t_s, out)
    }
}

/// A scripted per-process GPU utilisation source: each [`GpuProcessSource::sample`] takes
/// the next batch pushed (an empty one when none is left). Clones share the queue, so a test
/// keeps one to push while the code under test owns the other.
#[derive(Clone, Default)]
pub struct FakeGpuProcesses {
    batches: std::sync::Arc<
        std::sync::Mutex<std::collections::VecDeque<Vec<crate::nvml::GpuProcessSample>>>,
    >,
}

impl FakeGpuProcesses {
    /// Queue the samples the next call returns: `(GPU index, PID, SM percent)`.
    pub fn push(&self, samples: &[(u32, u32, u32)]) {
        let batch = samples
            .iter()
            .map(
                |&(gpu_index, pid, sm_util_pct)| crate::nvml::GpuProcessSample {
                    gpu_index,
                    pid,
                    sm_util_pct,
                },
            )
            .collect();
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(batch);
    }
}

impl crate::gpu::GpuProcessSource for FakeGpuProcesses {
    fn sample(&mut self) -> Vec<crate::nvml::GpuProcessSample> {
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or_default()
    }
}
