//! OpenTelemetry traces in, energy on spans out (`POST /v1/traces`, `GET /v1/traces/{id}`).
//!
//! OTLP/HTTP bodies, protobuf (`application/x-protobuf`) or JSON (`application/json`), are
//! decoded into the few fields the agent needs: ids, parent, name, times and the GenAI
//! semantic conventions' attributes (`gen_ai.operation.name`, `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`). The protobuf messages are
//! declared here as the subset of `opentelemetry/proto/collector/trace/v1` and
//! `trace/v1/trace.proto` that is read (field numbers from those files), decoded by `prost`;
//! unknown fields are skipped by the wire format.
//!
//! Energy: the spans that have no child in their trace (LLM calls, tool calls: the work)
//! become attribution spans in the agent's ledger; a parent's energy is the sum of its
//! children's (rolled up the tree), so every joule of a trace is counted once and the
//! trace's total is the sum of its leaves. A child arriving after its parent was taken as
//! a leaf makes both attribution spans: they share their time, still counted once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Traces kept at most (the oldest forgotten first, counted).
pub const MAX_TRACES: usize = 10_000;
/// Spans kept per trace at most (further ones refused, counted).
pub const MAX_SPANS_PER_TRACE: usize = 10_000;
/// Spans accepted in one export at most (larger exports are refused whole: 413).
pub const MAX_SPANS_PER_EXPORT: usize = 10_000;

/// The OTLP protobuf messages, as far as they are read and written back out on export.
///
/// Field numbers from opentelemetry-proto (github.com/open-telemetry/opentelemetry-proto,
/// v1 of `opentelemetry/proto/collector/trace/v1/trace_service.proto`,
/// `trace/v1/trace.proto`, `resource/v1/resource.proto` and `common/v1/common.proto`).
/// Fields not declared (events, links, trace state, flags, array and map attribute values)
/// are skipped when read, so they are not passed on by the span export.
pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstrumentationScope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        /// `SpanKind`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(string, tag = "2")]
        pub message: String,
        /// `StatusCode`: 0 unset, 1 ok, 2 error.
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value", tags = "1, 2, 3, 4, 7")]
        pub value: Option<Value>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        StringValue(String),
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        #[prost(int64, tag = "3")]
        IntValue(i64),
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        #[prost(bytes = "vec", tag = "7")]
        BytesValue(Vec<u8>),
    }

    impl KeyValue {
        /// A key with a value.
        pub fn new(key: &str, v: Value) -> KeyValue {
            KeyValue {
                key: key.to_string(),
                value: Some(AnyValue { value: Some(v) }),
            }
        }
    }
}

/// OTLP/JSON (the protobuf JSON mapping: camelCase, hex ids, 64-bit numbers as strings).
mod js {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Export {
        #[serde(default)]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceSpans {
        #[serde(default)]
        pub resource: Option<Resource>,
        #[serde(default)]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Deserialize)]
    pub struct Resource {
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ScopeSpans {
        #[serde(default)]
        pub scope: Option<Scope>,
        #[serde(default)]
        pub spans: Vec<Span>,
    }
    #[derive(Deserialize)]
    pub struct Scope {
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub version: String,
    }
    #[derive(Deserialize, Default)]
    pub struct Status {
        #[serde(default)]
        pub message: String,
        #[serde(default)]
        pub code: Num,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Span {
        #[serde(default)]
        pub trace_id: String,
        #[serde(default)]
        pub span_id: String,
        #[serde(default)]
        pub parent_span_id: String,
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub start_time_unix_nano: Num,
        #[serde(default)]
        pub end_time_unix_nano: Num,
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
        /// The JSON mapping writes enums as integers.
        #[serde(default)]
        pub kind: Num,
        #[serde(default)]
        pub status: Option<Status>,
    }
    #[derive(Deserialize)]
    pub struct KeyValue {
        pub key: String,
        #[serde(default)]
        pub value: AnyValue,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct AnyValue {
        pub string_value: Option<String>,
        pub bool_value: Option<bool>,
        pub int_value: Option<Num>,
        pub double_value: Option<f64>,
    }
    /// A 64-bit integer as the JSON mapping writes it: a string, or a number.
    #[derive(Deserialize, Default)]
    #[serde(untagged)]
    pub enum Num {
        Text(String),
        Int(u64),
        Float(f64),
        #[default]
        Missing,
    }
    impl Num {
        /// An enum's number (`kind`, `status.code`); 0 (unspecified) when absent or odd.
        pub fn as_enum(&self) -> i32 {
            self.as_f64()
                .filter(|v| v.fract() == 0.0 && (0.0..=i32::MAX as f64).contains(v))
                .map_or(0, |v| v as i32)
        }
        pub fn as_f64(&self) -> Option<f64> {
            match self {
                Num::Text(s) => s.trim().parse().ok(),
                Num::Int(i) => Some(*i as f64),
                Num::Float(f) => Some(*f),
                Num::Missing => None,
            }
        }
    }
}

/// One span as the agent keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSpan {
    /// Lower-case hex, 32 digits.
    pub trace_id: String,
    /// Lower-case hex, 16 digits.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub start_unix_s: f64,
    pub end_unix_s: f64,
    /// `gen_ai.operation.name` (`chat`, `text_completion`, `embeddings`, `invoke_agent`,
    /// `execute_tool`, ...).
    pub operation: Option<String>,
    /// `gen_ai.request.model` (else `gen_ai.response.model`).
    pub model: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// `SpanKind` as received (trace.proto field 6), passed on by the export.
    pub kind: i32,
    /// The attributes as received, at most [`MAX_ATTRIBUTES_KEPT`], passed on by the export.
    pub attributes: Vec<pb::KeyValue>,
    pub status: Option<pb::Status>,
    /// The resource and instrumentation scope the span came with (shared by the spans of one
    /// `ScopeSpans`).
    pub origin: Arc<Origin>,
}

/// Attributes kept per span for the export at most: the OpenTelemetry SDKs' default
/// attribute count limit (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, 128).
pub const MAX_ATTRIBUTES_KEPT: usize = 128;

/// Where spans came from: passed on by the export so that backends group them as sent
/// (Jaeger names the service after the resource's `service.name`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    pub resource: Option<pb::Resource>,
    pub scope: Option<pb::InstrumentationScope>,
}

/// A span's own fields besides its ids, times and GenAI attributes.
struct Extra {
    name: String,
    kind: i32,
    attributes: Vec<pb::KeyValue>,
    status: Option<pb::Status>,
    origin: Arc<Origin>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why an export was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("not an OTLP ExportTraceServiceRequest ({0}): send OTLP/HTTP protobuf (Content-Type: application/x-protobuf) or JSON (application/json)")]
    Malformed(String),
    #[error("{0} spans in one export: send at most {max} per request", max = MAX_SPANS_PER_EXPORT)]
    TooManySpans(usize),
}

struct Attrs {
    operation: Option<String>,
    model: Option<String>,
    response_model: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl Attrs {
    fn new() -> Attrs {
        Attrs {
            operation: None,
            model: None,
            response_model: None,
            input_tokens: None,
            output_tokens: None,
        }
    }
    fn text(&mut self, key: &str, v: &str) {
        let v = Some(crate::labels::cut(v));
        match key {
            "gen_ai.operation.name" => self.operation = v,
            "gen_ai.request.model" => self.model = v,
            "gen_ai.response.model" => self.response_model = v,
            _ => {}
        }
    }
    fn int(&mut self, key: &str, v: f64) {
        let v = (v.is_finite() && v >= 0.0 && v <= crate::state::MAX_SPAN_TOKENS as f64)
            .then_some(v as u64);
        match key {
            "gen_ai.usage.input_tokens" => self.input_tokens = v,
            "gen_ai.usage.output_tokens" => self.output_tokens = v,
            _ => {}
        }
    }
}

fn span_of(
    trace_id: String,
    span_id: String,
    parent: String,
    start_ns: f64,
    end_ns: f64,
    a: Attrs,
    extra: Extra,
) -> TraceSpan {
    TraceSpan {
        trace_id,
        span_id,
        parent_span_id: (!parent.is_empty() && parent.chars().any(|c| c != '0')).then_some(parent),
        name: crate::labels::cut(&extra.name),
        start_unix_s: start_ns / 1e9,
        end_unix_s: end_ns / 1e9,
        operation: a.operation,
        model: a.model.or(a.response_model),
        input_tokens: a.input_tokens,
        output_tokens: a.output_tokens,
        kind: extra.kind,
        attributes: extra.attributes,
        status: extra.status,
        origin: extra.origin,
    }
}

/// Decode an OTLP/HTTP protobuf export.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<TraceSpan>, DecodeError> {
    use prost::Message;
    let req = pb::ExportTraceServiceRequest::decode(body)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let n: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    if n > MAX_SPANS_PER_EXPORT {
        return Err(DecodeError::TooManySpans(n));
    }
    let mut out = Vec::with_capacity(n);
    let scopes = req.resource_spans.into_iter().flat_map(|r| {
        let resource = r.resource;
        r.scope_spans.into_iter().map(move |ss| {
            let origin = Arc::new(Origin {
                resource: resource.clone(),
                scope: ss.scope,
            });
            (origin, ss.spans)
        })
    });
    for (origin, spans) in scopes {
        for mut s in spans {
            let mut a = Attrs::new();
            for kv in &s.attributes {
                match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(pb::Value::StringValue(t)) => a.text(&kv.key, t),
                    Some(pb::Value::IntValue(i)) => a.int(&kv.key, *i as f64),
                    Some(pb::Value::DoubleValue(d)) => a.int(&kv.key, *d),
                    _ => {}
                }
            }
            // An attribute whose value type is not declared above (array, map) decodes empty.
            s.attributes
                .retain(|kv| kv.value.as_ref().is_some_and(|v| v.value.is_some()));
            s.attributes.truncate(MAX_ATTRIBUTES_KEPT);
            let extra = Extra {
                name: s.name,
                kind: s.kind,
                attributes: s.attributes,
                status: s.status,
                origin: Arc::clone(&origin),
            };
            out.push(span_of(
                hex(&s.trace_id),
                hex(&s.span_id),
                hex(&s.parent_span_id),
                s.start_time_unix_nano as f64,
                s.end_time_unix_nano as f64,
                a,
                extra,
            ));
        }
    }
    Ok(out)
}

