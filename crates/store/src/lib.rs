//! The run history: a SQLite database of full run reports with indexed columns.
//!
//! WAL journal, a busy timeout so several `wattprint run`s finishing at once wait for each
//! other instead of failing, every write in one `BEGIN IMMEDIATE` transaction (a process
//! killed half-way leaves no partial run), and a `PRAGMA user_version` migrator. The full
//! `wattprint.run/v1` JSON is stored beside the columns that filters use, with the power
//! timeline kept at a bounded resolution.
//!
//! A long run is stored while it runs: [`Store::checkpoint`] inserts it with status
//! `running` and rewrites its row at each checkpoint, [`Store::finish`] replaces that row
//! with the final report. A run whose writer died between the two (SIGKILL, OOM killer,
//! reboot) is found by [`Store::settle_interrupted`] (see [`owner_gone`]) and becomes
//! `interrupted`, with the energy of its last checkpoint.

pub mod git;
mod portfolio;
pub mod spool;

pub use portfolio::{OnRestated, PortfolioInsert, Restated};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wattprint_core::report::{RunReport, RunStatus, TimelineReport};
use wattprint_core::wallclock::parse_rfc3339_s;

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
    // v1: runs with indexed columns, labels, the bounded timeline.
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        started_unix_s REAL,
        duration_s REAL NOT NULL,
        command TEXT NOT NULL,
        exit_code INTEGER,
        host TEXT NOT NULL,
        cpu_model TEXT,
        gpu_models TEXT NOT NULL,
        git_commit TEXT,
        zone TEXT NOT NULL,
        methods TEXT NOT NULL,
        total_j REAL NOT NULL,
        carbon_g REAL NOT NULL,
        work_flops REAL,
        work_inferences REAL,
        work_tokens REAL,
        report_json TEXT NOT NULL,
        timeline_json TEXT
    );
    CREATE INDEX runs_started ON runs(started_unix_s);
    CREATE TABLE labels (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX labels_kv ON labels(key, value);",
    // v2: runs stored while they run (checkpoints): how far each got, and who writes it.
    "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'finished';
    ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
    ALTER TABLE runs ADD COLUMN owner_start_ticks INTEGER;
    ALTER TABLE runs ADD COLUMN owner_boot_id TEXT;
    ALTER TABLE runs ADD COLUMN checkpoint_unix_s REAL;
    ALTER TABLE runs ADD COLUMN checkpoint_period_s REAL;
    CREATE INDEX runs_status ON runs(status);",
    // v3: the portfolio: periodic carbon records (provider exports, estimates) beside runs,
    // one row per record key, so a month imported twice is recognised, not doubled.
    "CREATE TABLE portfolio (
        provider TEXT NOT NULL,
        account TEXT NOT NULL,
        project TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        month TEXT NOT NULL,
        scope TEXT NOT NULL,
        basis TEXT NOT NULL,
        tier TEXT NOT NULL,
        grams REAL NOT NULL,
        model_version TEXT NOT NULL,
        source_file TEXT NOT NULL,
        source_line INTEGER NOT NULL,
        record_json TEXT NOT NULL,
        PRIMARY KEY (provider, account, project, service, region, month, scope, basis, tier)
    );
    CREATE INDEX portfolio_month ON portfolio(month);",
];

/// Most points of a stored power timeline; longer ones are averaged pairwise down to it.
pub const MAX_TIMELINE_POINTS: usize = 512;

/// Default busy timeout: how long a writer waits for another one, ms.
pub const BUSY_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the history database {path}: {message} (set WATTPRINT_DB to another file, or use --no-store)")]
    Open { path: PathBuf, message: String },
    #[error("the history database {path} is locked by another process (waited {waited_ms} ms); retry, or set WATTPRINT_DB to another file")]
    Locked { path: PathBuf, waited_ms: u64 },
    #[error("the history database {path} is not a valid SQLite database ({message}); move it aside or set WATTPRINT_DB to a new file")]
    Corrupt { path: PathBuf, message: String },
    #[error("the history database {path} has schema version {found}, newer than this wattprint knows ({known}); upgrade wattprint or set WATTPRINT_DB")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the history database {path} cannot grow: no space left on its disk ({message}); free some space, or set WATTPRINT_DB to a file on another disk")]
    Full { path: PathBuf, message: String },
    #[error("history database {path}: {message}")]
    Sql { path: PathBuf, message: String },
    #[error("stored run {id} cannot be read back: {message}")]
    BadRow { id: String, message: String },
    #[error("run {id} not stored: {message} (a number in the report is not finite, NaN or infinite; the history keeps only reports it can read back)")]
    NotFinite { id: String, message: String },
    #[error("portfolio record {key} not stored: {message} (nothing from this import was stored)")]
    BadRecord { key: String, message: String },
}

/// A stored row that cannot be read back; [`Store::list`] skips it, [`Store::check`] lists
/// every one.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    /// The run's id.
    pub id: String,
    /// Why it cannot be decoded.
    pub message: String,
}

/// What [`Store::list`] found: the readable runs, and the rows it skipped.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub runs: Vec<RunReport>,
    pub unreadable: Vec<Unreadable>,
}

