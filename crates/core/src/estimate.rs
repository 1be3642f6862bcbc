//! The what-if estimate behind `wattprint estimate`: energy = devices x power x time, the
//! power given or a device's TDP x utilisation, the time given or derived from the work as
//! FLOPs / (devices x peak FLOP/s x MFU). Pure: the caller looks the device up in the hardware
//! table and builds the report.

use crate::units::{SECONDS_PER_DAY, SECONDS_PER_HOUR};

/// A device from the hardware table: what the estimate needs of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// How to name it in provenance, e.g. `H100-SXM5-80GB (whitepaper)`.
    pub label: String,
    /// Thermal design power, W.
    pub tdp_w: f64,
    /// Peak FLOP/s at the chosen precision, when the table has it.
    pub peak_flops_per_s: Option<f64>,
}

/// How long the devices run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Span {
    Hours(f64),
    Days(f64),
    /// The work, FLOPs, at a model FLOPs utilisation (0, 1].
    Flops {
        flops: f64,
        mfu: f64,
    },
}

/// What the estimate is asked.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// Number of devices (> 0).
    pub devices: f64,
    /// Average power per device, W; `None`: the device's TDP x `utilization`.
    pub power_w: Option<f64>,
    pub device: Option<Device>,
    /// Utilisation (0, 1] scaling the TDP when `power_w` is not given (default 1).
    pub utilization: Option<f64>,
    pub span: Option<Span>,
    /// Peak FLOP/s of one device, overriding the device's.
    pub peak_flops_per_s: Option<f64>,
}

/// The estimate, with the provenance of each factor.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub devices: f64,
    /// Average power per device, W.
    pub power_w: f64,
    pub power_source: String,
    pub duration_s: f64,
    pub duration_source: String,
    /// IT energy (before PUE), J.
    pub it_j: f64,
    /// Peak FLOP/s of one device, when known.
    pub peak_flops_per_s: Option<f64>,
}

/// Why the inputs give no estimate. `field` names the input (`devices`, `power_w`,
/// `utilization`, `hours`, `days`, `flops`, `mfu`, `peak_flops`) for the front end to render.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EstimateError {
    #[error("{field}: {value} must be a finite number > 0")]
    NotPositive { field: &'static str, value: f64 },
    #[error("{field}: {value} must be a finite number >= 0")]
    Negative { field: &'static str, value: f64 },
    #[error("{field}: {value} must be within (0, 1]")]
    NotFraction { field: &'static str, value: f64 },
    #[error("no power per device: give it, or a device whose TDP is known")]
    NoPower,
    #[error("no duration: give hours, days, or FLOPs with an MFU")]
    NoDuration,
    #[error("the FLOPs need the device's peak FLOP/s: give it, or a device with a peak at this precision")]
    NoPeak,
    #[error("devices x power x time = {devices} x {power_w} W x {duration_s} s is too large to compute; check the units")]
    TooLarge {
        devices: f64,
        power_w: f64,
        duration_s: f64,
    },
}

fn positive(field: &'static str, value: f64) -> Result<f64, EstimateError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(EstimateError::NotPositive { field, value })
    }
}

fn fraction(field: &'static str, value: f64) -> Result<f64, EstimateError> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(EstimateError::NotFraction { field, value })
    }
}

