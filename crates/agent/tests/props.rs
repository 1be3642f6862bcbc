//! Property tests over the agent's parsers of what others send it: the Prometheus exposition
//! pages of engine scrapes (`scrape::read_page`, `read_trtllm_energy`), OTLP trace exports
//! (`traces::decode_protobuf`, `decode_json`), the kubelet pod list
//! (`PodNames::add_pod_list`) and `/proc/<pid>/cgroup` (`procfs::parse_pid_cgroup_paths`).
//! Cases per property: the `with_cases` figure of each block, published in
//! docs/security.md.

use std::collections::BTreeMap;

use proptest::prelude::*;
use prost::Message;
use wattprint_agent::scrape::{read_page, read_trtllm_energy, Reading};
use wattprint_agent::traces::{decode_json, decode_protobuf, pb, DecodeError};
use wattprint_agent::workloads::PodNames;
use wattprint_sensors::procfs::parse_pid_cgroup_paths;

const ENGINE_PAGES: [&str; 6] = [
    include_str!("fixtures/engines/vllm.prom"),
    include_str!("fixtures/engines/sglang.prom"),
    include_str!("fixtures/engines/tgi.prom"),
    include_str!("fixtures/engines/tensorrt-llm.prom"),
    include_str!("fixtures/engines/llama-cpp.prom"),
    include_str!("fixtures/engines/ollama.prom"),
];
const TRTLLM_ENERGY: &str = include_str!("fixtures/engines/tensorrt-llm-energy.json");

/// Every figure of a reading is finite and non-negative (counters and a gauge of requests).
fn check_reading(r: &Reading) -> Result<(), TestCaseError> {
    for (model, c) in &r.models {
        let figures = [
            Some(c.prompt_tokens),
            Some(c.output_tokens),
            c.requests_finished,
            Some(c.requests_running),
            c.flops_per_gpu,
        ];
        for v in figures.into_iter().flatten() {
            prop_assert!(v.is_finite() && v >= 0.0, "{model}: {c:?}");
        }
    }
    Ok(())
}

fn check_page(text: &str) -> Result<(), TestCaseError> {
    if let Ok(r) = read_page("target", text) {
        check_reading(&r)?;
    }
    if let Some(j) = read_trtllm_energy(text) {
        prop_assert!(j.is_finite() && j >= 0.0, "{j}");
    }
    Ok(())
}

/// A fixture page mutated: cut at a byte, a line repeated, a line dropped, or bytes flipped
/// (made UTF-8 again lossily, as the scraper does with a body).
fn mutated_page() -> impl Strategy<Value = String> {
    let page = (0..ENGINE_PAGES.len() + 1).prop_map(|i| {
        ENGINE_PAGES
            .get(i)
            .copied()
            .unwrap_or(TRTLLM_ENERGY)
            .as_bytes()
            .to_vec()
    });
    (
        page,
        0usize..4,
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    )
        .prop_map(|(mut b, how, at, flips)| {
            match how {
                0 => b.truncate(at.index(b.len() + 1)),
                1 | 2 => {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    let mut lines: Vec<&str> = text.lines().collect();
                    if !lines.is_empty() {
                        let i = at.index(lines.len());
                        if how == 1 {
                            lines.insert(i, lines[i]);
                        } else {
                            lines.remove(i);
                        }
                    }
                    b = lines.join("\n").into_bytes();
                }
                _ => {
                    for (i, v) in flips {
                        if !b.is_empty() {
                            let i = i.index(b.len());
                            b[i] = v;
                        }
                    }
                }
            }
            String::from_utf8_lossy(&b).into_owned()
        })
}

/// A sample value as engines write them, or an odd one.
fn sample_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..1_000_000).prop_map(|v| format!("{v}.0")),
        Just("1e308".to_string()),
        Just("1.7976931348623157e308".to_string()),
        Just("-5".to_string()),
        Just("-0".to_string()),
        Just("NaN".to_string()),
        Just("+Inf".to_string()),
        Just("-Inf".to_string()),
        "[0-9.eE+-]{1,10}",
    ]
}

