#!/usr/bin/env bash
# The OTLP/HTTP metrics push is behind the cargo feature `otlp` (off by default, so the
# workspace-wide lint and test runs do not see it): lint and test it here, with the feature on,
# against a mock collector on 127.0.0.1 (crates/agent/tests/otlp.rs), then against a real
# receiver: scripts/otlp_receiver.py decodes each metrics push and each span export with the
# OpenTelemetry project's own protobuf definitions (PyPI opentelemetry-proto, in the
# virtualenv scripts/test.d/traces.sh also uses), answers the first of each with 503 +
# Retry-After, and reports what it saw. The spans are those of one agent task sent to the
# agent by the real OpenTelemetry Python SDK (examples/agent_trace.py).
# Usage: bash scripts/test.d/otlp.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
cargo clippy -p wattprint-agent -p wattprint-cli --features wattprint-agent/otlp,wattprint-cli/otlp --all-targets --locked -- -D warnings
cargo test -p wattprint-agent --features otlp --locked
cargo test -p wattprint-cli --features otlp --locked --test agent_cli

PY=${PYTHON:-python3}
WANT="opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2"
VENV=$ROOT/target/otel-venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.wattprint-tools" 2>/dev/null)" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $WANT
  echo "$WANT" >"$VENV/.wattprint-tools"
fi
cargo build -p wattprint-cli --features otlp --locked --quiet
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
APORT=$(free_port)
LOG=$(mktemp)
"$VENV/bin/python" scripts/otlp_receiver.py "$RPORT" &
RECV_PID=$!
target/debug/wattprint agent --sensor model --listen "127.0.0.1:$APORT" --interval 100ms \
  --settle-lag 2s --intensity 100 --otlp-endpoint "http://127.0.0.1:$RPORT" \
  --otlp-traces-endpoint "http://127.0.0.1:$RPORT" --otlp-interval 1500ms \
  --otlp-compression gzip --otlp-header 'authorization=Bearer%20t0ken' 2>"$LOG" &
AGENT_PID=$!
trap 'kill $AGENT_PID $RECV_PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
  grep -q listening "$LOG" && break
  sleep 0.1
done
# One agent task sent by the real OpenTelemetry Python SDK; the agent's own answer for it.
TRACE=$(WATTPRINT_AGENT="http://127.0.0.1:$APORT" "$VENV/bin/python" examples/agent_trace.py)
TRACE="$TRACE" "$PY" - "$RPORT" <<'PY'
import json, os, sys, time, urllib.request
doc = json.loads(os.environ["TRACE"])
base = "http://127.0.0.1:%s" % sys.argv[1]
def seen():
    with urllib.request.urlopen(base + "/seen") as r:
        return json.load(r)
def task_spans(s):
    # The first traces request was refused (503): its retry and the later ones count.
    return [x for q in s["traces"][1:] for x in q["spans"] if x["trace_id"] == doc["trace_id"]]
deadline = time.time() + 60
while True:
    s = seen()
    if s["errors"] or (len(s["requests"]) >= 3 and len(task_spans(s)) >= 6) or time.time() > deadline:
        break
    time.sleep(0.3)
urllib.request.urlopen(base + "/stop").read()
assert not s["errors"], s["errors"]

# Metrics: the 503 retried with the same snapshot; wattprint.* and hw.* names.
r = s["requests"][:3]
assert len(r) == 3, len(r)
assert r[0]["digest"] == r[1]["digest"], "the retry must resend the refused snapshot"
for q in r:
    assert q["authorization"] == "Bearer t0ken", q["authorization"]
    assert q["encoding"] == "gzip", q["encoding"]
    m = q["metrics"]
    e = m["wattprint.energy"]
    assert e["kind"] == "sum" and e["unit"] == "J" and e["values"], e
    assert m["wattprint.power"]["kind"] == "gauge"
    hw, host = m["hw.energy"], m["hw.host.energy"]
    assert hw["kind"] == "sum" and hw["monotonic"] and hw["unit"] == "J" and hw["values"], hw
    assert all(a["hw.id"] and a["hw.type"] in ("cpu", "memory", "gpu") for a in hw["attributes"]), hw
    assert host["kind"] == "sum" and host["unit"] == "J" and host["attributes"] == [{"hw.id": "host"}], host
    counted = sum(v for v, a in zip(e["values"], e["attributes"]) if a["counted"] == "true")
    assert abs(host["values"][0] - counted) < 1e-9 and abs(sum(hw["values"]) - counted) < 1e-9, (host, hw, e)
    assert m["hw.power"]["kind"] == "gauge" and m["hw.power"]["unit"] == "W"
e1 = sum(r[1]["metrics"]["hw.host.energy"]["values"])
e3 = sum(r[2]["metrics"]["hw.host.energy"]["values"])
assert e3 > e1 > 0, (e1, e3)

# Traces: the 503 retried with the same batch; every span of the task exported once, with
# its energy, equal to the agent's own per-span figures; the leaves sum to the trace total.
t = s["traces"]
assert t[0]["digest"] == t[1]["digest"], "the retry must resend the refused batch"
for q in t:
    assert q["content_type"] == "application/x-protobuf", q["content_type"]
    assert q["authorization"] == "Bearer t0ken" and q["encoding"] == "gzip", q
spans = task_spans(s)
ids = [x["span_id"] for x in spans]
assert len(ids) == 6 and len(set(ids)) == 6, ids
mine = {x["span_id"]: x for x in doc["spans"]}
for x in spans:
    a = x["attributes"]
    assert isinstance(a["wattprint.energy_j"], float) and a["wattprint.energy_j"] > 0, x
    assert isinstance(a["wattprint.carbon_g"], float), x
    assert a["wattprint.method"] == "estimated", x  # --sensor model
    assert a["gen_ai.operation.name"] == mine[x["span_id"]]["operation"], x
    assert x["service"] == "demo-agent" and x["scope"] == "wattprint.example", x
    assert abs(a["wattprint.energy_j"] - mine[x["span_id"]]["energy_j"]) < 1e-9, (x, mine[x["span_id"]])
leaves = sum(x["attributes"]["wattprint.energy_j"] for x in spans
             if x["attributes"]["wattprint.attribution"] == "attributed")
root = [x for x in spans if not x["parent_span_id"]][0]
assert abs(leaves - doc["energy_j"]) < 1e-9, (leaves, doc["energy_j"])
assert abs(root["attributes"]["wattprint.energy_j"] - doc["energy_j"]) < 1e-9, root
print("otlp.sh: metrics: 3 pushes decoded by opentelemetry-proto (gzip, auth header), the 503 "
      "retried with the same snapshot, hw.host.energy %.1f J then %.1f J; traces: %d requests, "
      "the 503 retried with the same batch, 6 SDK spans exported once each with "
      "wattprint.energy_j, leaves %.3f J = trace total %.3f J" % (e1, e3, len(t), leaves, doc["energy_j"]))
PY
echo "otlp.sh: OTLP push and span export tested with the feature on"
