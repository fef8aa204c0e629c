"""How long work reports how far it is, without knowing who shows it.

A sync's steps (reading the source, reading Komeet, reconciling, writing the reports,
applying) each run as a *stage* of a ``Progress``: the stage is told how much is done, and
the total when it is known, as the work goes. The command line shows a bar with a rate and
an ETA on a terminal and one log line per stage otherwise; Dagster and tests show nothing
(``SILENT``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

# ``advance(done, total)``: ``done`` units so far, of ``total`` when it is known.
Advance = Callable[[int, int | None], None]


def _nothing(done: int, total: int | None) -> None:
    return None


class Progress(Protocol):
    def stage(self, label: str, unit: str) -> AbstractContextManager[Advance]:
        """A step of the work, named ``label`` and counted in ``unit`` ("users", "actions")."""
        ...


class Silent:
    """Progress nobody watches."""

    @contextmanager
    def stage(self, label: str, unit: str) -> Iterator[Advance]:
        yield _nothing


SILENT: Progress = Silent()
