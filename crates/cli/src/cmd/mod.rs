//! One module per subcommand: each has `Args` (clap) and `main(Args) -> Result<exit code>`.

pub mod advise;
pub mod agent;
pub mod bench;
pub mod compare;
pub mod estimate;
pub mod import;
pub mod import_focus;
pub mod intensity;
pub mod rate;
pub mod report;
pub mod run;
pub mod runs;
pub mod sensors;
