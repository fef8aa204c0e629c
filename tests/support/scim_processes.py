"""``komeet-sync scim serve --workers N`` in a subprocess of its own session, as a terminal
would run it: what it prints is read as it comes, and its processes are found in /proc."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

# A request's line with the process that answered it (serving.print_requests).
REQUEST_LINE = re.compile(
    r"^\S+ (?P<method>\S+) (?P<path>\S+) \S+ (?P<status>\d+) \d+ ms pid (?P<pid>\d+)$"
)


class ServedProcesses:
    """A running ``scim serve --workers N --json``."""

    def __init__(self, workers: int, *options: str) -> None:
        self.workers = workers
        self.server = subprocess.Popen(
            [sys.executable, "-m", "komeet_sync", "scim", "serve", "--port", "0", "--json",
             "--workers", str(workers), *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []  # stderr, as it comes
        self.out: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, kept), daemon=True)
            for stream, kept in ((self.server.stderr, self.lines), (self.server.stdout, self.out))
        ]
        for reader in self._readers:
            reader.start()
        self.wait_for(lambda: self.out or self.server.poll() is not None, 180)
        assert self.out, f"scim serve did not start: {self.lines}"
        self.url = json.loads(self.out[0])["url"]

    def _read(self, stream, kept: list[str]) -> None:
        for line in stream:
            with self._changed:
                kept.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[], object], seconds: float = 60) -> None:
        """Wait until ``condition()`` holds after a line is printed (or the time is out)."""
        with self._changed:
            self._changed.wait_for(condition, seconds)

    def pids(self) -> set[int]:
        """The endpoint's processes: the server's children that multiprocessing spawned."""
        return endpoint_pids(self.server.pid)

    def answered(self, since: int = 0) -> list[tuple[int, int]]:
        """(status, pid) of each request line printed from line ``since`` on."""
        found = (REQUEST_LINE.match(line) for line in self.lines[since:])
        return [(int(m["status"]), int(m["pid"])) for m in found if m]

    def send_until_each_answered(
        self,
        request: Callable[[httpx.Client], httpx.Response],
        status: int | None = None,
        seconds: float = 60,
    ) -> list[int]:
        """Send ``request`` from 8 threads, new connections each time, until each endpoint
        process has printed an answer (with ``status``, if given): the statuses the client
        got."""
        since = len(self.lines)
        statuses: list[int] = []
        deadline = time.monotonic() + seconds

        def one(_) -> int:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                return request(client).status_code

        with ThreadPoolExecutor(8) as pool:
            while time.monotonic() < deadline:
                statuses += pool.map(one, range(16))
                sent = len(statuses)
                self.wait_for(lambda sent=sent: len(self.answered(since)) >= sent, 10)
                answering = {p for s, p in self.answered(since) if status in (None, s)}
                if answering >= self.pids():
                    return statuses
        raise AssertionError(f"not every process answered in {seconds} s: {self.lines[since:]}")

    def stop(self, how: signal.Signals = signal.SIGTERM, group: bool = False) -> tuple[int, str]:
        """Stop it as SIGTERM to it or Ctrl-C (SIGINT to the terminal's process group) would;
        its exit code and everything it printed on stdout."""
        if self.server.poll() is None:
            (os.killpg if group else os.kill)(self.server.pid, how)
        self.server.wait(60)
        for reader in self._readers:
            reader.join(10)
        return self.server.returncode, "\n".join(self.out)


def endpoint_pids(parent: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{parent}/task").glob("*"):
        try:
            children.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            continue
    return {pid for pid in children if "multiprocessing.spawn" in command_line(pid)}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
