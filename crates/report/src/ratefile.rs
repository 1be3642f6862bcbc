//! Parsing of `wattprint rate` inputs: the models CSV (`model,task,energy[,class]`) and the
//! A-G thresholds CSV (`task[,class],A,B,C,D,E,F`, upper bounds in the energy's unit).

use crate::ParseError;
use wattprint_core::rating::{RatingInput, Thresholds};
use wattprint_core::textpos::{BoundedLines, LineError};

/// A CSV read whole, with a header map. Lines are 1-based file lines.
pub(crate) struct Table {
    pub header: Vec<String>,
    /// The header's 1-based line.
    pub header_line: usize,
    /// Every row with exactly as many fields as the header.
    pub rows: Vec<(usize, csv::StringRecord)>,
}

/// What to do with a row whose field count differs from its header's: such a row would be
/// read out of position (a short row's fields taken for the wrong columns), so it is never
/// read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BadRows {
    /// An error naming the line and both counts (the default, and the only rule of `rate`).
    #[default]
    Error,
    /// Skipped and counted ([`Rows::skipped`]): `wattprint import --skip-bad-rows`.
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

/// The rows skipped under [`BadRows::Skip`]: all counted, the first [`Skipped::NAMED`] kept
/// (so a file of bad rows holds no more memory than a good one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// How many rows were skipped.
    pub count: usize,
    /// The first of them, at most [`Skipped::NAMED`].
    pub first: Vec<SkippedRow>,
}

impl Skipped {
    /// Most skipped rows named (the count is always whole): ten lines are enough to find
    /// the pattern in an editor.
    pub const NAMED: usize = 10;

    fn push(&mut self, row: SkippedRow) {
        self.count += 1;
        if self.first.len() < Self::NAMED {
            self.first.push(row);
        }
    }
}

/// The field name of the error for a row whose field count differs from the header's.
pub const FIELD_COUNT: &str = "field count";

/// The caps of a streamed table: each line at most `max_line_bytes` (a quoted record over
/// several lines as well), the whole at most `max_total_bytes`. The caller states them (the
/// CLI's `MAX_IMPORT_LINE_BYTES`, `MAX_IMPORT_BYTES`); [`ReadLimits::NONE`] for text
/// already in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Longest line (and record), bytes, without its line break.
    pub max_line_bytes: usize,
    /// Largest input, bytes.
    pub max_total_bytes: u64,
}

impl ReadLimits {
    /// No cap: for text already in memory, whose size its reader bounded.
    pub const NONE: ReadLimits = ReadLimits {
        max_line_bytes: usize::MAX,
        max_total_bytes: u64::MAX,
    };
}

/// Why a streamed table could not be read: the input (a line over the cap, the whole over
/// the cap, an I/O error) or its content (a [`ParseError`] naming the line and field).
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The stream could not be read within the caps.
    #[error("{0}")]
    Read(#[from] LineError),
    /// A line or field is wrong.
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Lines that start with `#` (wattprint's CSV trace) hold `# key: value` metadata: the CSV
/// reader sees them as blank lines (so line numbers stay those of the file), and only the
/// values of the listed keys are kept (so a file of comments holds no memory).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Comments {
    /// No comment lines: every line is data.
    None,
    /// `#` lines are metadata; the values of these keys are kept (the last one of each).
    Keep(&'static [&'static str]),
}

/// FNV-1a 64 offset basis and prime (Fowler, Noll, Vo; the IETF draft
/// draft-eastlake-fnv): a short, stable content hash, not a cryptographic one.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a 64 hash fed as bytes stream: the same value for the same bytes however they
/// are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentHash(u64);

impl Default for ContentHash {
    fn default() -> Self {
        ContentHash(FNV_OFFSET)
    }
}

