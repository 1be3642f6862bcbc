#!/usr/bin/env bash
# Check wattprint's NVIDIA GPU measurement on a machine with a real GPU and driver.
#
#   bash scripts/gpu-check.sh [SECONDS]     (default 20)
#
# 1. builds wattprint (release);
# 2. runs `wattprint sensors` (what NVML exposes here);
# 3. runs a short GPU workload under `wattprint run --json`: a PyTorch bf16 matmul loop when
#    python3 has torch (it declares its FLOPs through WATTPRINT_WORK_FILE), else the GPUs are
#    measured idle under `sleep` (nvidia-smi itself generates no load);
# 4. meanwhile logs `nvidia-smi --query-gpu=index,timestamp,power.draw -lms 100`, integrates it
#    (trapezoid) over the run's window, and compares it per GPU with wattprint's figure (the
#    NVML energy counter on Volta and newer);
# 5. prints the figures and the report's FLOPs/W lines.
#
# power.draw is a 1 s average on Ampere and newer, so a few per cent of difference is expected
# on a short or bursty run; the counter is the reference. Exit status: 0 when every GPU agrees
# within 10 %, 1 otherwise, 2 when this machine cannot run the check.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN="${1:-20}"
case "$SECONDS_TO_RUN" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS] (a whole number)" >&2; exit 2 ;;
esac

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: nvidia-smi not found: run this on a machine with an NVIDIA GPU and driver" >&2
  exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "gpu-check: python3 is needed to integrate the nvidia-smi log" >&2
  exit 2
fi

echo "== build"
cargo build --release --locked --bin wattprint
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release/wattprint"
[ -x "$BIN" ] || { echo "gpu-check: $BIN not built" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wattprint-gpu-check.XXXXXX")"
SMI_PID=""
cleanup() {
  if [ -n "$SMI_PID" ]; then kill "$SMI_PID" 2>/dev/null || true; wait "$SMI_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== nvidia-smi"
nvidia-smi --query-gpu=index,name,driver_version,power.limit --format=csv

echo "== wattprint sensors"
"$BIN" sensors

# The workload.
cat > "$WORK/load.py" <<'PY'
import os, sys, time
seconds = float(sys.argv[1])
import torch
if not torch.cuda.is_available():
    sys.exit("torch has no CUDA device")
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
flops = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    flops += 10 * 2 * n ** 3
path = os.environ.get("WATTPRINT_WORK_FILE")
if path:
    with open(path, "a") as f:
        f.write(f"flops={flops}\n")
print(f"workload: {flops:.3e} FLOPs in {seconds} s", file=sys.stderr)
PY

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  WORKLOAD=(python3 "$WORK/load.py" "$SECONDS_TO_RUN")
  echo "== workload: PyTorch bf16 matmul loop, ${SECONDS_TO_RUN} s"
else
  WORKLOAD=(sleep "$SECONDS_TO_RUN")
  echo "== workload: no torch with CUDA here, measuring the GPUs idle for ${SECONDS_TO_RUN} s"
fi

nvidia-smi --query-gpu=index,timestamp,power.draw --format=csv,noheader,nounits -lms 100 \
  > "$WORK/smi.csv" &
SMI_PID=$!
sleep 1
# The command wattprint measures records its own start and end (date is cheap), so the
# nvidia-smi log is integrated over the same window as wattprint's.
set +e
"$BIN" run --no-store --json -- sh -c \
  'date +%s.%N > "$0/t0"; "$@"; rc=$?; date +%s.%N > "$0/t1"; exit $rc' \
  "$WORK" "${WORKLOAD[@]}" > "$WORK/report.json"
RC=$?
set -e
T0="$(cat "$WORK/t0")"
T1="$(cat "$WORK/t1")"
sleep 1
kill "$SMI_PID" 2>/dev/null || true
wait "$SMI_PID" 2>/dev/null || true
SMI_PID=""
if [ "$RC" -ne 0 ]; then
  echo "gpu-check: wattprint run exited $RC" >&2
fi

echo "== comparison (NVML counter via wattprint vs nvidia-smi power.draw integrated)"
python3 - "$WORK/smi.csv" "$WORK/report.json" "$T0" "$T1" <<'PY'
import csv, json, sys, datetime
smi_path, report_path, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
series = {}
with open(smi_path) as f:
    for row in csv.reader(f):
        if len(row) < 3:
            continue
        try:
            idx = int(row[0])
            ts = datetime.datetime.strptime(row[1].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            w = float(row[2])
        except ValueError:
            continue  # "[N/A]" or a partial line
        series.setdefault(idx, []).append((ts, w))
try:
    report = json.load(open(report_path))
except Exception as e:
    sys.exit(f"gpu-check: no JSON report from wattprint run: {e}")
gpu = {d["name"]: d for d in report["energy"]["domains"] if d["kind"] == "gpu"}
worst = 0.0
print(f"run window {t1 - t0:.2f} s; report duration {report['duration_s']:.2f} s")
print(f"{'gpu':8} {'method':8} {'wattprint J':>12} {'nvidia-smi J':>13} {'diff %':>8}  device")
for idx, pts in sorted(series.items()):
    # Trapezoid over the samples, each segment clipped to [t0, t1] with linear interpolation.
    pts = sorted(pts)
    smi_j = 0.0
    for (ta, wa), (tb, wb) in zip(pts, pts[1:]):
        lo, hi = max(ta, t0), min(tb, t1)
        if hi <= lo or tb <= ta:
            continue
        at = lambda t: wa + (wb - wa) * (t - ta) / (tb - ta)
        smi_j += (hi - lo) * (at(lo) + at(hi)) / 2
    d = gpu.get(f"gpu-{idx}")
    if d is None:
        print(f"gpu-{idx:<4} {'-':8} {'absent':>12} {smi_j:13.1f}")
        worst = float("inf")
        continue
    diff = 100.0 * (d["joules"] - smi_j) / smi_j if smi_j > 0 else float("nan")
    worst = max(worst, abs(diff)) if diff == diff else float("inf")
    print(f"gpu-{idx:<4} {d['method']:8} {d['joules']:12.1f} {smi_j:13.1f} {diff:8.2f}  {d.get('device', '')}")
m = report["metrics"]
w = report["work"]
print(f"E2S {m['energy_to_solution_j']:.1f} J (total {report['energy']['total_j']:.1f} J)")
print(f"work: flops={w.get('flops')} ({w.get('flops_formula')}), precision {w.get('precision')}")
for k in ("flops_per_watt", "gpu_flops_per_watt", "peak_flops_per_watt", "flops_per_watt_ratio"):
    v = m.get(k)
    print(f"{k}: {v if v is not None else 'null (' + m.get('notes', {}).get(k, '') + ')'}")
if m.get("peak_flops_source"):
    print(f"peak from: {m['peak_flops_source']}")
for warning in report.get("warnings", []):
    print(f"warning: {warning}")
sys.exit(0 if worst <= 10.0 else 1)
PY
