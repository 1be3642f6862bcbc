//! Ratings of models per task (SPEC: Ratings, AI Energy Score compatible).
//!
//! Within a group (a task; plus a size class when one is given), with E the energy per
//! query: `f = (E - min) / (max - min)`, `stars = 5 - min(floor(5 f), 4)`; a group whose
//! min equals max gives 5 stars to all. Equal-width bins over the range, not rank
//! quintiles (those are offered as [`RatingMethod::Quintile`]). Model names may repeat.
//! Absolute A-G grades compare each energy with per-group upper bounds ([`Thresholds`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One model's measured energy per query for a task (any energy unit, the same within a group).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatingInput {
    pub model: String,
    pub task: String,
    /// Size class (AI Energy Score text generation: A, B, C); `None` when not given.
    pub class: Option<String>,
    /// Energy per query, in the unit of the input file (must be finite and >= 0).
    pub energy: f64,
}

/// A rated row: the input plus its stars (1..=5) and, when thresholds were given, its grade.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rated {
    pub model: String,
    pub task: String,
    pub class: Option<String>,
    pub energy: f64,
    pub stars: u8,
    /// A (best) to G, when a thresholds file covers the row's group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<char>,
}

/// How stars are assigned within a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RatingMethod {
    /// Equal-width bins over the group's min-max range (AI Energy Score; the default).
    #[default]
    EqualWidth,
    /// Rank quintiles: the best fifth of the group by rank gets 5 stars. Ties share the
    /// better rank.
    Quintile,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RatingError {
    #[error("row {index} (model `{model}`): energy {energy} is not a finite number >= 0")]
    BadEnergy {
        index: usize,
        model: String,
        energy: f64,
    },
    #[error("thresholds for task `{task}`: bounds must be finite and non-decreasing from A to F, got {bounds:?}")]
    BadThresholds { task: String, bounds: Vec<f64> },
}

/// Group key: task and optional class.
fn key(r: &RatingInput) -> (String, Option<String>) {
    (r.task.clone(), r.class.clone())
}

/// Stars by equal-width bins for `e` in a group spanning `min_e..=max_e`.
pub fn equal_width_stars(e: f64, min_e: f64, max_e: f64) -> u8 {
    let range = max_e - min_e;
    if range <= 0.0 || !range.is_finite() {
        return 5;
    }
    // 5 f computed as one quotient to keep bin edges exact for exact inputs.
    let bins = (5.0 * (e - min_e) / range).floor();
    let bins = if bins.is_nan() {
        0.0
    } else {
        bins.clamp(0.0, 4.0)
    };
    5 - bins as u8
}

/// Stars by rank quintile: `rank` is 0-based among `n` (ties already share the lower rank).
pub fn quintile_stars(rank: usize, n: usize) -> u8 {
    if n == 0 {
        return 5;
    }
    let q = (5 * rank / n).min(4);
    5 - q as u8
}

/// Rates every row within its (task, class) group. Output order follows input order.
pub fn rate(rows: &[RatingInput], method: RatingMethod) -> Result<Vec<Rated>, RatingError> {
    for (index, r) in rows.iter().enumerate() {
        if !r.energy.is_finite() || r.energy < 0.0 {
            return Err(RatingError::BadEnergy {
                index,
                model: r.model.clone(),
                energy: r.energy,
            });
        }
    }
    let mut groups: BTreeMap<(String, Option<String>), Vec<f64>> = BTreeMap::new();
    for r in rows {
        groups.entry(key(r)).or_default().push(r.energy);
    }
    for v in groups.values_mut() {
        v.sort_by(f64::total_cmp);
    }
    Ok(rows
        .iter()
        .map(|r| {
            let g = &groups[&key(r)];
            let (min_e, max_e) = (g[0], g[g.len() - 1]);
            let stars = match method {
                RatingMethod::EqualWidth => equal_width_stars(r.energy, min_e, max_e),
                RatingMethod::Quintile => {
                    let rank = g.partition_point(|x| *x < r.energy);
                    quintile_stars(rank, g.len())
                }
            };
            Rated {
                model: r.model.clone(),
                task: r.task.clone(),
                class: r.class.clone(),
                energy: r.energy,
                stars,
                grade: None,
            }
        })
        .collect())
}

