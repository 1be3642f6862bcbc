#!/usr/bin/env bash
# Browser test of the live dashboard: runs `wattprint agent` on a fake RAPL sysfs tree whose
# counter advances, reports request spans, then loads `/` in headless Chromium (Debian
# `chromium`, installed if missing) and checks the DOM after the page's scripts ran: uPlot drew
# the power chart with data points (the page writes their count into `data-points` from
# uPlot's draw hook), the totals and recent requests show the attributed requests, and the
# top-workloads table (`--workloads` on a fake cgroup v2 tree whose counters advance) shows
# the busy service with its energy and power.
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

# A fake cgroup v2 tree: every 0.1 s the node is busy 0.1 CPU-s, nginx.service 0.05, a pod
# 0.033 and its container 0.025 (written in place at a fixed width: the agent keeps the files open).
CG="$TMP/cgroup"
POD="$CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod11111111_2222_3333_4444_555555555555.slice"
CTR="$POD/cri-containerd-$(printf 'c%.0s' {1..64}).scope"
mkdir -p "$CG/system.slice/nginx.service" "$CTR"
advance_cgroups() {
  local t=0
  while true; do
    for f in "$CG:1" "$CG/system.slice/nginx.service:2" "$POD:3" "$CTR:4"; do
      # usage = t x 100000 µs / divisor.
      local d="${f%:*}" div="${f##*:}"
      printf 'usage_usec %015d\n' $((t * 100000 / div)) | dd of="$d/cpu.stat" conv=notrunc status=none
    done
    t=$((t + 1))
    sleep 0.1
  done
}
advance_cgroups &
PIDS+=($!)
sleep 0.3
PORT=$(free_port)
WATTPRINT_SYSFS_ROOT="$TMP/sys" timeout 300 "$WATTPRINT" agent --listen "127.0.0.1:$PORT" \
  --interval 200ms --settle-lag 3s --zone FR --workloads --cgroup-root "$CG" 2>"$TMP/agent.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/healthz" 30

# The sample inference loop reports its spans (and a window it ends), then waits until the
# agent attributed them; a window stays open for the dashboard.
python3 examples/inference_loop.py --agent "http://127.0.0.1:$PORT" --requests 20 \
  --model dash-test-model --wait 30
curl -fsS -o /dev/null -X POST -H "Content-Type: application/json" "http://127.0.0.1:$PORT/v1/windows" -d '{"name":"dash-window"}'

# /metrics, /v1/requests/summary and /v1/live agree.
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$TMP/metrics.txt"
curl -fsS "http://127.0.0.1:$PORT/v1/requests/summary" >"$TMP/summary.json"
curl -fsS "http://127.0.0.1:$PORT/v1/live" >"$TMP/live.json"
python3 - "$TMP" <<'PY'
import json, re, sys
tmp = sys.argv[1]
m = open(f"{tmp}/metrics.txt").read()
s = json.load(open(f"{tmp}/summary.json"))
live = json.load(open(f"{tmp}/live.json"))
def metric(name):
    tot = 0.0
    for line in m.splitlines():
        if line.startswith(name + "{") and 'model="dash-test-model"' in line:
            tot += float(line.rsplit(" ", 1)[1])
    return tot
by = [b for b in s["by_labels"] if b["labels"].get("model") == "dash-test-model"]
assert sum(b["requests"] for b in by) == 20, by
close = lambda a, b: abs(a - b) <= 1e-9 * max(1.0, abs(b))
assert close(metric("wattprint_request_energy_joules_total"), sum(b["energy_j"] for b in by))
assert close(metric("wattprint_request_carbon_grams_total"), sum(b["carbon_g"] for b in by))
assert metric("wattprint_requests_total") == 20
idle = float(re.search(r"^wattprint_idle_energy_joules_total (\S+)$", m, re.M).group(1))
# Idle energy keeps growing between the three fetches (made in this order): monotonic.
assert idle <= s["idle_j"] + 1e-9 <= live["totals"]["idle_j"] + 2e-9, (idle, s["idle_j"], live["totals"]["idle_j"])
assert close(live["totals"]["attributed_j"], s["summary"]["attributed_j"])
assert live["totals"]["requests"] == s["summary"]["requests"] == 20
print(f"  /metrics, summary and live agree: 20 requests, {s['summary']['attributed_j']:.3f} J attributed, {s['idle_j']:.3f} J idle")
PY

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
# The top-workloads table: shown (not hidden), nginx.service with energy and power.
sec = re.search(r'<div id="workloads-section"([^>]*)>', dom)
assert sec and "hidden" not in sec.group(1), f"the workloads table is hidden: {sec and sec.group(0)!r}"
row = re.search(r'<tr class="workload"><td>service</td><td></td><td></td><td>nginx\.service</td>'
                r'<td class="num">([0-9.]+)</td><td class="num">([0-9.]+)</td><td class="num">([0-9.]+)</td></tr>', dom)
assert row, "nginx.service is not in the workloads table"
j, g, w = (float(x) for x in row.groups())
assert j > 0 and g > 0 and w > 0, (j, g, w)
assert re.search(r'<tr class="workload"><td>pod</td><td></td><td>11111111-2222-3333-4444-555555555555</td><td>cccccccccccc</td>', dom), \
    "the pod's container is not in the workloads table"
assert '<tr class="workload"><td>idle</td>' in dom, "idle is not in the workloads table"
status = re.search(r'id="status">([^<]*)<', dom)
assert status and status.group(1).startswith("updated"), f"the page could not poll the agent: {status and status.group(1)!r}"
print(f"  chart drew {points} data points; recent requests, the active window and workloads are shown (nginx.service {j:.3f} J, {w:.2f} W)")
PY
echo "dashboard.sh: the dashboard rendered with data in headless Chromium"
