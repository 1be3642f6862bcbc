//! `run`'s forecast: the progress the workload reports (work-file `progress=` and
//! `step= total=` lines) against the energy counted so far, the prediction at completion
//! ([`wattprint_core::forecast`]), `--budget-kwh` and `--stop-over-budget`.

use crate::child::Forwarder;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use wattprint_core::forecast::{
    ForecastReport, Forecaster, Prediction, ProgressSample, JOULES_PER_KWH,
};
use wattprint_engine::workfile::ProgressTail;
use wattprint_engine::Session;

/// Default time the command has to exit after SIGTERM before it gets SIGKILL
/// (`--stop-grace`): 10 s (systemd's
/// `TimeoutStopSec` is 90 s and Kubernetes' grace period 30 s; a training loop that saves a
/// checkpoint on SIGTERM needs seconds, and the budget is already being overrun).
pub const STOP_GRACE_S: f64 = 10.0;

/// The longest wait between two looks at the work file, s (1 s: a forecast a person reads,
/// and one `stat` per second when nothing was appended).
const MAX_POLL_S: f64 = 1.0;

/// `--budget-kwh` and `--stop-over-budget`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    /// Energy budget of the whole run, kWh.
    pub kwh: Option<f64>,
    /// Stop the command when the forecast passes the budget.
    pub stop: bool,
    /// Time between SIGTERM and SIGKILL when stopping, s.
    pub grace_s: f64,
}

/// What the watcher has seen, read by the live view and at the end.
#[derive(Default)]
pub struct Watch {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    forecaster: Forecaster,
    prediction: Option<Prediction>,
    over_budget: bool,
    stopped: Option<String>,
    /// Operational grams per joule for the live view (PUE x intensity), once resolved.
    g_per_j: Option<f64>,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live view's words for the forecast (empty when there is none yet).
    pub fn live_text(&self) -> String {
        let st = self.lock();
        let Some(p) = st.prediction else {
            return match st.forecaster.last() {
                Some(s) => format!("  {:.0} %", s.progress * 100.0),
                None => String::new(),
            };
        };
        let carbon = st
            .g_per_j
            .map(|g| format!(", {}", wattprint_core::units::Grams(p.energy_j * g)))
            .unwrap_or_default();
        format!(
            "  {:.0} %  at 100 %: {} ({} to {}){carbon}{}",
            p.at_progress * 100.0,
            wattprint_core::Joules(p.energy_j),
            wattprint_core::Joules(p.energy_j_low),
            wattprint_core::Joules(p.energy_j_high),
            if st.over_budget { "  OVER BUDGET" } else { "" }
        )
    }

    /// The report's section (none when the workload reported no progress), and the warnings
    /// about the budget for the report.
    pub fn report(&self, budget: Budget) -> (Option<ForecastReport>, Vec<String>) {
        let st = self.lock();
        if st.forecaster.samples() == 0 {
            let warnings = budget.kwh.map(|b| {
                format!(
                    "--budget-kwh {b}: the command reported no progress (progress=F or \
                     step=N total=M lines in $WATTPRINT_WORK_FILE), so nothing was forecast"
                )
            });
            return (None, warnings.into_iter().collect());
        }
        let mut r = ForecastReport::from_forecaster(&st.forecaster, budget.kwh);
        r.over_budget |= st.over_budget;
        r.stopped = st.stopped.clone();
        let mut warnings = Vec::new();
        if let Some(why) = &st.stopped {
            warnings.push(why.clone());
        } else if r.over_budget {
            warnings.push(format!(
                "the forecast passed the budget of {} kWh (--budget-kwh) during the run",
                budget.kwh.unwrap_or(0.0)
            ));
        }
        (Some(r), warnings)
    }
}

/// Energy counted in the run's total since `base`, J, as the trust step judges it so far,
/// the power now, W, whether a model is counted, and the time since `base`, s.
pub struct SoFar {
    pub t_s: f64,
    pub joules: f64,
    pub watts: f64,
    pub estimate: bool,
}

