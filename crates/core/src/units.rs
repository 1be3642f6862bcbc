//! Unit newtypes. A bare `f64` never crosses a module boundary without its unit in its name;
//! where a type is clearer than a name, these are used.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// Energy in joules.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Joules(pub f64);

/// Power in watts.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Watts(pub f64);

/// Joules in one kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;

/// Seconds in an hour.
pub const SECONDS_PER_HOUR: f64 = 3600.0;

/// Seconds in a day (86,400: civil days, no leap seconds).
pub const SECONDS_PER_DAY: f64 = 86_400.0;

impl Joules {
    pub const ZERO: Joules = Joules(0.0);
    pub fn from_microjoules(uj: f64) -> Joules {
        Joules(uj * 1e-6)
    }
    pub fn from_millijoules(mj: f64) -> Joules {
        Joules(mj * 1e-3)
    }
    pub fn from_kwh(kwh: f64) -> Joules {
        Joules(kwh * JOULES_PER_KWH)
    }
    pub fn kwh(self) -> f64 {
        self.0 / JOULES_PER_KWH
    }
    /// Average power over `duration_s` seconds; `None` when the duration is not positive.
    pub fn over_seconds(self, duration_s: f64) -> Option<Watts> {
        (duration_s > 0.0 && duration_s.is_finite()).then(|| Watts(self.0 / duration_s))
    }
}

impl Watts {
    /// Energy of this power held for `duration_s` seconds.
    pub fn for_seconds(self, duration_s: f64) -> Joules {
        Joules(self.0 * duration_s)
    }
}

macro_rules! linear {
    ($t:ident) => {
        impl Add for $t {
            type Output = $t;
            fn add(self, o: $t) -> $t {
                $t(self.0 + o.0)
            }
        }
        impl AddAssign for $t {
            fn add_assign(&mut self, o: $t) {
                self.0 += o.0;
            }
        }
        impl Sub for $t {
            type Output = $t;
            fn sub(self, o: $t) -> $t {
                $t(self.0 - o.0)
            }
        }
        impl Mul<f64> for $t {
            type Output = $t;
            fn mul(self, k: f64) -> $t {
                $t(self.0 * k)
            }
        }
        impl Div<f64> for $t {
            type Output = $t;
            fn div(self, k: f64) -> $t {
                $t(self.0 / k)
            }
        }
        impl std::iter::Sum for $t {
            fn sum<I: Iterator<Item = $t>>(it: I) -> $t {
                $t(it.map(|x| x.0).sum())
            }
        }
    };
}
linear!(Joules);
linear!(Watts);

impl fmt::Display for Joules {
    /// Human form with an SI prefix: `12.3 J`, `4.56 kJ`, `1.29 GWh` is not used: joules stay joules
    /// up to MJ, then kWh.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let j = self.0;
        let a = j.abs();
        if a >= 3.6e6 {
            write!(f, "{:.3} kWh", j / JOULES_PER_KWH)
        } else if a >= 1e3 {
            write!(f, "{:.2} kJ", j / 1e3)
        } else if a >= 1.0 || a == 0.0 {
            write!(f, "{:.2} J", j)
        } else {
            write!(f, "{:.2} mJ", j * 1e3)
        }
    }
}

impl fmt::Display for Watts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0;
        if w.abs() >= 1e3 {
            write!(f, "{:.2} kW", w / 1e3)
        } else {
            write!(f, "{:.1} W", w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwh_round_trips_through_joules() {
        assert_eq!(Joules::from_kwh(2.5).0, 9.0e6);
        assert!((Joules(9.0e6).kwh() - 2.5).abs() < 1e-12);
    }

    #[test]
    fn average_power_needs_a_positive_duration() {
        assert_eq!(Joules(100.0).over_seconds(4.0), Some(Watts(25.0)));
        assert_eq!(Joules(100.0).over_seconds(0.0), None);
        assert_eq!(Joules(100.0).over_seconds(f64::NAN), None);
    }

    #[test]
    fn display_picks_a_readable_prefix() {
        assert_eq!(Joules(0.5).to_string(), "500.00 mJ");
        assert_eq!(Joules(12.345).to_string(), "12.35 J");
        assert_eq!(Joules(4560.0).to_string(), "4.56 kJ");
        assert_eq!(Joules(7.2e6).to_string(), "2.000 kWh");
        assert_eq!(Watts(1500.0).to_string(), "1.50 kW");
        assert_eq!(Watts(15.04).to_string(), "15.0 W");
    }

    #[test]
    fn microjoules_and_millijoules_convert() {
        assert_eq!(Joules::from_microjoules(1_500_000.0), Joules(1.5));
        assert_eq!(Joules::from_millijoules(2500.0), Joules(2.5));
    }
}
