//! Engine metrics, read, not re-implemented (`wattprint agent --scrape NAME=URL`): the agent
//! reads an inference engine's Prometheus endpoint every sampling interval and turns the
//! engine's own token, request and FLOP counters, together with the measured energy of the
//! same interval, into per-model figures: J per output token, J per request, gCO2e per 1k
//! output tokens and achieved FLOPs/W, with the energy of intervals where the engine did
//! nothing kept apart as idle. See `docs/serving.md`.
//!
//! The exposition text is parsed by the `prom_text_format_parser` crate; this module maps
//! each engine's metric names (vLLM, SGLang, TGI, TensorRT-LLM, llama.cpp server, Ollama) to
//! the few counters it needs. The arithmetic ([`EngineLedger`]) is pure and clock-injected;
//! the HTTP fetch ([`run`]) is the only I/O.

use crate::state::Sample;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

/// Largest exposition page read, bytes (vLLM with a dozen models and every histogram is
/// about 200 KiB; 8 MiB leaves room without letting an engine exhaust the agent's memory).
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// Models tracked per engine at most; further model names are added to [`OTHER_MODEL`].
pub const MAX_MODELS: usize = 64;
/// The model name that models beyond [`MAX_MODELS`] are folded into.
pub const OTHER_MODEL: &str = "other";
/// Scrape points waiting for the meter to cover their time, at most (one per interval: 600
/// is ten minutes at 1 s, far beyond the one interval a point normally waits).
pub const MAX_PENDING_POINTS: usize = 600;
/// Targets at most (each is one task and one connection per interval).
pub const MAX_TARGETS: usize = 32;

/// The engines whose metric names are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    Vllm,
    Sglang,
    Tgi,
    TensorrtLlm,
    LlamaCpp,
    Ollama,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm",
            Engine::Sglang => "sglang",
            Engine::Tgi => "tgi",
            Engine::TensorrtLlm => "tensorrt-llm",
            Engine::LlamaCpp => "llama-cpp",
            Engine::Ollama => "ollama",
        }
    }
}

/// Which value of a metric family a counter is read from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    /// A plain sample (counter or gauge).
    Value,
    /// A histogram's or summary's `_sum`.
    Sum,
    /// A histogram's or summary's `_count`.
    Count,
}

/// Where one quantity is found: metric names (alternatives, first present wins) and part.
type Source = &'static [(&'static str, Part)];

/// The metric names of one engine, as each engine publishes them (sources and dates in
/// `crates/agent/tests/fixtures/engines/README.md`).
struct Shape {
    engine: Engine,
    /// Name prefixes that identify the engine.
    prefixes: &'static [&'static str],
    /// The label naming the model; `None` when the engine serves one model per process (the
    /// target's NAME is then the model).
    model_label: Option<&'static str>,
    prompt_tokens: Source,
    output_tokens: Source,
    requests_finished: Source,
    requests_running: Source,
    /// Estimated FLOPs per GPU, cumulative.
    flops_per_gpu: Source,
}

const SHAPES: &[Shape] = &[
    Shape {
        engine: Engine::Vllm,
        prefixes: &["vllm:"],
        model_label: Some("model_name"),
        prompt_tokens: &[("vllm:prompt_tokens_total", Part::Value)],
        output_tokens: &[("vllm:generation_tokens_total", Part::Value)],
        requests_finished: &[("vllm:request_success_total", Part::Value)],
        requests_running: &[("vllm:num_requests_running", Part::Value)],
        flops_per_gpu: &[("vllm:estimated_flops_per_gpu_total", Part::Value)],
    },
    Shape {
        engine: Engine::Sglang,
        prefixes: &["sglang:"],
        model_label: Some("model_name"),
        prompt_tokens: &[("sglang:prompt_tokens_total", Part::Value)],
        output_tokens: &[("sglang:generation_tokens_total", Part::Value)],
        requests_finished: &[
            ("sglang:num_requests_total", Part::Value),
            ("sglang:e2e_request_latency_seconds", Part::Count),
        ],
        requests_running: &[("sglang:num_running_reqs", Part::Value)],
        flops_per_gpu: &[("sglang:estimated_flops_per_gpu_total", Part::Value)],
    },
    Shape {
        engine: Engine::Tgi,
        prefixes: &["tgi_"],
        model_label: None,
        prompt_tokens: &[("tgi_request_input_length", Part::Sum)],
        output_tokens: &[("tgi_request_generated_tokens", Part::Sum)],
        requests_finished: &[("tgi_request_success", Part::Value)],
        requests_running: &[("tgi_batch_current_size", Part::Value)],
        flops_per_gpu: &[],
    },
    Shape {
        engine: Engine::TensorrtLlm,
        prefixes: &["trtllm_", "trtllm:"],
        model_label: Some("model_name"),
        prompt_tokens: &[
            ("trtllm_prompt_tokens_total", Part::Value),
            ("trtllm:prompt_tokens_total", Part::Value),
        ],
        output_tokens: &[
            ("trtllm_generation_tokens_total", Part::Value),
            ("trtllm:generation_tokens_total", Part::Value),
        ],
        requests_finished: &[
            ("trtllm_request_success_total", Part::Value),
            ("trtllm:request_success_total", Part::Value),
        ],
        requests_running: &[
            ("trtllm_num_requests_running", Part::Value),
            ("trtllm:num_requests_running", Part::Value),
        ],
        flops_per_gpu: &[],
    },
    Shape {
        engine: Engine::LlamaCpp,
        prefixes: &["llamacpp:"],
        model_label: None,
        prompt_tokens: &[("llamacpp:prompt_tokens_total", Part::Value)],
        output_tokens: &[("llamacpp:tokens_predicted_total", Part::Value)],
        requests_finished: &[],
        requests_running: &[("llamacpp:requests_processing", Part::Value)],
        flops_per_gpu: &[],
    },
    Shape {
        engine: Engine::Ollama,
        prefixes: &["ollama_"],
        model_label: Some("model"),
        prompt_tokens: &[("ollama_prompt_eval_total", Part::Value)],
        output_tokens: &[("ollama_eval_total", Part::Value)],
        requests_finished: &[],
        requests_running: &[],
        flops_per_gpu: &[],
    },
];

