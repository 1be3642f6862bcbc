//! `wattprint runs`: list stored runs. Also the history helpers the other subcommands share
//! (opening the database, selecting runs by id, file, label and period).

use crate::exit::BadInput;
use std::io::Write;
use std::path::{Path, PathBuf};
use wattprint_core::report::RunReport;
use wattprint_core::wallclock::parse_rfc3339_s;
use wattprint_store::{Filter, Inserted, Store};

/// Run selection shared by `runs`, `report` and `compare`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Only runs started in this period: a year (`2026`) or a month (`2026-03`).
    #[arg(long, value_name = "YYYY[-MM]")]
    pub period: Option<String>,
    /// Only runs started at or after this date or time (RFC 3339, or YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only runs started before this date or time.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only runs with this label (repeatable).
    #[arg(long = "label", value_name = "K=V", value_parser = crate::cmd::run::parse_label)]
    pub labels: Vec<(String, String)>,
    /// Only runs whose command contains this text.
    #[arg(long = "command", value_name = "TEXT")]
    pub command: Option<String>,
}

/// Options of `wattprint runs`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub select: SelectArgs,
    /// At most this many runs, newest first (0: all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the runs as a JSON array of `wattprint.run/v1` reports.
    #[arg(long)]
    pub json: bool,
    /// List the stored rows that cannot be read back (exit 1 when there is any).
    #[arg(long)]
    pub check: bool,
}

/// The history database path (`WATTPRINT_DB`, else the XDG data directory).
pub fn db_path() -> anyhow::Result<PathBuf> {
    wattprint_store::default_path(|k| std::env::var_os(k)).ok_or_else(|| {
        BadInput("no history database: set WATTPRINT_DB, XDG_DATA_HOME or HOME".into()).into()
    })
}

/// Opens the history for reading or writing; runs whose writer died since are settled as
/// `interrupted` first (see `checkpoint::settle`).
pub fn open_store() -> anyhow::Result<Store> {
    let mut s = Store::open(&db_path()?)?;
    let procfs = wattprint_engine::SensorConfig::seams_from_env().procfs_root;
    crate::checkpoint::settle(&mut s, &procfs);
    Ok(s)
}

/// Opens the history for reading: read-write when possible, else read-only (a database or
/// directory this user cannot write is still listed and reported).
pub fn open_store_for_reading() -> anyhow::Result<Store> {
    let path = db_path()?;
    match open_store() {
        Ok(s) => Ok(s),
        Err(e)
            if matches!(
                e.downcast_ref::<wattprint_store::StoreError>(),
                Some(
                    wattprint_store::StoreError::TooNew { .. }
                        | wattprint_store::StoreError::Corrupt { .. }
                )
            ) =>
        {
            Err(e)
        }
        Err(e) if path.exists() => {
            Store::open_read_only(&path).map_err(|ro| anyhow::anyhow!("{e} (and read-only: {ro})"))
        }
        Err(e) => Err(e),
    }
}

/// Runs matching `f`, newest first; a stored row that cannot be read back is skipped with a
/// warning naming its run, never an error for the whole history.
pub fn list_or_skip(s: &Store, f: &Filter) -> anyhow::Result<Vec<RunReport>> {
    let l = s.list(f)?;
    for u in &l.unreadable {
        eprintln!(
            "wattprint: warning: stored run {} skipped: {} (`wattprint runs --check` lists every such row)",
            crate::common::escape(&u.id),
            crate::common::escape(&u.message)
        );
    }
    Ok(l.runs)
}

/// How long a write waits for a locked history, ms: `WATTPRINT_DB_TIMEOUT_MS`, else
/// [`wattprint_store::BUSY_TIMEOUT_MS`].
fn busy_ms() -> u64 {
    std::env::var("WATTPRINT_DB_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(wattprint_store::BUSY_TIMEOUT_MS)
}

/// Where runs wait when the history stayed locked: a directory beside the database.
fn spool_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".spool");
    db.with_file_name(name)
}

/// Spooled runs stored per call at most (the rest wait for the next run).
const MAX_SPOOL_DRAIN: usize = 100;