/// Absolute grade bounds for one group: the upper energy bound of A, B, C, D, E, F (in the
/// input's unit); anything above F's bound is G.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    pub task: String,
    /// `None` applies to every class of the task without a class-specific row.
    pub class: Option<String>,
    pub upper_bounds: [f64; 6],
}

impl Thresholds {
    /// Checks that bounds are finite and non-decreasing.
    pub fn validate(&self) -> Result<(), RatingError> {
        let ok = self.upper_bounds.iter().all(|b| b.is_finite())
            && self.upper_bounds.windows(2).all(|w| w[0] <= w[1]);
        if ok {
            Ok(())
        } else {
            Err(RatingError::BadThresholds {
                task: self.task.clone(),
                bounds: self.upper_bounds.to_vec(),
            })
        }
    }

    /// The grade of `energy`: the first letter whose bound is >= energy, else G.
    pub fn grade(&self, energy: f64) -> char {
        const LETTERS: [char; 6] = ['A', 'B', 'C', 'D', 'E', 'F'];
        for (b, l) in self.upper_bounds.iter().zip(LETTERS) {
            if energy <= *b {
                return l;
            }
        }
        'G'
    }
}

/// Adds grades to rated rows: a class-specific threshold row wins over a task-wide one.
pub fn apply_grades(rated: &mut [Rated], thresholds: &[Thresholds]) -> Result<(), RatingError> {
    for t in thresholds {
        t.validate()?;
    }
    for r in rated.iter_mut() {
        let specific = thresholds
            .iter()
            .find(|t| t.task == r.task && t.class.is_some() && t.class == r.class);
        let general = thresholds
            .iter()
            .find(|t| t.task == r.task && t.class.is_none());
        r.grade = specific.or(general).map(|t| t.grade(r.energy));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(model: &str, task: &str, class: Option<&str>, energy: f64) -> RatingInput {
        RatingInput {
            model: model.into(),
            task: task.into(),
            class: class.map(Into::into),
            energy,
        }
    }

    fn stars(rows: &[RatingInput], m: RatingMethod) -> Vec<u8> {
        rate(rows, m).unwrap().iter().map(|r| r.stars).collect()
    }

    #[test]
    fn published_extremes_get_five_and_one_star() {
        // AI Energy Score leaderboard figures (kWh per 1,000 queries, reported by aiworld.eu):
        // distilgpt2 0.00131 is the lowest of its text-generation group, EXAONE-4.0-32B
        // 18.99 the highest of reasoning class B, gpt-oss-120b 8.50 in class C.
        let rows = vec![
            row("distilgpt2", "text_generation", Some("A"), 0.00131),
            row("EXAONE-4.0-32B", "text_generation", Some("A"), 18.99),
            row("gpt-oss-120b", "text_generation", Some("A"), 8.50),
        ];
        // f(gpt-oss) = (8.50 - 0.00131) / (18.99 - 0.00131) = 0.4476 -> floor(2.238) = 2 -> 3.
        assert_eq!(stars(&rows, RatingMethod::EqualWidth), vec![5, 1, 3]);
    }

    #[test]
    fn equal_width_bins_follow_the_formula_at_every_edge() {
        // Range 100..200: edges at 120, 140, 160, 180.
        let es = [
            100.0, 119.9, 120.0, 139.9, 140.0, 160.0, 179.9, 180.0, 200.0,
        ];
        let rows: Vec<_> = es.iter().map(|e| row("m", "t", None, *e)).collect();
        assert_eq!(
            stars(&rows, RatingMethod::EqualWidth),
            vec![5, 5, 4, 4, 3, 2, 2, 1, 1]
        );
    }

    #[test]
    fn a_group_with_equal_min_and_max_gets_five_stars() {
        let rows = vec![row("a", "t", None, 3.0), row("b", "t", None, 3.0)];
        assert_eq!(stars(&rows, RatingMethod::EqualWidth), vec![5, 5]);
    }

    #[test]
    fn groups_are_task_and_class_and_names_may_repeat() {
        let rows = vec![
            row("m", "text", Some("A"), 1.0),
            row("m", "text", Some("A"), 2.0),
            row("m", "text", Some("B"), 100.0),
            row("n", "text", Some("B"), 200.0),
            row("m", "image", None, 50.0),
        ];
        assert_eq!(stars(&rows, RatingMethod::EqualWidth), vec![5, 1, 5, 1, 5]);
    }

    #[test]
    fn quintiles_rank_instead_of_binning() {
        // One outlier: equal-width puts everything else at 5 stars, quintiles spread them.
        let rows: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1000.0]
            .iter()
            .map(|e| row("m", "t", None, *e))
            .collect();
        assert_eq!(
            stars(&rows, RatingMethod::EqualWidth),
            vec![5, 5, 5, 5, 5, 5, 5, 5, 5, 1]
        );
        assert_eq!(
            stars(&rows, RatingMethod::Quintile),
            vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
        );
    }

    #[test]
    fn quintile_ties_share_the_better_rank() {
        let rows: Vec<_> = [1.0, 1.0, 1.0, 1.0, 9.0]
            .iter()
            .map(|e| row("m", "t", None, *e))
            .collect();
        assert_eq!(stars(&rows, RatingMethod::Quintile), vec![5, 5, 5, 5, 1]);
    }

    #[test]
    fn bad_energy_is_refused_with_the_row() {
        let rows = vec![row("a", "t", None, 1.0), row("b", "t", None, f64::NAN)];
        let e = rate(&rows, RatingMethod::EqualWidth).unwrap_err();
        assert!(e.to_string().contains("row 1 (model `b`)"), "{e}");
        assert!(rate(&[row("c", "t", None, -1.0)], RatingMethod::EqualWidth).is_err());
    }

    #[test]
    fn grades_use_class_rows_before_task_rows() {
        let th = vec![
            Thresholds {
                task: "text".into(),
                class: None,
                upper_bounds: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            },
            Thresholds {
                task: "text".into(),
                class: Some("C".into()),
                upper_bounds: [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            },
        ];
        let mut r = rate(
            &[
                row("a", "text", Some("A"), 0.5),
                row("b", "text", Some("A"), 6.5),
                row("c", "text", Some("C"), 25.0),
                row("d", "image", None, 1.0),
            ],
            RatingMethod::EqualWidth,
        )
        .unwrap();
        apply_grades(&mut r, &th).unwrap();
        let g: Vec<_> = r.iter().map(|x| x.grade).collect();
        assert_eq!(g, vec![Some('A'), Some('G'), Some('C'), None]);
    }

    #[test]
    fn decreasing_thresholds_are_refused() {
        let t = Thresholds {
            task: "t".into(),
            class: None,
            upper_bounds: [1.0, 3.0, 2.0, 4.0, 5.0, 6.0],
        };
        assert!(t.validate().is_err());
    }

    proptest! {
        #[test]
        fn stars_are_in_range_and_monotone(es in proptest::collection::vec(0.0f64..1e12, 1..40)) {
            let rows: Vec<_> = es.iter().map(|e| row("m", "t", None, *e)).collect();
            for m in [RatingMethod::EqualWidth, RatingMethod::Quintile] {
                let r = rate(&rows, m).unwrap();
                for a in &r {
                    prop_assert!((1..=5).contains(&a.stars));
                    for b in &r {
                        if a.energy < b.energy {
                            prop_assert!(a.stars >= b.stars);
                        }
                    }
                }
                let min = es.iter().cloned().fold(f64::INFINITY, f64::min);
                prop_assert!(r.iter().filter(|x| x.energy == min).all(|x| x.stars == 5));
            }
        }
    }
}
