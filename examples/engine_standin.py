#!/usr/bin/env python3
"""A small OpenAI-compatible inference engine stand-in, to try `wattprint agent --proxy` and
`--scrape` on any machine. Standard library only; binds 127.0.0.1.

    python3 examples/engine_standin.py 8000 &
    wattprint agent --zone FR --proxy 127.0.0.1:8080=http://127.0.0.1:8000 \
        --scrape standin=http://127.0.0.1:8000/metrics

Serves `POST /v1/chat/completions`, `/v1/completions` (both with `"stream": true` as
server-sent events; `stream_options.include_usage` adds the usage chunk) and
`/v1/embeddings`, each answer with `usage`; `GET /v1/models`; and `GET /metrics` in vLLM's
shape (`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`,
`vllm:request_success_total`, `vllm:num_requests_running`, label `model_name`, the names of
crates/agent/tests/fixtures/engines/vllm.prom), whose counters are exactly the tokens served.

Models: `--model NAME` (repeatable, default `standin`); their counters are exported at zero
from the start, as vLLM does, so a scraper's first read is a clean baseline.

Deterministic: the same request body gets the same answer bytes (ids are a hash of the body,
`created` is fixed), so an answer through the proxy can be compared with one read directly.
Tokens are whitespace-separated words. The prompt counts the words of every message (or of
`prompt`); the answer has `max_tokens` words (default: 8 + the prompt's words mod 9). Each
output token busy-loops the CPU for `--ms-per-token` ms (default 2), so on a machine with
RAPL the energy follows the work.
"""

import argparse
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREATED = 1767225600  # 2026-01-01T00:00:00Z: fixed, so answers are byte-for-byte repeatable.
WORDS = "the quick brown fox jumps over a lazy dog while energy meters count every joule".split()


