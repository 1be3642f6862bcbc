//! The pure core of wattprint.
//!
//! Everything here is arithmetic and data: no file, clock, network or hardware access.
//! Times are seconds on a monotonic timeline chosen by the caller (`t_s`), energies are
//! joules, powers watts, carbon grams CO2e; each name carries its unit.

pub mod advise;
pub mod attribution;
pub mod bench;
pub mod bounds;
pub mod carbon;
pub mod counter;
pub mod domain;
pub mod duration;
pub mod estimate;
pub mod forecast;
pub mod gpu_select;
pub mod gpu_share;
pub mod integrate;
mod open_enum;
pub mod overhead_score;
pub mod portfolio;
pub mod powermodel;
pub mod rating;
pub mod report;
pub mod requests;
pub mod stats;
pub mod text;
pub mod textpos;
pub mod timeline;
pub mod trust;
pub mod units;
pub mod wallclock;
pub mod window;
pub mod work;
pub mod workloads;

pub use domain::{DomainDesc, DomainKind, Method, SensorSource};
pub use units::{Joules, Watts};
