#!/usr/bin/env bash
# wattprint against its peers (issue 17), run by hand, not part of .ci/run: installs the peers
# into a scratch directory, runs each and wattprint on the same workloads, interleaved in one
# sitting, and prints, as ratios to wattprint:
#   - start-up added: median wall time of `TOOL -- true` minus bare `true`;
#   - CPU per second of measuring, at each tool's default sampling and at 1 s: the tool's CPU
#     (user + system, its whole process tree, from wait4) wrapping `sleep LONG_S` minus
#     wrapping `true`, divided by LONG_S;
#   - peak RSS (wait4's ru_maxrss: the largest process of the tree);
#   - error against a known energy: a synthetic powercap tree (one package zone) whose counter
#     the workload itself advances by exactly POWER_W x SIM_S joules.
# As root every measurement runs in a private mount namespace where that tree is bind-mounted
# over /sys/class/powercap (peers read the real path; wattprint is pinned to it with
# --sensor rapl-powercap), so each tool starts as on a machine with RAPL; outside the
# accuracy runs a background process advances the counter at POWER_W. Not root: the host's
# own sensors, and no accuracy figures.
# Peers: CodeCarbon (PyPI, pinned, in a scratch virtualenv; wrapped the way its docs show, an
# OfflineEmissionsTracker around the command) and joule-profiler (crates.io, pinned, built
# with cargo install when it builds within BUILD_LIMIT_S). Tried and left out: scaphandre
# (crates.io 1.0.0: no command wrapper, an agent that prints power per period; it refuses to
# start without the intel_rapl kernel modules listed in /proc/modules, which no bind mount
# can fake) and Alumet (its agent is not published on crates.io as a binary crate: built from
# its git repository only).
# Usage: bash scripts/bench-peers.sh
#   env: SCRATCH=/tmp/wattprint-peers ROUNDS=3 LONG_S=20 STARTS=10 POWER_W=25 SIM_S=10
#        BUILD_LIMIT_S=900 (a build cut short resumes on the next run: its target directory is
#        kept in SCRATCH) PEERS="codecarbon joule-profiler" WATTPRINT_BIN=(default: a release
#        build of this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCRATCH=${SCRATCH:-/tmp/wattprint-peers}
ROUNDS=${ROUNDS:-3}
LONG_S=${LONG_S:-20}
STARTS=${STARTS:-10}
POWER_W=${POWER_W:-25}
SIM_S=${SIM_S:-10}
BUILD_LIMIT_S=${BUILD_LIMIT_S:-900}
PEERS=${PEERS:-codecarbon joule-profiler}
CODECARBON=codecarbon==3.3.2
JOULE_PROFILER=joule-profiler-cli@3.0.1
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)
# As root: the whole run in a private mount namespace (the mounts below vanish with it).
if [ "$(id -u)" = 0 ] && [ -z "${PEERS_NS:-}" ] && command -v unshare >/dev/null; then
  exec unshare -m --propagation private env PEERS_NS=1 SCRATCH="$SCRATCH" bash "$0" "$@"
fi

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%FT%TZ)"
[ -x /usr/bin/time ] || { echo "bench-peers.sh: needs GNU time (/usr/bin/time: apt-get install time)" >&2; exit 1; }
if [ -n "${WATTPRINT_BIN:-}" ]; then
  WP=$(realpath "$WATTPRINT_BIN")
else
  cargo build --release --locked -p wattprint-cli 2>&1 | tail -1
  WP="$ROOT/${CARGO_TARGET_DIR:-target}/release/wattprint"
fi
export WATTPRINT_DB="$SCRATCH/history.sqlite"

