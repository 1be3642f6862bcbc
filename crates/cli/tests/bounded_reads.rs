//! Every file the command line reads is bounded in memory, not only in size: `/dev/zero`, a
//! 2 GiB file without line breaks and a 2 GiB file of zeros are refused with an error naming
//! the file, by a process whose peak RSS stays far below the input (measured with `wait4`).

use std::path::Path;
use std::process::{Command, Stdio};

mod common;

/// Peak RSS a refusal may reach, KiB: the binary and its libraries take about 10-20 MB; an
/// input read whole would take hundreds of MB to GB.
const MAX_RSS_KIB: i64 = 96 * 1024;

/// Runs `cmd`, returning (exit code, stderr, peak RSS in KiB) of that child alone. The child
/// is reaped by `wait4` (for its own rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command) -> (i32, String, i64) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 on our own child's pid, which Child never reaps
    // (it is not waited through the std API).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let err = reader.join().unwrap();
    assert!(libc::WIFEXITED(status), "killed: {status}\n{err}");
    (libc::WEXITSTATUS(status), err, ru.ru_maxrss)
}

fn refused(dir: &Path, args: &[&str], file: &Path, expect: &str) {
    let mut c = common::wattprint(dir);
    c.args(args).arg(file);
    let (code, err, rss_kib) = run_measured(c);
    assert_eq!(code, 2, "{args:?} {}: {err}", file.display());
    assert!(
        err.contains(&file.display().to_string()) && err.contains(expect),
        "{args:?} {}: expected {expect:?} in {err}",
        file.display()
    );
    assert!(
        rss_kib < MAX_RSS_KIB,
        "{args:?} {}: peak RSS {rss_kib} KiB",
        file.display()
    );
}

#[test]
fn endless_and_oversize_inputs_are_refused_without_reading_them_whole() {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    let zero = Path::new("/dev/zero");
    // 2 GiB, sparse: no line break (zeros), and one of 'a's would be the same for lines.
    let big = d.path().join("big.csv");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let big_json = d.path().join("big.json");
    std::fs::File::create(&big_json)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    // Line-oriented inputs: refused after one line's worth.
    for f in [zero, big.as_path()] {
        refused(d.path(), &["import"], f, "line 1: longer than");
        refused(d.path(), &["rate"], f, "line 1: longer than");
        refused(
            d.path(),
            &[
                "estimate",
                "--power-w",
                "100",
                "--hours",
                "1",
                "--intensity-file",
            ],
            f,
            "line 1: longer than 4096 bytes",
        );
    }
    // Whole-text inputs (JSON, TOML, a token): refused at the first NUL byte.
    refused(d.path(), &["report"], &big_json, "binary data");
    for f in [zero, big.as_path()] {
        refused(d.path(), &["agent", "--config"], f, "binary data");
        refused(d.path(), &["agent", "--token-file"], f, "binary data");
    }
    // A text file past the cap of a whole-text input: refused by size.
    let cfg = d.path().join("agent.toml");
    std::fs::write(&cfg, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    refused(
        d.path(),
        &["agent", "--config"],
        &cfg,
        "larger than 1048576 bytes",
    );
}

/// Runs `cmd` to success, returning (stdout, peak RSS in KiB) of that child alone.
#[allow(clippy::zombie_processes)]
fn run_measured_ok(mut cmd: Command) -> (String, i64) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: as in `run_measured`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let out = reader.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
    (out, ru.ru_maxrss)
}

#[test]
fn a_64_mb_import_is_streamed_in_the_memory_of_a_small_one() {
    let d = tempfile::tempdir().unwrap();
    common::fake_machine(d.path());
    // A trace whose rows are few but whose comment lines weigh 64 MB (lines of 1 MB, under
    // the 1 MiB line cap): read whole, the text alone would take 64 MB.
    let f = d.path().join("big-trace.csv");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
        w.write_all(b"# wattprint trace v1\n# started_at: 2026-11-29T10:00:00Z\nt_s,domain,unit,value\n0,gpu-0,W,100\n")
            .unwrap();
        let comment = format!("# {}\n", "x".repeat(1_000_000));
        for i in 0..64 {
            w.write_all(comment.as_bytes()).unwrap();
            writeln!(w, "{},gpu-0,W,100", i + 1).unwrap();
        }
    }
    assert!(std::fs::metadata(&f).unwrap().len() > 64_000_000);
    let mut c = common::wattprint(d.path());
    c.args(["import", "--no-store", "--json"]).arg(&f);
    let (out, rss_kib) = run_measured_ok(c);
    let runs: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 64 s at 100 W.
    assert_eq!(runs[0]["energy"]["total_j"], 6400.0);
    // An idle process is 10-20 MB; the file's text would add 64 MB.
    assert!(rss_kib < 48 * 1024, "peak RSS {rss_kib} KiB");
}
