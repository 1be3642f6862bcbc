//! Named, nestable, overlapping windows over a meter's cumulative energy.
//!
//! The meter keeps, per domain, the cumulative joules since it started. A window records the
//! cumulative vector at `begin` and subtracts it at `end`: nesting and overlap cost nothing.

use crate::units::Joules;
use std::collections::HashMap;

/// Identifies an open window within one [`WindowSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId(pub u64);

/// The energy of one closed window, per domain in the meter's domain order.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowEnergy {
    /// The window this is the energy of.
    pub id: WindowId,
    pub name: String,
    pub begin_t_s: f64,
    pub end_t_s: f64,
    pub per_domain: Vec<Joules>,
    /// Per domain, the bound of the integration error of sampled power over the window
    /// (Σ |p1 - p0| x dt / 2 over its polls), J; zeros for counters, empty when unknown.
    pub integration_err_j: Vec<f64>,
}

impl WindowEnergy {
    pub fn duration_s(&self) -> f64 {
        (self.end_t_s - self.begin_t_s).max(0.0)
    }
}

#[derive(Clone, Debug)]
struct Open {
    name: String,
    begin_t_s: f64,
    begin_cumulative: Vec<Joules>,
}

/// Errors of window bookkeeping.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WindowError {
    #[error("window {0} is not open (never begun, or already ended)")]
    NotOpen(u64),
}

/// The open windows of one meter.
#[derive(Clone, Debug, Default)]
pub struct WindowSet {
    next: u64,
    open: HashMap<WindowId, Open>,
}

impl WindowSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn begin(&mut self, name: &str, t_s: f64, cumulative: &[Joules]) -> WindowId {
        let id = WindowId(self.next);
        self.next += 1;
        self.open.insert(
            id,
            Open {
                name: name.to_string(),
                begin_t_s: t_s,
                begin_cumulative: cumulative.to_vec(),
            },
        );
        id
    }

    /// Close a window. Domains added to the meter after the window began count from zero.
    pub fn end(
        &mut self,
        id: WindowId,
        t_s: f64,
        cumulative: &[Joules],
    ) -> Result<WindowEnergy, WindowError> {
        let open = self.open.remove(&id).ok_or(WindowError::NotOpen(id.0))?;
        let per_domain = cumulative
            .iter()
            .enumerate()
            .map(|(i, c)| {
                *c - open
                    .begin_cumulative
                    .get(i)
                    .copied()
                    .unwrap_or(Joules::ZERO)
            })
            .collect();
        Ok(WindowEnergy {
            id,
            name: open.name,
            begin_t_s: open.begin_t_s,
            end_t_s: t_s,
            per_domain,
            integration_err_j: Vec::new(),
        })
    }

    /// The energy of an open window so far, up to `t_s`, leaving it open.
    pub fn peek(
        &self,
        id: WindowId,
        t_s: f64,
        cumulative: &[Joules],
    ) -> Result<WindowEnergy, WindowError> {
        let open = self.open.get(&id).ok_or(WindowError::NotOpen(id.0))?;
        Ok(WindowEnergy {
            id,
            name: open.name.clone(),
            begin_t_s: open.begin_t_s,
            end_t_s: t_s,
            per_domain: cumulative
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    *c - open
                        .begin_cumulative
                        .get(i)
                        .copied()
                        .unwrap_or(Joules::ZERO)
                })
                .collect(),
            integration_err_j: Vec::new(),
        })
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Names and begin times of the open windows, oldest first.
    pub fn open_windows(&self) -> Vec<(WindowId, String, f64)> {
        let mut v: Vec<_> = self
            .open
            .iter()
            .map(|(id, o)| (*id, o.name.clone(), o.begin_t_s))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peek_sees_the_energy_so_far_and_leaves_the_window_open() {
        let mut w = WindowSet::new();
        let id = w.begin("run", 1.0, &[Joules(10.0)]);
        let p = w.peek(id, 3.0, &[Joules(25.0)]).unwrap();
        assert_eq!((p.duration_s(), p.per_domain), (2.0, vec![Joules(15.0)]));
        let e = w.end(id, 4.0, &[Joules(30.0)]).unwrap();
        assert_eq!(e.per_domain, vec![Joules(20.0)]);
        assert_eq!(
            w.peek(id, 5.0, &[Joules(40.0)]),
            Err(WindowError::NotOpen(0))
        );
    }

    #[test]
    fn nested_and_overlapping_windows_see_their_own_energy() {
        let mut w = WindowSet::new();
        let a = w.begin("outer", 0.0, &[Joules(10.0), Joules(1.0)]);
        let b = w.begin("inner", 1.0, &[Joules(15.0), Joules(2.0)]);
        let eb = w.end(b, 2.0, &[Joules(20.0), Joules(4.0)]).unwrap();
        let c = w.begin("overlap", 2.5, &[Joules(22.0), Joules(4.0)]);
        let ea = w.end(a, 3.0, &[Joules(30.0), Joules(5.0)]).unwrap();
        let ec = w.end(c, 4.0, &[Joules(40.0), Joules(9.0)]).unwrap();
        assert_eq!(eb.per_domain, vec![Joules(5.0), Joules(2.0)]);
        assert_eq!(ea.per_domain, vec![Joules(20.0), Joules(4.0)]);
        assert_eq!(ec.per_domain, vec![Joules(18.0), Joules(5.0)]);
        assert_eq!(ea.duration_s(), 3.0);
        assert_eq!(ec.name, "overlap");
    }

    #[test]
    fn ending_twice_is_an_error() {
        let mut w = WindowSet::new();
        let a = w.begin("x", 0.0, &[Joules(0.0)]);
        w.end(a, 1.0, &[Joules(1.0)]).unwrap();
        assert_eq!(w.end(a, 2.0, &[Joules(2.0)]), Err(WindowError::NotOpen(0)));
    }

    #[test]
    fn a_domain_added_later_counts_from_zero() {
        let mut w = WindowSet::new();
        let a = w.begin("x", 0.0, &[Joules(3.0)]);
        let e = w.end(a, 1.0, &[Joules(4.0), Joules(7.0)]).unwrap();
        assert_eq!(e.per_domain, vec![Joules(1.0), Joules(7.0)]);
    }
}
