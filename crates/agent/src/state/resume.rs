//! Continuity across restarts (`--spool`): the coordinator's side of [`crate::spool`].
//!
//! The agent's counters are *continuous*: each domain's cumulative energy is the meter's
//! plus what earlier processes counted ([`Carry::base_j`]), so `/metrics` never goes back.
//! Window ids handed out after a restart start above every id handed out before. A resumed
//! window gets a fresh meter window at the restart; its report adds the energy it had before
//! the restart and lists each downtime as a gap of every domain.

use super::AgentState;
use crate::spool::{
    Downtime, Resumed, Snapshot, SpooledWindow, MAX_SPOOLED_SPANS, MAX_WINDOW_GAPS, SNAPSHOT_FORMAT,
};
use std::collections::HashMap;
use wattprint_core::report::Gap;
use wattprint_core::window::WindowId;
use wattprint_core::{DomainDesc, Joules};

/// A window open across a restart.
#[derive(Clone, Debug)]
pub(super) struct ResumedWindow {
    /// The meter window begun at the restart.
    pub meter_id: WindowId,
    /// Each domain's energy before the restart, J (meter order).
    pub carried_j: Vec<f64>,
    pub downtimes: Vec<Downtime>,
}

impl ResumedWindow {
    /// The downtimes as gaps of every domain, relative to the window's start.
    pub fn gaps(&self, domains: &[DomainDesc], begin_unix_s: f64) -> Vec<Gap> {
        self.downtimes
            .iter()
            .flat_map(|d| {
                domains.iter().map(move |dom| Gap {
                    domain: dom.name.clone(),
                    from_s: (d.from_unix_s - begin_unix_s).max(0.0),
                    to_s: (d.to_unix_s - begin_unix_s).max(0.0),
                    reason:
                        "wattprint agent was down (restarted from its spool): energy not measured"
                            .into(),
                })
            })
            .collect()
    }
}

/// What the state carries over from earlier processes.
#[derive(Clone, Debug, Default)]
pub(super) struct Carry {
    /// Each domain's energy counted by earlier processes, J (meter order).
    pub base_j: Vec<f64>,
    /// Added to the meter's window ids: ids handed out before a restart are never reused.
    pub id_offset: u64,
    /// The largest window id handed out.
    pub last_id: u64,
    pub resumed: HashMap<u64, ResumedWindow>,
    pub restarts: u64,
    pub downtime_s: f64,
    /// Spool writes that failed (logged; the next one retries).
    pub spool_write_failures: u64,
    pub last_resume: Option<Resumed>,
}

impl Carry {
    pub fn new(domains: usize) -> Carry {
        Carry {
            base_j: vec![0.0; domains],
            ..Carry::default()
        }
    }

    /// The meter's cumulative energies made continuous across restarts, J.
    pub fn continuous(&self, meter_j: &[Joules]) -> Vec<f64> {
        meter_j
            .iter()
            .enumerate()
            .map(|(k, j)| j.0 + self.base_j.get(k).copied().unwrap_or(0.0))
            .collect()
    }

    /// The public id of a window the meter began.
    pub fn public_id(&mut self, meter_id: WindowId) -> u64 {
        let id = meter_id.0 + self.id_offset;
        self.last_id = self.last_id.max(id);
        id
    }

    /// The meter's id of a window begun in this process.
    pub fn meter_id(&self, id: u64) -> WindowId {
        WindowId(id.saturating_sub(self.id_offset))
    }

    pub fn take_resumed(&mut self, id: u64) -> Option<ResumedWindow> {
        self.resumed.remove(&id)
    }
}

impl AgentState {
    /// The resumable state, for the spool (see [`crate::spool`]).
    pub fn snapshot(&self, now_unix_s: f64) -> Snapshot {
        let (ledger, spans_not_spooled) = self.ledger.snapshot(MAX_SPOOLED_SPANS);
        let (window_totals, window_names_overflowed) = self.windows.totals_snapshot();
        let mut windows: Vec<SpooledWindow> = self
            .windows
            .open_iter()
            .map(|(id, w)| SpooledWindow {
                id,
                name: w.name.clone(),
                labels: w.labels.clone(),
                begin_unix_s: w.begin_unix_s,
                begin_cum_j: w.begin_cum_j.clone(),
                downtimes: self
                    .carry
                    .resumed
                    .get(&id)
                    .map(|r| r.downtimes.clone())
                    .unwrap_or_default(),
            })
            .collect();
        windows.sort_by_key(|w| w.id);
        Snapshot {
            format: SNAPSHOT_FORMAT,
            written_unix_s: now_unix_s,
            domains: self.domains.iter().map(|d| d.name.clone()).collect(),
            cumulative_j: self.cumulative_j.clone(),
            next_window_id: self.carry.last_id.max(self.carry.id_offset) + 1,
            last_request_id: self.request_ids,
            windows,
            window_totals,
            window_names_overflowed,
            ledger,
            spans_not_spooled,
            workloads: self.workloads.as_ref().map(|w| w.snapshot()),
            restarts: self.carry.restarts,
            downtime_s: self.carry.downtime_s,
            otlp_push_failures: self.otlp_push_failures,
            otlp_batches_dropped: self.otlp_batches_dropped,
        }
    }

