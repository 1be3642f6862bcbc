//! The windows table: open windows, the totals of ended windows by (bounded) name, and each
//! closed window's report.

use super::{AgentState, StateError};
use std::collections::BTreeMap;
use wattprint_core::report::{RunReport, Work};
use wattprint_core::wallclock::rfc3339_utc_ms;
use wattprint_core::window::WindowId;
use wattprint_engine::report::{assemble, ReportContext, ReportInputs};
use wattprint_engine::session::clip_gaps;

/// Work counts of a window at most (10^18 tokens or inferences: beyond any deployment).
pub const MAX_WINDOW_COUNT: f64 = 1e18;

pub(super) struct OpenWindow {
    name: String,
    labels: BTreeMap<String, String>,
    begin_unix_s: f64,
    begin_t_s: f64,
    begin_cum_j: Vec<f64>,
    /// The meter's CPU time when the window began, s.
    begin_meter_cpu_s: f64,
}

/// The series that ended windows of names beyond `Limits::max_window_names` are added to.
pub const OVERFLOW_WINDOW: &str = "other";

/// Totals of the ended windows of one name (monotonic counters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowTotals {
    pub ended: u64,
    pub energy_j: f64,
    pub carbon_g: f64,
}

/// One open window's energy so far.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenWindowEnergy {
    pub id: u64,
    pub name: String,
    pub begin_unix_s: f64,
    pub energy_j: f64,
    pub carbon_g: f64,
}

impl AgentState {
    /// Open a window.
    pub fn begin_window(
        &mut self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<u64, StateError> {
        if self.windows.len() >= self.limits.max_windows {
            return Err(StateError::TooManyWindows(self.windows.len()));
        }
        let id: WindowId = self.meter.begin(name);
        let snap = self.meter.snapshot();
        self.windows.insert(
            id.0,
            OpenWindow {
                name: name.to_string(),
                labels,
                begin_unix_s: self.unix_of(snap.t_s),
                begin_t_s: snap.t_s,
                begin_cum_j: snap.cumulative.iter().map(|j| j.0).collect(),
                begin_meter_cpu_s: self.meter.cpu_s(),
            },
        );
        Ok(id.0)
    }

    /// Close a window and build its report.
    pub fn end_window(
        &mut self,
        id: u64,
        inferences: Option<f64>,
        tokens: Option<f64>,
    ) -> Result<RunReport, StateError> {
        for (what, v) in [("inferences", inferences), ("tokens", tokens)] {
            if let Some(v) = v {
                if !v.is_finite() || !(0.0..=MAX_WINDOW_COUNT).contains(&v) {
                    return Err(StateError::BadInput(format!(
                        "{what} = {v}: give a count from 0 to {MAX_WINDOW_COUNT:e}"
                    )));
                }
            }
        }
        let open = self.windows.remove(&id).ok_or(StateError::NoWindow(id))?;
        let e = self
            .meter
            .end(WindowId(id))
            .map_err(|_| StateError::NoWindow(id))?;
        let report = self.window_report(id, &open, &e, inferences, tokens);
        let name = if self.window_totals.contains_key(&open.name)
            || self.window_totals.len() < self.limits.max_window_names
        {
            open.name
        } else {
            self.losses.window_names_overflowed += 1;
            OVERFLOW_WINDOW.to_string()
        };
        let entry = self.window_totals.entry(name).or_default();
        entry.ended += 1;
        entry.energy_j += report.energy.total_j;
        entry.carbon_g += report.carbon.total_g;
        Ok(report)
    }

    /// A closed window's `wattprint.run/v1` report, assembled by the engine's steps (carbon
    /// among them) like every other report.
    fn window_report(
        &self,
        id: u64,
        open: &OpenWindow,
        e: &wattprint_core::window::WindowEnergy,
        inferences: Option<f64>,
        tokens: Option<f64>,
    ) -> RunReport {
        let inputs = ReportInputs {
            id: format!("window-{id}"),
            started_at: rfc3339_utc_ms(open.begin_unix_s),
            duration_s: (e.end_t_s - open.begin_t_s).max(0.0),
            domains: self.domains.clone(),
            joules: e.per_domain_j(),
            integration_err_j: e.integration_err_j.clone(),
            idle_w: vec![None; self.domains.len()],
            gaps: clip_gaps(&self.meter.gaps(), open.begin_t_s, e.end_t_s),
            meter_cpu_s: (self.meter.cpu_s() - open.begin_meter_cpu_s).max(0.0),
            peak_rss_bytes: crate::overhead::peak_rss_bytes(),
            reads: self.meter.reads(),
            gpus: self.gpus.clone(),
            ..Default::default()
        };
        let mut labels = open.labels.clone();
        labels.insert("window".into(), open.name.clone());
        let ctx = ReportContext {
            command: vec![open.name.clone()],
            labels,
            work: Work {
                inferences,
                tokens,
                ..Default::default()
            },
            pue: Some(self.pue),
            carbon: Some(self.carbon.resolved.clone()),
            ..Default::default()
        };
        assemble(&inputs, &ctx)
    }

    /// Energy and carbon so far of each open window: (id, name, begin unix s, J, g).
    pub fn open_windows(&self) -> Vec<OpenWindowEnergy> {
        let mut v: Vec<_> = self
            .windows
            .iter()
            .map(|(id, w)| {
                let j: f64 = self
                    .domains
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.counted_in_total)
                    .map(|(k, _)| {
                        self.cumulative_j.get(k).copied().unwrap_or(0.0)
                            - w.begin_cum_j.get(k).copied().unwrap_or(0.0)
                    })
                    .sum();
                OpenWindowEnergy {
                    id: *id,
                    name: w.name.clone(),
                    begin_unix_s: w.begin_unix_s,
                    energy_j: j,
                    carbon_g: self.grams(j),
                }
            })
            .collect();
        v.sort_by_key(|x| x.id);
        v
    }

