//! The agent's spool: one small SQLite file holding the latest snapshot of what a restart
//! must not lose (open windows, spans waiting for attribution, cumulative counters).
//!
//! The snapshot is opaque here (the agent's JSON); each [`Spool::write`] replaces it in one
//! immediate transaction, so a process killed at any point leaves either the previous or the
//! new snapshot, never a mix. WAL with `synchronous=NORMAL`: a committed snapshot survives a
//! crash of the process (an OS crash may lose the last one or two, which the next start
//! reports as a longer gap).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Schema migrations of the spool, applied in order (`PRAGMA user_version` counts them).
const SPOOL_MIGRATIONS: &[&str] = &[
    // v1: one row, the latest snapshot.
    "CREATE TABLE snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        written_unix_s REAL NOT NULL,
        owner_pid INTEGER NOT NULL,
        body TEXT NOT NULL
    );",
];

/// How long a write waits for another writer of the same file, ms (a second agent pointed
/// at the same spool by mistake: its writes fail instead of hanging the sampler).
const SPOOL_BUSY_MS: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "spool {path}: {message} (give --spool another file, or remove this one to start afresh)"
    )]
    Sql { path: PathBuf, message: String },
    #[error("spool {path} has schema version {found}, newer than this wattprint knows ({known}): upgrade wattprint or give --spool another file")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// The latest snapshot read back.
#[derive(Clone, Debug, PartialEq)]
pub struct SpooledSnapshot {
    /// When it was written, Unix s.
    pub written_unix_s: f64,
    /// The process that wrote it.
    pub owner_pid: u32,
    pub body: String,
}

/// An open spool file.
pub struct Spool {
    conn: Connection,
    path: PathBuf,
}

impl Spool {
    /// Open (creating the file and its directory) and migrate the spool at `path`.
    pub fn open(path: &Path) -> Result<Spool, SpoolError> {
        let err = |message: String| SpoolError::Sql {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        conn.busy_timeout(Duration::from_millis(SPOOL_BUSY_MS))
            .map_err(|e| err(e.to_string()))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .map_err(|e| err(e.to_string()))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL;")
            .map_err(|e| err(e.to_string()))?;
        let known = SPOOL_MIGRATIONS.len() as i64;
        loop {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| err(e.to_string()))?;
            let v: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| err(e.to_string()))?;
            if v > known {
                return Err(SpoolError::TooNew {
                    path: path.to_path_buf(),
                    found: v,
                    known,
                });
            }
            if v == known {
                break;
            }
            tx.execute_batch(SPOOL_MIGRATIONS[v as usize])
                .map_err(|e| err(e.to_string()))?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))
                .map_err(|e| err(e.to_string()))?;
            tx.commit().map_err(|e| err(e.to_string()))?;
        }
        Ok(Spool {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> SpoolError {
        SpoolError::Sql {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Replace the snapshot, in one transaction.
    pub fn write(&mut self, written_unix_s: f64, body: &str) -> Result<(), SpoolError> {
        let path = &self.path;
        let err = |e: rusqlite::Error| SpoolError::Sql {
            path: path.clone(),
            message: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT INTO snapshot (id, written_unix_s, owner_pid, body) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET written_unix_s = ?1, owner_pid = ?2, body = ?3",
            params![written_unix_s, std::process::id(), body],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The latest snapshot, `None` for a new spool.
    pub fn read(&self) -> Result<Option<SpooledSnapshot>, SpoolError> {
        self.conn
            .query_row(
                "SELECT written_unix_s, owner_pid, body FROM snapshot WHERE id = 1",
                [],
                |r| {
                    Ok(SpooledSnapshot {
                        written_unix_s: r.get(0)?,
                        owner_pid: r.get(1)?,
                        body: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_snapshot_replaces_the_previous_and_survives_reopening() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/spool.sqlite");
        let mut s = Spool::open(&p).unwrap();
        assert_eq!(s.read().unwrap(), None);
        s.write(100.0, "{\"a\":1}").unwrap();
        s.write(101.5, "{\"a\":2}").unwrap();
        drop(s);
        let s = Spool::open(&p).unwrap();
        let r = s.read().unwrap().unwrap();
        assert_eq!((r.written_unix_s, r.body.as_str()), (101.5, "{\"a\":2}"));
        assert_eq!(r.owner_pid, std::process::id());
    }

    #[test]
    fn a_newer_spool_and_a_non_database_are_refused_with_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("spool.sqlite");
        drop(Spool::open(&p).unwrap());
        Connection::open(&p)
            .unwrap()
            .execute_batch("PRAGMA user_version = 9")
            .unwrap();
        let e = Spool::open(&p).err().unwrap().to_string();
        assert!(e.contains("newer") && e.contains("--spool"), "{e}");
        let junk = d.path().join("junk");
        std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
        let e = Spool::open(&junk).err().unwrap().to_string();
        assert!(e.contains("--spool"), "{e}");
    }
}
