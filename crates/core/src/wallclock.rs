//! Wall-clock labels: the one place that formats and parses wall time (RFC 3339, UTC).
//!
//! Wall time is never used for arithmetic, only to label runs and to order or filter them.
//! Calendar arithmetic is `jiff`'s (proleptic Gregorian, years -9999..=9999); nothing here
//! reads the clock.

use jiff::{civil, tz::TimeZone, Timestamp};

/// The instant `unix_s` seconds after the epoch, clamped to the years -9999..=9999 that
/// RFC 3339 can write.
fn timestamp_s(unix_s: i64) -> Timestamp {
    Timestamp::from_second(unix_s).unwrap_or(if unix_s < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// RFC 3339 UTC timestamp (`2026-11-29T02:31:12Z`) for `unix_s` seconds since the epoch
/// (clamped to the years -9999..=9999).
pub fn rfc3339_utc(unix_s: i64) -> String {
    timestamp_s(unix_s).to_string()
}

/// RFC 3339 UTC timestamp with milliseconds (`2023-11-14T22:13:20.250Z`) for `unix_s`
/// seconds since the epoch, rounded to the millisecond; empty when `unix_s` is not finite.
pub fn rfc3339_utc_ms(unix_s: f64) -> String {
    if !unix_s.is_finite() {
        return String::new();
    }
    let ms = (unix_s * MS_PER_S).round() as i64;
    let t = Timestamp::from_millisecond(ms).unwrap_or_else(|_| timestamp_s(ms.div_euclid(1000)));
    format!("{t:.3}")
}

/// RFC 3339 UTC timestamp with only the digits of the fraction that are needed
/// (`2026-11-29T02:31:12Z`, `2026-11-29T02:31:12.25Z`) for `unix_s` seconds, rounded to the
/// millisecond; `None` when `unix_s` is not finite or outside the years -9999..=9999.
pub fn rfc3339_utc_auto(unix_s: f64) -> Option<String> {
    if !unix_s.is_finite() {
        return None;
    }
    Timestamp::from_millisecond((unix_s * MS_PER_S).round() as i64)
        .ok()
        .map(|t| t.to_string())
}

/// Compact UTC stamp for identifiers: `20261129T023112Z`.
pub fn compact_utc(unix_s: i64) -> String {
    rfc3339_utc(unix_s).replace(['-', ':'], "")
}

/// The UTC calendar year of `unix_s` seconds; `None` outside the years -9999..=9999.
pub fn year_utc(unix_s: f64) -> Option<i32> {
    if !unix_s.is_finite() {
        return None;
    }
    let t = Timestamp::from_second(unix_s.floor() as i64).ok()?;
    Some(i32::from(t.to_zoned(TimeZone::UTC).year()))
}

/// Milliseconds per second.
const MS_PER_S: f64 = 1000.0;

/// Parses a wall-clock time into Unix seconds; `None` when malformed or not a calendar date.
///
/// Grammar (RFC 3339, read by `jiff`):
/// - `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `T` may be `t` or a space, `Z` may be `z`;
/// - the same without an offset, read as UTC;
/// - a bare date `YYYY-MM-DD`, read as midnight UTC.
///
/// Dates and times are validated: `2026-02-31`, month 13 or hour 25 are `None`, never rolled
/// over into the next month or day. As ISO 8601 allows, `jiff` also reads reduced precision
/// (`2026-11-29T02:31Z`) and the basic format (`20261129T023112Z`); a leap second `:60` is
/// read as `:59`.
pub fn parse_rfc3339_s(s: &str) -> Option<f64> {
    let s = s.trim();
    let t = match s.parse::<Timestamp>() {
        Ok(t) => t,
        Err(_) => s
            .parse::<civil::DateTime>()
            .ok()?
            .to_zoned(TimeZone::UTC)
            .ok()?
            .timestamp(),
    };
    Some(t.as_second() as f64 + f64::from(t.subsec_nanosecond()) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_exactly() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_919_472), "2026-11-29T02:31:12Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(compact_utc(1_795_919_472), "20261129T023112Z");
    }

    #[test]
    fn millisecond_labels_always_carry_three_digits() {
        assert_eq!(rfc3339_utc_ms(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc_ms(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
        assert_eq!(rfc3339_utc_ms(951_782_400.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_utc_ms(f64::NAN), "");
        assert_eq!(
            rfc3339_utc_auto(1_700_000_000.25).as_deref(),
            Some("2023-11-14T22:13:20.25Z")
        );
        assert_eq!(
            rfc3339_utc_auto(0.0).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn years_are_utc_calendar_years() {
        assert_eq!(year_utc(1_767_225_599.0), Some(2025));
        assert_eq!(year_utc(1_767_225_600.0), Some(2026));
        assert_eq!(year_utc(f64::INFINITY), None);
    }

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
            parse_rfc3339_s(" 2026-11-29 02:31:12.5 "),
            Some(1_795_919_472.5)
        );
        assert_eq!(parse_rfc3339_s("2026-01-01"), Some(1_767_225_600.0));
        assert_eq!(parse_rfc3339_s("2024-02-29"), Some(1_709_164_800.0));
    }

    #[test]
    fn malformed_or_impossible_timestamps_are_none() {
        for s in [
            "",
            "2026",
            "2026-13-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00+1",
            "x026-01-01",
            "2026-01-01T00:00:00.Z",
            "2026-02-31",
            "2026-02-29T00:00:00Z",
            "2026-04-31 12:00:00",
            "1900-02-29",
        ] {
            assert_eq!(parse_rfc3339_s(s), None, "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_round_trips_the_formatter(t in -1_000_000_000i64..5_000_000_000) {
            proptest::prop_assert_eq!(parse_rfc3339_s(&rfc3339_utc(t)), Some(t as f64));
        }
    }
}
