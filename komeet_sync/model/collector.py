"""Python's cyclic garbage collector paused while a directory is read.

Reading a domain makes tens of millions of objects (the decoded JSON: a dict, a list and a
few strings a person) and no reference cycle. Each object made counts towards the next
collection, and every collection walks the objects still young, which are then the ones
just read: at 100,000 people the collector took more time than the JSON decoding and the
parsing together. Paused, it walks nothing; reference counting still frees every object
dropped, and any cycle made meanwhile is collected once the collector runs again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off for the block, then as it was (blocks nest)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
