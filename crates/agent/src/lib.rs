//! wattprint's serving mode: a long-running meter with a JSON HTTP API (windows, request
//! spans, summaries), per-request attribution, OpenMetrics `/metrics`, a live dashboard at
//! `/`, and a Unix-socket counter service for unprivileged `wattprint run` processes.
//!
//! The HTTP server is axum on a tokio current-thread runtime; the state is one
//! [`state::AgentState`] behind a mutex, sampled by a timer task; scrapes and API calls only
//! read or append. See `docs/agent-api.md`.

pub mod api;
pub mod config;
pub mod dashboard;
pub mod labels;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod overhead;
pub mod socket;
pub mod state;

pub use state::{AgentState, CarbonFactor, Limits, SpanReport};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wattprint_sensors::{Meter, MeterOptions, Sensor};

/// Everything the agent needs to run.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    /// Bearer token required on every endpoint but `/healthz`; mandatory off loopback.
    pub token: Option<String>,
    /// Sampling interval, s.
    pub interval_s: f64,
    pub limits: Limits,
    pub carbon: CarbonFactor,
    /// Request bodies larger than this are refused (413), bytes.
    pub max_body_bytes: usize,
    /// Serve counters over this Unix socket (privilege separation).
    pub socket: Option<socket::SocketConfig>,
    /// Push metrics over OTLP/HTTP (feature `otlp`).
    #[cfg(feature = "otlp")]
    pub otlp: Option<otlp::OtlpConfig>,
}

impl AgentConfig {
    /// Defaults: loopback port 9464, 1 s sampling, the given carbon factor.
    pub fn new(carbon: CarbonFactor) -> Self {
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token: None,
            interval_s: 1.0,
            limits: Limits::default(),
            carbon,
            max_body_bytes: 1 << 20,
            socket: None,
            #[cfg(feature = "otlp")]
            otlp: None,
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
    #[error("--interval {0} s: give a positive duration of at least 10 ms")]
    BadInterval(f64),
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
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Check the configuration's rules (token off loopback, ranges).
pub fn check(config: &AgentConfig) -> Result<(), AgentError> {
    if !(config.interval_s.is_finite() && config.interval_s >= 0.01) {
        return Err(AgentError::BadInterval(config.interval_s));
    }
    match &config.token {
        Some(t) if t.trim().len() < 16 => Err(AgentError::WeakToken),
        None if !config.listen.ip().is_loopback() => Err(AgentError::NeedsToken(config.listen)),
        _ => Ok(()),
    }
}

/// The agent's shared state.
pub type Shared = Arc<Mutex<AgentState>>;

/// Lock the state, recovering it after a panic elsewhere (the numbers are still the best known).
pub fn lock(sh: &Shared) -> MutexGuard<'_, AgentState> {
    sh.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A bound, not yet serving agent.
pub struct Agent {
    config: AgentConfig,
    shared: Shared,
    listener: std::net::TcpListener,
    _socket: Option<socket::SocketServer>,
    started_unix_s: f64,
}

impl Agent {
    /// Check the configuration, start the meter over `sensors`, bind the listener (and the
    /// Unix socket when configured).
    pub fn bind(config: AgentConfig, sensors: Vec<Box<dyn Sensor>>) -> Result<Agent, AgentError> {
        check(&config)?;
        let meter = Meter::start(sensors, MeterOptions::default());
        let (unix, mono) = (unix_now_s(), meter.now_s());
        let shared = Arc::new(Mutex::new(AgentState::new(
            meter,
            unix,
            mono,
            config.carbon.clone(),
            config.limits.clone(),
        )));
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| AgentError::Bind {
                addr: config.listen,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| AgentError::Bind {
                addr: config.listen,
                source,
            })?;
        let sock = match &config.socket {
            Some(sc) => Some(socket::SocketServer::start(sc, Arc::clone(&shared))?),
            None => None,
        };
        Ok(Agent {
            config,
            shared,
            listener,
            _socket: sock,
            started_unix_s: unix,
        })
    }

    /// The GPUs the sensors measure (from discovery): window reports then give FLOPs/W against
    /// their peaks.
    pub fn with_gpus(self, gpus: Vec<wattprint_sensors::gpu::GpuDevice>) -> Self {
        lock(&self.shared).set_gpus(gpus);
        self
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn shared(&self) -> Shared {
        Arc::clone(&self.shared)
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
        let addr = self.config.listen;
        #[cfg(feature = "otlp")]
        let _pusher = match &self.config.otlp {
            Some(o) => Some(
                otlp::Pusher::start(o, Arc::clone(&self.shared), self.started_unix_s)
                    .map_err(AgentError::Otlp)?,
            ),
            None => None,
        };
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)
                .map_err(|source| AgentError::Bind { addr, source })?;
            let sh = Arc::clone(&self.shared);
            let period = Duration::from_secs_f64(self.config.interval_s);
            let sampler = tokio::spawn(async move {
                let mut iv = tokio::time::interval(period);
                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    iv.tick().await;
                    // The sampler reads every sensor: in the blocking pool, not on the
                    // runtime's thread.
                    let sh = Arc::clone(&sh);
                    let _ = tokio::task::spawn_blocking(move || lock(&sh).tick()).await;
                }
            });
            let app = api::router(api::Ctx {
                shared: Arc::clone(&self.shared),
                token: self.config.token.clone(),
                max_body_bytes: self.config.max_body_bytes,
                started_unix_s: self.started_unix_s,
                interval_s: self.config.interval_s,
            });
            let res = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|source| AgentError::Bind { addr, source });
            sampler.abort();
            res
        })
    }
}
