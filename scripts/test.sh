#!/usr/bin/env bash
# The one test command (README "Run all tests"; .ci/run calls it).
# Installs Redis 7.0, Valkey 9 and the Mongo-protocol server if missing, then runs
# every test of the workspace. Integration tests start their own servers on free
# ports from the binaries named in scripts/env.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/deps.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
echo "test: redis-server=$SMPPD_REDIS_SERVER"
echo "test: valkey-server=$SMPPD_VALKEY_SERVER"
echo "test: redis-cli=$SMPPD_REDIS_CLI"
echo "test: secantusd=$SMPPD_SECANTUSD"
echo "test: promtool=$SMPPD_PROMTOOL"
echo "test: systemd-analyze=$SMPPD_SYSTEMD_ANALYZE"
echo "test: chromium=$SMPPD_CHROMIUM chromedriver=$SMPPD_CHROMEDRIVER"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads="${SMPPD_TEST_THREADS:-4}"
# Three independent ESME implementations against the debug build (docs/interop-matrix.md).
INTEROP_PROFILE=debug bash scripts/interop.sh
