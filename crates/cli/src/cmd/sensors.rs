//! `wattprint sensors [--json]`: what can be measured here, and why an absent sensor is absent.

use std::io::Write;
use wattprint_engine::inventory::{inventory, render};

/// How long `wattprint sensors` watches each CPU counter before choosing it, s: 2 x
/// `trust::STUCK_MIN_WINDOW_S`, so a counter that always draws power must have advanced.
const DISCOVERY_CHECK_S: f64 = 2.0 * wattprint_core::trust::STUCK_MIN_WINDOW_S;

/// Options of `wattprint sensors`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the inventory as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sensors: crate::common::SensorArgs,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let mut config = args.sensors.config()?;
    // Read each counter twice this far apart: a dead one is passed over, with the reason.
    config.discovery_check_s = Some(DISCOVERY_CHECK_S);
    let inv = inventory(&config);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&inv)?)?;
    } else {
        write!(out, "{}", render(&inv))?;
    }
    Ok(0)
}
