//! `wattprint agent`: a long-running meter with an HTTP API, OpenMetrics `/metrics`, a live
//! dashboard and (optionally) a Unix socket serving counters to unprivileged processes.
//! Parses flags and the config file, discovers sensors, and hands over to `wattprint_agent`.

use crate::common::escape;
use crate::exit::BadInput;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use wattprint_agent::config::FileConfig;
use wattprint_agent::socket::SocketConfig;
use wattprint_agent::{Agent, AgentConfig, CarbonFactor};
use wattprint_core::duration::{parse_duration_s, parse_interval_s, DurationError};

/// Options of `wattprint agent` (each overrides the same key of `--config`).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub sensors: crate::common::SensorArgs,
    /// HTTP address, or `none` for no HTTP. Default 127.0.0.1:9464, but none in socket mode
    /// (`--socket`). Off loopback, and with `--socket`, `--token-file` is required.
    #[arg(long, value_name = "HOST:PORT|none")]
    pub listen: Option<String>,
    /// TOML file with the same settings as these flags (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// File holding the bearer token clients must send (`Authorization: Bearer ...`).
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Sampling interval (e.g. 1s, 250ms). Default 1s.
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// How long attribution waits for late span reports (e.g. 5s). Default 5s.
    #[arg(long = "settle-lag", value_name = "DURATION")]
    pub settle_lag: Option<String>,
    /// Grid zone for carbon (as `wattprint run --zone`). Without one, the World average is
    /// used and flagged as a fallback.
    #[arg(long, env = "WATTPRINT_ZONE", value_name = "ZONE")]
    pub zone: Option<String>,
    /// Power usage effectiveness (>= 1).
    #[arg(long, value_name = "PUE")]
    pub pue: Option<f64>,
    /// A fixed grid intensity, gCO2e/kWh, instead of the zone's factor.
    #[arg(long = "intensity", value_name = "G_PER_KWH")]
    pub intensity_g_per_kwh: Option<f64>,
    /// Serve counters on this Unix socket (for unprivileged `wattprint run`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Group (name or numeric gid) whose members may connect to the socket.
    #[arg(long = "socket-group", value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Open HTTP connections at most (1 to 1024; default 256): at the cap the connection idle
    /// the longest is closed to make room.
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Close an HTTP connection without a request in flight after this long (a partial
    /// request head, or keep-alive idling). Default 10s.
    #[arg(long = "idle-timeout", value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// Refuse a request body not received within this long (408). Default 10s.
    #[arg(long = "body-timeout", value_name = "DURATION")]
    pub body_timeout: Option<String>,
    /// Attribute energy and carbon per workload (pods' containers, containers, systemd
    /// units) by cgroup CPU time: /v1/workloads and wattprint_workload_* metrics.
    #[arg(long)]
    pub workloads: bool,
    /// The cgroup directory to walk with --workloads (default: found under
    /// <sysfs>/fs/cgroup: v2, else v1 cpuacct, else v2 unified).
    #[arg(long = "cgroup-root", value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// A kubelet /pods JSON file naming pods and containers (re-read when it changes).
    #[arg(long = "pod-list", value_name = "FILE")]
    pub pod_list: Option<PathBuf>,
    /// Workloads exported as their own series at most (the rest in kind="other"; default 200).
    #[arg(long = "max-workloads", value_name = "N")]
    pub max_workloads: Option<usize>,
    /// Scrapes that see an ended workload's final value before it is dropped (default 3).
    #[arg(long = "workload-keep-scrapes", value_name = "N")]
    pub workload_keep_scrapes: Option<u64>,
    /// The node's idle power, W: idle energy is this power (default: the unused share of
    /// the CPUs' time).
    #[arg(long = "idle-power", value_name = "WATTS")]
    pub idle_power_w: Option<f64>,
    /// Keep open windows, pending spans and counters in this SQLite file; a restart (or
    /// crash) resumes them and reports the downtime as a gap.
    #[arg(long, value_name = "FILE")]
    pub spool: Option<PathBuf>,
    /// Read an inference engine's Prometheus metrics every interval (repeatable), e.g.
    /// vllm=http://127.0.0.1:8000/metrics: per model J per output token, J per request,
    /// gCO2e per 1k tokens and FLOPs/W at /v1/engines and /metrics. Replaces the config
    /// file's `scrape` list.
    #[arg(long = "scrape", value_name = "NAME=URL")]
    pub scrape: Vec<String>,
    /// Run the OpenAI-compatible metering proxy: listen on LISTEN and forward
    /// /v1/chat/completions, /v1/completions and /v1/embeddings to the engine at UPSTREAM,
    /// e.g. 127.0.0.1:8080=http://127.0.0.1:8000. Each request's energy is at
    /// GET /v1/requests/{id} (id in the answer's x-wattprint-request-id header).
    #[arg(long = "proxy", value_name = "LISTEN=UPSTREAM")]
    pub proxy: Option<String>,
    /// Push metrics over OTLP/HTTP (JSON) to this endpoint, e.g.
    /// http://127.0.0.1:4318/v1/metrics (an OpenTelemetry Collector) or an https:// backend.
    #[cfg(feature = "otlp")]
    #[arg(long = "otlp-endpoint", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Export each span received at POST /v1/traces, once its energy is settled, to this
    /// OTLP/HTTP endpoint (protobuf; path default /v1/traces), with wattprint.energy_j,
    /// wattprint.carbon_g and wattprint.method added: e.g. http://127.0.0.1:4318 (Jaeger,
    /// Tempo, an OpenTelemetry Collector). Shares --otlp-header and --otlp-compression.
    #[cfg(feature = "otlp")]
    #[arg(long = "otlp-traces-endpoint", value_name = "URL")]
    pub otlp_traces_endpoint: Option<String>,
    /// OTLP push interval (default 10s).
    #[cfg(feature = "otlp")]
    #[arg(long = "otlp-interval", value_name = "DURATION")]
    pub otlp_interval: Option<String>,
    /// An extra header on every OTLP push, e.g. authorization=Bearer%20TOKEN (repeatable;
    /// values percent-decoded). Default: OTEL_EXPORTER_OTLP_HEADERS, as the OTel SDKs read it.
    #[cfg(feature = "otlp")]
    #[arg(long = "otlp-header", value_name = "NAME=VALUE")]
    pub otlp_header: Vec<String>,
    /// Compress OTLP pushes: gzip or none (default none, as OTEL_EXPORTER_OTLP_COMPRESSION).
    #[cfg(feature = "otlp")]
    #[arg(long = "otlp-compression", value_name = "gzip|none")]
    pub otlp_compression: Option<String>,
}

