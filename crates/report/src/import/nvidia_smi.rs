//! nvidia-smi `--query-gpu ... --format=csv` logs: power samples per GPU, integrated by trapezoid.

use super::*;

pub(super) fn split_unit(h: &str) -> (String, Option<String>) {
    match (h.find('['), h.rfind(']')) {
        (Some(a), Some(b)) if b > a => (
            h[..a].trim().to_ascii_lowercase(),
            Some(h[a + 1..b].trim().to_string()),
        ),
        _ => (h.trim().to_ascii_lowercase(), None),
    }
}

/// The power columns nvidia-smi can log, in order of preference. `power.draw` on drivers
/// before R530; newer ones also offer `power.draw.average` (the same 1 s average on Ampere and
/// later, what integration over samples a second or more apart needs) and
/// `power.draw.instant` (one instantaneous reading), and `power.draw` may be absent from a
/// log that queried only those (nvidia-smi --help-query-gpu).
const POWER_COLUMNS: [&str; 3] = ["power.draw", "power.draw.average", "power.draw.instant"];

/// nvidia-smi timestamps: `2026/11/29 02:31:12.345` (local time, no zone).
fn nvidia_time(s: &str) -> Option<f64> {
    parse_rfc3339_s(&s.trim().replacen('/', "-", 2))
}

