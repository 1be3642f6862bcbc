#!/usr/bin/env bash
# The OTLP/HTTP metrics push is behind the cargo feature `otlp` (off by default, so the
# workspace-wide lint and test runs do not see it): lint and test it here, with the feature on,
# against a mock collector on 127.0.0.1 (crates/agent/tests/otlp.rs).
# Usage: bash scripts/test.d/otlp.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo clippy -p wattprint-agent -p wattprint-cli --features wattprint-agent/otlp,wattprint-cli/otlp --all-targets --locked -- -D warnings
cargo test -p wattprint-agent --features otlp --locked
cargo test -p wattprint-cli --features otlp --locked --test agent_cli
echo "otlp.sh: OTLP push tested with the feature on"
