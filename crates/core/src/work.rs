//! Declared work and the performance metrics it enables (SPEC: Work, Metric definitions).
//!
//! Work is what the energy bought: FLOPs, inferences, tokens. It is declared on the command
//! line or through the API ([`WorkDecl`]), and the workload can add to it at run time by
//! appending `flops=N`, `inferences=N`, `tokens=N` lines to the work file
//! ([`parse_work_file`]). [`resolve_work`] turns both into the report's [`Work`];
//! [`fill_work_metrics`] computes FLOPs/W, peak FLOPs/W, their ratio, J/token and
//! J/inference. Every metric that cannot be computed is `None` with its reason in
//! `metrics.notes`; nothing here divides by zero.

use crate::report::{Metrics, Work};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Numeric precision the hardware peak is taken at. Default `bf16`. Serialised as
/// [`Precision::as_str`] (`"bf16"`...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Bf16,
    Fp16,
    Fp8,
    Tf32,
    Fp32,
}

impl Precision {
    pub const ALL: [Precision; 5] = [
        Precision::Bf16,
        Precision::Fp16,
        Precision::Fp8,
        Precision::Tf32,
        Precision::Fp32,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Fp8 => "fp8",
            Precision::Tf32 => "tf32",
            Precision::Fp32 => "fp32",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A precision name that is not one of [`Precision::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision `{text}`: use one of bf16, fp16, fp8, tf32, fp32")]
pub struct UnknownPrecision {
    pub text: String,
}

impl FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, UnknownPrecision> {
        let t = s.trim().to_ascii_lowercase();
        Precision::ALL
            .into_iter()
            .find(|p| p.as_str() == t)
            .ok_or_else(|| UnknownPrecision {
                text: s.to_string(),
            })
    }
}

/// Training or inference, for the dense-transformer FLOPs model. Serialised as
/// [`Mode::as_str`] (`"train"`, `"infer"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 6·N·D: forward and backward pass over D tokens.
    Train,
    /// 2·N·D: forward pass over D tokens.
    Infer,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Infer => "infer",
        }
    }

    /// FLOPs per parameter per token: 6 for training, 2 for inference.
    pub fn flops_per_param_token(self) -> f64 {
        match self {
            Mode::Train => 6.0,
            Mode::Infer => 2.0,
        }
    }
}

/// A mode name other than train or infer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{text}`: use train or infer")]
pub struct UnknownMode {
    pub text: String,
}

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Ok(Mode::Train),
            "infer" | "inference" => Ok(Mode::Infer),
            _ => Err(UnknownMode {
                text: s.to_string(),
            }),
        }
    }
}