/// Decode an OTLP/HTTP JSON export.
pub fn decode_json(body: &[u8]) -> Result<Vec<TraceSpan>, DecodeError> {
    let req: js::Export =
        serde_json::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let n: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    if n > MAX_SPANS_PER_EXPORT {
        return Err(DecodeError::TooManySpans(n));
    }
    let mut out = Vec::with_capacity(n);
    let scopes = req.resource_spans.into_iter().flat_map(|r| {
        let resource = r.resource.map(|res| pb::Resource {
            attributes: res.attributes.iter().filter_map(js_attribute).collect(),
        });
        r.scope_spans.into_iter().map(move |ss| {
            let origin = Arc::new(Origin {
                resource: resource.clone(),
                scope: ss.scope.map(|sc| pb::InstrumentationScope {
                    name: sc.name,
                    version: sc.version,
                }),
            });
            (origin, ss.spans)
        })
    });
    for (origin, spans) in scopes {
        for s in spans {
            let mut a = Attrs::new();
            for kv in &s.attributes {
                if let Some(t) = &kv.value.string_value {
                    a.text(&kv.key, t);
                } else if let Some(i) = kv.value.int_value.as_ref().and_then(js::Num::as_f64) {
                    a.int(&kv.key, i);
                } else if let Some(d) = kv.value.double_value {
                    a.int(&kv.key, d);
                }
            }
            let mut attributes: Vec<pb::KeyValue> =
                s.attributes.iter().filter_map(js_attribute).collect();
            attributes.truncate(MAX_ATTRIBUTES_KEPT);
            let extra = Extra {
                name: s.name,
                kind: s.kind.as_enum(),
                attributes,
                status: s.status.map(|st| pb::Status {
                    message: st.message,
                    code: st.code.as_enum(),
                }),
                origin: Arc::clone(&origin),
            };
            out.push(span_of(
                s.trace_id.to_ascii_lowercase(),
                s.span_id.to_ascii_lowercase(),
                s.parent_span_id.to_ascii_lowercase(),
                s.start_time_unix_nano.as_f64().unwrap_or(f64::NAN),
                s.end_time_unix_nano.as_f64().unwrap_or(f64::NAN),
                a,
                extra,
            ));
        }
    }
    Ok(out)
}

/// One OTLP/JSON attribute as its protobuf message; `None` for the value types not kept
/// (arrays, maps, bytes, or none).
fn js_attribute(kv: &js::KeyValue) -> Option<pb::KeyValue> {
    let v = &kv.value;
    let value = if let Some(t) = &v.string_value {
        pb::Value::StringValue(t.clone())
    } else if let Some(b) = v.bool_value {
        pb::Value::BoolValue(b)
    } else if let Some(i) = &v.int_value {
        match i {
            js::Num::Text(t) => pb::Value::IntValue(t.trim().parse().ok()?),
            js::Num::Int(i) => pb::Value::IntValue(i64::try_from(*i).ok()?),
            js::Num::Float(f) if f.fract() == 0.0 => pb::Value::IntValue(*f as i64),
            _ => return None,
        }
    } else {
        pb::Value::DoubleValue(v.double_value?)
    };
    Some(pb::KeyValue::new(&kv.key, value))
}

