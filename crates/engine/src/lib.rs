//! wattprint's engine: the layer every front end (the `wattprint` CLI, the agent, the Python
//! bindings) builds on.
//!
//! 1. [`SensorConfig::from_env`] reads the environment seams (`WATTPRINT_SYSFS_ROOT`,
//!    `WATTPRINT_PROCFS_ROOT`, `WATTPRINT_NVML_LIB`, `WATTPRINT_AMDSMI_LIB`,
//!    `WATTPRINT_PERF_COUNTERS_DIR`) and the user's sensor choice (`WATTPRINT_SENSORS`).
//! 2. [`discover`] turns a config into the sensors usable here, plus every absent sensor with
//!    its reason and fix ([`Discovery`]).
//! 3. A [`Session`] wraps the [`wattprint_sensors::Meter`]: `begin(name)` / `end(id)` give
//!    named, nestable, overlapping windows; [`Session::report`] assembles the
//!    `wattprint.run/v1` report for a window, step by step (see [`report`]).
//!
//! ```no_run
//! use wattprint_engine::{ReportContext, SensorConfig, Session};
//! let config = SensorConfig::from_env().expect("WATTPRINT_SENSORS names known sensors");
//! let mut session = Session::start(config);
//! let w = session.begin("job");
//! // ... the work ...
//! let energy = session.end(w).expect("window was open");
//! let report = session.report(&energy, &ReportContext::default());
//! println!("{} J", report.energy.total_j);
//! ```

pub mod cgroup;
pub mod check;
pub mod config;
pub mod discover;
pub mod estimate;
pub mod gpu_recorder;
pub mod inventory;
pub mod procinfo;
pub mod report;
pub mod session;
pub mod summary;
pub mod workfile;

pub use config::SensorConfig;
pub use discover::{discover, AbsentSensor, Discovery};
pub use report::ReportContext;
pub use session::Session;
