//! AMD GPUs when wattprint is built without the `amd` feature: amdsmi is an absent sensor that
//! says so, and hwmon (sysfs only, no library) is used as without amdsmi.

use crate::gpu::{AbsentSensor, GpuDiscovery};
use std::path::Path;
use wattprint_core::SensorSource;

/// Source label of amdsmi's domains.
pub const SOURCE: SensorSource = SensorSource::Amdsmi;
/// Environment variable naming the amdsmi library to load (test seam).
pub const AMDSMI_LIB_ENV: &str = "WATTPRINT_AMDSMI_LIB";

/// AMD GPUs: hwmon under `sysfs_root`; amdsmi absent in this build.
pub fn discover(_lib: Option<&Path>, sysfs_root: &Path) -> GpuDiscovery {
    let mut d = GpuDiscovery {
        absent: vec![AbsentSensor {
            source: SOURCE,
            reason: "this wattprint was built without the `amd` feature".into(),
            fix: Some(
                "build with the default features (`cargo install --path crates/cli --locked`)"
                    .into(),
            ),
        }],
        ..GpuDiscovery::default()
    };
    d.extend(crate::hwmon::discover(sysfs_root, 0));
    d
}