/// Why a span of an export was not kept.
fn span_problem(s: &TraceSpan) -> Option<&'static str> {
    let is_hex = |t: &str, n: usize| t.len() == n && t.chars().all(|c| c.is_ascii_hexdigit());
    if !is_hex(&s.trace_id, 32) || s.trace_id.chars().all(|c| c == '0') {
        return Some("traceId is not 16 bytes (32 hex digits), or is all zero");
    }
    if !is_hex(&s.span_id, 16) {
        return Some("spanId is not 8 bytes (16 hex digits)");
    }
    if s.parent_span_id.as_deref().is_some_and(|p| !is_hex(p, 16)) {
        return Some("parentSpanId is not 8 bytes (16 hex digits)");
    }
    if !(s.start_unix_s.is_finite() && s.end_unix_s.is_finite() && s.end_unix_s >= s.start_unix_s) {
        return Some("startTimeUnixNano/endTimeUnixNano missing or end before start");
    }
    None
}

#[derive(Clone, Debug)]
struct Kept {
    span: TraceSpan,
    /// The ledger id of its attribution span, when it was taken as a leaf.
    ledger_id: Option<u64>,
    /// Why the ledger refused it, when it was a leaf the ledger would not attribute: it has
    /// no energy of its own, and its ancestors' sums are partial.
    refused: Option<String>,
    /// Exported with its energy (or given up), or not to be exported at all.
    exported: bool,
}

/// Where one ledger entry stands, as the span export sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attribution {
    /// Final: energy (J) and carbon (gCO2e).
    Settled { energy_j: f64, carbon_g: f64 },
    /// Waiting for its time to be settled.
    Pending,
    /// Neither pending nor settled: dropped by the ledger (buffer full) or rotated out of its
    /// recent list before it was read. It will never settle.
    Gone,
}

impl Attribution {
    fn energy(self) -> Option<(f64, f64)> {
        match self {
            Attribution::Settled { energy_j, carbon_g } => Some((energy_j, carbon_g)),
            _ => None,
        }
    }
    /// A parent's state from its own and a child's: gone wins (never settles), then pending.
    fn add(self, child: Attribution) -> Attribution {
        use Attribution::{Gone, Pending, Settled};
        match (self, child) {
            (Gone, _) | (_, Gone) => Gone,
            (Pending, _) | (_, Pending) => Pending,
            (
                Settled { energy_j, carbon_g },
                Settled {
                    energy_j: cj,
                    carbon_g: cg,
                },
            ) => Settled {
                energy_j: energy_j + cj,
                carbon_g: carbon_g + cg,
            },
        }
    }
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Ingested {
    pub received: usize,
    pub accepted: usize,
    /// Spans refused (bad ids or times), with the first reasons.
    pub refused: usize,
    pub errors: Vec<String>,
    /// Leaves queued for attribution.
    pub attributed: usize,
    /// Leaves the ledger refused (their time already settled, or out of range).
    pub attribution_refused: usize,
}

/// What was lost, counted.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TraceLosses {
    pub traces_forgotten: u64,
    pub spans_over_trace_cap: u64,
    pub spans_refused: u64,
    pub exports_refused: u64,
}

/// Spans whose energy is settled, ready for the OTLP span export, and what was given up.
#[derive(Debug, Default)]
pub struct Settled {
    /// Each span with its resource and scope, the `wattprint.*` attributes added.
    pub spans: Vec<(Arc<Origin>, pb::Span)>,
    /// Spans that will never be exported: their trace was forgotten ([`MAX_TRACES`]) before
    /// they settled, or an attribution they depend on is [`Attribution::Gone`].
    pub given_up: u64,
}

/// The traces received, bounded ([`MAX_TRACES`] x [`MAX_SPANS_PER_TRACE`]).
#[derive(Default)]
pub struct TraceTable {
    traces: HashMap<String, BTreeMap<String, Kept>>,
    order: VecDeque<String>,
    pub losses: TraceLosses,
    /// Spans are kept for the export until settled ([`TraceTable::exporting`]).
    export: bool,
    /// Traces holding spans not exported yet (a subset of `traces`).
    to_export: BTreeSet<String>,
    /// Spans given up since the last [`TraceTable::take_settled`].
    given_up: u64,
}

/// The spans' own attribution, the energy rolled up the span tree (the span's own: its
/// ledger entry's, 0 for a parent or a refused leaf; plus its children's), and the spans
/// whose sum is partial (a refused leaf in their subtree, themselves included).
type Rolled<'a> = (
    HashMap<&'a str, Attribution>,
    HashMap<&'a str, Attribution>,
    HashSet<&'a str>,
);

/// See [`Rolled`].
fn rolled_up<'a>(
    spans: &'a BTreeMap<String, Kept>,
    lookup: &impl Fn(u64, &TraceSpan) -> Attribution,
) -> Rolled<'a> {
    let own: HashMap<&str, Attribution> = spans
        .iter()
        .map(|(id, k)| {
            let e = match k.ledger_id {
                Some(l) => lookup(l, &k.span),
                None => Attribution::Settled {
                    energy_j: 0.0,
                    carbon_g: 0.0,
                },
            };
            (id.as_str(), e)
        })
        .collect();
    let children: HashMap<&str, Vec<&str>> = spans.iter().fold(HashMap::new(), |mut m, (id, k)| {
        if let Some(p) = k.span.parent_span_id.as_deref() {
            if spans.contains_key(p) {
                m.entry(p).or_default().push(id.as_str());
            }
        }
        m
    });
    let refused: HashSet<&str> = spans
        .iter()
        .filter(|(_, k)| k.refused.is_some())
        .map(|(id, _)| id.as_str())
        .collect();
    fn total<'a>(
        id: &'a str,
        own: &HashMap<&'a str, Attribution>,
        children: &HashMap<&'a str, Vec<&'a str>>,
        refused: &HashSet<&'a str>,
        depth: usize,
    ) -> (Attribution, bool) {
        let mut t = own.get(id).copied().unwrap_or(Attribution::Gone);
        let mut partial = refused.contains(id);
        // Parent links from a client can form a cycle: a tree is at most as deep as the
        // spans kept.
        if depth > MAX_SPANS_PER_TRACE {
            return (t, partial);
        }
        for c in children.get(id).into_iter().flatten() {
            let (a, p) = total(c, own, children, refused, depth + 1);
            t = t.add(a);
            partial |= p;
        }
        (t, partial)
    }
    let mut partial = HashSet::new();
    let rolled = spans
        .keys()
        .map(|id| {
            let (a, p) = total(id, &own, &children, &refused, 0);
            if p {
                partial.insert(id.as_str());
            }
            (id.as_str(), a)
        })
        .collect();
    (own, rolled, partial)
}

