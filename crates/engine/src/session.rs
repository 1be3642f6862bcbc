//! A measuring session: the meter over the discovered sensors, named windows, and reports.

use crate::config::SensorConfig;
use crate::discover::{discover, AbsentSensor, Discovery, GpuChoice};
use crate::gpu_recorder::GpuRecorder;
use crate::procinfo;
use crate::report::{assemble, ReportContext, ReportInputs};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};
use wattprint_core::report::{Gap, RunReport};
use wattprint_core::timeline::Timeline;
use wattprint_core::wallclock;
use wattprint_core::window::{WindowEnergy, WindowError, WindowId};
use wattprint_core::DomainDesc;
use wattprint_sensors::gpu::GpuDevice;
use wattprint_sensors::nvml::GpuProcessSampler;
use wattprint_sensors::procfs::{CpuTimes, TICK_S};
use wattprint_sensors::{Meter, MeterOptions};

/// Per-window facts kept beside the meter's window: wall-clock start and machine CPU times.
#[derive(Clone, Copy, Debug)]
struct WindowExtras {
    cpu_begin: Option<CpuTimes>,
    cpu_end: Option<CpuTimes>,
}

/// How many ended windows keep their machine CPU times for a later report: a long-lived
/// session opening windows without end (a training loop's steps) holds bounded memory.
const ENDED_WINDOWS_KEPT: usize = 4096;

