//! `wattprint._wattprint`: the Python bindings, thin glue over the engine.
//!
//! Python idioms only: argument conversion, exceptions, the GIL released while Rust reads
//! sensors, and the report turned into Python objects through the same serde structs the CLI
//! prints (`to_dict()` equals the CLI's JSON). Measurement, windows, work and report assembly
//! are the engine's.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use wattprint_core::report::RunReport;

mod backend;

pyo3::create_exception!(
    _wattprint,
    WattprintError,
    pyo3::exceptions::PyException,
    "Base class of wattprint's own errors."
);
pyo3::create_exception!(
    _wattprint,
    WindowError,
    PyValueError,
    "A window that is not open (already ended, or from another meter) was ended."
);

static NEXT_METER: AtomicU64 = AtomicU64::new(1);

fn value_error(e: backend::OptionError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A non-negative, finite work count; `175e9` and `100` both accepted, `bool` refused.
fn work_count(name: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(v) = v else { return Ok(None) };
    if v.is_none() {
        return Ok(None);
    }
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number (int or float), not bool"
        )));
    }
    let x: f64 = v.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a number (int or float), not {}",
            type_name(v)
        ))
    })?;
    backend::check_count(name, x).map_err(value_error)?;
    Ok(Some(x))
}

fn opt_str(name: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v.extract::<String>().map(Some).map_err(|_| {
            PyTypeError::new_err(format!("{name} must be a str, not {}", type_name(v)))
        }),
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The keyword options of `Meter()` / `track()`, mirroring `wattprint run`'s flags.
pub const OPTIONS: &[&str] = &[
    "zone",
    "pue",
    "market_factor_g_per_kwh",
    "intensity_file",
    "live",
    "embodied_kg",
    "lifetime_years",
    "share",
    "unit_count",
    "unit_name",
    "flops",
    "params",
    "tokens",
    "mode",
    "inferences",
    "precision",
    "store",
    "sensors",
    "gpus",
];

/// A finite-or-not float option (range checks are the library's); `bool` refused.
fn opt_f64(name: &str, v: Option<Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    match v {
        Some(v) if !v.is_none() => {
            if v.is_instance_of::<pyo3::types::PyBool>() {
                return Err(PyTypeError::new_err(format!(
                    "{name} must be a number, not bool"
                )));
            }
            v.extract::<f64>().map(Some).map_err(|_| {
                PyTypeError::new_err(format!("{name} must be a number, not {}", type_name(&v)))
            })
        }
        _ => Ok(None),
    }
}

fn options_from(options: Option<&Bound<'_, PyDict>>) -> PyResult<backend::Options> {
    let mut o = backend::Options::default();
    let Some(options) = options else {
        return Ok(o);
    };
    for key in options.keys() {
        let k: String = key.extract()?;
        if !OPTIONS.contains(&k.as_str()) {
            return Err(PyTypeError::new_err(format!(
                "unknown option `{k}`; options are: {}",
                OPTIONS.join(", ")
            )));
        }
    }
    let get = |k: &str| options.get_item(k);
    o.zone = opt_str("zone", get("zone")?.as_ref())?;
    o.pue = opt_f64("pue", get("pue")?)?;
    o.market_factor_g_per_kwh =
        opt_f64("market_factor_g_per_kwh", get("market_factor_g_per_kwh")?)?;
    o.intensity_file = match get("intensity_file")? {
        Some(v) if !v.is_none() => Some(v.extract::<std::path::PathBuf>().map_err(|_| {
            PyTypeError::new_err(format!(
                "intensity_file must be a str or os.PathLike, not {}",
                type_name(&v)
            ))
        })?),
        _ => None,
    };
    o.live = opt_str("live", get("live")?.as_ref())?;
    o.embodied_kg = opt_f64("embodied_kg", get("embodied_kg")?)?;
    o.lifetime_years = opt_f64("lifetime_years", get("lifetime_years")?)?;
    o.share = opt_f64("share", get("share")?)?;
    o.unit_count = opt_f64("unit_count", get("unit_count")?)?;
    o.unit_name = opt_str("unit_name", get("unit_name")?.as_ref())?;
    o.flops = work_count("flops", get("flops")?.as_ref())?;
    o.params = work_count("params", get("params")?.as_ref())?;
    o.tokens = work_count("tokens", get("tokens")?.as_ref())?;
    o.mode = opt_str("mode", get("mode")?.as_ref())?;
    o.inferences = work_count("inferences", get("inferences")?.as_ref())?;
    o.precision = opt_str("precision", get("precision")?.as_ref())?;
    o.store = match get("store")? {
        Some(v) if !v.is_none() => Some(v.extract::<bool>().map_err(|_| {
            PyTypeError::new_err(format!("store must be a bool, not {}", type_name(&v)))
        })?),
        _ => None,
    };
    o.sensors = match get("sensors")? {
        Some(v) if !v.is_none() => {
            let list = if v.is_instance_of::<pyo3::types::PyString>() {
                None
            } else {
                v.extract::<Vec<String>>().ok()
            };
            Some(list.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "sensors must be a list of str (e.g. [\"model\"] or [\"-rapl-perf\"]), \
                     not {}",
                    type_name(&v)
                ))
            })?)
        }
        _ => None,
    };
    o.gpus = opt_gpus(get("gpus")?)?;
    Ok(o)
}