/// Parse lower-case hex ids back into bytes (they were validated on ingest).
fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// What an exported span says about its energy.
enum Enrich<'a> {
    /// A leaf's share of the measured energy, J and gCO2e.
    Attributed(f64, f64),
    /// A parent's: its children's sum, J and gCO2e; `partial` when a refused leaf is
    /// among its descendants.
    RolledUp(f64, f64, bool),
    /// A leaf the ledger refused: no energy, the reason.
    Refused(&'a str),
}

/// The span as exported: its fields as received, the `wattprint.*` attributes replacing any
/// the client sent under those names.
fn enriched(s: &TraceSpan, e: Enrich<'_>, method: &str) -> pb::Span {
    let mut attributes: Vec<pb::KeyValue> = s
        .attributes
        .iter()
        .filter(|kv| !kv.key.starts_with("wattprint."))
        .cloned()
        .collect();
    let text = |k: &str, v: &str| pb::KeyValue::new(k, pb::Value::StringValue(v.into()));
    let measured = |j: f64, g: f64| {
        [
            pb::KeyValue::new(ENERGY_ATTRIBUTE, pb::Value::DoubleValue(j)),
            pb::KeyValue::new(CARBON_ATTRIBUTE, pb::Value::DoubleValue(g)),
            text(METHOD_ATTRIBUTE, method),
        ]
    };
    match e {
        Enrich::Attributed(j, g) => {
            attributes.extend(measured(j, g));
            attributes.push(text(ATTRIBUTION_ATTRIBUTE, "attributed"));
        }
        Enrich::RolledUp(j, g, partial) => {
            attributes.extend(measured(j, g));
            attributes.push(text(ATTRIBUTION_ATTRIBUTE, "rolled_up"));
            if partial {
                attributes.push(pb::KeyValue::new(
                    PARTIAL_ATTRIBUTE,
                    pb::Value::BoolValue(true),
                ));
            }
        }
        Enrich::Refused(why) => {
            attributes.push(text(ATTRIBUTION_ATTRIBUTE, "refused"));
            attributes.push(text(REFUSED_REASON_ATTRIBUTE, why));
        }
    }
    pb::Span {
        trace_id: unhex(&s.trace_id),
        span_id: unhex(&s.span_id),
        parent_span_id: s.parent_span_id.as_deref().map(unhex).unwrap_or_default(),
        name: s.name.clone(),
        kind: s.kind,
        start_time_unix_nano: (s.start_unix_s * 1e9).round() as u64,
        end_time_unix_nano: (s.end_unix_s * 1e9).round() as u64,
        attributes,
        status: s.status.clone(),
    }
}

/// The span's energy with its descendants', J (double attribute on exported spans).
pub const ENERGY_ATTRIBUTE: &str = "wattprint.energy_j";
/// The span's carbon with its descendants', gCO2e (double).
pub const CARBON_ATTRIBUTE: &str = "wattprint.carbon_g";
/// `measured` (every counted domain is a hardware counter or power reading) or `estimated`
/// (a counted domain is a utilisation model) (string).
pub const METHOD_ATTRIBUTE: &str = "wattprint.method";
/// `attributed` (a leaf: its share of the measured energy), `rolled_up` (a parent: the sum
/// of its children's) or `refused` (a leaf the agent would not attribute: no
/// `wattprint.energy_j`, `wattprint.carbon_g` nor `wattprint.method` on it) (string).
pub const ATTRIBUTION_ATTRIBUTE: &str = "wattprint.attribution";
/// Why a `refused` leaf was (string), e.g. it ended before the agent's settled horizon
/// (`--settle-lag` shorter than the client's export delay).
pub const REFUSED_REASON_ATTRIBUTE: &str = "wattprint.refused_reason";
/// `true` on a parent whose sum leaves out a refused leaf below it (bool; absent when the
/// sum is whole).
pub const PARTIAL_ATTRIBUTE: &str = "wattprint.partial";

/// The OTLP export request for `spans`, grouped by their resource and scope as received.
pub fn encode_export(spans: Vec<(Arc<Origin>, pb::Span)>) -> Vec<u8> {
    use prost::Message;
    let mut groups: Vec<(Arc<Origin>, Vec<pb::Span>)> = Vec::new();
    for (origin, span) in spans {
        match groups
            .iter_mut()
            .find(|(o, _)| Arc::ptr_eq(o, &origin) || **o == *origin)
        {
            Some((_, list)) => list.push(span),
            None => groups.push((origin, vec![span])),
        }
    }
    pb::ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(o, spans)| pb::ResourceSpans {
                resource: o.resource.clone(),
                scope_spans: vec![pb::ScopeSpans {
                    scope: o.scope.clone(),
                    spans,
                }],
            })
            .collect(),
    }
    .encode_to_vec()
}

impl TraceTable {
    /// A table that keeps each span until its energy is settled and
    /// [`TraceTable::take_settled`] hands it to the OTLP span export.
    pub fn exporting() -> TraceTable {
        TraceTable {
            export: true,
            ..TraceTable::default()
        }
    }

