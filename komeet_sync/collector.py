"""Python's cyclic garbage collector, paused while a read makes many objects without cycles.

Decoding JSON makes a dict or a list for every object and array, and the collector scans
all that are still alive at each of its passes over the older generation: the more
accounts already read, the longer each pass. JSON values hold no reference cycles, so
these passes free nothing. Reading 100,000 of Komeet's accounts took 1.4 s of the client's
CPU with the collector running, 0.5 s with it paused (benchmarks/RESULTS.md, "Reading
Komeet's accounts").

Pausing it delays nothing else: cycles that other code makes meanwhile are collected once
it runs again.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """The pauses under way, from any thread: the collector runs again, if it ran before
    the first, when the last one ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = False


_PAUSES = _Pauses()


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside the block (``gc.disable``); blocks may nest and
    overlap across threads."""
    with _PAUSES.lock:
        if _PAUSES.count == 0:
            _PAUSES.was_enabled = gc.isenabled()
            gc.disable()
        _PAUSES.count += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.count -= 1
            if _PAUSES.count == 0 and _PAUSES.was_enabled:
                gc.enable()
