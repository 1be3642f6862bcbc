//! `--intensity-file`: a CSV of `timestamp,intensity_g_per_kwh` rows, hourly or finer.
//!
//! The timestamp is RFC 3339 (`2025-01-15T10:00:00Z`; read by `wattprint_core::wallclock`,
//! without an offset as UTC) or Unix seconds. Read row by row, never whole (see [`read`]):
//! fields split at commas, double-quoted fields allowed on one line; an optional header
//! row, blank lines and `#` comment lines are skipped. Each row holds until the next one;
//! the last holds for the file's median step. Errors name the line and field.

use std::path::Path;
use wattprint_core::carbon::{IntensitySeries, MAX_INTENSITY_G_PER_KWH};
use wattprint_core::textpos::{BoundedLines, LineError};
use wattprint_core::{stats, wallclock};

/// A parsed intensity file: points in Unix seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct IntensityFile {
    /// `(unix_s, g_per_kwh)`, strictly increasing in time.
    pub points: Vec<(f64, f64)>,
}

/// Why an intensity file was refused; always names the file, and the line and field when any.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: field `{field}`: {msg}")]
    Field {
        path: String,
        line: usize,
        field: &'static str,
        msg: String,
    },
    #[error("{path}: no data rows; expected `timestamp,intensity_g_per_kwh` lines")]
    Empty { path: String },
    #[error("{path}: {source}: give a CSV of `timestamp,g_per_kwh` rows")]
    Lines { path: String, source: LineError },
}

fn parse_time(s: &str) -> Option<f64> {
    if let Some(t) = wallclock::parse_rfc3339_s(s) {
        return Some(t);
    }
    // Unix seconds, within the years -9999..=9999 that RFC 3339 can write.
    s.parse::<f64>()
        .ok()
        .filter(|&v| wallclock::year_utc(v).is_some())
}

/// Longest row, bytes: a row is a timestamp and a number (about 40 bytes); anything longer
/// (a binary file, `/dev/zero`) is refused after reading this much, never read whole.
pub const MAX_LINE_BYTES: usize = 4096;

/// Largest intensity file read, bytes: ten years of hourly rows are about 3 MB, a year of
/// one row a minute about 17 MB. The file is read row by row (memory holds the parsed
/// points, 16 bytes a row, never the text), so this bounds the points kept.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// The fields of one CSV row: split at commas outside double quotes, each trimmed and
/// unquoted (`""` inside quotes is a quote). A quoted field cannot span lines.
fn fields_of(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

/// Parses the text of an intensity file (`path` is used in messages only).
pub fn parse(path: &str, text: &str) -> Result<IntensityFile, FileError> {
    parse_lines(
        path,
        BoundedLines::new(text.as_bytes(), MAX_LINE_BYTES, MAX_FILE_BYTES),
    )
}

/// Parses an intensity file row by row.
fn parse_lines(
    path: &str,
    lines: impl Iterator<Item = Result<(usize, String), LineError>>,
) -> Result<IntensityFile, FileError> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut first_row = true;
    for l in lines {
        let (line, text) = l.map_err(|e| match e {
            LineError::Io(source) => FileError::Io {
                path: path.to_string(),
                source,
            },
            e => FileError::Lines {
                path: path.to_string(),
                source: e,
            },
        })?;
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = fields_of(&text);
        if fields.iter().all(|f| f.is_empty()) || fields[0].starts_with('#') {
            continue;
        }
        let err = |field: &'static str, msg: String| FileError::Field {
            path: path.to_string(),
            line,
            field,
            msg,
        };
        let t = match parse_time(&fields[0]) {
            Some(t) => t,
            None if first_row => {
                first_row = false;
                continue; // header
            }
            None => {
                return Err(err(
                    "timestamp",
                    format!(
                        "{:?} is neither an RFC 3339 time (2025-01-15T10:00:00Z) nor Unix seconds",
                        fields[0]
                    ),
                ))
            }
        };
        first_row = false;
        let Some(v) = fields.get(1) else {
            return Err(err(
                "intensity_g_per_kwh",
                "missing (expected `timestamp,g_per_kwh`)".into(),
            ));
        };
        let g: f64 = v
            .parse()
            .map_err(|_| err("intensity_g_per_kwh", format!("{v:?} is not a number")))?;
        if !g.is_finite() || !(0.0..=MAX_INTENSITY_G_PER_KWH).contains(&g) {
            return Err(err(
                "intensity_g_per_kwh",
                format!("{v} must be a number from 0 to {MAX_INTENSITY_G_PER_KWH} gCO2e/kWh"),
            ));
        }
        if let Some(&(prev, _)) = points.last() {
            if t <= prev {
                return Err(err(
                    "timestamp",
                    format!(
                        "{} is not after the previous row; rows must be in increasing time order",
                        fields[0]
                    ),
                ));
            }
        }
        points.push((t, g));
    }
    if points.is_empty() {
        return Err(FileError::Empty {
            path: path.to_string(),
        });
    }
    Ok(IntensityFile { points })
}

