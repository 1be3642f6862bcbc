//! Parsing of `wattprint rate` inputs: the models CSV (`model,task,energy[,class]`) and the
//! A-G thresholds CSV (`task[,class],A,B,C,D,E,F`, upper bounds in the energy's unit).

use crate::ParseError;
use wattprint_core::rating::{RatingInput, Thresholds};
use wattprint_core::textpos::record_line;

/// A CSV read whole, with a header map. Lines are 1-based file lines.
pub(crate) struct Table {
    pub header: Vec<String>,
    /// Every row with exactly as many fields as the header.
    pub rows: Vec<(usize, csv::StringRecord)>,
    /// Rows skipped under [`BadRows::Skip`].
    pub skipped: Vec<SkippedRow>,
}

/// What to do with a row whose field count differs from its header's: such a row would be
/// read out of position (a short row's fields taken for the wrong columns), so it is never
/// read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BadRows {
    /// An error naming the line and both counts (the default, and the only rule of `rate`).
    #[default]
    Error,
    /// Skipped and counted ([`Table::skipped`]): `wattprint import --skip-bad-rows`.
    Skip,
}

/// A row skipped under [`BadRows::Skip`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkippedRow {
    /// Its 1-based line.
    pub line: usize,
    /// Its field count.
    pub fields: usize,
}

/// The field name of the error for a row whose field count differs from the header's.
pub const FIELD_COUNT: &str = "field count";

/// Reads a whole CSV table: header, then rows, each checked against the header's field
/// count under `bad_rows`. `what` names the header in errors. Blank lines are skipped.
pub(crate) fn read_table(input: &str, what: &str, bad_rows: BadRows) -> Result<Table, ParseError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| ParseError::new(1, what, format!("cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(ParseError::new(
            1,
            what,
            "the file is empty: a header line is needed".into(),
        ));
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| record_line(input, p.byte()));
            ParseError::new(line, what, format!("malformed CSV: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| record_line(input, p.byte()));
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        if rec.len() != header.len() {
            match bad_rows {
                BadRows::Error => {
                    return Err(ParseError::new(
                        line,
                        FIELD_COUNT,
                        format!(
                            "{} fields where the header has {}: a row is never read out of \
                             position; fix the row",
                            rec.len(),
                            header.len()
                        ),
                    ))
                }
                BadRows::Skip => {
                    skipped.push(SkippedRow {
                        line,
                        fields: rec.len(),
                    });
                    continue;
                }
            }
        }
        rows.push((line, rec));
    }
    Ok(Table {
        header,
        rows,
        skipped,
    })
}

impl Table {
    pub fn col(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    pub fn need(&self, name: &str, what: &str) -> Result<usize, ParseError> {
        self.col(name).ok_or_else(|| {
            ParseError::new(
                1,
                what,
                format!(
                    "missing column `{name}` (header has: {})",
                    self.header.join(", ")
                ),
            )
        })
    }
}

pub(crate) fn field(rec: &csv::StringRecord, i: usize) -> &str {
    rec.get(i).unwrap_or("")
}

/// Parses a finite number, naming the line and field on failure.
pub(crate) fn number(s: &str, line: usize, field_name: &str) -> Result<f64, ParseError> {
    let v: f64 = s
        .parse()
        .map_err(|_| ParseError::new(line, field_name, format!("`{s}` is not a number")))?;
    if !v.is_finite() {
        return Err(ParseError::new(
            line,
            field_name,
            format!("`{s}` is not finite"),
        ));
    }
    Ok(v)
}

/// Reads the models CSV of `wattprint rate`.
pub fn parse_rating_csv(input: &str) -> Result<Vec<RatingInput>, ParseError> {
    let t = read_table(input, "header", BadRows::Error)?;
    let (m, tk, e) = (
        t.need("model", "header")?,
        t.need("task", "header")?,
        t.need("energy", "header")?,
    );
    let c = t.col("class");
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let energy = number(field(rec, e), *line, "energy")?;
        if energy < 0.0 {
            return Err(ParseError::new(
                *line,
                "energy",
                format!("{energy} is negative"),
            ));
        }
        let model = field(rec, m).to_string();
        if model.is_empty() {
            return Err(ParseError::new(*line, "model", "empty model name".into()));
        }
        out.push(RatingInput {
            model,
            task: field(rec, tk).to_string(),
            class: c
                .map(|c| field(rec, c).to_string())
                .filter(|s| !s.is_empty()),
            energy,
        });
    }
    if out.is_empty() {
        return Err(ParseError::new(
            1,
            "rows",
            "no model rows after the header".into(),
        ));
    }
    Ok(out)
}