/// Numbers sessions within the process (see `Session::seq`).
static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A measuring session. See the crate docs for the flow.
pub struct Session {
    meter: Meter,
    /// This session's number in the process: with the window id, it keeps report ids
    /// unique when one process runs several sessions (the Python bindings do).
    seq: u64,
    /// Read the machine's CPU times at window boundaries (for attribution; see
    /// [`Session::set_machine_cpu_times`]).
    machine_cpu: bool,
    config: SensorConfig,
    absent: Vec<AbsentSensor>,
    notes: Vec<String>,
    idle_w: Vec<Option<f64>>,
    /// Per domain (meter order): read by a standby sensor, not counted unless swapped in.
    standby: Vec<bool>,
    /// Per domain (meter order): the maximum power its sensor declares, W.
    max_power_w: Vec<Option<f64>>,
    power_bounds_w: Vec<Option<(f64, f64)>>,
    setup_steps: Vec<String>,
    domains: Vec<DomainDesc>,
    /// Machine CPU times of windows, only while [`Session::set_machine_cpu_times`] is on;
    /// ended ones are forgotten oldest first beyond [`ENDED_WINDOWS_KEPT`].
    windows: HashMap<WindowId, WindowExtras>,
    ended: std::collections::VecDeque<WindowId>,
    /// Unix time of the meter's epoch, s: a window's wall-clock start is this plus its
    /// monotonic begin time (nothing to store per window).
    epoch_unix_s: f64,
    gpus: Vec<GpuDevice>,
    /// How the job's GPUs were chosen ([`crate::config::GpuScope::Job`]).
    gpu_choice: Option<GpuChoice>,
    /// NVML's per-process sampler, until a job root is set.
    gpu_sampler: Option<GpuProcessSampler>,
    /// Started by [`Session::set_job_root`].
    gpu_recorder: Option<GpuRecorder>,
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Session {
    /// Discover the sensors under `config` and start metering.
    pub fn start(config: SensorConfig) -> Session {
        let d = discover(&config);
        Session::with_discovery(config, d)
    }

    /// Start metering over an existing discovery (tests, or callers that add sensors).
    pub fn with_discovery(config: SensorConfig, d: Discovery) -> Session {
        let mut idle_w = Vec::new();
        let mut max_power_w = Vec::new();
        let mut standby = Vec::new();
        let mut power_bounds_w = Vec::new();
        let mut setup_steps: Vec<String> = Vec::new();
        let n_primary = d.sensors.len();
        let mut sensors = d.sensors;
        sensors.extend(d.standby);
        for (k, s) in sensors.iter().enumerate() {
            let info = s.info();
            let n = info.domains.len();
            idle_w.extend((0..n).map(|k| s.idle_power_w(k)));
            max_power_w.extend((0..n).map(|k| s.max_power_w(k)));
            power_bounds_w.extend((0..n).map(|k| s.power_bounds_w(k)));
            standby.extend(std::iter::repeat_n(k >= n_primary, n));
            if k < n_primary && info.setup != "none" && !setup_steps.contains(&info.setup) {
                setup_steps.push(info.setup.clone());
            }
        }
        let meter = Meter::start(
            sensors,
            MeterOptions {
                poll_interval_s: Some(config.poll_interval_s),
                timeline_interval_s: config.timeline_interval_s,
                ..MeterOptions::default()
            },
        );
        let epoch_unix_s = unix_now_s() - meter.now_s();
        let mut notes = d.notes;
        notes.extend(meter.thread_error().map(str::to_string));
        let mut domains = meter.domains();
        for (d, sb) in domains.iter_mut().zip(&standby) {
            if *sb {
                d.counted_in_total = false;
            }
        }
        Session {
            domains,
            standby,
            max_power_w,
            ended: Default::default(),
            epoch_unix_s,
            meter,
            config,
            absent: d.absent,
            notes,
            idle_w,
            power_bounds_w,
            setup_steps,
            windows: HashMap::new(),
            seq: NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            machine_cpu: true,
            gpus: d.gpus,
            gpu_choice: d.gpu_choice,
            gpu_sampler: d.gpu_sampler,
            gpu_recorder: None,
        }
    }

    /// Whether windows read the machine's CPU times (`/proc/stat`) at their boundaries: on by
    /// default, for CPU-time attribution when the report context gives the job's CPU time.
    /// Callers that never give it (the Python bindings' in-process windows) turn it off, which
    /// halves the cost of a begin/end pair.
    pub fn set_machine_cpu_times(&mut self, on: bool) {
        self.machine_cpu = on;
    }

    fn machine_cpu_times(&self) -> Option<CpuTimes> {
        self.machine_cpu
            .then(|| procinfo::machine_cpu_times(&self.config.procfs_root))
            .flatten()
    }

    /// The meter (for live views: `snapshot`, `now_s`).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Domains measured, in meter order (standby ones included, not counted).
    pub fn domains(&self) -> &[DomainDesc] {
        &self.domains
    }

    /// Per domain (meter order): whether a standby sensor reads it.
    pub fn standby(&self) -> &[bool] {
        &self.standby
    }

    /// Sensors not used, with reasons and fixes.
    pub fn absent(&self) -> &[AbsentSensor] {
        &self.absent
    }

    /// How the job's GPUs were chosen among the node's, when the config asked for the job's
    /// ([`crate::config::GpuScope::Job`]); its `unmatched` entries make a request invalid.
    pub fn gpu_choice(&self) -> Option<&GpuChoice> {
        self.gpu_choice.as_ref()
    }

    /// Discovery notes (fallbacks) that reports carry as warnings.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Open a named window. Windows nest and overlap freely.
    pub fn begin(&mut self, name: &str) -> WindowId {
        let cpu_begin = self.machine_cpu_times();
        let id = self.meter.begin(name);
        if cpu_begin.is_some() {
            self.windows.insert(
                id,
                WindowExtras {
                    cpu_begin,
                    cpu_end: None,
                },
            );
        }
        id
    }

    /// Close a window and return its energy per domain (meter order).
    pub fn end(&mut self, id: WindowId) -> Result<WindowEnergy, WindowError> {
        let e = self.meter.end(id)?;
        let cpu_end = self.machine_cpu_times();
        if let Some(x) = self.windows.get_mut(&id) {
            x.cpu_end = cpu_end;
            self.ended.push_back(id);
            while self.ended.len() > ENDED_WINDOWS_KEPT {
                if let Some(old) = self.ended.pop_front() {
                    self.windows.remove(&old);
                }
            }
        }
        Ok(e)
    }

    /// Stop background reading (windows already closed stay reportable).
    pub fn stop(&mut self) {
        self.meter.stop();
        if let Some(r) = self.gpu_recorder.as_mut() {
            r.stop();
        }
    }

    /// The wrapped job's root process: GPU processes in its tree are the job's when GPU
    /// energy is attributed (NVML per-process utilisation).
    /// Starts the once-a-second sampling (nothing is sampled for sessions without a job).
    pub fn set_job_root(&mut self, pid: u32) {
        if let Some(r) = &self.gpu_recorder {
            r.set_job_root(pid);
        } else if let Some(s) = self.gpu_sampler.take() {
            let r = GpuRecorder::start(s, self.config.procfs_root.clone());
            r.set_job_root(pid);
            self.gpu_recorder = Some(r);
        }
    }

    /// Gather the measured inputs of a closed window (see [`ReportInputs`]).
    pub fn inputs(&self, w: &WindowEnergy, ctx: &ReportContext) -> ReportInputs {
        self.inputs_to(w, ctx, None)
    }

    /// [`Session::inputs`], with the machine's CPU times at the window's end given (a
    /// window still open ends now).
    fn inputs_to(
        &self,
        w: &WindowEnergy,
        ctx: &ReportContext,
        cpu_now: Option<CpuTimes>,
    ) -> ReportInputs {
        let x = self.windows.get(&w.id).copied().map(|mut x| {
            x.cpu_end = x.cpu_end.or(cpu_now);
            x
        });
        let started_unix_s = (self.epoch_unix_s + w.begin_t_s).floor() as i64;
        let machine_busy_cpu_s = x
            .and_then(|x| Some((x.cpu_begin?, x.cpu_end?)))
            .map(|(a, b)| b.busy_ticks.saturating_sub(a.busy_ticks) as f64 * TICK_S);
        let id = ctx.id.clone().unwrap_or_else(|| {
            format!(
                "{}-{:x}-{}-{}",
                wallclock::compact_utc(started_unix_s),
                std::process::id(),
                self.seq,
                w.id.0
            )
        });
        let usage = procinfo::self_usage();
        // Gaps clipped to the window, with their domain's index (names repeat between a
        // sensor and its standby), and the seconds each domain went unread.
        let gaps: Vec<(usize, Gap)> = self
            .meter
            .indexed_gaps()
            .into_iter()
            .flat_map(|(k, g)| {
                clip_gaps(std::slice::from_ref(&g), w.begin_t_s, w.end_t_s)
                    .into_iter()
                    .map(move |g| (k, g))
            })
            .collect();
        let mut gap_s = vec![0.0; self.domains.len()];
        for (k, g) in &gaps {
            if let Some(s) = gap_s.get_mut(*k) {
                *s += (g.to_s - g.from_s).max(0.0);
            }
        }
        let (gpu_samples, gpu_job_pids) = self
            .gpu_recorder
            .as_ref()
            .map(GpuRecorder::collected)
            .unwrap_or_default();
        ReportInputs {
            id,
            started_at: wallclock::rfc3339_utc(started_unix_s),
            duration_s: w.duration_s(),
            hostname: procinfo::hostname(&self.config.procfs_root),
            cpu_model: procinfo::cpu_model(&self.config.procfs_root),
            domains: self.domains.clone(),
            joules: w.per_domain.iter().map(|j| j.0).collect(),
            idle_w: self.idle_w.clone(),
            standby: self.standby.clone(),
            max_power_w: self.max_power_w.clone(),
            gaps: gaps
                .iter()
                .filter(|(k, _)| !self.standby.get(*k).copied().unwrap_or(false))
                .map(|(_, g)| g.clone())
                .collect(),
            gap_s,
            power_bounds_w: self.power_bounds_w.clone(),
            integration_err_j: w.integration_err_j.clone(),
            machine_busy_cpu_s,
            meter_cpu_s: self.meter.cpu_s(),
            peak_rss_bytes: usage.peak_rss_bytes,
            reads: self.meter.reads(),
            setup_steps: self.setup_steps.clone(),
            timeline: clip_timeline(&self.meter.timeline(), w.begin_t_s, w.end_t_s),
            notes: self.notes.clone(),
            gpus: self.gpus.clone(),
            gpu_choice: self.gpu_choice.clone(),
            gpu_samples,
            gpu_job_pids,
        }
    }

    /// The `wattprint.run/v1` report of a closed window, with the carbon inputs already in
    /// `ctx` (or none). Front ends call [`Session::finish`].
    pub fn report(&self, w: &WindowEnergy, ctx: &ReportContext) -> RunReport {
        assemble(&self.inputs(w, ctx), ctx)
    }

    /// The finished report of a closed window, as every front end (`run`, Python, the agent's
    /// windows) produces it: the git commit of the working directory (unless `ctx` has one),
    /// the carbon inputs resolved for the window's start and duration ([`wattprint_carbon::resolve`]:
    /// the only I/O; a failure is a warning, never a lost measurement), then the engine's
    /// [`STEPS`](crate::report::STEPS), carbon among them. What it returns is what is stored.
    pub fn finish(
        &self,
        w: &WindowEnergy,
        ctx: ReportContext,
        carbon: &wattprint_carbon::CarbonOptions,
    ) -> RunReport {
        let inputs = self.inputs(w, &ctx);
        finish_inputs(&inputs, ctx, carbon)
    }

    /// [`Session::finish`] for a window still open, up to now, leaving it open: a checkpoint
    /// of a long run. The same steps, and the id its final report will have.
    pub fn finish_so_far(
        &self,
        id: WindowId,
        ctx: ReportContext,
        carbon: &wattprint_carbon::CarbonOptions,
    ) -> Result<RunReport, WindowError> {
        let w = self.meter.peek(id)?;
        let cpu_now = self.machine_cpu_times();
        let inputs = self.inputs_to(&w, &ctx, cpu_now);
        Ok(finish_inputs(&inputs, ctx, carbon))
    }
}

/// The git commit, carbon and the engine's steps over gathered inputs ([`Session::finish`]).
fn finish_inputs(
    inputs: &ReportInputs,
    mut ctx: ReportContext,
    carbon: &wattprint_carbon::CarbonOptions,
) -> RunReport {
    if ctx.git_commit.is_none() {
        ctx.git_commit = std::env::current_dir()
            .ok()
            .and_then(|d| wattprint_store::git::head_commit(&d));
    }
    resolve_carbon(&mut ctx, inputs, carbon);
    assemble(inputs, &ctx)
}

/// Resolves `carbon` for the window `inputs` describe into `ctx.carbon` (counting the run's
/// own hardware for embodied carbon unless told otherwise); a failure becomes a warning.
pub fn resolve_carbon(
    ctx: &mut ReportContext,
    inputs: &ReportInputs,
    carbon: &wattprint_carbon::CarbonOptions,
) {
    let when = wattprint_carbon::RunTime::new(&inputs.started_at, inputs.duration_s);
    match wattprint_carbon::resolve(carbon, when) {
        Ok(c) => ctx.carbon = Some(c.counting_run_hardware()),
        Err(e) => ctx.warnings.push(format!("carbon not computed: {e}")),
    }
}

/// Gaps overlapping `[from_s, to_s]`, clipped to it, with times relative to `from_s`.
pub fn clip_gaps(gaps: &[Gap], from_s: f64, to_s: f64) -> Vec<Gap> {
    gaps.iter()
        .filter(|g| g.to_s >= from_s && g.from_s <= to_s)
        .map(|g| Gap {
            domain: g.domain.clone(),
            from_s: g.from_s.max(from_s) - from_s,
            to_s: g.to_s.min(to_s) - from_s,
            reason: g.reason.clone(),
        })
        .collect()
}

/// The timeline points within `[from_s, to_s]`, times relative to `from_s`, cumulative
/// energies relative to the first kept point.
pub fn clip_timeline(t: &Timeline, from_s: f64, to_s: f64) -> Timeline {
    let mut out = Timeline::new(t.max_points);
    let mut base: Option<Vec<f64>> = None;
    for (ts, c) in t.t_s.iter().zip(&t.cumulative_j) {
        if *ts < from_s || *ts > to_s {
            continue;
        }
        let b = base.get_or_insert_with(|| c.clone());
        out.push(
            ts - from_s,
            c.iter()
                .enumerate()
                .map(|(k, v)| v - b.get(k).copied().unwrap_or(0.0))
                .collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_sensors::fake::FakeSensor;

    #[test]
    fn report_ids_are_unique_across_sessions_of_one_process() {
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let mut s = Session::with_discovery(SensorConfig::default(), Discovery::default());
            for _ in 0..2 {
                let w = s.begin("w");
                let e = s.end(w).unwrap();
                assert!(ids.insert(s.report(&e, &ReportContext::default()).id));
            }
        }
        assert_eq!(ids.len(), 6);
    }

    /// A sensorless session whose machine CPU times come from a fake procfs under `dir`.
    fn session_on_fake_procfs(dir: &std::path::Path) -> (Session, std::path::PathBuf) {
        let proc = dir.join("proc");
        wattprint_sensors::fake_tree::write_fake_procfs(&proc, "CPU", 1, 1000, 100, 100).unwrap();
        let config = SensorConfig {
            procfs_root: proc.clone(),
            ..SensorConfig::default()
        };
        (Session::with_discovery(config, Discovery::default()), proc)
    }

    #[test]
    fn machine_cpu_times_are_read_only_when_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, proc) = session_on_fake_procfs(dir.path());
        let busy = |s: &mut Session| {
            let w = s.begin("w");
            wattprint_sensors::fake_tree::set_fake_stat(&proc, 300, 100).unwrap();
            let e = s.end(w).unwrap();
            wattprint_sensors::fake_tree::set_fake_stat(&proc, 100, 100).unwrap();
            s.inputs(&e, &ReportContext::default()).machine_busy_cpu_s
        };
        assert!(busy(&mut s).is_some_and(|b| b > 0.0));
        s.set_machine_cpu_times(false);
        assert_eq!(busy(&mut s), None);
    }