/// One model's counters in one scrape (cumulative, as the engine exports them).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    pub prompt_tokens: f64,
    pub output_tokens: f64,
    /// `None` when the engine exports no finished-request counter (llama.cpp, Ollama).
    pub requests_finished: Option<f64>,
    pub requests_running: f64,
    /// Estimated FLOPs per GPU, cumulative; `None` when not exported (vLLM and SGLang
    /// export it with `--enable-mfu-metrics`).
    pub flops_per_gpu: Option<f64>,
}

/// One page, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub engine: Engine,
    /// By model name.
    pub models: BTreeMap<String, Counters>,
    /// Metric families the parser refused (the rest of the page is still used).
    pub malformed_families: usize,
}

/// Why a scrape gave nothing.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("not Prometheus text exposition: {0}")]
    Malformed(String),
    #[error("no known engine metrics on the page (looked for names starting vllm:, sglang:, tgi_, trtllm_, llamacpp:, ollama_): is this the engine's metrics URL, and are its metrics enabled?")]
    UnknownEngine,
    #[error("{0}")]
    Fetch(String),
}

/// A sample's value when it is a figure the ledger can use: finite and non-negative (every
/// series read is a counter, or a gauge of running requests; a negative one is a broken
/// exporter, not a reset).
fn value_of(v: &prom_text_format_parser::Value) -> Option<f64> {
    let s: &str = &v.value;
    s.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0)
}

/// Adds a sample to a sum, which stays finite (two samples of `1e308` add to `f64::MAX`).
fn add(sum: &mut f64, v: f64) {
    *sum = (*sum + v).min(f64::MAX);
}

/// Parse an exposition page and read the counters of the engine it comes from. `name` is
/// the target's name, used as the model of engines that serve one model per process.
pub fn read_page(name: &str, text: &str) -> Result<Reading, ScrapeError> {
    let (metrics, err) = prom_text_format_parser::parse_scrape(text);
    use prom_text_format_parser::ScrapeParseError as P;
    let malformed_families = match err {
        Some(P::Parse(e)) => return Err(ScrapeError::Malformed(first_line(&e))),
        Some(P::Collect(v)) if metrics.is_empty() => {
            let first = v.first().map(|m| m.error.as_str()).unwrap_or("no metric");
            return Err(ScrapeError::Malformed(first_line(first)));
        }
        Some(P::Collect(v)) => v.len(),
        None => 0,
    };
    let shape = SHAPES
        .iter()
        .max_by_key(|s| {
            metrics
                .iter()
                .filter(|m| s.prefixes.iter().any(|p| m.name.starts_with(p)))
                .count()
        })
        .filter(|s| {
            metrics
                .iter()
                .any(|m| s.prefixes.iter().any(|p| m.name.starts_with(p)))
        })
        .ok_or(ScrapeError::UnknownEngine)?;
    let mut models: BTreeMap<String, Counters> = BTreeMap::new();
    let mut read = |src: Source, set: &mut dyn FnMut(&mut Counters, f64)| {
        for (metric_name, part) in src {
            let mut found = false;
            for m in &metrics {
                // A histogram without its TYPE line arrives as separate `_sum`/`_count`
                // families: accept those too.
                let split = (*part == Part::Sum && m.name == format!("{metric_name}_sum"))
                    || (*part == Part::Count && m.name == format!("{metric_name}_count"));
                let (matches, want) = if &m.name == metric_name {
                    (true, *part)
                } else {
                    (split, Part::Value)
                };
                if !matches {
                    continue;
                }
                for s in &m.samples {
                    use prom_text_format_parser::ValueType;
                    let ok = match want {
                        Part::Value => s.value.value_type == ValueType::Sample,
                        Part::Sum => s.value.value_type == ValueType::Sum,
                        Part::Count => s.value.value_type == ValueType::Count,
                    };
                    if !ok {
                        continue;
                    }
                    // `le` buckets are not the total.
                    if s.labels
                        .iter()
                        .any(|l| l.key == "le" || l.key == "quantile")
                    {
                        continue;
                    }
                    let Some(v) = value_of(&s.value) else {
                        continue;
                    };
                    let model = match shape.model_label {
                        Some(key) => s
                            .labels
                            .iter()
                            .find(|l| l.key == key)
                            .map(|l| l.value.clone())
                            .unwrap_or_else(|| name.to_string()),
                        None => name.to_string(),
                    };
                    let n = models.len();
                    let model = if models.contains_key(&model) || n < MAX_MODELS {
                        model
                    } else {
                        OTHER_MODEL.to_string()
                    };
                    set(models.entry(model).or_default(), v);
                    found = true;
                }
            }
            if found {
                return;
            }
        }
    };
    read(shape.prompt_tokens, &mut |c, v| {
        add(&mut c.prompt_tokens, v)
    });
    read(shape.output_tokens, &mut |c, v| {
        add(&mut c.output_tokens, v)
    });
    read(shape.requests_finished, &mut |c, v| {
        add(c.requests_finished.get_or_insert(0.0), v)
    });
    read(shape.requests_running, &mut |c, v| {
        add(&mut c.requests_running, v)
    });
    read(shape.flops_per_gpu, &mut |c, v| {
        add(c.flops_per_gpu.get_or_insert(0.0), v)
    });
    Ok(Reading {
        engine: shape.engine,
        models,
        malformed_families,
    })
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    wattprint_core::text::printable(&l.chars().take(200).collect::<String>()).into_owned()
}