    /// Take over a previous process's snapshot. Call once, on a fresh state, before serving;
    /// `now_unix_s` is this start's time (the downtime runs from the snapshot to it).
    pub fn resume(&mut self, snap: &Snapshot, now_unix_s: f64) -> Resumed {
        let downtime = Downtime {
            from_unix_s: snap.written_unix_s,
            to_unix_s: now_unix_s.max(snap.written_unix_s),
        };
        let down_s = downtime.to_unix_s - downtime.from_unix_s;
        // Counters by domain name: a domain this start has not is reported, not continued.
        let by_name: HashMap<&str, usize> = snap
            .domains
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str(), k))
            .collect();
        let map = |v: &[f64]| -> Vec<f64> {
            self.domains
                .iter()
                .map(|d| {
                    by_name
                        .get(d.name.as_str())
                        .and_then(|&k| v.get(k))
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect()
        };
        let base = map(&snap.cumulative_j);
        let domains_missing = snap
            .domains
            .iter()
            .filter(|n| !self.domains.iter().any(|d| &d.name == *n))
            .cloned()
            .collect();
        for (k, b) in base.iter().enumerate() {
            if let Some(c) = self.cumulative_j.get_mut(k) {
                *c += b;
            }
        }
        for s in self.samples.iter_mut() {
            s.total_j += self
                .domains
                .iter()
                .zip(&base)
                .filter(|(d, _)| d.counted_in_total)
                .map(|(_, b)| b)
                .sum::<f64>();
        }
        self.carry.base_j = base.clone();
        self.carry.id_offset = snap.next_window_id.max(1) - 1;
        self.carry.last_id = self.carry.id_offset;
        self.request_ids = self.request_ids.max(snap.last_request_id);
        self.ledger.restore(&snap.ledger);
        self.windows
            .restore_totals(&snap.window_totals, snap.window_names_overflowed);
        let mut resumed = 0;
        let mut dropped = 0;
        for w in &snap.windows {
            if self.windows.ensure_room().is_err() {
                dropped += 1;
                continue;
            }
            let begin_cum_j = map(&w.begin_cum_j);
            let meter_id = self.meter.begin(&w.name);
            let mut downtimes = w.downtimes.clone();
            downtimes.push(downtime);
            if downtimes.len() > MAX_WINDOW_GAPS {
                // Merge the two oldest: the gap list stays bounded, no downtime is dropped.
                let second = downtimes.remove(1);
                downtimes[0].to_unix_s = second.to_unix_s;
            }
            self.carry.resumed.insert(
                w.id,
                ResumedWindow {
                    meter_id,
                    carried_j: base.iter().zip(&begin_cum_j).map(|(b, c)| b - c).collect(),
                    downtimes,
                },
            );
            self.windows.insert(
                w.id,
                super::OpenWindow {
                    name: w.name.clone(),
                    labels: w.labels.clone(),
                    begin_unix_s: w.begin_unix_s,
                    begin_t_s: w.begin_unix_s - self.unix_at_epoch_s,
                    begin_cum_j,
                    begin_meter_cpu_s: self.meter.cpu_s(),
                },
            );
            self.carry.last_id = self.carry.last_id.max(w.id);
            resumed += 1;
        }
        if let (Some(w), Some(s)) = (self.workloads.as_mut(), &snap.workloads) {
            w.restore(s);
        }
        self.otlp_push_failures += snap.otlp_push_failures;
        self.otlp_batches_dropped += snap.otlp_batches_dropped;
        self.carry.restarts = snap.restarts + 1;
        self.carry.downtime_s = snap.downtime_s + down_s;
        let r = Resumed {
            snapshot_unix_s: snap.written_unix_s,
            downtime_s: down_s,
            windows: resumed,
            windows_dropped: dropped,
            pending_spans: snap.ledger.pending.len(),
            spans_lost: snap.spans_not_spooled,
            domains_missing,
        };
        self.carry.last_resume = Some(r.clone());
        r
    }

    /// Restarts resumed from a spool since the first start, and the downtime summed, s.
    pub fn restarts(&self) -> (u64, f64) {
        (self.carry.restarts, self.carry.downtime_s)
    }

    /// What this start took over, if it resumed.
    pub fn last_resume(&self) -> Option<&Resumed> {
        self.carry.last_resume.as_ref()
    }

    /// Count a spool write that failed.
    pub fn record_spool_failure(&mut self) {
        self.carry.spool_write_failures += 1;
    }

    pub fn spool_write_failures(&self) -> u64 {
        self.carry.spool_write_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool;
    use crate::{CarbonFactor, Limits, SpanReport};
    use std::collections::BTreeMap;
    use wattprint_sensors::fake::FakeSensor;
    use wattprint_sensors::{Meter, MeterOptions};

    /// A state over a counter that gains 10 J at each read.
    fn state(unix_now_s: f64) -> AgentState {
        use wattprint_sensors::{RawReading, ReadCadence, SensorInfo};
        let s = FakeSensor::new(
            SensorInfo {
                source: "rapl-powercap".into(),
                domains: vec![DomainDesc {
                    name: "package-0".into(),
                    kind: wattprint_core::DomainKind::CpuPackage,
                    source: "rapl-powercap".into(),
                    method: wattprint_core::Method::Counter,
                    counted_in_total: true,
                    device: None,
                }],
                cadence: ReadCadence::Boundaries { guard_s: None },
                setup: "none".into(),
            },
            {
                let mut j = 0.0;
                move |_t, out| {
                    j += 10.0;
                    out[0] = RawReading::EnergyCounter {
                        joules: j,
                        range_j: None,
                    };
                    Ok(())
                }
            },
        );
        let f = CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
            intensity_g_per_kwh: Some(100.0),
            pue: Some(1.0),
            ..Default::default()
        })
        .unwrap();
        let meter = Meter::start(vec![Box::new(s)], MeterOptions::default());
        AgentState::new(meter, unix_now_s, 0.0, f, Limits::default())
    }

    #[test]
    fn a_resumed_agent_continues_counters_windows_and_spans_and_reports_the_downtime() {
        let mut a = state(1000.0);
        a.tick();
        let id = a.begin_window("train", BTreeMap::new()).unwrap();
        a.tick();
        a.tick();
        a.add_spans(vec![SpanReport {
            start_unix_s: 1000.0,
            end_unix_s: 1050.0,
            tokens: Some(7),
            labels: [("model".to_string(), "m".to_string())].into(),
        }]);
        let before_j = a.cumulative_j()[0];
        let window_before_j = a.open_windows()[0].energy_j;
        assert!(window_before_j > 0.0);
        let snap = a.snapshot(1010.0);
        // Through JSON, as the spool stores it.
        let snap = spool::parse("test", &serde_json::to_string(&snap).unwrap()).unwrap();

        let mut b = state(1030.0);
        let r = b.resume(&snap, 1030.0);
        assert_eq!((r.windows, r.pending_spans, r.downtime_s), (1, 1, 20.0));
        assert_eq!(b.cumulative_j()[0], before_j);
        b.tick();
        assert!(b.cumulative_j()[0] > before_j, "counters never go back");
        assert_eq!(b.restarts(), (1, 20.0));
        assert_eq!(b.pending_spans(), 1);
        // The window's energy continues from where it was; a new window gets a new id.
        let open = b.open_windows();
        assert_eq!(open[0].id, id);
        assert!(open[0].energy_j >= window_before_j);
        let id2 = b.begin_window("eval", BTreeMap::new()).unwrap();
        assert!(id2 > id, "{id2} after {id}");
        let report = b.end_window(id, None, None).unwrap();
        assert!(report.energy.total_j >= window_before_j);
        assert_eq!(report.started_at, rfc3339(open[0].begin_unix_s));
        let gap = &report.energy.gaps;
        assert!(
            gap.iter()
                .any(|g| g.reason.contains("was down") && (g.to_s - g.from_s - 20.0).abs() < 1e-9),
            "{gap:?}"
        );
        // Begun at 1000 s plus the few µs between the first state's start and the window's
        // begin (real time on the meter's clock): 30 s less those, never less than 29.99.
        assert!(report.duration_s >= 29.99, "{}", report.duration_s);
        assert!(b.end_window(id, None, None).is_err());
        // A second restart carries the first one's restarts and downtime.
        let snap2 = b.snapshot(1040.0);
        let mut c = state(1045.0);
        c.resume(&snap2, 1045.0);
        assert_eq!(c.restarts(), (2, 25.0));
        assert_eq!(c.open_windows()[0].id, id2);
    }

    fn rfc3339(unix_s: f64) -> String {
        wattprint_core::wallclock::rfc3339_utc_ms(unix_s)
    }

    #[test]
    fn a_snapshot_of_another_format_or_garbage_is_refused_with_the_fix() {
        let e = spool::parse("s.sqlite", "{\"format\": 99}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("format 99") && e.contains("remove"), "{e}");
        let e = spool::parse("s.sqlite", "nope").unwrap_err().to_string();
        assert!(e.contains("not readable JSON"), "{e}");
    }
}