/// Largest token file read, bytes: a token is a line of at most a few hundred characters.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

fn read_token(path: &Path) -> anyhow::Result<String> {
    let t = crate::common::read_bounded(path, MAX_TOKEN_FILE_BYTES).map_err(|e| {
        BadInput(format!(
            "--token-file {}: {e}: give a readable file holding the token",
            path.display()
        ))
    })?;
    let t = t.trim();
    if t.chars().any(|c| c.is_control()) {
        return Err(BadInput(format!(
            "--token-file {}: the token holds control characters (a binary file?): put one line of printable text in it",
            path.display()
        ))
        .into());
    }
    Ok(t.to_string())
}

/// The gid of `--socket-group`: a number, or a group name looked up through the system's
/// NSS (`getgrnam_r`: files, LDAP, sssd... as `/etc/nsswitch.conf` says).
fn group_gid(name: &str) -> anyhow::Result<u32> {
    if let Ok(g) = name.parse::<u32>() {
        return Ok(g);
    }
    let no_such = || {
        BadInput(format!(
            "--socket-group {name}: no such group (create it with `groupadd {name}`, or give a numeric gid)"
        ))
    };
    let c_name = std::ffi::CString::new(name).map_err(|_| no_such())?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `grp` and `result` are valid for writes; `buf` is a live buffer of
        // `buf.len()` bytes that `getgrnam_r` fills and that outlives the call; `c_name` is
        // NUL-terminated. Only `gr_gid` (a plain integer) is read from `grp` afterwards.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if !result.is_null() => return Ok(grp.gr_gid),
            0 => return Err(no_such().into()),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            e => {
                return Err(BadInput(format!(
                    "--socket-group {name}: the group lookup failed: {} (give a numeric gid)",
                    std::io::Error::from_raw_os_error(e)
                ))
                .into())
            }
        }
    }
}