impl ContentHash {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The hash so far, 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The bytes of a stream handed to the CSV reader one line at a time (never two lines in
/// one `read`), so the line a record starts on is known when the reader returns it: the
/// first non-blank line handed over since the previous record. Each line is decoded as
/// UTF-8 with invalid bytes replaced (U+FFFD), hashed, and (for [`Comments::Keep`]) a
/// `#` line kept as metadata and handed over blank.
struct LineFeed<R> {
    lines: BoundedLines<R>,
    comments: Comments,
    meta: Vec<(&'static str, String)>,
    /// The current line, decoded, and how much of it was handed over.
    cur: Vec<u8>,
    pos: usize,
    /// The number of the current line (0 before the first).
    line: usize,
    /// The first non-blank line handed over since [`LineFeed::mark`].
    first: Option<usize>,
    /// Bytes handed over since that line began: a record's size.
    record_bytes: u64,
    max_record_bytes: u64,
    hash: ContentHash,
    /// Why the last `read` failed (the CSV reader keeps only the I/O error's text).
    failed: Option<TableError>,
}

impl<R: std::io::BufRead> LineFeed<R> {
    /// A record was read: the next one starts on the next non-blank line.
    fn mark(&mut self) {
        self.first = None;
        self.record_bytes = 0;
    }

    /// The line of the record just read.
    fn record_line(&self) -> usize {
        self.first.unwrap_or(self.line)
    }

    fn next_line(&mut self) -> Result<bool, TableError> {
        let (n, raw) = match self.lines.next_bytes() {
            None => return Ok(false),
            Some(r) => r?,
        };
        let text = String::from_utf8_lossy(raw);
        self.hash.update(text.as_bytes());
        self.line = n;
        self.cur.clear();
        self.pos = 0;
        match self.comments {
            Comments::None => self.cur.extend_from_slice(text.as_bytes()),
            Comments::Keep(keys) => {
                let l = text.trim_end_matches(['\n', '\r']);
                let l = l.trim_start_matches('\u{feff}');
                if let Some(m) = l.strip_prefix('#') {
                    if let Some((k, v)) = m.split_once(':') {
                        let k = k.trim();
                        if let Some(key) = keys.iter().find(|key| **key == k) {
                            self.meta.retain(|(m, _)| m != key);
                            self.meta.push((key, v.trim().to_string()));
                        }
                    }
                } else {
                    self.cur.extend_from_slice(l.as_bytes());
                }
                self.cur.push(b'\n');
            }
        }
        let blank = self.cur.iter().all(|b| matches!(b, b'\n' | b'\r'));
        if self.first.is_none() && !blank {
            self.first = Some(n);
        }
        if self.first.is_some() {
            self.record_bytes += self.cur.len() as u64;
            if self.record_bytes > self.max_record_bytes {
                return Err(ParseError::new(
                    self.record_line(),
                    "record",
                    format!(
                        "a record longer than {} bytes (an unclosed quote?)",
                        self.max_record_bytes
                    ),
                )
                .into());
            }
        }
        Ok(true)
    }
}

impl<R: std::io::BufRead> std::io::Read for LineFeed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.next_line() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let text = e.to_string();
                    self.failed = Some(e);
                    return Err(std::io::Error::other(text));
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A CSV table read row by row from a stream: the one CSV reader of the crate (`rate`'s
/// files, every importer, the provider exports). Memory holds one line and one record
/// whatever the input's size: rows are handed out one at a time ([`Rows::next_row`]),
/// rows skipped under [`BadRows::Skip`] are counted, not kept ([`Skipped`]).
///
/// The row rule: a row whose field count differs from the header's is an error naming its
/// line and both counts ([`FIELD_COUNT`]), or skipped under [`BadRows::Skip`]; a row of
/// empty fields and blank lines are skipped. Lines are 1-based file lines (blank and
/// comment lines counted), so an error names the line an editor shows.
pub(crate) struct Rows<R> {
    rdr: csv::Reader<LineFeed<R>>,
    header: Vec<String>,
    header_line: usize,
    what: String,
    bad_rows: BadRows,
    skipped: Skipped,
    rec: csv::StringRecord,
}

impl<R: std::io::BufRead> Rows<R> {
    /// Reads the header of `r`. `what` names the header in errors.
    pub fn new(
        r: R,
        what: &str,
        bad_rows: BadRows,
        limits: ReadLimits,
        comments: Comments,
    ) -> Result<Self, TableError> {
        let feed = LineFeed {
            lines: BoundedLines::new(r, limits.max_line_bytes, limits.max_total_bytes),
            comments,
            meta: Vec::new(),
            cur: Vec::new(),
            pos: 0,
            line: 0,
            first: None,
            record_bytes: 0,
            max_record_bytes: (limits.max_line_bytes as u64).saturating_add(2),
            hash: ContentHash::default(),
            failed: None,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .has_headers(false)
            .from_reader(feed);
        let mut rec = csv::StringRecord::new();
        let got = rdr.read_record(&mut rec);
        let got = Self::checked(&mut rdr, got, what)?;
        let header_line = if got {
            rdr.get_ref().record_line()
        } else {
            rdr.get_ref().line + 1
        };
        rdr.get_mut().mark();
        let header: Vec<String> = rec
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(ParseError::new(
                header_line,
                what,
                "the file is empty: a header line is needed".into(),
            )
            .into());
        }
        Ok(Rows {
            rdr,
            header,
            header_line,
            what: what.to_string(),
            bad_rows,
            skipped: Skipped::default(),
            rec,
        })
    }

    /// A read's result, with the stream's own error where the CSV reader met one.
    fn checked(
        rdr: &mut csv::Reader<LineFeed<R>>,
        got: csv::Result<bool>,
        what: &str,
    ) -> Result<bool, TableError> {
        got.map_err(|e| match rdr.get_mut().failed.take() {
            Some(f) => f,
            None => ParseError::new(
                rdr.get_ref().record_line(),
                what,
                format!("malformed CSV: {e}"),
            )
            .into(),
        })
    }

    /// The next row with as many fields as the header, and its line; `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<(usize, &csv::StringRecord)>, TableError> {
        loop {
            let got = self.rdr.read_record(&mut self.rec);
            if !Self::checked(&mut self.rdr, got, &self.what)? {
                return Ok(None);
            }
            let line = self.rdr.get_ref().record_line();
            self.rdr.get_mut().mark();
            if self.rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            if self.rec.len() != self.header.len() {
                match self.bad_rows {
                    BadRows::Error => {
                        return Err(ParseError::new(
                            line,
                            FIELD_COUNT,
                            format!(
                                "{} fields where the header has {}: a row is never read out \
                                 of position; fix the row",
                                self.rec.len(),
                                self.header.len()
                            ),
                        )
                        .into())
                    }
                    BadRows::Skip => {
                        self.skipped.push(SkippedRow {
                            line,
                            fields: self.rec.len(),
                        });
                        continue;
                    }
                }
            }
            return Ok(Some((line, &self.rec)));
        }
    }

    /// The header's fields (a leading byte-order mark removed).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The header's 1-based line.
    pub fn header_line(&self) -> usize {
        self.header_line
    }

    /// The rows skipped so far under [`BadRows::Skip`].
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    /// The hash of every byte read so far (as decoded: invalid UTF-8 replaced); of the
    /// whole input once [`Rows::next_row`] returned `None`.
    pub fn content_hash(&self) -> ContentHash {
        self.rdr.get_ref().hash
    }

    /// The value of a kept `# key: value` line ([`Comments::Keep`]), the last one in the file.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.rdr
            .get_ref()
            .meta
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The index of column `name` (ASCII case-insensitive).
    pub fn col(&self, name: &str) -> Option<usize> {
        header_col(&self.header, name)
    }

    /// The index of column `name`, or an error naming the header and its columns.
    pub fn need(&self, name: &str, what: &str) -> Result<usize, ParseError> {
        need(&self.header, self.header_line, name, what)
    }
}

/// The index of column `name` in `header` (ASCII case-insensitive).
pub(crate) fn header_col(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| h.eq_ignore_ascii_case(name))
}

fn need(header: &[String], line: usize, name: &str, what: &str) -> Result<usize, ParseError> {
    header_col(header, name).ok_or_else(|| {
        ParseError::new(
            line,
            what,
            format!(
                "missing column `{name}` (header has: {})",
                header.join(", ")
            ),
        )
    })
}

/// Reads a whole CSV table from text already in memory ([`Rows`] collected): header, then
/// rows, each checked against the header's field count. `what` names the header in errors.
pub(crate) fn read_table(input: &str, what: &str) -> Result<Table, ParseError> {
    let mut rows = Rows::new(
        input.as_bytes(),
        what,
        BadRows::Error,
        ReadLimits::NONE,
        Comments::None,
    )
    .map_err(TableError::into_parse)?;
    let mut out = Vec::new();
    while let Some((line, rec)) = rows.next_row().map_err(TableError::into_parse)? {
        out.push((line, rec.clone()));
    }
    Ok(Table {
        header_line: rows.header_line,
        header: rows.header,
        rows: out,
    })
}

impl TableError {
    /// As a [`ParseError`]: a read error names its line where it has one (text in memory
    /// has none but a cap's).
    pub fn into_parse(self) -> ParseError {
        match self {
            TableError::Parse(e) => e,
            TableError::Read(e) => {
                let line = match &e {
                    LineError::TooLong { line, .. } | LineError::NotUtf8 { line } => *line,
                    LineError::TooBig { .. } | LineError::Io(_) => 0,
                };
                ParseError::new(line, "input", e.to_string())
            }
        }
    }
}

impl Table {
    pub fn col(&self, name: &str) -> Option<usize> {
        header_col(&self.header, name)
    }

    pub fn need(&self, name: &str, what: &str) -> Result<usize, ParseError> {
        need(&self.header, self.header_line, name, what)
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
    let t = read_table(input, "header")?;
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
    let t = read_table(input, "header")?;
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
        let Err(e) = read_table("a,b\n\n\n1,2\n1,2,3\n", "header") else {
            panic!("a 3-field row under a 2-field header is an error");
        };
        assert_eq!((e.line, e.field.as_str()), (5, FIELD_COUNT));
        let Ok(t) = read_table("a,b\n\n1,2\n", "header") else {
            panic!("a valid table");
        };
        assert_eq!(t.rows[0].0, 3);
        // CRLF blank lines, blank lines before the header, a quoted field over two lines.
        let t = read_table("\r\na,b\r\n\r\n\r\n1,2\r\n\r\n\"x\ny\",4\n5,6", "header").unwrap();
        assert_eq!(t.header_line, 2);
        let lines: Vec<usize> = t.rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [5, 7, 9]);
        assert_eq!(&t.rows[1].1[0], "x\ny");
    }

    #[test]
    fn a_long_line_or_an_unclosed_quote_stops_at_the_cap() {
        let limits = ReadLimits {
            max_line_bytes: 64,
            max_total_bytes: 1 << 20,
        };
        let rows = |text: String| {
            let mut r = Rows::new(
                std::io::Cursor::new(text),
                "header",
                BadRows::Error,
                limits,
                Comments::None,
            )?;
            while r.next_row()?.is_some() {}
            Ok::<_, TableError>(())
        };
        let Err(TableError::Read(LineError::TooLong { line: 3, .. })) =
            rows(format!("a,b\n1,2\n1,{}\n", "x".repeat(65)))
        else {
            panic!("a 67-byte line over a 64-byte cap");
        };
        // Lines of 4 bytes, in one quoted field that never closes: one record over the cap.
        let Err(TableError::Parse(e)) = rows(format!("a,b\n1,\"open\n{}", "x,y\n".repeat(100)))
        else {
            panic!("an unclosed quote");
        };
        assert_eq!((e.line, e.field.as_str()), (2, "record"));
        assert!(e.message.contains("unclosed quote"), "{e}");
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
