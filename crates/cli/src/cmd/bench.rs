//! `wattprint bench [OPTIONS] [--] 'CMD A' ['CMD B' ...]`: hyperfine's habits for energy.
//! Each command (a shell string, run by `sh -c`) in each configuration of the parameters is
//! run `--runs` times after `--warmup` discarded runs, every run measured exactly as `wattprint
//! run` measures (`run::measure_quietly`: the same session, engine steps and report) and
//! stored with the labels `bench=ID` and `bench.group=N`; then the groups are summarised
//! (`wattprint_core::bench::summarize`) and printed on stderr.

use crate::cmd::run;
use crate::common::{CarbonArgs, SensorArgs, WorkArgs};
use crate::exit::BadInput;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wattprint_core::bench::{self, GroupRuns, Limits, Parameter, RunFigures};
use wattprint_core::duration::parse_duration_s;
use wattprint_core::report::RunReport;
use wattprint_engine::config::GpuScope;
use wattprint_engine::Session;
use wattprint_sensors::nvml::PowerLimiter;

/// Options of `wattprint bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Measured runs of each command and configuration (at least 1; 2 or more for an
    /// interval).
    #[arg(long, short = 'r', value_name = "N", default_value_t = 10, value_parser = parse_runs)]
    pub runs: usize,
    /// Runs of each command and configuration before the measured ones, discarded (caches,
    /// clocks and JIT warm up).
    #[arg(long, short = 'w', value_name = "N", default_value_t = 0)]
    pub warmup: usize,
    /// A shell command run before every run, not measured (e.g. drop caches).
    #[arg(long, value_name = "CMD")]
    pub prepare: Option<String>,
    /// Before every run, wait until the machine's power is back to its idle baseline
    /// (`auto`: the baseline is measured once at the start, the wait capped at 60 s), or a
    /// fixed pause (`10s`). Default: no wait.
    #[arg(long, value_name = "auto|D", value_parser = parse_cooldown)]
    pub cooldown: Option<Cooldown>,
    /// Label every run (repeatable): `--label model=7b`.
    #[arg(long = "label", value_name = "K=V", value_parser = run::parse_label)]
    pub labels: Vec<(String, String)>,
    /// Sweep NAME from MIN to MAX (step 1, or --parameter-step-size), written `{NAME}` in the
    /// commands.
    #[arg(long, num_args = 3, value_names = ["NAME", "MIN", "MAX"], allow_negative_numbers = true)]
    pub parameter_scan: Option<Vec<String>>,
    /// The step of --parameter-scan.
    #[arg(long, value_name = "S", requires = "parameter_scan")]
    pub parameter_step_size: Option<f64>,
    /// Sweep NAME over comma-separated values (repeatable: every combination is run),
    /// written `{NAME}` in the commands: `--parameter-list batch 1,8,32,128`.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUES"], action = clap::ArgAction::Append)]
    pub parameter_list: Vec<String>,
    /// Sweep the power limit of the job's NVIDIA GPUs over these watts (`300,400,500`),
    /// through NVML; root only. Every command runs under every limit; each GPU's previous
    /// limit is restored at the end, on an error, a panic and on SIGINT/SIGTERM/SIGHUP.
    #[arg(long, value_name = "W,W,...", value_parser = parse_watts)]
    pub gpu_power_limit: Option<Watts>,
    /// The job's GPUs, as `run --gpus` (measured; and limited by --gpu-power-limit).
    #[arg(long, value_name = "all|0,2|UUID", value_parser = run::parse_gpus)]
    pub gpus: Option<wattprint_core::gpu_select::GpuRequest>,
    /// Recommend the lowest-energy configuration at most PCT percent slower than the fastest.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub max_slowdown: Option<f64>,
    /// Recommend the lowest-energy configuration whose mean run time is at most D (`90s`).
    #[arg(long, value_name = "D", value_parser = parse_positive_duration)]
    pub deadline: Option<f64>,
    /// Recommend the lowest-energy configuration whose mean time per declared unit
    /// (inference or token) is at most D (`20ms`).
    #[arg(long, value_name = "D", value_parser = parse_positive_duration)]
    pub max_latency: Option<f64>,
    /// Confidence of the intervals, percent.
    #[arg(long, value_name = "PCT", default_value = "95", value_parser = crate::cmd::compare::parse_confidence)]
    pub confidence: f64,
    /// Write the results as JSON (`wattprint.bench/v1`).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
    /// Write one CSV row per command and configuration.
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,
    /// Write a Markdown table (for pull requests).
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
    /// Write one self-contained HTML file: the energy / time front as a chart, and the table.
    #[arg(long, value_name = "FILE")]
    pub export_html: Option<PathBuf>,
    /// Do not store the runs in the local history.
    #[arg(long)]
    pub no_store: bool,
    /// As `run --no-cgroup`.
    #[arg(long)]
    pub no_cgroup: bool,
    #[command(flatten)]
    pub carbon: CarbonArgs,
    #[command(flatten)]
    pub work: WorkArgs,
    #[command(flatten)]
    pub sensors: SensorArgs,
    /// The commands, each one shell string (quote it): `'python infer.py --batch {batch}'`.
    #[arg(value_name = "CMD")]
    pub commands: Vec<String>,
}