/// Computes the estimate. Errors name the input that is missing or out of range.
pub fn estimate(i: &Inputs) -> Result<Estimate, EstimateError> {
    let devices = positive("devices", i.devices)?;
    let (power_w, power_source) = match (i.power_w, &i.device) {
        (Some(p), _) => {
            if !(p.is_finite() && p >= 0.0) {
                return Err(EstimateError::Negative {
                    field: "power_w",
                    value: p,
                });
            }
            (p, "given with --power-w".to_string())
        }
        (None, Some(d)) => {
            let u = fraction("utilization", i.utilization.unwrap_or(1.0))?;
            (
                d.tdp_w * u,
                format!("{} TDP {} W x utilisation {u} (estimate)", d.label, d.tdp_w),
            )
        }
        (None, None) => return Err(EstimateError::NoPower),
    };
    let peak_flops_per_s = match (i.peak_flops_per_s, &i.device) {
        (Some(p), _) => Some(positive("peak_flops", p)?),
        (None, Some(d)) => d.peak_flops_per_s,
        (None, None) => None,
    };
    let (duration_s, duration_source) = match i.span {
        Some(Span::Hours(h)) => (
            positive("hours", h)? * SECONDS_PER_HOUR,
            "given with --hours".to_string(),
        ),
        Some(Span::Days(d)) => (
            positive("days", d)? * SECONDS_PER_DAY,
            "given with --days".to_string(),
        ),
        Some(Span::Flops { flops, mfu }) => {
            let f = positive("flops", flops)?;
            let mfu = fraction("mfu", mfu)?;
            let peak = peak_flops_per_s.ok_or(EstimateError::NoPeak)?;
            (
                f / (devices * peak * mfu),
                format!("FLOPs {f:e} / ({devices} devices x {peak:e} FLOP/s x MFU {mfu})"),
            )
        }
        None => return Err(EstimateError::NoDuration),
    };
    let it_j = devices * power_w * duration_s;
    if !it_j.is_finite() {
        return Err(EstimateError::TooLarge {
            devices,
            power_w,
            duration_s,
        });
    }
    Ok(Estimate {
        devices,
        power_w,
        power_source,
        duration_s,
        duration_source,
        it_j,
        peak_flops_per_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpt3() -> Inputs {
        Inputs {
            devices: 10_000.0,
            power_w: Some(330.0),
            device: None,
            utilization: None,
            span: Some(Span::Days(14.8)),
            peak_flops_per_s: None,
        }
    }

    #[test]
    fn devices_power_and_days_multiply_to_joules() {
        let e = estimate(&gpt3()).unwrap();
        assert_eq!(e.duration_s, 14.8 * 86_400.0);
        // 10,000 x 330 W x 14.8 days = 1,172.16 MWh.
        assert!(
            (e.it_j / 3.6e9 - 1172.16).abs() < 1e-6,
            "{}",
            e.it_j / 3.6e9
        );
    }

    #[test]
    fn flops_become_time_at_the_peak_and_mfu() {
        let i = Inputs {
            devices: 8.0,
            power_w: None,
            device: Some(Device {
                label: "X".into(),
                tdp_w: 700.0,
                peak_flops_per_s: Some(1e15),
            }),
            utilization: Some(0.5),
            span: Some(Span::Flops {
                flops: 1.6e19,
                mfu: 0.4,
            }),
            peak_flops_per_s: None,
        };
        let e = estimate(&i).unwrap();
        // 1.6e19 / (8 x 1e15 x 0.4) = 5,000 s at 350 W each.
        assert!((e.duration_s - 5000.0).abs() < 1e-9);
        assert_eq!(e.power_w, 350.0);
        assert!((e.it_j - 8.0 * 350.0 * 5000.0).abs() < 1e-6);
    }

    #[test]
    fn each_bad_input_is_named() {
        let mut i = gpt3();
        i.devices = 0.0;
        assert_eq!(
            estimate(&i),
            Err(EstimateError::NotPositive {
                field: "devices",
                value: 0.0
            })
        );
        let mut i = gpt3();
        i.power_w = None;
        assert_eq!(estimate(&i), Err(EstimateError::NoPower));
        let mut i = gpt3();
        i.span = None;
        assert_eq!(estimate(&i), Err(EstimateError::NoDuration));
        let mut i = gpt3();
        i.span = Some(Span::Flops {
            flops: 1e20,
            mfu: 0.5,
        });
        assert_eq!(estimate(&i), Err(EstimateError::NoPeak));
        let mut i = gpt3();
        i.span = Some(Span::Flops {
            flops: 1e20,
            mfu: 1.5,
        });
        i.peak_flops_per_s = Some(1e15);
        assert!(matches!(
            estimate(&i),
            Err(EstimateError::NotFraction { field: "mfu", .. })
        ));
        let mut i = gpt3();
        i.power_w = Some(f64::MAX);
        assert!(matches!(estimate(&i), Err(EstimateError::TooLarge { .. })));
    }
}
