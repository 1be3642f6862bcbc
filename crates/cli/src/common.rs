//! Options shared by several subcommands (SPEC: common options).

use clap::Args;
use std::path::PathBuf;

/// Output: `--json` on stdout, `-o FILE` (format from the extension, or `--format`).
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print the machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the result to FILE (format from its extension).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Carbon options shared by `run`, `import` and `estimate` (see `docs/carbon.md`).
#[derive(Args, Debug, Clone, Default)]
pub struct CarbonArgs {
    /// Grid zone: ISO 3166 alpha-2/alpha-3 (FR, FRA), gcp:REGION, aws:REGION, azure:REGION,
    /// WORLD or EU27. Without one, the World average is used and flagged as a fallback.
    #[arg(long, env = "WATTPRINT_ZONE", value_name = "ZONE")]
    pub zone: Option<String>,
    /// Power usage effectiveness (>= 1). Default: the provider's figure for cloud zones, else
    /// 1.0 with a warning.
    #[arg(long, value_name = "PUE")]
    pub pue: Option<f64>,
    /// Market-based factor in gCO2e/kWh (supplier or residual mix), reported separately.
    #[arg(long = "market-factor", value_name = "G_PER_KWH")]
    pub market_factor: Option<f64>,
    /// CSV of `timestamp,g_per_kwh` rows (hourly or finer): energy is weighed per interval.
    #[arg(long = "intensity-file", value_name = "FILE")]
    pub intensity_file: Option<PathBuf>,
    /// Live intensity, opt-in: electricitymaps, watttime, ukci or carbon-aware-sdk, with an
    /// optional :REGION (keys from the environment; offline factor on failure).
    #[arg(long, value_name = "PROVIDER[:REGION]")]
    pub live: Option<String>,
    /// Embodied carbon of the hardware, kgCO2e (estimate: per device).
    #[arg(long = "embodied-kg", value_name = "KG")]
    pub embodied_kg: Option<f64>,
    /// Hardware lifetime, years (defaults: 4 for servers, 3 for GPUs).
    #[arg(long = "lifetime-years", value_name = "YEARS")]
    pub lifetime_years: Option<f64>,
    /// Share of the machine reserved, 0..1 (default 1).
    #[arg(long, value_name = "SHARE")]
    pub share: Option<f64>,
    /// Functional units R for SCI (default: inferences, else tokens, when declared).
    #[arg(long = "unit-count", value_name = "R")]
    pub unit_count: Option<f64>,
    /// Name of the functional unit, e.g. `request`.
    #[arg(long = "unit-name", value_name = "NAME")]
    pub unit_name: Option<String>,
}

impl CarbonArgs {
    /// The library options; live-provider keys and cache from the environment.
    pub fn to_options(&self) -> Result<wattprint_carbon::CarbonOptions, crate::exit::BadInput> {
        let live = self
            .live
            .as_deref()
            .map(str::parse::<wattprint_carbon::LiveSpec>)
            .transpose()
            .map_err(|e| crate::exit::BadInput(format!("--live: {e}")))?;
        Ok(wattprint_carbon::CarbonOptions {
            zone: self.zone.clone(),
            pue: self.pue,
            market_factor_g_per_kwh: self.market_factor,
            intensity_file: self.intensity_file.clone(),
            live,
            live_config: wattprint_carbon::LiveConfig::from_env(),
            embodied_kg: self.embodied_kg,
            lifetime_years: self.lifetime_years,
            share: self.share,
            unit_count: self.unit_count,
            unit_name: self.unit_name.clone(),
            ..Default::default()
        })
    }
}

/// Carbon errors are all the user's input to fix: exit 2.
pub fn carbon_error(e: wattprint_carbon::CarbonError) -> anyhow::Error {
    crate::exit::BadInput(e.to_string()).into()
}

