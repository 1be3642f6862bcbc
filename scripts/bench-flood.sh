#!/usr/bin/env bash
# Idle-connection flood against `wattprint agent` (issue 13's "done when"), loopback only.
#
#   scripts/bench-flood.sh [WATTPRINT_BINARY] [CONNECTIONS]     (default: target/release, 2000)
#   AGENT_NOFILE=1024 scripts/bench-flood.sh ...   (the agent's descriptor limit, as under
#                                                  systemd's LimitNOFILE; default: inherited)
#
# Starts an agent on a fake RAPL tree with its default limits (256 connections, 10 s idle
# timeout), measures its RSS and /healthz latency idle, opens CONNECTIONS idle TCP connections
# (each sends half a request line and then nothing), measures /healthz latency during the
# flood (20 requests, each on a fresh connection), closes the flood, waits 2 s and measures
# RSS again. Output, one `key value` per line:
#
#   rss_idle_kib N          agent RSS before the flood
#   healthz_idle_ms_max X   slowest of 20 /healthz before the flood
#   flood_connections N     connections the client opened
#   healthz_flood_ms_max X  slowest of 20 /healthz during the flood (target: < 100)
#   healthz_flood_failed N  /healthz requests that got no 200 during the flood (target: 0)
#   open_connections N      what /healthz reported during the flood (<= the cap)
#   rss_flood_kib N         agent RSS during the flood
#   rss_after_kib N         agent RSS 2 s after the flood closed (target: < 2 x rss_idle)
#   rss_ratio X             rss_after / rss_idle
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/agent-test.sh
BIN="${1:-target/release/wattprint}"
N="${2:-2000}"
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release -p wattprint-cli" >&2; exit 2; }
TMP=$(mktemp -d)
AGENT=""
trap '[ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null; rm -rf "$TMP"' EXIT
fake_rapl_tree "$TMP/sys" 1000000
PORT=$(free_port)
(
  [ -n "${AGENT_NOFILE:-}" ] && ulimit -n "$AGENT_NOFILE"
  WATTPRINT_SYSFS_ROOT="$TMP/sys" exec "$BIN" agent --listen "127.0.0.1:$PORT" \
    --intensity 100 --pue 1 2>"$TMP/agent.log"
) &
AGENT=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
  sleep 0.1
done
python3 - "$PORT" "$N" "$AGENT" <<'PY'
import json, resource, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 200)), hard))

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def healthz():
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    ms = (time.monotonic() - t0) * 1000
    ok = data.startswith(b"HTTP/1.1 200")
    body = json.loads(data.split(b"\r\n\r\n", 1)[1]) if ok else {}
    return ms, ok, body

def probe(k=20):
    worst, failed, body = 0.0, 0, {}
    for _ in range(k):
        ms, ok, b = healthz()
        worst = max(worst, ms)
        failed += 0 if ok else 1
        body = b or body
    return worst, failed, body

time.sleep(1)
idle = rss_kib()
print("rss_idle_kib", idle)
print("healthz_idle_ms_max %.1f" % probe()[0])
flood = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    flood.append(s)
time.sleep(0.5)
for s in flood:
    try:
        s.send(b"GET /heal")
    except OSError:
        pass
print("flood_connections", len(flood))
worst, failed, body = probe()
print("healthz_flood_ms_max %.1f" % worst)
print("healthz_flood_failed", failed)
print("open_connections", body.get("open_connections"))
print("rss_flood_kib", rss_kib())
for s in flood:
    s.close()
time.sleep(2)
after = rss_kib()
print("rss_after_kib", after)
print("rss_ratio %.2f" % (after / idle))
PY
