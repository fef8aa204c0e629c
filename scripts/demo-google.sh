#!/usr/bin/env bash
# The Google Workspace part of the demo: the Directory API emulator serves the bundled
# acme.com directory on loopback with a throwaway service-account key; acme.com is
# configured, checked ("launch and verify") and synced to the Komeet at KOMEET_SCIM_URL (the
# stand-in scripts/demo-sync.sh starts). Exit code 3 (a plan held by a guard) is a result.
set -euo pipefail

BIN=${BIN:-.venv/bin}
EXAMPLES=komeet_sync/examples/acme
: "${KOMEET_SYNC_HOME:?set KOMEET_SYNC_HOME}"
mkdir -p "$KOMEET_SYNC_HOME/demo"
key="$KOMEET_SYNC_HOME/demo/google-emulator-key.json"
started="$KOMEET_SYNC_HOME/demo/google-emulator.json"
rm -f "$started"

"$BIN/python" -m komeet_sync.emulators.google_directory \
    --users "$EXAMPLES/users.json" --members "$EXAMPLES/members.json" \
    --admin alice.martin@acme.com --key-out "$key" >"$started" &
emulator=$!
trap 'kill $emulator 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    [ -s "$started" ] && break
    kill -0 $emulator 2>/dev/null || { echo "the Directory API emulator did not start" >&2; exit 1; }
    sleep 0.1
done

export GOOGLE_SERVICE_ACCOUNT_FILE="$key"
GOOGLE_DIRECTORY_API_ENDPOINT=$("$BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$started")
export GOOGLE_DIRECTORY_API_ENDPOINT

if ! "$BIN/komeet-sync" domains show acme.com >/dev/null 2>&1; then
    "$BIN/komeet-sync" domains add acme.com --source google --admin-email alice.martin@acme.com \
        --group all@acme.com --alias-domain acme.io --protect it-admin@acme.com \
        --max-deactivation-share 0.4 >/dev/null
fi
"$BIN/komeet-sync" google check acme.com
"$BIN/komeet-sync" sync acme.com || [ $? -eq 3 ]