/// Work declared before the run (command line or API). Counts are f64 so `175e9` is accepted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkDecl {
    /// `--flops`: floating-point operations the job performs.
    pub flops: Option<f64>,
    /// `--params`: model parameters N (with `tokens` and `mode`: FLOPs = k·N·D).
    pub params: Option<f64>,
    /// `--tokens`: tokens processed (D of the FLOPs model, and the J/token denominator).
    pub tokens: Option<f64>,
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--inferences`.
    pub inferences: Option<f64>,
    /// `--precision` (default bf16).
    pub precision: Precision,
}

/// A field of [`WorkDecl`], named in errors the way the caller spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkField {
    Flops,
    Params,
    Tokens,
    Mode,
    Inferences,
}

impl WorkField {
    /// The [`WorkDecl`] field (the Python keyword): `flops`, `params`...
    pub fn keyword(self) -> &'static str {
        match self {
            WorkField::Flops => "flops",
            WorkField::Params => "params",
            WorkField::Tokens => "tokens",
            WorkField::Mode => "mode",
            WorkField::Inferences => "inferences",
        }
    }

    /// The command-line spelling: `--flops`, `--params`...
    pub fn flag(self) -> &'static str {
        match self {
            WorkField::Flops => "--flops",
            WorkField::Params => "--params",
            WorkField::Tokens => "--tokens",
            WorkField::Mode => "--mode",
            WorkField::Inferences => "--inferences",
        }
    }
}

/// Why a declaration is unusable. `Display` names the command-line flags;
/// [`WorkError::describe`] names the fields another way (Python keywords).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WorkError {
    #[error("{}", self.describe(WorkField::flag))]
    NotFinite { field: WorkField, value: f64 },
    #[error("{}", self.describe(WorkField::flag))]
    Negative { field: WorkField, value: f64 },
    /// Beyond the field's physical range ([`MAX_FLOPS`], [`MAX_PARAMS`], [`MAX_COUNT`]).
    #[error("{}", self.describe(WorkField::flag))]
    TooLarge {
        field: WorkField,
        value: f64,
        max: f64,
    },
    /// `params` without `mode`.
    #[error("{}", self.describe(WorkField::flag))]
    ParamsNeedMode,
    /// `mode` without `params`.
    #[error("{}", self.describe(WorkField::flag))]
    ModeNeedsParams,
    /// `params` and `mode` without `tokens`.
    #[error("{}", self.describe(WorkField::flag))]
    ParamsNeedTokens,
    /// Both `flops` and the `params` model.
    #[error("{}", self.describe(WorkField::flag))]
    FlopsAndParams,
}

impl WorkError {
    /// The message with each field spelled by `name` ([`WorkField::flag`] or
    /// [`WorkField::keyword`]), naming the fix.
    pub fn describe(&self, name: fn(WorkField) -> &'static str) -> String {
        let (flops, params, tokens, mode) = (
            name(WorkField::Flops),
            name(WorkField::Params),
            name(WorkField::Tokens),
            name(WorkField::Mode),
        );
        match self {
            WorkError::NotFinite { field, value } => format!(
                "{} {value} is not a number: give a finite count such as 1e9",
                name(*field)
            ),
            WorkError::Negative { field, value } => format!(
                "{} {value} is negative: work counts are 0 or more",
                name(*field)
            ),
            WorkError::TooLarge { field, value, max } => format!(
                "{} {value:e} is more than {max:e}: check the unit (counts, not thousands or bytes)",
                name(*field)
            ),
            WorkError::ParamsNeedMode => {
                format!("{params} needs {mode} train|infer (and {tokens}) to compute FLOPs")
            }
            WorkError::ModeNeedsParams => {
                format!("{mode} needs {params} N and {tokens} D to compute FLOPs")
            }
            WorkError::ParamsNeedTokens => {
                format!("{params} with {mode} needs {tokens} D (tokens processed)")
            }
            WorkError::FlopsAndParams => {
                format!("give either {flops} or {params}/{tokens}/{mode}, not both")
            }
        }
    }
}

/// Largest declared FLOPs (10^30: 10^4 times the largest training runs, about 5x10^25).
pub const MAX_FLOPS: f64 = 1e30;
/// Largest declared parameter count (10^16: 10^4 times the largest models).
pub const MAX_PARAMS: f64 = 1e16;
/// Largest declared token or inference count (10^18).
pub const MAX_COUNT: f64 = 1e18;

fn check_count(field: WorkField, v: Option<f64>, max: f64) -> Result<(), WorkError> {
    match v {
        Some(value) if !value.is_finite() => Err(WorkError::NotFinite { field, value }),
        Some(value) if value < 0.0 => Err(WorkError::Negative { field, value }),
        Some(value) if value > max => Err(WorkError::TooLarge { field, value, max }),
        _ => Ok(()),
    }
}

impl WorkDecl {
    /// Check the declaration: counts finite and non-negative; `--params` needs `--tokens`
    /// and `--mode` (and the reverse for `--mode`); `--flops` and `--params` exclude each
    /// other.
    pub fn validate(&self) -> Result<(), WorkError> {
        check_count(WorkField::Flops, self.flops, MAX_FLOPS)?;
        check_count(WorkField::Params, self.params, MAX_PARAMS)?;
        check_count(WorkField::Tokens, self.tokens, MAX_COUNT)?;
        check_count(WorkField::Inferences, self.inferences, MAX_COUNT)?;
        match (self.params, self.mode) {
            (Some(_), None) => return Err(WorkError::ParamsNeedMode),
            (None, Some(_)) => return Err(WorkError::ModeNeedsParams),
            (Some(_), Some(_)) if self.tokens.is_none() => return Err(WorkError::ParamsNeedTokens),
            _ => {}
        }
        if self.flops.is_some() && self.params.is_some() {
            return Err(WorkError::FlopsAndParams);
        }
        Ok(())
    }

    /// FLOPs from the dense-transformer model, and the formula that gave them.
    /// `(6·N)·D` is evaluated in that order, so `175e9`, `300e9`, train gives exactly 3.15e23.
    pub fn model_flops(&self) -> Option<(f64, String)> {
        let (n, d, mode) = (self.params?, self.tokens?, self.mode?);
        let k = mode.flops_per_param_token();
        let flops = (k * n) * d;
        Some((
            flops,
            format!(
                "{k}*N*D ({} mode, N={n:e} params, D={d:e} tokens)",
                mode.as_str()
            ),
        ))
    }
}

/// Work added at run time through the work file, summed per key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkFileTally {
    pub flops: Option<f64>,
    pub inferences: Option<f64>,
    pub tokens: Option<f64>,
    /// Lines accepted.
    pub lines: usize,
    /// Lines rejected, each naming its line number and what was wrong.
    pub errors: Vec<String>,
}

fn add(slot: &mut Option<f64>, v: f64) {
    *slot = Some(slot.unwrap_or(0.0) + v);
}

/// Bad lines of a work file named at most; past this the last entry of
/// [`WorkFileTally::errors`] counts the rest, so a runaway workload cannot grow the report.
pub const MAX_WORK_FILE_ERRORS: usize = 20;

/// Parse the work file: one `key=value` per line, key `flops`, `inferences` or `tokens`,
/// value a non-negative finite number (`1e9` allowed). Blank lines and `#` comments are
/// ignored. Values of the same key are summed. Bad lines are skipped and reported by number
/// (`label` names the file in messages).
pub fn parse_work_file(label: &str, text: &str) -> WorkFileTally {
    let mut t = WorkFileTally::default();
    let mut bad = 0;
    for (i, raw) in text.lines().enumerate() {
        t.add_line(label, i + 1, raw, &mut bad);
    }
    t
}

