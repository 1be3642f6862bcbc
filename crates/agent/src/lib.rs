//! wattprint's serving mode: a long-running meter with a JSON HTTP API (windows, request
//! spans, summaries), per-request attribution, OpenMetrics `/metrics`, a live dashboard at
//! `/`, and a Unix-socket counter service for unprivileged `wattprint run` processes.
//!
//! The HTTP server is axum on a tokio current-thread runtime; the state is one
//! [`state::AgentState`] behind a mutex, sampled by a timer task; scrapes and API calls only
//! read or append. See `docs/agent-api.md`.

pub mod api;
pub mod client;
pub mod config;
pub mod conn;
pub mod dashboard;
pub mod labels;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod overhead;
pub mod proxy;
pub mod scrape;
pub mod socket;
pub mod spool;
pub mod state;
pub mod traces;
pub mod workloads;

pub use state::{AgentState, CarbonFactor, Limits, SpanReport};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wattprint_sensors::{Meter, MeterOptions, Sensor};

/// Everything the agent needs to run.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// HTTP address; `None` serves no HTTP at all (`--listen none`, the default in socket
    /// mode).
    pub listen: Option<SocketAddr>,
    /// Bearer token required on every endpoint but `/healthz`; mandatory off loopback and
    /// for HTTP in socket mode.
    pub token: Option<String>,
    /// Sampling interval, s.
    pub interval_s: f64,
    pub limits: Limits,
    pub carbon: CarbonFactor,
    /// Request bodies larger than this are refused (413), bytes.
    pub max_body_bytes: usize,
    /// Open HTTP connections at most (see [`conn`]).
    pub max_connections: usize,
    /// An HTTP connection without a request in flight for this long is closed, s (covers a
    /// partial request head and keep-alive idling).
    pub idle_timeout_s: f64,
    /// A request body not received within this long is refused (408), s.
    pub body_timeout_s: f64,
    /// Serve counters over this Unix socket (privilege separation).
    pub socket: Option<socket::SocketConfig>,
    /// Inference engines whose Prometheus metrics are read every interval (`--scrape`).
    pub scrape: Vec<scrape::Target>,
    /// The OpenAI-compatible metering proxy (`--proxy LISTEN=UPSTREAM`).
    pub proxy: Option<proxy::ProxyConfig>,
    /// Push metrics and export enriched spans over OTLP/HTTP (feature `otlp`).
    #[cfg(feature = "otlp")]
    pub otlp: Option<otlp::OtlpConfig>,
    /// Keep open windows, pending spans and counters in this SQLite file, resumed at the
    /// next start (see [`spool`]).
    pub spool: Option<PathBuf>,
}

impl AgentConfig {
    /// Defaults: loopback port 9464, 1 s sampling, the given carbon factor.
    pub fn new(carbon: CarbonFactor) -> Self {
        AgentConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            token: None,
            interval_s: 1.0,
            limits: Limits::default(),
            carbon,
            max_body_bytes: 1 << 20,
            max_connections: conn::DEFAULT_MAX_CONNECTIONS,
            idle_timeout_s: 10.0,
            body_timeout_s: 10.0,
            socket: None,
            scrape: Vec::new(),
            proxy: None,
            #[cfg(feature = "otlp")]
            otlp: None,
            spool: None,
        }
    }
}