/// `gpus=`: a str (`"all"`, `"0,2"`, a UUID), an int, or a list/tuple of ints and strs,
/// passed on as `--gpus`'s text.
fn opt_gpus(v: Option<Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let one = |x: &Bound<'_, PyAny>| -> PyResult<String> {
        if x.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyTypeError::new_err(
                "gpus entries must be int or str, not bool",
            ));
        }
        if let Ok(i) = x.extract::<u32>() {
            return Ok(i.to_string());
        }
        x.extract::<String>().map_err(|_| {
            PyTypeError::new_err(format!(
                "gpus entries must be int or str, not {}",
                type_name(x)
            ))
        })
    };
    if v.is_instance_of::<pyo3::types::PyList>() || v.is_instance_of::<pyo3::types::PyTuple>() {
        let items: Vec<String> = v.try_iter()?.map(|x| one(&x?)).collect::<PyResult<_>>()?;
        return Ok(Some(if items.is_empty() {
            "none".into()
        } else {
            items.join(",")
        }));
    }
    one(&v).map(Some)
}

/// Reads sensors and measures named windows; nestable and overlapping.
///
/// `Meter(**options)`; the options (see `OPTIONS`) mirror `wattprint run`'s flags.
#[pyclass(module = "wattprint._wattprint", frozen)]
struct Meter {
    id: u64,
    inner: backend::Meter,
}

/// The handle of an open window, returned by `Meter.begin`.
#[pyclass(module = "wattprint._wattprint", frozen)]
struct Window {
    meter_id: u64,
    window: backend::WindowKey,
    #[pyo3(get)]
    name: String,
}

#[pymethods]
impl Window {
    fn __repr__(&self) -> String {
        format!("<wattprint.Window {:?}>", self.name)
    }
}

