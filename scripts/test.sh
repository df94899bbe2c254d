#!/usr/bin/env bash
# Runs the full test suite: formatting, lints, unit and integration tests of every crate,
# the whole-system tests (real RTSP server, hub and gateway processes, SQLite and
# PostgreSQL) and the dashboard's browser test (Chromium through Playwright). Tests that need PostgreSQL skip with a notice when it is unreachable, except
# under CI=true, where they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# shellcheck disable=SC1091
source .cache/env.sh
if [ -z "${MODEL_CACHE:-}" ] && [ -d ../shared/models ]; then
  export MODEL_CACHE
  MODEL_CACHE=$(realpath ../shared/models)
fi
export MODEL_CACHE

say() { printf '[test] %s\n' "$*" >&2; }
say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "building the dashboard (hub/web/dist)"
(cd hub/web && npm run build --silent)
say "building the binaries the system tests start"
cargo build --workspace --bins --locked
say "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
