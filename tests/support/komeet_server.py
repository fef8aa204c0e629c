"""The Komeet stand-in: the third-party ``scim2-server`` command, run as its own process on
loopback with a bearer token, one tenant (a separate user store) per test."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from komeet_sync.backoff import Backoff
from komeet_sync.komeet.client import KomeetClient

SCIM2_SERVER = Path(sys.executable).with_name("scim2-server")
ROOT = Path(__file__).parents[2]
TOKEN = "komeet-test-token"
FAST = Backoff(attempts=6, base=0.01, cap=0.05)
SCIM_JSON = {"Content-Type": "application/scim+json", "Authorization": f"Bearer {TOKEN}"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@dataclass
class KomeetServer:
    process: subprocess.Popen
    port: int

    def tenant(self) -> KomeetTenant:
        return KomeetTenant(f"http://127.0.0.1:{self.port}/t{uuid.uuid4().hex[:10]}/v2")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class KomeetTenant:
    """One Komeet: its SCIM base URL, and direct reads and writes that bypass our client."""

    url: str
    token: str = TOKEN
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def client(self, url: str | None = None, **options: Any) -> KomeetClient:
        return KomeetClient(url or self.url, **({"token": self.token, "backoff": FAST} | options))

    def env(self, monkeypatch, url: str | None = None) -> None:
        monkeypatch.setenv("KOMEET_SCIM_URL", url or self.url)
        monkeypatch.setenv("KOMEET_SCIM_TOKEN", self.token)
        monkeypatch.setenv("KOMEET_SYNC_KOMEET_BACKOFF", "0.01")

    def add(self, user_name: str | None = None, **attributes: Any) -> dict[str, Any]:
        """An account created directly in Komeet (by someone else than the sync): a
        userName, or SCIM attributes with their userName."""
        body = {"schemas": [USER], **({"userName": user_name} if user_name else {}), **attributes}
        response = self.session.post(f"{self.url}/Users", json=body, headers=SCIM_JSON)
        assert response.status_code == 201, response.text
        return response.json()

    def users(self) -> list[dict[str, Any]]:
        """Every account, read directly."""
        found: list[dict[str, Any]] = []
        start = 1
        while True:
            response = self.session.get(
                f"{self.url}/Users",
                params={"startIndex": start, "count": 1000},
                headers=SCIM_JSON,
            )
            response.raise_for_status()
            page = response.json()
            found.extend(page.get("Resources") or [])
            start += len(page.get("Resources") or [])
            if not page.get("Resources") or start > page["totalResults"]:
                return found

    def by_user_name(self) -> dict[str, dict[str, Any]]:
        return {user["userName"].lower(): user for user in self.users()}


def start(
    *options: str,
    config: dict[str, Any] | None = None,
    tmp: Path | None = None,
    indexed: bool = False,
) -> KomeetServer:
    """Start scim2-server with dynamic tenants; ``config`` replaces its
    ServiceProviderConfig (for a Komeet without Bulk or filters); ``indexed``: with the
    indexes of ``komeet_stand_in``, as a real Komeet answers searches by key."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    command = (
        [sys.executable, "-m", "tests.support.komeet_stand_in"] if indexed else [str(SCIM2_SERVER)]
    )
    arguments = [*command, "--port", str(port), "--bearer-token", TOKEN]
    arguments += ["--dynamic-tenants", *options]
    if config is not None:
        assert tmp is not None
        path = tmp / f"service-provider-config-{port}.json"
        path.write_text(json.dumps(config))
        arguments += ["--service-provider-config", str(path)]
    process = subprocess.Popen(
        arguments,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,  # where ``tests`` is importable
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return KomeetServer(process, port)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"scim2-server did not start on port {port}") from None
            time.sleep(0.05)


# Komeet without Bulk and without filters: the client must list and match locally.
PLAIN_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": False, "maxResults": 200},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
    "authenticationSchemes": [],
}

# Komeet announcing Bulk requests of at most 10 operations (and filters): a plan of a few
# dozen actions takes several Bulk requests.
SMALL_BULK_CONFIG = PLAIN_CONFIG | {
    "bulk": {"supported": True, "maxOperations": 10, "maxPayloadSize": 1048576},
    "filter": {"supported": True, "maxResults": 1000},
}