/// Read the sensors now: what the run has counted since `base`.
pub fn so_far(session: &Session, base: &wattprint_sensors::meter::MeterSnapshot) -> SoFar {
    let domains = session.domains();
    let snap = session.meter().sample_now();
    let delta: Vec<f64> = (0..domains.len())
        .map(|k| snap.cumulative[k].0 - base.cumulative[k].0)
        .collect();
    // The trust step's judgement so far: a dead counter's standby counts here too.
    let counted = wattprint_core::trust::live_counted(
        domains,
        session.standby(),
        &delta,
        snap.t_s - base.t_s,
    );
    let counted: Vec<usize> = (0..domains.len()).filter(|&k| counted[k]).collect();
    SoFar {
        t_s: snap.t_s - base.t_s,
        joules: counted.iter().map(|&k| delta[k]).sum(),
        watts: counted
            .iter()
            .filter_map(|&k| snap.power[k].map(|w| w.0))
            .sum(),
        estimate: counted
            .iter()
            .any(|&k| domains[k].method == wattprint_core::Method::Model),
    }
}

/// Watch the work file at `path` until `stopped`'s sender is dropped (the command was
/// reaped): each new progress report is a sample of the energy counted so far; a forecast
/// over `budget` warns once on stderr and, with `--stop-over-budget`, stops the command
/// (SIGTERM through the forwarder, SIGKILL `budget.grace_s` later).
#[allow(clippy::too_many_arguments)]
pub fn watch(
    session: &Session,
    path: &Path,
    budget: Budget,
    interval_s: f64,
    live: bool,
    carbon: &wattprint_carbon::CarbonOptions,
    fwd: &Forwarder,
    watch: &Watch,
    stopped: &mpsc::Receiver<()>,
) {
    let base = session.meter().snapshot();
    let mut tail = ProgressTail::new(path);
    let mut resolved = false;
    let tick = Duration::from_secs_f64(interval_s.clamp(0.01, MAX_POLL_S));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
        let Some(progress) = tail.poll() else {
            continue;
        };
        let now = so_far(session, &base);
        let mut st = watch.lock();
        st.forecaster.push(ProgressSample {
            progress,
            energy_j: now.joules,
            t_s: now.t_s,
        });
        st.prediction = st.forecaster.predict().ok();
        let Some(p) = st.prediction else {
            continue;
        };
        if live && !resolved {
            // Resolved once, when there is something to show (a live provider is a request:
            // made without holding the lock the live view takes).
            resolved = true;
            drop(st);
            let g_per_j =
                wattprint_carbon::resolve(carbon, wattprint_carbon::RunTime::new("", 0.0))
                    .ok()
                    .map(|c| c.pue * c.intensity_g_per_kwh() / JOULES_PER_KWH);
            st = watch.lock();
            st.g_per_j = g_per_j;
        }
        let Some(budget_kwh) = budget.kwh else {
            continue;
        };
        if !wattprint_core::forecast::over_budget(&p, Some(budget_kwh)) || st.over_budget {
            continue;
        }
        st.over_budget = true;
        let at = p.at_progress * 100.0;
        let (point, low, high) = (
            wattprint_core::Joules(p.energy_j),
            wattprint_core::Joules(p.energy_j_low),
            wattprint_core::Joules(p.energy_j_high),
        );
        let budget_j = wattprint_core::Joules(budget_kwh * JOULES_PER_KWH);
        let over = format!(
            "at {at:.0} % the forecast at completion is {point} ({low} to {high}), over the \
             budget of {budget_kwh} kWh ({budget_j})"
        );
        if !budget.stop {
            eprintln!(
                "{}wattprint: warning: {over} (--budget-kwh)",
                if live { "\r\x1b[2K" } else { "" }
            );
            continue;
        }
        let why = format!("stopped by wattprint (--stop-over-budget): {over}");
        eprintln!(
            "{}wattprint: {why}; sending SIGTERM (SIGKILL in {} s)",
            if live { "\r\x1b[2K" } else { "" },
            budget.grace_s
        );
        st.stopped = Some(why);
        drop(st);
        fwd.signal_child(libc::SIGTERM);
        if let Err(mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(Duration::from_secs_f64(budget.grace_s))
        {
            eprintln!(
                "wattprint: the command outlived SIGTERM by {} s: SIGKILL",
                budget.grace_s
            );
            fwd.signal_child(libc::SIGKILL);
        }
        return;
    }
}
