#!/usr/bin/env bash
# The GPU sources are cargo features (`nvml`, `amd`, on by default). Lint the build without
# them and check that such a binary names NVML and amdsmi as absent, and why.
# Usage: bash scripts/test.d/features.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo clippy -p wattprint-sensors -p wattprint-engine -p wattprint-cli --no-default-features --locked -- -D warnings
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo build -p wattprint-cli --no-default-features --locked --target-dir "$dir/target" 2>&1 | tail -1
mkdir -p "$dir/sys"
out=$(WATTPRINT_SYSFS_ROOT="$dir/sys" WATTPRINT_NVML_LIB=/nonexistent WATTPRINT_AMDSMI_LIB=/nonexistent \
  "$dir/target/debug/wattprint" sensors 2>&1)
for want in 'nvml: this wattprint was built without the `nvml` feature' \
            'amdsmi: this wattprint was built without the `amd` feature'; do
  grep -qF "$want" <<<"$out" || { echo "features.sh: missing line: $want" >&2; echo "$out" >&2; exit 1; }
done
echo "features.sh: a build without GPU features names NVML and amdsmi as absent: 2 passed, 0 failed"