# --- peers --------------------------------------------------------------------------------
tools=(wattprint)
wanted() { case " $PEERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if wanted codecarbon; then
  if [ ! -x "$SCRATCH/venv/bin/python" ]; then python3 -m venv "$SCRATCH/venv"; fi
  if "$SCRATCH/venv/bin/pip" install --quiet --disable-pip-version-check "$CODECARBON"; then
    tools+=(codecarbon)
  else
    echo "-- CodeCarbon did not install: left out"
  fi
fi
JP="$SCRATCH/cargo/bin/joule-profiler"
if wanted joule-profiler && [ ! -x "$JP" ]; then
  echo "-- building $JOULE_PROFILER (at most $BUILD_LIMIT_S s)"
  start=$(date +%s)
  if CARGO_TARGET_DIR="$SCRATCH/cargo-target" timeout "$BUILD_LIMIT_S" \
    cargo install --quiet --locked --root "$SCRATCH/cargo" \
    "$JOULE_PROFILER" >"$SCRATCH/joule-profiler-build.log" 2>&1; then
    echo "-- built in $(($(date +%s) - start)) s"
  else
    echo "-- joule-profiler did not build within $BUILD_LIMIT_S s: left out (see $SCRATCH/joule-profiler-build.log)"
  fi
fi
wanted joule-profiler && [ -x "$JP" ] && tools+=(joule-profiler)
echo "== tools: ${tools[*]}"

# --- the synthetic powercap tree: one package zone, laid out as the kernel lays it out ------
fake="$SCRATCH/sys"
rm -rf "$fake"
dev="$fake/devices/virtual/powercap/intel-rapl"
mkdir -p "$dev/intel-rapl:0" "$fake/class/powercap"
ln -s "$dev" "$fake/class/powercap/intel-rapl"
# As the kernel has it; CodeCarbon looks for RAPL at /sys/class/powercap/intel-rapl/subsystem.
ln -s ../../../../class/powercap "$dev/subsystem"
ln -s "$dev/intel-rapl:0" "$fake/class/powercap/intel-rapl:0"
echo 1 >"$dev/enabled"
echo package-0 >"$dev/intel-rapl:0/name"
echo 262143328850 >"$dev/intel-rapl:0/max_energy_range_uj"
echo 125000000 >"$dev/intel-rapl:0/constraint_0_max_power_uw"
echo long_term >"$dev/intel-rapl:0/constraint_0_name"
printf '%020d\n' 1000000 >"$dev/intel-rapl:0/energy_uj"
counter="$dev/intel-rapl:0/energy_uj"
if [ -n "${PEERS_NS:-}" ]; then
  # /sys/class rebuilt on a tmpfs from the real entries, plus the fake powercap (a machine
  # without RAPL has no /sys/class/powercap to mount over).
  mkdir -p "$SCRATCH/real-class"
  mount --bind /sys/class "$SCRATCH/real-class"
  mount -t tmpfs tmpfs /sys/class
  for e in "$SCRATCH"/real-class/*; do
    n=$(basename "$e")
    mkdir "/sys/class/$n"
    mount --bind "$e" "/sys/class/$n"
  done
  mkdir -p /sys/class/powercap
  mount --bind "$fake/class/powercap" /sys/class/powercap
  # joule-profiler reads /sys/devices/virtual/powercap itself: the same for /sys/devices/virtual.
  mkdir -p "$SCRATCH/real-virtual"
  mount --bind /sys/devices/virtual "$SCRATCH/real-virtual"
  mount -t tmpfs tmpfs /sys/devices/virtual
  for e in "$SCRATCH"/real-virtual/*; do
    n=$(basename "$e")
    mkdir "/sys/devices/virtual/$n"
    mount --bind "$e" "/sys/devices/virtual/$n"
  done
  mkdir -p /sys/devices/virtual/powercap
  mount --bind "$fake/devices/virtual/powercap" /sys/devices/virtual/powercap
  echo "== /sys/class/powercap is the synthetic tree (private mount namespace)"
  # The hardware at rest: the counter advances at POWER_W (every 10 ms) until phase 3.
  python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR); w = float(sys.argv[2])
e0 = int(os.pread(fd, 32, 0)); t0 = time.monotonic()
while True:
    os.pwrite(fd, b"%020d\n" % (e0 + round(w * (time.monotonic() - t0) * 1e6)), 0)
    time.sleep(0.01)
' "$counter" "$POWER_W" &
  background=$!
  trap 'kill $background 2>/dev/null || true' EXIT
else
  echo "== not root: the host's own sensors, no accuracy figures"
fi

# CodeCarbon around a command, as its docs show it (an offline tracker around the work);
# prints its CPU energy (RAPL) and total, J, as JSON on the last line of stderr.
cat >"$SCRATCH/cc_wrap.py" <<'PY'
import json, subprocess, sys
from codecarbon import OfflineEmissionsTracker
args = sys.argv[1:]
kw = {}
if args[0] != "--":
    kw["measure_power_secs"] = float(args[0])
    args = args[1:]
args = args[1:]
t = OfflineEmissionsTracker(country_iso_code="FRA", log_level="error", save_to_file=False, **kw)
t.start()
rc = subprocess.call(args)
t.stop()
d = t.final_emissions_data
print(json.dumps({"cpu_j": d.cpu_energy * 3.6e6, "total_j": d.energy_consumed * 3.6e6}), file=sys.stderr)
sys.exit(rc)
PY

# How each tool wraps a command: wrap TOOL SAMPLING CMD...; SAMPLING is `default` or `1s`.
wrap() {
  local tool=$1 sampling=$2; shift 2
  case "$tool/$sampling" in
    wattprint/default) echo "$WP" run -o "$SCRATCH/wp.json" -- "$@" ;;
    wattprint/1s) echo "$WP" run --interval 1s -o "$SCRATCH/wp.json" -- "$@" ;;
    codecarbon/default) echo "$SCRATCH/venv/bin/python" "$SCRATCH/cc_wrap.py" -- "$@" ;;
    codecarbon/1s) echo "$SCRATCH/venv/bin/python" "$SCRATCH/cc_wrap.py" 1 -- "$@" ;;
    # joule-profiler reads its counters at the command's start and end (and its phases):
    # it has no sampling period, so its default is also its 1 s figure.
    # As root it needs --use-root to run the command; pinned to powercap as wattprint is.
    joule-profiler/*) echo "$JP" --output-format json -o "$SCRATCH/jp.json" -D profiler.rapl_backend=powercap profile --use-root -- "$@" ;;
  esac
}

# One measured process: wall s, CPU s (user + system of the whole waited-for tree), from
# wait4; peak RSS KiB from GNU time's %M around it (a process forked from this Python script
# would carry the script's own high-water mark, ~10 MiB, into ru_maxrss); the tool's stderr
# kept in $SCRATCH/last.err.
cat >"$SCRATCH/measure.py" <<'PY'
import json, os, sys, time
rss_file = sys.argv[1] + ".rss"
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execvp("/usr/bin/time", ["/usr/bin/time", "-f", "%M", "-o", rss_file] + sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "rss_kib": int(open(rss_file).read().split()[-1]), "status": status}))
PY
measure() { python3 "$SCRATCH/measure.py" "$SCRATCH/last.err" "$@"; }

results="$SCRATCH/results.jsonl"
: >"$results"
record() { # kind tool sampling json
  python3 -c 'import json,sys; d=json.loads(sys.argv[4]); d.update(kind=sys.argv[1], tool=sys.argv[2], sampling=sys.argv[3]); print(json.dumps(d))' "$@" >>"$results"
}

# --- 1. start-up, interleaved ---------------------------------------------------------------
echo "== 1. start-up: $STARTS x each, interleaved"
for i in $(seq "$STARTS"); do
  record startup bare - "$(measure true)"
  for t in "${tools[@]}"; do
    # shellcheck disable=SC2046
    record startup "$t" default "$(measure $(wrap "$t" default true))"
  done
done

# --- 2. CPU per second and peak RSS, interleaved --------------------------------------------
echo "== 2. CPU per second of measuring: $ROUNDS rounds of (true, sleep $LONG_S) per tool and sampling"
for r in $(seq "$ROUNDS"); do
  for t in "${tools[@]}"; do
    for s in default 1s; do
      [ "$t" = joule-profiler ] && [ "$s" = 1s ] && continue
      # shellcheck disable=SC2046
      record short "$t" "$s" "$(measure $(wrap "$t" "$s" true))"
      # shellcheck disable=SC2046
      record long "$t" "$s" "$(measure $(wrap "$t" "$s" sleep "$LONG_S"))"
    done
  done
done

# --- 3. accuracy on the synthetic powercap tree with known energy ------------------------
# The workload plays the hardware: POWER_W for SIM_S, the counter advanced every 10 ms and
# exactly POWER_W x SIM_S J in all; still before and after, so any window around it counts
# exactly that.
cat >"$SCRATCH/sim.py" <<'PY'
import os, sys, time
path, watts, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
fd = os.open(path, os.O_RDWR)
start_uj = int(os.pread(fd, 32, 0))
t0 = time.monotonic()
while True:
    el = min(time.monotonic() - t0, secs)
    os.pwrite(fd, b"%020d\n" % (start_uj + round(watts * el * 1e6)), 0)
    if el >= secs:
        break
    time.sleep(0.01)
PY
# joule-profiler's JSON: the package domain's energy over its global phase, J.
cat >"$SCRATCH/jp_energy.py" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
phase = next(p for p in doc["phases"] if p["start_token"] == "START" and p["end_token"] == "END")
scale = {"µJ": 1e-6, "uJ": 1e-6, "mJ": 1e-3, "J": 1.0}
m = next(m for m in phase["metrics"] if "PACKAGE" in m["name"].upper() or "PKG" in m["name"].upper())
print(m["value"] * scale[m["unit"]])
PY
known_j=$(python3 -c "print($POWER_W * $SIM_S)")
accuracy() { # tool sampling: one run on the fake tree; prints the package energy it reports, J
  local t=$1 s=$2
  # shellcheck disable=SC2046
  set -- $(wrap "$t" "$s" python3 "$SCRATCH/sim.py" "$counter" "$POWER_W" "$SIM_S")
  [ "$t" = wattprint ] && set -- "$1" run --sensor rapl-powercap "${@:3}"
  "$@" 2>"$SCRATCH/acc.err" >"$SCRATCH/acc.out" || true
  case "$t" in
    wattprint) python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(d["joules"] for d in r["energy"]["domains"] if d["name"]=="package-0"))' "$SCRATCH/wp.json" ;;
    codecarbon) tail -1 "$SCRATCH/acc.err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu_j"])' ;;
    joule-profiler) python3 "$SCRATCH/jp_energy.py" "$SCRATCH/jp.json" ;;
  esac
}
if [ -n "${PEERS_NS:-}" ]; then
  kill "$background"; wait "$background" 2>/dev/null || true
  echo "== 3. accuracy: $ROUNDS rounds of $POWER_W W for $SIM_S s ($known_j J) on the synthetic tree"
  for r in $(seq "$ROUNDS"); do
    for t in "${tools[@]}"; do
      for s in default 1s; do
        [ "$t" = joule-profiler ] && [ "$s" = 1s ] && continue
        j=$(accuracy "$t" "$s" 2>/dev/null || true)
        [ -z "$j" ] && { echo "-- $t ($s): no energy read (see $SCRATCH/acc.err)"; j=null; }
        echo "{\"kind\": \"accuracy\", \"tool\": \"$t\", \"sampling\": \"$s\", \"energy_j\": $j, \"known_j\": $known_j}" >>"$results"
      done
    done
  done
else
  echo "== 3. accuracy: skipped (needs root and unshare for the private mount namespace)"
fi

# --- table --------------------------------------------------------------------------------
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$LONG_S" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
long_s = float(sys.argv[2])
med = lambda xs: statistics.median(xs) if xs else None
bare = med([r["wall_s"] for r in rows if r["kind"] == "startup" and r["tool"] == "bare"])
tools = []
for r in rows:
    if r["tool"] != "bare" and r["tool"] not in tools:
        tools.append(r["tool"])
def sel(kind, tool, sampling=None):
    return [r for r in rows if r["kind"] == kind and r["tool"] == tool and (sampling is None or r["sampling"] == sampling)]
fig = {}
for t in tools:
    f = fig[t] = {}
    f["startup_ms"] = (med([r["wall_s"] for r in sel("startup", t)]) - bare) * 1e3
    for s in ("default", "1s"):
        short = med([r["cpu_s"] for r in sel("short", t, s)])
        long = med([r["cpu_s"] for r in sel("long", t, s)])
        f[f"cpu_{s}"] = None if short is None or long is None else (long - short) / long_s * 1e3
    f["rss_mib"] = max([r["rss_kib"] for r in rows if r["tool"] == t and "rss_kib" in r], default=0) / 1024
    acc = [r for r in sel("accuracy", t) if r.get("energy_j") is not None]
    errs = [abs(r["energy_j"] - r["known_j"]) / r["known_j"] * 100 for r in acc]
    f["err_pct"] = max(errs) if errs else None
    f["acc_n"] = len(acc)
def cell(t, k, fmt):
    v, w = fig[t][k], fig["wattprint"][k]
    if v is None:
        return "n/a"
    if t == "wattprint" or abs(w) < 1e-6 or v / w < 0:
        return fmt.format(v)
    return fmt.format(v) + f" ({v / w:.0f} x)" if abs(v / w) >= 10 else fmt.format(v) + f" ({v / w:.1f} x)"
print()
print("| tool | start-up added, ms | CPU ms per s, default | CPU ms per s, 1 s sampling | peak RSS, MiB | worst error vs known energy, % |")
print("|---|---|---|---|---|---|")
for t in tools:
    print(f"| {t} | {cell(t, 'startup_ms', '{:.1f}')} | {cell(t, 'cpu_default', '{:.3f}')} | "
          f"{cell(t, 'cpu_1s', '{:.3f}')} | {cell(t, 'rss_mib', '{:.1f}')} | "
          f"{cell(t, 'err_pct', '{:.3f}')} (of {fig[t]['acc_n']}) |")
print()
print(f"bare `true`: {bare * 1e3:.2f} ms (median). Ratios in brackets are to wattprint's figure.")
PY
