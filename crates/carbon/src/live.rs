//! Live intensity providers, opt-in (`--live PROVIDER[:REGION]`), keys from the environment,
//! with timeouts and a small on-disk cache. Any failure is returned as a [`LiveError`]; the
//! caller falls back to the embedded factor and says so in the report.
//!
//! | provider | request | key (env) | basis |
//! |---|---|---|---|
//! | `electricitymaps` | `GET {base}/v3/carbon-intensity/latest?zone=Z` | `ELECTRICITYMAPS_API_KEY` (header `auth-token`) | as answered (`emissionFactorType`, lifecycle by default) |
//! | `watttime` | `GET {base}/login` (basic auth) then `GET {base}/v3/forecast?region=R&signal_type=co2_moer&horizon_hours=0` | `WATTTIME_USERNAME`, `WATTTIME_PASSWORD` | marginal (MOER), direct; lbs/MWh x 0.4536 = g/kWh |
//! | `ukci` | `GET {base}/intensity` | none | direct (GB national, actual else forecast) |
//! | `carbon-aware-sdk` | `GET {base}/emissions/average-carbon-intensity?location=L&startTime=..&endTime=..` | `CARBON_AWARE_SDK_URL` (the server) | as configured in the SDK |

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use wattprint_core::report::CarbonBasis;

/// lbs/MWh -> g/kWh (WattTime).
pub const G_PER_KWH_PER_LBS_PER_MWH: f64 = 0.4536;

/// Cached answers younger than this are reused, s.
pub const CACHE_TTL_S: f64 = 900.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveProvider {
    ElectricityMaps,
    WattTime,
    UkCarbonIntensity,
    CarbonAwareSdk,
}

impl LiveProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveProvider::ElectricityMaps => "electricitymaps",
            LiveProvider::WattTime => "watttime",
            LiveProvider::UkCarbonIntensity => "ukci",
            LiveProvider::CarbonAwareSdk => "carbon-aware-sdk",
        }
    }

    fn default_base(self) -> &'static str {
        match self {
            LiveProvider::ElectricityMaps => "https://api.electricitymap.org",
            LiveProvider::WattTime => "https://api.watttime.org",
            LiveProvider::UkCarbonIntensity => "https://api.carbonintensity.org.uk",
            LiveProvider::CarbonAwareSdk => "http://localhost:8080",
        }
    }
}

/// `PROVIDER[:REGION]` as given to `--live`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSpec {
    pub provider: LiveProvider,
    /// The provider's own region id (Electricity Maps zone, WattTime region, SDK location).
    pub region: Option<String>,
}

/// A `--live` value whose provider is not one of the four.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown live provider `{provider}`; use electricitymaps, watttime, ukci or carbon-aware-sdk, optionally with :REGION")]
pub struct UnknownProvider {
    pub provider: String,
}

impl std::str::FromStr for LiveSpec {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, UnknownProvider> {
        let (p, region) = match s.split_once(':') {
            Some((p, r)) if !r.trim().is_empty() => (p, Some(r.trim().to_string())),
            Some((p, _)) => (p, None),
            None => (s, None),
        };
        let provider = match p.trim().to_ascii_lowercase().as_str() {
            "electricitymaps" | "electricity-maps" | "emaps" => LiveProvider::ElectricityMaps,
            "watttime" => LiveProvider::WattTime,
            "ukci" | "uk" | "carbonintensity" => LiveProvider::UkCarbonIntensity,
            "carbon-aware-sdk" | "casdk" | "carbonaware" => LiveProvider::CarbonAwareSdk,
            other => {
                return Err(UnknownProvider {
                    provider: other.to_string(),
                })
            }
        };
        Ok(LiveSpec { provider, region })
    }
}

