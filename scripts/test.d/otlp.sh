#!/usr/bin/env bash
# The OTLP/HTTP metrics push is behind the cargo feature `otlp` (off by default, so the
# workspace-wide lint and test runs do not see it): lint and test it here, with the feature on,
# against a mock collector on 127.0.0.1 (crates/agent/tests/otlp.rs), then against a real
# receiver: scripts/otlp_receiver.py decodes each push with the OpenTelemetry project's own
# protobuf definitions (PyPI opentelemetry-proto, in the virtualenv scripts/test.d/traces.sh
# also uses), answers the first with 503 + Retry-After, and reports what it saw.
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
OUT=$(mktemp)
"$VENV/bin/python" scripts/otlp_receiver.py "$RPORT" "$OUT" &
RECV_PID=$!
target/debug/wattprint agent --sensor model --listen "127.0.0.1:$APORT" --interval 100ms \
  --intensity 100 --otlp-endpoint "http://127.0.0.1:$RPORT" --otlp-interval 1500ms \
  --otlp-compression gzip --otlp-header 'authorization=Bearer%20t0ken' 2>/dev/null &
AGENT_PID=$!
trap 'kill $AGENT_PID $RECV_PID 2>/dev/null || true; rm -f "$OUT"' EXIT
# Three pushes: the refused one, its retry after 1 s, the next snapshot (about 4.5 s).
wait $RECV_PID
kill $AGENT_PID 2>/dev/null || true
"$PY" - "$OUT" <<'PY'
import json, sys
seen = json.load(open(sys.argv[1]))
assert not seen["errors"], seen["errors"]
r = seen["requests"]
assert len(r) == 3, len(r)
assert r[0]["digest"] == r[1]["digest"], "the retry must resend the refused snapshot"
for q in r:
    assert q["authorization"] == "Bearer t0ken", q["authorization"]
    assert q["encoding"] == "gzip", q["encoding"]
    e = q["metrics"]["wattprint.energy"]
    assert e["kind"] == "sum" and e["unit"] == "J" and e["values"], e
    assert q["metrics"]["wattprint.power"]["kind"] == "gauge"
e1, e3 = sum(r[1]["metrics"]["wattprint.energy"]["values"]), sum(r[2]["metrics"]["wattprint.energy"]["values"])
assert e3 > e1 > 0, (e1, e3)
print("otlp.sh: 3 pushes decoded by opentelemetry-proto (gzip, auth header), the 503 retried "
      "with the same snapshot, energy %.1f J then %.1f J" % (e1, e3))
PY
echo "otlp.sh: OTLP push tested with the feature on"
