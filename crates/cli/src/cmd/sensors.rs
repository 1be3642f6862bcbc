//! `wattprint sensors [--json]`: what can be measured here, and why an absent sensor is absent.

use std::io::Write;
use wattprint_engine::inventory::{inventory, render};

use wattprint_engine::discover::DISCOVERY_CHECK_S;

/// Options of `wattprint sensors`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the inventory as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Active self-test (a few seconds): idle, then every CPU loaded; per domain idle and
    /// loaded power, whether it responds to load, and a verdict (ok, stuck, implausible,
    /// unreadable). The first command to run on a new machine.
    #[arg(long)]
    pub check: bool,
    /// Length of the self-test's idle phase (e.g. `2s`).
    #[arg(long, value_name = "D", value_parser = wattprint_core::duration::parse_interval_s, requires = "check")]
    pub check_idle: Option<f64>,
    /// Length of the self-test's load phase (e.g. `3s`).
    #[arg(long, value_name = "D", value_parser = wattprint_core::duration::parse_interval_s, requires = "check")]
    pub check_load: Option<f64>,
    #[command(flatten)]
    pub sensors: crate::common::SensorArgs,
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let mut config = args.sensors.config()?;
    if args.check {
        use wattprint_engine::check;
        let c = check::check(
            &config,
            &mut check::RealPhases::default(),
            args.check_idle.unwrap_or(check::DEFAULT_IDLE_S),
            args.check_load.unwrap_or(check::DEFAULT_LOAD_S),
        );
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&c)?)?;
        } else {
            write!(out, "{}", crate::common::escape_text(&check::render(&c)))?;
        }
        return Ok(0);
    }
    // Read each counter twice this far apart: a dead one is passed over, with the reason.
    config.discovery_check_s = Some(DISCOVERY_CHECK_S);
    let inv = inventory(&config);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&inv)?)?;
    } else {
        // Sensor and device names come from sysfs and drivers: escaped like any input.
        write!(out, "{}", crate::common::escape_text(&render(&inv)))?;
    }
    Ok(0)
}