/// Where the history lives: `WATTPRINT_DB`, else `$XDG_DATA_HOME/wattprint/history.sqlite`,
/// else `$HOME/.local/share/wattprint/history.sqlite`. `None` when none is set.
pub fn default_path(get: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
    if let Some(p) = nonempty("WATTPRINT_DB") {
        return Some(PathBuf::from(p));
    }
    let data = nonempty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("wattprint").join("history.sqlite"))
}

/// Filters for listing runs. Empty means all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these run ids (or id prefixes of at least 4 characters).
    pub ids: Vec<String>,
    /// Started at or after, Unix s.
    pub since_unix_s: Option<f64>,
    /// Started before, Unix s.
    pub until_unix_s: Option<f64>,
    /// Every `key=value` must match.
    pub labels: Vec<(String, String)>,
    /// The command line contains this text.
    pub command_contains: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
    /// Also runs still `running` (a live run's last checkpoint). Off by default: reports
    /// and comparisons take finished and interrupted runs only; `wattprint runs` shows all.
    pub include_running: bool,
}

/// The process writing a running run's checkpoints, to tell a live run from a dead one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Owner {
    /// Its process id.
    pub pid: u32,
    /// Its start time, clock ticks after boot (`/proc/<pid>/stat` field 22): with the boot
    /// id, tells the owner from a later process that reuses its pid.
    pub start_ticks: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when it started: another value means a reboot.
    pub boot_id: Option<String>,
    /// Host name: pids and boot ids of another host say nothing here.
    pub host: String,
}

/// A checkpoint of a live run: who writes it and how often.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub owner: Owner,
    /// Seconds between checkpoints (the owner's promise: a run silent for much longer than
    /// this is dead even where its pid cannot be checked).
    pub period_s: f64,
    /// When this checkpoint was taken, Unix s.
    pub at_unix_s: f64,
}

/// A stored run with status `running`, as [`Store::settle_interrupted`] shows it to its
/// liveness test.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRun {
    pub id: String,
    pub owner: Owner,
    /// Its last checkpoint, Unix s.
    pub checkpoint_unix_s: f64,
    /// Its checkpoint period, s.
    pub period_s: f64,
}

/// What the reader's machine says now, for [`owner_gone`].
pub struct Here<'a> {
    /// This host's name.
    pub host: String,
    /// This boot's id (`/proc/sys/kernel/random/boot_id`), if readable.
    pub boot_id: Option<String>,
    /// Now, Unix s.
    pub now_unix_s: f64,
    /// The start time (clock ticks after boot) of a process of this host, `None` when no
    /// such process exists.
    pub start_ticks_of: &'a dyn Fn(u32) -> Option<u64>,
}

/// A run whose checkpoint is older than this many periods is dead wherever its owner cannot
/// be checked (another host, no boot id): three missed checkpoints.
pub const STALE_PERIODS: f64 = 3.0;
/// ... and older than this margin, s, so that a very short test period does not mark a run
/// slowed by a busy machine as dead.
pub const STALE_MARGIN_S: f64 = 60.0;

/// Why a running run's owner is gone, or `None` while it may be alive.
///
/// On the owner's host and boot: gone when no process with its pid and start time exists
/// (SIGKILL, OOM killer). On its host after another boot: gone (the machine restarted).
/// Elsewhere (another host, or ids unreadable): gone when its last checkpoint is older
/// than [`STALE_PERIODS`] periods plus [`STALE_MARGIN_S`].
pub fn owner_gone(run: &LiveRun, here: &Here) -> Option<String> {
    let o = &run.owner;
    if o.host == here.host {
        if let (Some(then), Some(now)) = (&o.boot_id, &here.boot_id) {
            if then != now {
                return Some(format!("{} restarted since", o.host));
            }
            return match (here.start_ticks_of)(o.pid) {
                None => Some(format!("its process {} is gone", o.pid)),
                Some(t) if o.start_ticks.is_some_and(|s| s != t) => Some(format!(
                    "its process {} is gone (the pid now belongs to another process)",
                    o.pid
                )),
                _ => None,
            };
        }
    }
    let silent_s = here.now_unix_s - run.checkpoint_unix_s;
    (silent_s > STALE_PERIODS * run.period_s + STALE_MARGIN_S).then(|| {
        format!(
            "no checkpoint for {silent_s:.0} s (every {:.0} s expected)",
            run.period_s
        )
    })
}

/// The result of an insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// A run with this id was already stored (e.g. the same file imported twice); unchanged.
    AlreadyStored,
}

