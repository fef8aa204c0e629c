"""Serving the SCIM endpoint (``komeet-sync scim serve``), from one process or several.

``--workers N`` (1 to MAX_WORKERS): the listening socket is bound once, in the parent, and
N processes (multiprocessing's spawn: each imports afresh and opens its own database
engine) each run uvicorn on that one socket, the kernel handing each connection to one of
them. The parent serves no request: it starts the processes, replaces one that ends (and
says so on stderr), and alone runs what must happen once per deployment, the worker thread
of ``--worker`` and the notifications' courier. SIGTERM or Ctrl-C stops the parent, which
stops each process with SIGTERM: uvicorn answers the requests in flight, and each process
writes the rest of its request log, then exits. A process whose parent is gone stops too.

Every process reads a domain's secrets, state and rate limit from the database at each
request (``endpoint.ScimEndpoint._access``): a rotated secret, a disabled domain or a new
rate limit takes effect in every process at its next request. The processes count each
domain's requests in one bucket, in shared memory (``rate_limit.SharedRateLimiter``). What
each process counts in its own memory: the refused requests the pushes-refused event counts
(``refusals``: up to N times its threshold before it is recorded).

On SQLite (one machine: processes share the file) writers queue in SQLite's busy handler
across processes instead of in one lock; it works, and PostgreSQL is the database for more
than one process (benchmarks/RESULTS.md, "SCIM endpoint").
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import uvicorn

from komeet_sync.sources.scim.endpoint import ScimEndpoint
from komeet_sync.sources.scim.rate_limit import SharedBuckets, SharedRateLimiter
from komeet_sync.store.database import DatabaseUnavailable, open_database

MAX_WORKERS = 64
READY = b"ready"
START_TIMEOUT = 120  # seconds for a process to import and open its database on a busy machine
STOP_TIMEOUT = 30  # seconds a process has to answer its requests in flight once stopped
STARTUP_FAILED = 3  # a process's exit code when it could not open its database


class ServingError(Exception):
    """The endpoint's processes could not start: the message says why."""


