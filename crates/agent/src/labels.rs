//! Interned label sets of request spans, bounded so clients cannot grow the metrics without
//! limit: past `max_sets` distinct sets, new ones fold into one overflow set.

use std::collections::{BTreeMap, HashMap};

/// Index of an interned label set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LabelSet(pub usize);

/// Label keys and values longer than this are cut (bytes, at a char boundary).
pub const MAX_LABEL_LEN: usize = 128;
/// Labels per span kept at most (by key order).
pub const MAX_LABELS: usize = 16;

/// The outcome of interning one label set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interned {
    /// The set the labels were filed under.
    pub set: LabelSet,
    /// True when they were folded into the overflow set (the table was full).
    pub overflowed: bool,
}

pub struct LabelTable {
    max_sets: usize,
    sets: Vec<BTreeMap<String, String>>,
    index: HashMap<BTreeMap<String, String>, usize>,
    overflow: Option<usize>,
}

/// A label key or value as kept: control characters escaped (`\u{1b}`: labels reach
/// /metrics, logs and terminals), then cut to [`MAX_LABEL_LEN`].
pub fn cut(s: &str) -> String {
    let s = wattprint_core::text::printable(s);
    let s = s.as_ref();
    let mut end = s.len().min(MAX_LABEL_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl LabelTable {
    pub fn new(max_sets: usize) -> Self {
        LabelTable {
            max_sets: max_sets.max(1),
            sets: Vec::new(),
            index: HashMap::new(),
            overflow: None,
        }
    }

    /// The set's index, and whether it was folded into the overflow set.
    pub fn intern(&mut self, labels: &BTreeMap<String, String>) -> Interned {
        let clean: BTreeMap<String, String> = labels
            .iter()
            .take(MAX_LABELS)
            .map(|(k, v)| (cut(k), cut(v)))
            .collect();
        if let Some(&i) = self.index.get(&clean) {
            return Interned {
                set: LabelSet(i),
                overflowed: false,
            };
        }
        if self.sets.len() >= self.max_sets {
            let i = match self.overflow {
                Some(i) => i,
                None => {
                    let i = self.sets.len();
                    self.sets
                        .push([("overflow".to_string(), "true".to_string())].into());
                    self.overflow = Some(i);
                    i
                }
            };
            return Interned {
                set: LabelSet(i),
                overflowed: true,
            };
        }
        let i = self.sets.len();
        self.sets.push(clean.clone());
        self.index.insert(clean, i);
        Interned {
            set: LabelSet(i),
            overflowed: false,
        }
    }

    pub fn get(&self, set: LabelSet) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.sets.get(set.0).unwrap_or(&EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(k: &str, v: &str) -> BTreeMap<String, String> {
        [(k.to_string(), v.to_string())].into()
    }

    #[test]
    fn same_labels_same_set_and_overflow_is_bounded() {
        let mut t = LabelTable::new(2);
        let a = t.intern(&l("m", "a")).set;
        assert_eq!(
            t.intern(&l("m", "a")),
            Interned {
                set: a,
                overflowed: false
            }
        );
        let b = t.intern(&l("m", "b"));
        assert!(!b.overflowed && b.set != a);
        let c = t.intern(&l("m", "c"));
        assert!(c.overflowed);
        let c = c.set;
        assert_eq!(
            t.intern(&l("m", "d")),
            Interned {
                set: c,
                overflowed: true
            }
        );
        assert_eq!(t.get(c), &l("overflow", "true"));
        assert_eq!(t.get(a), &l("m", "a"));
    }

    #[test]
    fn long_labels_are_cut_at_a_char_boundary() {
        let mut t = LabelTable::new(4);
        let long = "é".repeat(100);
        let s = t.intern(&l("k", &long)).set;
        let v = &t.get(s)["k"];
        assert!(v.len() <= MAX_LABEL_LEN && v.chars().all(|c| c == 'é'));
    }
}
