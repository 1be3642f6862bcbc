//! A full disk, for real: reports and the history written onto a small tmpfs that fills up,
//! mounted in a private mount namespace (`unshare -m`), so nothing outside the test sees it.
//!
//! Needs root (CAP_SYS_ADMIN for the mount): CI runs the tests as root. Without root the
//! test fails and says why, unless `WATTPRINT_TESTS_WITHOUT_ROOT=1` is set, in which case it
//! prints a loud notice that the full-disk claims of `docs/security.md` went unchecked.

use std::path::Path;
use std::process::Command;

mod common;

/// Free space left on the tmpfs after the filler, bytes: less than a run report (about 5 KB
/// of JSON plus the page the temporary file needs), so a non-atomic write would leave a
/// truncated report behind.
const LEFT_BYTES: usize = 4096;

/// True when this test can mount; false (after a loud notice) when it may be skipped.
fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let msg = "full_disk.rs needs root to mount a tmpfs in a private mount namespace \
               (CI runs the tests as root); the full-disk claims of docs/security.md are \
               NOT checked here";
    if std::env::var_os("WATTPRINT_TESTS_WITHOUT_ROOT").is_some() {
        eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
        return false;
    }
    panic!("{msg}; set WATTPRINT_TESTS_WITHOUT_ROOT=1 to run the rest of the suite without it");
}

/// Runs `script` (sh) in a private mount namespace where `$FULL` is a 256 KiB tmpfs; the
/// script's own stdout/stderr are returned. `wp` in the script is the wattprint binary on
/// the fake machine under `dir` (the variables of `common::isolate` are exported).
fn in_namespace(dir: &Path, script: &str) -> std::process::Output {
    let full = dir.join("full");
    std::fs::create_dir_all(&full).unwrap();
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-euc"])
        .arg(format!(
            "mount -t tmpfs -o size=256k tmpfs \"$FULL\"\n\
             fill() {{ head -c 300000 /dev/zero > \"$FULL/filler\" 2>/dev/null || true; \
                       truncate -s -$1 \"$FULL/filler\"; }}\n\
             {script}"
        ))
        .env("FULL", &full)
        .env("D", dir)
        .env("WP", env!("CARGO_BIN_EXE_wattprint"));
    common::isolate(&mut c, dir);
    c.current_dir(dir);
    let o = c.output().expect("unshare (util-linux) runs");
    assert!(
        o.status.success(),
        "namespace script failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_full_disk_leaves_no_partial_report_keeps_the_status_and_the_run() {
    if !can_mount() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    common::fake_machine(dir);
    // A stored run first, so that `report` has something to write.
    common::wattprint_assert(dir)
        .args(["run", "--", "true"])
        .assert()
        .success();
    let left = LEFT_BYTES.to_string();
    in_namespace(
        dir,
        &format!(
            "printf 'previous report\\n' > \"$FULL/old.html\"\n\
             fill {left}\n\
             set +e\n\
             \"$WP\" run -o \"$FULL/new.json\" -- sh -c 'exit 3' 2> \"$D/run.err\"; echo $? > \"$D/run.rc\"\n\
             \"$WP\" report -o \"$FULL/old.html\" 2> \"$D/report.err\"; echo $? > \"$D/report.rc\"\n\
             ls -A \"$FULL\" > \"$D/listing\"\n\
             cat \"$FULL/old.html\" > \"$D/old.after\"\n"
        ),
    );
    // `run`: the command's status, a clear error naming the file, nothing partial left.
    let err = read(&dir.join("run.err"));
    assert_eq!(read(&dir.join("run.rc")).trim(), "3", "{err}");
    let full = dir.join("full");
    assert!(
        err.contains(&full.join("new.json").display().to_string())
            && err.to_lowercase().contains("no space left")
            && err.contains("exit status is kept"),
        "{err}"
    );
    // `report -o` over an existing file: exit 1, named, and the old file intact.
    let rerr = read(&dir.join("report.err"));
    assert_eq!(read(&dir.join("report.rc")).trim(), "1", "{rerr}");
    assert!(
        rerr.contains(&full.join("old.html").display().to_string())
            && rerr.to_lowercase().contains("no space left"),
        "{rerr}"
    );
    assert_eq!(read(&dir.join("old.after")), "previous report\n");
    // No zero-byte, truncated or temporary file on the full disk: only what was there.
    let listing = read(&dir.join("listing"));
    let mut names: Vec<&str> = listing.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["filler", "old.html"], "{listing}");
    // The history (on another disk) kept the run whose report could not be written.
    let o = common::wattprint(dir)
        .args(["runs", "--json", "--command", "exit 3"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["exit_code"], 3);
}

#[test]
fn a_history_on_a_full_disk_says_so_and_the_report_is_written_elsewhere() {
    if !can_mount() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    common::fake_machine(dir);
    in_namespace(
        dir,
        "export WATTPRINT_DB=\"$FULL/history.sqlite\"\n\
         fill 0\n\
         set +e\n\
         \"$WP\" run -o \"$D/r.json\" -- sh -c 'exit 4' 2> \"$D/run.err\"; echo $? > \"$D/run.rc\"\n\
         ls -A \"$FULL\" > \"$D/listing\"\n",
    );
    let err = read(&dir.join("run.err"));
    assert_eq!(read(&dir.join("run.rc")).trim(), "4", "{err}");
    let db = dir.join("full/history.sqlite");
    assert!(
        err.contains(&db.display().to_string())
            && err.contains("no space left")
            && err.contains("not stored"),
        "{err}"
    );
    // The spool beside the database could not be written either (the disk is full), and
    // the warning says so rather than claiming the run was kept.
    assert!(err.contains("not kept in"), "{err}");
    // The report written elsewhere is whole.
    let r: serde_json::Value = serde_json::from_str(&read(&dir.join("r.json"))).unwrap();
    assert_eq!(r["exit_code"], 4);
    let listing = read(&dir.join("listing"));
    assert!(
        !listing.contains(".tmp") && !listing.contains(".spool/"),
        "{listing}"
    );
}
