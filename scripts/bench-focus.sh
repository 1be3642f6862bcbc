#!/usr/bin/env bash
# Reproduces the FOCUS import figures in docs/estimates.md and docs/benchmarks.md: rows/s of
# `wattprint import FILE --format focus --no-store` on a generated 1,000,000-row FOCUS file
# (the 299 data rows of examples/focus/focus-1.0-sample-aws.csv repeated), and its peak RSS
# against a 100,000-row file (streaming: memory must not grow with the rows).
# Usage: bash scripts/bench-focus.sh [ROWS]   (release build; the file is generated, not kept)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
cargo build --release --locked -p wattprint-cli 2>&1 | tail -1
wp="${CARGO_TARGET_DIR:-target}/release/wattprint"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gen() { # rows file
  python3 - "$1" "$2" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
lines = open("examples/focus/focus-1.0-sample-aws.csv", newline="").read().splitlines(keepends=True)
header, body = lines[0], lines[1:]
with open(out, "w", newline="") as f:
    f.write(header)
    for i in range(n):
        f.write(body[i % len(body)])
PY
}
for n in 100000 "$rows"; do
  f="$work/focus-$n.csv"
  gen "$n" "$f"
  echo "== $n rows, $(du -h "$f" | cut -f1)"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$wp" import "$f" --no-store 2>&1 \
    | grep -E "rows read|estimate \(CCF|wall"
done
