"""Benchmark: one IdP flooding its SCIM domain does not slow another domain's requests.

    .venv/bin/python benchmarks/rate_limit.py            # make bench-rate-limit
    .venv/bin/python benchmarks/rate_limit.py --rounds 5

The SCIM endpoint runs in this process on a fresh SQLite database, on loopback, with two
domains: calm.com (limit 10,000/s: the measure sends hundreds a second) and flooded.com. A
process of its own (``tests/support/flood.py``) floods flooded.com with ``10 × LIMIT`` GETs a
second, in turns of ``PHASE`` seconds on and off, while this process times calm.com's
requests one after the other: its p99 latency with the flood and without it, taken at the
same moments of the same run, so that whatever else the machine does weighs on both.

Each round measures both settings, in turn (ABBA across rounds): the flood at flooded.com,
limited to ``LIMIT``/s (beyond its burst the flood gets 429s, which read no database), and
the same flood at unlimited.com (10,000/s: every request is answered in full). The figure
is the ratio of calm.com's p99 with the flood to its p99 without; the target is at most 2
with the limit on. The rounds' ratios are printed, and their median.
"""

from __future__ import annotations

import argparse
import http.client
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from komeet_sync.store.database import open_database  # noqa: E402
from tests.support import flood  # noqa: E402
from tests.support.scim_server import USER, serve, stop  # noqa: E402

LIMIT = 20
OFF = 10_000  # the highest limit a domain may have: the flood passes whole
# A sample taken within SETTLE of a switch counts for neither turn: after the flood stops,
# its last requests are still being answered; after it starts, flooded.com spends the
# requests its limit saved while it was quiet. The first turn, with the whole burst, is left
# out too.
PHASE = 0.25
SETTLE = 0.05
SAMPLES = 200
MEASURE = 60  # seconds at most to take them


def measure(
    url: str, flooded: str, flooded_secret: str, calm: str
) -> tuple[float, float, dict[int, int]]:
    """calm.com's p99 latency without and with the flood of ``flooded`` (seconds), and the
    statuses the flood was answered."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)

    def latency() -> tuple[float, float]:
        started = time.monotonic()
        connection.request(
            "GET", "/scim/calm.com/v2/Users?count=1", headers={"Authorization": f"Bearer {calm}"}
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        return started, time.monotonic() - started

    for _ in range(50):  # a warm connection, code and cache
        latency()
    flooding = flood.start(
        f"{url}/scim/{flooded}/v2/Users?count=1",
        flooded_secret,
        10 * LIMIT,
        PHASE,
        seconds=MEASURE + 15,
    )
    quiet: list[float] = []
    loaded: list[float] = []
    deadline = time.monotonic() + MEASURE
    while min(len(quiet), len(loaded)) < SAMPLES and time.monotonic() < deadline:
        started, took = latency()
        if started < flooding.start + 2 * PHASE or flooding.since_switch(started) < SETTLE:
            continue
        if flooding.flooding(started):
            loaded.append(took)
        elif not flooding.flooding(started + took):
            quiet.append(took)
    statuses = flooding.stop()
    connection.close()
    if min(len(quiet), len(loaded)) < SAMPLES:
        raise SystemExit(f"only {len(quiet)} and {len(loaded)} samples in {MEASURE} s")
    return p99(quiet), p99(loaded), statuses


def p99(samples: list[float]) -> float:
    return sorted(samples)[math.ceil(0.99 * len(samples)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds of both settings")
    args = parser.parse_args()
    from machine import describe  # benchmarks/machine.py, beside this script

    print(f"Machine: {describe('uvicorn', 'sqlalchemy')}")
    print(
        f"calm.com's p99 latency (ms) without and with a flood of {10 * LIMIT} GETs/s at "
        f"another domain, {SAMPLES} samples of each per measure"
    )
    ratios: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/komeet_sync.db")
        server, scim = serve(engine)
        try:
            calm = scim.add_domain("calm.com", scim_rate_limit=OFF)
            with scim.client("calm.com") as client:
                for number in range(20):
                    client.post(
                        "/Users", json={"schemas": [USER], "userName": f"u{number}@calm.com"}
                    )
            # The same flood at a domain limited to LIMIT/s, and at one that is not.
            flooded = {"on": "flooded.com", "off": "unlimited.com"}
            secrets = {
                "on": scim.add_domain("flooded.com", scim_rate_limit=LIMIT),
                "off": scim.add_domain("unlimited.com", scim_rate_limit=OFF),
            }
            for number in range(args.rounds):
                order = ("on", "off") if number % 2 == 0 else ("off", "on")
                for setting in order:
                    quiet, loaded, statuses = measure(
                        scim.url, flooded[setting], secrets[setting], calm
                    )
                    ratios[setting].append(loaded / quiet)
                    print(
                        f"  round {number + 1}, limit {setting:>3}: {quiet * 1000:6.1f} and "
                        f"{loaded * 1000:6.1f}, ratio {loaded / quiet:4.2f}; the flood got "
                        + ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items()))
                    )
        finally:
            stop(server)
            scim.endpoint.close()
            engine.dispose()
    for setting in ("on", "off"):
        values = ratios[setting]
        print(
            f"limit {setting}: ratio median {statistics.median(values):.2f} "
            f"(from {min(values):.2f} to {max(values):.2f})"
        )
    verdict = "met" if statistics.median(ratios["on"]) <= 2 else "NOT met"
    print(f"Target (median ratio at most 2 with the limit on): {verdict}")


if __name__ == "__main__":
    main()