def worker_count(text: str) -> int:
    """``--workers``, checked: a whole number of processes from 1 to MAX_WORKERS."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(
            f"{text!r} is not a number of processes from 1 to {MAX_WORKERS}: give one process "
            "a core or two (default 1)"
        )
    return count


def print_requests(with_process: bool = False) -> None:
    """Each request's line (``request_log.request_line``) on stderr, as it is answered;
    ``with_process``: followed by the id of the process that answered it."""
    from komeet_sync.sources.scim.request_log import console

    handler = logging.StreamHandler(sys.stderr)
    shown = "%(message)s pid %(process)d" if with_process else "%(message)s"
    handler.setFormatter(logging.Formatter(shown))
    console.addHandler(handler)
    console.setLevel(logging.INFO)
    console.propagate = False


@dataclass(frozen=True)
class ProcessOptions:
    """What each process needs to build its endpoint; sent to it, so kept picklable. The
    database is the one the environment names (each process inherits it)."""

    public_url: str
    default_rate_limit: int
    print_requests: bool


class EndpointProcesses:
    """N processes serving the endpoint on one listening socket, replaced when one ends.

    ``start`` returns once each has opened its database (ServingError if one could not);
    ``supervise`` runs until ``stop`` (which a signal handler may call), then stops them."""

    def __init__(
        self,
        listening: socket.socket,
        options: ProcessOptions,
        count: int,
        told: Callable[[str], None],
    ) -> None:
        self.listening = listening
        self.options = options
        self.count = count
        self.told = told
        self._context = multiprocessing.get_context("spawn")
        self.buckets = SharedBuckets(self._context)  # every domain's rate limit, for all
        self._processes: dict[Any, Connection] = {}  # each process: the parent's end of its pipe
        self._stopping = threading.Event()
        self._wake_reader, self._wake_writer = os.pipe()
        os.set_blocking(self._wake_writer, False)

    def start(self) -> None:
        try:
            self._ready([self._spawn() for _ in range(self.count)])
        except BaseException:
            self._stop_all()
            raise

    def supervise(self) -> None:
        """Replace each process that ends, until ``stop``; then stop them all."""
        try:
            while not self._stopping.is_set():
                wait([process.sentinel for process in self._processes] + [self._wake_reader])
                if self._stopping.is_set():
                    break
                for process in [p for p in self._processes if p.exitcode is not None]:
                    self._processes.pop(process).close()
                    ended = f"SCIM endpoint process {process.pid} {_ended(process.exitcode)}"
                    process.close()
                    replacement = self._spawn()
                    self.told(f"{ended}; process {replacement.pid} replaces it.")
                    self._ready([replacement])
        finally:
            self._stop_all()
            os.close(self._wake_reader)
            os.close(self._wake_writer)

    def stop(self) -> None:
        """Stop serving: safe from a signal handler and from any thread."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_writer, b"x")

    def _spawn(self) -> Any:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=serve_process,
            args=(self.listening, self.options, self.buckets, theirs),
            name="scim-endpoint",
            daemon=False,
        )
        process.start()
        theirs.close()  # the process holds the only other end: EOF tells its death
        self._processes[process] = ours
        return process

    def _ready(self, starting: list[Any]) -> None:
        """Wait until each of ``starting`` has opened its database (or ``stop``)."""
        deadline = time.monotonic() + START_TIMEOUT
        waiting = {self._processes[process]: process for process in starting}
        while waiting and not self._stopping.is_set():
            left = deadline - time.monotonic()
            sentinels = [process.sentinel for process in waiting.values()]
            if left <= 0 or not wait([*waiting, *sentinels, self._wake_reader], left):
                raise ServingError(
                    f"a SCIM endpoint process did not start within {START_TIMEOUT} s"
                )
            for pipe, process in list(waiting.items()):
                with contextlib.suppress(EOFError, OSError):
                    if pipe.poll() and pipe.recv_bytes() == READY:
                        del waiting[pipe]
                        continue
                if process.exitcode is not None:
                    raise ServingError(
                        f"a SCIM endpoint process could not start ({_ended(process.exitcode)}): "
                        "its error is above"
                    )

    def _stop_all(self) -> None:
        for process in self._processes:
            if process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process, pipe in self._processes.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:  # still answering after STOP_TIMEOUT
                process.kill()
                process.join()
            pipe.close()
            process.close()
        self._processes.clear()


def _ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed ({signal.Signals(-exitcode).name})"
    return f"ended with exit code {exitcode}"


def serve_process(
    listening: socket.socket, options: ProcessOptions, buckets: SharedBuckets, parent: Connection
) -> None:
    """One process of ``EndpointProcesses``: its own engine and endpoint, under uvicorn, on
    the parent's socket, until SIGTERM or its parent is gone."""
    # Ctrl-C reaches every process of the terminal's group: the parent alone decides, and
    # stops each process with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine = open_database()
    except DatabaseUnavailable as exc:
        print(f"komeet-sync scim serve: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILED)
    endpoint = ScimEndpoint(
        engine,
        options.public_url,
        options.default_rate_limit,
        SharedRateLimiter(buckets),
    )
    if options.print_requests:
        print_requests(with_process=True)
    threading.Thread(target=_stop_without, args=(parent,), name="parent", daemon=True).start()
    parent.send_bytes(READY)
    try:
        ProcessServer(uvicorn.Config(endpoint, log_level="warning")).run(sockets=[listening])
    finally:
        endpoint.close()
        engine.dispose()


def _stop_without(parent: Connection) -> None:
    """Stop this process (as SIGTERM does) once its parent is gone: its end of the pipe
    closes, whatever ended it."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            parent.recv_bytes()
    os.kill(os.getpid(), signal.SIGTERM)


class ProcessServer(uvicorn.Server):
    """uvicorn's server, stopped by SIGTERM only (the parent's), and exiting normally once
    stopped rather than raising the signal again."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGTERM, self.handle_exit)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