impl WorkFileTally {
    /// Adds line `n` (1-based) of a work file, read one line at a time; `bad` counts the
    /// rejected lines so far (start at 0). At most [`MAX_WORK_FILE_ERRORS`] are named.
    pub fn add_line(&mut self, label: &str, n: usize, raw: &str, bad: &mut usize) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        let mut reject = |t: &mut WorkFileTally, msg: String| {
            *bad += 1;
            if *bad < MAX_WORK_FILE_ERRORS {
                t.errors.push(msg);
            } else {
                let more = *bad - (MAX_WORK_FILE_ERRORS - 1);
                let summary = format!("{label}: {more} more bad line(s) after these (not named)");
                if t.errors.len() < MAX_WORK_FILE_ERRORS {
                    t.errors.push(summary);
                } else if let Some(last) = t.errors.last_mut() {
                    *last = summary;
                }
            }
        };
        // Progress lines are the forecast's (`crate::forecast`): checked, not summed.
        match crate::forecast::parse_progress_line(line) {
            Some(Ok(_)) => {
                self.lines += 1;
                return;
            }
            Some(Err(e)) => {
                reject(self, format!("{label} line {n}: {e}"));
                return;
            }
            None => {}
        }
        let Some((key, value)) = line.split_once('=') else {
            reject(
                self,
                format!(
                    "{label} line {n}: `{line}` is not key=value (use flops=N, inferences=N, tokens=N, progress=F or step=N total=M)"
                ),
            );
            return;
        };
        let (key, value) = (key.trim(), value.trim());
        let v = match value.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            Ok(v) => {
                reject(
                    self,
                    format!(
                        "{label} line {n}: {key}={value}: {v} is not a count (must be finite and 0 or more)"
                    ),
                );
                return;
            }
            Err(_) => {
                reject(
                    self,
                    format!("{label} line {n}: {key}={value}: `{value}` is not a number"),
                );
                return;
            }
        };
        match key {
            "flops" => add(&mut self.flops, v),
            "inferences" => add(&mut self.inferences, v),
            "tokens" => add(&mut self.tokens, v),
            _ => {
                reject(
                    self,
                    format!(
                        "{label} line {n}: unknown key `{key}` (use flops, inferences, tokens, progress or step)"
                    ),
                );
                return;
            }
        }
        self.lines += 1;
    }
}

fn sum_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

/// The report's work section from the declaration plus what the workload added at run time.
/// Declared and run-time amounts of the same kind are summed; `flops_formula` says where the
/// FLOPs came from.
pub fn resolve_work(decl: &WorkDecl, file: Option<&WorkFileTally>) -> Work {
    let (decl_flops, decl_formula) = match (decl.flops, decl.model_flops()) {
        (Some(f), _) => (Some(f), Some("declared (--flops)".to_string())),
        (None, Some((f, formula))) => (Some(f), Some(formula)),
        (None, None) => (None, None),
    };
    let file_flops = file.and_then(|t| t.flops);
    let flops_formula = match (decl_formula, file_flops) {
        (Some(d), Some(_)) => Some(format!("{d} + work file flops= lines")),
        (Some(d), None) => Some(d),
        (None, Some(_)) => Some("work file flops= lines".to_string()),
        (None, None) => None,
    };
    Work {
        flops: sum_opt(decl_flops, file_flops),
        inferences: sum_opt(decl.inferences, file.and_then(|t| t.inferences)),
        tokens: sum_opt(decl.tokens, file.and_then(|t| t.tokens)),
        flops_formula,
        precision: Some(decl.precision),
        params: decl.params,
        mode: decl.mode,
    }
}

