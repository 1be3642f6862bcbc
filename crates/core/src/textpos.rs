//! Positions in text read by a CSV reader: the one place that turns a record's byte offset
//! into the line people see in their editor.

/// The 1-based line of a record that a CSV reader reports at byte offset `byte` of `text`.
///
/// The `csv` crate's own line count and offset leave out the blank lines before a record
/// (its offset points at them), so they are skipped here: an error names the file's real
/// line. An offset past the end is the last line.
pub fn record_line(text: &str, byte: u64) -> usize {
    let b = text.as_bytes();
    let mut at = usize::try_from(byte).unwrap_or(usize::MAX).min(b.len());
    while matches!(b.get(at), Some(b'\n' | b'\r')) {
        at += 1;
    }
    b[..at].iter().filter(|&&c| c == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_before_a_record_are_counted() {
        let t = "a,b\n\n\n1,2\r\n\r\n3,4\n";
        assert_eq!(record_line(t, 0), 1);
        // The reader reports the second record at the end of the header line (byte 4).
        assert_eq!(record_line(t, 4), 4);
        assert_eq!(record_line(t, 11), 6);
        assert_eq!(record_line(t, 10_000), 7);
    }
}
