//! wattprint's own CSV trace (`t_s,domain,unit,value`): counters and power rows.

use super::*;

/// The `# key: value` lines a trace's reader keeps (any other `#` line is read and dropped).
pub(super) const META_KEYS: &[&str] = &["id", "command", "started_at", "duration_s", "host"];

/// wattprint's CSV trace: `#key: value` metadata lines (anywhere, the last of a key kept),
/// then `t_s,domain,kind,method,counted,unit,value` (kind, method, counted optional). Read
/// row by row: a domain's rows may come in any order against other domains' (an exported
/// trace lists each domain in turn), each domain's energy accumulates as its rows arrive.
pub(super) fn trace<R: std::io::BufRead>(
    mut t: Rows<R>,
    source_name: &str,
) -> Result<RunReport, ImportError> {
    let (tc, dc, uc, vc) = (
        t.need("t_s", "header")?,
        t.need("domain", "header")?,
        t.need("unit", "header")?,
        t.need("value", "header")?,
    );
    let (kc, mc, cc) = (t.col("kind"), t.col("method"), t.col("counted"));

    struct Dom {
        kind: DomainKind,
        method: Method,
        counted: bool,
        unit_j: bool,
        trap: Trapezoid,
        first_j: Option<f64>,
        j: f64,
        series: Cumulative,
        last_t: f64,
    }
    // In first-seen order (the report's), with an index by name: a row finds its domain in
    // one lookup however many there are.
    let mut doms: Vec<(String, Dom)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut t_end = 0.0f64;
    while let Some((line, rec)) = t.next_row()? {
        let ts = number(field(rec, tc), line, "t_s")?;
        if !(0.0..=1e10).contains(&ts) {
            return Err(
                ParseError::new(line, "t_s", format!("{ts} s is outside 0..1e10 s")).into(),
            );
        }
        let name = field(rec, dc);
        if name.is_empty() {
            return Err(ParseError::new(line, "domain", "empty domain name".into()).into());
        }
        let unit = field(rec, uc);
        let unit_j = match unit {
            "J" => true,
            "W" => false,
            u => {
                return Err(ParseError::new(
                    line,
                    "unit",
                    format!("`{u}` is not J (cumulative energy counter) or W (power sample)"),
                )
                .into())
            }
        };
        let pos = match index.get(name) {
            Some(p) => *p,
            None => {
                let kind = match kc.map(|k| field(rec, k)).filter(|s| !s.is_empty()) {
                    Some(k) => serde_json::from_value(serde_json::Value::String(k.into())).map_err(|_| {
                        ParseError::new(line, "kind", format!("`{k}` is not a domain kind (cpu-package, dram, gpu, node, ...)"))
                    })?,
                    None => DomainKind::Node,
                };
                let method = match mc.map(|m| field(rec, m)).filter(|s| !s.is_empty()) {
                    Some(m) => serde_json::from_value(serde_json::Value::String(m.into()))
                        .map_err(|_| {
                            ParseError::new(
                                line,
                                "method",
                                format!("`{m}` is not counter, power or model"),
                            )
                        })?,
                    None if unit_j => Method::Counter,
                    None => Method::Power,
                };
                let counted = match cc.map(|c| field(rec, c)).filter(|s| !s.is_empty()) {
                    Some("true" | "1" | "yes") | None => true,
                    Some("false" | "0" | "no") => false,
                    Some(o) => {
                        return Err(ParseError::new(
                            line,
                            "counted",
                            format!("`{o}` is not true or false"),
                        )
                        .into())
                    }
                };
                index.insert(name.to_string(), doms.len());
                doms.push((
                    name.to_string(),
                    Dom {
                        kind,
                        method,
                        counted,
                        unit_j,
                        trap: Trapezoid::new(),
                        first_j: None,
                        j: 0.0,
                        series: Cumulative::new(name.to_string()),
                        last_t: f64::NEG_INFINITY,
                    },
                ));
                doms.len() - 1
            }
        };
        let d = &mut doms[pos].1;
        if d.unit_j != unit_j {
            return Err(ParseError::new(
                line,
                "unit",
                format!("domain `{name}` mixes J and W rows"),
            )
            .into());
        }
        if ts < d.last_t {
            return Err(ParseError::new(
                line,
                "t_s",
                format!("time goes backwards for domain `{name}`"),
            )
            .into());
        }
        d.last_t = ts;
        t_end = t_end.max(ts);
        let raw = field(rec, vc);
        if raw.is_empty() || raw.eq_ignore_ascii_case("nan") {
            d.trap.restart();
            continue;
        }
        let v = number(raw, line, "value")?;
        if unit_j {
            if !(0.0..=MAX_RUN_J).contains(&v) {
                return Err(ParseError::new(
                    line,
                    "value",
                    format!("{v} J is outside 0..{MAX_RUN_J} J"),
                )
                .into());
            }
            let first = *d.first_j.get_or_insert(v);
            let e = v - first;
            if e < d.j {
                return Err(ParseError::new(line, "value", format!("counter of `{name}` goes backwards ({v} J after {} J): a trace holds unwrapped cumulative joules", d.j + first)).into());
            }
            d.j = e;
        } else {
            if !(0.0..=MAX_DEVICE_W).contains(&v) {
                return Err(ParseError::new(
                    line,
                    "value",
                    format!("{v} W is outside 0..{MAX_DEVICE_W} W"),
                )
                .into());
            }
            d.j += d.trap.sample(ts, Watts(v)).0;
        }
        d.series.push(ts, d.j);
    }
    if doms.is_empty() {
        return Err(ParseError::new(
            t.header_line(),
            "rows",
            "no samples after the header".into(),
        )
        .into());
    }
    let meta = |k: &str| t.meta(k).map(str::to_string);
    let prefix = meta("id").unwrap_or_else(|| format!("imp-{}", t.content_hash().hex()));
    let mut r = base_report(prefix, source_name, ImportFormat::Trace);
    if let Some(c) = meta("command") {
        r.command = c.split_whitespace().map(str::to_string).collect();
    }
    r.started_at = meta("started_at")
        .filter(|s| parse_rfc3339_s(s).is_some())
        .unwrap_or_else(|| rfc3339_utc(0));
    if meta("started_at").is_none() {
        r.warnings
            .push("the trace has no `# started_at:` line: the run is dated 1970-01-01".into());
    }
    r.duration_s = match meta("duration_s") {
        Some(s) => number(&s, 1, "duration_s")?,
        None => t_end,
    };
    if let Some(h) = meta("host") {
        r.host.hostname = h;
    }
    let mut series = Vec::new();
    for (name, d) in doms {
        r.energy.domains.push(DomainEnergy {
            name: name.clone(),
            kind: d.kind,
            joules: d.j,
            source: format!("trace {source_name}").into(),
            method: d.method,
            counted_in_total: d.counted,
            device: None,
            avg_power_w: None,
            joules_low: None,
            joules_high: None,
            range_basis: None,
        });
        series.push(d.series);
    }
    r.timeline = timeline_of(&series);
    finish_energy(&mut r);
    r.warnings
        .extend(skipped_warning(t.skipped(), t.header().len()));
    Ok(r)
}
