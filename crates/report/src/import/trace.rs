//! wattprint's own CSV trace (`t_s,domain,unit,value`): counters and power rows.

use super::*;

/// wattprint's CSV trace: `#key: value` metadata lines, then
/// `t_s,domain,kind,method,counted,unit,value` (kind, method, counted optional).
pub(super) fn trace(
    input: &str,
    source_name: &str,
    id: &str,
    bad_rows: BadRows,
) -> Result<RunReport, ParseError> {
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut body = String::new();
    for l in input.lines() {
        let lt = l.trim_start_matches('\u{feff}');
        if let Some(m) = lt.strip_prefix('#') {
            if let Some((k, v)) = m.split_once(':') {
                meta.insert(k.trim().to_string(), v.trim().to_string());
            }
            // Keep line numbers right: comment lines become empty lines, which the CSV reader skips.
            body.push('\n');
        } else {
            body.push_str(lt);
            body.push('\n');
        }
    }
    let offset = body.len() - body.trim_start_matches('\n').len();
    let t = read_table(body.trim_start_matches('\n'), "header", bad_rows)
        .map_err(|e| e.shifted(offset))?;
    let lineno = |l: usize| l + offset;
    let (tc, dc, uc, vc) = (
        t.need("t_s", "header").map_err(|e| e.shifted(offset))?,
        t.need("domain", "header").map_err(|e| e.shifted(offset))?,
        t.need("unit", "header").map_err(|e| e.shifted(offset))?,
        t.need("value", "header").map_err(|e| e.shifted(offset))?,
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
        t_s: Vec<f64>,
        cum: Vec<f64>,
        last_t: f64,
    }
    let mut doms: Vec<(String, Dom)> = Vec::new();
    let mut t_end = 0.0f64;
    for (line, rec) in &t.rows {
        let line = lineno(*line);
        let ts = number(field(rec, tc), line, "t_s")?;
        if !(0.0..=1e10).contains(&ts) {
            return Err(ParseError::new(
                line,
                "t_s",
                format!("{ts} s is outside 0..1e10 s"),
            ));
        }
        let name = field(rec, dc).to_string();
        if name.is_empty() {
            return Err(ParseError::new(line, "domain", "empty domain name".into()));
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
                ))
            }
        };
        let pos = match doms.iter().position(|(n, _)| *n == name) {
            Some(p) => p,
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
                        ))
                    }
                };
                doms.push((
                    name.clone(),
                    Dom {
                        kind,
                        method,
                        counted,
                        unit_j,
                        trap: Trapezoid::new(),
                        first_j: None,
                        j: 0.0,
                        t_s: vec![],
                        cum: vec![],
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
            ));
        }
        if ts < d.last_t {
            return Err(ParseError::new(
                line,
                "t_s",
                format!("time goes backwards for domain `{name}`"),
            ));
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
                ));
            }
            let first = *d.first_j.get_or_insert(v);
            let e = v - first;
            if e < d.j {
                return Err(ParseError::new(line, "value", format!("counter of `{name}` goes backwards ({v} J after {} J): a trace holds unwrapped cumulative joules", d.j + first)));
            }
            d.j = e;
        } else {
            if !(0.0..=MAX_DEVICE_W).contains(&v) {
                return Err(ParseError::new(
                    line,
                    "value",
                    format!("{v} W is outside 0..{MAX_DEVICE_W} W"),
                ));
            }
            d.j += d.trap.sample(ts, Watts(v)).0;
        }
        d.t_s.push(ts);
        d.cum.push(d.j);
    }
    if doms.is_empty() {
        return Err(ParseError::new(
            lineno(1),
            "rows",
            "no samples after the header".into(),
        ));
    }
    let prefix = meta
        .get("id")
        .cloned()
        .unwrap_or_else(|| format!("imp-{id}"));
    let mut r = base_report(prefix, source_name, ImportFormat::Trace);
    if let Some(c) = meta.get("command") {
        r.command = c.split_whitespace().map(str::to_string).collect();
    }
    r.started_at = meta
        .get("started_at")
        .filter(|s| parse_rfc3339_s(s).is_some())
        .cloned()
        .unwrap_or_else(|| rfc3339_utc(0));
    if !meta.contains_key("started_at") {
        r.warnings
            .push("the trace has no `# started_at:` line: the run is dated 1970-01-01".into());
    }
    r.duration_s = match meta.get("duration_s") {
        Some(s) => number(s, 1, "duration_s")?,
        None => t_end,
    };
    if let Some(h) = meta.get("host") {
        r.host.hostname = h.clone();
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
        series.push(Cumulative {
            name,
            t_s: d.t_s,
            j: d.cum,
        });
    }
    r.timeline = timeline_of(&series);
    finish_energy(&mut r);
    r.warnings.extend(skipped_warning(&t, offset));
    Ok(r)
}
