//! Carbon for wattprint reports (edge crate): zones and embedded factors with provenance,
//! `--intensity-file` series, opt-in live providers, PUE, embodied carbon and SCI.
//!
//! [`apply`] fills a [`RunReport`]'s `carbon` section, `energy.pue`, `energy.facility_j` and the
//! carbon metrics from its energy and work; the arithmetic is `wattprint_core::carbon`.

mod apply;
mod embodied;
pub mod file;
mod intensity;
pub mod live;
mod options;
mod summary;
#[cfg(test)]
mod tests;
pub mod zone;

use std::path::PathBuf;
use wattprint_core::carbon::{self as math, CarbonMathError, SECONDS_PER_YEAR};
use wattprint_core::report::{CarbonBasis, RunReport};
use wattprint_core::units::{Grams, GRAMS_PER_KG, JOULES_PER_KWH};
use wattprint_core::wallclock;
use wattprint_data::cloud;
use wattprint_data::grid::{self, IntensityFactor};

pub use apply::{apply, apply_resolved};
pub use embodied::*;
pub use intensity::{resolve, ResolvedCarbon, RunTime};
use intensity::{SeriesInput, Used};
pub use live::{LiveConfig, LiveProvider, LiveSpec};
pub use options::*;
pub use summary::*;
pub use zone::{UnknownZone, Zone};
