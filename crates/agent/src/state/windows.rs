//! The windows table: open windows, and the totals of ended windows by name, bounded so that
//! clients cannot grow `/metrics` and OTLP without limit.
//!
//! Pure: no meter, no clock, no lock. The coordinator ([`super::AgentState`]) reads the meter
//! when a window begins and ends and hands the figures in.

mod spool;

use super::StateError;
use std::collections::{BTreeMap, HashMap};
use wattprint_core::DomainDesc;

/// Work counts of a window at most (10^18 tokens or inferences: beyond any deployment).
pub const MAX_WINDOW_COUNT: f64 = 1e18;

/// The series that ended windows of names beyond `Limits::max_window_names` are added to.
pub const OVERFLOW_WINDOW: &str = "other";

/// A window that has begun: what its report needs from its start.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenWindow {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub begin_unix_s: f64,
    /// The meter's time when the window began, s.
    pub begin_t_s: f64,
    /// Each domain's cumulative energy when the window began, J (meter order).
    pub begin_cum_j: Vec<f64>,
    /// The meter's CPU time when the window began, s.
    pub begin_meter_cpu_s: f64,
}

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

/// Check a window's work counts: each absent or a finite count from 0 to
/// [`MAX_WINDOW_COUNT`]; the error names the field.
pub fn check_work(inferences: Option<f64>, tokens: Option<f64>) -> Result<(), StateError> {
    for (what, v) in [("inferences", inferences), ("tokens", tokens)] {
        if let Some(v) = v {
            if !v.is_finite() || !(0.0..=MAX_WINDOW_COUNT).contains(&v) {
                return Err(StateError::BadInput(format!(
                    "{what} = {v}: give a count from 0 to {MAX_WINDOW_COUNT:e}"
                )));
            }
        }
    }
    Ok(())
}

/// The windows table. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct WindowTable {
    open: HashMap<u64, OpenWindow>,
    /// Ended windows by name (at most `max_names` names plus [`OVERFLOW_WINDOW`]).
    totals: BTreeMap<String, WindowTotals>,
    max_open: usize,
    max_names: usize,
    names_overflowed: u64,
}

impl WindowTable {
    /// An empty table holding at most `max_open` open windows and `max_names` names of ended
    /// ones (`Limits::max_windows`, `Limits::max_window_names`).
    pub fn new(max_open: usize, max_names: usize) -> WindowTable {
        WindowTable {
            max_open,
            max_names,
            ..WindowTable::default()
        }
    }

    /// Whether another window may begin; [`StateError::TooManyWindows`] if not.
    pub fn ensure_room(&self) -> Result<(), StateError> {
        if self.open.len() >= self.max_open {
            return Err(StateError::TooManyWindows(self.open.len()));
        }
        Ok(())
    }

    /// Record a window that began (call [`WindowTable::ensure_room`] first).
    pub fn insert(&mut self, id: u64, window: OpenWindow) {
        self.open.insert(id, window);
    }

    /// Take an open window out of the table; [`StateError::NoWindow`] if it is not open.
    pub fn take(&mut self, id: u64) -> Result<OpenWindow, StateError> {
        self.open.remove(&id).ok_or(StateError::NoWindow(id))
    }

    /// Add an ended window to its name's totals, or to [`OVERFLOW_WINDOW`]'s when `max_names`
    /// other names are already kept (counted in [`WindowTable::names_overflowed`]).
    pub fn record_ended(&mut self, name: String, energy_j: f64, carbon_g: f64) {
        let name = if self.totals.contains_key(&name) || self.totals.len() < self.max_names {
            name
        } else {
            self.names_overflowed += 1;
            OVERFLOW_WINDOW.to_string()
        };
        let entry = self.totals.entry(name).or_default();
        entry.ended += 1;
        entry.energy_j += energy_j;
        entry.carbon_g += carbon_g;
    }

