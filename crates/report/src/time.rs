//! RFC 3339 timestamps to Unix seconds, for ordering and period filters (labels only; never
//! used for energy arithmetic).

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (also a space for `T`, and a bare
/// `YYYY-MM-DD` as midnight UTC) into Unix seconds. `None` when malformed.
pub fn parse_rfc3339_s(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some((days * 86_400) as f64);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = format!("0.{}", &s[start..i]).parse().ok()?;
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        None => 0,
        _ => return None,
    };
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset_s) as f64 + frac)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattprint_core::wallclock::rfc3339_utc;

    #[test]
    fn known_instants_parse_exactly() {
        assert_eq!(parse_rfc3339_s("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339_s("2026-11-29T02:31:12Z"),
            Some(1_795_919_472.0)
        );
        assert_eq!(
            parse_rfc3339_s("2026-11-29T03:31:12+01:00"),
            Some(1_795_919_472.0)
        );
        assert_eq!(
            parse_rfc3339_s("2026-11-29 02:31:12.5"),
            Some(1_795_919_472.5)
        );
        assert_eq!(parse_rfc3339_s("2026-01-01"), Some(1_767_225_600.0));
    }

    #[test]
    fn malformed_timestamps_are_none() {
        for s in [
            "",
            "2026",
            "2026-13-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00+1",
            "x026-01-01",
            "2026-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339_s(s), None, "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trips_the_core_formatter(t in -1_000_000_000i64..5_000_000_000) {
            proptest::prop_assert_eq!(parse_rfc3339_s(&rfc3339_utc(t)), Some(t as f64));
        }
    }
}