/// A page of engine metric lines with odd values, labels and repeats.
fn odd_engine_page() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:num_requests_running",
        "vllm:estimated_flops_per_gpu_total",
        "sglang:prompt_tokens_total",
        "tgi_request_input_length_sum",
        "tgi_request_success",
        "trtllm_prompt_tokens_total",
        "llamacpp:prompt_tokens_total",
        "ollama_eval_total",
    ]);
    let line = (name, "[a-z_]{0,3}", sample_value())
        .prop_map(|(n, model, v)| format!("{n}{{model_name=\"{model}\",model=\"{model}\"}} {v}"));
    prop::collection::vec(line, 0..24).prop_map(|l| l.join("\n") + "\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text, arbitrary bytes made UTF-8, mutated fixtures and pages of odd values
    /// (negative, infinite, `1e308` twice): a reading with finite, non-negative figures or
    /// an error, never a panic.
    #[test]
    fn any_exposition_page_reads_to_finite_non_negative_figures_or_an_error(
        text in "\\PC{0,300}",
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        mutated in mutated_page(),
        odd in odd_engine_page(),
    ) {
        check_page(&text)?;
        check_page(&String::from_utf8_lossy(&bytes))?;
        check_page(&mutated)?;
        check_page(&odd)?;
    }
}

#[test]
fn every_prefix_of_every_engine_fixture_reads_or_fails_cleanly() {
    for page in ENGINE_PAGES.iter().chain([&TRTLLM_ENERGY]) {
        let mut cut = 0;
        while cut <= page.len() {
            if page.is_char_boundary(cut) {
                let text = &page[..cut];
                if let Ok(r) = read_page("target", text) {
                    check_reading(&r).unwrap();
                }
                if let Some(j) = read_trtllm_energy(text) {
                    assert!(j.is_finite() && j >= 0.0);
                }
            }
            cut += 1;
        }
    }
}

#[test]
fn negative_and_overflowing_counters_are_not_read() {
    // Found by the property above: a negative sample was read as a negative counter, and two
    // samples of 1e308 summed to infinity.
    let page = "vllm:prompt_tokens_total{model_name=\"m\"} -5\n\
                vllm:generation_tokens_total{model_name=\"m\",engine=\"0\"} 1e308\n\
                vllm:generation_tokens_total{model_name=\"m\",engine=\"1\"} 1e308\n";
    let r = read_page("target", page).unwrap();
    let c = &r.models["m"];
    assert_eq!(c.prompt_tokens, 0.0);
    assert!(c.output_tokens.is_finite(), "{c:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A well-formed vLLM page of known counters (integers, so sums are exact) reads back
    /// those counters per model, the finished requests summed over their reasons.
    #[test]
    fn a_generated_vllm_page_reads_back_its_counters(
        models in prop::collection::btree_map(
            "[A-Za-z0-9][A-Za-z0-9./_-]{0,20}",
            (0u32..10_000_000, 0u32..10_000_000, 0u32..100_000, 0u32..100_000, 0u32..64),
            1..5,
        ),
        help in any::<bool>(),
    ) {
        let mut page = String::new();
        let families = [
            ("vllm:prompt_tokens_total", "counter"),
            ("vllm:generation_tokens_total", "counter"),
            ("vllm:request_success_total", "counter"),
            ("vllm:num_requests_running", "gauge"),
        ];
        for (i, (family, kind)) in families.iter().enumerate() {
            if help {
                page += &format!("# HELP {family} Something.\n# TYPE {family} {kind}\n");
            }
            for (m, (prompt, output, stop, length, running)) in &models {
                match i {
                    0 => page += &format!("{family}{{engine=\"0\",model_name=\"{m}\"}} {prompt}.0\n"),
                    1 => page += &format!("{family}{{model_name=\"{m}\"}} {output}\n"),
                    2 => {
                        page += &format!("{family}{{finished_reason=\"stop\",model_name=\"{m}\"}} {stop}.0\n");
                        page += &format!("{family}{{finished_reason=\"length\",model_name=\"{m}\"}} {length}e0\n");
                    }
                    _ => page += &format!("{family}{{model_name=\"{m}\"}} {running}\n"),
                }
            }
        }
        let r = read_page("target", &page).unwrap();
        prop_assert_eq!(r.malformed_families, 0);
        prop_assert_eq!(r.models.len(), models.len());
        for (m, (prompt, output, stop, length, running)) in &models {
            let c = &r.models[m];
            prop_assert_eq!(c.prompt_tokens, f64::from(*prompt));
            prop_assert_eq!(c.output_tokens, f64::from(*output));
            prop_assert_eq!(c.requests_finished, Some(f64::from(*stop) + f64::from(*length)));
            prop_assert_eq!(c.requests_running, f64::from(*running));
            prop_assert_eq!(c.flops_per_gpu, None);
        }
    }

    /// A TensorRT-LLM energy answer reads back its figure; a negative one is refused.
    #[test]
    fn a_trtllm_energy_answer_reads_back(j in -1e12f64..1e12, extra in any::<bool>()) {
        let body = if extra {
            format!("{{\"query_time\": 12.5, \"total_energy_j\": {j:?}}}")
        } else {
            format!("{{\"total_energy_j\":{j:?}}}")
        };
        let got = read_trtllm_energy(&body);
        if j >= 0.0 {
            // serde_json (without `float_roundtrip`) may read the last bit differently.
            let got = got.unwrap();
            prop_assert!((got - j).abs() <= j * 1e-15, "{got} vs {j}");
        } else {
            prop_assert_eq!(got, None);
        }
    }
}

/// A span as generated: ids, times and GenAI attributes.
#[derive(Clone, Debug)]
struct GenSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    start_ns: u64,
    dur_ns: u64,
    operation: Option<String>,
    model: Option<String>,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
}

