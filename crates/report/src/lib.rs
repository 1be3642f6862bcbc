//! Reports over run reports: renderers (terminal, Markdown, CSV, JSON, HTML with SVG charts),
//! the ESRS E1 statement, comparisons with a CI gate, and importers of other tools' output.
//!
//! Pure: strings and `RunReport`s in, strings and values out. Reading files, the database and
//! the clock belongs to the CLI.

pub mod bench;
pub mod compare;
pub mod esrs;
pub mod html;
pub mod import;
pub mod portfolio;
pub mod ratefile;
pub mod render;

/// A parse error that names the input line (1-based) and field, and says what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}, field `{field}`: {message}")]
pub struct ParseError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, field: &str, message: String) -> Self {
        ParseError {
            line,
            field: field.to_string(),
            message,
        }
    }

    /// The same error `by` lines further down (for inputs read after a preamble).
    pub fn shifted(mut self, by: usize) -> Self {
        self.line += by;
        self
    }
}