/// The agent's log (OTLP push failures, socket errors) on stderr, from `warn` up unless
/// `RUST_LOG` (`warn`, `wattprint_agent=debug`, ...: `tracing_subscriber::filter::Targets`
/// syntax) says otherwise. A malformed `RUST_LOG` keeps the default and says so.
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = || Targets::new().with_default(tracing::Level::WARN);
    let targets = match std::env::var("RUST_LOG") {
        Ok(s) => s.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("wattprint agent: RUST_LOG={s:?} ignored ({e}); logging warnings");
            default()
        }),
        Err(_) => default(),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // Fails only if a subscriber is already installed: then that one logs.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(targets)
        .try_init();
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    init_logging();
    let file = match &args.config {
        Some(p) => {
            // A configuration is a few hundred bytes: 1 MiB bounds the read.
            let text = crate::common::read_bounded(p, 1 << 20)
                .map_err(|e| BadInput(format!("--config {}: {e}", p.display())))?;
            wattprint_agent::config::parse(&p.display().to_string(), &text).map_err(BadInput)?
        }
        None => FileConfig::default(),
    };
    let socket_path = args.socket.or(file.socket);
    // Socket mode serves no HTTP unless asked: the socket's group is the access control.
    let listen_text = args.listen.or(file.listen).unwrap_or_else(|| {
        if socket_path.is_some() {
            "none".into()
        } else {
            "127.0.0.1:9464".into()
        }
    });
    let listen: Option<SocketAddr> = if listen_text.trim().eq_ignore_ascii_case("none") {
        None
    } else {
        Some(listen_text.parse().map_err(|_| {
            BadInput(format!(
                "--listen {}: give HOST:PORT with a numeric address, e.g. 127.0.0.1:9464, or none",
                crate::common::escape(&listen_text)
            ))
        })?)
    };
    type Parse = fn(&str) -> Result<f64, DurationError>;
    let duration = |flag: &str, v: Option<String>, parse: Parse, default: f64| match v {
        Some(t) => parse(&t).map_err(|e| BadInput(format!("{flag}: {e}"))),
        None => Ok(default),
    };
    let interval = args.interval.or(file.interval);
    let interval_s = duration("--interval", interval, parse_interval_s, 1.0)?;
    let settle_lag = args.settle_lag.or(file.settle_lag);
    let settle_lag_s = duration("--settle-lag", settle_lag, parse_duration_s, 5.0)?;
    let idle_timeout = args.idle_timeout.or(file.idle_timeout);
    let idle_timeout_s = duration("--idle-timeout", idle_timeout, parse_duration_s, 10.0)?;
    let body_timeout = args.body_timeout.or(file.body_timeout);
    let body_timeout_s = duration("--body-timeout", body_timeout, parse_duration_s, 10.0)?;
    let token = match args.token_file.or(file.token_file) {
        Some(p) => Some(read_token(&p)?),
        None => None,
    };
    let carbon = CarbonFactor::resolve(wattprint_carbon::CarbonOptions {
        zone: args.zone.or(file.zone),
        pue: args.pue.or(file.pue),
        intensity_g_per_kwh: args.intensity_g_per_kwh.or(file.intensity_g_per_kwh),
        ..Default::default()
    })
    .map_err(crate::common::carbon_error)?;
    for w in &carbon.warnings {
        eprintln!("wattprint agent: {}", escape(w));
    }
    let socket = match socket_path {
        Some(path) => Some(SocketConfig {
            gid: args
                .socket_group
                .or(file.socket_group)
                .map(|g| group_gid(&g))
                .transpose()?,
            ..SocketConfig::new(path)
        }),
        None => None,
    };
    let mut cfg = AgentConfig::new(carbon);
    cfg.listen = listen;
    cfg.token = token;
    cfg.interval_s = interval_s;
    cfg.limits.settle_lag_s = settle_lag_s;
    cfg.idle_timeout_s = idle_timeout_s;
    cfg.body_timeout_s = body_timeout_s;
    if let Some(n) = args.max_connections.or(file.max_connections) {
        cfg.max_connections = n;
    }
    if let Some(n) = file.max_pending_spans {
        cfg.limits.max_pending_spans = n;
    }
    if let Some(n) = file.max_window_names {
        cfg.limits.max_window_names = n;
    }
    if let Some(n) = file.max_label_sets {
        cfg.limits.max_label_sets = n;
    }
    cfg.socket = socket;
    cfg.spool = args.spool.or(file.spool);
    let scrape = if args.scrape.is_empty() {
        file.scrape.unwrap_or_default()
    } else {
        args.scrape
    };
    cfg.scrape = scrape
        .iter()
        .map(|s| wattprint_agent::scrape::parse_target(s))
        .collect::<Result<_, _>>()
        .map_err(BadInput)?;
    cfg.proxy = args
        .proxy
        .or(file.proxy)
        .map(|p| wattprint_agent::proxy::parse_spec(&p))
        .transpose()
        .map_err(BadInput)?;
    #[cfg(feature = "otlp")]
    {
        let endpoint = args.otlp_endpoint.or(file.otlp_endpoint);
        let traces_endpoint = args.otlp_traces_endpoint.or(file.otlp_traces_endpoint);
        if endpoint.is_some() || traces_endpoint.is_some() {
            if let Some(e) = &endpoint {
                wattprint_agent::otlp::parse_endpoint(e).map_err(BadInput)?;
            }
            if let Some(e) = &traces_endpoint {
                wattprint_agent::otlp::parse_traces_endpoint(e).map_err(BadInput)?;
            }
            let header_list = if args.otlp_header.is_empty() {
                file.otlp_header.unwrap_or_default()
            } else {
                args.otlp_header
            };
            let headers = if header_list.is_empty() {
                std::env::var("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default()
            } else {
                header_list.join(",")
            };
            let compression = args
                .otlp_compression
                .or(file.otlp_compression)
                .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_COMPRESSION").ok())
                .unwrap_or_else(|| "none".into());
            let gzip = match compression.as_str() {
                "gzip" => true,
                "none" | "" => false,
                other => {
                    return Err(BadInput(format!(
                        "--otlp-compression {}: give gzip or none",
                        wattprint_core::text::printable(other)
                    ))
                    .into())
                }
            };
            cfg.otlp = Some(wattprint_agent::otlp::OtlpConfig {
                endpoint,
                traces_endpoint,
                headers: wattprint_agent::otlp::parse_headers(&headers).map_err(BadInput)?,
                gzip,
                interval_s: {
                    let v = duration(
                        "--otlp-interval",
                        args.otlp_interval.or(file.otlp_interval),
                        parse_interval_s,
                        10.0,
                    )?;
                    wattprint_agent::check_range_s("--otlp-interval", v, 0.1, 3600.0)
                        .map_err(|e| BadInput(e.to_string()))?;
                    v
                },
            });
        }
    }
    #[cfg(not(feature = "otlp"))]
    if file.otlp_endpoint.is_some()
        || file.otlp_traces_endpoint.is_some()
        || file.otlp_interval.is_some()
        || file.otlp_header.is_some()
        || file.otlp_compression.is_some()
    {
        return Err(BadInput(
            "the config file sets otlp_* keys, but this wattprint was built without OTLP: rebuild with `--features otlp`, or remove them".into(),
        )
        .into());
    }
    wattprint_agent::check(&cfg).map_err(|e| BadInput(e.to_string()))?;

    let mut sensor_config = args.sensors.config()?;
    // The agent's windows and requests are attributed from the chosen sensors alone: no
    // standby to swap in, so a counter that stands still at start (a dead `energy-psys`) is
    // passed over for the next source before serving, as `wattprint sensors` does.
    sensor_config.standby = false;
    sensor_config.discovery_check_s = Some(wattprint_engine::discover::DISCOVERY_CHECK_S);
    let mut d = wattprint_engine::discover(&sensor_config);
    for a in &d.absent {
        eprintln!(
            "wattprint agent: {} not used: {}{}",
            a.source,
            escape(&a.reason),
            a.fix
                .as_deref()
                .map(|f| format!(" (fix: {})", escape(f)))
                .unwrap_or_default()
        );
    }
    for n in &d.notes {
        eprintln!("wattprint agent: {}", escape(n));
    }
    if d.sensors.is_empty() {
        return Err(BadInput(
            "no usable sensor on this machine (see the reasons above; `wattprint sensors` explains each)".into(),
        )
        .into());
    }
    // Handlers registered before the agent says it listens: a SIGTERM right after that line
    // stops it cleanly, never kills it half-way.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    let workloads = if args.workloads || file.workloads == Some(true) {
        let cgroup_root = args.cgroup_root.or(file.cgroup_root);
        let mut opts = workload_options(
            &sensor_config,
            args.max_workloads.or(file.max_workloads),
            args.workload_keep_scrapes.or(file.workload_keep_scrapes),
            args.idle_power_w.or(file.idle_power_w),
        )?;
        opts.pod_list = args.pod_list.or(file.pod_list);
        let tree = match &cgroup_root {
            Some(dir) => wattprint_sensors::cgroups::CgroupFs::at(dir),
            None => wattprint_sensors::cgroups::CgroupFs::discover(&sensor_config.sysfs_root),
        }
        .map_err(|e| BadInput(format!("--workloads: {e}")))?;
        // Every cgroup's CPU-time file and listed directory stay open between slices, within
        // a budget of half the descriptor limit (raised to the hard limit first; see
        // docs/workloads.md).
        let nofile = wattprint_sensors::cgroups::raise_nofile_limit().unwrap_or_else(|e| {
            tracing::warn!("cannot raise the open-file limit: {e}");
            1024
        });
        let tree = tree.with_fd_budget(wattprint_sensors::cgroups::fd_budget_for_limit(nofile));
        eprintln!(
            "wattprint agent: per-workload attribution from {}",
            wattprint_sensors::cgroups::CgroupTree::describe(&tree)
        );
        let w = wattprint_agent::workloads::Workloads::new(Box::new(tree), opts);
        // NVIDIA GPUs' energy by their processes' utilisation, PIDs placed through the
        // (host's) procfs.
        Some(match d.gpu_sampler.take() {
            Some(s) => {
                eprintln!(
                    "wattprint agent: GPU energy split between workloads by NVML's per-process utilisation"
                );
                w.with_gpu_processes(Box::new(s), sensor_config.procfs_root.clone())
            }
            None => w,
        })
    } else {
        None
    };
    let socket_shown = cfg.socket.as_ref().map(|s| s.path.display().to_string());
    let agent = Agent::bind(cfg, d.sensors)?.with_gpus(d.gpus);
    if let Some(w) = workloads {
        wattprint_agent::lock(&agent.shared()).set_workloads(w);
    }
    if let Some(r) = agent.resume()? {
        eprintln!(
            "wattprint agent: resumed from the spool: {} open window(s), {} pending span(s); down {:.1} s (a gap, not guessed){}{}",
            r.windows,
            r.pending_spans,
            r.downtime_s,
            if r.spans_lost + r.windows_dropped as u64 > 0 {
                format!("; lost {} span(s) and {} window(s) beyond the limits", r.spans_lost, r.windows_dropped)
            } else {
                String::new()
            },
            if r.domains_missing.is_empty() {
                String::new()
            } else {
                format!("; domains no longer measured: {}", r.domains_missing.join(", "))
            }
        );
    }
    match (agent.local_addr().or(listen), socket_shown) {
        (Some(addr), _) => eprintln!(
            "wattprint agent: listening on http://{addr} (dashboard at /, metrics at /metrics)"
        ),
        (None, Some(path)) => {
            eprintln!(
                "wattprint agent: serving counters on {} (no HTTP: --listen none)",
                escape(&path)
            )
        }
        (None, None) => {}
    }
    agent.serve_until(stop)?;
    eprintln!("wattprint agent: stopped");
    Ok(0)
}

