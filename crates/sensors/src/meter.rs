//! The meter: reads sensors with the least overhead that keeps the numbers right.
//!
//! Counters are read at window boundaries plus a guard read often enough that a wrap is never
//! missed; power and model sensors are polled and integrated (trapezoid). All arithmetic uses
//! a monotonic clock (`Instant`), as seconds since the meter's epoch.

use crate::sensor::{RawReading, ReadCadence, Sensor, SensorError, SensorInfo};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wattprint_core::counter::{wrap_guard_period_s, CounterDiff, CounterStep, DEFAULT_MAX_POWER_W};
use wattprint_core::integrate::Trapezoid;
use wattprint_core::report::Gap;
use wattprint_core::timeline::Timeline;
use wattprint_core::trust::implausible_interval;
use wattprint_core::window::{WindowEnergy, WindowError, WindowId, WindowSet};
use wattprint_core::{DomainDesc, Joules, Watts};

/// Meter settings.
#[derive(Clone, Debug)]
pub struct MeterOptions {
    /// Poll interval for power and model sensors, overriding their preference, s.
    pub poll_interval_s: Option<f64>,
    /// Also read every sensor at this interval to feed the timeline (and a live view), s.
    /// `None`: counters are read only at boundaries and by the wrap guard.
    pub timeline_interval_s: Option<f64>,
    /// Timeline resolution bound (points kept).
    pub timeline_points: usize,
}

impl Default for MeterOptions {
    fn default() -> Self {
        MeterOptions {
            poll_interval_s: None,
            timeline_interval_s: None,
            timeline_points: 2048,
        }
    }
}

/// A view of the meter at one instant.
#[derive(Clone, Debug)]
pub struct MeterSnapshot {
    pub t_s: f64,
    pub cumulative: Vec<Joules>,
    /// Power over the last read interval, per domain, when known.
    pub power: Vec<Option<Watts>>,
}

enum Tracker {
    Counter(CounterDiff),
    Power(Trapezoid),
    Fresh,
}

struct Slot {
    sensor: Box<dyn Sensor>,
    first: usize,
    buf: Vec<RawReading>,
    trackers: Vec<Tracker>,
    /// Per domain: the bound of a plausible counter interval, W (see
    /// `wattprint_core::trust::implausible_interval`).
    max_w: Vec<Option<f64>>,
    /// Per domain: when its counter last gave a value (the baseline its next delta is from).
    counter_t_s: Vec<Option<f64>>,
    /// Per domain: an open gap (start time, reason).
    gap: Vec<Option<(f64, String)>>,
}

struct State {
    epoch: Instant,
    slots: Vec<Slot>,
    domains: Vec<DomainDesc>,
    cumulative: Vec<Joules>,
    /// Per domain, the cumulative bound of the trapezoid's integration error (power sensors).
    integration_err: Vec<Joules>,
    power: Vec<Option<Watts>>,
    last_read_t_s: f64,
    windows: WindowSet,
    timeline: Timeline,
    /// Closed gaps, with the domain's index.
    gaps: Vec<(usize, Gap)>,
    reads: u64,
    cpu_s: f64,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Reads a set of sensors; see the module docs.
pub struct Meter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    period_s: Option<f64>,
    /// Why the background thread could not start, if it could not (then sensors are read
    /// only at window boundaries and on demand).
    thread_error: Option<String>,
}