/// Endpoints, credentials, timeout and cache of the live providers.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub timeout: Duration,
    /// Where answers are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub electricitymaps_url: Option<String>,
    pub electricitymaps_key: Option<String>,
    pub watttime_url: Option<String>,
    pub watttime_user: Option<String>,
    pub watttime_password: Option<String>,
    pub ukci_url: Option<String>,
    pub carbon_aware_sdk_url: Option<String>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            timeout: Duration::from_secs(5),
            cache_dir: None,
            electricitymaps_url: None,
            electricitymaps_key: None,
            watttime_url: None,
            watttime_user: None,
            watttime_password: None,
            ukci_url: None,
            carbon_aware_sdk_url: None,
        }
    }
}

impl LiveConfig {
    /// From the environment: `ELECTRICITYMAPS_API_KEY`, `WATTTIME_USERNAME`,
    /// `WATTTIME_PASSWORD`, `CARBON_AWARE_SDK_URL`; base-URL overrides
    /// `WATTPRINT_ELECTRICITYMAPS_URL`, `WATTPRINT_WATTTIME_URL`, `WATTPRINT_UKCI_URL`; cache in
    /// `$XDG_CACHE_HOME/wattprint` (or `~/.cache/wattprint`).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cache_dir = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("wattprint"));
        LiveConfig {
            cache_dir,
            electricitymaps_url: var("WATTPRINT_ELECTRICITYMAPS_URL"),
            electricitymaps_key: var("ELECTRICITYMAPS_API_KEY"),
            watttime_url: var("WATTPRINT_WATTTIME_URL"),
            watttime_user: var("WATTTIME_USERNAME"),
            watttime_password: var("WATTTIME_PASSWORD"),
            ukci_url: var("WATTPRINT_UKCI_URL"),
            carbon_aware_sdk_url: var("CARBON_AWARE_SDK_URL"),
            ..LiveConfig::default()
        }
    }

    fn base(&self, p: LiveProvider) -> String {
        let o = match p {
            LiveProvider::ElectricityMaps => &self.electricitymaps_url,
            LiveProvider::WattTime => &self.watttime_url,
            LiveProvider::UkCarbonIntensity => &self.ukci_url,
            LiveProvider::CarbonAwareSdk => &self.carbon_aware_sdk_url,
        };
        o.as_deref()
            .unwrap_or(p.default_base())
            .trim_end_matches('/')
            .to_string()
    }
}

/// A live intensity with its provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveReading {
    pub g_per_kwh: f64,
    /// `lifecycle`, `direct` or `unspecified`.
    pub basis: CarbonBasis,
    /// E.g. `Electricity Maps v3 latest (zone DE, 2025-01-15T10:00:00.000Z, estimated)`.
    pub source: String,
    /// The year of the reading's timestamp, when known.
    pub year: Option<i32>,
    /// True when served from the on-disk cache.
    pub cached: bool,
}

/// Why a live provider gave no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LiveError {
    #[error("{provider}: {msg}")]
    Config { provider: &'static str, msg: String },
    #[error("{provider}: {url}: {msg}")]
    Http {
        provider: &'static str,
        url: String,
        msg: String,
    },
    #[error("{provider}: answered HTTP {status}{hint}: {body}")]
    Status {
        provider: &'static str,
        status: u16,
        hint: String,
        body: String,
    },
    #[error("{provider}: unexpected answer: {msg}")]
    Garbage { provider: &'static str, msg: String },
}

fn garbage(p: LiveProvider, msg: impl Into<String>) -> LiveError {
    LiveError::Garbage {
        provider: p.as_str(),
        msg: msg.into(),
    }
}

fn json(p: LiveProvider, body: &str) -> Result<Value, LiveError> {
    serde_json::from_str(body).map_err(|e| garbage(p, format!("not JSON ({e})")))
}

fn finite_non_negative(p: LiveProvider, v: Option<&Value>, what: &str) -> Result<f64, LiveError> {
    let x = v
        .and_then(Value::as_f64)
        .ok_or_else(|| garbage(p, format!("no numeric `{what}`")))?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(garbage(
            p,
            format!("`{what}` = {x} is not a finite number >= 0"),
        ))
    }
}