/// Errors that stop the agent before or while it serves.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("refusing to listen on {0} without a token: binding off loopback needs --token-file (a file holding the bearer token clients must send)")]
    NeedsToken(SocketAddr),
    #[error("the token is empty: put a secret of at least 16 characters in the token file")]
    WeakToken,
    #[error("{what} {value} is out of range: give {min} to {max}")]
    CountOutOfRange {
        what: &'static str,
        value: usize,
        min: usize,
        max: usize,
    },
    #[error("{what} {value} s is out of range: give {min} s to {max} s")]
    OutOfRange {
        what: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("--max-connections {0}: give 1 to {max}", max = MAX_CONNECTIONS_LIMIT)]
    BadMaxConnections(usize),
    #[error("{0} --scrape targets: give at most {max}", max = scrape::MAX_TARGETS)]
    TooManyTargets(usize),
    #[error("--scrape {0} is given twice: give each target a distinct NAME")]
    DuplicateTarget(String),
    #[error("--proxy needs the HTTP API (the settled energy of each request is at GET /v1/requests/{{id}}): drop --listen none")]
    ProxyNeedsApi,
    #[error("nothing to serve: with --listen none, give --socket PATH")]
    NothingToServe,
    #[error("in socket mode the HTTP API on {0} would let any local user outside the socket group read the energy counters: add --token-file, or drop --listen (HTTP is off by default in socket mode)")]
    SocketModeNeedsToken(SocketAddr),
    #[error(
        "cannot listen on {addr}: {source} (is another agent running? choose --listen HOST:PORT)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("Unix socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(feature = "otlp")]
    #[error("OTLP: {0}")]
    Otlp(String),
    #[error(transparent)]
    Spool(#[from] wattprint_store::spool::SpoolError),
    #[error(transparent)]
    Resume(#[from] spool::ResumeError),
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Largest `--max-connections`: the usual soft limit of descriptors per process.
pub const MAX_CONNECTIONS_LIMIT: usize = 1024;

/// Largest `max_pending_spans`: 10^7 spans waiting (about 1 GB of buffer) is beyond any
/// settle lag's traffic.
pub const MAX_PENDING_SPANS_LIMIT: usize = 10_000_000;
/// Largest `max_label_sets` and `max_window_names`: 10^5 series per family is where
/// Prometheus's own guidance on cardinality ends.
pub const MAX_SERIES_LIMIT: usize = 100_000;

/// Check one number against its range (`what` names the option or config key).
pub fn check_range_s(what: &'static str, value: f64, min: f64, max: f64) -> Result<(), AgentError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(AgentError::OutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

/// Check the configuration's rules (token off loopback and in socket mode, ranges).
///
/// Ranges: sampling interval 10 ms to 1 h (below 10 ms the agent measures itself; above an
/// hour no window resolves anything); idle and body timeouts 50 ms to 1 h; settle lag 0 to
/// 1 h; socket idle timeout 50 ms to 1 day.
pub fn check(config: &AgentConfig) -> Result<(), AgentError> {
    check_range_s("--interval", config.interval_s, 0.01, 3600.0)?;
    check_range_s("--idle-timeout", config.idle_timeout_s, 0.05, 3600.0)?;
    check_range_s("--body-timeout", config.body_timeout_s, 0.05, 3600.0)?;
    check_range_s("--settle-lag", config.limits.settle_lag_s, 0.0, 3600.0)?;
    if let Some(s) = &config.socket {
        check_range_s("socket idle timeout", s.idle_timeout_s, 0.05, 86_400.0)?;
    }
    if !(1..=MAX_CONNECTIONS_LIMIT).contains(&config.max_connections) {
        return Err(AgentError::BadMaxConnections(config.max_connections));
    }
    let l = &config.limits;
    for (what, value, max) in [
        (
            "max_pending_spans",
            l.max_pending_spans,
            MAX_PENDING_SPANS_LIMIT,
        ),
        ("max_label_sets", l.max_label_sets, MAX_SERIES_LIMIT),
        ("max_window_names", l.max_window_names, MAX_SERIES_LIMIT),
    ] {
        if !(1..=max).contains(&value) {
            return Err(AgentError::CountOutOfRange {
                what,
                value,
                min: 1,
                max,
            });
        }
    }
    if config.proxy.is_some() && config.listen.is_none() {
        return Err(AgentError::ProxyNeedsApi);
    }
    if config.scrape.len() > scrape::MAX_TARGETS {
        return Err(AgentError::TooManyTargets(config.scrape.len()));
    }
    for (i, t) in config.scrape.iter().enumerate() {
        if config.scrape[..i].iter().any(|o| o.name == t.name) {
            return Err(AgentError::DuplicateTarget(t.name.clone()));
        }
    }
    if let Some(t) = &config.token {
        if t.trim().len() < 16 {
            return Err(AgentError::WeakToken);
        }
    }
    match (config.listen, &config.socket, &config.token) {
        (None, None, _) => Err(AgentError::NothingToServe),
        (Some(addr), Some(_), None) => Err(AgentError::SocketModeNeedsToken(addr)),
        (Some(addr), None, None) if !addr.ip().is_loopback() => Err(AgentError::NeedsToken(addr)),
        _ => Ok(()),
    }
}

/// The agent's shared state.
pub type Shared = Arc<Mutex<AgentState>>;

/// Lock the state, recovering it after a panic elsewhere (the numbers are still the best known).
pub fn lock(sh: &Shared) -> MutexGuard<'_, AgentState> {
    sh.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Write the state's snapshot to the spool: built under the state's lock, written after it
/// is released. A failure is logged and counted; the next tick retries.
fn write_spool(sh: &Shared, sp: &Mutex<wattprint_store::spool::Spool>) {
    let now = unix_now_s();
    let body = match serde_json::to_string(&lock(sh).snapshot(now)) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("spool snapshot not encoded: {e}");
            lock(sh).record_spool_failure();
            return;
        }
    };
    let r = sp
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .write(now, &body);
    if let Err(e) = r {
        tracing::warn!("{e}");
        lock(sh).record_spool_failure();
    }
}

/// A bound, not yet serving agent.
pub struct Agent {
    config: AgentConfig,
    shared: Shared,
    engines: scrape::Engines,
    proxy_stats: Arc<proxy::ProxyStats>,
    listener: Option<std::net::TcpListener>,
    proxy_listener: Option<std::net::TcpListener>,
    _socket: Option<socket::SocketServer>,
    started_unix_s: f64,
    spool: Option<Arc<Mutex<wattprint_store::spool::Spool>>>,
}

impl Agent {
    /// Check the configuration, start the meter over `sensors`, bind the listener (and the
    /// Unix socket when configured).
    pub fn bind(config: AgentConfig, sensors: Vec<Box<dyn Sensor>>) -> Result<Agent, AgentError> {
        check(&config)?;
        let power_bounds_w: Vec<Option<(f64, f64)>> = sensors
            .iter()
            .flat_map(|s| (0..s.info().domains.len()).map(|k| s.power_bounds_w(k)))
            .collect();
        let meter = Meter::start(sensors, MeterOptions::default());
        let (unix, mono) = (unix_now_s(), meter.now_s());
        let mut state = AgentState::new(
            meter,
            unix,
            mono,
            config.carbon.clone(),
            config.limits.clone(),
        );
        state.set_power_bounds(power_bounds_w);
        let spool = match &config.spool {
            Some(path) => Some(wattprint_store::spool::Spool::open(path)?),
            None => None,
        };
        let shared = Arc::new(Mutex::new(state));
        let listener = match config.listen {
            Some(addr) => {
                let bind = |source| AgentError::Bind { addr, source };
                let l = std::net::TcpListener::bind(addr).map_err(bind)?;
                l.set_nonblocking(true).map_err(bind)?;
                Some(l)
            }
            None => None,
        };
        let proxy_listener = match &config.proxy {
            Some(p) => {
                let addr = p.listen;
                let bind = |source| AgentError::Bind { addr, source };
                let l = std::net::TcpListener::bind(addr).map_err(bind)?;
                l.set_nonblocking(true).map_err(bind)?;
                Some(l)
            }
            None => None,
        };
        let sock = match &config.socket {
            Some(sc) => Some(socket::SocketServer::start(sc, Arc::clone(&shared))?),
            None => None,
        };
        let gpus = lock(&shared)
            .domains()
            .iter()
            .filter(|d| d.counted_in_total && d.kind == wattprint_core::DomainKind::Gpu)
            .count();
        let engines = Arc::new(Mutex::new(
            config
                .scrape
                .iter()
                .map(|t| scrape::EngineLedger::new(&t.name, &t.url.to_string(), gpus))
                .collect(),
        ));
        Ok(Agent {
            config,
            shared,
            engines,
            proxy_stats: Arc::new(proxy::ProxyStats::default()),
            listener,
            proxy_listener,
            _socket: sock,
            started_unix_s: unix,
            spool: spool.map(|s| Arc::new(Mutex::new(s))),
        })
    }

    /// The GPUs the sensors measure (from discovery): window reports then give FLOPs/W against
    /// their peaks.
    pub fn with_gpus(self, gpus: Vec<wattprint_sensors::gpu::GpuDevice>) -> Self {
        lock(&self.shared).set_gpus(gpus);
        self
    }

    /// Take over the spool's snapshot, if it has one (call after the state is configured:
    /// [`Agent::with_gpus`], workloads). `None` when there is no spool or it is new.
    pub fn resume(&self) -> Result<Option<spool::Resumed>, AgentError> {
        let Some(sp) = &self.spool else {
            return Ok(None);
        };
        let sp = sp.lock().unwrap_or_else(|e| e.into_inner());
        let Some(found) = sp.read()? else {
            return Ok(None);
        };
        let snap = spool::parse(&sp.path().display().to_string(), &found.body)?;
        let r = lock(&self.shared).resume(&snap, unix_now_s());
        tracing::info!(?r, "resumed from the spool");
        Ok(Some(r))
    }

    /// The HTTP address bound, `None` without HTTP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn shared(&self) -> Shared {
        Arc::clone(&self.shared)
    }

    /// The metering proxy's address, `None` without `--proxy`.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The scraped engines' accounting.
    pub fn engines(&self) -> scrape::Engines {
        Arc::clone(&self.engines)
    }

    /// Serve until `shutdown` resolves (on a current-thread runtime built here).
    pub fn serve_until(self, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<(), AgentError> {
        self.serve(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// Serve until `shutdown` resolves (on a current-thread runtime built here).
    pub fn serve<F>(self, shutdown: F) -> Result<(), AgentError>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AgentError::Runtime)?;
        // Spans received at POST /v1/traces; kept until settled when they are exported.
        #[cfg(feature = "otlp")]
        let exporting = self
            .config
            .otlp
            .as_ref()
            .is_some_and(|o| o.traces_endpoint.is_some());
        #[cfg(not(feature = "otlp"))]
        let exporting = false;
        let traces = Arc::new(Mutex::new(if exporting {
            traces::TraceTable::exporting()
        } else {
            traces::TraceTable::default()
        }));
        #[cfg(feature = "otlp")]
        let pusher = match &self.config.otlp {
            Some(o) => Some(
                otlp::Pusher::start(
                    o,
                    Arc::clone(&self.shared),
                    Arc::clone(&traces),
                    self.started_unix_s,
                )
                .map_err(AgentError::Otlp)?,
            ),
            None => None,
        };
        let final_spool = self.spool.clone();
        let final_shared = Arc::clone(&self.shared);
        let served = rt.block_on(async move {
            let sh = Arc::clone(&self.shared);
            let period = Duration::from_secs_f64(self.config.interval_s);
            let spool = self.spool.clone();
            let sampler = tokio::spawn(async move {
                let mut iv = tokio::time::interval(period);
                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    iv.tick().await;
                    // The sampler reads every sensor: in the blocking pool, not on the
                    // runtime's thread. The spool is written right after, once per tick.
                    let sh = Arc::clone(&sh);
                    let spool = spool.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        lock(&sh).tick();
                        if let Some(sp) = &spool {
                            write_spool(&sh, sp);
                        }
                    })
                    .await;
                }
            });
            let scrapers: Vec<_> = self
                .config
                .scrape
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    tokio::spawn(scrape::run(
                        i,
                        t.clone(),
                        period,
                        Arc::clone(&self.shared),
                        Arc::clone(&self.engines),
                    ))
                })
                .collect();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let proxy_task = match (self.proxy_listener, &self.config.proxy) {
                (Some(l), Some(pc)) => {
                    let addr = l.local_addr().map_err(AgentError::Runtime)?;
                    let listener = tokio::net::TcpListener::from_std(l)
                        .map_err(|source| AgentError::Bind { addr, source })?;
                    let app = proxy::router(proxy::ProxyCtx {
                        shared: Arc::clone(&self.shared),
                        upstream: pc.upstream.clone(),
                        listen: addr,
                        body_timeout: Duration::from_secs_f64(self.config.body_timeout_s),
                        stats: Arc::clone(&self.proxy_stats),
                    });
                    let limits = conn::ConnLimits {
                        max_connections: self.config.max_connections,
                        idle_timeout: Duration::from_secs_f64(self.config.idle_timeout_s),
                    };
                    let mut rx = stop_rx.clone();
                    Some(tokio::spawn(conn::serve(
                        listener,
                        app,
                        limits,
                        conn::Registry::default(),
                        async move {
                            let _ = rx.wait_for(|s| *s).await;
                        },
                    )))
                }
                _ => None,
            };
            let res = match self.listener {
                None => {
                    shutdown.await;
                    Ok(())
                }
                Some(std_listener) => {
                    let addr = std_listener.local_addr().map_err(AgentError::Runtime)?;
                    let listener = tokio::net::TcpListener::from_std(std_listener)
                        .map_err(|source| AgentError::Bind { addr, source })?;
                    let registry = conn::Registry::default();
                    let app = api::router(api::Ctx {
                        shared: Arc::clone(&self.shared),
                        token: self.config.token.clone(),
                        max_body_bytes: self.config.max_body_bytes,
                        body_timeout: Duration::from_secs_f64(self.config.body_timeout_s),
                        started_unix_s: self.started_unix_s,
                        interval_s: self.config.interval_s,
                        listen: addr,
                        connections: registry.clone(),
                        engines: Arc::clone(&self.engines),
                        traces: Arc::clone(&traces),
                        proxy: self
                            .config
                            .proxy
                            .as_ref()
                            .map(|_| Arc::clone(&self.proxy_stats)),
                    });
                    let limits = conn::ConnLimits {
                        max_connections: self.config.max_connections,
                        idle_timeout: Duration::from_secs_f64(self.config.idle_timeout_s),
                    };
                    conn::serve(listener, app, limits, registry, shutdown).await;
                    Ok(())
                }
            };
            let _ = stop_tx.send(true);
            if let Some(t) = proxy_task {
                let _ = t.await;
            }
            sampler.abort();
            for s in scrapers {
                s.abort();
            }
            res
        });
        // The OTLP thread's last chance (bounded: otlp::SHUTDOWN_FLUSH): the final metrics
        // snapshot and the settled spans, before the final spool write.
        #[cfg(feature = "otlp")]
        if let Some(p) = pusher {
            p.finish();
        }
        // A clean stop leaves the newest snapshot: the next start resumes from here.
        if let Some(sp) = &final_spool {
            write_spool(&final_shared, sp);
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AgentConfig {
        AgentConfig::new(
            CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
                intensity_g_per_kwh: Some(100.0),
                pue: Some(1.0),
                ..Default::default()
            })
            .unwrap(),
        )
    }

    #[test]
    fn every_configured_count_has_a_physical_range() {
        assert!(check(&config()).is_ok());
        for (key, set) in [
            ("max_pending_spans", 0usize),
            ("max_label_sets", MAX_SERIES_LIMIT + 1),
            ("max_window_names", usize::MAX),
        ] {
            let mut c = config();
            match key {
                "max_pending_spans" => c.limits.max_pending_spans = set,
                "max_label_sets" => c.limits.max_label_sets = set,
                _ => c.limits.max_window_names = set,
            }
            let e = check(&c).unwrap_err().to_string();
            assert!(e.starts_with(key) && e.contains("out of range"), "{e}");
        }
    }
}