/// Store the runs a locked history made wait (each removed once stored).
fn drain_spool(s: &mut Store, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten().take(MAX_SPOOL_DRAIN) {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Ok(text) = crate::common::read_bounded(&p, 64 << 20) else {
            continue;
        };
        match serde_json::from_str::<RunReport>(&text).map(|r| s.finish(&r)) {
            Ok(Ok(_)) => {
                let _ = std::fs::remove_file(&p);
            }
            Ok(Err(e)) => eprintln!(
                "wattprint: warning: spooled run {} not stored yet: {}",
                crate::common::escape(&p.display().to_string()),
                crate::common::escape(&e.to_string())
            ),
            Err(e) => eprintln!(
                "wattprint: warning: spooled run {} cannot be read ({e}): move it aside",
                crate::common::escape(&p.display().to_string())
            ),
        }
    }
    let _ = std::fs::remove_dir(dir); // only when empty
}

/// Stores a finished run, replacing its checkpoint; a database problem is a warning on
/// stderr, never a lost run (the caller has already written any -o/--json output). When the
/// history stays locked past the wait, the run is kept in a spool directory beside the
/// database and stored by the next run; the warning says where.
pub fn store_or_warn(r: &RunReport) {
    store_all_or_warn(std::slice::from_ref(r), |_, _| {});
}

/// [`store_or_warn`] for several runs (`import`) in one opening of the history:
/// `stored(run, how)` is called for each run the history took. When the history stays
/// locked past the wait, every run is kept in the spool beside the database.
pub fn store_all_or_warn(runs: &[RunReport], mut stored: impl FnMut(&RunReport, Inserted)) {
    use crate::common::escape;
    let db = match db_path() {
        Ok(p) => p,
        Err(e) => {
            for r in runs {
                eprintln!(
                    "wattprint: warning: run {} not stored in the history: {e}",
                    escape(&r.id)
                );
            }
            return;
        }
    };
    let spool = spool_dir(&db);
    let procfs = wattprint_engine::SensorConfig::seams_from_env().procfs_root;
    let mut s = match Store::open_with_timeout(&db, busy_ms()) {
        Ok(s) => s,
        Err(e) => {
            for r in runs {
                not_stored(r, &e, &spool);
            }
            return;
        }
    };
    crate::checkpoint::settle(&mut s, &procfs);
    let mut any = false;
    for r in runs {
        match s.finish(r) {
            Ok(how) => {
                any = true;
                stored(r, how);
            }
            Err(e) => not_stored(r, &e, &spool),
        }
    }
    if any {
        drain_spool(&mut s, &spool);
    }
}

/// Warns that `r` is not in the history; a locked history keeps it in the spool.
fn not_stored(r: &RunReport, e: &wattprint_store::StoreError, spool: &Path) {
    use crate::common::escape;
    let id = escape(&r.id);
    // A locked history, or one whose disk is full (a small spool file may still fit where
    // SQLite's pages do not), keeps the run in the spool; other failures only warn.
    if !matches!(
        e,
        wattprint_store::StoreError::Locked { .. } | wattprint_store::StoreError::Full { .. }
    ) {
        eprintln!(
            "wattprint: warning: run {id} not stored in the history: {}",
            escape(&e.to_string())
        );
        return;
    }
    let kept = std::fs::create_dir_all(spool)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let p = spool.join(format!("{}.json", spool_name(&r.id)));
            crate::common::write_atomic(&p, serde_json::to_string(r)?.as_bytes())?;
            Ok(p)
        });
    match kept {
        Ok(p) => eprintln!(
            "wattprint: warning: run {id} not stored yet: {}; kept in {} and stored by the next run",
            escape(&e.to_string()),
            escape(&p.display().to_string())
        ),
        Err(k) => eprintln!(
            "wattprint: warning: run {id} not stored in the history: {} (and not kept in {}: {})",
            escape(&e.to_string()),
            escape(&spool.display().to_string()),
            escape(&k.to_string())
        ),
    }
}

