"""Ctrl-C and SIGTERM at the console: stop means stop.

Before anything is sent to Komeet, the first signal ends the command at once: reading and
reconciling write nothing Komeet holds. Once a plan is being applied (``writing``), the first
signal stops the writes: the requests in flight get their answer and their ledger row,
nothing new is sent (``KomeetClient.stopping``), and the command says what was applied,
what remains and the ``komeet-sync apply PLAN_ID`` that resumes. A second signal ends the
command at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

from komeet_sync.cli.output import EXIT_INTERRUPTED, EXIT_TERMINATED

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """The signals a command receives while it runs (a context manager around it)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.client: Any = None  # the KomeetClient writing, once writes have begun
        self.plan_id: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def writing(self, client: Any, plan_id: str) -> None:
        """Writes to Komeet begin: from now on the first signal stops them gracefully."""
        self.client, self.plan_id = client, plan_id

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.received == signal.SIGTERM else EXIT_INTERRUPTED

    @property
    def stopped(self) -> bool:
        return self.received is not None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = number
        if not first or self.client is None:
            raise KeyboardInterrupt
        self.client.stopping.set()
        print(
            f"\nStopping {self.plan_id}: the requests in flight finish, nothing new is sent. "
            "Press Ctrl-C again to exit at once.",
            file=sys.stderr,
            flush=True,
        )
