"""The SCIM endpoint served over real HTTP on loopback (uvicorn in a thread), with SCIM
domains configured as ``komeet-sync domains add`` would."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import uvicorn
from sqlalchemy import Engine

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.scim.endpoint import ScimEndpoint
from komeet_sync.sources.scim.secret import hash_secret, new_secret
from komeet_sync.store.domains import DomainStore

SCIM_JSON = {"Content-Type": "application/scim+json"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class ServedScim:
    engine: Engine
    endpoint: ScimEndpoint
    url: str  # http://127.0.0.1:PORT
    secrets: dict[str, str] = field(default_factory=dict)

    def add_domain(self, domain: str, **options) -> str:
        """Configure a SCIM domain; return its secret."""
        store = DomainStore(self.engine)
        store.add(DomainConfig.create(domain, "scim", **options))
        secret = new_secret()
        store.set_scim_secret_hash(domain, hash_secret(secret))
        self.secrets[domain] = secret
        return secret

    def client(self, domain: str, secret: str | None = None) -> httpx.Client:
        """An HTTP client on the domain's SCIM URL, with its secret (or another)."""
        token = secret if secret is not None else self.secrets[domain]
        return httpx.Client(
            base_url=f"{self.url}/scim/{domain}/v2",
            headers={"Authorization": f"Bearer {token}", **SCIM_JSON},
            timeout=30,
        )

    def flush_log(self) -> None:
        self.endpoint._log.flush()


def serve(engine: Engine, public_url: str | None = None) -> tuple[uvicorn.Server, ServedScim]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    endpoint = ScimEndpoint(engine, public_url or url)
    server = uvicorn.Server(uvicorn.Config(endpoint, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the SCIM endpoint did not start")
        time.sleep(0.01)
    server._thread = thread  # type: ignore[attr-defined]
    return server, ServedScim(engine, endpoint, url)


def stop(server: uvicorn.Server) -> None:
    server.should_exit = True
    server._thread.join(timeout=10)  # type: ignore[attr-defined]
