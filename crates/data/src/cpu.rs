//! CPU thermal design power (TDP) by model name, for the utilisation power model.
//!
//! Source: CodeCarbon 3.3.2 `cpu_power.csv` (MIT), copied to `data/cpu-tdp.csv`. Parsed on the
//! first lookup, never at start-up.
//!
//! # Matching
//!
//! Both the table's names and the queried name (`/proc/cpuinfo`'s `model name`) are
//! normalised: lower case; `(R)`, `(TM)`, `®`, `™` removed; everything from `@` on (the clock)
//! dropped; the words `cpu` and `processor` and `N-core` dropped; whitespace collapsed. Then
//! the longest run of consecutive words of the query that equals a normalised table name wins
//! (so `Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz` finds `Intel Xeon Platinum 8480+`, and
//! `AMD EPYC 7763 64-Core Processor` finds `AMD EPYC 7763`). Table names without a digit are
//! never matched (they name families, not models); a query with no match is unknown and the
//! model falls back to a per-thread default.

use std::collections::HashMap;
use std::sync::OnceLock;

const CSV: &str = include_str!("../../../data/cpu-tdp.csv");

/// Where the TDP figures come from, for report labels.
pub const SOURCE: &str = "CodeCarbon 3.3.2 cpu_power.csv (MIT)";

/// A table row that matched a CPU model name.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTdp {
    /// The table's name for the CPU.
    pub name: &'static str,
    /// Thermal design power of one package, W.
    pub tdp_w: f64,
}

fn table() -> &'static HashMap<String, CpuTdp> {
    static TABLE: OnceLock<HashMap<String, CpuTdp>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        for line in CSV.lines().skip(1) {
            let Some((name, tdp)) = line.rsplit_once(',') else {
                continue;
            };
            let name = name.trim().trim_matches('"');
            let Ok(tdp_w) = tdp.trim().parse::<f64>() else {
                continue;
            };
            if !name.chars().any(|c| c.is_ascii_digit()) || tdp_w.is_nan() || tdp_w <= 0.0 {
                continue;
            }
            m.entry(normalise(name)).or_insert(CpuTdp { name, tdp_w });
        }
        m
    })
}

/// Normalise a CPU name for matching (see the module docs).
pub fn normalise(name: &str) -> String {
    let mut s = name.to_lowercase();
    for junk in ["(r)", "(tm)", "®", "™"] {
        s = s.replace(junk, " ");
    }
    if let Some(at) = s.find('@') {
        s.truncate(at);
    }
    s.split_whitespace()
        .filter(|w| *w != "cpu" && *w != "processor" && !w.ends_with("-core"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The TDP of the CPU named `model_name` (as `/proc/cpuinfo` spells it), if the table knows it.
pub fn lookup(model_name: &str) -> Option<CpuTdp> {
    let norm = normalise(model_name);
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    let t = table();
    for len in (1..=words.len()).rev() {
        for start in 0..=words.len() - len {
            let key = words[start..start + len].join(" ");
            if let Some(hit) = t.get(&key) {
                return Some(hit.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_names_find_their_rows() {
        let x = lookup("Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz").unwrap();
        assert_eq!((x.name, x.tdp_w), ("Intel Xeon Platinum 8480+", 350.0));
        let e = lookup("AMD EPYC 7763 64-Core Processor").unwrap();
        assert_eq!((e.name, e.tdp_w), ("AMD EPYC 7763", 280.0));
        let k = lookup("12th Gen Intel(R) Core(TM) i7-12700K").unwrap();
        assert_eq!(k.tdp_w, 190.0);
    }

    #[test]
    fn a_family_name_alone_is_unknown() {
        assert_eq!(lookup("AMD EPYC"), None);
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("QEMU Virtual CPU version 2.5+"), None);
    }

    #[test]
    fn quoted_names_with_commas_parse() {
        assert_eq!(
            lookup("Intel EP80579 Integrated, 1200 MHz").map(|c| c.tdp_w),
            Some(19.0)
        );
    }
}
