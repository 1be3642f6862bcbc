#!/usr/bin/env bash
# Fleet test on real engines: three `wattprint agent`s (each on its own fake RAPL tree, 10,
# 20 and 30 W, each with a --spool), two node Prometheus servers scraping them (two agents
# and one) and remote-writing to a central VictoriaMetrics and to a central Prometheus with
# its remote-write receiver (Debian packages `victoria-metrics` and `prometheus`, installed if
# missing). Mid-run one agent is SIGKILLed and restarted on its spool. Then, at both centres:
# every agent's energy series is counted once (three series, no reset, never decreasing), the
# PromQL total equals the sum of the agents' own counters, the restart's downtime arrived,
# and deploy/prometheus/wattprint-rules.yml evaluates. Bounded in time; everything cleaned up.
# Usage: bash scripts/test.d/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/agent-test.sh

apt_install prometheus victoria-metrics curl
for b in prometheus promtool victoria-metrics; do
  command -v "$b" >/dev/null || { echo "fleet.sh: $b not installed" >&2; exit 1; }
done
WATTPRINT=$(wattprint_bin)
promtool check rules deploy/prometheus/wattprint-rules.yml >/dev/null

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

PORTS=() AGENT_PIDS=() ADVANCERS=()
# Agents run without `timeout` in front: the SIGKILL below must reach the agent itself (the
# EXIT trap stops them all).
start_agent() { # k port
  WATTPRINT_SYSFS_ROOT="$TMP/sys$1" WATTPRINT_PROCFS_ROOT=/proc "$WATTPRINT" agent \
    --listen "127.0.0.1:$2" --interval 200ms --zone FR --pue 1.0 --spool "$TMP/spool$1.sqlite" \
    2>>"$TMP/agent$1.log" &
  AGENT_PIDS[$1]=$!
  PIDS+=($!)
}
for k in 0 1 2; do
  fake_rapl_tree "$TMP/sys$k" $((1000000 * (k + 1)))
  advance_rapl "$TMP/sys$k" $((1000000 * (k + 1))) &
  ADVANCERS+=($!)
  PIDS+=($!)
  PORTS+=("$(free_port)")
  start_agent "$k" "${PORTS[$k]}"
done
for port in "${PORTS[@]}"; do wait_http "http://127.0.0.1:$port/healthz" 30; done

VM_PORT=$(free_port)
timeout 300 victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$TMP/vm" \
  -retentionPeriod=1d -search.latencyOffset=0s -search.disableCache \
  >"$TMP/vm.log" 2>&1 &
PIDS+=($!)
CENTRAL_PORT=$(free_port)
cat >"$TMP/central.yml" <<YML
global:
  evaluation_interval: 1s
rule_files: ["$PWD/deploy/prometheus/wattprint-rules.yml"]
YML
timeout 300 prometheus --config.file="$TMP/central.yml" --storage.tsdb.path="$TMP/central" \
  --web.enable-remote-write-receiver --web.listen-address="127.0.0.1:$CENTRAL_PORT" \
  >"$TMP/central.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$VM_PORT/health" 60 || { tail -20 "$TMP/vm.log"; exit 1; }
wait_http "http://127.0.0.1:$CENTRAL_PORT/-/ready" 60 || { tail -20 "$TMP/central.log"; exit 1; }

NODE_PORTS=()
node_prom() { # name targets...
  local name=$1 port
  shift
  port=$(free_port)
  NODE_PORTS+=("$port")
  local targets
  targets=$(printf '"127.0.0.1:%s",' "$@")
  cat >"$TMP/$name.yml" <<YML
global:
  scrape_interval: 500ms
  scrape_timeout: 400ms
  external_labels: { node_prometheus: "$name" }
scrape_configs:
  - job_name: wattprint
    static_configs: [{ targets: [${targets%,}] }]
remote_write:
  - url: http://127.0.0.1:$VM_PORT/api/v1/write
    queue_config: { batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s }
  - url: http://127.0.0.1:$CENTRAL_PORT/api/v1/write
    queue_config: { batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s }
YML
  timeout 300 prometheus --config.file="$TMP/$name.yml" --storage.tsdb.path="$TMP/$name-tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/-/ready" 60 || { tail -20 "$TMP/$name.log"; exit 1; }
}
node_prom node-a "${PORTS[0]}" "${PORTS[1]}"
node_prom node-b "${PORTS[2]}"
START=$(date +%s)

