//! A bounded timeline of cumulative energy per domain, from which power over time is derived
//! for live views, history and charts.

use serde::{Deserialize, Serialize};

/// Cumulative joules per domain at monotonic times, kept under `max_points` by dropping every
/// other point when full (resolution halves, the span is kept, energy stays exact since points
/// are cumulative).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    pub max_points: usize,
    pub t_s: Vec<f64>,
    /// `cumulative_j[i][k]`: domain k's cumulative joules at `t_s[i]`.
    pub cumulative_j: Vec<Vec<f64>>,
}

impl Default for Timeline {
    /// An empty timeline of 2048 points.
    fn default() -> Self {
        Timeline::new(2048)
    }
}

impl Timeline {
    pub fn new(max_points: usize) -> Self {
        Timeline {
            max_points: max_points.max(4),
            t_s: Vec::new(),
            cumulative_j: Vec::new(),
        }
    }

    pub fn push(&mut self, t_s: f64, cumulative_j: Vec<f64>) {
        if self.t_s.len() >= self.max_points {
            // Keep the first point and every second one after it; the newest point is pushed below.
            let keep: Vec<usize> = (0..self.t_s.len()).step_by(2).collect();
            self.t_s = keep.iter().map(|&i| self.t_s[i]).collect();
            self.cumulative_j = keep.iter().map(|&i| self.cumulative_j[i].clone()).collect();
        }
        self.t_s.push(t_s);
        self.cumulative_j.push(cumulative_j);
    }

    pub fn len(&self) -> usize {
        self.t_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_s.is_empty()
    }

    /// Average power per domain over each interval between consecutive points:
    /// `(t_mid_s, watts per domain)`.
    pub fn power_series(&self) -> Vec<(f64, Vec<f64>)> {
        self.t_s
            .windows(2)
            .zip(self.cumulative_j.windows(2))
            .filter(|(t, _)| t[1] > t[0])
            .map(|(t, c)| {
                let dt = t[1] - t[0];
                let w = c[1]
                    .iter()
                    .enumerate()
                    .map(|(k, e1)| (e1 - c[0].get(k).copied().unwrap_or(0.0)) / dt)
                    .collect();
                ((t[0] + t[1]) / 2.0, w)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_is_the_slope_of_cumulative_energy() {
        let mut t = Timeline::new(100);
        t.push(0.0, vec![0.0, 0.0]);
        t.push(2.0, vec![20.0, 4.0]);
        t.push(3.0, vec![50.0, 5.0]);
        let p = t.power_series();
        assert_eq!(p, vec![(1.0, vec![10.0, 2.0]), (2.5, vec![30.0, 1.0])]);
    }

    #[test]
    fn decimation_bounds_points_and_keeps_the_ends() {
        let mut t = Timeline::new(8);
        for i in 0..1000 {
            t.push(i as f64, vec![i as f64 * 3.0]);
        }
        assert!(t.len() <= 8);
        assert_eq!(t.t_s[0], 0.0);
        assert_eq!(*t.t_s.last().unwrap(), 999.0);
        assert_eq!(*t.cumulative_j.last().unwrap(), vec![2997.0]);
    }
}
