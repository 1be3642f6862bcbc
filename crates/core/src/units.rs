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

/// Mass of CO2e in grams (not serialised: the report keeps `_g` numbers; this type only
/// formats them).
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Grams(pub f64);

/// Joules in one kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;
/// Kilowatt-hours in one megawatt-hour.
pub const KWH_PER_MWH: f64 = 1000.0;
/// Grams in one kilogram.
pub const GRAMS_PER_KG: f64 = 1000.0;
/// Grams in one (metric) tonne.
pub const GRAMS_PER_TONNE: f64 = 1e6;

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
    /// The one human form of an energy: `500.00 mJ` under 1 J, `12.35 J`, `4.56 kJ`,
    /// `2.000 kWh` from 1 kWh, `1289.246 MWh` from 1 MWh up; `n/a` when not finite.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let j = self.0;
        let a = j.abs();
        if !j.is_finite() {
            write!(f, "n/a")
        } else if a >= JOULES_PER_KWH * KWH_PER_MWH {
            write!(f, "{:.3} MWh", j / (JOULES_PER_KWH * KWH_PER_MWH))
        } else if a >= JOULES_PER_KWH {
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
    /// The one human form of a power: `15.0 W`, `1.50 kW` from 1 kW up; `n/a` when not finite.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0;
        if !w.is_finite() {
            write!(f, "n/a")
        } else if w.abs() >= 1e3 {
            write!(f, "{:.2} kW", w / 1e3)
        } else {
            write!(f, "{:.1} W", w)
        }
    }
}

impl fmt::Display for Grams {
    /// The one human form of a mass of CO2e: `12.300 mg` under 1 g, `1.500 g`, `2.500 kg`,
    /// `2.500 t` from 1 t up (append `CO2e` where the gas is not said); `n/a` when not finite.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.0;
        let a = g.abs();
        if !g.is_finite() {
            write!(f, "n/a")
        } else if a >= GRAMS_PER_TONNE {
            write!(f, "{:.3} t", g / GRAMS_PER_TONNE)
        } else if a >= GRAMS_PER_KG {
            write!(f, "{:.3} kg", g / GRAMS_PER_KG)
        } else if a >= 1.0 || a == 0.0 {
            write!(f, "{g:.3} g")
        } else {
            write!(f, "{:.3} mg", g * 1e3)
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
        assert_eq!(Joules(3.6e9).to_string(), "1.000 MWh");
        assert_eq!(Watts(1500.0).to_string(), "1.50 kW");
        assert_eq!(Watts(15.04).to_string(), "15.0 W");
        assert_eq!(Joules(f64::NAN).to_string(), "n/a");
        assert_eq!(Watts(f64::INFINITY).to_string(), "n/a");
        assert_eq!(Grams(0.0123).to_string(), "12.300 mg");
        assert_eq!(Grams(0.0).to_string(), "0.000 g");
        assert_eq!(Grams(1.5).to_string(), "1.500 g");
        assert_eq!(Grams(2500.0).to_string(), "2.500 kg");
        assert_eq!(Grams(2.5e6).to_string(), "2.500 t");
        assert_eq!(Grams(f64::NAN).to_string(), "n/a");
    }

    #[test]
    fn microjoules_and_millijoules_convert() {
        assert_eq!(Joules::from_microjoules(1_500_000.0), Joules(1.5));
        assert_eq!(Joules::from_millijoules(2500.0), Joules(2.5));
    }
}