fn year_of(ts: Option<&str>) -> Option<i32> {
    ts.and_then(|s| s.get(..4)).and_then(|y| y.parse().ok())
}

/// Electricity Maps v3 `carbon-intensity/latest` body.
pub fn parse_electricitymaps_latest(body: &str) -> Result<LiveReading, LiveError> {
    let p = LiveProvider::ElectricityMaps;
    let v = json(p, body)?;
    let g = finite_non_negative(p, v.get("carbonIntensity"), "carbonIntensity")?;
    let zone = v.get("zone").and_then(Value::as_str).unwrap_or("?");
    let dt = v.get("datetime").and_then(Value::as_str);
    let basis = match v.get("emissionFactorType").and_then(Value::as_str) {
        Some("direct") => CarbonBasis::Direct,
        _ => CarbonBasis::Lifecycle,
    };
    let est = if v.get("isEstimated").and_then(Value::as_bool) == Some(true) {
        ", estimated"
    } else {
        ""
    };
    Ok(LiveReading {
        g_per_kwh: g,
        basis,
        source: format!(
            "Electricity Maps v3 latest (zone {zone}, {}{est})",
            dt.unwrap_or("time not given")
        ),
        year: year_of(dt),
        cached: false,
    })
}

/// WattTime v3 `forecast` or `historical` body (MOER in lbs/MWh): the first point, in g/kWh.
pub fn parse_watttime(body: &str) -> Result<LiveReading, LiveError> {
    let p = LiveProvider::WattTime;
    let v = json(p, body)?;
    let units = v
        .pointer("/meta/units")
        .and_then(Value::as_str)
        .unwrap_or("");
    if units != "lbs_co2_per_mwh" {
        return Err(garbage(
            p,
            format!("units `{units}`, expected lbs_co2_per_mwh (signal_type=co2_moer)"),
        ));
    }
    let first = v
        .get("data")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| garbage(p, "no data points"))?;
    let lbs = finite_non_negative(p, first.get("value"), "value")?;
    let region = v
        .pointer("/meta/region")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let t = first.get("point_time").and_then(Value::as_str);
    Ok(LiveReading {
        g_per_kwh: lbs * G_PER_KWH_PER_LBS_PER_MWH,
        basis: CarbonBasis::Direct,
        source: format!(
            "WattTime v3 marginal MOER (region {region}, {}; {lbs} lbs/MWh x 0.4536)",
            t.unwrap_or("time not given")
        ),
        year: year_of(t),
        cached: false,
    })
}

/// UK Carbon Intensity API `/intensity` body: actual, else forecast.
pub fn parse_ukci(body: &str) -> Result<LiveReading, LiveError> {
    let p = LiveProvider::UkCarbonIntensity;
    let v = json(p, body)?;
    let first = v
        .get("data")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| garbage(p, "no `data` entries"))?;
    let i = first
        .get("intensity")
        .ok_or_else(|| garbage(p, "no `intensity`"))?;
    let (g, kind) = match i.get("actual").filter(|a| !a.is_null()) {
        Some(a) => (finite_non_negative(p, Some(a), "actual")?, "actual"),
        None => (
            finite_non_negative(p, i.get("forecast"), "forecast")?,
            "forecast",
        ),
    };
    let from = first.get("from").and_then(Value::as_str);
    Ok(LiveReading {
        g_per_kwh: g,
        basis: CarbonBasis::Direct,
        source: format!(
            "UK Carbon Intensity API, GB national {kind} ({})",
            from.unwrap_or("time not given")
        ),
        year: year_of(from),
        cached: false,
    })
}

