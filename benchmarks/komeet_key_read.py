"""Benchmark of reading Komeet's accounts by key, as an incremental sync does (``KomeetSide``).

    .venv/bin/python benchmarks/komeet_key_read.py --accounts 100000
    .venv/bin/python benchmarks/komeet_key_read.py --accounts 100000 --indexed

The Komeet stand-in is the third-party ``scim2-server`` in its own process, loaded with
``--accounts`` accounts of one domain through SCIM Bulk (1,000 a request), each with a
userName, an email, an externalId and an employee number. With ``--indexed`` its storage has
the indexes of a real Komeet (``tests.support.komeet_stand_in``): a filter of ``eq`` terms
joined by ``or`` walks only the accounts holding their values; without, scim2-server walks
every account for such a filter, and validates each account's emails against an
``emails.value`` term. Each figure is the median wall time of ``--repeat`` calls over
loopback (no latency added), after one call that the indexes are built in (reported apart),
with the requests each call sent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests.support, from the checkout

from komeet_sync.komeet.accounts import KomeetSide
from komeet_sync.komeet.client import ENTERPRISE_SCHEMA, USER_SCHEMA, KomeetClient, quote
from komeet_sync.model.domain_config import DomainConfig
from tests.support import komeet_server

DOMAIN = "bench.example.com"
CONFIG = DomainConfig.create(DOMAIN, "google", groups=[f"all@{DOMAIN}"], require_admin=False)


def account(number: int) -> dict[str, Any]:
    email = f"person{number:06d}@{DOMAIN}"
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "userName": email,
        "externalId": f"g{number}",
        "active": True,
        "name": {"givenName": f"Given{number}", "familyName": "Person"},
        "emails": [{"value": email, "primary": True}],
        ENTERPRISE_SCHEMA: {"employeeNumber": f"E{number}"},
    }


def load(client: KomeetClient, count: int) -> None:
    """``count`` accounts, 1,000 a Bulk request (the stand-in's maxOperations)."""
    for first in range(0, count, 1000):
        numbers = range(first, min(count, first + 1000))
        reply = client.bulk(
            [
                {"method": "POST", "path": "/Users", "bulkId": f"b{n}", "data": account(n)}
                for n in numbers
            ]
        )
        if not reply.ok:
            raise SystemExit(f"loading the stand-in failed: {reply.describe()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--indexed", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    server = komeet_server.start(indexed=args.indexed)
    try:
        client = KomeetClient(server.tenant().url, komeet_server.TOKEN, timeout=3600)
        started = time.monotonic()
        load(client, args.accounts)
        stand_in = "indexed scim2-server" if args.indexed else "scim2-server"
        print(
            f"{stand_in}, {args.accounts:,} accounts loaded in {time.monotonic() - started:.0f} s"
        )
        client.capabilities()
        side = KomeetSide(client, CONFIG)

        def measured(label: str, call: Callable[[int], object]) -> None:
            seconds, requests_sent = [], []
            for turn in range(args.repeat + 1):
                sent, clock = client.requests_sent, time.monotonic()
                call(1000 + 100 * turn)
                seconds.append(time.monotonic() - clock)
                requests_sent.append(client.requests_sent - sent)
            print(
                f"- {label}: median {statistics.median(seconds[1:]):.3f} s "
                f"(max {max(seconds[1:]):.3f} s; the first, building indexes, {seconds[0]:.1f} s); "
                f"{requests_sent[-1]} requests"
            )

        measured(
            "holding 3 keys (an email, an externalId, an employee id)",
            lambda n: side.holding(
                [
                    ("email", f"person{n:06d}@{DOMAIN}"),
                    ("id", f"g{n + 1}"),
                    ("employee id", f"E{n + 2}"),
                ]
            ),
        )
        measured(
            "holders of 3 employee ids", lambda n: side.holders([f"E{n + i}" for i in range(3)])
        )
        measured(
            "holding 40 externalIds (one request)",
            lambda n: side.holding([("id", f"g{n + i}") for i in range(40)]),
        )
        measured(
            "find_users userName eq",
            lambda n: client.find_users(f"userName eq {quote(f'person{n:06d}@{DOMAIN}')}"),
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
