//! Order statistics: the one median and the one percentile every front end uses.
//!
//! Rules, the same everywhere: NaN is not a value and is dropped (infinities are kept: they
//! order); an empty input has no median or percentile (`None`, never 0 or NaN); the median of
//! an even count is the mean of the two middle values; percentiles are nearest-rank.

/// The values without NaN, in ascending order (`f64::total_cmp`).
pub fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// Median of `values` (NaN dropped): the middle value of an odd count, the mean of the two
/// middle values of an even count; `None` when no value is left.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    median_of_sorted(&sorted(values))
}

/// [`median`] of values already sorted by [`sorted`].
pub fn median_of_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Nearest-rank percentile (`q` in 0..=100, clamped) of values already sorted by [`sorted`]:
/// the smallest value with at least `q`% of the values at or below it. `None` when `sorted`
/// is empty or `q` is not finite.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !q.is_finite() {
        return None;
    }
    let q = q.clamp(0.0, 100.0);
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([7.0]), Some(7.0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_two_middle_values() {
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([1.0, 2.0]), Some(1.5));
    }

    #[test]
    fn median_of_nothing_is_none() {
        assert_eq!(median([]), None);
        assert_eq!(median([f64::NAN, f64::NAN]), None);
    }

    #[test]
    fn nan_is_dropped_and_infinities_order() {
        assert_eq!(median([f64::NAN, 1.0, 3.0]), Some(2.0));
        assert_eq!(median([f64::INFINITY, 1.0, f64::NEG_INFINITY]), Some(1.0));
        assert_eq!(sorted([2.0, f64::NAN, -1.0]), vec![-1.0, 2.0]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 150.0), Some(100.0));
        assert_eq!(percentile(&[1.0, 2.0], 50.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, f64::NAN), None);
    }

    proptest::proptest! {
        #[test]
        fn median_lies_between_the_extremes(v in proptest::collection::vec(-1e9f64..1e9, 1..50)) {
            let m = median(v.iter().copied()).unwrap();
            let s = sorted(v);
            proptest::prop_assert!(s[0] <= m && m <= s[s.len() - 1]);
            proptest::prop_assert_eq!(percentile(&s, 0.0), Some(s[0]));
        }
    }
}
