#!/usr/bin/env bash
# Browser test of the live dashboard: runs `wattprint agent` on a fake RAPL sysfs tree whose
# counter advances, reports request spans, then loads `/` in headless Chromium (Debian
# `chromium`, installed if missing) and checks the DOM after the page's scripts ran: uPlot drew
# the power chart with data points (the page writes their count into `data-points` from
# uPlot's draw hook), and the totals and recent requests show the attributed requests.
# Usage: bash scripts/test.d/dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/agent-test.sh

apt_install chromium curl
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "dashboard.sh: chromium not installed" >&2; exit 1; }
WATTPRINT=$(wattprint_bin)

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP_TMP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

fake_rapl_tree "$TMP/sys" 5000000
advance_rapl "$TMP/sys" 1500000 &
PIDS+=($!)
PORT=$(free_port)
WATTPRINT_SYSFS_ROOT="$TMP/sys" timeout 300 "$WATTPRINT" agent --listen "127.0.0.1:$PORT" \
  --interval 200ms --settle-lag 500ms --zone FR 2>"$TMP/agent.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/healthz" 30

sleep 1
spans=$(python3 -c 'import json,time; t=time.time(); print(json.dumps([
  {"start_unix_s": t - 0.6, "end_unix_s": t - 0.1, "tokens": 64, "labels": {"model": "dash-test-model"}},
  {"start_unix_s": t - 0.4, "end_unix_s": t - 0.1, "tokens": 32, "labels": {"model": "dash-test-model"}}]))')
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$PORT/v1/spans" -d "$spans"
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$PORT/v1/windows" -d '{"name":"dash-window"}'
for i in $(seq 1 100); do
  n=$(curl -fsS "http://127.0.0.1:$PORT/v1/requests/summary" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["requests"])')
  [ "$n" = 2 ] && break
  [ "$i" -lt 100 ] || { echo "dashboard.sh: spans never settled" >&2; exit 1; }
  sleep 0.1
done

timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
  --user-data-dir="$TMP/profile" --virtual-time-budget=10000 \
  --dump-dom "http://127.0.0.1:$PORT/" >"$TMP/dom.html" 2>"$TMP/chromium.log" || {
  echo "dashboard.sh: chromium failed" >&2; tail -20 "$TMP/chromium.log" >&2; exit 1; }

python3 - "$TMP/dom.html" <<'PY'
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'id="chart"[^>]*data-points="(\d+)"', dom) or re.search(r'data-points="(\d+)"[^>]*id="chart"', dom)
assert m, "no #chart with data-points in the DOM"
points = int(m.group(1))
assert points > 0, f"uPlot drew no data points (data-points={points})"
assert "<canvas" in dom, "uPlot did not create its canvas"
assert "package-0" in dom, "the legend does not name the domain"
assert "dash-test-model" in dom, "recent requests are not shown"
assert "dash-window" in dom, "the active window is not shown"
status = re.search(r'id="status">([^<]*)<', dom)
assert status and status.group(1).startswith("updated"), f"the page could not poll the agent: {status and status.group(1)!r}"
print(f"  chart drew {points} data points; recent requests and the active window are shown")
PY
echo "dashboard.sh: the dashboard rendered with data in headless Chromium"