class Counters:
    """The vLLM-shaped counters, per model; one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.models = {}

    def _m(self, model):
        return self.models.setdefault(
            model, {"prompt": 0, "generation": 0, "running": 0, "stop": 0, "length": 0}
        )

    def add(self, model, key, n):
        with self.lock:
            self._m(model)[key] += n

    def render(self):
        with self.lock:
            snap = {k: dict(v) for k, v in self.models.items()}
        out = []

        def fam(name, kind, help_, rows):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(rows)

        def lab(model, extra=""):
            m = model.replace("\\", "\\\\").replace('"', '\\"')
            return '{engine="0",%smodel_name="%s"}' % (extra, m)

        fam("vllm:num_requests_running", "gauge", "Requests in the model execution batch.",
            [f"vllm:num_requests_running{lab(m)} {float(c['running'])}" for m, c in snap.items()])
        fam("vllm:prompt_tokens_total", "counter", "Prefill tokens processed.",
            [f"vllm:prompt_tokens_total{lab(m)} {float(c['prompt'])}" for m, c in snap.items()])
        fam("vllm:generation_tokens_total", "counter", "Generated tokens.",
            [f"vllm:generation_tokens_total{lab(m)} {float(c['generation'])}" for m, c in snap.items()])
        rows = []
        for m, c in snap.items():
            for reason in ("stop", "length"):
                extra = 'finished_reason="%s",' % reason
                rows.append(f"vllm:request_success_total{lab(m, extra)} {float(c[reason])}")
        fam("vllm:request_success_total", "counter", "Finished requests, by finish reason.", rows)
        return ("\n".join(out) + "\n").encode()


COUNTERS = Counters()
MS_PER_TOKEN = 2.0
SLEEP_MS_PER_TOKEN = 0.0
SERVED = ["standin"]


def burn(ms):
    """Busy-loop the CPU for `ms` ms, then sleep `SLEEP_MS_PER_TOKEN` ms (a token's latency)."""
    end = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < end:
        x += 1
    if SLEEP_MS_PER_TOKEN > 0:
        time.sleep(SLEEP_MS_PER_TOKEN / 1000.0)
    return x


def words(text):
    return len(str(text).split())


def prompt_tokens(body, chat):
    if chat:
        msgs = body.get("messages") or []
        return sum(words(m.get("content", "")) for m in msgs if isinstance(m, dict))
    p = body.get("prompt", "")
    return sum(words(x) for x in p) if isinstance(p, list) else words(p)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "engine-standin/1"
    sys_version = ""

    def log_message(self, *args):
        pass

    def date_time_string(self, timestamp=None):
        # Fixed, so that whole answers (headers aside from this) are repeatable.
        return "Thu, 01 Jan 2026 00:00:00 GMT"

    def send_json(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/metrics":
            data = COUNTERS.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in SERVED]})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw or b"{}")
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            self.send_json(400, {"error": {"message": "the body is not a JSON object"}})
            return
        model = str(body.get("model") or SERVED[0])
        if model not in SERVED:
            self.send_json(404, {"error": {"message": f"The model `{model}` does not exist.",
                                           "type": "NotFoundError", "code": 404}})
            return
        rid = hashlib.sha256(raw).hexdigest()[:24]
        if self.path == "/v1/embeddings":
            inp = body.get("input", "")
            items = inp if isinstance(inp, list) else [inp]
            pt = sum(words(x) for x in items)
            COUNTERS.add(model, "prompt", pt)
            COUNTERS.add(model, "stop", 1)
            data = [{"object": "embedding", "index": i, "embedding": [0.25, -0.5, 0.125]} for i in range(len(items))]
            self.send_json(200, {"object": "list", "data": data, "model": model,
                                 "usage": {"prompt_tokens": pt, "total_tokens": pt}})
            return
        chat = self.path == "/v1/chat/completions"
        if not chat and self.path != "/v1/completions":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        pt = prompt_tokens(body, chat)
        mt = body.get("max_tokens")
        ct = int(mt) if isinstance(mt, int) and mt > 0 else 8 + pt % 9
        reason = "length" if isinstance(mt, int) else "stop"
        COUNTERS.add(model, "running", 1)
        COUNTERS.add(model, "prompt", pt)
        try:
            if body.get("stream"):
                opts = body.get("stream_options") or {}
                self.stream(model, rid, chat, pt, ct, reason, bool(opts.get("include_usage")))
            else:
                text = []
                for i in range(ct):
                    burn(MS_PER_TOKEN)
                    text.append(WORDS[i % len(WORDS)])
                    COUNTERS.add(model, "generation", 1)
                text = " ".join(text)
                choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason}
                          if chat else {"index": 0, "text": text, "finish_reason": reason})
                self.send_json(200, {
                    "id": ("chatcmpl-" if chat else "cmpl-") + rid,
                    "object": "chat.completion" if chat else "text_completion",
                    "created": CREATED, "model": model, "choices": [choice],
                    "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
                })
        finally:
            COUNTERS.add(model, "running", -1)
            COUNTERS.add(model, reason, 1)

    def stream(self, model, rid, chat, pt, ct, reason, include_usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": ("chatcmpl-" if chat else "cmpl-") + rid,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": CREATED, "model": model}

        def send(doc):
            data = b"data: " + (doc if isinstance(doc, bytes) else json.dumps(doc).encode()) + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        for i in range(ct):
            burn(MS_PER_TOKEN)
            word = ("" if i == 0 else " ") + WORDS[i % len(WORDS)]
            COUNTERS.add(model, "generation", 1)
            choice = ({"index": 0, "delta": {"content": word}, "finish_reason": None}
                      if chat else {"index": 0, "text": word, "finish_reason": None})
            send(dict(base, choices=[choice]))
        last = ({"index": 0, "delta": {}, "finish_reason": reason}
                if chat else {"index": 0, "text": "", "finish_reason": reason})
        send(dict(base, choices=[last]))
        if include_usage:
            send(dict(base, choices=[], usage={"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}))
        send(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    global MS_PER_TOKEN, SLEEP_MS_PER_TOKEN, SERVED
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int, help="TCP port on 127.0.0.1")
    ap.add_argument("--ms-per-token", type=float, default=2.0, help="CPU busy time per output token, ms")
    ap.add_argument("--sleep-ms-per-token", type=float, default=0.0,
                    help="wall time per output token besides the busy time, ms (a slower engine without the CPU cost)")
    ap.add_argument("--model", action="append",
                    help="a served model name (repeatable; default: standin); others get 404, as from vLLM")
    a = ap.parse_args()
    SERVED = a.model or ["standin"]
    for m in SERVED:  # exported at zero from the start, as vLLM does for its served model
        COUNTERS.add(m, "prompt", 0)
    MS_PER_TOKEN = a.ms_per_token
    SLEEP_MS_PER_TOKEN = a.sleep_ms_per_token
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(f"engine stand-in on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
