//! Sensor files kept open and read at offset 0 (`pread`) into a reused buffer: no open, seek
//! or allocation per read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An open sysfs/procfs file, re-read from offset 0 on every read.
#[derive(Debug)]
pub struct OpenFile {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl OpenFile {
    pub fn open(path: &Path) -> io::Result<OpenFile> {
        Ok(OpenFile {
            path: path.to_path_buf(),
            file: File::open(path)?,
            buf: vec![0; 4096],
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the open file has been removed from the tree (its descriptor would keep
    /// reading the last contents): one `fstat`, no path lookup.
    pub fn is_unlinked(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map_or(true, |m| m.nlink() == 0)
    }

    /// Read the whole file into the reused buffer and return it.
    pub fn read(&mut self) -> io::Result<&[u8]> {
        let mut n = 0;
        loop {
            if n == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let want = self.buf.len() - n;
            let k = self.file.read_at(&mut self.buf[n..], n as u64)?;
            n += k;
            // A short read is the end of a regular, sysfs or procfs file: no second call.
            if k < want {
                break;
            }
        }
        Ok(&self.buf[..n])
    }

    /// Read the file as one unsigned integer (`energy_uj` and the like).
    pub fn read_u64(&mut self) -> Result<u64, String> {
        // The path is formatted only on error: the hot path allocates nothing.
        let result = match self.read() {
            Ok(bytes) => parse_u64(bytes).ok_or_else(|| {
                format!(
                    "expected an unsigned integer, read {:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
                )
            }),
            Err(e) => Err(e.to_string()),
        };
        result.map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Parse an ASCII unsigned integer surrounded by optional whitespace.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_see_in_place_updates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("energy_uj");
        std::fs::write(&p, "123\n").unwrap();
        let mut f = OpenFile::open(&p).unwrap();
        assert_eq!(f.read_u64(), Ok(123));
        std::fs::write(&p, "4567\n").unwrap();
        assert_eq!(f.read_u64(), Ok(4567));
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("energy_uj");
        std::fs::write(&p, "abc").unwrap();
        let mut f = OpenFile::open(&p).unwrap();
        let e = f.read_u64().unwrap_err();
        assert!(e.contains("energy_uj") && e.contains("abc"), "{e}");
        std::fs::write(&p, "").unwrap();
        assert!(f.read_u64().is_err());
    }

    #[test]
    fn large_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stat");
        let text = "x".repeat(10_000);
        std::fs::write(&p, &text).unwrap();
        let mut f = OpenFile::open(&p).unwrap();
        assert_eq!(f.read().unwrap().len(), 10_000);
    }
}
