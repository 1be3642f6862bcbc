#!/usr/bin/env bash
# Issue 15's "done when", end to end: the engine stand-in (examples/engine_standin.py) behind
# `wattprint agent --proxy`, scraped by the same agent (`--scrape`), on a fake RAPL tree whose
# counter advances at a known, steady power. 200 chat completions through the proxy, half
# streamed (half of those without `stream_options.include_usage`, so tokens come from counted
# chunks), four clients at a time. Checks:
#   1. each answer's bytes through the proxy equal the engine's own (the stand-in is
#      deterministic: the same request, sent directly afterwards, gives the same bytes);
#   2. /v1/requests/summary and /metrics agree: 200 requests, the same tokens and energy;
#   3. the scraper's J per output token is within 1 % of the proxy's for the same traffic
#      (and the scraper's energy is the proxy's plus at most the idle edges; see
#      docs/serving.md "Two figures for the same traffic").
# Needs python3 (standard library only) and curl. Usage: bash scripts/test.d/serving.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/agent-test.sh

apt_install curl
WATTPRINT=$(wattprint_bin)
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP_TMP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

# A steady 20 W: the counter is rewritten every 10 ms from the clock (not by increments, so
# a late wake-up does not change the power).
fake_rapl_tree "$TMP/sys" 5000000
python3 - "$TMP/sys/class/powercap/intel-rapl:0/energy_uj" <<'PY' &
import sys, time
f, t0 = sys.argv[1], time.monotonic()
with open(f, "r+") as fh:
    while True:
        fh.seek(0)
        fh.write("%015d\n" % (5000000 + int((time.monotonic() - t0) * 20e6)))
        fh.flush()
        time.sleep(0.01)
PY
PIDS+=($!)

EPORT=$(free_port)
python3 examples/engine_standin.py "$EPORT" --model standin-model --ms-per-token 0.5 --sleep-ms-per-token 12 \
  >"$TMP/engine.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$EPORT/v1/models" 30

PORT=$(free_port)
PPORT=$(free_port)
WATTPRINT_SYSFS_ROOT="$TMP/sys" timeout 300 "$WATTPRINT" agent --listen "127.0.0.1:$PORT" \
  --interval 50ms --settle-lag 1s --zone FR \
  --proxy "127.0.0.1:$PPORT=http://127.0.0.1:$EPORT" \
  --scrape "standin=http://127.0.0.1:$EPORT/metrics" 2>"$TMP/agent.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/healthz" 30
wait_http "http://127.0.0.1:$PPORT/v1/models" 30

python3 - "$TMP" "$PORT" "$PPORT" "$EPORT" <<'PY'
import http.client, json, re, sys, threading, time, urllib.request
tmp, port, pport, eport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
N, MODEL = 200, "standin-model"

def body(i):
    b = {"model": MODEL, "max_tokens": 16 + i % 17,
         "messages": [{"role": "user", "content": " ".join(["word"] * (3 + i % 11))}]}
    if i % 2:
        b["stream"] = True
        if i % 4 == 1:
            b["stream_options"] = {"include_usage": True}
    return json.dumps(b).encode()

def post(p, data):
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=60)
    c.request("POST", "/v1/chat/completions", data, {"Content-Type": "application/json"})
    r = c.getresponse()
    out = b""
    while True:  # read as a streaming client does, frame by frame
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(65536)
        if not chunk:
            break
        out += chunk
    c.close()
    return r.status, r.getheader("x-wattprint-request-id"), out

answers = [None] * N
lock = threading.Lock()
todo = list(range(N))
def worker():
    while True:
        with lock:
            if not todo:
                return
            i = todo.pop(0)
        answers[i] = post(pport, body(i))
t0 = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
traffic_s = time.monotonic() - t0
assert all(a[0] == 200 for a in answers), [a[:2] for a in answers if a[0] != 200]
ids = {a[1] for a in answers}
assert len(ids) == N and None not in ids, "every answer carries its own x-wattprint-request-id"

def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read()

# Wait until every request settled and the scraper saw the engine idle again.
deadline = time.monotonic() + 30
while True:
    s = json.loads(get("/v1/requests/summary"))
    by = [b for b in s["by_labels"] if b["labels"].get("model") == MODEL]
    e = json.loads(get("/v1/engines"))
    if sum(b["requests"] for b in by) == N and s.get("pending_spans", 0) == 0:
        m = [x for t in e["engines"] for x in t["models"] if x["model"] == MODEL]
        if m and m[0]["requests"] == N:
            break
    assert time.monotonic() < deadline, ("not settled", by, e)
    time.sleep(0.2)
metrics = get("/metrics").decode()
eng = m[0]

# 1. Bytes through the proxy equal the engine's (read directly now: same request, same bytes).
def replay(i):
    st, _, direct = post(eport, body(i))
    assert st == 200 and direct == answers[i][2], (i, answers[i][2][:200], direct[:200])
todo = list(range(N))
def replayer():
    while True:
        with lock:
            if not todo:
                return
            i = todo.pop(0)
        replay(i)
ts = [threading.Thread(target=replayer) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
assert not todo
streamed = sum(1 for i in range(N) if i % 2)

# 2. /v1/requests/summary and /metrics agree.
def metric(name, where='model="%s"' % MODEL):
    return sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
               if l.startswith(name + "{") and where in l)
proxy_j = sum(b["energy_j"] for b in by)
proxy_tokens = sum(b["tokens"] for b in by)
want_tokens = sum(16 + i % 17 for i in range(N))
close = lambda a, b, rel=1e-9: abs(a - b) <= rel * max(1.0, abs(b))
assert proxy_tokens == want_tokens, (proxy_tokens, want_tokens)
outcomes = sorted({b["labels"].get("outcome") for b in by})
assert outcomes == ["complete"], [(b["labels"], b["requests"]) for b in by]  # every client read its whole answer
assert metric("wattprint_requests_total") == N, metric("wattprint_requests_total")
assert close(metric("wattprint_request_energy_joules_total"), proxy_j), (metric("wattprint_request_energy_joules_total"), proxy_j)
assert close(metric("wattprint_request_carbon_grams_total"), sum(b["carbon_g"] for b in by))

# 3. The scraper's figure for the same traffic.
assert eng["output_tokens"] == want_tokens, (eng, want_tokens, e)
proxy_jpt = proxy_j / proxy_tokens
scrape_jpt = eng["joules_per_output_token"]
rel = (scrape_jpt - proxy_jpt) / proxy_jpt
# The scraper charges whole intervals in which the engine worked (active_s of them); the
# proxy only the time a request was open (at most traffic_s, the clients' wall time). At the
# steady 20 W the difference is the power times the idle edges of the first and last interval.
diff_j = eng["energy_j"] - proxy_j
edges_s = eng["active_s"] - traffic_s
assert -1e-6 <= diff_j <= 20.0 * (edges_s + 0.05), (diff_j, edges_s)
assert abs(rel) <= 0.01, (scrape_jpt, proxy_jpt, rel)
print(f"  {N} completions ({streamed} streamed) in {traffic_s:.1f} s: bytes equal the engine's; "
      f"summary = /metrics: {proxy_tokens} tokens, {proxy_j:.3f} J; "
      f"J/output token proxy {proxy_jpt:.5f}, scrape {scrape_jpt:.5f} ({rel*100:+.2f} %; "
      f"{diff_j:.3f} J more by the scraper, its active intervals {edges_s*1000:.0f} ms longer than the traffic)")
PY
echo "serving.sh: passed"
