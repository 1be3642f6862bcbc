//! What the bindings need from the library, in one place: an engine [`Session`] opened with
//! the CLI's options, windows, work added at run time, and the `wattprint.run/v1` report.
//! Plain Rust (no PyO3) so that the glue in `lib.rs` stays conversion only.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use wattprint_carbon::{CarbonError, CarbonField, CarbonOptions, LiveConfig, LiveSpec};
use wattprint_core::gpu_select::GpuRequest;
use wattprint_core::report::RunReport;
use wattprint_core::window::{WindowEnergy, WindowId};
use wattprint_core::work::{resolve_work, Mode, Precision, WorkDecl, WorkField, WorkFileTally};
use wattprint_core::DomainDesc;
use wattprint_engine::config::GpuScope;
use wattprint_engine::config::SensorSelection;
use wattprint_engine::{ReportContext, SensorConfig, Session};

/// Options mirroring `wattprint run`'s (types already checked by the caller).
#[derive(Debug, Default)]
pub struct Options {
    pub zone: Option<String>,
    pub pue: Option<f64>,
    pub market_factor_g_per_kwh: Option<f64>,
    pub intensity_file: Option<PathBuf>,
    /// `PROVIDER[:REGION]`.
    pub live: Option<String>,
    pub embodied_kg: Option<f64>,
    pub lifetime_years: Option<f64>,
    pub share: Option<f64>,
    pub unit_count: Option<f64>,
    pub unit_name: Option<String>,
    pub flops: Option<f64>,
    pub params: Option<f64>,
    pub tokens: Option<f64>,
    pub mode: Option<String>,
    pub inferences: Option<f64>,
    pub precision: Option<String>,
    pub store: Option<bool>,
    /// `sensors=[...]`: names as `WATTPRINT_SENSORS` (`model`, `-rapl-perf`), replacing it.
    pub sensors: Option<Vec<String>>,
    /// `--gpus`: `all`, `none`, `0,2`, domain names or UUIDs; `None`: the GPUs this
    /// process can see (`CUDA_VISIBLE_DEVICES` and the other visibility variables).
    pub gpus: Option<String>,
}

/// Work added at run time.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkAdd {
    pub inferences: Option<f64>,
    pub tokens: Option<f64>,
    pub flops: Option<f64>,
}

/// A bad option value (Python `ValueError`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

pub type WindowKey = WindowId;

/// A work count must be finite and non-negative.
pub fn check_count(name: &str, x: f64) -> Result<(), OptionError> {
    if !x.is_finite() || x < 0.0 {
        return Err(OptionError(format!(
            "{name} must be a finite number >= 0, got {x}"
        )));
    }
    Ok(())
}

/// Work added at run time, cumulative since the session opened: (sum, additions) per kind.
#[derive(Clone, Copy, Debug, Default)]
struct WorkTotals {
    inferences: (f64, u64),
    tokens: (f64, u64),
    flops: (f64, u64),
}

impl WorkTotals {
    fn add(&mut self, w: WorkAdd) {
        for (slot, v) in [
            (&mut self.inferences, w.inferences),
            (&mut self.tokens, w.tokens),
            (&mut self.flops, w.flops),
        ] {
            if let Some(v) = v {
                slot.0 += v;
                slot.1 += 1;
            }
        }
    }

    /// What was added since `begin`, as the work file's tally (a kind nobody added is `None`).
    fn since(&self, begin: &WorkTotals) -> WorkFileTally {
        let d = |now: (f64, u64), then: (f64, u64)| (now.1 > then.1).then_some(now.0 - then.0);
        WorkFileTally {
            inferences: d(self.inferences, begin.inferences),
            tokens: d(self.tokens, begin.tokens),
            flops: d(self.flops, begin.flops),
            ..WorkFileTally::default()
        }
    }
}

struct State {
    session: Session,
    work: WorkTotals,
    work_at_begin: HashMap<WindowId, WorkTotals>,
}

/// An engine session shared by a Python `Meter` and the reports it hands out.
pub struct Shared {
    state: Mutex<State>,
    decl: WorkDecl,
    carbon: CarbonOptions,
    /// The history database each report is stored in (`store=True`).
    store: Option<PathBuf>,
}

/// A Python `Meter`'s backend.
pub struct Meter {
    shared: Arc<Shared>,
}