/// An open history database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    busy_ms: u64,
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_timeout(path, BUSY_TIMEOUT_MS)
    }

    /// As [`Store::open`], waiting at most `busy_ms` for other writers.
    pub fn open_with_timeout(path: &Path, busy_ms: u64) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut s = Store {
            conn,
            path: path.to_path_buf(),
            busy_ms,
        };
        s.conn
            .busy_timeout(Duration::from_millis(busy_ms))
            .map_err(|e| to_err(&s.path, s.busy_ms, e))?;
        // Switching a new file to WAL, and the first connections to a WAL file, can meet
        // SQLITE_BUSY without SQLite calling the busy handler (the journal-mode change and
        // WAL recovery take their locks without waiting): retry the whole set-up until the
        // same deadline the busy handler would have used.
        let deadline = std::time::Instant::now() + Duration::from_millis(busy_ms);
        let mut pause = Duration::from_millis(2);
        loop {
            match s.set_up() {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other.map(|()| s),
            }
        }
    }

    /// Opens an existing database for reading only (`runs`, `report` on a read-only file or
    /// directory): no directory, journal-mode change or migration is attempted. A newer
    /// schema is still refused.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let open = |p: &str, flags: OpenFlags| {
            Connection::open_with_flags(p, flags).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let plain = path.to_string_lossy().into_owned();
        let mut s = Store {
            conn: open(&plain, flags)?,
            path: path.to_path_buf(),
            busy_ms: BUSY_TIMEOUT_MS,
        };
        // A WAL database in a directory we cannot write has no shared-memory file to open:
        // read it as immutable (nobody can be writing where we cannot write either).
        if s.schema_version().is_err() {
            let uri = format!(
                "file:{}?immutable=1",
                plain.replace('?', "%3f").replace('#', "%23")
            );
            s.conn = open(&uri, flags | OpenFlags::SQLITE_OPEN_URI)?;
        }
        let found = s.schema_version()?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::TooNew {
                path: s.path.clone(),
                found,
                known,
            });
        }
        Ok(s)
    }

    /// Journal mode, pragmas and migrations of a freshly opened connection.
    fn set_up(&mut self) -> Result<(), StoreError> {
        // WAL lets readers run beside one writer; the mode is persistent in the file, so it
        // is set only when the file is not in WAL yet.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            self.conn
                .query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
                .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        }
        self.conn
            .execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        self.migrate()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies the missing migrations, each in its own immediate transaction (so two
    /// processes opening a new database at once do not both create it).
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
            let v: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
            if v > known {
                return Err(StoreError::TooNew {
                    path: self.path.clone(),
                    found: v,
                    known,
                });
            }
            if v == known {
                return Ok(());
            }
            tx.execute_batch(MIGRATIONS[v as usize])
                .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))
                .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
            tx.commit()
                .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        }
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| to_err(&self.path, self.busy_ms, e))
    }

    /// Stores a finished run (report, columns, labels, bounded timeline) in one
    /// transaction; a run already stored under its id is left unchanged (an import read
    /// twice).
    pub fn insert(&mut self, r: &RunReport) -> Result<Inserted, StoreError> {
        self.write(r, Write::Insert)
    }

    /// Stores a live run's checkpoint with status `running`: inserts its row or rewrites it
    /// (report, columns, labels, timeline) in one transaction. A finished run is never
    /// touched (`AlreadyStored`).
    pub fn checkpoint(&mut self, r: &RunReport, c: &Checkpoint) -> Result<Inserted, StoreError> {
        self.write(r, Write::Checkpoint(c))
    }

    /// Stores a finished run, replacing its checkpoint row when it has one (a run already
    /// finished under this id is left unchanged).
    pub fn finish(&mut self, r: &RunReport) -> Result<Inserted, StoreError> {
        self.write(r, Write::Finish)
    }

    fn write(&mut self, r: &RunReport, how: Write) -> Result<Inserted, StoreError> {
        let mut slim = r.clone();
        slim.status = match how {
            Write::Checkpoint(_) => RunStatus::Running,
            Write::Insert | Write::Finish => r.status,
        };
        let timeline = slim
            .timeline
            .take()
            .map(|t| bound_timeline(&t, MAX_TIMELINE_POINTS));
        let report_json = serde_json::to_string(&slim).map_err(|e| StoreError::Sql {
            path: self.path.clone(),
            message: format!("cannot encode run {}: {e}", r.id),
        })?;
        // JSON has no NaN or infinity: serde writes them as null, which no reader accepts
        // where a number is due. Refuse here rather than store a row that poisons readers.
        if let Err(e) = serde_json::from_str::<RunReport>(&report_json) {
            return Err(StoreError::NotFinite {
                id: r.id.clone(),
                message: e.to_string(),
            });
        }
        let timeline_json = timeline
            .map(|t| serde_json::to_string(&t))
            .transpose()
            .map_err(|e| StoreError::Sql {
                path: self.path.clone(),
                message: format!("cannot encode the timeline of run {}: {e}", r.id),
            })?;
        let mut methods: Vec<&str> = r.energy.domains.iter().map(|d| d.method.as_str()).collect();
        methods.sort_unstable();
        methods.dedup();
        let command = serde_json::to_string(&r.command).unwrap_or_else(|_| "[]".into());
        let gpus = serde_json::to_string(&r.host.gpu_models).unwrap_or_else(|_| "[]".into());
        let ck = match how {
            Write::Checkpoint(c) => Some(c),
            _ => None,
        };
        let on_conflict = match how {
            Write::Insert => "ON CONFLICT(id) DO NOTHING",
            Write::Checkpoint(_) | Write::Finish => {
                "ON CONFLICT(id) DO UPDATE SET started_at = excluded.started_at,
                   started_unix_s = excluded.started_unix_s, duration_s = excluded.duration_s,
                   command = excluded.command, exit_code = excluded.exit_code,
                   host = excluded.host, cpu_model = excluded.cpu_model,
                   gpu_models = excluded.gpu_models, git_commit = excluded.git_commit,
                   zone = excluded.zone, methods = excluded.methods, total_j = excluded.total_j,
                   carbon_g = excluded.carbon_g, work_flops = excluded.work_flops,
                   work_inferences = excluded.work_inferences,
                   work_tokens = excluded.work_tokens, report_json = excluded.report_json,
                   timeline_json = excluded.timeline_json, status = excluded.status,
                   owner_pid = excluded.owner_pid,
                   owner_start_ticks = excluded.owner_start_ticks,
                   owner_boot_id = excluded.owner_boot_id,
                   checkpoint_unix_s = excluded.checkpoint_unix_s,
                   checkpoint_period_s = excluded.checkpoint_period_s
                 WHERE runs.status != 'finished'"
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        let n = tx
            .execute(
                &format!(
                    "INSERT INTO runs (id, started_at, started_unix_s, duration_s, command,
                       exit_code, host, cpu_model, gpu_models, git_commit, zone, methods,
                       total_j, carbon_g, work_flops, work_inferences, work_tokens,
                       report_json, timeline_json, status, owner_pid, owner_start_ticks,
                       owner_boot_id, checkpoint_unix_s, checkpoint_period_s)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                       ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)
                     {on_conflict}"
                ),
                params![
                    r.id,
                    r.started_at,
                    parse_rfc3339_s(&r.started_at),
                    r.duration_s,
                    command,
                    r.exit_code,
                    r.host.hostname,
                    r.host.cpu_model,
                    gpus,
                    r.host.git_commit,
                    r.carbon.zone,
                    methods.join(","),
                    r.energy.total_j,
                    r.carbon.total_g,
                    r.work.flops,
                    r.work.inferences,
                    r.work.tokens,
                    report_json,
                    timeline_json,
                    slim.status.as_str(),
                    ck.map(|c| c.owner.pid),
                    ck.and_then(|c| c.owner.start_ticks.map(|t| t as i64)),
                    ck.and_then(|c| c.owner.boot_id.clone()),
                    ck.map(|c| c.at_unix_s),
                    ck.map(|c| c.period_s),
                ],
            )
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        if n == 0 {
            return Ok(Inserted::AlreadyStored);
        }
        tx.execute("DELETE FROM labels WHERE run_id = ?1", [&r.id])
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        for (k, v) in &r.labels {
            tx.execute(
                "INSERT INTO labels (run_id, key, value) VALUES (?1, ?2, ?3)",
                params![r.id, k, v],
            )
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        }
        tx.commit()
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        Ok(Inserted::New)
    }

    /// Runs with status `running` whose writer `gone` says is gone (a reason) become
    /// `interrupted`, in one transaction: status column and report, with a warning naming
    /// the reason and how far the run got. Returns their ids.
    pub fn settle_interrupted(
        &mut self,
        gone: impl Fn(&LiveRun) -> Option<String>,
    ) -> Result<Vec<String>, StoreError> {
        let err = |e| to_err(&self.path, self.busy_ms, e);
        // Most openings find no live run: they take no write lock.
        let any: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE status = 'running')",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if !any {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let live: Vec<(LiveRun, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, owner_pid, owner_start_ticks, owner_boot_id, host,
                       checkpoint_unix_s, checkpoint_period_s, report_json
                     FROM runs WHERE status = 'running'",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        LiveRun {
                            id: r.get(0)?,
                            owner: Owner {
                                pid: r.get::<_, Option<u32>>(1)?.unwrap_or(0),
                                start_ticks: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                                boot_id: r.get(3)?,
                                host: r.get(4)?,
                            },
                            checkpoint_unix_s: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                            period_s: r.get::<_, Option<f64>>(6)?.unwrap_or(0.0),
                        },
                        r.get(7)?,
                    ))
                })
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let mut settled = Vec::new();
        for (run, json) in live {
            let Some(why) = gone(&run) else { continue };
            let mut rep: RunReport =
                serde_json::from_str(&json).map_err(|e| StoreError::BadRow {
                    id: run.id.clone(),
                    message: e.to_string(),
                })?;
            rep.status = RunStatus::Interrupted;
            rep.warnings.push(interrupted_warning(&rep, &why));
            let json = serde_json::to_string(&rep).map_err(|e| StoreError::BadRow {
                id: run.id.clone(),
                message: e.to_string(),
            })?;
            tx.execute(
                "UPDATE runs SET status = 'interrupted', report_json = ?2
                 WHERE id = ?1 AND status = 'running'",
                params![run.id, json],
            )
            .map_err(err)?;
            settled.push(run.id);
        }
        tx.commit().map_err(err)?;
        Ok(settled)
    }

    /// One run by exact id.
    pub fn get(&self, id: &str) -> Result<Option<RunReport>, StoreError> {
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT id, report_json, timeline_json FROM runs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        row.map(|(id, j, t)| decode(&id, &j, t.as_deref()))
            .transpose()
    }

    /// Runs matching the filter, newest first. A row that cannot be read back is skipped
    /// and named in [`Listing::unreadable`], never an error for the whole history.
    pub fn list(&self, f: &Filter) -> Result<Listing, StoreError> {
        let mut sql = String::from("SELECT id, report_json, timeline_json FROM runs r WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        use rusqlite::types::Value;
        if !f.ids.is_empty() {
            let mut ors = Vec::new();
            for id in &f.ids {
                args.push(Value::Text(id.clone()));
                let exact = args.len();
                if id.len() >= 4 {
                    args.push(Value::Text(format!("{}%", like_escape(id))));
                    ors.push(format!(
                        "r.id = ?{exact} OR r.id LIKE ?{} ESCAPE '\\'",
                        args.len()
                    ));
                } else {
                    ors.push(format!("r.id = ?{exact}"));
                }
            }
            sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
        }
        if let Some(s) = f.since_unix_s {
            args.push(Value::Real(s));
            sql.push_str(&format!(" AND r.started_unix_s >= ?{}", args.len()));
        }
        if let Some(u) = f.until_unix_s {
            args.push(Value::Real(u));
            sql.push_str(&format!(" AND r.started_unix_s < ?{}", args.len()));
        }
        for (k, v) in &f.labels {
            args.push(Value::Text(k.clone()));
            args.push(Value::Text(v.clone()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM labels l WHERE l.run_id = r.id AND l.key = ?{} AND l.value = ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        if !f.include_running {
            sql.push_str(" AND r.status != 'running'");
        }
        if let Some(c) = &f.command_contains {
            args.push(Value::Text(format!("%{}%", like_escape(c))));
            sql.push_str(&format!(" AND r.command LIKE ?{} ESCAPE '\\'", args.len()));
        }
        sql.push_str(" ORDER BY r.started_unix_s DESC, r.id DESC");
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        let mut out = Listing::default();
        for row in rows {
            let (id, j, t) = row.map_err(|e| to_err(&self.path, self.busy_ms, e))?;
            match decode(&id, &j, t.as_deref()) {
                Ok(r) => out.runs.push(r),
                Err(e) => out.unreadable.push(Unreadable {
                    id,
                    message: e.to_string(),
                }),
            }
        }
        Ok(out)
    }

    /// Every stored row that cannot be read back (`wattprint runs --check`).
    pub fn check(&self) -> Result<Vec<Unreadable>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, report_json, timeline_json FROM runs ORDER BY started_unix_s")
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| to_err(&self.path, self.busy_ms, e))?;
        let mut bad = Vec::new();
        for row in rows {
            let (id, j, t) = row.map_err(|e| to_err(&self.path, self.busy_ms, e))?;
            let decoded = match j {
                Some(j) => decode(&id, &j, t.as_deref()).map(|_| ()),
                None => Err(StoreError::BadRow {
                    id: id.clone(),
                    message: "no report".into(),
                }),
            };
            if let Err(e) = decoded {
                bad.push(Unreadable {
                    id,
                    message: e.to_string(),
                });
            }
        }
        Ok(bad)
    }

    /// Number of stored runs.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| to_err(&self.path, self.busy_ms, e))
    }
}

