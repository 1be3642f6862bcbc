//! `wattprint`: the command line. Parses flags and wires the libraries; holds no domain logic.

mod checkpoint;
mod child;
mod cmd;
mod common;
mod exit;
mod forecast;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Measure, attribute and score the energy and carbon of AI workloads.
#[derive(Parser, Debug)]
#[command(
    name = "wattprint",
    version,
    about = "Measure, attribute and score the energy and carbon of AI workloads."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between subcommands' options costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run a command, measure its energy and carbon, print a summary, store the run.
    Run(cmd::run::Args),
    /// Benchmark commands' energy (hyperfine's habits): repeated runs, intervals, sweeps, the
    /// energy / time front and the lowest-energy configuration.
    Bench(cmd::bench::Args),
    /// What can be measured on this machine, and why an absent sensor is absent.
    Sensors(cmd::sensors::Args),
    /// What-if and paper recomputation without measuring.
    Estimate(cmd::estimate::Args),
    /// The carbon intensity wattprint would use for a zone, with its provenance.
    Intensity(cmd::intensity::Args),
    /// Score a trace or another tool's output (nvidia-smi CSV, CodeCarbon, wattprint CSV).
    Import(cmd::import::Args),
    /// List stored runs.
    Runs(cmd::runs::Args),
    /// Report on stored runs (terminal, Markdown, HTML, JSON, CSV, ESRS E1).
    Report(cmd::report::Args),
    /// Compare two runs (or labelled groups), optionally failing over a threshold.
    Compare(cmd::compare::Args),
    /// Star ratings of models per task (AI Energy Score compatible) and A-G grades.
    Rate(cmd::rate::Args),
    /// The metric plan for your goals and constraints.
    Advise(cmd::advise::Args),
    /// Long-running meter with an HTTP API, Prometheus metrics and a dashboard.
    Agent(cmd::agent::Args),
}

/// `wattprint run sleep 1` (no `--`): clap reports an unexpected argument; say what to do.
fn is_run_without_separator(e: &clap::Error) -> bool {
    e.kind() == clap::error::ErrorKind::UnknownArgument
        && std::env::args().nth(1).as_deref() == Some("run")
        && !std::env::args().any(|a| a == "--")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            if is_run_without_separator(&e) {
                eprintln!(
                    "hint: put the command to measure after `--`: \
                     wattprint run [OPTIONS] -- CMD [ARGS]"
                );
            }
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Bench(a) => cmd::bench::main(a),
        Command::Sensors(a) => cmd::sensors::main(a),
        Command::Estimate(a) => cmd::estimate::main(a),
        Command::Intensity(a) => cmd::intensity::main(a),
        Command::Import(a) => cmd::import::main(a),
        Command::Runs(a) => cmd::runs::main(a),
        Command::Report(a) => cmd::report::main(a),
        Command::Compare(a) => cmd::compare::main(a),
        Command::Rate(a) => cmd::rate::main(a),
        Command::Advise(a) => cmd::advise::main(a),
        Command::Agent(a) => cmd::agent::main(a),
    };
    exit::finish(result)
}