/// Reads the log row by row: each GPU's power is integrated as its rows arrive, its
/// cumulative energy kept at [`SERIES_POINTS`] for the chart.
pub(super) fn nvidia_smi<R: std::io::BufRead>(
    mut t: Rows<R>,
    source_name: &str,
) -> Result<RunReport, ImportError> {
    let hl = t.header_line();
    let cols: Vec<(String, Option<String>)> = t.header().iter().map(|h| split_unit(h)).collect();
    let find = |n: &str| cols.iter().position(|(c, _)| c == n);
    let ts = find("timestamp").ok_or_else(|| {
        ParseError::new(
            hl,
            "timestamp",
            "missing column `timestamp` (query it with --query-gpu=timestamp,index,power.draw)"
                .into(),
        )
    })?;
    let (pw, pw_name) = POWER_COLUMNS
        .iter()
        .find_map(|&n| find(n).map(|i| (i, n)))
        .ok_or_else(|| {
            ParseError::new(
                hl,
                "power.draw",
                format!(
                    "no power column: the header needs one of {}",
                    POWER_COLUMNS.join(", ")
                ),
            )
        })?;
    match cols[pw].1.as_deref() {
        Some("W") | None => {}
        Some(u) => {
            return Err(ParseError::new(
                hl,
                pw_name,
                format!("unit `{u}` is not supported: nvidia-smi reports {pw_name} in [W]"),
            )
            .into())
        }
    }
    let idx = find("index");
    let name = find("name");
    let uuid = find("uuid");

    struct Gpu {
        trap: Trapezoid,
        j: f64,
        series: Cumulative,
        model: Option<String>,
        last_t: Option<f64>,
        gap_from: Option<f64>,
    }
    let mut gpus: BTreeMap<String, Gpu> = BTreeMap::new();
    let mut t0: Option<f64> = None;
    let mut t_end = 0.0f64;
    let mut gaps = Vec::new();
    while let Some((line, rec)) = t.next_row()? {
        let t_abs = nvidia_time(field(rec, ts)).ok_or_else(|| {
            ParseError::new(
                line,
                "timestamp",
                format!(
                    "`{}` is not a timestamp like 2026/11/29 02:31:12.345",
                    field(rec, ts)
                ),
            )
        })?;
        let start = *t0.get_or_insert(t_abs);
        let t_rel = t_abs - start;
        let key = idx
            .map(|i| field(rec, i).to_string())
            .or_else(|| uuid.map(|u| field(rec, u).to_string()))
            .unwrap_or_else(|| "0".into());
        let g = gpus.entry(key.clone()).or_insert_with(|| Gpu {
            trap: Trapezoid::new(),
            j: 0.0,
            series: Cumulative::new(format!("gpu-{key}")),
            model: name.map(|n| field(rec, n).to_string()),
            last_t: None,
            gap_from: None,
        });
        if let Some(prev) = g.last_t {
            if t_rel < prev {
                return Err(ParseError::new(
                    line,
                    "timestamp",
                    format!(
                        "time goes backwards for GPU {key} ({} s before the previous sample)",
                        prev - t_rel
                    ),
                )
                .into());
            }
        }
        g.last_t = Some(t_rel);
        t_end = t_end.max(t_rel);
        let raw = field(rec, pw);
        let (num, unit) = match raw.rsplit_once(' ') {
            Some((n, u)) => (n.trim(), Some(u.trim())),
            None => (raw, None),
        };
        if raw.starts_with('[') || raw.is_empty() {
            // `[N/A]`, `[Not Supported]`, `[Unknown Error]`: a gap, not zero watts.
            g.trap.restart();
            g.gap_from.get_or_insert(t_rel);
            continue;
        }
        if let Some(u) = unit {
            if u != "W" {
                return Err(ParseError::new(
                    line,
                    pw_name,
                    format!("`{raw}`: unit `{u}` is not W"),
                )
                .into());
            }
        }
        let w = number(num, line, pw_name)?;
        if !(0.0..=MAX_DEVICE_W).contains(&w) {
            return Err(ParseError::new(
                line,
                pw_name,
                format!("{w} W is outside 0..{MAX_DEVICE_W} W: check the unit"),
            )
            .into());
        }
        if let Some(from) = g.gap_from.take() {
            gaps.push(Gap {
                domain: format!("gpu-{key}"),
                from_s: from,
                to_s: t_rel,
                reason: "nvidia-smi reported no power reading".into(),
            });
        }
        g.j += g.trap.sample(t_rel, Watts(w)).0;
        g.series.push(t_rel, g.j);
    }
    if gpus.is_empty() {
        return Err(ParseError::new(hl, "rows", "no samples after the header".into()).into());
    }
    let start = t0.unwrap_or(0.0);
    let id = t.content_hash().hex();
    let mut r = base_report(format!("imp-{id}"), source_name, ImportFormat::NvidiaSmi);
    r.started_at = rfc3339_utc(start.floor() as i64);
    r.duration_s = t_end;
    let mut series = Vec::new();
    for (key, g) in gpus {
        if let Some(from) = g.gap_from {
            gaps.push(Gap {
                domain: format!("gpu-{key}"),
                from_s: from,
                to_s: t_end,
                reason: "nvidia-smi reported no power reading".into(),
            });
        }
        if let Some(m) = &g.model {
            if !m.is_empty() {
                r.host.gpu_models.push(m.clone());
            }
        }
        r.energy.domains.push(DomainEnergy {
            name: format!("gpu-{key}"),
            kind: DomainKind::Gpu,
            joules: g.j,
            source: format!("nvidia-smi log ({pw_name})").into(),
            method: Method::Power,
            counted_in_total: true,
            device: g.model.filter(|m| !m.is_empty()),
            avg_power_w: None,
            joules_low: None,
            joules_high: None,
            range_basis: None,
        });
        series.push(g.series);
    }
    if !gaps.is_empty() {
        r.warnings.push(format!(
            "{} interval(s) without a power reading: their energy is unknown, not counted",
            gaps.len()
        ));
    }
    r.energy.gaps = gaps;
    r.warnings.push(format!(
        "nvidia-smi timestamps carry no time zone: taken as UTC; {pw_name} is integrated by the trapezoid rule per GPU"
    ));
    r.warnings
        .extend(skipped_warning(t.skipped(), t.header().len()));
    r.timeline = timeline_of(&series);
    finish_energy(&mut r);
    Ok(r)
}
