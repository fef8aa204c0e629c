"""globex.com's IdP pushing the bundled users and groups to `komeet-sync scim serve`, as
Entra ID would (string booleans, a capitalised op, a member removal by value list, a
deletion). ``push`` is what scripts/demo.py replays; run on its own, this script serves the
endpoint, pushes, then runs `komeet-sync sync globex.com` against KOMEET_SCIM_URL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from komeet_sync.sources.exports import load_json, unpack

BIN = Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin")
EXAMPLES = Path("komeet_sync/examples/globex")
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def komeet_sync(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "komeet-sync"), *args], capture_output=True, text=True)


def main() -> int:
    configured = komeet_sync("domains", "show", "globex.com").returncode == 0
    if configured:  # the secret was shown once already: make a new one for this run
        made = komeet_sync("scim", "rotate-secret", "globex.com", "--overlap", "0", "--json")
    else:
        made = komeet_sync(
            "domains", "add", "globex.com", "--source", "scim", "--group", "Komeet Users",
            "--max-deactivation-share", "0.5", "--json",
        )  # fmt: skip
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 1
    secret = json.loads(made.stdout)["secret"]
    server = subprocess.Popen(
        [str(BIN / "komeet-sync"), "scim", "serve", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        started = re.search(r"http://[\d.]+:\d+", server.stdout.readline())
        if started is None:
            print("the SCIM endpoint did not start", file=sys.stderr)
            return 1
        push(f"{started.group(0)}/scim/globex.com/v2", secret)
    finally:
        server.terminate()
        server.wait(timeout=20)
    synced = komeet_sync("sync", "globex.com")
    print(synced.stdout, end="")
    print(synced.stderr, end="", file=sys.stderr)
    return 0 if synced.returncode in (0, 3) else synced.returncode


def push(url: str, secret: str) -> None:
    """What Entra ID sends for the bundled directory, request by request."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
    users, groups = (
        unpack(load_json(EXAMPLES / name, "SCIM"), EXAMPLES / name, "Resources", "SCIM")
        for name in ("scim_users.json", "scim_groups.json")
    )
    ids: dict[str, str] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as idp:
        for user in users:
            found = idp.get("/Users", params={"filter": f'userName eq "{user["userName"]}"'})
            if found.json().get("totalResults"):
                ids[user["id"]] = found.json()["Resources"][0]["id"]
                continue
            created = idp.post("/Users", json={k: v for k, v in user.items() if k != "id"})
            say("POST /Users", user["userName"], created)
            if created.status_code == 201:
                ids[user["id"]] = created.json()["id"]
        for group in reversed(groups):  # the nested group first
            members = [{"value": ids[m["value"]]} for m in group["members"] if m["value"] in ids]
            found = idp.get(
                "/Groups", params={"filter": f'displayName eq "{group["displayName"]}"'}
            )
            if found.json().get("totalResults"):
                ids[group["id"]] = found.json()["Resources"][0]["id"]
                continue
            created = idp.post(
                "/Groups",
                json={"schemas": group["schemas"], "displayName": group["displayName"],
                      "members": members},
            )  # fmt: skip
            say("POST /Groups", group["displayName"], created)
            ids[group["id"]] = created.json()["id"]
        deactivated = idp.patch(
            f"/Users/{ids['stg-2']}",
            json={"schemas": [PATCH_OP],
                  "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
        )  # fmt: skip
        say("PATCH active False", "ben.weber@globex.com", deactivated)


def say(request: str, name: str, response: httpx.Response) -> None:
    detail = "" if response.is_success else f": {response.json().get('detail')}"
    print(f"  IdP {request} {name} -> {response.status_code}{detail}")


if __name__ == "__main__":
    raise SystemExit(main())