/// One device's peak at a precision, from the hardware table.
#[derive(Clone, Debug, PartialEq)]
pub struct DevicePeak {
    /// The device as reported (e.g. `NVIDIA H100 80GB HBM3`).
    pub device: String,
    /// Peak dense FLOP/s at the chosen precision; `Err` says why it is unknown.
    pub peak_flops_per_s: Result<f64, String>,
    /// Board power (TDP), W; `Err` says why it is unknown.
    pub tdp_w: Result<f64, String>,
}

/// Peak FLOPs/W of a set of devices: Σ peaks / Σ TDPs (FLOP/J). `Err` names the device and
/// the missing figure.
pub fn peak_flops_per_watt(devices: &[DevicePeak]) -> Result<f64, String> {
    if devices.is_empty() {
        return Err("no GPU was measured, so there is no hardware peak".into());
    }
    let (mut peak, mut tdp) = (0.0, 0.0);
    for d in devices {
        match &d.peak_flops_per_s {
            Ok(p) if p.is_finite() && *p > 0.0 => peak += p,
            Ok(p) => return Err(format!("{}: peak {p} FLOP/s is not usable", d.device)),
            Err(e) => return Err(format!("{}: {e}", d.device)),
        }
        match &d.tdp_w {
            Ok(w) if w.is_finite() && *w > 0.0 => tdp += w,
            Ok(w) => return Err(format!("{}: TDP {w} W is not usable", d.device)),
            Err(e) => return Err(format!("{}: {e}", d.device)),
        }
    }
    Ok(peak / tdp)
}

/// Energies the work metrics divide by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricEnergy {
    /// Energy to solution (all counted domains), J.
    pub e2s_j: f64,
    /// GPU energy alone (sum of GPU domains), J; `None` when no GPU was measured.
    pub gpu_j: Option<f64>,
}

/// `num / den` when both are usable; `Err` says why not. Never divides by zero.
fn ratio(
    what: &str,
    num: Option<f64>,
    missing: &str,
    den: f64,
    den_name: &str,
) -> Result<f64, String> {
    let n = num.ok_or_else(|| missing.to_string())?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("FLOPs = {n} is not a count"));
    }
    if !den.is_finite() || den <= 0.0 {
        return Err(format!("{what}: {den_name} is {den}, cannot divide by it"));
    }
    Ok(n / den)
}

fn set(metrics: &mut Metrics, key: &str, r: Result<f64, String>) -> Option<f64> {
    match r {
        Ok(v) => {
            metrics.notes.remove(key);
            Some(v)
        }
        Err(e) => {
            metrics.notes.insert(key.to_string(), e);
            None
        }
    }
}