    /// Keep `spans` and queue the leaves for attribution through `attribute(report)`, which
    /// returns the ledger id, or why the ledger refused the span.
    pub fn ingest(
        &mut self,
        spans: Vec<TraceSpan>,
        mut attribute: impl FnMut(crate::state::SpanReport) -> Result<u64, String>,
    ) -> Ingested {
        let mut r = Ingested {
            received: spans.len(),
            ..Ingested::default()
        };
        // Parents named in this export: their spans are not leaves.
        let parents: std::collections::HashSet<(String, String)> = spans
            .iter()
            .filter_map(|s| s.parent_span_id.clone().map(|p| (s.trace_id.clone(), p)))
            .collect();
        for s in spans {
            if let Some(e) = span_problem(&s) {
                r.refused += 1;
                self.losses.spans_refused += 1;
                if r.errors.len() < 20 {
                    r.errors.push(format!("span {}: {e}", s.span_id));
                }
                continue;
            }
            if !self.traces.contains_key(&s.trace_id) {
                if self.order.len() >= MAX_TRACES {
                    if let Some(old) = self.order.pop_front() {
                        if let Some(t) = self.traces.remove(&old) {
                            self.given_up += t.values().filter(|k| !k.exported).count() as u64;
                        }
                        self.to_export.remove(&old);
                        self.losses.traces_forgotten += 1;
                    }
                }
                self.order.push_back(s.trace_id.clone());
            }
            let trace = self.traces.entry(s.trace_id.clone()).or_default();
            if trace.len() >= MAX_SPANS_PER_TRACE && !trace.contains_key(&s.span_id) {
                self.losses.spans_over_trace_cap += 1;
                r.refused += 1;
                continue;
            }
            let has_child = parents.contains(&(s.trace_id.clone(), s.span_id.clone()))
                || trace
                    .values()
                    .any(|k| k.span.parent_span_id.as_deref() == Some(&s.span_id));
            let (ledger_id, refused) = if has_child {
                (None, None)
            } else {
                let mut labels = BTreeMap::new();
                labels.insert(
                    "operation".to_string(),
                    s.operation.clone().unwrap_or_else(|| "span".into()),
                );
                if let Some(m) = &s.model {
                    labels.insert("model".to_string(), m.clone());
                }
                let id = attribute(crate::state::SpanReport {
                    start_unix_s: s.start_unix_s,
                    end_unix_s: s.end_unix_s,
                    tokens: s.output_tokens,
                    labels,
                });
                match id {
                    Ok(id) => {
                        r.attributed += 1;
                        (Some(id), None)
                    }
                    Err(why) => {
                        r.attribution_refused += 1;
                        (None, Some(why))
                    }
                }
            };
            r.accepted += 1;
            // A span sent again (a client's retry) is exported once: it keeps its flag.
            let exported = trace.get(&s.span_id).map_or(!self.export, |k| k.exported);
            if !exported {
                self.to_export.insert(s.trace_id.clone());
            }
            trace.insert(
                s.span_id.clone(),
                Kept {
                    span: s,
                    ledger_id,
                    refused,
                    exported,
                },
            );
        }
        r
    }

    /// Up to `max` spans whose energy is settled (their own and every descendant's), not
    /// handed out before, enriched with the `wattprint.*` attributes (`method`: see
    /// [`METHOD_ATTRIBUTE`]); each span is handed out once. `lookup(ledger_id, span)` says
    /// where a leaf's ledger entry stands.
    pub fn take_settled(
        &mut self,
        lookup: impl Fn(u64, &TraceSpan) -> Attribution,
        method: &str,
        max: usize,
    ) -> Settled {
        let mut out = Settled {
            given_up: std::mem::take(&mut self.given_up),
            ..Settled::default()
        };
        let mut done = Vec::new();
        for trace_id in &self.to_export {
            if out.spans.len() >= max {
                break;
            }
            let Some(spans) = self.traces.get_mut(trace_id) else {
                done.push(trace_id.clone());
                continue;
            };
            let (_, rolled, partial) = rolled_up(spans, &lookup);
            let partial: HashSet<String> = partial.into_iter().map(str::to_string).collect();
            let ready: Vec<(String, Attribution)> = rolled
                .into_iter()
                .filter(|(id, a)| {
                    *a != Attribution::Pending && spans.get(*id).is_some_and(|k| !k.exported)
                })
                .map(|(id, a)| (id.to_string(), a))
                .take(max - out.spans.len())
                .collect();
            for (id, a) in ready {
                let Some(k) = spans.get_mut(&id) else {
                    continue;
                };
                k.exported = true;
                let e = match (&k.refused, a.energy()) {
                    (Some(why), _) => Enrich::Refused(why),
                    (None, Some((j, g))) if k.ledger_id.is_some() => Enrich::Attributed(j, g),
                    (None, Some((j, g))) => Enrich::RolledUp(j, g, partial.contains(&id)),
                    (None, None) => {
                        out.given_up += 1;
                        continue;
                    }
                };
                out.spans
                    .push((Arc::clone(&k.span.origin), enriched(&k.span, e, method)));
            }
            if spans.values().all(|k| k.exported) {
                done.push(trace_id.clone());
            }
        }
        for t in done {
            self.to_export.remove(&t);
        }
        out
    }

    /// Spans kept, not exported yet (bounded by the table's caps).
    pub fn awaiting_export(&self) -> usize {
        self.to_export
            .iter()
            .filter_map(|t| self.traces.get(t))
            .map(|spans| spans.values().filter(|k| !k.exported).count())
            .sum()
    }

