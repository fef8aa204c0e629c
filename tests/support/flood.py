"""A flood of GETs at a steady rate, from a process of its own so that sending it takes no
time from the endpoint under test (which runs in the tests' process): open loop, from
several keep-alive connections, in phases of ``phase`` seconds, on and off in turn, so that
a test can compare the same moments of a run with and without it.

Run as a script (standard library only): it prints ``{"start": ...}`` (``time.monotonic``,
shared by the processes of one machine) once its connections are open, floods in the
phases ``[start + 2k·phase, start + (2k+1)·phase)`` until ``seconds`` have passed or its
standard input closes, then prints the count of each status.
"""

from __future__ import annotations

import collections
import http.client
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Flood:
    """A flood started by ``start``: when its first phase begins, and how long each lasts."""

    process: subprocess.Popen
    start: float
    phase: float

    def flooding(self, at: float) -> bool:
        return at >= self.start and int((at - self.start) / self.phase) % 2 == 0

    def since_switch(self, at: float) -> float:
        return (at - self.start) % self.phase

    def stop(self) -> dict[int, int]:
        """Stop it; the statuses it was answered, counted."""
        output, _ = self.process.communicate(timeout=30)
        return {int(status): count for status, count in json.loads(output).items()}


def start(
    url: str, token: str, rate: float, phase: float, seconds: float, connections: int = 8
) -> Flood:
    """Flood ``url`` with ``rate`` GETs a second (bearer ``token``) in phases of ``phase``
    seconds, for ``seconds`` at most."""
    process = subprocess.Popen(
        [sys.executable, __file__, url, token, *map(str, (rate, phase, seconds, connections))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return Flood(process, json.loads(process.stdout.readline())["start"], phase)


def _main(url: str, token: str, rate: float, phase: float, seconds: float, connections: int):
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    statuses: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    stopping = threading.Event()
    opened: list[http.client.HTTPConnection] = []
    for _ in range(connections):
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        connection.connect()
        opened.append(connection)
    begin = time.monotonic() + 0.05
    end = begin + seconds
    interval = connections / rate

    def send(number: int, connection: http.client.HTTPConnection) -> None:
        offset = number * interval / connections
        at = begin + offset
        while not stopping.is_set():
            now = time.monotonic()
            phases = int((max(at, now) - begin) / phase)
            if phases % 2:  # an off phase (even for a request behind time): wait for the next
                at = begin + (phases + 1) * phase + offset
                continue
            if max(at, now) >= end:
                break
            if at > now:
                time.sleep(at - now)
            connection.request("GET", target, headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            response.read()
            with lock:
                statuses[response.status] += 1
            at += interval

    threads = [
        threading.Thread(target=send, args=(number, connection), daemon=True)
        for number, connection in enumerate(opened)
    ]
    print(json.dumps({"start": begin}), flush=True)
    for thread in threads:
        thread.start()
    threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
    for thread in threads:
        thread.join()
    print(json.dumps(dict(statuses)), flush=True)


if __name__ == "__main__":
    url, token, rate, phase, seconds, connections = sys.argv[1:7]
    _main(url, token, float(rate), float(phase), float(seconds), int(connections))
