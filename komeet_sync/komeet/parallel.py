"""Requests to Komeet in flight at once: a bounded number of threads, which the operator
stops at once (ARCHITECTURE.md, "Applying a plan": concurrency is bounded; an interrupted
apply stops sending at once).

The apply sends its actions this way, and the read of Komeet's accounts asks for its pages
this way once the first page has said how many there are (RFC 7644 §3.4.2.4).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

DEFAULT_CONCURRENCY = 8  # requests in flight at once, reading or applying (``--concurrency``)

_END = object()  # no item is left to work on


def in_parallel(
    work: Callable[[Any], None],
    items: Sequence[Any],
    workers: int,
    stopping: threading.Event,
    *,
    name: str = "komeet",
    drain: bool = True,
    queue: Iterator[Any] | None = None,
) -> None:
    """``work`` on each item (taken from ``queue`` when given, an iterator over ``items``
    that may do work of its own as it hands each out), on up to ``workers`` threads that
    take the next item only while ``stopping`` is not set: once it is (the operator stops),
    the work in flight finishes and nothing new starts. The first failure of a worker stops
    the others and is raised once they have finished their item.

    An interruption of the calling thread (Ctrl-C raising here, a Dagster run terminated)
    sets ``stopping`` before it is raised. With ``drain`` it is raised once the work in
    flight has finished (an apply records each answer); without, at once (a read has
    nothing to record, and its threads end after their request). A second interruption is
    raised at once."""
    if not items:
        return
    queue = queue if queue is not None else iter(items)
    queue_lock = threading.Lock()
    errors: list[BaseException] = []
    count = min(workers, len(items))
    running = [count]
    finished = threading.Event()  # every worker has returned

    def worker() -> None:
        try:
            while not stopping.is_set() and not errors:
                with queue_lock:
                    item = next(queue, _END)
                if item is _END:
                    return
                try:
                    work(item)
                except BaseException as exc:  # raised in the calling thread
                    errors.append(exc)
                    return
        finally:
            with queue_lock:
                running[0] -= 1
                if running[0] == 0:
                    finished.set()

    for n in range(count):
        threading.Thread(target=worker, name=f"{name}-{n}", daemon=True).start()
    # Waiting on an event of our own, not on Thread.join: Python 3.11 marks a thread
    # stopped when an exception interrupts a join of it, though it still runs.
    try:
        while not finished.wait(0.1):  # a timeout keeps the wait interruptible
            pass
    except BaseException:
        first = not stopping.is_set()
        stopping.set()
        if first and drain:
            finished.wait()
        raise
    if errors:
        raise errors[0]