/// TensorRT-LLM's `/energy_metrics` answer (`trtllm-serve` with `enable_energy_metrics`):
/// the GPUs' cumulative energy, J.
pub fn read_trtllm_energy(body: &str) -> Option<f64> {
    #[derive(serde::Deserialize)]
    struct E {
        total_energy_j: f64,
    }
    serde_json::from_str::<E>(body)
        .ok()
        .map(|e| e.total_energy_j)
        .filter(|j| j.is_finite() && *j >= 0.0)
}

/// Cumulative counted energy at meter time `t_s`, J, interpolated linearly between samples;
/// `None` outside the samples kept.
pub fn cumulative_at(samples: &VecDeque<Sample>, t_s: f64) -> Option<f64> {
    let first = samples.front()?;
    let last = samples.back()?;
    if t_s < first.t_s || t_s > last.t_s {
        return None;
    }
    let i = samples.partition_point(|s| s.t_s < t_s);
    let b = samples.get(i)?;
    if i == 0 || b.t_s == t_s {
        return Some(b.total_j);
    }
    let a = samples.get(i - 1)?;
    let f = (t_s - a.t_s) / (b.t_s - a.t_s);
    Some(a.total_j + (b.total_j - a.total_j) * f)
}

/// One model's settled totals (monotonic).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelTotals {
    /// Energy attributed to the model while the engine served, J.
    pub energy_j: f64,
    pub output_tokens: f64,
    pub prompt_tokens: f64,
    /// Finished requests; `None` when the engine exports no such counter.
    pub requests: Option<f64>,
    /// Estimated FLOPs, all GPUs (per-GPU counter times the GPUs measured).
    pub flops: Option<f64>,
    /// Seconds of intervals in which the model was active.
    pub active_s: f64,
}

/// The settled figures of one model (what `/v1/engines` and `/metrics` show).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelFigures {
    pub model: String,
    #[serde(flatten)]
    pub totals: ModelTotals,
    pub carbon_g: f64,
    pub joules_per_output_token: Option<f64>,
    pub joules_per_request: Option<f64>,
    pub carbon_g_per_1k_output_tokens: Option<f64>,
    /// Achieved FLOP/s per W (= FLOPs per J) while serving.
    pub flops_per_watt: Option<f64>,
}

#[derive(Clone, Debug)]
struct Point {
    t_s: f64,
    models: BTreeMap<String, Counters>,
    /// The engine's own energy counter (TensorRT-LLM `/energy_metrics`), J.
    engine_energy_j: Option<f64>,
}

/// What went wrong with one target, counted.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ScrapeLosses {
    /// Scrapes that gave nothing (connection, status, size, timeout, parse).
    pub failures: u64,
    /// Of which, pages that were not Prometheus text or had no known engine metrics.
    pub malformed: u64,
    /// Families the parser refused on pages otherwise read.
    pub malformed_families: u64,
    /// Intervals whose energy was not measured (the meter's samples had rotated out, or
    /// the pending queue was full).
    pub intervals_unmeasured: u64,
    /// Counter resets seen (the engine restarted).
    pub counter_resets: u64,
}

