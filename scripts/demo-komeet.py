"""The demo's Komeet: the third-party scim2-server on a free loopback port, holding the
accounts of the bundled exports (acme.com, globex.com), as Komeet would before a sync.

    .venv/bin/python scripts/demo-komeet.py .venv/bin

It prints one line, ``KOMEET_SCIM_URL=... KOMEET_SCIM_TOKEN=... KOMEET_PID=...``, for the
demo's shell to export, and leaves the server running: the demo stops it at its end. An
export's accounts that the server refuses (a userName twice in another case, which Komeet's
own uniqueness forbids) are named and left out.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from komeet_sync.export_files import load_json, unpack

BIN = Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin")
EXAMPLES = Path("komeet_sync/examples")
KEPT = {"schemas", "userName", "externalId", "name", "active", "emails", "displayName"}


def main() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    server = subprocess.Popen(
        [str(BIN / "scim2-server"), "--port", str(port), "--bearer-token", token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives this script; the demo stops it
    )
    url = f"http://127.0.0.1:{port}/v2"
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            session.get(f"{url}/ServiceProviderConfig", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                print("the Komeet stand-in (scim2-server) did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
    for domain in ("acme", "globex"):
        path = EXAMPLES / domain / "komeet_users.json"
        users = unpack(load_json(path, "SCIM Users"), path, "Resources", "SCIM Users")
        added = 0
        for user in users:
            body = {key: value for key, value in user.items() if key in KEPT}
            answer = session.post(f"{url}/Users", data=json.dumps(body))
            if answer.status_code == 201:
                added += 1
            else:
                detail = answer.json().get("detail", answer.text)
                print(f"  Komeet refused {user['userName']}: {detail}", file=sys.stderr)
        print(f"  Komeet holds {added} accounts of {path}", file=sys.stderr)
    print(f"KOMEET_SCIM_URL={url} KOMEET_SCIM_TOKEN={token} KOMEET_PID={server.pid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
