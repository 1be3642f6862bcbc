#!/usr/bin/env bash
# Overhead of the Python package, measured: a begin/end pair from Python (target < 10 µs) and
# `import wattprint` (target < 20 ms). Builds a release wheel into its own virtualenv
# (.venv-bench, git-ignored) and rewrites the "Python bindings" section of docs/benchmarks.md.
# Usage: bash scripts/bench-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
VENV=$ROOT/.venv-bench
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check maturin==1.16.0
WHEELS=$(mktemp -d)
OUT=$(mktemp)
trap 'rm -rf "$WHEELS" "$OUT"' EXIT
(cd crates/py && "$VENV/bin/maturin" build --release --locked --out "$WHEELS" --interpreter "$VENV/bin/python")
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/wattprint-*.whl
(cd "$WHEELS" && "$VENV/bin/python" "$ROOT/crates/py/bench/bench.py") | tee "$OUT"

DOC=docs/benchmarks.md
BEGIN='<!-- bench-python:begin -->'
END='<!-- bench-python:end -->'
[ -f "$DOC" ] || printf '# Benchmarks\n\nEach section is written by the script it names.\n' >"$DOC"
if ! grep -qF "$BEGIN" "$DOC"; then
  printf '\n## Python bindings (`scripts/bench-python.sh`)\n\n%s\n%s\n' "$BEGIN" "$END" >>"$DOC"
fi
"$VENV/bin/python" - "$DOC" "$OUT" "$BEGIN" "$END" <<'PYEOF'
import sys, datetime
doc, out, begin, end = sys.argv[1:]
text = open(doc, encoding="utf-8").read()
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
body = f"\nMeasured {stamp} by `bash scripts/bench-python.sh`; " + open(out, encoding="utf-8").read()
open(doc, "w", encoding="utf-8").write(head + begin + body + end + tail)
PYEOF
echo "-- wrote $DOC"
