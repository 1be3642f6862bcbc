#!/usr/bin/env bash
# Every test wattprint has, from a clean clone: formatting, lints, the Rust test suites, then
# each extra suite in scripts/test.d/ (each installs what it needs, idempotently).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  echo "== $suite"
  bash "$suite"
done
echo "== all suites passed"
