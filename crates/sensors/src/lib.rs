//! Sensors at the edge, behind one small trait, and the [`Meter`] that reads them.
//!
//! A [`Sensor`] declares its domains and how it must be read; the meter turns raw readings
//! (energy counters or instantaneous power) into cumulative joules per domain on a monotonic
//! timeline, and windows subtract snapshots of that.
//!
//! Sensors here: [`powercap::Powercap`] (RAPL through sysfs), [`perf_rapl::PerfRapl`] (RAPL
//! through perf_event's `power` PMU), [`model::UtilisationModel`] (the utilisation power model).

pub mod agent_socket;
#[cfg(feature = "amd")]
pub mod amd;
#[cfg(not(feature = "amd"))]
#[path = "amd_off.rs"]
pub mod amd;
pub mod cgroups;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(any(test, feature = "test-util"))]
pub mod fake_tree;
pub mod gpu;
pub mod hwmon;
pub mod meter;
pub mod model;
#[cfg(feature = "nvml")]
pub mod nvml;
#[cfg(not(feature = "nvml"))]
#[path = "nvml_off.rs"]
pub mod nvml;
pub mod perf_rapl;
pub mod powercap;
pub mod pread;
pub mod procfs;
pub mod sensor;

pub use meter::{Meter, MeterOptions, MeterSnapshot};
pub use sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