/// Reads and parses an intensity file, streamed row by row (at most [`MAX_FILE_BYTES`],
/// rows of at most [`MAX_LINE_BYTES`]).
pub fn read(path: &Path) -> Result<IntensityFile, FileError> {
    let p = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| FileError::Io {
        path: p.clone(),
        source,
    })?;
    parse_lines(
        &p,
        BoundedLines::new(std::io::BufReader::new(f), MAX_LINE_BYTES, MAX_FILE_BYTES),
    )
}

impl IntensityFile {
    /// Median step between rows ([`stats::median`]), s (3600 for a single row).
    pub fn step_s(&self) -> f64 {
        stats::median(self.points.windows(2).map(|w| w[1].0 - w[0].0)).unwrap_or(3600.0)
    }

    /// The series on a timeline where 0 is `origin_unix_s`.
    pub fn series(&self, origin_unix_s: f64) -> Option<IntensitySeries> {
        let pts: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|&(t, g)| (t - origin_unix_s, g))
            .collect();
        IntensitySeries::from_points(&pts, self.step_s()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_unix_rows_with_header() {
        let f = parse(
            "f.csv",
            "timestamp,intensity_g_per_kwh\n# comment\n2025-01-15T10:00:00Z,100\n2025-01-15T11:00:00+00:00,200.5\n\n",
        )
        .unwrap();
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.points[1].0 - f.points[0].0, 3600.0);
        assert_eq!(f.points[1].1, 200.5);
        assert_eq!(f.step_s(), 3600.0);
        let u = parse("u.csv", "1700000000,5\n1700000900,6\n").unwrap();
        assert_eq!(u.step_s(), 900.0);
        // Two steps (900 s, 1800 s): the median of an even count is their mean.
        let u = parse("u.csv", "1700000000,5\n1700000900,6\n1700002700,7\n").unwrap();
        assert_eq!(u.step_s(), 1350.0);
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = parse("f.csv", "t,g\n2025-01-15T10:00:00Z,abc\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "f.csv:2: field `intensity_g_per_kwh`: \"abc\" is not a number"
        );
        let e = parse("f.csv", "2025-01-15T10:00:00Z,1\nyesterday,2\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.csv:2: field `timestamp`"), "{e}");
        let e = parse("f.csv", "2025-01-15T10:00:00Z,-1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("from 0 to"), "{e}");
        let e = parse("f.csv", "2025-01-15T10:00:00Z,NaN\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("number from 0 to"), "{e}");
        let e = parse("f.csv", "2025-01-15T10:00:00Z\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
        let e = parse("f.csv", "2025-01-15T10:00:00Z,1\n2025-02-30T10:00:00Z,2\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.csv:2: field `timestamp`"), "{e}");
        let e = parse("f.csv", "0,1\n1e300,2\n").unwrap_err().to_string();
        assert!(e.starts_with("f.csv:2: field `timestamp`"), "{e}");
        let e = parse("f.csv", "t,g\n").unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
    }

    #[test]
    fn quoted_fields_and_comment_lines_are_read_as_csv() {
        let f = parse(
            "q.csv",
            "\"timestamp\",\"g\"\n\"2025-01-15T10:00:00Z\",\"100\"\n",
        )
        .unwrap();
        assert_eq!(f.points, vec![(1_736_935_200.0, 100.0)]);
        let e = parse("q.csv", "t,g\n# a comment\n\n2025-01-15T10:00:00Z,abc\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("q.csv:4: field `intensity_g_per_kwh`"), "{e}");
    }

    #[test]
    fn out_of_order_rows_are_refused() {
        let e = parse("f.csv", "2025-01-15T11:00:00Z,1\n2025-01-15T10:00:00Z,2\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f.csv:2: field `timestamp`") && e.contains("increasing"),
            "{e}"
        );
    }

    #[test]
    fn an_endless_stream_of_rows_is_read_row_by_row_up_to_the_cap() {
        use std::io::Read;
        /// Endless comment rows of 1,000 bytes, counting what is read from it.
        struct Endless(std::rc::Rc<std::cell::Cell<u64>>);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let mut row = [b'#'; 1000];
                row[999] = b'\n';
                let at = (self.0.get() % 1000) as usize;
                let n = buf.len().min(1000 - at);
                buf[..n].copy_from_slice(&row[at..at + n]);
                self.0.set(self.0.get() + n as u64);
                Ok(n)
            }
        }
        let read_bytes = std::rc::Rc::new(std::cell::Cell::new(0));
        let lines = BoundedLines::new(
            std::io::BufReader::new(Endless(std::rc::Rc::clone(&read_bytes))),
            MAX_LINE_BYTES,
            MAX_FILE_BYTES,
        );
        let e = parse_lines("pipe", lines).unwrap_err().to_string();
        assert!(e.starts_with("pipe: more than 33554432 bytes"), "{e}");
        // Stopped at the cap (plus the reader's buffer), not at the end of the input.
        assert!(
            read_bytes.get() <= MAX_FILE_BYTES + 16 * 1024,
            "{}",
            read_bytes.get()
        );
    }

    #[test]
    fn dev_zero_and_absurd_values_are_clear_errors() {
        let e = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(
            e.starts_with("/dev/zero: line 1: longer than 4096 bytes"),
            "{e}"
        );
        let e = parse("f.csv", "2025-01-15T10:00:00Z,1e308\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.csv:1: field `intensity_g_per_kwh`") && e.contains("2500"),
            "{e}"
        );
    }

    /// Cases run per property: published in docs/security.md.
    const CASES: u32 = 1000;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(CASES))]

        /// Any text: a parse that keeps only finite, ordered, in-range points, or an error
        /// that names the file (never a panic).
        #[test]
        fn any_text_parses_to_sane_points_or_a_named_error(text in "(([0-9TZ:.+-]{0,24}|x|#.*)(,[0-9e.+-]{0,12}){0,2}\n){0,8}|\\PC{0,200}") {
            match parse("f.csv", &text) {
                Ok(f) => {
                    proptest::prop_assert!(!f.points.is_empty());
                    for w in f.points.windows(2) {
                        proptest::prop_assert!(w[1].0 > w[0].0);
                    }
                    for &(t, g) in &f.points {
                        proptest::prop_assert!(t.is_finite() && g.is_finite());
                        proptest::prop_assert!((0.0..=MAX_INTENSITY_G_PER_KWH).contains(&g));
                    }
                }
                Err(e) => proptest::prop_assert!(e.to_string().starts_with("f.csv"), "{}", e),
            }
        }
    }
}
