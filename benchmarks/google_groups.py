"""Benchmark of ``komeet-sync google groups`` on a Workspace of 10,000 groups.

    make bench-google-groups
    .venv/bin/python benchmarks/google_groups.py --groups 10000 --users 10000 --rounds 3

The Directory API emulator runs in its own process with a generated directory (``--users``
users, 5 selected groups with two levels of nested groups below each, and ``--groups``
other groups of 2 to 12 users) and ``--latency`` seconds added to every request. Each
round runs, each in a fresh process, what the command runs (``runs.selection.list_groups``
after the token request):

- ``all``: every group, direct members only (``--limit 0 --no-counts``): the one paged
  ``groups.list`` pass, whose minimum is 1 token + ceil(groups / 200) requests;
- ``default``: the first 50 groups by name with their users (nested groups included) and
  how many a sync would select: the pass, then the domain's users and the 50 groups'
  members, read as a sync reads them;
- ``search``: a one-word search, answered on Google's side (two queries, name and email).

Reports each phase's seconds and requests, and the pass's requests against the minimum.
"""

from __future__ import annotations

import argparse
import json
import math
import time

from emulated import connection, emulator, in_fresh_process, phase_options  # beside this script

SELECTED = 5
PHASES = {
    "all": {"limit": None, "counts": False, "search": None},
    "default": {"limit": 50, "counts": True, "search": None},
    "search": {"limit": 50, "counts": True, "search": "list0099"},
}


def measure(phase: str, url: str, key_file: str, admin: str, domain: str) -> dict[str, object]:
    """One phase in this (fresh) process: its wall time and requests."""
    from komeet_sync.model.domain_config import DomainConfig
    from komeet_sync.runs.selection import list_groups
    from komeet_sync.sources.google.credentials import ServiceAccountKey
    from komeet_sync.sources.google.reader import DirectoryReader

    config = DomainConfig.create(domain, "google", groups=[f"team000@{domain}"], admin_email=admin)
    reader = DirectoryReader(ServiceAccountKey.load(key_file), admin, endpoint=url)
    started = time.perf_counter()
    reader.authenticate()
    listing = list_groups(config, reader, **PHASES[phase])  # type: ignore[arg-type]
    return {
        "phase": phase,
        "seconds": time.perf_counter() - started,
        "requests": reader.requests,
        "found": listing.found,
        "shown": len(listing.groups),
        "counted": listing.counted,
    }


def machine() -> str:
    from machine import describe  # benchmarks/machine.py, beside this script

    return describe("pandas", "google-api-python-client")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000, help="groups besides the selected")
    parser.add_argument("--users", type=int, default=10_000)
    phase_options(parser, sorted(PHASES))
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(measure(args.phase, **json.loads(args.connect))))
        return 0

    with emulator(
        "--generate", str(args.users), "--groups", str(SELECTED),
        "--other-groups", str(args.groups), "--domain", "example.com",
        "--latency", str(args.latency),
    ) as started:  # fmt: skip
        connect = connection(started)
        rows = [
            {phase: in_fresh_process(__file__, phase, connect) for phase in PHASES}
            for _ in range(args.rounds)
        ]

    total = rows[0]["all"]["found"]
    minimum = 1 + math.ceil(total / 200)
    print(f"Machine: {machine()}")
    print(
        f"Workspace: {total:,} groups ({args.groups:,} + {SELECTED} selected with 2 nested "
        f"each), {args.users:,} users; emulator latency {args.latency * 1000:.0f} ms a "
        "request, in its own process"
    )
    print(f"Minimum requests of the pass: {minimum} = 1 token + {minimum - 1} groups.list")
    print()
    print(
        "| round | all, no counts: s (requests) | pass = minimum "
        "| first 50 with counts: s (requests) | search, first 50 with counts: s (requests) |"
    )
    print("|---:|---:|---|---:|---:|")
    for number, found in enumerate(rows, start=1):
        every, default, search = found["all"], found["default"], found["search"]
        assert every["shown"] == total and default["shown"] == 50 and default["counted"]
        print(
            f"| {number} | {every['seconds']:.2f} ({every['requests']:,}) "
            f"| {'yes' if every['requests'] == minimum else 'NO'} "
            f"| {default['seconds']:.2f} ({default['requests']:,}) "
            f"| {search['seconds']:.2f} ({search['requests']:,}; {search['found']} found) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