/// Largest `--max-workloads`: Prometheus's guidance on series per family (as
/// `wattprint_agent::MAX_SERIES_LIMIT`).
const MAX_WORKLOADS: usize = wattprint_agent::MAX_SERIES_LIMIT;

/// The per-workload options: CPUs from `<procfs>/stat`, pod names from the downward API's
/// environment, the limits checked.
fn workload_options(
    sensors: &wattprint_engine::SensorConfig,
    max_workloads: Option<usize>,
    keep_scrapes: Option<u64>,
    idle_power_w: Option<f64>,
) -> anyhow::Result<wattprint_agent::workloads::WorkloadOptions> {
    let stat = wattprint_sensors::procfs::read_prefix(&sensors.procfs_root.join("stat"), 1 << 20)
        .ok_or_else(|| {
        BadInput(format!(
            "--workloads: cannot read {} (the CPUs online)",
            sensors.procfs_root.join("stat").display()
        ))
    })?;
    let cpus = f64::from(wattprint_sensors::procfs::count_stat_cpus(&stat));
    let mut o = wattprint_agent::workloads::WorkloadOptions::new(cpus);
    if let Some(n) = max_workloads {
        if !(1..=MAX_WORKLOADS).contains(&n) {
            return Err(BadInput(format!("--max-workloads {n}: give 1 to {MAX_WORKLOADS}")).into());
        }
        o.max_series = n;
    }
    if let Some(k) = keep_scrapes {
        if !(1..=1000).contains(&k) {
            return Err(BadInput(format!("--workload-keep-scrapes {k}: give 1 to 1000")).into());
        }
        o.keep_scrapes = k;
    }
    if let Some(w) = idle_power_w {
        // 100 kW is beyond any single node.
        if !(w.is_finite() && (0.0..=100_000.0).contains(&w)) {
            return Err(BadInput(format!("--idle-power {w}: give 0 to 100000 W")).into());
        }
        o.idle = wattprint_core::workloads::IdleModel::BaselineW(w);
    }
    o.pods = wattprint_agent::workloads::PodNames::from_downward_api(|k| std::env::var(k).ok());
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_groups_resolve_by_number_or_through_nss() {
        assert_eq!(group_gid("4242").unwrap(), 4242);
        // gid 0 is `root` on every Linux system, whatever NSS backs it.
        assert_eq!(group_gid("root").unwrap(), 0);
        let e = group_gid("no-such-group-wattprint")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such group"), "{e}");
        assert!(group_gid("a\0b").is_err());
    }
}
