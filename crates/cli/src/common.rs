//! Options shared by several subcommands (SPEC: common options).

use clap::Args;
use std::path::PathBuf;

/// Output: `--json` on stdout, `-o FILE` (format from the extension, or `--format`).
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print the machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the result to FILE (format from its extension).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}