    pub fn window_totals(&self) -> &BTreeMap<String, WindowTotals> {
        &self.window_totals
    }
}

trait PerDomain {
    fn per_domain_j(&self) -> Vec<f64>;
}

impl PerDomain for wattprint_core::window::WindowEnergy {
    fn per_domain_j(&self) -> Vec<f64> {
        self.per_domain.iter().map(|j| j.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::state;
    use crate::state::Limits;
    use wattprint_sensors::gpu::GpuDevice;

    #[test]
    fn window_report_has_run_fields_and_metrics() {
        let mut st = state(Limits::default());
        let id = st.begin_window("batch", BTreeMap::new()).unwrap();
        let r = st.end_window(id, Some(10.0), Some(1000.0)).unwrap();
        assert_eq!(r.schema, "wattprint.run/v1");
        assert_eq!(r.energy.domains.len(), 1);
        assert!(r.energy.total_j >= 0.0);
        assert_eq!(r.work.tokens, Some(1000.0));
        assert_eq!(r.carbon.intensity_g_per_kwh, 360.0);
        assert!((r.carbon.operational_g - r.energy.total_j / 3.6e6 * 360.0).abs() < 1e-12);
        // The window's ranges come from the same engine steps as a run's.
        let (lo, hi) = (
            r.energy.total_j_low.unwrap(),
            r.energy.total_j_high.unwrap(),
        );
        assert!(lo <= r.energy.total_j && r.energy.total_j <= hi);
        let (glo, ghi) = (
            r.carbon.total_g_low.unwrap(),
            r.carbon.total_g_high.unwrap(),
        );
        assert!(glo <= r.carbon.total_g && r.carbon.total_g <= ghi);
        assert_eq!(r.labels.get("window").map(String::as_str), Some("batch"));
        if r.energy.total_j > 0.0 {
            assert!(r.metrics.joules_per_token.is_some());
            assert!(r.metrics.carbon_per_inference_g.is_some());
        }
        assert_eq!(st.end_window(id, None, None), Err(StateError::NoWindow(id)));
        assert_eq!(st.window_totals()["batch"].ended, 1);
        assert!(matches!(
            st.end_window(99, Some(-1.0), None),
            Err(StateError::BadInput(_))
        ));
    }

    #[test]
    fn open_windows_are_bounded() {
        let mut st = state(Limits {
            max_windows: 2,
            ..Limits::default()
        });
        st.begin_window("a", BTreeMap::new()).unwrap();
        st.begin_window("b", BTreeMap::new()).unwrap();
        assert_eq!(
            st.begin_window("c", BTreeMap::new()),
            Err(StateError::TooManyWindows(2))
        );
        assert_eq!(st.open_windows().len(), 2);
    }

    #[test]
    fn a_window_on_a_gpu_host_has_the_gpus_peak_and_no_why_null_note_for_carbon() {
        let mut st = state(Limits::default());
        st.set_gpus(vec![GpuDevice {
            domain: "gpu-0".into(),
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: None,
            power_limit_w: Some(700.0),
            mig_enabled: false,
            method: wattprint_core::Method::Counter,
            power_source: None,
            source: "nvml".into(),
            pci_bus_id: None,
            mig_uuids: Vec::new(),
        }]);
        let id = st.begin_window("batch", BTreeMap::new()).unwrap();
        let r = st.end_window(id, Some(4.0), None).unwrap();
        assert!(
            r.metrics.peak_flops_per_watt.is_some(),
            "{:?}",
            r.metrics.notes.get("peak_flops_per_watt")
        );
        assert!(r.metrics.carbon_per_inference_g.is_some());
        assert!(!r.metrics.notes.contains_key("carbon_per_inference_g"));
        assert_eq!(r.carbon.intensity_g_per_kwh, 360.0);
        assert_eq!(r.labels.get("window").map(String::as_str), Some("batch"));
    }

    #[test]
    fn ended_window_names_are_bounded_and_the_rest_is_counted_in_other() {
        let mut st = state(Limits {
            max_window_names: 3,
            ..Limits::default()
        });
        for k in 0..10 {
            let id = st.begin_window(&format!("w{k}"), BTreeMap::new()).unwrap();
            st.end_window(id, None, None).unwrap();
        }
        // A name already kept stays its own series.
        let id = st.begin_window("w1", BTreeMap::new()).unwrap();
        st.end_window(id, None, None).unwrap();
        let names: Vec<&str> = st.window_totals().keys().map(String::as_str).collect();
        assert_eq!(names, vec![OVERFLOW_WINDOW, "w0", "w1", "w2"]);
        assert_eq!(st.window_totals()[OVERFLOW_WINDOW].ended, 7);
        assert_eq!(st.window_totals()["w1"].ended, 2);
        assert_eq!(st.losses().window_names_overflowed, 7);
        let text = crate::metrics::render(&st);
        let series = text
            .lines()
            .filter(|l| l.starts_with("wattprint_windows_ended_total{"))
            .count();
        assert_eq!(series, 4, "{text}");
    }
}
