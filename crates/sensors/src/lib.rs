//! Sensors at the edge, behind one small trait, and the [`Meter`] that reads them.
//!
//! A [`Sensor`] declares its domains and how it must be read; the meter turns raw readings
//! (energy counters or instantaneous power) into cumulative joules per domain on a monotonic
//! timeline, and windows subtract snapshots of that.

pub mod agent_socket;
pub mod fake;
pub mod meter;
pub mod sensor;

pub use meter::{Meter, MeterOptions, MeterSnapshot};
pub use sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
