//! `wattprint run [OPTIONS] -- CMD [ARGS]`: run a command, measure it, summarise on stderr.

use crate::checkpoint;
use crate::child::{self, Forwarder, SpawnError};
use crate::common::{carbon_error, escape, CarbonArgs, OutputArgs, SensorArgs, WorkArgs};
use crate::exit::BadInput;
use crate::forecast::{Budget, Watch};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;
use wattprint_core::duration::parse_interval_s;
use wattprint_core::gpu_select::{GpuRequest, GpuRequestError};
use wattprint_core::report::RunReport;
use wattprint_core::window::WindowEnergy;
use wattprint_core::work::{resolve_work, WorkDecl};
use wattprint_engine::cgroup::JobCgroup;
use wattprint_engine::config::GpuScope;
use wattprint_engine::workfile::{WorkFile, WORK_FILE_ENV};
use wattprint_engine::{summary, ReportContext, SensorConfig, Session};

/// Options of `wattprint run`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Args {
    /// Read the sensors this often for the live view and the timeline (e.g. `1s`, `100ms`;
    /// default 1s on a terminal, 5s otherwise). Counters are exact at the run's start and end
    /// whatever this is.
    #[arg(long, value_name = "D", value_parser = parse_interval_s)]
    pub interval: Option<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub carbon: CarbonArgs,
    #[command(flatten)]
    pub work: WorkArgs,
    #[command(flatten)]
    pub sensors: SensorArgs,
    /// Do not store the run in the local history.
    #[arg(long)]
    pub no_store: bool,
    /// Do not put the command in a cgroup of its own: take its CPU time (for attribution)
    /// from its waited-for process tree instead (processes it leaves behind are missed).
    #[arg(long)]
    pub no_cgroup: bool,
    /// The job's GPUs (measured, in its total and embodied share): `all`, `none`, indices as
    /// `wattprint sensors` lists them (`0,2`), domain names (`gpu-1`) or UUIDs. Default: the
    /// GPUs the command can see (CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES,
    /// ROCR_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES, Slurm's allocation). It does not change
    /// what the command sees.
    #[arg(long, value_name = "all|0,2|UUID", value_parser = parse_gpus)]
    pub gpus: Option<GpuRequest>,
    /// Energy budget of the whole run, kWh: warn when the forecast at completion passes it.
    /// The forecast needs the command to report its progress: `progress=0.3` or `step=N
    /// total=M` lines appended to the file named by `WATTPRINT_WORK_FILE`.
    #[arg(long, value_name = "KWH", value_parser = parse_budget_kwh)]
    pub budget_kwh: Option<f64>,
    /// Stop the command (SIGTERM, SIGKILL 10 s later) when the forecast passes
    /// `--budget-kwh`; the report says why.
    #[arg(long, requires = "budget_kwh")]
    pub stop_over_budget: bool,
    /// With --stop-over-budget: how long the command has to exit after SIGTERM before
    /// SIGKILL (e.g. `30s`, `2m`; default 10s).
    #[arg(long, value_name = "D", value_parser = parse_interval_s, requires = "stop_over_budget")]
    pub stop_grace: Option<f64>,
    /// Label the run (repeatable): `--label team=search --label model=7b`.
    #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The command to run, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Parse `--gpus`.
pub fn parse_gpus(text: &str) -> Result<GpuRequest, String> {
    text.parse().map_err(|e: GpuRequestError| e.to_string())
}