fn gen_span() -> impl Strategy<Value = GenSpan> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 8]>(),
        prop::option::of(any::<[u8; 8]>()),
        0u64..4_000_000_000_000_000_000,
        0u64..1_000_000_000_000,
        prop::option::of(prop::sample::select(vec![
            "chat",
            "embeddings",
            "execute_tool",
        ])),
        prop::option::of("[A-Za-z0-9./_-]{1,30}"),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
    )
        .prop_map(
            |(trace_id, span_id, parent, start_ns, dur_ns, op, model, input, output)| GenSpan {
                trace_id,
                span_id,
                parent,
                start_ns,
                dur_ns,
                operation: op.map(str::to_string),
                model,
                input_tokens: input,
                output_tokens: output,
            },
        )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Spans grouped as exports group them: resources of scopes of spans.
fn gen_export() -> impl Strategy<Value = Vec<Vec<Vec<GenSpan>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(gen_span(), 0..6), 0..3),
        0..3,
    )
}

fn to_pb(export: &[Vec<Vec<GenSpan>>]) -> pb::ExportTraceServiceRequest {
    let span = |s: &GenSpan| {
        let mut attributes = Vec::new();
        if let Some(op) = &s.operation {
            attributes.push(pb::KeyValue::new(
                "gen_ai.operation.name",
                pb::Value::StringValue(op.clone()),
            ));
        }
        if let Some(m) = &s.model {
            attributes.push(pb::KeyValue::new(
                "gen_ai.request.model",
                pb::Value::StringValue(m.clone()),
            ));
        }
        if let Some(t) = s.input_tokens {
            attributes.push(pb::KeyValue::new(
                "gen_ai.usage.input_tokens",
                pb::Value::IntValue(i64::from(t)),
            ));
        }
        if let Some(t) = s.output_tokens {
            attributes.push(pb::KeyValue::new(
                "gen_ai.usage.output_tokens",
                pb::Value::IntValue(i64::from(t)),
            ));
        }
        pb::Span {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: "span".into(),
            kind: 3,
            start_time_unix_nano: s.start_ns,
            end_time_unix_nano: s.start_ns + s.dur_ns,
            attributes,
            status: None,
        }
    };
    pb::ExportTraceServiceRequest {
        resource_spans: export
            .iter()
            .map(|scopes| pb::ResourceSpans {
                resource: Some(pb::Resource {
                    attributes: vec![pb::KeyValue::new(
                        "service.name",
                        pb::Value::StringValue("svc".into()),
                    )],
                }),
                scope_spans: scopes
                    .iter()
                    .map(|spans| pb::ScopeSpans {
                        scope: None,
                        spans: spans.iter().map(span).collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The OTLP/JSON encoding of the same export (hex ids, 64-bit integers as strings).
fn to_json(export: &[Vec<Vec<GenSpan>>]) -> String {
    use serde_json::json;
    let span = |s: &GenSpan| {
        let mut attributes = Vec::new();
        if let Some(op) = &s.operation {
            attributes.push(json!({"key": "gen_ai.operation.name", "value": {"stringValue": op}}));
        }
        if let Some(m) = &s.model {
            attributes.push(json!({"key": "gen_ai.request.model", "value": {"stringValue": m}}));
        }
        if let Some(t) = s.input_tokens {
            attributes.push(
                json!({"key": "gen_ai.usage.input_tokens", "value": {"intValue": t.to_string()}}),
            );
        }
        if let Some(t) = s.output_tokens {
            // Some exporters write the number bare: both forms are read.
            attributes.push(json!({"key": "gen_ai.usage.output_tokens", "value": {"intValue": t}}));
        }
        json!({
            "traceId": hex(&s.trace_id).to_uppercase(),
            "spanId": hex(&s.span_id),
            "parentSpanId": s.parent.map(|p| hex(&p)).unwrap_or_default(),
            "name": "span",
            "kind": 3,
            "startTimeUnixNano": s.start_ns.to_string(),
            "endTimeUnixNano": (s.start_ns + s.dur_ns).to_string(),
            "attributes": attributes,
        })
    };
    let resource_spans: Vec<_> = export
        .iter()
        .map(|scopes| {
            json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": scopes.iter().map(|spans| json!({
                    "spans": spans.iter().map(span).collect::<Vec<_>>()
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans }).to_string()
}

fn check_decoded(
    export: &[Vec<Vec<GenSpan>>],
    got: &[wattprint_agent::traces::TraceSpan],
) -> Result<(), TestCaseError> {
    let want: Vec<&GenSpan> = export.iter().flatten().flatten().collect();
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        prop_assert_eq!(&g.trace_id, &hex(&w.trace_id));
        prop_assert_eq!(&g.span_id, &hex(&w.span_id));
        let parent = w
            .parent
            .map(|p| hex(&p))
            .filter(|p| p.chars().any(|c| c != '0'));
        prop_assert_eq!(&g.parent_span_id, &parent);
        prop_assert_eq!(g.start_unix_s, w.start_ns as f64 / 1e9);
        prop_assert_eq!(g.end_unix_s, (w.start_ns + w.dur_ns) as f64 / 1e9);
        prop_assert_eq!(&g.operation, &w.operation);
        prop_assert_eq!(&g.model, &w.model);
        let tokens = |t: Option<u32>| {
            t.map(u64::from)
                .filter(|t| *t <= wattprint_agent::state::MAX_SPAN_TOKENS)
        };
        prop_assert_eq!(g.input_tokens, tokens(w.input_tokens));
        prop_assert_eq!(g.output_tokens, tokens(w.output_tokens));
        prop_assert_eq!(g.kind, 3);
    }
    Ok(())
}

/// A protobuf length prefix (varint).
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes through both decoders: spans or an error, never a panic.
    #[test]
    fn any_bytes_decode_to_spans_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        text in "\\PC{0,200}",
    ) {
        let _ = decode_protobuf(&bytes);
        let _ = decode_json(&bytes);
        let _ = decode_protobuf(text.as_bytes());
        let _ = decode_json(text.as_bytes());
    }

    /// Generated exports decode back to the same spans: count, ids, times, GenAI attributes,
    /// through protobuf and through JSON; cut anywhere, the protobuf is spans or an error.
    #[test]
    fn generated_exports_decode_back_through_protobuf_and_json(
        export in gen_export(),
        cut in any::<prop::sample::Index>(),
    ) {
        let body = to_pb(&export).encode_to_vec();
        check_decoded(&export, &decode_protobuf(&body).unwrap())?;
        check_decoded(&export, &decode_json(to_json(&export).as_bytes()).unwrap())?;
        let _ = decode_protobuf(&body[..cut.index(body.len() + 1)]);
        let json = to_json(&export);
        let _ = decode_json(&json.as_bytes()[..cut.index(json.len() + 1)]);
    }

    /// A length prefix claiming far more than the body holds (up to a billion spans' worth,
    /// or 2^63 bytes) is an error, never an allocation of that size or a panic.
    #[test]
    fn a_length_claimed_beyond_the_body_is_an_error(
        claimed in prop_oneof![Just(u64::MAX >> 1), Just(1u64 << 40), 1_000u64..1_000_000_000_000],
        field in prop::sample::select(vec![0x0au8, 0x12]),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // resource_spans (field 1) holding scope_spans (field 2, or a resource) claimed long.
        let mut inner = vec![field];
        varint(claimed, &mut inner);
        inner.extend(&tail);
        let mut body = vec![0x0a];
        varint(inner.len() as u64, &mut body);
        body.extend(&inner);
        prop_assert!(matches!(decode_protobuf(&body), Err(DecodeError::Malformed(_))));
        let mut outer = vec![0x0a];
        varint(claimed, &mut outer);
        outer.extend(&tail);
        prop_assert!(matches!(decode_protobuf(&outer), Err(DecodeError::Malformed(_))));
    }
}

#[test]
fn a_billion_spans_claimed_in_json_or_protobuf_are_refused_without_building_them() {
    // Protobuf: one span repeated as many times as fit in 2 MB (an empty span is 2 bytes,
    // `0x12 0x00`), past MAX_SPANS_PER_EXPORT: refused by count.
    let mut scope = Vec::new();
    for _ in 0..=wattprint_agent::traces::MAX_SPANS_PER_EXPORT {
        scope.extend([0x12, 0x00]);
    }
    let mut rs = vec![0x12];
    varint(scope.len() as u64, &mut rs);
    rs.extend(&scope);
    let mut body = vec![0x0a];
    varint(rs.len() as u64, &mut body);
    body.extend(&rs);
    assert_eq!(
        decode_protobuf(&body),
        Err(DecodeError::TooManySpans(
            wattprint_agent::traces::MAX_SPANS_PER_EXPORT + 1
        ))
    );
}

/// Kubelet pod list JSON: generated lists read back, arbitrary text never panics.
/// A generated pod: uid, namespace, name, containers (name, `runtime://id`).
type Pod = (String, String, String, Vec<(String, String)>);

fn pod_list() -> impl Strategy<Value = Vec<Pod>> {
    prop::collection::vec(
        (
            "[a-f0-9-]{1,36}",
            "[a-z0-9-]{0,20}",
            "\\PC{1,20}",
            prop::collection::vec(
                (
                    "[a-z0-9-]{1,12}",
                    prop::sample::select(vec!["containerd://", "cri-o://", "docker://", ""])
                        .prop_flat_map(|p| "[a-f0-9]{1,64}".prop_map(move |id| format!("{p}{id}"))),
                ),
                0..3,
            ),
        ),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_as_a_pod_list_is_names_or_an_error(
        text in "\\PC{0,200}",
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        pods in pod_list(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut names = PodNames::default();
        let _ = names.add_pod_list(&text);
        let _ = names.add_pod_list(&String::from_utf8_lossy(&bytes));
        let json = serde_json::json!({
            "kind": "PodList",
            "items": pods.iter().map(|(uid, ns, name, cs)| serde_json::json!({
                "metadata": {"uid": uid, "namespace": ns, "name": name},
                "status": {"containerStatuses": cs.iter().map(|(n, id)| serde_json::json!({
                    "name": n, "containerID": id
                })).collect::<Vec<_>>()},
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let mut names = PodNames::default();
        prop_assert_eq!(names.add_pod_list(&json), Ok(pods.len()));
        // Later pods of a repeated uid and containers of a repeated id win, as in a map.
        let mut want_pods = std::collections::HashMap::new();
        let mut want_containers = std::collections::HashMap::new();
        for (uid, ns, name, cs) in &pods {
            want_pods.insert(uid.clone(), (ns.clone(), name.clone()));
            for (n, id) in cs {
                want_containers.insert(id.rsplit("://").next().unwrap().to_string(), n.clone());
            }
        }
        prop_assert_eq!(&names.pods, &want_pods);
        prop_assert_eq!(&names.containers, &want_containers);
        let cut = cut.index(json.len() + 1);
        if json.is_char_boundary(cut) {
            let _ = PodNames::default().add_pod_list(&json[..cut]);
        }
    }

    /// `/proc/<pid>/cgroup`: any text gives paths taken from its lines (no leading `/`, no
    /// line break, none twice) and never a panic; a generated hybrid file gives its paths
    /// `cpuacct` first, then v2, then the other v1 hierarchies.
    #[test]
    fn any_proc_cgroup_text_gives_paths_of_its_lines(
        text in "\\PC{0,300}",
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        v1 in prop::collection::vec(("[a-z_,]{1,20}", "[a-z0-9._/-]{1,30}"), 0..6),
        v2 in prop::option::of("[a-z0-9._/-]{0,30}"),
    ) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for t in [text.as_str(), lossy.as_str()] {
            let paths = parse_pid_cgroup_paths(t);
            prop_assert!(paths.len() <= t.lines().count());
            for (i, p) in paths.iter().enumerate() {
                prop_assert!(!p.contains('\n') && !paths[..i].contains(p));
                prop_assert!(t.lines().any(|l| l.trim_end().ends_with(p)), "{p:?} in {t:?}");
            }
        }
        let mut file = String::new();
        let mut want: BTreeMap<u8, Vec<String>> = BTreeMap::new();
        for (i, (controllers, path)) in v1.iter().enumerate() {
            file += &format!("{}:{controllers}:/{path}\n", i + 1);
            let rank = if controllers.split(',').any(|c| c == "cpuacct") { 0 } else { 2 };
            want.entry(rank).or_default().push(path.clone());
        }
        if let Some(p) = &v2 {
            file += &format!("0::/{p}\n");
            want.entry(1).or_default().push(p.clone());
        }
        let mut expected: Vec<String> = Vec::new();
        for p in want.into_values().flatten() {
            if !expected.contains(&p) {
                expected.push(p);
            }
        }
        prop_assert_eq!(parse_pid_cgroup_paths(&file), expected);
    }
}
