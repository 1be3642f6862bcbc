//! The agent's configuration file (`--config FILE`, TOML): the same settings as the command
//! line flags, which override it. Unknown keys are refused so a typo is not silently ignored.

use serde::Deserialize;
use std::path::PathBuf;

/// Keys of the configuration file; every one optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `HOST:PORT` to listen on.
    pub listen: Option<String>,
    /// File holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// Sampling interval, e.g. `1s`, `250ms`.
    pub interval: Option<String>,
    /// How long attribution waits for late span reports, e.g. `5s`.
    pub settle_lag: Option<String>,
    pub zone: Option<String>,
    pub pue: Option<f64>,
    pub intensity_g_per_kwh: Option<f64>,
    /// Unix socket serving counters to unprivileged processes.
    pub socket: Option<PathBuf>,
    /// Group (name or gid) allowed to connect to the socket.
    pub socket_group: Option<String>,
    pub max_pending_spans: Option<usize>,
    pub max_label_sets: Option<usize>,
    /// Open HTTP connections at most.
    pub max_connections: Option<usize>,
    /// HTTP idle timeout, e.g. `10s`.
    pub idle_timeout: Option<String>,
    /// HTTP body-read timeout, e.g. `10s`.
    pub body_timeout: Option<String>,
    /// Distinct names of ended windows exported as their own series (default 256).
    pub max_window_names: Option<usize>,
    /// Per-workload attribution (`--workloads`).
    pub workloads: Option<bool>,
    /// The cgroup directory walked (`--cgroup-root`).
    pub cgroup_root: Option<PathBuf>,
    /// A kubelet `/pods` JSON file (`--pod-list`).
    pub pod_list: Option<PathBuf>,
    /// Workloads exported as their own series at most (`--max-workloads`).
    pub max_workloads: Option<usize>,
    /// Scrapes an ended workload is kept for (`--workload-keep-scrapes`).
    pub workload_keep_scrapes: Option<u64>,
    /// The node's idle power, W (`--idle-power`).
    pub idle_power_w: Option<f64>,
    /// The spool file (`--spool`).
    pub spool: Option<PathBuf>,
    /// Engines whose Prometheus metrics are read every interval, each `NAME=URL`.
    pub scrape: Option<Vec<String>>,
    /// The metering proxy, `LISTEN=UPSTREAM`.
    pub proxy: Option<String>,
    /// OTLP/HTTP metrics endpoint (`--otlp-endpoint`; feature `otlp`).
    pub otlp_endpoint: Option<String>,
    /// OTLP/HTTP endpoint the enriched spans are exported to (`--otlp-traces-endpoint`).
    pub otlp_traces_endpoint: Option<String>,
    /// OTLP metrics push interval, e.g. `10s` (`--otlp-interval`).
    pub otlp_interval: Option<String>,
    /// Extra headers on every OTLP request, each `NAME=VALUE` (`--otlp-header`).
    pub otlp_header: Option<Vec<String>>,
    /// `gzip` or `none` (`--otlp-compression`).
    pub otlp_compression: Option<String>,
}

/// Parse the file's text; errors name the file, line and key.
pub fn parse(path: &str, text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| {
            text.as_bytes()[..s.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        match line {
            Some(l) => format!("{path}:{l}: {}", e.message()),
            None => format!("{path}: {}", e.message()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_every_key_parses_and_a_typo_is_refused_with_its_line() {
        let c = parse(
            "agent.toml",
            "listen = \"127.0.0.1:9500\"\ninterval = \"500ms\"\nzone = \"FR\"\npue = 1.2\nsocket = \"/run/wattprint.sock\"\nsocket_group = \"wattprint\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:9500"));
        assert_eq!(c.pue, Some(1.2));
        let c = parse(
            "agent.toml",
            "otlp_traces_endpoint = \"http://tempo:4318\"\notlp_header = [\"x-scope-orgid=acme\"]\notlp_compression = \"gzip\"\n",
        )
        .unwrap();
        assert_eq!(c.otlp_traces_endpoint.as_deref(), Some("http://tempo:4318"));
        assert_eq!(c.otlp_header.unwrap(), ["x-scope-orgid=acme"]);
        let e = parse("agent.toml", "zone = \"FR\"\nintervall = \"1s\"\n").unwrap_err();
        assert!(e.starts_with("agent.toml:2:"), "{e}");
        assert!(e.contains("intervall"), "{e}");
    }
}