#[pymethods]
impl Meter {
    #[new]
    #[pyo3(signature = (*args, **options))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, pyo3::types::PyTuple>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if !args.is_empty() {
            return Err(PyTypeError::new_err(
                "Meter() takes keyword options only, e.g. Meter(zone=\"FR\", pue=1.2)",
            ));
        }
        let opts = options_from(options)?;
        let inner = py
            .detach(|| backend::Meter::open(opts))
            .map_err(value_error)?;
        Ok(Meter {
            id: NEXT_METER.fetch_add(1, Ordering::Relaxed),
            inner,
        })
    }

    /// Open a named window; returns its handle.
    #[pyo3(signature = (name="window"))]
    fn begin(&self, py: Python<'_>, name: &str) -> Window {
        let window = py.detach(|| self.inner.begin(name));
        Window {
            meter_id: self.id,
            window,
            name: name.to_string(),
        }
    }

    /// Close a window and return its report. Ending a window twice raises `WindowError`.
    /// `error`: what the measured block raised, if it did (kept as a report warning).
    #[pyo3(signature = (window, *, error=None))]
    fn end(
        &self,
        py: Python<'_>,
        window: &Bound<'_, PyAny>,
        error: Option<String>,
    ) -> PyResult<Report> {
        let w = window.cast::<Window>().map_err(|_| {
            PyTypeError::new_err(format!(
                "end() takes the Window that begin() returned, not {}",
                type_name(window)
            ))
        })?;
        let w = w.get();
        if w.meter_id != self.id {
            return Err(WindowError::new_err(format!(
                "window {:?} was begun on another Meter: end it on that one",
                w.name
            )));
        }
        let key = w.window;
        let (closed, report) = py
            .detach(|| {
                let closed = self.inner.end(key, error)?;
                let report = OnceLock::new();
                if closed.stores() {
                    let _ = report.set(closed.report_and_store());
                }
                Ok::<_, String>((closed, report))
            })
            .map_err(|e| WindowError::new_err(format!("window {:?}: {e}", w.name)))?;
        Ok(Report { closed, report })
    }

    /// Add work done so far (counted in every window open now).
    #[pyo3(signature = (*, inferences=None, tokens=None, flops=None))]
    fn add_work(
        &self,
        inferences: Option<&Bound<'_, PyAny>>,
        tokens: Option<&Bound<'_, PyAny>>,
        flops: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let w = backend::WorkAdd {
            inferences: work_count("inferences", inferences)?,
            tokens: work_count("tokens", tokens)?,
            flops: work_count("flops", flops)?,
        };
        self.inner.add_work(w);
        Ok(())
    }

    /// The domains this meter reads, as dicts (name, kind, source, method, counted_in_total).
    #[getter]
    fn domains<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(self.inner.domains())
            .map_err(|e| WattprintError::new_err(format!("serialising the domains: {e}")))?;
        to_py(py, &v)
    }

    fn __repr__(&self) -> String {
        let names: Vec<String> = self.inner.domains().into_iter().map(|d| d.name).collect();
        format!("<wattprint.Meter domains={names:?}>")
    }
}

/// The report of a window: the `wattprint.run/v1` schema, with unit-named shortcuts.
#[pyclass(module = "wattprint._wattprint", frozen)]
struct Report {
    closed: backend::Closed,
    report: OnceLock<RunReport>,
}

