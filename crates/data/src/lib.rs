//! Embedded datasets, each value with its source, vintage and licence (see `data/NOTICE.md`).
//!
//! Tables are parsed lazily on first lookup, never at start-up.

pub mod ccf;
pub mod cloud;
pub mod cpu;
pub mod gpu;
pub mod grid;
pub mod microarch;
mod tables;