impl Meter {
    /// Build a meter over `sensors`, take the first reading (the baseline) and start the
    /// background thread if any sensor needs polling or a wrap guard.
    pub fn start(sensors: Vec<Box<dyn Sensor>>, opts: MeterOptions) -> Meter {
        let mut domains = Vec::new();
        let mut slots = Vec::new();
        let mut periods: Vec<f64> = Vec::new();
        for sensor in sensors {
            let info: SensorInfo = sensor.info().clone();
            let n = info.domains.len();
            match info.cadence {
                ReadCadence::Boundaries { guard_s } => periods.extend(guard_s),
                ReadCadence::Poll { preferred_s } => {
                    periods.push(opts.poll_interval_s.unwrap_or(preferred_s))
                }
            }
            let max_w = (0..n).map(|k| sensor.max_power_w(k)).collect();
            slots.push(Slot {
                max_w,
                counter_t_s: vec![None; n],
                sensor,
                first: domains.len(),
                buf: vec![RawReading::Missing; n],
                trackers: (0..n).map(|_| Tracker::Fresh).collect(),
                gap: vec![None; n],
            });
            domains.extend(info.domains);
        }
        periods.extend(opts.timeline_interval_s);
        let period_s = periods
            .into_iter()
            .filter(|p| p.is_finite() && *p > 0.0)
            .reduce(f64::min)
            .map(|p| p.max(1e-4));
        let n = domains.len();
        let state = State {
            epoch: Instant::now(),
            slots,
            domains,
            cumulative: vec![Joules::ZERO; n],
            integration_err: vec![Joules::ZERO; n],
            power: vec![None; n],
            last_read_t_s: 0.0,
            windows: WindowSet::new(),
            timeline: Timeline::new(opts.timeline_points),
            gaps: Vec::new(),
            reads: 0,
            cpu_s: 0.0,
            stopping: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
        });
        sample(&mut lock(&shared));
        let spawned = period_s.map(|p| {
            let sh = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("wattprint-meter".into())
                .spawn(move || poll_loop(&sh, p))
        });
        let (thread, thread_error) = match spawned {
            Some(Ok(t)) => (Some(t), None),
            Some(Err(e)) => (
                None,
                Some(format!(
                    "the meter's background thread could not start ({e}): sensors are read \
                     only at window boundaries, so power-only sensors are integrated over the \
                     whole window and counters are unguarded against a wrap"
                )),
            ),
            None => (None, None),
        };
        Meter {
            shared,
            period_s: thread.as_ref().and(period_s),
            thread,
            thread_error,
        }
    }

    /// Why the background thread could not start, when it could not.
    pub fn thread_error(&self) -> Option<&str> {
        self.thread_error.as_deref()
    }

    /// The background read period, if a background thread runs, s.
    pub fn period_s(&self) -> Option<f64> {
        self.period_s
    }

    /// All domains, in the order of every per-domain vector the meter returns.
    pub fn domains(&self) -> Vec<DomainDesc> {
        lock(&self.shared).domains.clone()
    }

    /// Read every sensor now and return the state.
    pub fn sample_now(&self) -> MeterSnapshot {
        let mut st = lock(&self.shared);
        sample(&mut st);
        snapshot(&st)
    }

    /// The state as of the last read, without reading.
    pub fn snapshot(&self) -> MeterSnapshot {
        snapshot(&lock(&self.shared))
    }

    /// Open a named window (reads the sensors first).
    pub fn begin(&self, name: &str) -> WindowId {
        let mut st = lock(&self.shared);
        sample(&mut st);
        let (t, c) = (st.last_read_t_s, with_err(&st));
        st.windows.begin(name, t, &c)
    }

    /// Close a window (reads the sensors first) and return its energy per domain.
    pub fn end(&self, id: WindowId) -> Result<WindowEnergy, WindowError> {
        let mut st = lock(&self.shared);
        sample(&mut st);
        let (t, c) = (st.last_read_t_s, with_err(&st));
        st.windows.end(id, t, &c).map(split_err)
    }

    /// The energy of an open window so far (reads the sensors first), leaving it open.
    pub fn peek(&self, id: WindowId) -> Result<WindowEnergy, WindowError> {
        let mut st = lock(&self.shared);
        sample(&mut st);
        let (t, c) = (st.last_read_t_s, with_err(&st));
        st.windows.peek(id, t, &c).map(split_err)
    }

    /// Gaps recorded so far (closed ones, plus open ones up to now).
    pub fn gaps(&self) -> Vec<Gap> {
        self.indexed_gaps().into_iter().map(|(_, g)| g).collect()
    }

    /// As [`Meter::gaps`], each with its domain's index (names may repeat across sensors).
    pub fn indexed_gaps(&self) -> Vec<(usize, Gap)> {
        let st = lock(&self.shared);
        let mut gaps = st.gaps.clone();
        for slot in &st.slots {
            for (k, g) in slot.gap.iter().enumerate() {
                if let Some((from, reason)) = g {
                    gaps.push((
                        slot.first + k,
                        Gap {
                            domain: st.domains[slot.first + k].name.clone(),
                            from_s: *from,
                            to_s: st.last_read_t_s,
                            reason: reason.clone(),
                        },
                    ));
                }
            }
        }
        gaps
    }

    pub fn timeline(&self) -> Timeline {
        lock(&self.shared).timeline.clone()
    }

    /// Sensor reads performed (one per sensor per sample).
    pub fn reads(&self) -> u64 {
        lock(&self.shared).reads
    }

    /// CPU time spent reading and accounting, on whatever thread did it, s.
    pub fn cpu_s(&self) -> f64 {
        lock(&self.shared).cpu_s
    }

    /// Seconds since the meter started, on its monotonic clock.
    pub fn now_s(&self) -> f64 {
        lock(&self.shared).epoch.elapsed().as_secs_f64()
    }

    /// Stop the background thread (if any). Readings and windows stay available.
    pub fn stop(&mut self) {
        lock(&self.shared).stopping = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock(sh: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the numbers half-updated in a way that
    // matters more than losing them: recover the state.
    sh.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn snapshot(st: &State) -> MeterSnapshot {
    MeterSnapshot {
        t_s: st.last_read_t_s,
        cumulative: st.cumulative.clone(),
        power: st.power.clone(),
    }
}

fn poll_loop(sh: &Shared, period_s: f64) {
    let period = Duration::from_secs_f64(period_s);
    let start = Instant::now();
    let mut k: u32 = 1;
    // The polling thread's CPU is counted whole (its wake-ups included) with one clock read
    // per tick, not bracketed around each read as on the other threads.
    let mut cpu_seen = thread_cpu_s();
    let mut st = lock(sh);
    loop {
        // Checked under the lock before every wait, so a stop requested before this thread
        // first waited is not lost.
        if st.stopping {
            return;
        }
        let deadline = start + period * k;
        let now = Instant::now();
        if now < deadline {
            let (g, _) = sh
                .wake
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner());
            st = g;
            if st.stopping {
                return;
            }
            if Instant::now() < deadline {
                continue; // spurious wake-up
            }
        }
        if st.stopping {
            return;
        }
        read_all(&mut st);
        let cpu_now = thread_cpu_s();
        st.cpu_s += (cpu_now - cpu_seen).max(0.0);
        cpu_seen = cpu_now;
        // Missed ticks are skipped, not bunched: the next deadline is the next one in the future.
        let elapsed = start.elapsed().as_secs_f64();
        k = ((elapsed / period_s).floor() as u32)
            .saturating_add(1)
            .max(k + 1);
    }
}

/// CPU time of the calling thread (user + system), s, from `CLOCK_THREAD_CPUTIME_ID`; 0 when
/// the clock cannot be read. The meter's own cost, and the agent's per-thread overhead.
pub fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is valid
    // on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Read every sensor once and fold the readings into the cumulative energies, counting the
/// CPU time this takes into the meter's own.
fn sample(st: &mut State) {
    let cpu0 = thread_cpu_s();
    read_all(st);
    st.cpu_s += (thread_cpu_s() - cpu0).max(0.0);
}

/// The cumulative energies followed by the cumulative integration-error bounds: windows
/// subtract both at their boundaries ([`split_err`] takes them apart again).
fn with_err(st: &State) -> Vec<Joules> {
    let mut c = st.cumulative.clone();
    c.extend_from_slice(&st.integration_err);
    c
}

/// A window over [`with_err`]'s vector: its energies, and its integration-error bounds.
fn split_err(mut w: WindowEnergy) -> WindowEnergy {
    let n = w.per_domain.len() / 2;
    w.integration_err_j = w.per_domain.split_off(n).iter().map(|j| j.0).collect();
    w
}

/// Read every sensor once and fold the readings into the cumulative energies.
fn read_all(st: &mut State) {
    let t_s = st.epoch.elapsed().as_secs_f64();
    let dt = t_s - st.last_read_t_s;
    let State {
        slots,
        domains,
        cumulative,
        integration_err,
        power,
        gaps,
        reads,
        ..
    } = st;
    for slot in slots.iter_mut() {
        *reads += 1;
        let res = slot.sensor.read(t_s, &mut slot.buf);
        for k in 0..slot.buf.len() {
            let i = slot.first + k;
            let reading = match &res {
                Ok(()) => Ok(slot.buf[k]),
                Err(e) => Err(e),
            };
            let mut outcome = fold(&mut slot.trackers[k], reading, t_s);
            // A counter interval beyond physics is a gap, not energy: a counter with a wrap
            // range but no declared maximum is bounded by the guard's default maximum.
            // The delta runs from the counter's last value, maybe several reads ago (a
            // missing read in between steps nothing).
            let since = slot.counter_t_s[k].unwrap_or(t_s - dt);
            if let (Fold::Energy(j, _), Ok(RawReading::EnergyCounter { range_j, .. })) =
                (&outcome, reading)
            {
                let max = slot.max_w[k].or(range_j.map(|_| DEFAULT_MAX_POWER_W));
                if let Some(why) = implausible_interval(j.0, t_s - since, max) {
                    outcome = Fold::Discarded(why);
                }
            }
            if matches!(reading, Ok(RawReading::EnergyCounter { .. }))
                && matches!(
                    outcome,
                    Fold::Energy(..) | Fold::Baseline | Fold::Discarded(_)
                )
            {
                slot.counter_t_s[k] = Some(t_s);
            }
            if let (Fold::Gap(reason), Ok(RawReading::Missing)) = (&mut outcome, reading) {
                if let Some(why) = slot.sensor.missing_reason(k) {
                    *reason = why;
                }
            }
            match outcome {
                Fold::Energy(j, err) => {
                    cumulative[i] += j;
                    integration_err[i] += err;
                    power[i] = (dt > 0.0).then(|| Watts(j.0 / dt));
                    if let Some((from, reason)) = slot.gap[k].take() {
                        gaps.push((
                            i,
                            Gap {
                                domain: domains[i].name.clone(),
                                from_s: from,
                                to_s: t_s,
                                reason,
                            },
                        ));
                    }
                }
                Fold::PowerOnly(w) => power[i] = Some(w),
                Fold::Discarded(reason) => {
                    power[i] = None;
                    gaps.push((
                        i,
                        Gap {
                            domain: domains[i].name.clone(),
                            from_s: since,
                            to_s: t_s,
                            reason,
                        },
                    ));
                }
                Fold::Baseline => {}
                Fold::Gap(reason) => {
                    power[i] = None;
                    if slot.gap[k].is_none() {
                        slot.gap[k] = Some((st_last(t_s, dt), reason));
                    }
                }
            }
        }
    }
    st.last_read_t_s = t_s;
    let cum: Vec<f64> = st.cumulative.iter().map(|j| j.0).collect();
    st.timeline.push(t_s, cum);
}

/// A gap starts at the previous successful read: that interval's energy is unknown.
fn st_last(t_s: f64, dt: f64) -> f64 {
    (t_s - dt).max(0.0)
}

enum Fold {
    /// Energy over the interval, and the bound of its integration error (0 for counters).
    Energy(Joules, Joules),
    /// The interval since the previous read is known bad (its energy dropped): a closed gap.
    Discarded(String),
    PowerOnly(Watts),
    Baseline,
    Gap(String),
}

fn fold(tr: &mut Tracker, reading: Result<RawReading, &SensorError>, t_s: f64) -> Fold {
    let reading = match reading {
        Ok(r) => r,
        Err(e) => {
            if let Tracker::Power(p) = tr {
                p.restart();
            }
            return Fold::Gap(e.to_string());
        }
    };
    match reading {
        RawReading::Missing => {
            if let Tracker::Power(p) = tr {
                p.restart();
            }
            Fold::Gap("no reading".into())
        }
        RawReading::EnergyCounter { joules, range_j } => {
            if !joules.is_finite() || joules < 0.0 {
                return Fold::Gap(format!("counter read {joules}, not an energy"));
            }
            let c = match tr {
                Tracker::Counter(c) => c,
                _ => {
                    *tr = Tracker::Counter(CounterDiff::new(range_j));
                    let Tracker::Counter(c) = tr else {
                        unreachable!()
                    };
                    c
                }
            };
            match c.step(joules) {
                CounterStep::Baseline => Fold::Baseline,
                CounterStep::Delta { joules, .. } => Fold::Energy(joules, Joules::ZERO),
                CounterStep::Reset => Fold::Gap("counter went backwards (reset)".into()),
            }
        }
        RawReading::Power { watts } => {
            if !watts.is_finite() || watts < 0.0 {
                if let Tracker::Power(p) = tr {
                    p.restart();
                }
                return Fold::Gap(format!("power read {watts} W, not a power"));
            }
            let p = match tr {
                Tracker::Power(p) => p,
                _ => {
                    *tr = Tracker::Power(Trapezoid::new());
                    let Tracker::Power(p) = tr else {
                        unreachable!()
                    };
                    p
                }
            };
            let (j, err) = p.sample_bounded(t_s, Watts(watts));
            if j == Joules::ZERO {
                Fold::PowerOnly(Watts(watts))
            } else {
                Fold::Energy(j, err)
            }
        }
    }
}

/// The guard period for a counter domain (exposed for sensors that compute their cadence).
pub fn guard_period_s(range_j: Option<f64>, max_power_w: Option<f64>) -> Option<f64> {
    wrap_guard_period_s(range_j, max_power_w)
}