/// Reads the A-G thresholds CSV.
pub fn parse_thresholds_csv(input: &str) -> Result<Vec<Thresholds>, ParseError> {
    let t = read_table(input, "header", BadRows::Error)?;
    let task = t.need("task", "header")?;
    let class = t.col("class");
    let mut cols = [0usize; 6];
    for (i, l) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
        cols[i] = t.need(l, "header")?;
    }
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let mut b = [0.0; 6];
        for (i, l) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
            b[i] = number(field(rec, cols[i]), *line, l)?;
        }
        let th = Thresholds {
            task: field(rec, task).to_string(),
            class: class
                .map(|c| field(rec, c).to_string())
                .filter(|s| !s.is_empty()),
            upper_bounds: b,
        };
        th.validate()
            .map_err(|e| ParseError::new(*line, "A..F", e.to_string()))?;
        out.push(th);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn errors_name_the_file_line_after_blank_lines() {
        let Err(e) = read_table("a,b\n\n\n1,2\n1,2,3\n", "header", BadRows::Error) else {
            panic!("a 3-field row under a 2-field header is an error");
        };
        assert_eq!((e.line, e.field.as_str()), (5, FIELD_COUNT));
        let Ok(t) = read_table("a,b\n\n1,2\n", "header", BadRows::Error) else {
            panic!("a valid table");
        };
        assert_eq!(t.rows[0].0, 3);
    }

    #[test]
    fn columns_in_any_order_with_optional_class() {
        let r = parse_rating_csv("energy,task,model,class\n1.5,text,a,A\n2,text,b,\n").unwrap();
        assert_eq!(r[0].model, "a");
        assert_eq!(r[0].class.as_deref(), Some("A"));
        assert_eq!(r[1].class, None);
        assert_eq!(r[1].energy, 2.0);
    }

    #[test]
    fn a_bad_energy_names_its_line_and_field() {
        let e = parse_rating_csv("model,task,energy\na,t,1\nb,t,lots\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.field, "energy");
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = parse_rating_csv("model,task\na,t\n").unwrap_err();
        assert!(e.to_string().contains("missing column `energy`"), "{e}");
    }

    #[test]
    fn a_short_row_is_an_error_not_a_missing_class() {
        // `b,text` lacks its energy: read in position it would take nothing for energy.
        let e = parse_rating_csv("model,task,energy,class\na,text,1,A\nb,text\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, FIELD_COUNT));
        assert!(
            e.message.starts_with("2 fields where the header has 4"),
            "{e}"
        );
        // rate has no --skip-bad-rows: the message does not offer it.
        assert!(!e.message.contains("skip"), "{e}");
    }

    #[test]
    fn thresholds_parse_and_validate() {
        let t = parse_thresholds_csv("task,class,A,B,C,D,E,F\ntext,,1,2,3,4,5,6\n").unwrap();
        assert_eq!(t[0].upper_bounds, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let e = parse_thresholds_csv("task,A,B,C,D,E,F\ntext,1,2,3,4,6,5\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    proptest! {
        #[test]
        fn random_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_rating_csv(&s);
            let _ = parse_thresholds_csv(&s);
        }
    }
}
