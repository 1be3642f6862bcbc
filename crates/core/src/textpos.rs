//! Lines of text read from a stream with a cap on each line and on the whole: the one
//! bounded line reader (the CSV reader of user files, intensity files, work files).

/// Why a line could not be read by [`BoundedLines`].
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("line {line}: longer than {max_bytes} bytes (a binary file, or no line breaks?)")]
    TooLong { line: usize, max_bytes: usize },
    #[error("more than {max_bytes} bytes: give a smaller file")]
    TooBig { max_bytes: u64 },
    #[error("line {line}: not UTF-8 text")]
    NotUtf8 { line: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The lines of a stream, read one at a time with a cap on each line and on the whole, so
/// memory stays at one line whatever the input (`/dev/zero`, an endless pipe, a huge file):
/// an overlong line is an error naming it, after at most `max_line_bytes + 1` bytes are read.
/// Yields `(1-based line number, line without its `\n` or `\r\n`)`.
pub struct BoundedLines<R> {
    r: R,
    buf: Vec<u8>,
    line: usize,
    total: u64,
    max_line_bytes: usize,
    max_total_bytes: u64,
    done: bool,
}

impl<R: std::io::BufRead> BoundedLines<R> {
    /// Lines of `r`, each at most `max_line_bytes`, all together at most `max_total_bytes`.
    pub fn new(r: R, max_line_bytes: usize, max_total_bytes: u64) -> Self {
        BoundedLines {
            r,
            buf: Vec::new(),
            line: 0,
            total: 0,
            max_line_bytes,
            max_total_bytes,
            done: false,
        }
    }
}

impl<R: std::io::BufRead> BoundedLines<R> {
    /// The next line's raw bytes, its `\n` or `\r\n` included (no check of UTF-8): for
    /// readers that hash or decode the bytes themselves. Same caps and errors as the
    /// iterator, which is built on it; `None` at the end and after an error.
    pub fn next_bytes(&mut self) -> Option<Result<(usize, &[u8]), LineError>> {
        use std::io::{BufRead, Read};
        if self.done {
            return None;
        }
        self.buf.clear();
        self.line += 1;
        // The line and its `\r\n` (saturating: a cap of `usize::MAX` means none).
        let room = (self.max_line_bytes as u64).saturating_add(2);
        let got = match (&mut self.r).take(room).read_until(b'\n', &mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(e.into()));
            }
        };
        if got == 0 {
            self.done = true;
            return None;
        }
        self.total = self.total.saturating_add(got as u64);
        if self.total > self.max_total_bytes {
            self.done = true;
            let max_bytes = self.max_total_bytes;
            return Some(Err(LineError::TooBig { max_bytes }));
        }
        let body = self
            .buf
            .strip_suffix(b"\n")
            .map_or(&self.buf[..], |l| l.strip_suffix(b"\r").unwrap_or(l));
        if body.len() > self.max_line_bytes {
            self.done = true;
            let (line, max_bytes) = (self.line, self.max_line_bytes);
            return Some(Err(LineError::TooLong { line, max_bytes }));
        }
        Some(Ok((self.line, &self.buf)))
    }
}

impl<R: std::io::BufRead> Iterator for BoundedLines<R> {
    type Item = Result<(usize, String), LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (line, raw) = match self.next_bytes()? {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let body = raw
            .strip_suffix(b"\n")
            .map_or(raw, |l| l.strip_suffix(b"\r").unwrap_or(l));
        match std::str::from_utf8(body) {
            Ok(s) => Some(Ok((line, s.to_string()))),
            Err(_) => {
                self.done = true;
                Some(Err(LineError::NotUtf8 { line }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_read_lines_and_stop_at_the_caps() {
        use std::io::Read;
        let text = "a,b\r\n\n1,2\nlast";
        let lines: Vec<(usize, String)> = BoundedLines::new(text.as_bytes(), 8, 100)
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            lines,
            [
                (1, "a,b".into()),
                (2, "".into()),
                (3, "1,2".into()),
                (4, "last".into())
            ]
        );
        // An endless line: an error naming it, after reading only a line's worth.
        let zero = std::io::BufReader::new(std::io::repeat(0).take(1 << 30));
        let mut it = BoundedLines::new(zero, 4096, u64::MAX);
        let e = it.next().unwrap().unwrap_err();
        assert!(
            matches!(
                e,
                LineError::TooLong {
                    line: 1,
                    max_bytes: 4096
                }
            ),
            "{e}"
        );
        assert!(it.next().is_none());
        // Endless short lines: the total cap.
        let lines = std::io::BufReader::new(std::io::repeat(b'\n').take(1 << 30));
        let e = BoundedLines::new(lines, 10, 1000)
            .find_map(Result::err)
            .unwrap();
        assert!(matches!(e, LineError::TooBig { max_bytes: 1000 }), "{e}");
        let e = BoundedLines::new(&b"ok\n\xff\n"[..], 10, 100)
            .find_map(Result::err)
            .unwrap();
        assert!(matches!(e, LineError::NotUtf8 { line: 2 }), "{e}");
    }
}