#[pymethods]
impl Report {
    /// Energy counted in the total (each joule once), J.
    #[getter]
    fn energy_j(&self, py: Python<'_>) -> f64 {
        self.get(py).energy.total_j
    }
    /// Energy x PUE, J.
    #[getter]
    fn facility_energy_j(&self, py: Python<'_>) -> f64 {
        self.get(py).energy.facility_j
    }
    /// Low and high bounds of `energy_j` (each domain's published accuracy or the model's
    /// span), J.
    #[getter]
    fn energy_j_low(&self, py: Python<'_>) -> Option<f64> {
        self.get(py).energy.total_j_low
    }
    #[getter]
    fn energy_j_high(&self, py: Python<'_>) -> Option<f64> {
        self.get(py).energy.total_j_high
    }
    /// Total carbon (operational + embodied), g CO2e.
    #[getter]
    fn carbon_g(&self, py: Python<'_>) -> f64 {
        self.get(py).carbon.total_g
    }
    /// Low and high bounds of `carbon_g`, g CO2e.
    #[getter]
    fn carbon_g_low(&self, py: Python<'_>) -> Option<f64> {
        self.get(py).carbon.total_g_low
    }
    #[getter]
    fn carbon_g_high(&self, py: Python<'_>) -> Option<f64> {
        self.get(py).carbon.total_g_high
    }
    #[getter]
    fn duration_s(&self, py: Python<'_>) -> f64 {
        self.get(py).duration_s
    }
    #[getter]
    fn pue(&self, py: Python<'_>) -> f64 {
        self.get(py).energy.pue
    }
    /// Energy per domain name, J (every domain read, counted in the total or not).
    #[getter]
    fn domains_j<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for dom in &self.get(py).energy.domains {
            d.set_item(&dom.name, dom.joules)?;
        }
        Ok(d)
    }
    #[getter]
    fn energy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.part(py, |r| serde_json::to_value(&r.energy))
    }
    #[getter]
    fn carbon<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.part(py, |r| serde_json::to_value(&r.carbon))
    }
    #[getter]
    fn work<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.part(py, |r| serde_json::to_value(&r.work))
    }
    #[getter]
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.part(py, |r| serde_json::to_value(&r.metrics))
    }
    #[getter]
    fn overhead<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.part(py, |r| serde_json::to_value(&r.overhead))
    }
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, &self.get(py).warnings)
    }
    /// The whole report as plain Python objects, equal to the CLI's `--json` output.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.part(py, |r| serde_json::to_value(r))
    }
    /// The report as JSON text (the CLI's `--json` format).
    #[pyo3(signature = (indent=None))]
    fn to_json(&self, py: Python<'_>, indent: Option<usize>) -> PyResult<String> {
        let r = match indent {
            None => serde_json::to_string(self.get(py)),
            Some(_) => serde_json::to_string_pretty(self.get(py)),
        };
        r.map_err(|e| WattprintError::new_err(format!("serialising the report: {e}")))
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let r = self.get(py);
        let range = match (r.energy.total_j_low, r.energy.total_j_high) {
            (Some(lo), Some(hi)) if lo < hi => format!(" ({lo:.3}-{hi:.3} J)"),
            _ => String::new(),
        };
        format!(
            "<wattprint.Report {:.3} J{range}, {:.4} g CO2e over {:.3} s>",
            r.energy.total_j, r.carbon.total_g, r.duration_s
        )
    }
}

impl Report {
    /// The report, assembled on first use with the GIL released.
    fn get(&self, py: Python<'_>) -> &RunReport {
        if let Some(r) = self.report.get() {
            return r;
        }
        let r = py.detach(|| self.closed.report());
        self.report.get_or_init(|| r)
    }

    fn part<'py>(
        &self,
        py: Python<'py>,
        f: impl FnOnce(&RunReport) -> serde_json::Result<Value>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = f(self.get(py))
            .map_err(|e| WattprintError::new_err(format!("serialising the report: {e}")))?;
        to_py(py, &v)
    }
}

/// JSON value -> the Python object `json.loads` would give.
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => pyo3::types::PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Validate work counts and format them as lines for `WATTPRINT_WORK_FILE` (`key=N`).
#[pyfunction]
#[pyo3(signature = (*, inferences=None, tokens=None, flops=None))]
fn work_file_lines(
    inferences: Option<&Bound<'_, PyAny>>,
    tokens: Option<&Bound<'_, PyAny>>,
    flops: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let w = backend::WorkAdd {
        inferences: work_count("inferences", inferences)?,
        tokens: work_count("tokens", tokens)?,
        flops: work_count("flops", flops)?,
    };
    Ok(backend::work_file_lines(&w))
}

/// The Rust half of the `wattprint` package.
#[pymodule]
fn _wattprint(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("WattprintError", m.py().get_type::<WattprintError>())?;
    m.add("WindowError", m.py().get_type::<WindowError>())?;
    m.add_class::<Meter>()?;
    m.add_class::<Window>()?;
    m.add_class::<Report>()?;
    m.add_function(wrap_pyfunction!(work_file_lines, m)?)?;
    Ok(())
}