    #[test]
    fn ended_windows_hold_bounded_memory_and_keep_their_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = session_on_fake_procfs(dir.path());
        let before = unix_now_s().floor() as i64;
        let first = s.begin("first");
        let first = s.end(first).unwrap();
        for _ in 0..ENDED_WINDOWS_KEPT + 10 {
            let w = s.begin("step");
            s.end(w).unwrap();
        }
        assert_eq!(s.windows.len(), ENDED_WINDOWS_KEPT);
        // Forgotten extras lose the machine CPU times, never the wall-clock start.
        let x = s.inputs(&first, &ReportContext::default());
        assert_eq!(x.machine_busy_cpu_s, None);
        let t = wallclock::rfc3339_utc(before);
        let t2 = wallclock::rfc3339_utc(before + 1);
        assert!(
            x.started_at == t || x.started_at == t2,
            "{} vs {t}",
            x.started_at
        );
        // Without machine CPU times nothing is kept per window at all.
        s.set_machine_cpu_times(false);
        s.windows.clear();
        s.ended.clear();
        for _ in 0..100 {
            let w = s.begin("step");
            s.end(w).unwrap();
        }
        assert!(s.windows.is_empty() && s.ended.is_empty());
    }

    #[test]
    fn a_session_reports_its_window() {
        let mut d = Discovery::default();
        d.sensors.push(Box::new(FakeSensor::constant_counter(
            "package-0",
            50.0,
            1e5,
            2.62e5,
        )));
        let mut s = Session::with_discovery(SensorConfig::default(), d);
        let w = s.begin("job");
        let e = s.end(w).unwrap();
        let r = s.report(
            &e,
            &ReportContext {
                command: vec!["true".into()],
                exit_code: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(r.schema, "wattprint.run/v1");
        assert_eq!(r.command, vec!["true"]);
        assert_eq!(r.energy.domains.len(), 1);
        // Fake counter: 50 W x duration.
        assert!((r.energy.total_j - 50.0 * r.duration_s).abs() < 1e-6);
        assert!(r.started_at.ends_with('Z'));
        assert!(r.overhead.peak_rss_bytes > 0);
        assert!(s.end(w).is_err());
    }

    #[test]
    fn a_finish_so_far_is_the_open_windows_energy_under_its_final_id() {
        let dir = tempfile::tempdir().unwrap();
        let (_, proc) = session_on_fake_procfs(dir.path());
        let mut d = Discovery::default();
        d.sensors.push(Box::new(FakeSensor::constant_counter(
            "package-0",
            50.0,
            1e5,
            2.62e5,
        )));
        let config = SensorConfig {
            procfs_root: proc.clone(),
            ..SensorConfig::default()
        };
        let mut s = Session::with_discovery(config, d);
        let w = s.begin("job");
        wattprint_sensors::fake_tree::set_fake_stat(&proc, 300, 100).unwrap();
        let carbon = wattprint_carbon::CarbonOptions::default();
        let so_far = s
            .finish_so_far(w, ReportContext::default(), &carbon)
            .unwrap();
        assert!((so_far.energy.total_j - 50.0 * so_far.duration_s).abs() < 1e-6);
        let x = s.inputs(&s.meter.peek(w).unwrap(), &ReportContext::default());
        assert_eq!(
            x.machine_busy_cpu_s, None,
            "an open window's end is not read yet"
        );
        let e = s.end(w).unwrap();
        let end = s.finish(&e, ReportContext::default(), &carbon);
        assert_eq!(end.id, so_far.id);
        assert!(end.duration_s >= so_far.duration_s);
        assert!(s
            .finish_so_far(w, ReportContext::default(), &carbon)
            .is_err());
    }

    #[test]
    fn gaps_are_clipped_to_the_window() {
        let g = |a, b| Gap {
            domain: "d".into(),
            from_s: a,
            to_s: b,
            reason: "x".into(),
        };
        let c = clip_gaps(&[g(0.0, 1.0), g(4.0, 12.0), g(20.0, 21.0)], 5.0, 10.0);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].from_s, c[0].to_s), (0.0, 5.0));
    }

    #[test]
    fn the_timeline_is_clipped_and_rebased() {
        let mut t = Timeline::new(16);
        for i in 0..10 {
            t.push(i as f64, vec![i as f64 * 10.0]);
        }
        let c = clip_timeline(&t, 2.0, 5.0);
        assert_eq!(c.t_s, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(c.cumulative_j[3], vec![30.0]);
    }
}
