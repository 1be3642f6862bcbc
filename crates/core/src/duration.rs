//! Durations written by people (`--interval 100ms`, `interval = "2m"` in a config file): the
//! one parser every front end uses.
//!
//! Grammar: `NUMBER [UNIT]`, where `NUMBER` is a decimal as Rust's `f64` reads it (`0.5`,
//! `1e3`) and `UNIT` is `ms`, `s`, `m` (minutes) or `h`; no unit means seconds; spaces around
//! the number are allowed (`" 2 m "`). The value must be finite and not negative. Sampling and
//! push intervals must also be at least [`MIN_INTERVAL_S`] ([`parse_interval_s`]).

/// The shortest sampling or push interval accepted, s (1 ms: shorter would spin a core on
/// timer wake-ups for no resolution the sensors have; RAPL updates about every 1 ms).
pub const MIN_INTERVAL_S: f64 = 1e-3;

/// The longest sampling or push interval accepted, s (an hour: a meter read less often than
/// that is not sampling, and a longer value is a unit mistake such as `99999999999999999999s`).
pub const MAX_INTERVAL_S: f64 = 3600.0;

/// Why a duration was refused; each message names the text and what to write instead.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("`{text}` is not a duration: write e.g. 1s, 250ms, 2m or 1h")]
    Malformed { text: String },
    #[error("`{text}`: an interval must be at least 1ms")]
    TooShort { text: String },
    #[error("`{text}`: an interval must be at most 1h")]
    TooLong { text: String },
}

/// Seconds of a duration in the module's grammar (zero allowed).
///
/// # Errors
/// [`DurationError::Malformed`] for text outside the grammar, a negative or non-finite value.
pub fn parse_duration_s(text: &str) -> Result<f64, DurationError> {
    let t = text.trim();
    let (num, scale_s) = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|&(unit, scale_s)| t.strip_suffix(unit).map(|n| (n, scale_s)))
        .unwrap_or((t, 1.0));
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v * scale_s),
        _ => Err(DurationError::Malformed {
            text: text.to_string(),
        }),
    }
}

/// Seconds of a sampling or push interval: [`parse_duration_s`], from [`MIN_INTERVAL_S`] to
/// [`MAX_INTERVAL_S`].
///
/// # Errors
/// As [`parse_duration_s`], [`DurationError::TooShort`] under 1 ms and
/// [`DurationError::TooLong`] over an hour.
pub fn parse_interval_s(text: &str) -> Result<f64, DurationError> {
    let s = parse_duration_s(text)?;
    if s < MIN_INTERVAL_S {
        return Err(DurationError::TooShort {
            text: text.to_string(),
        });
    }
    if s > MAX_INTERVAL_S {
        return Err(DurationError::TooLong {
            text: text.to_string(),
        });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_over_an_hour_are_refused() {
        assert_eq!(parse_interval_s("1h"), Ok(3600.0));
        assert!(matches!(
            parse_interval_s("99999999999999999999s"),
            Err(DurationError::TooLong { .. })
        ));
        assert!(matches!(
            parse_interval_s("61m"),
            Err(DurationError::TooLong { .. })
        ));
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration_s("1s"), Ok(1.0));
        assert_eq!(parse_duration_s("250ms"), Ok(0.25));
        assert_eq!(parse_duration_s("2m"), Ok(120.0));
        assert_eq!(parse_duration_s("1.5h"), Ok(5400.0));
        assert_eq!(parse_duration_s("0.5"), Ok(0.5));
        assert_eq!(parse_duration_s(" 2 m "), Ok(120.0));
        assert_eq!(parse_duration_s("0"), Ok(0.0));
    }

    #[test]
    fn malformed_negative_and_non_finite_durations_are_refused() {
        for t in ["fast", "-1s", "nan", "inf", "", "s", "1x", "1 sec"] {
            assert_eq!(
                parse_duration_s(t),
                Err(DurationError::Malformed { text: t.into() }),
                "{t}"
            );
        }
        assert_eq!(
            parse_duration_s("fast").unwrap_err().to_string(),
            "`fast` is not a duration: write e.g. 1s, 250ms, 2m or 1h"
        );
    }

    #[test]
    fn intervals_are_at_least_a_millisecond() {
        assert_eq!(parse_interval_s("1ms"), Ok(1e-3));
        assert_eq!(
            parse_interval_s("0ms"),
            Err(DurationError::TooShort { text: "0ms".into() })
        );
        assert_eq!(
            parse_interval_s("0.5ms").unwrap_err().to_string(),
            "`0.5ms`: an interval must be at least 1ms"
        );
        assert!(parse_interval_s("nan").is_err());
    }
}