/// The settled accounting of one scraped engine. Pure: [`observe`](Self::observe) takes the
/// scrape's counters at a meter time, [`settle`](Self::settle) the meter's samples.
#[derive(Clone, Debug)]
pub struct EngineLedger {
    pub name: String,
    pub url: String,
    pub engine: Option<Engine>,
    /// GPUs measured: a per-GPU FLOP counter is multiplied by this (at least 1).
    pub gpus: usize,
    last: Option<Point>,
    pending: VecDeque<Point>,
    models: BTreeMap<String, ModelTotals>,
    /// Energy of intervals in which no model was active, J.
    pub idle_j: f64,
    /// Energy of every settled interval, J.
    pub measured_j: f64,
    /// The engine's own energy over the settled intervals (TensorRT-LLM), J.
    pub engine_reported_j: Option<f64>,
    pub losses: ScrapeLosses,
    pub last_error: Option<String>,
    /// Unix time of the last successful scrape, s.
    pub last_ok_unix_s: Option<f64>,
    pub scrapes_ok: u64,
}

impl EngineLedger {
    pub fn new(name: &str, url: &str, gpus: usize) -> EngineLedger {
        EngineLedger {
            name: name.to_string(),
            url: url.to_string(),
            engine: None,
            gpus: gpus.max(1),
            last: None,
            pending: VecDeque::new(),
            models: BTreeMap::new(),
            idle_j: 0.0,
            measured_j: 0.0,
            engine_reported_j: None,
            losses: ScrapeLosses::default(),
            last_error: None,
            last_ok_unix_s: None,
            scrapes_ok: 0,
        }
    }

    /// Record a failed scrape.
    pub fn fail(&mut self, e: &ScrapeError) {
        self.losses.failures += 1;
        if matches!(e, ScrapeError::Malformed(_) | ScrapeError::UnknownEngine) {
            self.losses.malformed += 1;
        }
        self.last_error = Some(e.to_string());
    }

    /// Record a page read at meter time `t_s` (Unix `unix_s`).
    pub fn observe(
        &mut self,
        t_s: f64,
        unix_s: f64,
        reading: Reading,
        engine_energy_j: Option<f64>,
    ) {
        self.engine = Some(reading.engine);
        self.losses.malformed_families += reading.malformed_families as u64;
        self.last_error = None;
        self.last_ok_unix_s = Some(unix_s);
        self.scrapes_ok += 1;
        if self.pending.len() >= MAX_PENDING_POINTS {
            self.pending.pop_front();
            self.losses.intervals_unmeasured += 1;
        }
        self.pending.push_back(Point {
            t_s,
            models: reading.models,
            engine_energy_j,
        });
    }