/// A run id as a file name: imported ids come from file names and may hold `/` or control
/// characters; anything but `[A-Za-z0-9._-]` becomes `_`, and a changed id gets its hash.
fn spool_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let t: String = s.trim_start_matches('.').chars().take(120).collect();
    if t == id {
        return t;
    }
    // Changed: a hash of the id keeps two ids that map to the same name apart (FNV-1a).
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{t}-{h:016x}")
}

/// `[since, until)` in Unix seconds from --period/--since/--until.
pub fn period_bounds(a: &SelectArgs) -> anyhow::Result<(Option<f64>, Option<f64>, String)> {
    let date = |flag: &str, s: &str| {
        parse_rfc3339_s(s).ok_or_else(|| {
            anyhow::Error::from(BadInput(format!(
                "--{flag} {s}: not a calendar date; use YYYY-MM-DD or RFC 3339 (2026-03-01T00:00:00Z)"
            )))
        })
    };
    if let Some(p) = &a.period {
        if a.since.is_some() || a.until.is_some() {
            return Err(BadInput("give --period or --since/--until, not both".into()).into());
        }
        let bad = || {
            BadInput(format!(
                "--period {p}: use a year (2026) or a month (2026-03)"
            ))
        };
        let (y, m) = match p.split_once('-') {
            Some((y, m)) => (y, Some(m)),
            None => (p.as_str(), None),
        };
        let y: i32 = y.parse().map_err(|_| bad())?;
        if !(1970..=9999).contains(&y) {
            return Err(bad().into());
        }
        let (from, to) = match m {
            None => (format!("{y:04}-01-01"), format!("{:04}-01-01", y + 1)),
            Some(m) => {
                let m: u32 = m.parse().map_err(|_| bad())?;
                if !(1..=12).contains(&m) {
                    return Err(bad().into());
                }
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (format!("{y:04}-{m:02}-01"), format!("{ny:04}-{nm:02}-01"))
            }
        };
        return Ok((
            Some(date("period", &from)?),
            Some(date("period", &to)?),
            p.clone(),
        ));
    }
    let since = a.since.as_deref().map(|s| date("since", s)).transpose()?;
    let until = a.until.as_deref().map(|s| date("until", s)).transpose()?;
    let label = match (&a.since, &a.until) {
        (None, None) => "all stored runs".to_string(),
        (s, u) => format!(
            "{} to {}",
            s.as_deref().unwrap_or("the beginning"),
            u.as_deref().unwrap_or("now")
        ),
    };
    Ok((since, until, label))
}

/// A store filter from the selection options.
pub fn filter(a: &SelectArgs, limit: Option<usize>) -> anyhow::Result<(Filter, String)> {
    let (since, until, label) = period_bounds(a)?;
    Ok((
        Filter {
            since_unix_s: since,
            until_unix_s: until,
            labels: a.labels.clone(),
            command_contains: a.command.clone(),
            limit,
            ..Default::default()
        },
        label,
    ))
}

/// Reads run reports from a JSON file (one report or an array: `run -o`, `import --json`), or
/// from a file `wattprint import` reads.
pub fn load_file(p: &Path) -> anyhow::Result<Vec<RunReport>> {
    // JSON needs the whole text; an import file is read as `import` reads it.
    let text = crate::common::read_bounded(p, crate::cmd::import::MAX_IMPORT_BYTES)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", p.display())))?;
    let t = text.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        // Not JSON: an importable trace (nvidia-smi, CodeCarbon, wattprint CSV), scored as is.
        if let Some(f) = wattprint_report::import::detect_format(&text) {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            return wattprint_report::import::import(&text, f, &name.unwrap_or_default())
                .map_err(|e| BadInput(format!("{}: {e}", p.display())).into());
        }
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BadInput(format!(
            "{}: not JSON (line {}, column {}): {e}",
            p.display(),
            e.line(),
            e.column()
        ))
    })?;
    let parse = |v: serde_json::Value| {
        serde_json::from_value::<RunReport>(v).map_err(|e| {
            anyhow::Error::from(BadInput(format!(
                "{}: not a wattprint.run/v1 report: {e}",
                p.display()
            )))
        })
    };
    match v {
        serde_json::Value::Array(a) => a.into_iter().map(parse).collect(),
        o => Ok(vec![parse(o)?]),
    }
}

