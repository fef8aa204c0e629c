"""Where notifications are received in tests, over real sockets on loopback: an SMTP server
(aiosmtpd) that keeps every message, and the JSON webhook of the emulators (Apprise's
``json://``)."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from komeet_sync.emulators.webhook import Webhook


@dataclass
class Mailbox:
    """An SMTP server's received messages, parsed."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def url(self, to: str = "it@acme.com", password: str = "smtp-password") -> str:
        """The Apprise URL that sends to this server, plainly (no TLS), as ``to``."""
        return (
            f"mailto://komeet:{password}@{self.host}:{self.port}?smtp={self.host}"
            f"&from=sync@komeet.example&to={to}&mode=insecure"
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def wait(self, count: int = 1, timeout: float = 10) -> list[EmailMessage]:
        return _waited(self.messages, count, timeout)


class _Open:
    """Accepts any login: the test checks what is sent, not who sends it."""

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any):
        from aiosmtpd.smtp import AuthResult

        return AuthResult(success=True)


def smtp_server() -> tuple[Mailbox, Controller]:
    port = free_port()
    mailbox = Mailbox("127.0.0.1", port)
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_Open(),
        auth_require_tls=False,
    )
    controller.start()
    return mailbox, controller


def webhook(port: int = 0) -> Webhook:
    return Webhook.start(port)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _waited(received: list, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(received)