/// GSF Carbon Aware SDK `emissions/average-carbon-intensity` body.
pub fn parse_carbon_aware_sdk(body: &str) -> Result<LiveReading, LiveError> {
    let p = LiveProvider::CarbonAwareSdk;
    let v = json(p, body)?;
    let g = finite_non_negative(p, v.get("carbonIntensity"), "carbonIntensity")?;
    let loc = v.get("location").and_then(Value::as_str).unwrap_or("?");
    let start = v.get("startTime").and_then(Value::as_str);
    let end = v.get("endTime").and_then(Value::as_str).unwrap_or("?");
    Ok(LiveReading {
        g_per_kwh: g,
        basis: CarbonBasis::Unspecified,
        source: format!(
            "GSF Carbon Aware SDK average (location {loc}, {} to {end})",
            start.unwrap_or("?")
        ),
        year: year_of(start),
        cached: false,
    })
}

fn agent(cfg: &LiveConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(
    p: LiveProvider,
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, String)],
) -> Result<String, LiveError> {
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let http = |msg: String| LiveError::Http {
        provider: p.as_str(),
        url: url.to_string(),
        msg,
    };
    let mut resp = req.call().map_err(|e| http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| http(format!("reading the answer: {e}")))?;
    if status != 200 {
        let hint = match status {
            401 | 403 => format!(" (check the credentials: {})", key_env(p)),
            _ => String::new(),
        };
        let mut body = body;
        body.truncate(200);
        return Err(LiveError::Status {
            provider: p.as_str(),
            status,
            hint,
            body,
        });
    }
    Ok(body)
}

fn key_env(p: LiveProvider) -> &'static str {
    match p {
        LiveProvider::ElectricityMaps => "ELECTRICITYMAPS_API_KEY",
        LiveProvider::WattTime => "WATTTIME_USERNAME and WATTTIME_PASSWORD",
        LiveProvider::UkCarbonIntensity => "none needed",
        LiveProvider::CarbonAwareSdk => "CARBON_AWARE_SDK_URL",
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn rfc3339(unix_s: f64) -> String {
    wattprint_core::wallclock::rfc3339_utc(unix_s.floor() as i64)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn fetch_uncached(
    spec: &LiveSpec,
    region: &str,
    window_unix_s: (f64, f64),
    cfg: &LiveConfig,
) -> Result<LiveReading, LiveError> {
    let p = spec.provider;
    let a = agent(cfg);
    let base = cfg.base(p);
    let config = |msg: String| LiveError::Config {
        provider: p.as_str(),
        msg,
    };
    match p {
        LiveProvider::ElectricityMaps => {
            let key = cfg
                .electricitymaps_key
                .clone()
                .ok_or_else(|| config("set ELECTRICITYMAPS_API_KEY".into()))?;
            let url = format!("{base}/v3/carbon-intensity/latest?zone={}", encode(region));
            parse_electricitymaps_latest(&get(p, &a, &url, &[("auth-token", key)])?)
        }
        LiveProvider::WattTime => {
            let (Some(u), Some(pw)) = (&cfg.watttime_user, &cfg.watttime_password) else {
                return Err(config("set WATTTIME_USERNAME and WATTTIME_PASSWORD".into()));
            };
            let auth = format!("Basic {}", base64(format!("{u}:{pw}").as_bytes()));
            let login = get(p, &a, &format!("{base}/login"), &[("Authorization", auth)])?;
            let token = json(p, &login)?
                .get("token")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| garbage(p, "login answer has no `token`"))?;
            let url = format!(
                "{base}/v3/forecast?region={}&signal_type=co2_moer&horizon_hours=0",
                encode(region)
            );
            parse_watttime(&get(
                p,
                &a,
                &url,
                &[("Authorization", format!("Bearer {token}"))],
            )?)
        }
        LiveProvider::UkCarbonIntensity => {
            parse_ukci(&get(p, &a, &format!("{base}/intensity"), &[])?)
        }
        LiveProvider::CarbonAwareSdk => {
            if cfg.carbon_aware_sdk_url.is_none() {
                return Err(config(
                    "set CARBON_AWARE_SDK_URL to the SDK's web API".into(),
                ));
            }
            let url = format!(
                "{base}/emissions/average-carbon-intensity?location={}&startTime={}&endTime={}",
                encode(region),
                encode(&rfc3339(window_unix_s.0)),
                encode(&rfc3339(window_unix_s.1.max(window_unix_s.0 + 1.0)))
            );
            parse_carbon_aware_sdk(&get(p, &a, &url, &[])?)
        }
    }
}

fn cache_path(cfg: &LiveConfig, p: LiveProvider, region: &str) -> Option<PathBuf> {
    let safe: String = region
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cfg.cache_dir
        .as_ref()
        .map(|d| d.join(format!("live-{}-{safe}.json", p.as_str())))
}

fn read_cache(path: &PathBuf, now_unix_s: f64) -> Option<LiveReading> {
    // A cache entry is a few hundred bytes: a larger file is not ours (or damaged).
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::fs::File::open(path).ok()?, 64 * 1024),
        &mut text,
    )
    .ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let at = v.get("fetched_unix_s")?.as_f64()?;
    let age = now_unix_s - at;
    if !(0.0..CACHE_TTL_S).contains(&age) {
        return None;
    }
    let g = v
        .get("g_per_kwh")?
        .as_f64()
        .filter(|g| g.is_finite() && *g >= 0.0)?;
    Some(LiveReading {
        g_per_kwh: g,
        basis: v.get("basis")?.as_str()?.into(),
        source: format!("{} (cached {age:.0} s ago)", v.get("source")?.as_str()?),
        year: v
            .get("year")
            .and_then(Value::as_i64)
            .and_then(|y| i32::try_from(y).ok()),
        cached: true,
    })
}

