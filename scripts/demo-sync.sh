#!/usr/bin/env bash
# The sync part of the demo: the Komeet stand-in (scim2-server holding the bundled Komeet
# exports) is started, acme.com is synced from the Google Directory API emulator and
# globex.com from what its IdP pushed to the SCIM endpoint; both plans are applied to the
# stand-in unless a guard holds them (exit code 3: a result, not a failure).
set -euo pipefail

BIN=${BIN:-.venv/bin}
: "${KOMEET_SYNC_HOME:?set KOMEET_SYNC_HOME}"

started=$("$BIN/python" scripts/demo-komeet.py "$BIN")
export ${started% KOMEET_PID=*}
komeet_pid=${started##*KOMEET_PID=}
trap 'kill $komeet_pid 2>/dev/null || true' EXIT
echo "Komeet stand-in (scim2-server) at $KOMEET_SCIM_URL"

BIN=$BIN scripts/demo-google.sh
"$BIN/python" scripts/demo-scim.py "$BIN"
echo
"$BIN/komeet-sync" plans list --limit 4