/// Resolves one selector: an existing `.json` file, `bench:ID/N` (the successful runs of group N
/// of a `wattprint bench`), `label:K=V` (every run with that label),
/// or a run id (or a unique id prefix of at least 4 characters).
pub fn resolve(sel: &str, store: &mut Option<Store>) -> anyhow::Result<Vec<RunReport>> {
    let p = Path::new(sel);
    if p.is_file() {
        return load_file(p);
    }
    if store.is_none() {
        *store = Some(open_store_for_reading()?);
    }
    let Some(s) = store.as_ref() else {
        return Ok(vec![]);
    };
    if let Some(spec) = sel.strip_prefix("bench:") {
        // `bench:ID/N`: group N of a `wattprint bench` (its runs carry both labels).
        let (id, group) = match spec.split_once('/') {
            Some((id, n)) if !id.is_empty() && n.parse::<usize>().is_ok_and(|n| n >= 1) => (id, n),
            _ => {
                return Err(BadInput(format!(
                    "`{sel}`: write a bench group as bench:ID/N (N from 1, as `wattprint \
                     bench` numbers its groups)"
                ))
                .into())
            }
        };
        let runs = list_or_skip(
            s,
            &Filter {
                labels: vec![
                    ("bench".into(), id.into()),
                    ("bench.group".into(), group.into()),
                ],
                ..Default::default()
            },
        )?;
        // Failed runs were not averaged in by bench; the gate leaves them out too.
        let runs: Vec<RunReport> = runs
            .into_iter()
            .filter(|r| r.exit_code == Some(0))
            .collect();
        if runs.is_empty() {
            return Err(BadInput(format!(
                "no successful stored run of bench {id} group {group} (see `wattprint runs \
                 --label bench={id}`)"
            ))
            .into());
        }
        return Ok(runs);
    }
    if let Some(kv) = sel.strip_prefix("label:") {
        let (k, v) = crate::cmd::run::parse_label(kv).map_err(BadInput)?;
        let runs = list_or_skip(
            s,
            &Filter {
                labels: vec![(k, v)],
                ..Default::default()
            },
        )?;
        if runs.is_empty() {
            return Err(BadInput(format!("no stored run has the label {kv}")).into());
        }
        return Ok(runs);
    }
    if let Some(r) = s.get(sel)? {
        return Ok(vec![r]);
    }
    let runs = list_or_skip(
        s,
        &Filter {
            ids: vec![sel.to_string()],
            ..Default::default()
        },
    )?;
    match runs.len() {
        1 => Ok(runs),
        0 => Err(BadInput(format!(
            "no stored run `{sel}` (see `wattprint runs`), and no such file"
        ))
        .into()),
        n => Err(BadInput(format!("`{sel}` matches {n} runs; give more of the id")).into()),
    }
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let (mut f, _) = filter(&args.select, (args.limit > 0).then_some(args.limit))?;
    // Live runs too: `runs` is where a running or interrupted run is seen.
    f.include_running = true;
    let store = open_store_for_reading()?;
    if args.check {
        let bad = store.check()?;
        let total = store.count()?;
        for u in &bad {
            println!(
                "{}\t{}",
                crate::common::escape(&u.id),
                crate::common::escape(&u.message)
            );
        }
        eprintln!(
            "{} of {total} stored runs cannot be read back{}",
            bad.len(),
            if bad.is_empty() {
                ""
            } else {
                ": other commands skip them with a warning"
            }
        );
        return Ok(u8::from(!bad.is_empty()));
    }
    let runs = list_or_skip(&store, &f)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", wattprint_report::render::json(&runs))?;
    } else if runs.is_empty() {
        eprintln!(
            "no runs stored in {} (yet): `wattprint run -- CMD` stores one",
            crate::common::escape(&store.path().display().to_string())
        );
    } else {
        write!(out, "{}", wattprint_report::render::runs_table(&runs))?;
    }
    Ok(0)
}
