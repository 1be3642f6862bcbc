//! Exit statuses (SPEC): 0 success, 2 bad usage or input, 1 other failures; `run` returns the
//! child's status.

use std::process::ExitCode;

pub const USAGE: u8 = 2;
pub const FAILURE: u8 = 1;

/// An error caused by the user's input: exits 2. The message names the input, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Turn a command's result into the process exit status, printing the error chain on stderr.
pub fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = if e.downcast_ref::<BadInput>().is_some() {
                USAGE
            } else {
                FAILURE
            };
            // Messages quote input (paths, names, file contents): escape control characters
            // line by line, so input cannot rewrite the terminal.
            let safe = |m: String| -> String {
                m.lines()
                    .map(|l| crate::common::escape(l).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            eprintln!("wattprint: error: {}", safe(e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", safe(cause.to_string()));
            }
            ExitCode::from(code)
        }
    }
}
