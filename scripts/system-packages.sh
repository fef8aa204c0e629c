#!/usr/bin/env bash
# Installs the system packages the tests use (PostgreSQL server) when they are missing.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "The tests need a PostgreSQL server: run 'sudo apt-get install postgresql'." >&2
    exit 1
fi
echo "Installing PostgreSQL from the system's packages..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql > /dev/null