    /// Settle every interval between scrape points that the samples now cover.
    pub fn settle(&mut self, samples: &VecDeque<Sample>) {
        let newest = samples.back().map_or(f64::NEG_INFINITY, |s| s.t_s);
        while self.pending.front().is_some_and(|p| p.t_s <= newest) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            if let Some(prev) = self.last.take() {
                match (
                    cumulative_at(samples, prev.t_s),
                    cumulative_at(samples, p.t_s),
                ) {
                    (Some(a), Some(b)) if p.t_s > prev.t_s => {
                        self.interval(&prev, &p, (b - a).max(0.0));
                    }
                    _ => self.losses.intervals_unmeasured += 1,
                }
            }
            self.last = Some(p);
        }
    }

    fn interval(&mut self, a: &Point, b: &Point, energy_j: f64) {
        let dt = b.t_s - a.t_s;
        let delta = |x: f64, y: f64, resets: &mut u64| {
            if y >= x {
                y - x
            } else {
                *resets += 1;
                y
            }
        };
        struct D {
            model: String,
            prompt: f64,
            output: f64,
            requests: Option<f64>,
            flops: Option<f64>,
            running: f64,
        }
        let mut ds = Vec::new();
        let mut resets = 0;
        for (model, c) in &b.models {
            let z = Counters::default();
            let p = a.models.get(model).unwrap_or(&z);
            let requests = c
                .requests_finished
                .map(|r| delta(p.requests_finished.unwrap_or(0.0), r, &mut resets));
            let flops = c
                .flops_per_gpu
                .map(|f| delta(p.flops_per_gpu.unwrap_or(0.0), f, &mut resets));
            ds.push(D {
                model: model.clone(),
                prompt: delta(p.prompt_tokens, c.prompt_tokens, &mut resets),
                output: delta(p.output_tokens, c.output_tokens, &mut resets),
                requests,
                flops,
                running: c.requests_running.max(p.requests_running),
            });
        }
        self.losses.counter_resets += resets.min(1);
        self.measured_j += energy_j;
        if let (Some(x), Some(y)) = (a.engine_energy_j, b.engine_energy_j) {
            *self.engine_reported_j.get_or_insert(0.0) += if y >= x { y - x } else { y };
        }
        // Weights: tokens processed; with none, requests in flight.
        let tokens: f64 = ds.iter().map(|d| d.prompt + d.output).sum();
        let running: f64 = ds.iter().map(|d| d.running).sum();
        let finished: f64 = ds.iter().filter_map(|d| d.requests).sum();
        let weight = |d: &D| {
            if tokens > 0.0 {
                (d.prompt + d.output) / tokens
            } else if running > 0.0 {
                d.running / running
            } else if finished > 0.0 {
                d.requests.unwrap_or(0.0) / finished
            } else {
                0.0
            }
        };
        let active = tokens > 0.0 || running > 0.0 || finished > 0.0;
        if !active {
            self.idle_j += energy_j;
        }
        for d in &ds {
            let w = if active { weight(d) } else { 0.0 };
            let gpus = self.gpus as f64;
            let n = self.models.len();
            let key = if self.models.contains_key(&d.model) || n < MAX_MODELS {
                d.model.clone()
            } else {
                OTHER_MODEL.to_string()
            };
            let t = self.models.entry(key).or_default();
            t.energy_j += energy_j * w;
            t.output_tokens += d.output;
            t.prompt_tokens += d.prompt;
            if let Some(r) = d.requests {
                *t.requests.get_or_insert(0.0) += r;
            }
            if let Some(f) = d.flops {
                *t.flops.get_or_insert(0.0) += f * gpus;
            }
            if w > 0.0 {
                t.active_s += dt;
            }
        }
    }

    /// Per-model figures; carbon at `g_per_j` (intensity x PUE / 3.6e6).
    pub fn figures(&self, g_per_j: f64) -> Vec<ModelFigures> {
        self.models
            .iter()
            .map(|(model, t)| {
                let per = |n: Option<f64>| n.filter(|n| *n > 0.0).map(|n| t.energy_j / n);
                let carbon_g = t.energy_j * g_per_j;
                ModelFigures {
                    model: model.clone(),
                    totals: t.clone(),
                    carbon_g,
                    joules_per_output_token: per(Some(t.output_tokens)),
                    joules_per_request: per(t.requests),
                    carbon_g_per_1k_output_tokens: (t.output_tokens > 0.0)
                        .then(|| carbon_g / t.output_tokens * 1000.0),
                    flops_per_watt: t.flops.filter(|_| t.energy_j > 0.0).map(|f| f / t.energy_j),
                }
            })
            .collect()
    }

    /// The `/v1/engines` entry.
    pub fn json(&self, g_per_j: f64) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "url": self.url,
            "engine": self.engine,
            "gpus": self.gpus,
            "scrapes_ok": self.scrapes_ok,
            "last_ok_unix_s": self.last_ok_unix_s,
            "last_error": self.last_error,
            "measured_j": self.measured_j,
            "idle_j": self.idle_j,
            "engine_reported_j": self.engine_reported_j,
            "models": self.figures(g_per_j),
            "losses": self.losses,
        })
    }
}

/// Every scraped engine, in `--scrape` order.
pub type Engines = std::sync::Arc<std::sync::Mutex<Vec<EngineLedger>>>;

/// Lock the engines, recovering after a panic elsewhere.
pub fn lock(e: &Engines) -> std::sync::MutexGuard<'_, Vec<EngineLedger>> {
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// Append the engine families to an OpenMetrics exposition (before its `# EOF`).
pub fn render(out: &mut String, engines: &[EngineLedger], g_per_j: f64) {
    use crate::metrics::escape;
    if engines.is_empty() {
        return;
    }
    type Get = fn(&ModelFigures) -> Option<f64>;
    let families: [(&str, &str, Option<&str>, &str, Get); 8] = [
        (
            "wattprint_engine_energy_joules",
            "counter",
            Some("joules"),
            "Energy attributed to each model of a scraped engine while it served (idle apart).",
            |f| Some(f.totals.energy_j),
        ),
        (
            "wattprint_engine_output_tokens",
            "counter",
            None,
            "Output tokens of each model, from the engine's own counter.",
            |f| Some(f.totals.output_tokens),
        ),
        (
            "wattprint_engine_requests",
            "counter",
            None,
            "Finished requests of each model, from the engine's own counter.",
            |f| f.totals.requests,
        ),
        (
            "wattprint_engine_joules_per_output_token",
            "gauge",
            None,
            "Energy per output token of each model since the agent started, J.",
            |f| f.joules_per_output_token,
        ),
        (
            "wattprint_engine_joules_per_request",
            "gauge",
            None,
            "Energy per finished request of each model since the agent started, J.",
            |f| f.joules_per_request,
        ),
        (
            "wattprint_engine_carbon_grams_per_1k_output_tokens",
            "gauge",
            None,
            "Operational carbon per 1000 output tokens of each model, gCO2e (PUE included).",
            |f| f.carbon_g_per_1k_output_tokens,
        ),
        (
            "wattprint_engine_flops_per_watt",
            "gauge",
            None,
            "Achieved FLOP/s per W while serving, from the engine's FLOP estimate.",
            |f| f.flops_per_watt,
        ),
        (
            "wattprint_engine_carbon_grams",
            "counter",
            None,
            "Operational carbon of each model while it served, gCO2e (PUE included).",
            |f| Some(f.carbon_g),
        ),
    ];
    let figures: Vec<(&EngineLedger, Vec<ModelFigures>)> =
        engines.iter().map(|e| (e, e.figures(g_per_j))).collect();
    for (name, kind, unit, help, get) in families {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let Some(u) = unit {
            let _ = writeln!(out, "# UNIT {name} {u}");
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let sample = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_string()
        };
        for (e, fs) in &figures {
            for f in fs {
                if let Some(v) = get(f) {
                    let _ = writeln!(
                        out,
                        "{sample}{{target=\"{}\",engine=\"{}\",model=\"{}\"}} {v}",
                        escape(&e.name),
                        e.engine.map_or("unknown", Engine::as_str),
                        escape(&f.model)
                    );
                }
            }
        }
    }
    type PerTarget = fn(&EngineLedger) -> Option<f64>;
    let per_target: [(&str, &str, PerTarget); 3] = [
        (
            "wattprint_engine_idle_energy_joules",
            "Energy of intervals in which the scraped engine served nothing.",
            |e| Some(e.idle_j),
        ),
        (
            "wattprint_engine_reported_energy_joules",
            "The engine's own GPU energy counter over the same intervals (TensorRT-LLM /energy_metrics).",
            |e| e.engine_reported_j,
        ),
        (
            "wattprint_engine_scrape_failures",
            "Scrapes of the engine's metrics that gave nothing.",
            |e| Some(e.losses.failures as f64),
        ),
    ];
    for (name, help, get) in per_target {
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "# HELP {name} {help}");
        for e in engines {
            if let Some(v) = get(e) {
                let _ = writeln!(out, "{name}_total{{target=\"{}\"}} {v}", escape(&e.name));
            }
        }
    }
}

