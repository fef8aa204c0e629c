#!/usr/bin/env bash
# Installs the system packages the tests use when they are missing: a PostgreSQL server
# (storage, ledger and Dagster instance tests), a Redis server (the Celery broker of the
# tests of runs on Celery workers) and Chromium (the Dagster UI test, driven by Playwright).
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
command -v redis-server > /dev/null || missing+=(redis-server)
command -v chromium > /dev/null || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "The tests need ${missing[*]}: run 'sudo apt-get install ${missing[*]}'." >&2
    exit 1
fi
echo "Installing ${missing[*]} from the system's packages..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
