#!/usr/bin/env bash
# OTLP traces in: the real OpenTelemetry Python SDK (PyPI opentelemetry-sdk and
# opentelemetry-exporter-otlp-proto-http, in a virtualenv) sends one agent task (an
# invoke_agent span over three LLM calls and two tool calls) to a `wattprint agent` on
# 127.0.0.1 (utilisation-model sensors: any machine), over OTLP/HTTP protobuf; the trace must
# come back settled with energy on every span and a total equal to its leaves' energy.
# Usage: bash scripts/test.d/traces.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
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
cargo build -p wattprint-cli --locked --quiet
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$(mktemp)
target/debug/wattprint agent --sensor model --listen "127.0.0.1:$PORT" --interval 100ms \
  --settle-lag 2s --intensity 100 2>"$LOG" &
AGENT_PID=$!
trap 'kill $AGENT_PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
  grep -q listening "$LOG" && break
  sleep 0.1
done
OUT=$(WATTPRINT_AGENT="http://127.0.0.1:$PORT" "$VENV/bin/python" examples/agent_trace.py)
echo "$OUT" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
spans = d["spans"]
assert d["status"] == "settled", d
assert len(spans) == 6, len(spans)
assert all(s["energy_j"] is not None and s["energy_j"] > 0 for s in spans), spans
leaves = sum(s["own_energy_j"] for s in spans if s["method"] == "attributed")
root = [s for s in spans if s["operation"] == "invoke_agent"][0]
assert abs(d["energy_j"] - leaves) < 1e-9 and abs(root["energy_j"] - d["energy_j"]) < 1e-9, d
assert sorted(s["operation"] for s in spans) == ["chat"] * 3 + ["execute_tool"] * 2 + ["invoke_agent"]
print("traces.sh: 6 spans settled, task total %.3f J = its 5 leaves" % d["energy_j"])
'
