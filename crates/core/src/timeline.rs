//! A bounded timeline of cumulative energy per domain, from which power over time is derived
//! for live views, history and charts.

use serde::{Deserialize, Serialize};

/// Cumulative joules per domain at monotonic times, kept under `max_points` by halving the
/// resolution when full: the points kept are every `stride`-th one pushed (the first
/// included) and the newest, and a halving doubles `stride`, so the points stay evenly
/// spread over the whole span however many are pushed (energy stays exact since points are
/// cumulative).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    pub max_points: usize,
    pub t_s: Vec<f64>,
    /// `cumulative_j[i][k]`: domain k's cumulative joules at `t_s[i]`.
    pub cumulative_j: Vec<Vec<f64>>,
    /// Points pushed between two kept ones (1 until the first halving; 0 read as 1).
    #[serde(default)]
    stride: usize,
    /// Points pushed so far.
    #[serde(default)]
    pushed: usize,
    /// Whether the last point kept is the newest one off the stride (the next push replaces
    /// it).
    #[serde(default)]
    tail: bool,
}

impl Default for Timeline {
    /// An empty timeline of 2048 points.
    fn default() -> Self {
        Timeline::new(2048)
    }
}

impl Timeline {
    /// An empty timeline of at most `max_points` points (at least 4).
    pub fn new(max_points: usize) -> Self {
        Timeline {
            max_points: max_points.max(4),
            t_s: Vec::new(),
            cumulative_j: Vec::new(),
            stride: 1,
            pushed: 0,
            tail: false,
        }
    }

    /// Adds a point; the newest point is always kept.
    pub fn push(&mut self, t_s: f64, cumulative_j: Vec<f64>) {
        if self.tail {
            self.t_s.pop();
            self.cumulative_j.pop();
        }
        let stride = self.stride.max(1);
        let i = self.pushed;
        self.pushed += 1;
        self.tail = !i.is_multiple_of(stride);
        self.t_s.push(t_s);
        self.cumulative_j.push(cumulative_j);
        if self.t_s.len() > self.max_points {
            self.halve();
        }
    }

    /// Keeps every other point on the stride (the first included) and the newest.
    fn halve(&mut self) {
        let n = self.t_s.len();
        let on_stride = if self.tail { n - 1 } else { n };
        self.stride = self.stride.max(1) * 2;
        self.tail = !self.pushed.saturating_sub(1).is_multiple_of(self.stride);
        let mut keep: Vec<usize> = (0..on_stride).step_by(2).collect();
        if self.tail {
            keep.push(n - 1);
        }
        self.t_s = keep.iter().map(|&i| self.t_s[i]).collect();
        self.cumulative_j = keep
            .iter()
            .map(|&i| std::mem::take(&mut self.cumulative_j[i]))
            .collect();
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
    fn halving_keeps_the_points_evenly_spread_over_the_whole_span() {
        let mut t = Timeline::new(16);
        for i in 0..1000 {
            t.push(i as f64, vec![i as f64]);
        }
        // 1000 points into 16: every 64th would be 16 and the newest, one too many; so every
        // 128th (0, 128, ..., 896) and the newest.
        let mut want: Vec<f64> = (0..8).map(|k| k as f64 * 128.0).collect();
        want.push(999.0);
        assert_eq!(t.t_s, want);
        assert_eq!(t.cumulative_j[8], vec![999.0]);
        // The next point on the stride is kept, the newest off it replaced.
        for i in 1000..1025 {
            t.push(i as f64, vec![i as f64]);
        }
        assert_eq!(t.t_s[8..], [1024.0]);
        t.push(1025.0, vec![1025.0]);
        assert_eq!(t.t_s[8..], [1024.0, 1025.0]);
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