fn write_cache(path: &PathBuf, r: &LiveReading, now_unix_s: f64) {
    let v = serde_json::json!({
        "fetched_unix_s": now_unix_s, "g_per_kwh": r.g_per_kwh, "basis": r.basis,
        "source": r.source, "year": r.year,
    });
    let ok = path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(path, v.to_string()));
    if let Err(e) = ok {
        tracing::debug!("live cache {}: {e}", path.display());
    }
}

/// The provider's intensity for `region` over the run window (Unix seconds), from the cache
/// when a fresh answer exists.
pub fn fetch(
    spec: &LiveSpec,
    region: &str,
    window_unix_s: (f64, f64),
    now_unix_s: f64,
    cfg: &LiveConfig,
) -> Result<LiveReading, LiveError> {
    let path = cache_path(cfg, spec.provider, region);
    if let Some(r) = path.as_ref().and_then(|p| read_cache(p, now_unix_s)) {
        return Ok(r);
    }
    let r = fetch_uncached(spec, region, window_unix_s, cfg)?;
    if let Some(p) = &path {
        write_cache(p, &r, now_unix_s);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn live_spec_parses_provider_and_region() {
        let s: LiveSpec = "watttime:CAISO_NORTH".parse().unwrap();
        assert_eq!(s.provider, LiveProvider::WattTime);
        assert_eq!(s.region.as_deref(), Some("CAISO_NORTH"));
        let s: LiveSpec = "ElectricityMaps".parse().unwrap();
        assert_eq!(s.region, None);
        assert!("tomorrow"
            .parse::<LiveSpec>()
            .unwrap_err()
            .to_string()
            .contains("unknown live provider"));
    }

    #[test]
    fn garbage_answers_are_errors_not_panics() {
        for body in [
            "",
            "<html>",
            "{}",
            "[]",
            "{\"carbonIntensity\":\"x\"}",
            "{\"carbonIntensity\":-5}",
            "null",
        ] {
            assert!(parse_electricitymaps_latest(body).is_err(), "{body}");
            assert!(parse_watttime(body).is_err(), "{body}");
            assert!(parse_ukci(body).is_err(), "{body}");
            assert!(parse_carbon_aware_sdk(body).is_err(), "{body}");
        }
    }
}