/// Parse `--budget-kwh`: a positive, finite number of kWh.
fn parse_budget_kwh(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{text}` is not an energy budget: a positive number of kWh, e.g. 2.5"
        )),
    }
}

/// Parse `key=value`.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not a label: use KEY=VALUE")),
    }
}

/// Live view and timeline period on a terminal, s.
const LIVE_INTERVAL_S: f64 = 1.0;
/// Timeline period when stderr is not a terminal (CI, batch jobs), s.
const QUIET_TIMELINE_INTERVAL_S: f64 = 5.0;

fn stderr_is_terminal() -> bool {
    // SAFETY: isatty on a file descriptor number has no memory effects.
    unsafe { libc::isatty(2) == 1 }
}

/// Everything checked and decided before the command starts: bad input never costs a run.
struct Prepared {
    command: Vec<String>,
    output: OutputArgs,
    no_store: bool,
    no_cgroup: bool,
    gpus: Option<GpuRequest>,
    carbon_opts: wattprint_carbon::CarbonOptions,
    work_decl: WorkDecl,
    config: SensorConfig,
    /// The history and period to checkpoint to (none with `--no-store`).
    checkpoints: Option<(PathBuf, f64)>,
    labels: BTreeMap<String, String>,
    warnings: Vec<String>,
    work_file: Option<WorkFile>,
    budget: Budget,
    /// The progress seen and the forecast, filled while the command runs.
    watch: Watch,
    /// stderr is a terminal: the live view is on.
    live: bool,
    /// The live view's and the timeline's period, s.
    interval_s: f64,
    /// This process's CPU time when `run` started, s (what was spent before is not ours).
    cpu_at_start_s: f64,
}

/// The measured command: its session (window ended), energy, exit and CPU time, cgroup.
struct Measured {
    session: Session,
    energy: WindowEnergy,
    outcome: child::Outcome,
    cgroup: Result<JobCgroup, String>,
}

/// `wattprint run`: prepare (check every option), measure (the command in its session),
/// finish (the engine's report, the summary, the outputs, the history).
pub fn main(args: Args) -> anyhow::Result<u8> {
    // CPU time is kept across execve: under `cargo run` (which replaces itself with wattprint)
    // the process has cargo's already. The overhead score counts wattprint's own from here.
    let cpu_at_start_s = wattprint_engine::procinfo::self_usage().cpu_s;
    let mut p = prepare(args)?;
    p.cpu_at_start_s = cpu_at_start_s;
    match measure(&mut p)? {
        Ok(m) => Ok(finish(p, m)),
        Err(not_started) => Ok(not_started),
    }
}

/// One run of `args.command` measured exactly as `run` measures it (same options, session,
/// engine steps and report), without the live view or the summary, and neither written nor
/// stored: what `wattprint bench` does for each of its runs. `Err(status)` when the command
/// could not be started (the reason is already on stderr).
pub fn measure_quietly(args: Args) -> anyhow::Result<Result<RunReport, u8>> {
    let cpu_at_start_s = wattprint_engine::procinfo::self_usage().cpu_s;
    let mut p = prepare(args)?;
    p.cpu_at_start_s = cpu_at_start_s;
    p.live = false;
    Ok(match measure(&mut p)? {
        Ok(m) => Ok(report_of(p, m).0),
        Err(not_started) => Err(not_started),
    })
}

/// Checks the options and decides the sensor configuration, before anything runs.
fn prepare(args: Args) -> anyhow::Result<Prepared> {
    if args.command.is_empty() {
        return Err(BadInput(
            "no command to run: usage `wattprint run [OPTIONS] -- CMD [ARGS]`, e.g. \
             `wattprint run -- python train.py`"
                .into(),
        )
        .into());
    }
    if args.command[0].is_empty() {
        return Err(BadInput("the command after `--` is an empty string".into()).into());
    }
    if let Some(p) = &args.output.output {
        check_output_path(p)?;
    }
    // Checked before the command runs: bad carbon options must not cost a run.
    let carbon_opts = args.carbon.to_options()?;
    wattprint_carbon::validate(&carbon_opts).map_err(carbon_error)?;
    let work_decl = args.work.to_decl()?;
    let mut config = args.sensors.config()?;
    // Checkpoints go where the run will be stored; without a history, nowhere.
    let checkpoints = if args.no_store {
        None
    } else {
        let period_s = checkpoint::period_s(std::env::var(checkpoint::PERIOD_ENV).ok().as_deref())?;
        crate::cmd::runs::db_path().ok().map(|db| (db, period_s))
    };
    let labels: BTreeMap<String, String> = args.labels.into_iter().collect();
    let mut warnings = Vec::new();
    // The workload may append `flops=N` / `inferences=N` / `tokens=N` lines to this file.
    let work_file = WorkFile::create()
        .map_err(|e| {
            warnings.push(format!(
                "no work file for the command ({e}): run-time work declarations are off"
            ))
        })
        .ok();
    let live = stderr_is_terminal();
    // Without anyone watching, the timeline is read less often: counters need no reads
    // between the window's boundaries, and every wake-up of the meter costs CPU.
    let interval_s = args.interval.unwrap_or(if live {
        LIVE_INTERVAL_S
    } else {
        QUIET_TIMELINE_INTERVAL_S
    });
    config.timeline_interval_s = Some(interval_s);
    // The job's GPUs: what the command can see (the environment it inherits), or --gpus.
    config.gpu_scope = GpuScope::job_from_env(args.gpus.clone());
    if let Some(i) = args.interval {
        config.poll_interval_s = i;
    }
    Ok(Prepared {
        command: args.command,
        output: args.output,
        no_store: args.no_store,
        no_cgroup: args.no_cgroup,
        gpus: args.gpus,
        carbon_opts,
        work_decl,
        config,
        checkpoints,
        labels,
        warnings,
        work_file,
        budget: Budget {
            kwh: args.budget_kwh,
            stop: args.stop_over_budget,
            grace_s: args.stop_grace.unwrap_or(crate::forecast::STOP_GRACE_S),
        },
        watch: Watch::default(),
        live,
        interval_s,
        cpu_at_start_s: 0.0,
    })
}

/// Runs the command in its session (and cgroup, where one can be made), with the live view
/// and the checkpoints; `Err(status)` when the command could not be started.
fn measure(p: &mut Prepared) -> anyhow::Result<Result<Measured, u8>> {
    let Prepared {
        command,
        no_cgroup,
        gpus,
        carbon_opts,
        work_decl,
        config,
        checkpoints,
        labels,
        warnings,
        work_file,
        budget,
        watch,
        live,
        interval_s,
        ..
    } = p;
    let (live, interval_s, budget) = (*live, *interval_s, *budget);
    let watch: &Watch = watch;
    let config = std::mem::take(config);
    let (command, labels): (&[String], &BTreeMap<String, String>) = (command, labels);
    // The job's own cgroup v2, where wattprint may create one: its CPU time then counts
    // every process the command started, waited for or not.
    let cgroup = if *no_cgroup {
        Err("--no-cgroup".to_string())
    } else {
        JobCgroup::create(&config.sysfs_root, &config.procfs_root)
    };
    let fwd = Forwarder::install()?;
    let session_procfs = config.procfs_root.clone();
    let mut session = Session::start(config);
    if let Some(bad) = session.gpu_choice().filter(|c| !c.unmatched.is_empty()) {
        if let Ok(cg) = cgroup {
            let _ = cg.remove();
        }
        let req = gpus.as_ref().map(ToString::to_string).unwrap_or_default();
        return Err(BadInput(format!(
            "--gpus {req}: {}; `wattprint sensors` lists this machine's GPUs",
            bad.unmatched.join("; ")
        ))
        .into());
    }
    let window = session.begin("run");
    let child_env: Vec<(&str, &std::ffi::OsStr)> = work_file
        .iter()
        .map(|f| (WORK_FILE_ENV, f.path().as_os_str()))
        .collect();
    let (pid, cgroup) = match child::spawn(
        command,
        &child_env,
        &fwd,
        cgroup.as_ref().ok().map(|cg| child::CgroupFds {
            dir: cg.dir_fd(),
            procs: cg.procs_fd(),
        }),
    ) {
        Ok((pid, None)) => (pid, cgroup),
        Ok((pid, Some(join_error))) => {
            let why = match cgroup {
                Ok(cg) => {
                    let why = format!(
                        "the command could not join cgroup {} ({join_error})",
                        cg.dir().display()
                    );
                    let _ = cg.remove();
                    why
                }
                Err(e) => e,
            };
            (pid, Err(why))
        }
        Err(e) => {
            if let Ok(cg) = cgroup {
                let _ = cg.remove();
            }
            return Ok(Err(spawn_failed(e)));
        }
    };
    session.set_job_root(pid.unsigned_abs());
    let owner = checkpoint::owner(&session_procfs);
    let (outcome, checkpoint_warning) = std::thread::scope(|s| {
        // Dropping `stop` wakes the live view and the checkpoints at once: the run's end is
        // not delayed by a tick.
        let (stop, stopped) = mpsc::channel::<()>();
        let (stop_checkpoints, checkpoints_stopped) = mpsc::channel::<()>();
        let (stop_watch, watch_stopped) = mpsc::channel::<()>();
        if live {
            let session = &session;
            s.spawn(move || progress(session, interval_s, watch, &stopped));
        }
        if let Some(f) = work_file.as_ref() {
            let (session, fwd, carbon_opts) = (&session, &fwd, &carbon_opts);
            s.spawn(move || {
                crate::forecast::watch(
                    session,
                    f.path(),
                    budget,
                    interval_s,
                    live,
                    carbon_opts,
                    fwd,
                    watch,
                    &watch_stopped,
                )
            });
        }
        let kept = checkpoints.as_ref().map(|(db, period_s)| {
            let (session, cgroup) = (&session, &cgroup);
            let (work_decl, work_file) = (&work_decl, &work_file);
            let carbon_opts = &carbon_opts;
            s.spawn(move || {
                let report_now = || {
                    let tally = work_file.as_ref().and_then(|f| f.read().ok());
                    let (job_cpu_s, job_cpu_source) = cgroup
                        .as_ref()
                        .ok()
                        .and_then(|cg| Some((cg.cpu_s().ok()?, cgroup_cpu_source(cg))))
                        .unzip();
                    let ctx = ReportContext {
                        work: resolve_work(work_decl, tally.as_ref()),
                        command: command.to_vec(),
                        labels: labels.clone(),
                        job_cpu_s,
                        job_cpu_source,
                        forecast: watch.report(budget).0,
                        ..Default::default()
                    };
                    session.finish_so_far(window, ctx, carbon_opts).ok()
                };
                checkpoint::keep(db, owner, *period_s, report_now, &checkpoints_stopped)
            })
        });
        let o = child::wait(pid);
        fwd.child_gone();
        drop(stop);
        drop(stop_watch);
        drop(stop_checkpoints);
        let warning = kept.and_then(|t| t.join().ok().flatten());
        o.map(|o| (o, warning))
    })?;
    warnings.extend(checkpoint_warning);
    let energy = session.end(window)?;
    session.stop();
    drop(fwd);
    Ok(Ok(Measured {
        session,
        energy,
        outcome,
        cgroup,
    }))
}

/// What is left of `run`'s options once the report is built: where it goes.
struct Presentation {
    output: OutputArgs,
    no_store: bool,
    live: bool,
}

/// The engine's report of the measured run, printed, written and stored; the command's status.
fn finish(p: Prepared, m: Measured) -> u8 {
    let (report, how) = report_of(p, m);
    let Presentation {
        output,
        no_store,
        live,
    } = how;
    if live {
        eprint!("\r\x1b[2K");
    }
    let carbon_lines = if report.carbon.zone.is_empty() {
        Vec::new()
    } else {
        wattprint_carbon::summary_lines(&report)
    };
    eprint!("{}", summary::render_with(&report, &carbon_lines));
    let written = write_outputs(&output, &report);
    // Stored after the outputs, and even when writing them failed: a database problem only
    // warns, and an output problem does not lose the run from the history.
    if !no_store {
        crate::cmd::runs::store_or_warn(&report);
    }
    // The command's own status is what scripts test: it passes through even when the report
    // could not be written (the error says so on stderr, and the run is in the history).
    if let Err(e) = written {
        eprintln!(
            "wattprint: error: {} (the command's exit status is kept)",
            crate::common::escape(&e.to_string())
        );
    }
    exit_status(report.exit_code.unwrap_or(1))
}

/// The engine's report of the measured run ([`Session::finish`]), and where it goes.
fn report_of(p: Prepared, m: Measured) -> (RunReport, Presentation) {
    let Prepared {
        command,
        output,
        no_store,
        carbon_opts,
        work_decl,
        labels,
        mut warnings,
        work_file,
        budget,
        watch,
        live,
        cpu_at_start_s,
        ..
    } = p;
    let Measured {
        session,
        energy,
        outcome,
        cgroup,
    } = m;
    let usage = wattprint_engine::procinfo::self_usage();
    let tally = work_file.as_ref().and_then(|f| {
        f.read()
            .map_err(|e| warnings.push(format!("run-time work not read: {e}")))
            .ok()
    });
    if let Some(t) = &tally {
        warnings.extend(t.errors.iter().map(|e| format!("{e} (line skipped)")));
    }
    let (job_cpu_s, job_cpu_source) = job_cpu_time(cgroup, outcome.tree_cpu_s, &mut warnings);
    let (forecast, budget_warnings) = watch.report(budget);
    warnings.extend(budget_warnings);
    let ctx = ReportContext {
        forecast,
        work: resolve_work(&work_decl, tally.as_ref()),
        warnings,
        command,
        exit_code: Some(outcome.exit_code),
        labels,
        job_cpu_s: Some(job_cpu_s),
        job_cpu_source: Some(job_cpu_source),
        meter_cpu_s: Some((usage.cpu_s - cpu_at_start_s).max(0.0)),
        peak_rss_bytes: Some(usage.peak_rss_bytes),
        ..Default::default()
    };
    // Git commit, carbon (a failure there must not lose the measured run) and the report.
    let report = session.finish(&energy, ctx, &carbon_opts);
    let how = Presentation {
        output,
        no_store,
        live,
    };
    (report, how)
}

/// The attribution source of a job run in its own cgroup.
fn cgroup_cpu_source(cg: &JobCgroup) -> String {
    format!(
        "CPU time of every process in the command's cgroup {} \
         (cgroup v2 cpu.stat usage_usec, µs)",
        cg.dir().display()
    )
}

/// The job's CPU time and where it comes from: its cgroup when it ran in one, else the
/// waited-for tree's rusage, with the reason the cgroup was not used.
fn job_cpu_time(
    cgroup: Result<JobCgroup, String>,
    tree_cpu_s: f64,
    warnings: &mut Vec<String>,
) -> (f64, String) {
    let tree = "CPU time of the command and its waited-for descendants (wait4 rusage, µs)";
    let why = match cgroup {
        Ok(cg) => {
            let read = cg.cpu_s();
            let source = cgroup_cpu_source(&cg);
            if let Err(e) = cg.remove() {
                warnings.push(e);
            }
            match read {
                Ok(s) => return (s, source),
                Err(e) => e,
            }
        }
        Err(e) => e,
    };
    (tree_cpu_s, format!("{tree}; no cgroup of its own: {why}"))
}

/// Writes the report to -o FILE and/or stdout (--json), when asked.
fn write_outputs(output: &OutputArgs, report: &RunReport) -> anyhow::Result<()> {
    if output.output.is_none() && !output.json {
        return Ok(());
    }
    let json = serde_json::to_string_pretty(report)?;
    if let Some(p) = &output.output {
        crate::common::write_atomic(p, format!("{json}\n").as_bytes())
            .map_err(|e| anyhow::anyhow!("writing the report to {}: {e}", p.display()))?;
    }
    if output.json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{json}")?;
    }
    Ok(())
}

/// The child's status as wattprint's own (0..=255).
fn exit_status(code: i32) -> u8 {
    u8::try_from(code.clamp(0, 255)).unwrap_or(1)
}

fn check_output_path(p: &Path) -> anyhow::Result<()> {
    match p.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok(crate::common::check_writable(p)?),
        _ => Err(BadInput(format!(
            "-o {}: `run` writes its report as JSON; name the file *.json",
            p.display()
        ))
        .into()),
    }
}

fn spawn_failed(e: SpawnError) -> u8 {
    match e {
        SpawnError::NotFound(p) => {
            eprintln!(
                "wattprint: command not found: `{}` (not in PATH, or no such file)",
                escape(&p)
            );
            127
        }
        SpawnError::NotExecutable(p, err) => {
            eprintln!("wattprint: cannot execute `{}`: {err}", escape(&p));
            126
        }
        SpawnError::Other(p, err) => {
            eprintln!("wattprint: cannot start `{}`: {err}", escape(&p));
            126
        }
    }
}

/// One line on stderr, rewritten every interval: elapsed, power, energy, and the forecast
/// once the workload reports progress. Returns as soon as `stopped`'s sender is dropped.
fn progress(session: &Session, interval_s: f64, watch: &Watch, stopped: &mpsc::Receiver<()>) {
    let base = session.meter().snapshot();
    let tick = Duration::from_secs_f64(interval_s.max(0.1));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
        let now = crate::forecast::so_far(session, &base);
        eprint!(
            "\r\x1b[2K{:>8.1} s  {:>9}  {:>10}{}{}",
            now.t_s,
            wattprint_core::Watts(now.watts).to_string(),
            wattprint_core::Joules(now.joules).to_string(),
            if now.estimate { "  (estimate)" } else { "" },
            watch.live_text()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_a_key() {
        assert_eq!(parse_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_label("=x").is_err());
        assert!(parse_label("novalue").is_err());
    }
}