/// Fill the work metrics of `metrics` from `work`, the energies and the devices' peaks:
/// `flops_per_watt` = FLOPs / E2S; `gpu_flops_per_watt` = FLOPs / GPU energy;
/// `peak_flops_per_watt` = Σ peak / Σ TDP at the precision; `flops_per_watt_ratio` =
/// achieved / peak (GPU-only achieved when GPU energy is known, else whole-job);
/// `joules_per_token` = E2S / tokens; `joules_per_inference` = E2S / inferences.
/// Each metric that cannot be computed is `None` with the reason in `metrics.notes`.
pub fn fill_work_metrics(
    metrics: &mut Metrics,
    work: &Work,
    energy: MetricEnergy,
    peaks: &[DevicePeak],
) {
    let flops_name =
        "no FLOPs declared (use --flops, --params/--tokens/--mode, or flops= in the work file)";
    let fpw = set(
        metrics,
        "flops_per_watt",
        ratio(
            "FLOPs/W",
            work.flops,
            flops_name,
            energy.e2s_j,
            "energy to solution",
        ),
    );
    metrics.flops_per_watt = fpw;
    let gpu = match energy.gpu_j {
        None => Err("no GPU energy was measured".to_string()),
        Some(g) => ratio("GPU FLOPs/W", work.flops, flops_name, g, "GPU energy"),
    };
    metrics.gpu_flops_per_watt = set(metrics, "gpu_flops_per_watt", gpu);
    metrics.peak_flops_per_watt = set(metrics, "peak_flops_per_watt", peak_flops_per_watt(peaks));
    let achieved = metrics.gpu_flops_per_watt.or(metrics.flops_per_watt);
    let r = match (achieved, metrics.peak_flops_per_watt) {
        (Some(a), Some(p)) if p > 0.0 => Ok(a / p),
        (None, _) => Err("achieved FLOPs/W is unknown (see flops_per_watt)".to_string()),
        _ => Err("peak FLOPs/W is unknown (see peak_flops_per_watt)".to_string()),
    };
    metrics.flops_per_watt_ratio = set(metrics, "flops_per_watt_ratio", r);
    let per = |count: Option<f64>, name: &str| -> Result<f64, String> {
        let c = count
            .ok_or_else(|| format!("no {name} declared (--{name} or {name}= in the work file)"))?;
        if !c.is_finite() || c < 0.0 {
            return Err(format!("{name} = {c} is not a count"));
        }
        if c == 0.0 {
            return Err(format!(
                "zero {name} declared: J per {} is undefined",
                &name[..name.len() - 1]
            ));
        }
        if !energy.e2s_j.is_finite() || energy.e2s_j < 0.0 {
            return Err(format!(
                "energy to solution is {} J, not an energy",
                energy.e2s_j
            ));
        }
        Ok(energy.e2s_j / c)
    };
    metrics.joules_per_token = set(metrics, "joules_per_token", per(work.tokens, "tokens"));
    metrics.joules_per_inference = set(
        metrics,
        "joules_per_inference",
        per(work.inferences, "inferences"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decl() -> WorkDecl {
        WorkDecl::default()
    }

    #[test]
    fn gpt3_training_flops_are_exactly_3_15e23() {
        let d = WorkDecl {
            params: Some(175e9),
            tokens: Some(300e9),
            mode: Some(Mode::Train),
            ..decl()
        };
        d.validate().unwrap();
        let w = resolve_work(&d, None);
        assert_eq!(w.flops, Some(3.15e23));
        let f = w.flops_formula.clone().unwrap();
        assert!(f.starts_with("6*N*D"), "{f}");
        assert!(f.contains("N=1.75e11"), "{f}");
        assert_eq!(w.params, Some(175e9));
        assert_eq!(w.mode, Some(Mode::Train));
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["mode"], "train");
        assert_eq!(json["precision"], "bf16");
        let back: Work = serde_json::from_value(json).unwrap();
        assert_eq!(back, w);
        assert_eq!(w.tokens, Some(300e9));
    }

    #[test]
    fn inference_flops_are_two_n_d() {
        let d = WorkDecl {
            params: Some(7e9),
            tokens: Some(1000.0),
            mode: Some(Mode::Infer),
            ..decl()
        };
        let (f, formula) = d.model_flops().unwrap();
        assert_eq!(f, 1.4e13);
        assert!(formula.starts_with("2*N*D (infer mode"), "{formula}");
    }

    #[test]
    fn declared_flops_are_labelled_declared() {
        let w = resolve_work(
            &WorkDecl {
                flops: Some(1e15),
                ..decl()
            },
            None,
        );
        assert_eq!(w.flops, Some(1e15));
        assert_eq!(w.flops_formula.as_deref(), Some("declared (--flops)"));
        assert_eq!(w.precision, Some(Precision::Bf16));
    }

    #[test]
    fn nothing_declared_gives_nulls() {
        let w = resolve_work(&decl(), None);
        assert_eq!((w.flops, w.tokens, w.inferences), (None, None, None));
        assert_eq!(w.flops_formula, None);
    }

    #[test]
    fn validation_rejects_nonsense_and_names_the_option() {
        let cases = [
            (
                WorkDecl {
                    flops: Some(-1.0),
                    ..decl()
                },
                "--flops -1 is negative",
            ),
            (
                WorkDecl {
                    flops: Some(f64::NAN),
                    ..decl()
                },
                "--flops NaN is not a number",
            ),
            (
                WorkDecl {
                    tokens: Some(f64::INFINITY),
                    ..decl()
                },
                "--tokens inf",
            ),
            (
                WorkDecl {
                    inferences: Some(-3.0),
                    ..decl()
                },
                "--inferences -3",
            ),
            (
                WorkDecl {
                    params: Some(1e9),
                    ..decl()
                },
                "--params needs --mode",
            ),
            (
                WorkDecl {
                    mode: Some(Mode::Train),
                    ..decl()
                },
                "--mode needs --params",
            ),
            (
                WorkDecl {
                    params: Some(1e9),
                    mode: Some(Mode::Train),
                    ..decl()
                },
                "needs --tokens",
            ),
            (
                WorkDecl {
                    flops: Some(1.0),
                    params: Some(1e9),
                    tokens: Some(1.0),
                    mode: Some(Mode::Infer),
                    ..decl()
                },
                "not both",
            ),
        ];
        for (d, want) in cases {
            let e = d.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should contain {want}");
        }
        assert!(WorkDecl {
            tokens: Some(0.0),
            ..decl()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn errors_name_fields_as_flags_or_as_keywords() {
        let e = WorkDecl {
            params: Some(7e9),
            ..WorkDecl::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e, WorkError::ParamsNeedMode);
        assert_eq!(
            e.to_string(),
            "--params needs --mode train|infer (and --tokens) to compute FLOPs"
        );
        assert_eq!(
            e.describe(WorkField::keyword),
            "params needs mode train|infer (and tokens) to compute FLOPs"
        );
        let e = WorkError::Negative {
            field: WorkField::Inferences,
            value: -1.0,
        };
        assert_eq!(
            e.describe(WorkField::keyword),
            "inferences -1 is negative: work counts are 0 or more"
        );
    }

    #[test]
    fn precision_and_mode_parse() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert!("int8"
            .parse::<Precision>()
            .unwrap_err()
            .to_string()
            .contains("bf16, fp16"));
        assert_eq!(Precision::default(), Precision::Bf16);
        assert_eq!("training".parse::<Mode>().unwrap(), Mode::Train);
        assert_eq!("infer".parse::<Mode>().unwrap(), Mode::Infer);
        assert!("eval".parse::<Mode>().is_err());
    }

    #[test]
    fn work_file_lines_are_summed_and_bad_lines_numbered() {
        let text = "flops=1e12\n# a comment\n\ntokens = 100\nflops=2e12\ninferences=3\n\
                    tokens=-5\nbogus\nwatts=3\ntokens=abc\ninferences=NaN\ntokens=50\n";
        let t = parse_work_file("work.txt", text);
        assert_eq!(t.flops, Some(3e12));
        assert_eq!(t.tokens, Some(150.0));
        assert_eq!(t.inferences, Some(3.0));
        assert_eq!(t.lines, 5);
        assert_eq!(t.errors.len(), 5, "{:?}", t.errors);
        assert!(
            t.errors[0].starts_with("work.txt line 7: tokens=-5"),
            "{}",
            t.errors[0]
        );
        assert!(t.errors[1].starts_with("work.txt line 8: `bogus` is not key=value"));
        assert!(t.errors[2].contains("line 9: unknown key `watts`"));
        assert!(t.errors[3].contains("line 10: tokens=abc: `abc` is not a number"));
        assert!(t.errors[4].contains("line 11"));
    }

    #[test]
    fn progress_lines_are_accepted_and_bad_ones_numbered() {
        let t = parse_work_file("w", "progress=0.1\nstep=3 total=10\ntokens=5\nprogress=7\n");
        assert_eq!(t.tokens, Some(5.0));
        assert_eq!(t.lines, 3);
        assert_eq!(t.errors.len(), 1, "{:?}", t.errors);
        assert!(
            t.errors[0].starts_with("w line 4: progress=7"),
            "{}",
            t.errors[0]
        );
    }

    #[test]
    fn empty_work_file_adds_nothing() {
        let t = parse_work_file("w", "");
        assert_eq!(t, WorkFileTally::default());
    }

    #[test]
    fn run_time_work_adds_to_declared_work() {
        let d = WorkDecl {
            flops: Some(1e12),
            inferences: Some(10.0),
            ..decl()
        };
        let t = parse_work_file("w", "flops=5e11\ninferences=5\ntokens=7\n");
        let w = resolve_work(&d, Some(&t));
        assert_eq!(w.flops, Some(1.5e12));
        assert_eq!(w.inferences, Some(15.0));
        assert_eq!(w.tokens, Some(7.0));
        assert_eq!(
            w.flops_formula.as_deref(),
            Some("declared (--flops) + work file flops= lines")
        );
        let only_file = resolve_work(&decl(), Some(&t));
        assert_eq!(only_file.flops, Some(5e11));
        assert_eq!(
            only_file.flops_formula.as_deref(),
            Some("work file flops= lines")
        );
    }

    fn h100(n: usize) -> Vec<DevicePeak> {
        (0..n)
            .map(|_| DevicePeak {
                device: "NVIDIA H100 80GB HBM3".into(),
                peak_flops_per_s: Ok(989.4e12),
                tdp_w: Ok(700.0),
            })
            .collect()
    }

    #[test]
    fn metrics_are_exact_for_known_values() {
        let work = Work {
            flops: Some(7e15),
            tokens: Some(1000.0),
            inferences: Some(4.0),
            ..Default::default()
        };
        let mut m = Metrics::default();
        let e = MetricEnergy {
            e2s_j: 2000.0,
            gpu_j: Some(1400.0),
        };
        fill_work_metrics(&mut m, &work, e, &h100(2));
        assert_eq!(m.flops_per_watt, Some(3.5e12));
        assert_eq!(m.gpu_flops_per_watt, Some(5e12));
        assert_eq!(m.peak_flops_per_watt, Some(2.0 * 989.4e12 / 1400.0));
        assert_eq!(
            m.flops_per_watt_ratio,
            Some(5e12 / (2.0 * 989.4e12 / 1400.0))
        );
        assert_eq!(m.joules_per_token, Some(2.0));
        assert_eq!(m.joules_per_inference, Some(500.0));
        assert!(m.notes.is_empty(), "{:?}", m.notes);
    }

    #[test]
    fn peak_is_sum_of_peaks_over_sum_of_tdps() {
        let devs = vec![
            DevicePeak {
                device: "a".into(),
                peak_flops_per_s: Ok(100.0),
                tdp_w: Ok(10.0),
            },
            DevicePeak {
                device: "b".into(),
                peak_flops_per_s: Ok(300.0),
                tdp_w: Ok(30.0),
            },
            DevicePeak {
                device: "c".into(),
                peak_flops_per_s: Ok(200.0),
                tdp_w: Ok(60.0),
            },
        ];
        // Not the mean of 10, 10 and 3.33: a weighted figure.
        assert_eq!(peak_flops_per_watt(&devs), Ok(6.0));
    }

    #[test]
    fn unknown_device_leaves_peak_null_with_reason() {
        let devs = vec![DevicePeak {
            device: "Mystery GPU".into(),
            peak_flops_per_s: Err("not in the hardware table".into()),
            tdp_w: Err("not in the hardware table".into()),
        }];
        let mut m = Metrics::default();
        let work = Work {
            flops: Some(1e12),
            ..Default::default()
        };
        fill_work_metrics(
            &mut m,
            &work,
            MetricEnergy {
                e2s_j: 10.0,
                gpu_j: Some(5.0),
            },
            &devs,
        );
        assert_eq!(m.peak_flops_per_watt, None);
        assert_eq!(m.flops_per_watt_ratio, None);
        assert_eq!(
            m.notes["peak_flops_per_watt"],
            "Mystery GPU: not in the hardware table"
        );
        assert!(m.notes["flops_per_watt_ratio"].contains("peak FLOPs/W is unknown"));
        assert_eq!(m.flops_per_watt, Some(1e11));
        assert_eq!(m.gpu_flops_per_watt, Some(2e11));
    }

    #[test]
    fn no_gpu_no_work_gives_nulls_with_reasons() {
        let mut m = Metrics::default();
        fill_work_metrics(
            &mut m,
            &Work::default(),
            MetricEnergy {
                e2s_j: 10.0,
                gpu_j: None,
            },
            &[],
        );
        for k in [
            "flops_per_watt",
            "gpu_flops_per_watt",
            "peak_flops_per_watt",
            "flops_per_watt_ratio",
            "joules_per_token",
            "joules_per_inference",
        ] {
            assert!(m.notes.contains_key(k), "no note for {k}");
        }
        assert!(m.notes["flops_per_watt"].contains("no FLOPs"));
        assert_eq!(m.notes["gpu_flops_per_watt"], "no GPU energy was measured");
        assert!(m.notes["peak_flops_per_watt"].contains("no GPU"));
    }

    #[test]
    fn zero_energy_and_zero_counts_never_divide() {
        let work = Work {
            flops: Some(1e12),
            tokens: Some(0.0),
            inferences: Some(f64::NAN),
            ..Default::default()
        };
        let mut m = Metrics::default();
        fill_work_metrics(
            &mut m,
            &work,
            MetricEnergy {
                e2s_j: 0.0,
                gpu_j: Some(0.0),
            },
            &h100(1),
        );
        assert_eq!(m.flops_per_watt, None);
        assert_eq!(m.gpu_flops_per_watt, None);
        assert!(m.notes["flops_per_watt"].contains("energy to solution is 0"));
        assert!(m.notes["gpu_flops_per_watt"].contains("GPU energy is 0"));
        assert_eq!(m.joules_per_token, None);
        assert_eq!(
            m.notes["joules_per_token"],
            "zero tokens declared: J per token is undefined"
        );
        assert_eq!(m.joules_per_inference, None);
        assert!(m.notes["joules_per_inference"].contains("NaN is not a count"));
        assert!(m.peak_flops_per_watt.is_some());
        assert!(m.notes["flops_per_watt_ratio"].contains("achieved"));
    }

    #[test]
    fn negative_work_values_in_a_report_give_null_metrics() {
        let work = Work {
            flops: Some(-5.0),
            tokens: Some(-1.0),
            ..Default::default()
        };
        let mut m = Metrics::default();
        fill_work_metrics(
            &mut m,
            &work,
            MetricEnergy {
                e2s_j: 10.0,
                gpu_j: None,
            },
            &[],
        );
        assert_eq!(m.flops_per_watt, None);
        assert!(m.notes["flops_per_watt"].contains("-5 is not a count"));
        assert_eq!(m.joules_per_token, None);
    }

    #[test]
    fn ratio_falls_back_to_whole_job_without_gpu_energy() {
        let work = Work {
            flops: Some(1e6),
            ..Default::default()
        };
        let devs = vec![DevicePeak {
            device: "x".into(),
            peak_flops_per_s: Ok(1e4),
            tdp_w: Ok(1.0),
        }];
        let mut m = Metrics::default();
        fill_work_metrics(
            &mut m,
            &work,
            MetricEnergy {
                e2s_j: 1000.0,
                gpu_j: None,
            },
            &devs,
        );
        assert_eq!(m.flops_per_watt_ratio, Some(0.1));
    }

    #[test]
    fn a_later_successful_fill_clears_the_old_note() {
        let mut m = Metrics::default();
        fill_work_metrics(
            &mut m,
            &Work::default(),
            MetricEnergy {
                e2s_j: 1.0,
                gpu_j: None,
            },
            &[],
        );
        assert!(m.notes.contains_key("flops_per_watt"));
        let work = Work {
            flops: Some(2.0),
            ..Default::default()
        };
        fill_work_metrics(
            &mut m,
            &work,
            MetricEnergy {
                e2s_j: 1.0,
                gpu_j: None,
            },
            &[],
        );
        assert_eq!(m.flops_per_watt, Some(2.0));
        assert!(!m.notes.contains_key("flops_per_watt"));
    }

    proptest! {
        #[test]
        fn metrics_are_finite_or_null_with_a_note(
            flops in prop::option::of(prop_oneof![Just(f64::NAN), Just(-1.0), 0.0..1e25f64]),
            tokens in prop::option::of(prop_oneof![Just(f64::NAN), Just(0.0), -10.0..1e12f64]),
            e2s in prop_oneof![Just(0.0), Just(f64::NAN), -1.0..1e9f64],
            gpu in prop::option::of(prop_oneof![Just(0.0), 0.0..1e9f64]),
        ) {
            let work = Work { flops, tokens, ..Default::default() };
            let mut m = Metrics::default();
            fill_work_metrics(&mut m, &work, MetricEnergy { e2s_j: e2s, gpu_j: gpu }, &h100(1));
            for (k, v) in [
                ("flops_per_watt", m.flops_per_watt),
                ("gpu_flops_per_watt", m.gpu_flops_per_watt),
                ("flops_per_watt_ratio", m.flops_per_watt_ratio),
                ("joules_per_token", m.joules_per_token),
            ] {
                match v {
                    Some(x) => prop_assert!(x.is_finite() && x >= 0.0, "{k} = {x}"),
                    None => prop_assert!(m.notes.contains_key(k), "{k} null without a note"),
                }
            }
        }

        #[test]
        fn model_flops_scale_linearly(n in 1.0..1e12f64, d in 1.0..1e12f64) {
            let t = WorkDecl { params: Some(n), tokens: Some(d), mode: Some(Mode::Train), ..decl() };
            let i = WorkDecl { mode: Some(Mode::Infer), ..t.clone() };
            let (ft, _) = t.model_flops().unwrap();
            let (fi, _) = i.model_flops().unwrap();
            prop_assert!((ft / fi - 3.0).abs() < 1e-12);
        }
    }
}