/// Declared work, shared by `run` and `import` (see `docs/gpu.md`): what the energy bought.
#[derive(Args, Debug, Clone, Default)]
pub struct WorkArgs {
    /// FLOPs the job performs, e.g. 3.15e23.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub flops: Option<f64>,
    /// Model parameters N: with --tokens D and --mode, FLOPs = 6·N·D (train) or 2·N·D (infer).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub params: Option<f64>,
    /// Tokens processed (D of the FLOPs model; also gives J per token).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub tokens: Option<f64>,
    /// train (6·N·D) or infer (2·N·D), with --params and --tokens.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub mode: Option<wattprint_core::work::Mode>,
    /// Precision the hardware peak is taken at: bf16, fp16, fp8, tf32 or fp32.
    #[arg(long, value_name = "P", default_value = "bf16", value_parser = parse_precision)]
    pub precision: wattprint_core::work::Precision,
    /// Inferences served (gives J and gCO2e per inference).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub inferences: Option<f64>,
}

fn parse_mode(s: &str) -> Result<wattprint_core::work::Mode, wattprint_core::work::UnknownMode> {
    s.parse()
}

fn parse_precision(
    s: &str,
) -> Result<wattprint_core::work::Precision, wattprint_core::work::UnknownPrecision> {
    s.parse()
}

impl WorkArgs {
    /// The core declaration, checked: nonsense values (negative, NaN, --params without
    /// --mode...) are the user's input to fix (exit 2), named by option.
    pub fn to_decl(&self) -> Result<wattprint_core::work::WorkDecl, crate::exit::BadInput> {
        let d = wattprint_core::work::WorkDecl {
            flops: self.flops,
            params: self.params,
            tokens: self.tokens,
            mode: self.mode,
            inferences: self.inferences,
            precision: self.precision,
        };
        d.validate()
            .map_err(|e| crate::exit::BadInput(format!("declared work: {e}")))?;
        Ok(d)
    }
}

#[cfg(test)]
mod work_args_tests {
    use super::WorkArgs;
    use clap::Parser;
    use wattprint_core::work::{resolve_work, Mode, Precision};

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        work: WorkArgs,
    }

    fn parse(args: &[&str]) -> Result<WorkArgs, String> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map(|t| t.work)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn gpt3_declaration_resolves_to_3_15e23_flops() {
        let w = parse(&["--params", "175e9", "--tokens", "300e9", "--mode", "train"]).unwrap();
        assert_eq!(w.mode, Some(Mode::Train));
        assert_eq!(w.precision, Precision::Bf16);
        let work = resolve_work(&w.to_decl().unwrap(), None);
        assert_eq!(work.flops, Some(3.15e23));
    }

    #[test]
    fn nonsense_is_bad_input_naming_the_option() {
        let e = parse(&["--flops", "-5"]).unwrap().to_decl().unwrap_err();
        assert!(e.0.contains("--flops -5 is negative"), "{}", e.0);
        let e = parse(&["--tokens", "NaN"]).unwrap().to_decl().unwrap_err();
        assert!(e.0.contains("--tokens NaN"), "{}", e.0);
        let e = parse(&["--params", "1e9"]).unwrap().to_decl().unwrap_err();
        assert!(e.0.contains("--params needs --mode"), "{}", e.0);
        assert!(parse(&["--precision", "int4"])
            .unwrap_err()
            .contains("bf16, fp16"));
        assert!(parse(&["--mode", "eval"])
            .unwrap_err()
            .contains("train or infer"));
    }
}

/// Input text made safe for a terminal (control characters and ANSI sequences escaped).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    wattprint_core::text::printable(s)
}

/// Multi-line text that quotes input (a report, a summary, a table) made safe for a
/// terminal: line feeds and tabs kept, every other control character escaped.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    wattprint_core::text::printable_text(s)
}

/// Read a text file whose format needs it whole (JSON, TOML, a token), refusing more than
/// `max_bytes`, and stopping at the first NUL byte (a binary file, `/dev/zero`): read in
/// 64 KiB pieces, so junk is refused after one piece, never read up to the cap.
pub fn read_bounded(path: &std::path::Path, max_bytes: u64) -> std::io::Result<String> {
    use std::io::Read;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut f = std::fs::File::open(path)?.take(max_bytes + 1);
    let mut buf = Vec::new();
    let mut piece = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = piece[..n].iter().position(|&b| b == 0) {
            return Err(bad(format!(
                "binary data (a NUL byte at offset {}), not text",
                buf.len() + i
            )));
        }
        buf.extend_from_slice(&piece[..n]);
        if buf.len() as u64 > max_bytes {
            return Err(bad(format!("larger than {max_bytes} bytes")));
        }
    }
    String::from_utf8(buf).map_err(|_| bad("not UTF-8 text".into()))
}

