#!/usr/bin/env bash
# Reproduces the `wattprint run` overhead figures in docs/benchmarks.md:
#   1. `wattprint run -- true` vs bare `true` (median wall time, hyperfine);
#   2. the meter's steady-state CPU share at default settings (this machine's sensors, and a
#      fake RAPL tree of 4 zones), from the run report's own CPU time;
#   3. the same when polling 4 fake RAPL zones every 1 ms;
#   4. peak RSS of `wattprint run`.
# Usage: bash scripts/bench-run.sh   (release build; installs hyperfine with apt if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p wattprint-cli 2>&1 | tail -1
target_dir="${CARGO_TARGET_DIR:-target}"
wp="$target_dir/release/wattprint"
if ! command -v hyperfine >/dev/null; then
  apt-get install -y hyperfine >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Runs measured here are stored in a history of their own, not the user's.
export WATTPRINT_DB="$work/history.sqlite"

# A fake powercap tree with 4 zones laid out as the kernel does (nested + flat symlinks).
sys="$work/sys"
dev="$sys/devices/virtual/powercap/intel-rapl"
mkdir -p "$dev" "$sys/class/powercap"
ln -s "$dev" "$sys/class/powercap/intel-rapl"
zone() { # id dir name
  mkdir -p "$2"
  echo "$3" >"$2/name"
  echo 262143328850 >"$2/max_energy_range_uj"
  echo 125000000 >"$2/constraint_0_max_power_uw"
  printf '%020d\n' 123456789 >"$2/energy_uj"
  ln -s "$2" "$sys/class/powercap/intel-rapl:$1"
}
zone 0 "$dev/intel-rapl:0" package-0
zone 0:0 "$dev/intel-rapl:0/intel-rapl:0:0" core
zone 0:1 "$dev/intel-rapl:0/intel-rapl:0:1" uncore
zone 0:2 "$dev/intel-rapl:0/intel-rapl:0:2" dram

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['overhead'][sys.argv[2]])" "$@"; }

echo "== 1. start-up: wattprint run -- true vs true (median, 500 runs)"
# As a newcomer runs it (history stored, job cgroup where possible), then without the
# history, then without the cgroup either (what the measuring itself costs).
hyperfine -N --warmup 30 --runs 500 --export-json "$work/h.json" "true" "$wp run -- true" \
  "$wp run --no-store -- true" "$wp run --no-store --no-cgroup -- true" "$wp --version" \
  >/dev/null 2>&1
python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
t = r[0]["median"] * 1e3
print(f"true: {t:.2f} ms (median)")
for x in r[1:]:
    w = x["median"] * 1e3
    print(f"{x['command'].split('/')[-1]}: {w:.2f} ms   added: {w - t:.2f} ms (median)")
PY

# Steady-state meter cost: CPU of a 20 s run minus CPU of an instant run, per second, medians
# of 3 of each (start-up varies by about 1 ms, which a single pair cannot resolve).
steady() { # label, then env/args before `--`
  local label="$1"; shift
  env "$@" -- true 2>/dev/null >/dev/null
  local as=() bs=()
  for i in 1 2 3; do
    env "$@" -o "$work/a.json" -- true 2>/dev/null
    env "$@" -o "$work/b.json" -- sleep 20 2>/dev/null
    as+=("$(field "$work/a.json" meter_cpu_s)"); bs+=("$(field "$work/b.json" meter_cpu_s)")
  done
  python3 - "$label" "${as[*]}" "${bs[*]}" <<'PY'
import statistics, sys
label = sys.argv[1]
a = statistics.median(map(float, sys.argv[2].split()))
b = statistics.median(map(float, sys.argv[3].split()))
per_s = (b - a) / 20
print(f"{label}: {per_s * 1e3:.4f} ms CPU per s = {per_s * 100:.4f} % of one core "
      f"(start-up and report: {a * 1e3:.2f} ms; medians of 3)")
PY
}
echo "== 2. meter CPU at default settings (not a terminal: timeline every 5 s; the model polls every 1 s)"
steady "this machine's sensors" "$wp" run
steady "fake RAPL, 4 zones" WATTPRINT_SYSFS_ROOT="$sys" "$wp" run
echo "== 3. polling 4 fake RAPL zones every 1 ms"
steady "fake RAPL, 4 zones, 1 ms" WATTPRINT_SYSFS_ROOT="$sys" "$wp" run --interval 1ms

echo "== 4. peak RSS of wattprint run"
"$wp" run -o "$work/r.json" -- sleep 1 2>/dev/null
python3 -c "import sys; print(f'peak RSS: {int(sys.argv[1])/1048576:.2f} MiB')" "$(field "$work/r.json" peak_rss_bytes)"