/// How [`Store::write`] treats a run already stored under the same id.
#[derive(Clone, Copy)]
enum Write<'a> {
    /// Keep the stored one.
    Insert,
    /// Replace it unless finished; the new row is `running`.
    Checkpoint(&'a Checkpoint),
    /// Replace it unless finished.
    Finish,
}

/// The label an interrupted run carries in its warnings.
fn interrupted_warning(r: &RunReport, why: &str) -> String {
    format!(
        "interrupted: the wrapper stopped before the run ended ({why}: killed, out of memory \
         or the machine restarted); energy, carbon and duration are up to its last \
         checkpoint, {:.0} s into the run, and the rest is missing",
        r.duration_s
    )
}

/// Maps a SQLite error to what the caller can do about it.
fn to_err(path: &Path, busy_ms: u64, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            path: path.to_path_buf(),
            waited_ms: busy_ms,
        },
        Some(ErrorCode::DiskFull) => StoreError::Full {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
        _ => StoreError::Sql {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn decode(id: &str, json: &str, timeline: Option<&str>) -> Result<RunReport, StoreError> {
    let bad = |e: serde_json::Error| StoreError::BadRow {
        id: id.to_string(),
        message: e.to_string(),
    };
    let mut r: RunReport = serde_json::from_str(json).map_err(bad)?;
    if let Some(t) = timeline {
        r.timeline = Some(serde_json::from_str(t).map_err(bad)?);
    }
    Ok(r)
}

/// Averages neighbouring points pairwise until at most `max_points` remain (energy-preserving
/// for evenly spaced points; the span is kept).
pub fn bound_timeline(t: &TimelineReport, max_points: usize) -> TimelineReport {
    let mut t = t.clone();
    let max_points = max_points.max(2);
    while t.t_s.len() > max_points {
        let pairs = |v: &[f64]| -> Vec<f64> {
            v.chunks(2)
                .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                .collect()
        };
        t.t_s = pairs(&t.t_s);
        for s in &mut t.series {
            s.watts = pairs(&s.watts);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::report::{DomainEnergy, PowerSeries};
    use wattprint_core::{DomainKind, Method};

    fn run(id: &str, started: &str, j: f64) -> RunReport {
        let mut r = RunReport::new(id.into());
        r.started_at = started.into();
        r.duration_s = 2.0;
        r.command = vec!["python".into(), "train.py".into()];
        r.energy.total_j = j;
        r.energy.domains.push(DomainEnergy {
            name: "package-0".into(),
            kind: DomainKind::CpuPackage,
            joules: j,
            source: wattprint_core::SensorSource::RaplPowercap,
            method: Method::Counter,
            counted_in_total: true,
            device: None,
            avg_power_w: None,
            joules_low: None,
            joules_high: None,
            range_basis: None,
        });
        r.carbon.zone = "FR".into();
        r.carbon.total_g = j / 3.6e6 * 50.0;
        r
    }

    fn tmp() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/dir/history.sqlite");
        (d, p)
    }

    #[test]
    fn a_stored_run_reads_back_equal_with_its_labels() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        let mut r = run("r1", "2026-11-29T10:00:00Z", 1234.5);
        r.labels.insert("model".into(), "bert".into());
        r.timeline = Some(TimelineReport {
            t_s: vec![0.5, 1.5],
            series: vec![PowerSeries {
                domain: "package-0".into(),
                watts: vec![600.0, 634.5],
            }],
        });
        assert_eq!(s.insert(&r).unwrap(), Inserted::New);
        assert_eq!(s.insert(&r).unwrap(), Inserted::AlreadyStored);
        assert_eq!(s.get("r1").unwrap(), Some(r.clone()));
        assert_eq!(s.get("nope").unwrap(), None);
        assert_eq!(s.count().unwrap(), 1);
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let wal: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(wal, "wal");
    }

    #[test]
    fn filters_select_by_period_label_command_and_id_prefix() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        let mut a = run("run-aaaa1", "2025-12-31T23:59:59Z", 1.0);
        a.labels.insert("team".into(), "x".into());
        let b = run("run-bbbb2", "2026-01-01T00:00:00+00:00", 2.0);
        let mut c = run("run-cccc3", "2026-06-01T12:00:00+02:00", 3.0);
        c.command = vec!["serve".into()];
        for r in [&a, &b, &c] {
            s.insert(r).unwrap();
        }
        let ids = |f: Filter| -> Vec<String> {
            s.list(&f).unwrap().runs.into_iter().map(|r| r.id).collect()
        };
        assert_eq!(
            ids(Filter::default()),
            vec!["run-cccc3", "run-bbbb2", "run-aaaa1"]
        );
        assert_eq!(
            ids(Filter {
                since_unix_s: parse_rfc3339_s("2026-01-01"),
                until_unix_s: parse_rfc3339_s("2027-01-01"),
                ..Default::default()
            }),
            vec!["run-cccc3", "run-bbbb2"]
        );
        assert_eq!(
            ids(Filter {
                labels: vec![("team".into(), "x".into())],
                ..Default::default()
            }),
            vec!["run-aaaa1"]
        );
        assert_eq!(
            ids(Filter {
                command_contains: Some("serv".into()),
                ..Default::default()
            }),
            vec!["run-cccc3"]
        );
        assert_eq!(
            ids(Filter {
                ids: vec!["run-bbbb".into()],
                ..Default::default()
            }),
            vec!["run-bbbb2"]
        );
        assert_eq!(
            ids(Filter {
                limit: Some(1),
                ..Default::default()
            }),
            vec!["run-cccc3"]
        );
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let (_d, p) = tmp();
        // Eight connections (as eight `wattprint run`s would open) inserting at once, the
        // first of them racing to create the schema too.
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut s = Store::open(&p).unwrap();
                    for i in 0..25 {
                        let r = run(&format!("t{t}-{i}"), "2026-11-29T10:00:00Z", f64::from(i));
                        assert_eq!(s.insert(&r).unwrap(), Inserted::New);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = Store::open(&p).unwrap();
        assert_eq!(s.count().unwrap(), 200);
    }

    #[test]
    fn an_interrupted_write_leaves_nothing_half_stored() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        {
            // A writer that dies after inserting the run row but before its labels commit.
            let tx = s.conn.transaction().unwrap();
            tx.execute(
                "INSERT INTO runs (id, started_at, duration_s, command, host, gpu_models, zone, methods, total_j, carbon_g, report_json) VALUES ('half', 'x', 1, '[]', '', '[]', '', '', 1, 0, '{}')",
                [],
            )
            .unwrap();
            // dropped without commit: rolled back, as SQLite does for a killed process.
        }
        assert_eq!(s.count().unwrap(), 0);
        assert!(s.insert(&run("ok", "2026-11-29T10:00:00Z", 1.0)).is_ok());
    }

    #[test]
    fn a_locked_database_gives_a_clear_error() {
        let (_d, p) = tmp();
        let mut holder = Store::open(&p).unwrap();
        let tx = holder
            .conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .unwrap();
        let mut other = Store::open_with_timeout(&p, 50);
        // Opening may already fail on the migration check; inserting surely does.
        let e = match other.as_mut() {
            Ok(s) => s
                .insert(&run("x", "2026-11-29T10:00:00Z", 1.0))
                .unwrap_err(),
            Err(_) => other.err().unwrap(),
        };
        assert!(matches!(e, StoreError::Locked { .. }), "{e}");
        assert!(e.to_string().contains("locked by another process"), "{e}");
        drop(tx);
    }

    #[test]
    fn a_corrupt_file_gives_a_clear_error() {
        let (_d, p) = tmp();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
        let e = Store::open(&p).err().unwrap();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("move it aside"), "{e}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (_d, p) = tmp();
        let s = Store::open(&p).unwrap();
        s.conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(s);
        let e = Store::open(&p).err().unwrap();
        assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    }

    fn owner(pid: u32) -> Owner {
        Owner {
            pid,
            start_ticks: Some(777),
            boot_id: Some("boot-a".into()),
            host: "node1".into(),
        }
    }

    fn ck(at: f64) -> Checkpoint {
        Checkpoint {
            owner: owner(4242),
            period_s: 300.0,
            at_unix_s: at,
        }
    }

    #[test]
    fn a_version_1_history_upgrades_and_keeps_its_runs_finished() {
        let (_d, p) = tmp();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        {
            // A database as the previous wattprint left it: schema v1 and one run.
            let c = Connection::open(&p).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute_batch("PRAGMA user_version = 1").unwrap();
            let mut old = run("old", "2026-01-01T00:00:00Z", 5.0);
            old.labels.insert("team".into(), "x".into());
            let json = serde_json::to_string(&old)
                .unwrap()
                .replace(",\"status\":\"finished\"", "");
            assert!(!json.contains("status"));
            c.execute(
                "INSERT INTO runs (id, started_at, started_unix_s, duration_s, command, host, gpu_models, zone, methods, total_j, carbon_g, report_json) VALUES ('old', '2026-01-01T00:00:00Z', 1767225600, 2, '[]', '', '[]', 'FR', 'counter', 5, 0, ?1)",
                [json],
            )
            .unwrap();
        }
        let mut s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let status: String = s
            .conn
            .query_row("SELECT status FROM runs WHERE id = 'old'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(status, "finished");
        let listed = s.list(&Filter::default()).unwrap().runs;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, RunStatus::Finished);
        assert_eq!(listed[0].energy.total_j, 5.0);
        assert!(s
            .settle_interrupted(|_| Some("x".into()))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn checkpoints_rewrite_one_row_and_the_end_replaces_it() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        let mut r = run("long", "2026-11-29T10:00:00Z", 100.0);
        r.labels.insert("phase".into(), "a".into());
        assert_eq!(s.checkpoint(&r, &ck(1.0)).unwrap(), Inserted::New);
        r.energy.total_j = 250.0;
        r.labels.clear();
        r.labels.insert("phase".into(), "b".into());
        assert_eq!(s.checkpoint(&r, &ck(2.0)).unwrap(), Inserted::New);
        assert_eq!(s.count().unwrap(), 1);
        let got = s.get("long").unwrap().unwrap();
        assert_eq!(
            (got.status, got.energy.total_j),
            (RunStatus::Running, 250.0)
        );
        assert_eq!(got.labels.get("phase").map(String::as_str), Some("b"));
        // Reports skip live runs; `wattprint runs` asks for them.
        assert!(s.list(&Filter::default()).unwrap().runs.is_empty());
        let all = Filter {
            include_running: true,
            ..Default::default()
        };
        assert_eq!(s.list(&all).unwrap().runs.len(), 1);
        r.energy.total_j = 300.0;
        assert_eq!(s.finish(&r).unwrap(), Inserted::New);
        let got = s.get("long").unwrap().unwrap();
        assert_eq!(
            (got.status, got.energy.total_j),
            (RunStatus::Finished, 300.0)
        );
        // A late checkpoint never undoes the end.
        r.energy.total_j = 1.0;
        assert_eq!(s.checkpoint(&r, &ck(3.0)).unwrap(), Inserted::AlreadyStored);
        assert_eq!(s.finish(&r).unwrap(), Inserted::AlreadyStored);
        assert_eq!(s.get("long").unwrap().unwrap().energy.total_j, 300.0);
        assert!(s
            .settle_interrupted(|_| Some("x".into()))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_dead_writers_run_becomes_interrupted_with_its_last_checkpoint() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        let mut r = run("dead", "2026-11-29T10:00:00Z", 120.0);
        r.duration_s = 600.0;
        s.checkpoint(&r, &ck(10.0)).unwrap();
        s.checkpoint(&run("alive", "2026-11-29T11:00:00Z", 7.0), &ck(10.0))
            .unwrap();
        let settled = s
            .settle_interrupted(|l| (l.id == "dead").then(|| format!("pid {} gone", l.owner.pid)))
            .unwrap();
        assert_eq!(settled, vec!["dead"]);
        let got = s.get("dead").unwrap().unwrap();
        assert_eq!(got.status, RunStatus::Interrupted);
        assert_eq!(got.energy.total_j, 120.0);
        let w = got.warnings.last().unwrap();
        assert!(
            w.starts_with("interrupted:") && w.contains("pid 4242 gone"),
            "{w}"
        );
        assert!(w.contains("600 s into the run"), "{w}");
        // Interrupted runs are in reports, labelled; settled once only.
        let ids: Vec<String> = s
            .list(&Filter::default())
            .unwrap()
            .runs
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec!["dead"]);
        assert!(s.settle_interrupted(|_| Some("x".into())).unwrap() == vec!["alive"]);
        assert_eq!(s.get("dead").unwrap().unwrap().warnings.len(), 1);
    }

    #[test]
    fn the_owner_is_gone_when_its_process_or_boot_is_or_it_fell_silent() {
        let alive = |pid: u32| (pid == 4242).then_some(777);
        let here = |host: &str, boot: Option<&str>, now: f64| Here {
            host: host.into(),
            boot_id: boot.map(str::to_string),
            now_unix_s: now,
            start_ticks_of: &alive,
        };
        let live = |pid: u32, start: Option<u64>| LiveRun {
            id: "r".into(),
            owner: Owner {
                pid,
                start_ticks: start,
                ..owner(pid)
            },
            checkpoint_unix_s: 1000.0,
            period_s: 300.0,
        };
        let h = here("node1", Some("boot-a"), 1e9);
        assert_eq!(owner_gone(&live(4242, Some(777)), &h), None);
        assert!(owner_gone(&live(4243, Some(777)), &h)
            .unwrap()
            .contains("process 4243 is gone"));
        assert!(owner_gone(&live(4242, Some(778)), &h)
            .unwrap()
            .contains("another process"));
        let rebooted = here("node1", Some("boot-b"), 1001.0);
        assert!(owner_gone(&live(4242, Some(777)), &rebooted)
            .unwrap()
            .contains("restarted"));
        // Another host: only silence tells, after 3 periods plus the margin.
        let limit = 1000.0 + STALE_PERIODS * 300.0 + STALE_MARGIN_S;
        assert_eq!(
            owner_gone(
                &live(4242, Some(777)),
                &here("node2", Some("x"), limit - 1.0)
            ),
            None
        );
        assert!(owner_gone(
            &live(4242, Some(777)),
            &here("node2", Some("x"), limit + 1.0)
        )
        .unwrap()
        .contains("no checkpoint for"));
        // No boot id here: the same.
        assert_eq!(
            owner_gone(&live(1, Some(777)), &here("node1", None, limit - 1.0)),
            None
        );
    }

    #[test]
    fn default_path_prefers_the_env_seam_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_path(env(&[("WATTPRINT_DB", "/x.db"), ("HOME", "/h")])),
            Some(PathBuf::from("/x.db"))
        );
        assert_eq!(
            default_path(env(&[("XDG_DATA_HOME", "/d"), ("HOME", "/h")])),
            Some(PathBuf::from("/d/wattprint/history.sqlite"))
        );
        assert_eq!(
            default_path(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/share/wattprint/history.sqlite"))
        );
        assert_eq!(default_path(env(&[])), None);
    }

    #[test]
    fn long_timelines_are_bounded_and_keep_their_mean() {
        let n = 2000;
        let t = TimelineReport {
            t_s: (0..n).map(|i| i as f64 + 0.5).collect(),
            series: vec![PowerSeries {
                domain: "d".into(),
                watts: (0..n).map(|i| (i % 7) as f64).collect(),
            }],
        };
        let b = bound_timeline(&t, MAX_TIMELINE_POINTS);
        assert!(b.t_s.len() <= MAX_TIMELINE_POINTS);
        assert_eq!(b.t_s.len(), b.series[0].watts.len());
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean(&b.series[0].watts) - mean(&t.series[0].watts)).abs() < 1e-9);
    }

    #[test]
    fn a_non_finite_number_is_refused_and_nothing_is_stored() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        let mut r = run("nan-run", "2026-03-01T10:00:00Z", 100.0);
        r.carbon.total_g = f64::INFINITY;
        let e = s.insert(&r).unwrap_err();
        assert!(matches!(e, StoreError::NotFinite { .. }), "{e}");
        assert!(e.to_string().contains("nan-run"), "{e}");
        assert_eq!(s.count().unwrap(), 0);
    }

    #[test]
    fn an_unreadable_row_is_skipped_named_and_listed_by_check() {
        let (_d, p) = tmp();
        let mut s = Store::open(&p).unwrap();
        for (id, t) in [
            ("good-1", "2026-03-01T10:00:00Z"),
            ("bad-2", "2026-03-02T10:00:00Z"),
            ("good-3", "2026-03-03T10:00:00Z"),
        ] {
            s.insert(&run(id, t, 100.0)).unwrap();
        }
        // What an older wattprint could store: a carbon total written as null.
        s.conn
            .execute(
                "UPDATE runs SET report_json = replace(report_json, '\"total_g\":', '\"total_g\":null,\"x\":') WHERE id = 'bad-2'",
                [],
            )
            .unwrap();
        let l = s.list(&Filter::default()).unwrap();
        let ids: Vec<&str> = l.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["good-3", "good-1"]);
        assert_eq!(l.unreadable.len(), 1);
        assert_eq!(l.unreadable[0].id, "bad-2");
        let bad = s.check().unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].id, "bad-2");
        assert!(bad[0].message.contains("bad-2"), "{}", bad[0].message);
    }

    #[test]
    fn a_read_only_history_is_readable() {
        use std::os::unix::fs::PermissionsExt;
        let (d, p) = tmp();
        {
            let mut s = Store::open(&p).unwrap();
            s.insert(&run("ro-1", "2026-03-01T10:00:00Z", 100.0))
                .unwrap();
        }
        let ro = std::fs::Permissions::from_mode(0o555);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::set_permissions(d.path(), ro).unwrap();
        let s = Store::open_read_only(&p);
        // Put the permissions back before asserting, so the temporary directory is removed.
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let l = s.unwrap().list(&Filter::default()).unwrap();
        assert_eq!(l.runs.len(), 1);
        assert_eq!(l.runs[0].id, "ro-1");
    }
}
