#!/usr/bin/env bash
# The Python package: build the wheel (maturin), install it into a virtualenv, run the pytest
# suite (including the MLflow logger against a real `mlflow server` on 127.0.0.1), then check
# that the wheel installs into a fresh virtualenv and a five-line script measures a workload.
# Idempotent: the virtualenv (.venv at the repository root, git-ignored) is reused when its
# pinned tools are already installed. Needs python3 >= 3.9 with venv, and PyPI.
# Usage: bash scripts/test.d/python.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PY=${PYTHON:-python3}
MATURIN=maturin==1.16.0
PYTEST=pytest==9.2.0
# The MLflow server the integration test talks to (a large install: about 1 minute here).
MLFLOW=mlflow==3.17.2
# examples/digits.py (its dataset ships inside the package; MLflow depends on it anyway).
SKLEARN=scikit-learn==1.9.1

command -v "$PY" >/dev/null || { echo "python.sh: $PY not found (install Python >= 3.9)" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
  { echo "python.sh: $PY is older than 3.9" >&2; exit 1; }

VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "-- creating $VENV"
  "$PY" -m venv "$VENV"
fi
STAMP=$VENV/.wattprint-tools
WANT="$MATURIN $PYTEST $MLFLOW $SKLEARN"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "-- installing $WANT"
  start=$(date +%s)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $WANT
  echo "-- installed in $(($(date +%s) - start)) s"
  echo "$WANT" >"$STAMP"
fi

WHEELS=$(mktemp -d)
FRESH=$(mktemp -d)
trap 'rm -rf "$WHEELS" "$FRESH"' EXIT

echo "-- maturin build"
(cd crates/py && "$VENV/bin/maturin" build --locked --out "$WHEELS" --interpreter "$VENV/bin/python")
WHEEL=$(ls "$WHEELS"/wattprint-*.whl)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"

echo "-- the CLI, for the report-shape parity test"
cargo build --locked -p wattprint-cli
export WATTPRINT_CLI=${CARGO_TARGET_DIR:-$ROOT/target}/debug/wattprint

echo "-- pytest"
# Exit 5 (no tests collected) is a failure like any other non-zero status.
(cd crates/py && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests)

echo "-- examples/digits.py under wattprint bench (the README's tour, shortened)"
"$VENV/bin/python" examples/digits.py train --out "$WHEELS/digits.pkl" --epochs 20
"$WATTPRINT_CLI" bench --no-store --runs 2 --parameter-list batch 1,128 \
  --export-json "$WHEELS/bench.json" -- \
  "$VENV/bin/python examples/digits.py infer --model $WHEELS/digits.pkl --batch {batch} --count 500"
"$VENV/bin/python" - "$WHEELS/bench.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
assert b["schema"] == "wattprint.bench/v1" and b["unit"] == "inference", b
assert len(b["groups"]) == 2 and b["recommended"] in (1, 2), b
assert all(g["j_per_unit"]["n"] == 2 and not g["failed"] for g in b["groups"]), b
print("bench of the digits example: ok, recommended group", b["recommended"])
EOF

echo "-- the wheel in a fresh virtualenv, and the README's five lines"
"$PY" -m venv "$FRESH/venv"
"$FRESH/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$WHEEL"
cd "$FRESH"
"$FRESH/venv/bin/python" - <<'EOF'
import wattprint
with wattprint.track() as t:
    sum(i * i for i in range(2_000_000))
print(t.report)
assert t.report.to_dict()["schema"] == "wattprint.run/v1" and t.report.duration_s > 0, t.report.to_dict()
EOF
echo "-- python: ok"
