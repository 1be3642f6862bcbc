#!/usr/bin/env bash
# Fleet test: a real Prometheus (Debian package `prometheus`, installed if missing) on
# 127.0.0.1 scrapes two `wattprint agent`s, each pointed at its own fake RAPL sysfs tree whose
# counter advances (10 W and 25 W). One job runs on both machines: a window named `job-a` on
# each, and request spans labelled service="chat" on each. A PromQL query through Prometheus'
# HTTP API must give, for the job summed across both agents, exactly what the agents
# reported (window reports, request summaries). Bounded in time; everything is cleaned up.
# Usage: bash scripts/test.d/prometheus.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/agent-test.sh

apt_install prometheus curl
command -v prometheus >/dev/null || { echo "prometheus.sh: prometheus not installed" >&2; exit 1; }
WATTPRINT=$(wattprint_bin)

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

PORTS=()
for k in 0 1; do
  fake_rapl_tree "$TMP/sys$k" $((1000000 * (k + 1)))
  advance_rapl "$TMP/sys$k" $(( (k == 0 ? 1000000 : 2500000) )) &
  PIDS+=($!)
  port=$(free_port)
  PORTS+=("$port")
  WATTPRINT_SYSFS_ROOT="$TMP/sys$k" WATTPRINT_PROCFS_ROOT=/proc timeout 300 "$WATTPRINT" agent \
    --listen "127.0.0.1:$port" --interval 200ms --settle-lag 1s --zone FR --pue 1.0 \
    2>"$TMP/agent$k.log" &
  PIDS+=($!)
done
for port in "${PORTS[@]}"; do wait_http "http://127.0.0.1:$port/healthz" 30; done

PROM_PORT=$(free_port)
cat >"$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: wattprint
    static_configs:
      - targets: ["127.0.0.1:${PORTS[0]}", "127.0.0.1:${PORTS[1]}"]
YML
timeout 300 prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 60 || { tail -20 "$TMP/prometheus.log"; exit 1; }

# The job: a window on each agent, and request spans on each, for about two seconds.
IDS=()
for port in "${PORTS[@]}"; do
  IDS+=("$(curl -fsS -X POST -H "Content-Type: application/json" "http://127.0.0.1:$port/v1/windows" \
    -d '{"name":"job-a","labels":{"team":"search"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')")
done
for i in 1 2 3 4; do
  sleep 0.5
  spans=$(python3 -c 'import json,time; t=time.time(); print(json.dumps([
    {"start_unix_s": t - 0.4, "end_unix_s": t - 0.1, "tokens": 120, "labels": {"service": "chat"}},
    {"start_unix_s": t - 0.3, "end_unix_s": t, "tokens": 40, "labels": {"service": "chat"}},
    {"start_unix_s": t - 0.2, "end_unix_s": t, "labels": {"service": "batch"}}]))')
  for port in "${PORTS[@]}"; do
    curl -fsS -o /dev/null -X POST -H "Content-Type: application/json" "http://127.0.0.1:$port/v1/spans" -d "$spans"
  done
done
for k in 0 1; do
  curl -fsS -X POST -H "Content-Type: application/json" "http://127.0.0.1:${PORTS[$k]}/v1/windows/${IDS[$k]}/end" \
    -d '{"inferences": 8, "tokens": 640}' >"$TMP/report$k.json"
done
# Wait until both agents settled every span (settle lag 1 s).
for port in "${PORTS[@]}"; do
  for i in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/v1/requests/summary" >"$TMP/summary-$port.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["pending_spans"]==0 and d["summary"]["requests"]==12 else 1)' \
      "$TMP/summary-$port.json" && break
    [ "$i" -lt 100 ] || { echo "agent on $port did not settle its spans" >&2; cat "$TMP/summary-$port.json"; exit 1; }
    sleep 0.1
  done
done

python3 - "$TMP" "$PROM_PORT" "${PORTS[@]}" <<'PY'
import json, sys, time, urllib.parse, urllib.request
tmp, prom, ports = sys.argv[1], sys.argv[2], sys.argv[3:]

def promql(q):
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        d = json.load(r)
    assert d["status"] == "success", d
    return d["data"]["result"]

reports = [json.load(open(f"{tmp}/report{k}.json")) for k in range(2)]
summaries = [json.load(open(f"{tmp}/summary-{p}.json")) for p in ports]
want_window_j = sum(r["energy"]["total_j"] for r in reports)
want_window_g = sum(r["carbon"]["total_g"] for r in reports)
want_chat_j = sum(b["energy_j"] for s in summaries for b in s["by_labels"] if b["labels"] == {"service": "chat"})
assert all(r["energy"]["total_j"] > 0 for r in reports), reports
assert want_chat_j > 0, summaries

# Wait until Prometheus scraped the final values of both agents (at most 60 s).
deadline = time.time() + 60
checks = {
    'sum(wattprint_window_energy_joules_total{job="wattprint",window="job-a"})': want_window_j,
    'sum(wattprint_window_carbon_grams_total{job="wattprint",window="job-a"})': want_window_g,
    'sum(wattprint_request_energy_joules_total{job="wattprint",service="chat"})': want_chat_j,
}
while True:
    got = {}
    for q in checks:
        res = promql(q)
        got[q] = float(res[0]["value"][1]) if res else None
    n = promql('count(wattprint_window_energy_joules_total{job="wattprint",window="job-a"})')
    both = bool(n) and n[0]["value"][1] == "2"
    ok = both and all(g is not None and abs(g - w) <= 1e-9 * max(1.0, w) for g, w in
                      ((got[q], checks[q]) for q in checks))
    if ok:
        break
    if time.time() > deadline:
        sys.exit(f"PromQL results never matched the agents' reports:\n got {got}\n want {checks}")
    time.sleep(0.5)
for q, w in checks.items():
    print(f"  {q} = {got[q]!r} (agents reported {w!r})")
per_agent = promql('wattprint_window_energy_joules_total{window="job-a"}')
print(f"  per agent: {sorted(float(r['value'][1]) for r in per_agent)}; the 25 W machine used more: "
      f"{max(r['energy']['total_j'] for r in reports) / min(r['energy']['total_j'] for r in reports):.2f}x")
PY
echo "prometheus.sh: PromQL sums across both agents equal the agents' own reports"
