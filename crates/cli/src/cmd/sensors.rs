//! `wattprint sensors [--json]`: what can be measured here, and why an absent sensor is absent.

use std::io::Write;
use wattprint_engine::inventory::{inventory, render};
use wattprint_engine::SensorConfig;

/// Options of `wattprint sensors`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the inventory as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let inv = inventory(&SensorConfig::from_env());
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&inv)?)?;
    } else {
        write!(out, "{}", render(&inv))?;
    }
    Ok(0)
}