    /// Energy so far of each open window, by id: the counted domains' `cumulative_j` less
    /// their energy when the window began; `grams` turns joules into gCO2e.
    pub fn open_energy(
        &self,
        domains: &[DomainDesc],
        cumulative_j: &[f64],
        grams: impl Fn(f64) -> f64,
    ) -> Vec<OpenWindowEnergy> {
        let mut v: Vec<_> = self
            .open
            .iter()
            .map(|(id, w)| {
                let j: f64 = domains
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.counted_in_total)
                    .map(|(k, _)| {
                        cumulative_j.get(k).copied().unwrap_or(0.0)
                            - w.begin_cum_j.get(k).copied().unwrap_or(0.0)
                    })
                    .sum();
                OpenWindowEnergy {
                    id: *id,
                    name: w.name.clone(),
                    begin_unix_s: w.begin_unix_s,
                    energy_j: j,
                    carbon_g: grams(j),
                }
            })
            .collect();
        v.sort_by_key(|x| x.id);
        v
    }

    /// Totals of the ended windows by name.
    pub fn totals(&self) -> &BTreeMap<String, WindowTotals> {
        &self.totals
    }

    /// Ended windows added to [`OVERFLOW_WINDOW`] because their name was one too many.
    pub fn names_overflowed(&self) -> u64 {
        self.names_overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::{DomainKind, Method};

    fn window(name: &str, begin_cum_j: Vec<f64>) -> OpenWindow {
        OpenWindow {
            name: name.into(),
            labels: BTreeMap::new(),
            begin_unix_s: 1000.0,
            begin_t_s: 0.0,
            begin_cum_j,
            begin_meter_cpu_s: 0.0,
        }
    }

    fn domain(name: &str, counted_in_total: bool) -> DomainDesc {
        DomainDesc {
            name: name.into(),
            kind: DomainKind::CpuPackage,
            source: "fake".into(),
            method: Method::Counter,
            counted_in_total,
            device: None,
        }
    }

    #[test]
    fn open_windows_are_bounded_and_taken_once() {
        let mut t = WindowTable::new(1, 8);
        assert_eq!(t.ensure_room(), Ok(()));
        t.insert(7, window("a", vec![]));
        assert_eq!(t.ensure_room(), Err(StateError::TooManyWindows(1)));
        assert_eq!(t.take(7).map(|w| w.name), Ok("a".to_string()));
        assert_eq!(t.take(7), Err(StateError::NoWindow(7)));
        assert_eq!(t.ensure_room(), Ok(()));
    }

    #[test]
    fn ended_names_beyond_the_bound_add_to_other() {
        let mut t = WindowTable::new(8, 2);
        t.record_ended("a".into(), 1.0, 0.5);
        t.record_ended("b".into(), 2.0, 1.0);
        t.record_ended("c".into(), 4.0, 2.0);
        t.record_ended("a".into(), 8.0, 4.0);
        t.record_ended("d".into(), 16.0, 8.0);
        let totals = t.totals();
        let names: Vec<&str> = totals.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["a", "b", OVERFLOW_WINDOW]);
        assert_eq!(
            totals["a"],
            WindowTotals {
                ended: 2,
                energy_j: 9.0,
                carbon_g: 4.5
            }
        );
        assert_eq!(
            totals[OVERFLOW_WINDOW],
            WindowTotals {
                ended: 2,
                energy_j: 20.0,
                carbon_g: 10.0
            }
        );
        assert_eq!(t.names_overflowed(), 2);
    }

    #[test]
    fn open_energy_counts_only_counted_domains_since_the_start() {
        let mut t = WindowTable::new(8, 8);
        t.insert(2, window("late", vec![50.0, 1000.0]));
        t.insert(1, window("early", vec![10.0, 0.0]));
        let domains = [domain("package-0", true), domain("psys", false)];
        let v = t.open_energy(&domains, &[110.0, 5000.0], |j| j / 100.0);
        assert_eq!(
            v,
            vec![
                OpenWindowEnergy {
                    id: 1,
                    name: "early".into(),
                    begin_unix_s: 1000.0,
                    energy_j: 100.0,
                    carbon_g: 1.0,
                },
                OpenWindowEnergy {
                    id: 2,
                    name: "late".into(),
                    begin_unix_s: 1000.0,
                    energy_j: 60.0,
                    carbon_g: 0.6,
                },
            ]
        );
    }

    #[test]
    fn work_counts_are_checked_with_the_field_named() {
        assert_eq!(check_work(None, Some(0.0)), Ok(()));
        assert_eq!(check_work(Some(MAX_WINDOW_COUNT), None), Ok(()));
        for (i, t, field) in [
            (Some(-1.0), None, "inferences"),
            (None, Some(f64::NAN), "tokens"),
            (Some(2e18), None, "inferences"),
        ] {
            match check_work(i, t) {
                Err(StateError::BadInput(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