/// A closed window whose report is assembled when first asked for (assembly reads host
/// facts, so `end()` stays as cheap as the sensor reads).
pub struct Closed {
    shared: Arc<Shared>,
    energy: WindowEnergy,
    ctx: ReportContext,
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves no half-updated number that matters more than
    // losing every later report: recover the state.
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Carbon errors with the fields named as Python keywords.
fn carbon_error(e: CarbonError) -> String {
    e.describe(CarbonField::keyword)
}

impl Meter {
    /// Validate the options, discover the sensors (environment seams) and start metering.
    pub fn open(opts: Options) -> Result<Meter, OptionError> {
        let store = match opts.store {
            Some(true) => Some(
                wattprint_store::default_path(|k| std::env::var_os(k)).ok_or_else(|| {
                    OptionError(
                        "store=True: no place for the history: set WATTPRINT_DB, XDG_DATA_HOME \
                         or HOME"
                            .into(),
                    )
                })?,
            ),
            _ => None,
        };
        let live = opts
            .live
            .as_deref()
            .map(str::parse::<LiveSpec>)
            .transpose()
            .map_err(|e| OptionError(format!("live: {e}")))?;
        let carbon = CarbonOptions {
            // As `wattprint run --zone`, which also reads WATTPRINT_ZONE.
            zone: opts
                .zone
                .or_else(|| std::env::var("WATTPRINT_ZONE").ok())
                .filter(|z| !z.trim().is_empty()),
            pue: opts.pue,
            market_factor_g_per_kwh: opts.market_factor_g_per_kwh,
            intensity_file: opts.intensity_file,
            live,
            live_config: LiveConfig::from_env(),
            embodied_kg: opts.embodied_kg,
            lifetime_years: opts.lifetime_years,
            share: opts.share,
            unit_count: opts.unit_count,
            unit_name: opts.unit_name,
            ..CarbonOptions::default()
        };
        wattprint_carbon::validate(&carbon).map_err(|e| OptionError(carbon_error(e)))?;
        let bad = OptionError;
        let decl = WorkDecl {
            flops: opts.flops,
            params: opts.params,
            tokens: opts.tokens,
            mode: opts
                .mode
                .as_deref()
                .map(Mode::from_str)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            inferences: opts.inferences,
            precision: opts
                .precision
                .as_deref()
                .map(Precision::from_str)
                .transpose()
                .map_err(|e| bad(e.to_string()))?
                .unwrap_or_default(),
        };
        decl.validate()
            .map_err(|e| OptionError(e.describe(WorkField::keyword)))?;
        let gpus = opts
            .gpus
            .as_deref()
            .map(str::parse::<GpuRequest>)
            .transpose()
            .map_err(|e| OptionError(e.to_string().replace("--gpus", "gpus=")))?;
        let mut config = SensorConfig {
            // The GPUs this process can see (or `gpus=`): the job's, as `wattprint run`.
            gpu_scope: GpuScope::job_from_env(gpus.clone()),
            ..SensorConfig::from_env().map_err(|e| OptionError(e.to_string()))?
        };
        if let Some(list) = &opts.sensors {
            config.selection = SensorSelection::parse_list(&list.join(","), "sensors=")
                .map_err(|e| OptionError(e.to_string()))?;
        }
        let mut session = Session::start(config);
        if let Some(c) = session.gpu_choice().filter(|c| !c.unmatched.is_empty()) {
            let req = gpus.as_ref().map(ToString::to_string).unwrap_or_default();
            return Err(OptionError(format!(
                "gpus={req}: {}; `wattprint sensors` lists this machine's GPUs",
                c.unmatched.join("; ")
            )));
        }
        // No job CPU time is given for in-process windows, so machine CPU times (read from
        // /proc/stat at every boundary) would be unused.
        session.set_machine_cpu_times(false);
        Ok(Meter {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    session,
                    work: WorkTotals::default(),
                    work_at_begin: HashMap::new(),
                }),
                decl,
                carbon,
                store,
            }),
        })
    }

    pub fn begin(&self, name: &str) -> WindowKey {
        let mut st = lock(&self.shared);
        let id = st.session.begin(name);
        let w = st.work;
        st.work_at_begin.insert(id, w);
        id
    }

    /// Close a window. `error`: what the measured block raised, if it did (a warning).
    pub fn end(&self, key: WindowKey, error: Option<String>) -> Result<Closed, String> {
        let mut st = lock(&self.shared);
        let energy = st.session.end(key).map_err(|e| e.to_string())?;
        let begin = st.work_at_begin.remove(&key).unwrap_or_default();
        let added = st.work.since(&begin);
        drop(st);
        let mut ctx = ReportContext {
            work: resolve_work(&self.shared.decl, Some(&added)),
            pue: self.shared.carbon.pue,
            labels: BTreeMap::from([("window".to_string(), energy.name.clone())]),
            ..ReportContext::default()
        };
        if let Some(e) = error {
            ctx.warnings.push(format!(
                "the measured block raised {e}: the work it declared may be incomplete"
            ));
        }
        Ok(Closed {
            shared: Arc::clone(&self.shared),
            energy,
            ctx,
        })
    }

    pub fn add_work(&self, w: WorkAdd) {
        lock(&self.shared).work.add(w);
    }

    pub fn domains(&self) -> Vec<DomainDesc> {
        let st = lock(&self.shared);
        let standby = st.session.standby();
        st.session
            .domains()
            .iter()
            .enumerate()
            .filter(|(k, _)| !standby.get(*k).copied().unwrap_or(false))
            .map(|(_, d)| d.clone())
            .collect()
    }
}

impl Closed {
    /// The `wattprint.run/v1` report of this window: the engine's assembly, then carbon, as
    /// `wattprint run` does.
    pub fn report(&self) -> RunReport {
        // As `wattprint run`: the engine's finish (git commit, carbon, the steps).
        lock(&self.shared)
            .session
            .finish(&self.energy, self.ctx.clone(), &self.shared.carbon)
    }

    /// Whether reports are stored in the history as soon as their window ends.
    pub fn stores(&self) -> bool {
        self.shared.store.is_some()
    }

    /// Assemble the report and store it in the history; a database problem is a warning in
    /// the report (as `wattprint run` warns), never a lost measurement.
    pub fn report_and_store(&self) -> RunReport {
        let mut r = self.report();
        if let Some(path) = &self.shared.store {
            let stored = wattprint_store::Store::open(path).and_then(|mut s| s.insert(&r));
            if let Err(e) = stored {
                r.warnings
                    .push(format!("run {} not stored in the history: {e}", r.id));
            }
        }
        r
    }
}

/// Lines appended to `WATTPRINT_WORK_FILE` for `wattprint run` to read (`key=N`, the format
/// `wattprint_core::work::parse_work_file` reads).
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