/// One `--scrape NAME=URL` target.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub name: String,
    pub url: crate::client::HttpUrl,
}

/// Parse `NAME=URL` (`URL` plain `http://HOST:PORT/PATH`; the name 1 to 64 characters of
/// letters, digits, `-`, `_`, `.`).
pub fn parse_target(spec: &str) -> Result<Target, String> {
    let Some((name, url)) = spec.split_once('=') else {
        return Err(format!(
            "--scrape {spec:?}: give NAME=URL, e.g. vllm=http://127.0.0.1:8000/metrics"
        ));
    };
    let name = name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "--scrape {spec:?}: the name must be 1 to 64 letters, digits, '-', '_' or '.'"
        ));
    }
    let url =
        crate::client::HttpUrl::parse(url.trim()).map_err(|e| format!("--scrape {name}: {e}"))?;
    Ok(Target {
        name: name.to_string(),
        url,
    })
}

/// Scrape `target` every `period` until the task is dropped: fetch (bounded in time and
/// size), read, record in `engines[index]`, settle against the meter's samples.
pub async fn run(
    index: usize,
    target: Target,
    period: std::time::Duration,
    shared: crate::Shared,
    engines: Engines,
) {
    let timeout = period.clamp(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(10),
    );
    // The meter's clock, read once: t = t0 + elapsed.
    let (t0, i0) = {
        let st = crate::lock(&shared);
        (st.meter().now_s(), std::time::Instant::now())
    };
    let energy_url = target.url.with_path("/energy_metrics");
    let mut iv = tokio::time::interval(period);
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        iv.tick().await;
        let sent = i0.elapsed().as_secs_f64();
        let page = crate::client::get(&target.url, timeout, MAX_PAGE_BYTES).await;
        let got = i0.elapsed().as_secs_f64();
        let t_s = t0 + (sent + got) / 2.0;
        let result = page
            .map_err(ScrapeError::Fetch)
            .and_then(|body| read_page(&target.name, &String::from_utf8_lossy(&body)));
        let engine_energy_j = match &result {
            Ok(r) if r.engine == Engine::TensorrtLlm => {
                crate::client::get(&energy_url, timeout, 64 * 1024)
                    .await
                    .ok()
                    .and_then(|b| read_trtllm_energy(&String::from_utf8_lossy(&b)))
            }
            _ => None,
        };
        let samples = crate::lock(&shared).samples().clone();
        let mut all = lock(&engines);
        let Some(ledger) = all.get_mut(index) else {
            return;
        };
        match result {
            Ok(r) => ledger.observe(t_s, crate::unix_now_s(), r, engine_energy_j),
            Err(e) => {
                tracing::warn!("scraping {} ({}): {e}", target.name, target.url);
                ledger.fail(&e);
            }
        }
        ledger.settle(&samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(f64, f64)]) -> VecDeque<Sample> {
        points
            .iter()
            .map(|&(t_s, total_j)| Sample {
                t_s,
                total_j,
                power_w: vec![],
            })
            .collect()
    }

    fn reading(models: &[(&str, f64, f64, f64, f64)]) -> Reading {
        Reading {
            engine: Engine::Vllm,
            models: models
                .iter()
                .map(|&(m, prompt, output, req, running)| {
                    (
                        m.to_string(),
                        Counters {
                            prompt_tokens: prompt,
                            output_tokens: output,
                            requests_finished: Some(req),
                            requests_running: running,
                            flops_per_gpu: Some(output * 1e9),
                        },
                    )
                })
                .collect(),
            malformed_families: 0,
        }
    }

    #[test]
    fn energy_splits_by_tokens_and_idle_intervals_stay_apart() {
        // 100 W constant: 100 J per second.
        let s = samples(&[(0.0, 0.0), (10.0, 1000.0)]);
        let mut l = EngineLedger::new("e", "http://x/metrics", 2);
        l.observe(
            1.0,
            0.0,
            reading(&[("a", 0.0, 0.0, 0.0, 0.0), ("b", 0.0, 0.0, 0.0, 0.0)]),
            None,
        );
        // 1..3 s: a 30 tokens (10 prompt + 20 out), b 10 out: 200 J split 3:1.
        l.observe(
            3.0,
            0.0,
            reading(&[("a", 10.0, 20.0, 2.0, 0.0), ("b", 0.0, 10.0, 1.0, 0.0)]),
            None,
        );
        // 3..7 s: nothing moved, nothing running: 400 J idle.
        l.observe(
            7.0,
            0.0,
            reading(&[("a", 10.0, 20.0, 2.0, 0.0), ("b", 0.0, 10.0, 1.0, 0.0)]),
            None,
        );
        // Not covered by the samples yet: waits.
        l.observe(
            12.0,
            0.0,
            reading(&[("a", 10.0, 40.0, 3.0, 0.0), ("b", 0.0, 10.0, 1.0, 0.0)]),
            None,
        );
        l.settle(&s);
        assert!((l.idle_j - 400.0).abs() < 1e-9);
        assert!((l.measured_j - 600.0).abs() < 1e-9);
        let f = l.figures(1.0 / 3.6e6 * 360.0);
        assert!((f[0].totals.energy_j - 150.0).abs() < 1e-9);
        assert!((f[1].totals.energy_j - 50.0).abs() < 1e-9);
        assert_eq!(f[0].joules_per_output_token, Some(7.5));
        assert_eq!(f[0].joules_per_request, Some(75.0));
        // 150 J = 150/3.6e6 kWh x 360 g = 0.015 g over 20 tokens: 0.75 g per 1k.
        assert!((f[0].carbon_g_per_1k_output_tokens.unwrap() - 0.75).abs() < 1e-12);
        // 20 tokens x 1e9 FLOPs per GPU x 2 GPUs / 150 J.
        assert!((f[0].flops_per_watt.unwrap() - 40e9 / 150.0).abs() < 1e-3);
        // The point at 12 s settles once the meter covers it.
        l.settle(&samples(&[(0.0, 0.0), (10.0, 1000.0), (20.0, 2000.0)]));
        let f = l.figures(0.0);
        assert!((f[0].totals.energy_j - 650.0).abs() < 1e-9, "{f:?}");
        assert_eq!(f[0].totals.output_tokens, 40.0);
    }

    #[test]
    fn a_counter_reset_counts_the_new_value_and_is_recorded() {
        let s = samples(&[(0.0, 0.0), (10.0, 1000.0)]);
        let mut l = EngineLedger::new("e", "u", 1);
        l.observe(1.0, 0.0, reading(&[("a", 0.0, 500.0, 50.0, 0.0)]), None);
        l.observe(2.0, 0.0, reading(&[("a", 0.0, 8.0, 1.0, 0.0)]), None);
        l.settle(&s);
        assert_eq!(l.losses.counter_resets, 1);
        assert_eq!(l.figures(0.0)[0].totals.output_tokens, 8.0);
    }

    #[test]
    fn intervals_before_the_samples_kept_are_counted_not_guessed() {
        let mut l = EngineLedger::new("e", "u", 1);
        l.observe(1.0, 0.0, reading(&[("a", 0.0, 0.0, 0.0, 0.0)]), None);
        l.observe(2.0, 0.0, reading(&[("a", 0.0, 5.0, 1.0, 0.0)]), None);
        l.settle(&samples(&[(1.5, 10.0), (3.0, 20.0)]));
        assert_eq!(l.losses.intervals_unmeasured, 1);
        assert_eq!(l.measured_j, 0.0);
    }

    #[test]
    fn interpolation_between_samples_is_linear() {
        let s = samples(&[(0.0, 0.0), (2.0, 100.0), (4.0, 100.0)]);
        assert_eq!(cumulative_at(&s, 1.0), Some(50.0));
        assert_eq!(cumulative_at(&s, 2.0), Some(100.0));
        assert_eq!(cumulative_at(&s, 3.0), Some(100.0));
        assert_eq!(cumulative_at(&s, 4.5), None);
        assert_eq!(cumulative_at(&s, -0.1), None);
    }

    #[test]
    fn targets_parse_and_bad_ones_say_what_to_fix() {
        let t = parse_target("vllm=http://127.0.0.1:8000/metrics").unwrap();
        assert_eq!(t.name, "vllm");
        assert_eq!(t.url.port, 8000);
        assert_eq!(t.url.path_and_query, "/metrics");
        assert!(parse_target("vllm").unwrap_err().contains("NAME=URL"));
        assert!(parse_target("a b=http://x:1/")
            .unwrap_err()
            .contains("name"));
        assert!(parse_target("v=https://x/metrics")
            .unwrap_err()
            .contains("http://"));
    }

    #[test]
    fn a_page_without_engine_metrics_or_not_exposition_is_refused() {
        assert_eq!(
            read_page("x", "# TYPE foo counter\nfoo_total 1\n"),
            Err(ScrapeError::UnknownEngine)
        );
        assert!(matches!(
            read_page("x", "<html>hello</html>\n"),
            Err(ScrapeError::Malformed(_))
        ));
    }

    #[test]
    fn trtllm_energy_is_read_from_its_json() {
        assert_eq!(
            read_trtllm_energy("{\"total_energy_j\": 1234.5, \"query_time\": 9.1}"),
            Some(1234.5)
        );
        assert_eq!(
            read_trtllm_energy("{\"error\": \"Energy monitoring is not available\"}"),
            None
        );
    }

    fn fixture(name: &str) -> &'static str {
        match name {
            "vllm" => include_str!("../tests/fixtures/engines/vllm.prom"),
            "sglang" => include_str!("../tests/fixtures/engines/sglang.prom"),
            "tgi" => include_str!("../tests/fixtures/engines/tgi.prom"),
            "tensorrt-llm" => include_str!("../tests/fixtures/engines/tensorrt-llm.prom"),
            "llama-cpp" => include_str!("../tests/fixtures/engines/llama-cpp.prom"),
            _ => include_str!("../tests/fixtures/engines/ollama.prom"),
        }
    }

    #[test]
    fn every_engine_fixture_reads_to_its_counters() {
        let one = |engine: &str, target: &str| {
            let r = read_page(target, fixture(engine)).unwrap();
            assert_eq!(r.engine.as_str(), engine);
            assert_eq!(r.malformed_families, 0, "{engine}");
            r
        };
        let r = one("vllm", "v");
        let c = &r.models["meta-llama/Llama-3.1-8B-Instruct"];
        assert_eq!(
            c,
            &Counters {
                prompt_tokens: 12840.0,
                output_tokens: 5120.0,
                requests_finished: Some(32.0),
                requests_running: 3.0,
                flops_per_gpu: Some(4.5e15),
            }
        );
        let r = one("sglang", "s");
        let c = &r.models["Qwen/Qwen3-8B"];
        assert_eq!((c.prompt_tokens, c.output_tokens), (8000.0, 2500.0));
        assert_eq!(
            (c.requests_finished, c.flops_per_gpu),
            (Some(20.0), Some(1.2e15))
        );
        assert_eq!(c.requests_running, 1.0);
        // One model per server: the target's name is the model.
        let r = one("tgi", "mistral");
        let c = &r.models["mistral"];
        assert_eq!((c.prompt_tokens, c.output_tokens), (9000.0, 3200.0));
        assert_eq!((c.requests_finished, c.requests_running), (Some(40.0), 2.0));
        assert_eq!(c.flops_per_gpu, None);
        let r = one("tensorrt-llm", "t");
        let c = &r.models["undefined"];
        assert_eq!((c.prompt_tokens, c.output_tokens), (6000.0, 1500.0));
        assert_eq!(c.requests_finished, Some(30.0));
        assert_eq!(
            read_trtllm_energy(include_str!(
                "../tests/fixtures/engines/tensorrt-llm-energy.json"
            )),
            Some(51234.5678)
        );
        let r = one("llama-cpp", "gemma");
        let c = &r.models["gemma"];
        assert_eq!((c.prompt_tokens, c.output_tokens), (6886.0, 3469.0));
        assert_eq!((c.requests_finished, c.requests_running), (None, 1.0));
        let r = one("ollama", "o");
        assert_eq!(r.models.len(), 2);
        let c = &r.models["llama3.2:3b"];
        assert_eq!((c.prompt_tokens, c.output_tokens), (100.0, 500.0));
        assert_eq!(c.requests_finished, None);
    }

    #[test]
    fn models_beyond_the_cap_fold_into_other() {
        let mut page = String::from("# TYPE vllm:generation_tokens_total counter\n");
        for k in 0..(MAX_MODELS + 10) {
            page.push_str(&format!(
                "vllm:generation_tokens_total{{model_name=\"m{k}\"}} 1\n"
            ));
        }
        let r = read_page("x", &page).unwrap();
        assert_eq!(r.models.len(), MAX_MODELS + 1);
        assert_eq!(r.models[OTHER_MODEL].output_tokens, 10.0);
    }
}
