"""A generic JSON webhook, as a customer's or an on-call tool's would be: an HTTP server on
loopback that keeps every JSON body POSTed to it (Apprise's ``json://`` posts
``{"version", "title", "message", "type", "attachments"}``), for the tests and the demo."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    """The server and the bodies it received, each with the ``path`` it was posted to."""

    server: ThreadingHTTPServer
    posts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, port: int = 0) -> Webhook:
        """Listen on 127.0.0.1:``port`` (0: any free port)."""
        posts: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                posts.append(
                    (body if isinstance(body, dict) else {"body": body}) | {"path": self.path}
                )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, name="webhook", daemon=True).start()
        return cls(server, posts)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/komeet") -> str:
        """The Apprise URL that posts to this webhook."""
        return f"json://127.0.0.1:{self.port}{path}"

    def wait(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        """The bodies received, once there are ``count`` (or ``timeout`` seconds passed)."""
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.posts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