/// `--cooldown`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cooldown {
    /// Until the power is back to the idle baseline, at most [`COOLDOWN_CAP_S`].
    Auto,
    /// A fixed pause, s.
    Fixed(f64),
}

/// Longest `--cooldown auto` wait before a run, s: a machine that does not settle in a
/// minute has a neighbour, not heat, to blame (the run goes on, with a warning).
const COOLDOWN_CAP_S: f64 = 60.0;
/// Idle baseline window, s: long enough for a power sensor's 1 s average (NVML on Ampere and
/// newer reports one) to be one whole reading.
const BASELINE_S: f64 = 1.0;
/// One cool-down check, s.
const COOLDOWN_STEP_S: f64 = 0.5;
/// Power counts as back at idle within 5 % or 1 W of the baseline, whichever is larger
/// (our judgement: RAPL package power at idle wanders by about that from second to second).
const IDLE_TOLERANCE: f64 = 0.05;
const IDLE_TOLERANCE_W: f64 = 1.0;

fn parse_runs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{text}` is not a number of runs: give 1 or more (10 or more for a tight interval)"
        )),
    }
}

fn parse_pct(text: &str) -> Result<f64, String> {
    wattprint_report::compare::parse_pct(text).map_err(|e| e.to_string())
}

fn parse_positive_duration(text: &str) -> Result<f64, String> {
    match parse_duration_s(text) {
        Ok(s) if s > 0.0 => Ok(s),
        Ok(_) => Err(format!(
            "`{text}`: give a duration above 0, like 90s or 20ms"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The label (and parameter name) a group's GPU power limit is stored under, W.
const GPU_LIMIT_LABEL: &str = "gpu_power_limit_w";

/// The limits of `--gpu-power-limit`, W, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Watts(pub Vec<f64>);

/// Parses `--gpu-power-limit`: comma-separated watts, each above 0.
fn parse_watts(text: &str) -> Result<Watts, String> {
    let bad = || format!("`{text}`: give GPU power limits in watts, like 300,400,500");
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().trim_end_matches('W').trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if values.is_empty() || values.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(bad());
    }
    Ok(Watts(values))
}

fn parse_cooldown(text: &str) -> Result<Cooldown, String> {
    if text == "auto" {
        return Ok(Cooldown::Auto);
    }
    parse_duration_s(text)
        .map(Cooldown::Fixed)
        .map_err(|e| format!("{e}; or `auto` to wait for the idle baseline"))
}

/// One command in one configuration, with its runs so far.
struct Group {
    command: String,
    /// The GPU power limit its runs are under, W (`--gpu-power-limit`).
    gpu_limit_w: Option<f64>,
    parameters: Vec<(String, String)>,
    runs: Vec<RunFigures>,
}

/// The parameters of `--parameter-scan` and `--parameter-list`, checked against the commands.
fn parameters(a: &Args) -> Result<Vec<Parameter>, BadInput> {
    let bad = |e: bench::BenchInputError| BadInput(e.to_string());
    let mut params = Vec::new();
    if let Some(scan) = &a.parameter_scan {
        let num = |t: &str, what: &str| {
            t.parse::<f64>().map_err(|_| {
                BadInput(format!(
                    "--parameter-scan {}: {what} `{t}` is not a number",
                    scan[0]
                ))
            })
        };
        let (min, max) = (num(&scan[1], "MIN")?, num(&scan[2], "MAX")?);
        params.push(bench::scan(&scan[0], min, max, a.parameter_step_size).map_err(bad)?);
    }
    for pair in a.parameter_list.chunks(2) {
        if let [name, values] = pair {
            params.push(bench::parse_list(name, values).map_err(bad)?);
        }
    }
    bench::check_used(&a.commands, &params).map_err(bad)?;
    Ok(params)
}

/// The bench's id, carried by every run as its `bench` label: the start time and this
/// process's id, hexadecimal (unique on a host; a label, not a key).
fn bench_id() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("b{s:x}{:x}", std::process::id())
}

fn stderr_is_terminal() -> bool {
    // SAFETY: isatty on a file descriptor number has no memory effects.
    unsafe { libc::isatty(2) == 1 }
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    if args.commands.is_empty() {
        return Err(BadInput(
            "no command to benchmark: `wattprint bench [OPTIONS] -- 'CMD A' ['CMD B' ...]`, \
             each command one quoted shell string"
                .into(),
        )
        .into());
    }
    if let Some(i) = args.commands.iter().position(|c| c.trim().is_empty()) {
        return Err(BadInput(format!("command {} is an empty string", i + 1)).into());
    }
    for p in [
        &args.export_json,
        &args.export_csv,
        &args.export_markdown,
        &args.export_html,
    ]
    .into_iter()
    .flatten()
    {
        crate::common::check_writable(p)?;
    }
    let params = parameters(&args)?;
    bench::configurations(&params).map_err(|e| BadInput(e.to_string()))?;
    // The GPU power limit is the outermost loop: each limit is set once.
    let gpu_limits: Vec<Option<f64>> = match &args.gpu_power_limit {
        Some(w) => w.0.iter().copied().map(Some).collect(),
        None => vec![None],
    };
    let mut limiter = match &args.gpu_power_limit {
        Some(watts) => {
            let l = open_limiter(&args, &watts.0)?;
            // Printed first, so even a SIGKILLed bench leaves what to put back.
            let before: Vec<String> = l
                .limits()
                .iter()
                .map(|g| format!("gpu-{} {} W", g.index, g.previous_w))
                .collect();
            eprintln!(
                "wattprint: GPU power limits before the sweep: {}",
                before.join(", ")
            );
            Some(l)
        }
        None => None,
    };
    let mut groups: Vec<Group> = Vec::new();
    for (gpu_limit, c) in gpu_limits
        .iter()
        .flat_map(|l| args.commands.iter().map(move |c| (*l, c)))
    {
        // A command varies only with the parameters it uses: `'sleep 1'` beside
        // `'infer --batch {batch}'` is one group, not one per batch size.
        let used: Vec<Parameter> = params
            .iter()
            .filter(|p| c.contains(&format!("{{{}}}", p.name)))
            .cloned()
            .collect();
        let configs = bench::configurations(&used).map_err(|e| BadInput(e.to_string()))?;
        for config in &configs {
            let mut parameters = config.clone();
            if let Some(w) = gpu_limit {
                parameters.push((GPU_LIMIT_LABEL.into(), w.to_string()));
            }
            groups.push(Group {
                command: bench::substitute(c, config),
                parameters,
                gpu_limit_w: gpu_limit,
                runs: Vec::new(),
            });
        }
    }
    let id = bench_id();
    let live = stderr_is_terminal();
    // The idle baseline, measured before anything runs (`--cooldown auto`).
    let mut idle = match args.cooldown {
        Some(Cooldown::Auto) => {
            let session = Session::start(args.sensors.config()?);
            let baseline_w = mean_power_w(&session, BASELINE_S);
            Some((session, baseline_w))
        }
        _ => None,
    };
    if let Some((_, w)) = &idle {
        eprintln!("wattprint: idle baseline {}", wattprint_core::Watts(*w));
    }
    let total = groups.len();
    let mut unit: Option<&'static str> = None;
    // SIGINT, SIGTERM and SIGHUP end the bench after the run in progress (whose command they
    // reach through `run`'s forwarding), so the power limits are restored on the way out.
    let signalled = Arc::new(AtomicUsize::new(0));
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        signal_hook::flag::register_usize(sig, Arc::clone(&signalled), sig as usize)?;
    }
    let mut current_limit: Option<f64> = None;
    let mut interrupted: Option<i32> = None;
    'groups: for (gi, g) in groups.iter_mut().enumerate() {
        if let (Some(l), Some(w)) = (limiter.as_mut(), g.gpu_limit_w) {
            if current_limit != Some(w) {
                l.set_w(w).map_err(|e| {
                    restore_limits(l);
                    anyhow::anyhow!("--gpu-power-limit: {e}")
                })?;
                current_limit = Some(w);
                if !live {
                    eprintln!("wattprint: GPU power limit {w} W");
                }
            }
        }
        let mut labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
        labels.extend(g.parameters.iter().cloned());
        labels.insert("bench".into(), id.clone());
        labels.insert("bench.group".into(), (gi + 1).to_string());
        for k in 0..args.warmup + args.runs {
            let warm = k < args.warmup;
            if let sig @ 1.. = signalled.load(Ordering::SeqCst) {
                interrupted = Some(sig as i32);
                break 'groups;
            }
            if live {
                eprint!(
                    "\r\x1b[2K[{}/{total}] {}  {}",
                    gi + 1,
                    wattprint_core::text::printable(&g.command),
                    if warm {
                        format!("warm-up {}/{}", k + 1, args.warmup)
                    } else {
                        format!("run {}/{}", k - args.warmup + 1, args.runs)
                    }
                );
            }
            if let Some(p) = &args.prepare {
                prepare(p)?;
            }
            match (&args.cooldown, &mut idle) {
                (Some(Cooldown::Fixed(s)), _) => std::thread::sleep(Duration::from_secs_f64(*s)),
                (Some(Cooldown::Auto), Some((session, baseline_w))) => {
                    if let Some(w) = cool_down(session, *baseline_w) {
                        eprintln!(
                            "\nwattprint: warning: power still {} after {COOLDOWN_CAP_S} s of \
                             cool-down (idle baseline {}); running anyway",
                            wattprint_core::Watts(w),
                            wattprint_core::Watts(*baseline_w)
                        );
                    }
                }
                _ => {}
            }
            let one = run::Args {
                output: Default::default(),
                carbon: args.carbon.clone(),
                work: args.work.clone(),
                sensors: args.sensors.clone(),
                gpus: args.gpus.clone(),
                no_store: warm || args.no_store,
                no_cgroup: args.no_cgroup,
                labels: labels.clone().into_iter().collect(),
                command: vec!["sh".into(), "-c".into(), g.command.clone()],
                ..Default::default()
            };
            let report = match run::measure_quietly(one)? {
                Ok(r) => r,
                // `sh` itself did not start: nothing else will.
                Err(code) => return Ok(code),
            };
            // The command ended by SIGINT/SIGTERM/SIGHUP (forwarded to it, or Ctrl-C): the
            // bench ends here too.
            if let Some(sig) = report
                .exit_code
                .map(|c| c - 128)
                .filter(|s| [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].contains(s))
            {
                interrupted = Some(sig);
                break 'groups;
            }
            if warm {
                continue;
            }
            if !args.no_store {
                crate::cmd::runs::store_or_warn(&report);
            }
            let (units, u) = units_of(&report);
            unit = unit.or(u);
            g.runs.push(RunFigures {
                run_id: report.id.clone(),
                exit_code: report.exit_code,
                energy_j: report.metrics.energy_to_solution_j,
                time_s: report.duration_s,
                units,
            });
            if report.exit_code != Some(0) && live {
                eprintln!(
                    "\r\x1b[2Kwattprint: run {} of `{}` failed (exit {})",
                    report.id,
                    wattprint_core::text::printable(&g.command),
                    report.exit_code.unwrap_or(-1)
                );
            }
        }
    }
    if live {
        eprint!("\r\x1b[2K");
    }
    if let Some((mut session, _)) = idle {
        session.stop();
    }
    if let Some(l) = limiter.as_mut() {
        restore_limits(l);
    }
    if let Some(sig) = interrupted {
        eprintln!(
            "wattprint: bench interrupted by signal {sig}{}; the runs so far are stored",
            if limiter.is_some() {
                ", GPU power limits restored"
            } else {
                ""
            }
        );
        return Ok(u8::try_from(128 + sig).unwrap_or(1));
    }
    let groups: Vec<GroupRuns> = groups
        .into_iter()
        .map(|g| GroupRuns {
            command: g.command,
            parameters: g.parameters.into_iter().collect(),
            runs: g.runs,
        })
        .collect();
    let limits = Limits {
        max_slowdown_pct: args.max_slowdown,
        deadline_s: args.deadline,
        max_latency_s: args.max_latency,
    };
    let report = bench::summarize(
        &id,
        &groups,
        args.runs,
        args.warmup,
        args.confidence,
        unit,
        limits,
    );
    eprint!("{}", wattprint_report::bench::text(&report));
    if !args.no_store {
        eprintln!(
            "\nstored as bench {id}: `wattprint compare bench:{id}/1 bench:{id}/2`, \
             `wattprint runs --label bench={id}`"
        );
    }
    export(&args, &report)?;
    let failed = report.groups.iter().any(|g| !g.failed.is_empty());
    Ok(u8::from(failed))
}

/// Opens the job's NVIDIA GPUs for `--gpu-power-limit` and checks every limit against each
/// GPU's range before anything runs.
fn open_limiter(args: &Args, watts: &[f64]) -> anyhow::Result<PowerLimiter> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(BadInput(
            "--gpu-power-limit changes the GPUs' power limits, which NVML allows root only: \
             run wattprint bench as root (sudo), or leave the option out"
                .into(),
        )
        .into());
    }
    let mut config = args.sensors.config()?;
    config.gpu_scope = GpuScope::job_from_env(args.gpus.clone());
    // The job's GPUs as `run` chooses them: those the discovery did not exclude.
    let session = Session::start(config.clone());
    let excluded: Vec<u32> = session
        .gpu_choice()
        .map(|c| {
            c.excluded
                .iter()
                .filter(|(d, _)| d.source == wattprint_core::domain::SensorSource::Nvml)
                .map(|(d, _)| d.index)
                .collect()
        })
        .unwrap_or_default();
    drop(session);
    let limiter = PowerLimiter::open(config.nvml_lib.as_deref(), |i| !excluded.contains(&i))
        .map_err(|e| BadInput(format!("--gpu-power-limit: {e}")))?;
    for w in watts {
        limiter
            .check_w(*w)
            .map_err(|e| BadInput(format!("--gpu-power-limit: {e}")))?;
    }
    Ok(limiter)
}

/// Puts the GPUs' previous power limits back, saying on stderr which could not be.
fn restore_limits(l: &mut PowerLimiter) {
    for e in l.restore() {
        eprintln!("wattprint: error: {e}; set it back by hand (nvidia-smi -i INDEX -pl WATTS)");
    }
}

/// The declared units of a run and their name: inferences, else tokens.
fn units_of(r: &RunReport) -> (Option<f64>, Option<&'static str>) {
    match (r.work.inferences, r.work.tokens) {
        (Some(n), _) if n > 0.0 => (Some(n), Some("inference")),
        (_, Some(n)) if n > 0.0 => (Some(n), Some("token")),
        _ => (None, None),
    }
}

/// Runs `--prepare` (not measured); a failure stops the bench: what follows would measure
/// an unprepared machine.
fn prepare(cmd: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .map_err(|e| anyhow::anyhow!("--prepare `{cmd}`: cannot start sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(BadInput(format!(
            "--prepare `{cmd}` failed ({status}); fix it or leave it out"
        ))
        .into())
    }
}

/// Mean power of the counted domains over the next `seconds`, W.
fn mean_power_w(session: &Session, seconds: f64) -> f64 {
    let meter = session.meter();
    let a = meter.sample_now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let b = meter.sample_now();
    let dt = b.t_s - a.t_s;
    let delta: Vec<f64> = (0..session.domains().len())
        .map(|k| b.cumulative[k].0 - a.cumulative[k].0)
        .collect();
    let counted =
        wattprint_core::trust::live_counted(session.domains(), session.standby(), &delta, dt);
    let joules: f64 = (0..delta.len())
        .filter(|&k| counted[k])
        .map(|k| delta[k])
        .sum();
    if dt > 0.0 {
        joules / dt
    } else {
        0.0
    }
}

/// Waits until the power is within the idle tolerance of `baseline_w`; the power still
/// measured when [`COOLDOWN_CAP_S`] ran out, if it did.
fn cool_down(session: &Session, baseline_w: f64) -> Option<f64> {
    let limit_w = baseline_w + (baseline_w * IDLE_TOLERANCE).max(IDLE_TOLERANCE_W);
    let start = Instant::now();
    loop {
        let w = mean_power_w(session, COOLDOWN_STEP_S);
        if w <= limit_w {
            return None;
        }
        if start.elapsed().as_secs_f64() >= COOLDOWN_CAP_S {
            return Some(w);
        }
    }
}

fn export(args: &Args, r: &bench::BenchReport) -> anyhow::Result<()> {
    let write = |p: &Path, text: String| {
        crate::common::write_atomic(p, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))
    };
    if let Some(p) = &args.export_json {
        write(p, format!("{}\n", serde_json::to_string_pretty(r)?))?;
    }
    if let Some(p) = &args.export_csv {
        write(p, wattprint_report::bench::csv(r))?;
    }
    if let Some(p) = &args.export_markdown {
        write(p, wattprint_report::bench::markdown(r))?;
    }
    if let Some(p) = &args.export_html {
        write(p, wattprint_report::html::bench_html(r))?;
    }
    Ok(())
}
