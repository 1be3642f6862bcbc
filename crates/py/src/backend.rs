//! What the bindings need from the library, in one place: open a session with the CLI's
//! options, begin/end windows, add work, and get a `wattprint.run/v1` report.

use std::sync::Mutex;
use wattprint_core::window::WindowId;
pub use wattprint_core::report::RunReport;
use wattprint_sensors::{Meter, MeterOptions};

/// Options mirroring `wattprint run`'s.
#[derive(Debug, Default)]
pub struct Options {
    pub zone: Option<String>,
    pub pue: Option<f64>,
    pub flops: Option<f64>,
    pub params: Option<f64>,
    pub tokens: Option<f64>,
    pub mode: Option<String>,
    pub inferences: Option<f64>,
    pub precision: Option<String>,
    pub store: Option<bool>,
}

/// Work added at run time.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkAdd {
    pub inferences: Option<f64>,
    pub tokens: Option<f64>,
    pub flops: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

#[derive(Debug)]
pub enum OpenError {
    /// A bad option value (ValueError).
    Option(OptionError),
    /// An option whose backend is not in this build (NotImplementedError).
    Unavailable(String),
}

pub type WindowKey = WindowId;

pub fn check_count(name: &str, x: f64) -> Result<(), OptionError> {
    if !x.is_finite() || x < 0.0 {
        return Err(OptionError(format!(
            "{name} must be a finite number >= 0, got {x}"
        )));
    }
    Ok(())
}

pub struct Session {
    meter: Meter,
    work: Mutex<[f64; 3]>,
}

impl Session {
    pub fn open(opts: Options) -> Result<Session, OpenError> {
        if let Some(p) = opts.pue {
            if !p.is_finite() || p < 1.0 {
                return Err(OpenError::Option(OptionError(format!(
                    "pue must be a finite number >= 1.0 (facility energy / IT energy), got {p}"
                ))));
            }
        }
        let unavailable = [
            ("zone", opts.zone.is_some()),
            ("pue", opts.pue.is_some()),
            ("flops", opts.flops.is_some()),
            ("params", opts.params.is_some()),
            ("tokens", opts.tokens.is_some()),
            ("mode", opts.mode.is_some()),
            ("inferences", opts.inferences.is_some()),
            ("precision", opts.precision.is_some()),
            ("store", opts.store == Some(true)),
        ];
        if let Some((name, _)) = unavailable.iter().find(|(_, set)| *set) {
            return Err(OpenError::Unavailable(format!(
                "option `{name}` is not available in this build of wattprint yet"
            )));
        }
        Ok(Session {
            meter: Meter::start(Vec::new(), MeterOptions::default()),
            work: Mutex::new([0.0; 3]),
        })
    }

    pub fn begin(&self, name: &str) -> WindowKey {
        self.meter.begin(name)
    }

    pub fn end(&self, key: WindowKey) -> Result<RunReport, String> {
        let w = self.meter.end(key).map_err(|e| e.to_string())?;
        let mut r = RunReport::new(w.name.clone());
        r.duration_s = w.duration_s();
        Ok(r)
    }

    pub fn add_work(&self, w: WorkAdd) {
        let mut t = self.work.lock().unwrap_or_else(|e| e.into_inner());
        t[0] += w.inferences.unwrap_or(0.0);
        t[1] += w.tokens.unwrap_or(0.0);
        t[2] += w.flops.unwrap_or(0.0);
    }

    pub fn domains_json(&self) -> serde_json::Value {
        serde_json::Value::Array(Vec::new())
    }

    pub fn domain_count(&self) -> usize {
        self.meter.domains().len()
    }
}

/// Lines appended to `WATTPRINT_WORK_FILE` for `wattprint run` to read (`key=N`).
pub fn work_file_lines(w: &WorkAdd) -> String {
    let mut s = String::new();
    for (k, v) in [
        ("inferences", w.inferences),
        ("tokens", w.tokens),
        ("flops", w.flops),
    ] {
        if let Some(v) = v {
            s.push_str(&format!("{k}={v}\n"));
        }
    }
    s
}