    /// The trace's spans with their energy rolled up the tree; `energy(ledger_id)` gives a
    /// settled span's (J, g), `None` while pending or when rotated out.
    pub fn report(
        &self,
        trace_id: &str,
        energy: impl Fn(u64) -> Option<(f64, f64)>,
    ) -> Option<serde_json::Value> {
        let spans = self.traces.get(trace_id)?;
        let lookup = |l: u64, _: &TraceSpan| match energy(l) {
            Some((energy_j, carbon_g)) => Attribution::Settled { energy_j, carbon_g },
            None => Attribution::Pending,
        };
        let (own, rolled, partial) = rolled_up(spans, &lookup);
        let pending = own.values().filter(|a| a.energy().is_none()).count();
        let refused = spans.values().filter(|k| k.refused.is_some()).count();
        let mut list = Vec::new();
        let (mut trace_j, mut trace_g) = (0.0, 0.0);
        for (id, k) in spans {
            let s = &k.span;
            // A refused leaf has no energy: null, not 0.
            let total = rolled
                .get(id.as_str())
                .and_then(|a| a.energy())
                .filter(|_| k.refused.is_none());
            let o = own
                .get(id.as_str())
                .and_then(|a| a.energy())
                .filter(|_| k.refused.is_none());
            if k.ledger_id.is_some() {
                if let Some((j, g)) = o {
                    trace_j += j;
                    trace_g += g;
                }
            }
            list.push(serde_json::json!({
                "span_id": id,
                "parent_span_id": s.parent_span_id,
                "name": s.name,
                "operation": s.operation,
                "model": s.model,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "start_unix_s": s.start_unix_s,
                "end_unix_s": s.end_unix_s,
                "energy_j": total.map(|e| e.0),
                "carbon_g": total.map(|e| e.1),
                "own_energy_j": o.map(|e| e.0),
                "method": match (&k.refused, k.ledger_id) {
                    (Some(_), _) => "refused",
                    (None, Some(_)) => "attributed",
                    (None, None) => "rolled_up",
                },
                "refused_reason": k.refused,
                "partial": partial.contains(id.as_str()),
            }));
        }
        Some(serde_json::json!({
            "schema": "wattprint.trace/v1",
            "trace_id": trace_id,
            "status": if pending == 0 { "settled" } else { "pending" },
            "pending_spans": pending,
            "energy_j": (pending == 0).then_some(trace_j),
            "carbon_g": (pending == 0).then_some(trace_g),
            "refused_spans": refused,
            "partial": refused > 0,
            "spans": list,
            "basis": "spans without children are attributed their share of the measured energy; a parent's energy is the sum of its children's, so the trace's total counts each joule once",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn kv(key: &str, v: pb::Value) -> pb::KeyValue {
        pb::KeyValue {
            key: key.into(),
            value: Some(pb::AnyValue { value: Some(v) }),
        }
    }

    fn pb_span(id: u8, parent: Option<u8>, start: u64, end: u64, op: &str, out: i64) -> pb::Span {
        pb::Span {
            trace_id: vec![7; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("{op} {id}"),
            start_time_unix_nano: start * 1_000_000_000,
            end_time_unix_nano: end * 1_000_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", pb::Value::StringValue(op.into())),
                kv("gen_ai.request.model", pb::Value::StringValue("m".into())),
                kv("gen_ai.usage.output_tokens", pb::Value::IntValue(out)),
            ],
            ..Default::default()
        }
    }

    fn export(spans: Vec<pb::Span>) -> Vec<u8> {
        pb::ExportTraceServiceRequest {
            resource_spans: vec![pb::ResourceSpans {
                resource: Some(pb::Resource {
                    attributes: vec![kv(
                        "service.name",
                        pb::Value::StringValue("demo-agent".into()),
                    )],
                }),
                scope_spans: vec![pb::ScopeSpans {
                    scope: Some(pb::InstrumentationScope {
                        name: "demo".into(),
                        version: "1.0".into(),
                    }),
                    spans,
                }],
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn an_agent_task_rolls_up_so_each_joule_counts_once() {
        // invoke_agent 1 (0..10 s) > chat 2 (1..3), execute_tool 3 (3..4), chat 4 (4..8).
        let body = export(vec![
            pb_span(2, Some(1), 1001, 1003, "chat", 20),
            pb_span(3, Some(1), 1003, 1004, "execute_tool", 0),
            pb_span(4, Some(1), 1004, 1008, "chat", 40),
            pb_span(1, None, 1000, 1010, "invoke_agent", 0),
        ]);
        let spans = decode_protobuf(&body).unwrap();
        assert_eq!(spans[0].trace_id, "07".repeat(16));
        assert_eq!(spans[0].parent_span_id.as_deref(), Some("0101010101010101"));
        assert_eq!(spans[0].output_tokens, Some(20));
        let mut t = TraceTable::default();
        let mut queued = Vec::new();
        let r = t.ingest(spans, |rep| {
            queued.push(rep);
            Ok(queued.len() as u64)
        });
        assert_eq!((r.accepted, r.attributed), (4, 3));
        // Ledger stand-in: 10 J per second of each leaf.
        let j = |id: u64| {
            let s = &queued[id as usize - 1];
            let e = 10.0 * (s.end_unix_s - s.start_unix_s);
            Some((e, e / 1000.0))
        };
        let doc = t.report(&"07".repeat(16), j).unwrap();
        assert_eq!(doc["status"], "settled");
        assert_eq!(doc["energy_j"], 70.0);
        let root = doc["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["operation"] == "invoke_agent")
            .unwrap();
        assert_eq!(root["energy_j"], 70.0);
        assert_eq!(root["method"], "rolled_up");
        assert!(doc["spans"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["energy_j"].is_number()));
        // Pending while a leaf is not settled.
        let doc = t
            .report(&"07".repeat(16), |id| (id != 2).then_some((1.0, 0.0)))
            .unwrap();
        assert_eq!(doc["status"], "pending");
        assert!(doc["energy_j"].is_null());
    }

    /// A leaf the ledger refused (too late: it ended before the settled horizon) has no
    /// energy, in the export and at `GET /v1/traces/{id}`, and says why; its parent's sum is
    /// the others' and says it is partial; the trace's total is the attributed leaves'.
    #[test]
    fn a_refused_leaf_has_no_energy_and_its_parents_sum_is_partial() {
        const LATE: &str = "the span ended before the agent's settled horizon";
        let body = export(vec![
            pb_span(2, Some(1), 1001, 1003, "chat", 20),
            pb_span(3, Some(1), 1003, 1004, "execute_tool", 0),
            pb_span(4, Some(1), 1004, 1008, "chat", 40),
            pb_span(1, None, 1000, 1010, "invoke_agent", 0),
        ]);
        let mut t = TraceTable::exporting();
        let mut n = 0;
        // The ledger refuses the tool call (span 3); ids 1, 2 for chats 2 and 4.
        let r = t.ingest(decode_protobuf(&body).unwrap(), |rep| {
            if rep.labels["operation"] == "execute_tool" {
                return Err(LATE.into());
            }
            n += 1;
            Ok(n)
        });
        assert_eq!((r.accepted, r.attributed, r.attribution_refused), (4, 2, 1));
        // 20 J (0.02 g) for chat 2, 40 J (0.04 g) for chat 4.
        let e = |l: u64| (20.0 * l as f64, 0.02 * l as f64);
        let doc = t.report(&"07".repeat(16), |l| Some(e(l))).unwrap();
        assert_eq!(doc["status"], "settled");
        assert_eq!(doc["energy_j"], 60.0);
        assert_eq!(doc["refused_spans"], 1);
        assert_eq!(doc["partial"], true);
        let span = |id: &str| {
            doc["spans"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["span_id"] == id.repeat(8))
                .unwrap()
                .clone()
        };
        let tool = span("03");
        assert!(
            tool["energy_j"].is_null() && tool["carbon_g"].is_null(),
            "{tool}"
        );
        assert!(tool["own_energy_j"].is_null(), "{tool}");
        assert_eq!(tool["method"], "refused");
        assert_eq!(tool["refused_reason"], LATE);
        assert_eq!(tool["partial"], true);
        let root = span("01");
        assert_eq!(root["energy_j"], 60.0);
        assert_eq!(root["method"], "rolled_up");
        assert_eq!(root["partial"], true);
        let chat = span("02");
        assert_eq!(chat["energy_j"], 20.0);
        assert_eq!(chat["partial"], false);
        assert!(chat["refused_reason"].is_null());

        let settled = t.take_settled(
            |l, _| {
                let (energy_j, carbon_g) = e(l);
                Attribution::Settled { energy_j, carbon_g }
            },
            "measured",
            10,
        );
        assert_eq!(settled.given_up, 0);
        let by_id = |id: u8| {
            settled
                .spans
                .iter()
                .map(|(_, s)| s)
                .find(|s| s.span_id == vec![id; 8])
                .unwrap()
        };
        let wp = |s: &pb::Span| -> Vec<(String, pb::Value)> {
            s.attributes
                .iter()
                .filter(|kv| kv.key.starts_with("wattprint."))
                .map(|kv| (kv.key.clone(), kv.value.clone().unwrap().value.unwrap()))
                .collect()
        };
        let text = |v: &str| pb::Value::StringValue(v.into());
        assert_eq!(
            wp(by_id(3)),
            [
                ("wattprint.attribution".into(), text("refused")),
                ("wattprint.refused_reason".into(), text(LATE)),
            ]
        );
        assert_eq!(
            wp(by_id(1)),
            [
                ("wattprint.energy_j".into(), pb::Value::DoubleValue(60.0)),
                ("wattprint.carbon_g".into(), pb::Value::DoubleValue(0.06)),
                ("wattprint.method".into(), text("measured")),
                ("wattprint.attribution".into(), text("rolled_up")),
                ("wattprint.partial".into(), pb::Value::BoolValue(true)),
            ]
        );
        assert_eq!(
            wp(by_id(4)),
            [
                ("wattprint.energy_j".into(), pb::Value::DoubleValue(40.0)),
                ("wattprint.carbon_g".into(), pb::Value::DoubleValue(0.04)),
                ("wattprint.method".into(), text("measured")),
                ("wattprint.attribution".into(), text("attributed")),
            ]
        );
    }

    #[test]
    fn json_exports_decode_like_protobuf_and_bad_spans_are_refused() {
        let body = br#"{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{"name":"x"},"spans":[
            {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"",
             "name":"chat m","kind":3,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
             "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
                           {"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}},
                           {"key":"gen_ai.usage.output_tokens","value":{"intValue":34}}]},
            {"traceId":"zz","spanId":"EEE19B7EC3C1B175","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let spans = decode_json(body).unwrap();
        assert_eq!(spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(
            (spans[0].input_tokens, spans[0].output_tokens),
            (Some(12), Some(34))
        );
        assert_eq!(spans[0].end_unix_s - spans[0].start_unix_s, 1.0);
        let mut t = TraceTable::default();
        let r = t.ingest(spans, |_| Ok(1));
        assert_eq!((r.accepted, r.refused), (1, 1));
        assert!(r.errors[0].contains("traceId"), "{:?}", r.errors);
        assert!(matches!(
            decode_json(b"{\"resourceSpans\": 3}"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_protobuf(b"\xff\xff\xff"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn a_billion_spans_claimed_cost_nothing_and_traces_are_bounded() {
        // A length prefix claiming a 1 GB field in a 6-byte body: refused, not allocated.
        let claim = [0x0a, 0x80, 0x80, 0x80, 0x80, 0x04];
        assert!(matches!(
            decode_protobuf(&claim),
            Err(DecodeError::Malformed(_))
        ));
        // More spans than an export may carry: refused whole.
        let many: Vec<pb::Span> = (0..=MAX_SPANS_PER_EXPORT)
            .map(|_| pb::Span::default())
            .collect();
        assert_eq!(
            decode_protobuf(&export(many)),
            Err(DecodeError::TooManySpans(MAX_SPANS_PER_EXPORT + 1))
        );
        // Traces beyond the cap push the oldest out, counted.
        let mut t = TraceTable::default();
        for k in 0..(MAX_TRACES + 5) {
            let mut s = decode_protobuf(&export(vec![pb_span(1, None, 1, 2, "chat", 1)])).unwrap();
            s[0].trace_id = format!("{:032x}", k + 1);
            t.ingest(s, |_| Err("refused".into()));
        }
        assert_eq!(t.traces.len(), MAX_TRACES);
        assert_eq!(t.losses.traces_forgotten, 5);
        assert!(t.report(&format!("{:032x}", 1), |_| None).is_none());
    }

    fn attr<'a>(s: &'a pb::Span, key: &str) -> Option<&'a pb::Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    /// The agent task of `an_agent_task_rolls_up_so_each_joule_counts_once`, in an exporting
    /// table, with the ledger stand-in's energies: 10 J per second of each leaf.
    fn exporting_task() -> (TraceTable, Vec<crate::state::SpanReport>) {
        let mut root = pb_span(1, None, 1000, 1010, "invoke_agent", 0);
        root.kind = 2;
        root.status = Some(pb::Status {
            message: "ok".into(),
            code: 1,
        });
        root.attributes
            .push(kv("wattprint.energy_j", pb::Value::DoubleValue(-1.0)));
        root.attributes.push(kv("flag", pb::Value::BoolValue(true)));
        let body = export(vec![
            pb_span(2, Some(1), 1001, 1003, "chat", 20),
            pb_span(3, Some(1), 1003, 1004, "execute_tool", 0),
            pb_span(4, Some(1), 1004, 1008, "chat", 40),
            root,
        ]);
        let mut t = TraceTable::exporting();
        let mut queued = Vec::new();
        t.ingest(decode_protobuf(&body).unwrap(), |rep| {
            queued.push(rep);
            Ok(queued.len() as u64)
        });
        (t, queued)
    }

    #[test]
    fn settled_spans_are_exported_once_with_their_energy_and_everything_they_came_with() {
        let (mut t, queued) = exporting_task();
        assert_eq!(t.awaiting_export(), 4);
        let settled = |id: u64, _: &TraceSpan| {
            let s = &queued[id as usize - 1];
            let e = 10.0 * (s.end_unix_s - s.start_unix_s);
            Attribution::Settled {
                energy_j: e,
                carbon_g: e / 1000.0,
            }
        };
        // Leaf 3 (the tool call) pending: only the two chats are ready; the root waits.
        let first = t.take_settled(
            |id, s| {
                if id == 2 {
                    Attribution::Pending
                } else {
                    settled(id, s)
                }
            },
            "measured",
            100,
        );
        assert_eq!(first.spans.len(), 2);
        assert_eq!(first.given_up, 0);
        assert_eq!(t.awaiting_export(), 2);
        let second = t.take_settled(settled, "measured", 100);
        assert_eq!(second.spans.len(), 2);
        assert_eq!(t.awaiting_export(), 0);
        // Nothing is handed out twice, even when the client sends the spans again.
        assert!(t.take_settled(settled, "measured", 100).spans.is_empty());
        let again = export(vec![pb_span(2, Some(1), 1001, 1003, "chat", 20)]);
        t.ingest(decode_protobuf(&again).unwrap(), |_| Ok(1));
        assert!(t.take_settled(settled, "measured", 100).spans.is_empty());

        // Encode, decode with prost, and read back exact values.
        let all: Vec<_> = first.spans.into_iter().chain(second.spans).collect();
        let body = encode_export(all);
        let back = pb::ExportTraceServiceRequest::decode(&body[..]).unwrap();
        assert_eq!(back.resource_spans.len(), 1, "one resource, as received");
        let rs = &back.resource_spans[0];
        assert_eq!(
            rs.resource.as_ref().unwrap().attributes[0],
            kv("service.name", pb::Value::StringValue("demo-agent".into()))
        );
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "demo");
        let by_id = |b: u8| ss.spans.iter().find(|s| s.span_id == vec![b; 8]).unwrap();
        let chat = by_id(4);
        assert_eq!(chat.trace_id, vec![7; 16]);
        assert_eq!(chat.parent_span_id, vec![1; 8]);
        assert_eq!(chat.name, "chat 4");
        assert_eq!(
            (chat.start_time_unix_nano, chat.end_time_unix_nano),
            (1_004_000_000_000, 1_008_000_000_000)
        );
        assert_eq!(
            attr(chat, "wattprint.energy_j"),
            Some(&pb::Value::DoubleValue(40.0))
        );
        assert_eq!(
            attr(chat, "wattprint.carbon_g"),
            Some(&pb::Value::DoubleValue(0.04))
        );
        assert_eq!(
            attr(chat, "wattprint.method"),
            Some(&pb::Value::StringValue("measured".into()))
        );
        assert_eq!(
            attr(chat, "wattprint.attribution"),
            Some(&pb::Value::StringValue("attributed".into()))
        );
        assert_eq!(
            attr(chat, "gen_ai.usage.output_tokens"),
            Some(&pb::Value::IntValue(40))
        );
        let root = by_id(1);
        assert!(root.parent_span_id.is_empty());
        assert_eq!((root.kind, root.status.as_ref().unwrap().code), (2, 1));
        // 20 + 10 + 40 J from its children; the client's own wattprint.energy_j is replaced.
        assert_eq!(
            attr(root, "wattprint.energy_j"),
            Some(&pb::Value::DoubleValue(70.0))
        );
        assert_eq!(
            root.attributes
                .iter()
                .filter(|kv| kv.key == "wattprint.energy_j")
                .count(),
            1
        );
        assert_eq!(attr(root, "flag"), Some(&pb::Value::BoolValue(true)));
        assert_eq!(
            attr(root, "wattprint.attribution"),
            Some(&pb::Value::StringValue("rolled_up".into()))
        );
        // The leaves' exported energies sum to the root's: each joule once.
        let leaves: f64 = ss
            .spans
            .iter()
            .filter(|s| !s.parent_span_id.is_empty())
            .map(|s| match attr(s, "wattprint.energy_j") {
                Some(pb::Value::DoubleValue(j)) => *j,
                v => panic!("{v:?}"),
            })
            .sum();
        assert_eq!(leaves, 70.0);
    }

    #[test]
    fn spans_that_can_never_settle_are_given_up_and_counted_not_kept() {
        let (mut t, _) = exporting_task();
        // Leaf 3's attribution was dropped by the ledger: it and the root can never settle.
        let out = t.take_settled(
            |id, _| {
                if id == 2 {
                    Attribution::Gone
                } else {
                    Attribution::Settled {
                        energy_j: 1.0,
                        carbon_g: 0.0,
                    }
                }
            },
            "estimated",
            100,
        );
        assert_eq!((out.spans.len(), out.given_up), (2, 2));
        assert_eq!(t.awaiting_export(), 0);
        // A batch is at most `max` spans; the rest wait for the next call.
        let (mut t, _) = exporting_task();
        let one = |_, _: &TraceSpan| Attribution::Settled {
            energy_j: 1.0,
            carbon_g: 0.0,
        };
        assert_eq!(t.take_settled(one, "measured", 3).spans.len(), 3);
        assert_eq!(t.take_settled(one, "measured", 3).spans.len(), 1);
        // A table that does not export keeps nothing for it.
        let mut plain = TraceTable::default();
        plain.ingest(
            decode_protobuf(&export(vec![pb_span(2, None, 1, 2, "chat", 1)])).unwrap(),
            |_| Ok(1),
        );
        assert_eq!(plain.awaiting_export(), 0);
        assert!(plain.take_settled(one, "measured", 10).spans.is_empty());
    }

    #[test]
    fn json_spans_export_their_attributes_kind_status_and_resource() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"scope":{"name":"lib","version":"2"},"spans":[
            {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
             "name":"chat m","kind":3,"startTimeUnixNano":"1000000000","endTimeUnixNano":"3000000000",
             "status":{"code":2,"message":"boom"},
             "attributes":[{"key":"a","value":{"intValue":"-5"}},{"key":"b","value":{"boolValue":false}},
                           {"key":"c","value":{"arrayValue":{"values":[]}}}]}]}]}]}"#;
        let mut t = TraceTable::exporting();
        t.ingest(decode_json(body).unwrap(), |_| Ok(9));
        let out = t.take_settled(
            |_, _| Attribution::Settled {
                energy_j: 2.5,
                carbon_g: 0.25,
            },
            "estimated",
            10,
        );
        let back = pb::ExportTraceServiceRequest::decode(&encode_export(out.spans)[..]).unwrap();
        let rs = &back.resource_spans[0];
        assert_eq!(
            rs.resource.as_ref().unwrap().attributes,
            [kv("service.name", pb::Value::StringValue("svc".into()))]
        );
        assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().version, "2");
        let s = &rs.scope_spans[0].spans[0];
        assert_eq!(hex(&s.trace_id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.kind, 3);
        assert_eq!(
            s.status,
            Some(pb::Status {
                message: "boom".into(),
                code: 2
            })
        );
        assert_eq!(attr(s, "a"), Some(&pb::Value::IntValue(-5)));
        assert_eq!(attr(s, "b"), Some(&pb::Value::BoolValue(false)));
        // An array value is not kept (not declared in `pb`): no empty attribute is sent on.
        assert!(attr(s, "c").is_none() && !s.attributes.iter().any(|kv| kv.key == "c"));
        assert_eq!(
            attr(s, "wattprint.energy_j"),
            Some(&pb::Value::DoubleValue(2.5))
        );
        assert_eq!(
            attr(s, "wattprint.method"),
            Some(&pb::Value::StringValue("estimated".into()))
        );
    }

    #[test]
    fn a_forgotten_trace_counts_its_unexported_spans_as_given_up() {
        let mut t = TraceTable::exporting();
        for k in 0..=MAX_TRACES {
            let mut s = decode_protobuf(&export(vec![pb_span(1, None, 1, 2, "chat", 1)])).unwrap();
            s[0].trace_id = format!("{:032x}", k + 1);
            t.ingest(s, |_| Ok(1));
        }
        assert_eq!(t.awaiting_export(), MAX_TRACES);
        let out = t.take_settled(|_, _| Attribution::Pending, "measured", 10);
        assert_eq!((out.spans.len(), out.given_up), (0, 1));
    }
}