# A job on every agent, ended after the restart below.
IDS=()
for port in "${PORTS[@]}"; do
  IDS+=("$(curl -fsS -X POST -H "Content-Type: application/json" "http://127.0.0.1:$port/v1/windows" \
    -d '{"name":"job-f"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
done
sleep 3
# Mid-run: agent 1 is killed (no clean stop) and restarted on its spool, same address.
kill -KILL "${AGENT_PIDS[1]}"
wait "${AGENT_PIDS[1]}" 2>/dev/null || true
sleep 1.5
start_agent 1 "${PORTS[1]}"
wait_http "http://127.0.0.1:${PORTS[1]}/healthz" 30
grep -q "resumed from the spool: 1 open window" "$TMP/agent1.log" \
  || { echo "fleet.sh: agent 1 did not resume its window" >&2; cat "$TMP/agent1.log"; exit 1; }
sleep 3
for k in 0 1 2; do
  curl -fsS -X POST -H "Content-Type: application/json" \
    "http://127.0.0.1:${PORTS[$k]}/v1/windows/${IDS[$k]}/end" -d '{}' >"$TMP/report$k.json"
done
# Quiesce: the counters stop, the agents take a final sample.
for p in "${ADVANCERS[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
sleep 1
for k in 0 1 2; do curl -fsS "http://127.0.0.1:${PORTS[$k]}/metrics" >"$TMP/metrics$k.txt"; done

python3 - "$TMP" "$VM_PORT" "$CENTRAL_PORT" "$START" <<'PY'
import json, sys, time, urllib.parse, urllib.request
tmp, vm, central, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ENERGY = 'wattprint_energy_joules_total{counted="true"}'

def get(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        d = json.load(r)
    assert d["status"] == "success", d
    return d["data"]["result"]

def scalar(port, q):
    r = get(port, "/api/v1/query", query=q)
    return float(r[0]["value"][1]) if r else None

def agent_value(k, name, must=""):
    for line in open(f"{tmp}/metrics{k}.txt"):
        if (line.startswith(name + "{") or line.startswith(name + " ")) and must in line:
            return float(line.rsplit(" ", 1)[1])
    raise SystemExit(f"no {name} in agent {k}'s metrics")

want_energy = sum(agent_value(k, "wattprint_energy_joules_total", 'counted="true"') for k in range(3))
reports = [json.load(open(f"{tmp}/report{k}.json")) for k in range(3)]
want_window = sum(r["energy"]["total_j"] for r in reports)
assert any("was down" in g["reason"] for g in reports[1]["energy"]["gaps"]), reports[1]["energy"]["gaps"]
want_downtime = agent_value(1, "wattprint_agent_downtime_seconds_total")
assert want_downtime > 1.0, want_downtime

checks = {
    f"sum({ENERGY})": want_energy,
    'sum(wattprint_window_energy_joules_total{window="job-f"})': want_window,
    "sum(wattprint_agent_downtime_seconds_total)": want_downtime,
    f"count({ENERGY})": 3.0,
    f"sum(resets({ENERGY}[10m]))": 0.0,
}
for name, port in (("VictoriaMetrics", vm), ("central Prometheus", central)):
    deadline = time.time() + 60
    while True:
        got = {q: scalar(port, q) for q in checks}
        if all(g is not None and abs(g - w) <= 1e-9 * max(1.0, w) for q, w in checks.items() for g in [got[q]]):
            break
        if time.time() > deadline:
            sys.exit(f"{name}: totals never matched the agents'\n got  {got}\n want {checks}")
        time.sleep(0.5)
    # Every agent's energy series at the centre never decreased, across the kill and restart.
    series = get(port, "/api/v1/query_range", query=ENERGY, start=start, end=time.time(), step="0.5")
    assert len(series) == 3, f"{name}: {len(series)} series"
    for s in series:
        v = [float(x[1]) for x in s["values"]]
        bad = [(a, b) for a, b in zip(v, v[1:]) if b < a]
        assert not bad, f"{name}: {s['metric'].get('instance')} went back: {bad[:3]}"
    window_q = 'sum(wattprint_window_energy_joules_total{window="job-f"})'
    print(f"  {name}: {got[f'sum({ENERGY})']:.3f} J over 3 agents (agents: {want_energy:.3f} J), "
          f"job {got[window_q]:.3f} J, "
          f"downtime {got['sum(wattprint_agent_downtime_seconds_total)']:.2f} s, no reset")

# The recording rules evaluate on the central Prometheus.
# The rule evaluates every second over what has arrived: an evaluation may come before the
# last agent's final sample was written, so wait until it has caught up (or the deadline).
deadline = time.time() + 45
rec = None
while rec is None or abs(rec - want_window) > 1e-9 * want_window:
    if time.time() > deadline:
        sys.exit(f"the recording rule wattprint:window_energy_joules:sum gave {rec}, not {want_window}")
    time.sleep(0.5)
    rec = scalar(central, 'wattprint:window_energy_joules:sum{window="job-f"}')
print(f"  recording rule wattprint:window_energy_joules:sum{{window=\"job-f\"}} = {rec:.3f} J")
PY
echo "fleet.sh: both centres count each agent once, through a SIGKILL and restart, and equal the agents' sums"