/// Read a line-oriented text file (CSV) line by line: each line at most `max_line_bytes`,
/// all at most `max_bytes`. A file without line breaks (`/dev/zero`, a binary) is refused
/// after one line's worth, not read up to the cap. The text is kept byte for byte (bytes
/// that are not UTF-8 become U+FFFD), so an import's content id does not change.
pub fn read_lines_bounded(
    path: &std::path::Path,
    max_line_bytes: usize,
    max_bytes: u64,
) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    read_lines_bounded_from(std::io::BufReader::new(f), max_line_bytes, max_bytes)
}

/// [`read_lines_bounded`] over an open stream (the rest of a file whose first lines were
/// peeked at).
pub fn read_lines_bounded_from(
    r: impl std::io::BufRead,
    max_line_bytes: usize,
    max_bytes: u64,
) -> std::io::Result<String> {
    use wattprint_core::textpos::{BoundedLines, LineError};
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut buf = Vec::new();
    let mut lines = BoundedLines::new(r, max_line_bytes, max_bytes);
    while let Some(line) = lines.next_bytes() {
        match line {
            Ok((_, raw)) => buf.extend_from_slice(raw),
            Err(LineError::Io(e)) => return Err(e),
            Err(LineError::TooBig { max_bytes }) => {
                return Err(bad(format!("larger than {max_bytes} bytes")))
            }
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Write `contents` to `path` without ever leaving a partial file there: write a temporary
/// file in the same directory, flush it to disk, then rename it over `path`. On a full disk
/// the old file (or none) stays, never a zero-byte report.
pub fn write_atomic(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Check before any work that `-o FILE` can be written: its directory exists and accepts a
/// new file (a probe file is created and removed).
pub fn check_writable(path: &std::path::Path) -> Result<(), crate::exit::BadInput> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let probe = dir.join(format!(".wattprint-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
        .map_err(|e| {
            crate::exit::BadInput(format!(
                "-o {}: cannot write in {}: {e}; choose a writable path",
                escape(&path.display().to_string()),
                escape(&dir.display().to_string())
            ))
        })
}

#[cfg(test)]
mod write_tests {
    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        std::fs::write(&p, "old").unwrap();
        super::write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        // A directory that does not exist: an error, nothing created.
        let missing = d.path().join("no/such/r.json");
        assert!(super::write_atomic(&missing, b"x").is_err());
        assert!(super::check_writable(&missing).is_err());
        assert!(super::check_writable(&p).is_ok());
    }
}

/// Sensor choice, shared by `run`, `agent` and `sensors`: flags replace `WATTPRINT_SENSORS`.
#[derive(Args, Debug, Clone, Default)]
pub struct SensorArgs {
    /// Use only this sensor (repeatable): model, rapl-perf, rapl-powercap, nvml, amdsmi,
    /// hwmon, agent-socket. Replaces WATTPRINT_SENSORS (e.g. `model` or `-rapl-perf,-nvml`).
    #[arg(long = "sensor", value_name = "SOURCE")]
    pub sensor: Vec<String>,
    /// Never use this sensor (repeatable); same names as --sensor.
    #[arg(long = "no-sensor", value_name = "SOURCE")]
    pub no_sensor: Vec<String>,
}

impl SensorArgs {
    /// The sensor configuration from the environment seams and these flags; an unknown name
    /// (flag or `WATTPRINT_SENSORS`) is bad input (exit 2) listing the known ones.
    pub fn config(&self) -> Result<wattprint_engine::SensorConfig, crate::exit::BadInput> {
        let bad = |e: wattprint_engine::config::UnknownSensor| crate::exit::BadInput(e.to_string());
        let mut c = wattprint_engine::SensorConfig::from_env().map_err(bad)?;
        c.select(&self.sensor, &self.no_sensor).map_err(bad)?;
        Ok(c)
    }
}
