//! The work file: how a wrapped workload declares work at run time.
//!
//! `wattprint run` creates an empty file, passes its path to the child in
//! `WATTPRINT_WORK_FILE`, and reads it after the child exits. The workload appends lines
//! `flops=N`, `inferences=N` or `tokens=N` (any number of times; values of a key are summed;
//! see [`wattprint_core::work::parse_work_file`]). The file is removed when dropped.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use wattprint_core::forecast::parse_progress_line;
use wattprint_core::work::WorkFileTally;

/// Environment variable carrying the work file's path to the child.
pub const WORK_FILE_ENV: &str = "WATTPRINT_WORK_FILE";

/// Largest work file read, bytes (a runaway workload cannot make the report unbounded).
pub const MAX_WORK_FILE_BYTES: u64 = 16 << 20;

/// A fresh, empty work file in the temporary directory, readable and writable by its owner
/// only; removed on drop.
pub struct WorkFile {
    file: tempfile::NamedTempFile,
}

impl WorkFile {
    /// Create the file (`TMPDIR` or `/tmp`).
    pub fn create() -> std::io::Result<WorkFile> {
        let file = tempfile::Builder::new()
            .prefix("wattprint-work-")
            .suffix(".txt")
            .tempfile()?;
        Ok(WorkFile { file })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Read and parse what the workload wrote. `Err` says why the file could not be read (it
    /// was removed, or is larger than [`MAX_WORK_FILE_BYTES`]).
    pub fn read(&self) -> Result<WorkFileTally, String> {
        read_work_file(self.path())
    }
}

/// Longest line of a work file read, bytes (a line is `tokens=N`; a longer one is a
/// runaway or binary write, and reading stops there).
pub const MAX_WORK_LINE_BYTES: usize = 4096;

/// Read and parse a work file at `path`, line by line (bad lines are reported in the tally,
/// by number): memory stays at one line and the first bad lines, whatever the workload
/// wrote. More than [`MAX_WORK_FILE_BYTES`], a line over [`MAX_WORK_LINE_BYTES`] or bytes
/// that are not UTF-8 stop the read with an error naming the file (and line).
pub fn read_work_file(path: &Path) -> Result<WorkFileTally, String> {
    use wattprint_core::textpos::BoundedLines;
    let shown = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| format!("work file {shown}: {e}"))?;
    let mut t = WorkFileTally::default();
    let mut bad = 0;
    let lines = BoundedLines::new(
        std::io::BufReader::new(f),
        MAX_WORK_LINE_BYTES,
        MAX_WORK_FILE_BYTES,
    );
    for l in lines {
        let (n, line) = l.map_err(|e| {
            format!(
                "work file {shown}: {e}; append one short line (`tokens=N`) per batch, not per operation"
            )
        })?;
        t.add_line(&shown, n, &line, &mut bad);
    }
    Ok(t)
}

/// Most bytes one look at the file reads, bytes (the rest waits for the next look): memory
/// stays small whatever the workload appends at once.
const MAX_POLL_BYTES: u64 = 64 << 10;

/// Reads the progress lines (`progress=F`, `step=N total=M`) a workload appends to its work
/// file, as they come: each call reads only what was appended since the last one (one
/// `stat` when nothing was; at most 64 KiB a call), up to [`MAX_WORK_FILE_BYTES`] in all; a
/// line longer than [`MAX_WORK_LINE_BYTES`] is skipped.
pub struct ProgressTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl ProgressTail {
    pub fn new(path: &Path) -> ProgressTail {
        ProgressTail {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The last valid progress (0 to 1) among the complete lines appended since the last
    /// call; `None` when there is none (bad lines are reported when the file is read at the
    /// end, with their numbers). A file that shrank is read again from its start.
    pub fn poll(&mut self) -> Option<f64> {
        let f = std::fs::File::open(&self.path).ok()?;
        let len = f.metadata().ok()?.len().min(MAX_WORK_FILE_BYTES);
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return None;
        }
        let mut buf = vec![0u8; (len - self.offset).min(MAX_POLL_BYTES) as usize];
        let n = f.read_at(&mut buf, self.offset).ok()?;
        buf.truncate(n);
        self.offset += n as u64;
        let mut last = None;
        let mut rest: &[u8] = &buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = if self.partial.is_empty() {
                &rest[..end]
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                &self.partial[..]
            };
            if let Some(Ok(p)) = parse_progress_line(&String::from_utf8_lossy(line)) {
                last = Some(p);
            }
            self.partial.clear();
            rest = &rest[end + 1..];
        }
        if self.partial.len() + rest.len() <= MAX_WORK_LINE_BYTES {
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.clear();
        }
        last
    }
}

/// The path a child should receive: `(WORK_FILE_ENV, path)`.
pub fn child_env(f: &WorkFile) -> (&'static str, PathBuf) {
    (WORK_FILE_ENV, f.path().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_appended_by_the_workload_are_read_back_and_summed() {
        let wf = WorkFile::create().unwrap();
        let (k, p) = child_env(&wf);
        assert_eq!(k, "WATTPRINT_WORK_FILE");
        for line in ["flops=1e12\n", "tokens=100\n", "flops=5e11\n", "oops\n"] {
            let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
            f.write_all(line.as_bytes()).unwrap();
        }
        let t = wf.read().unwrap();
        assert_eq!(t.flops, Some(1.5e12));
        assert_eq!(t.tokens, Some(100.0));
        assert_eq!(t.errors.len(), 1);
        assert!(t.errors[0].contains("line 4"), "{}", t.errors[0]);
    }

    #[test]
    fn progress_is_read_as_it_is_appended_line_by_line() {
        let wf = WorkFile::create().unwrap();
        let mut tail = ProgressTail::new(wf.path());
        let append = |text: &str| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(wf.path())
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        assert_eq!(tail.poll(), None);
        append("tokens=5\nprogress=0.1\nprogress=0.2\n");
        assert_eq!(tail.poll(), Some(0.2));
        assert_eq!(tail.poll(), None, "nothing new");
        // A line is used once it is complete.
        append("step=3 tot");
        assert_eq!(tail.poll(), None);
        append("al=10\nprogress=oops\n");
        assert_eq!(tail.poll(), Some(0.3));
        // A file rewritten shorter is read again from its start.
        std::fs::write(wf.path(), "progress=0.5\n").unwrap();
        assert_eq!(tail.poll(), Some(0.5));
    }

    #[test]
    fn the_file_is_removed_on_drop_and_a_missing_file_is_an_error() {
        let wf = WorkFile::create().unwrap();
        let p = wf.path().to_path_buf();
        assert!(p.exists());
        drop(wf);
        assert!(!p.exists());
        let e = read_work_file(&p).unwrap_err();
        assert!(e.starts_with("work file "), "{e}");
    }

    #[test]
    fn dev_zero_endless_lines_and_floods_of_bad_lines_stay_bounded() {
        // /dev/zero: one endless line, refused after a line's worth, naming it.
        let e = read_work_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("line 1: longer than 4096 bytes"), "{e}");
        let d = tempfile::tempdir().unwrap();
        // A file past the cap: refused by size, read no further.
        let p = d.path().join("big.txt");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_WORK_FILE_BYTES + 1).unwrap(); // sparse zeros, no line breaks
        let e = read_work_file(&p).unwrap_err();
        assert!(e.contains("longer than 4096"), "{e}");
        let row = format!("#{}\n", "x".repeat(4000)); // comment rows: only the size counts
        let mut f = std::fs::File::create(&p).unwrap();
        for _ in 0..(MAX_WORK_FILE_BYTES / row.len() as u64 + 1) {
            f.write_all(row.as_bytes()).unwrap();
        }
        drop(f);
        let e = read_work_file(&p).unwrap_err();
        assert!(e.contains("more than 16777216 bytes"), "{e}");
        // 10,000 bad lines: 20 entries, the last counting the rest; good lines still summed.
        let mut text = String::from("tokens=5\n");
        text.push_str(&"oops\n".repeat(10_000));
        std::fs::write(&p, text).unwrap();
        let t = read_work_file(&p).unwrap();
        assert_eq!(t.tokens, Some(5.0));
        assert_eq!(t.errors.len(), wattprint_core::work::MAX_WORK_FILE_ERRORS);
        assert!(t.errors[0].contains("line 2"), "{}", t.errors[0]);
        assert!(
            t.errors.last().unwrap().contains("9981 more bad line(s)"),
            "{:?}",
            t.errors.last()
        );
    }
}
