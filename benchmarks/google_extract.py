"""Benchmark of the Google Workspace extraction against its floor and its minimum requests.

    make bench-google
    .venv/bin/python benchmarks/google_extract.py --users 100000 --groups 50 --group-size 1000

The Directory API emulator runs in its own process with a generated directory (``--users``
users, ``--groups`` selected groups of ``--group-size`` users each, two levels of nested
groups below each) and ``--latency`` seconds added to every request. Each round, in fresh
processes, in turn:

- the floor: the users alone, paged one page after the other (token + ceil(U/500) requests),
  which no extraction can beat since each page needs the previous page's token;
- the extraction: users and every selected group's members (``DirectoryReader.extract``).

Reports the requests made against the minimum (1 token + ceil(U/500) + one ``groups.get``
per group + the sum over groups of ceil(M/200)), the wall time against the floor of the
same round, and the extraction's peak resident memory. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time

from emulated import connection, emulator, in_fresh_process, phase_options  # beside this script


def measure(phase: str, url: str, key_file: str, admin: str, domain: str, groups: list[str]):
    """One phase in this (fresh) process: its wall time, requests and peak RSS."""
    from komeet_sync.sources.google.credentials import ServiceAccountKey
    from komeet_sync.sources.google.reader import DirectoryReader

    reader = DirectoryReader(ServiceAccountKey.load(key_file), admin, endpoint=url)
    started = time.perf_counter()
    extract = reader.extract([domain], groups if phase == "extract" else [])
    seconds = time.perf_counter() - started
    return {
        "phase": phase,
        "seconds": seconds,
        "requests": extract.requests,
        "users": len(extract.users),
        "members": len(extract.members),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def minimum_requests(users: int, groups: int, group_size: int, nesting: int) -> dict[str, int]:
    from komeet_sync.emulators.directory_generator import generate_directory

    generated = generate_directory(
        users, groups=groups, group_size=group_size, nesting=nesting, seed=0
    )
    directory = generated.directory
    listed = [len(directory.members(directory.group(g), derived=True)) for g in generated.selected]
    return {
        "token": 1,
        "users.list": math.ceil(len(directory.users_of(generated.domain)) / 500),
        "groups.get": len(generated.selected),
        "members.list": sum(math.ceil(m / 200) for m in listed),
        "members_listed": sum(listed),
    }


def machine() -> str:
    from machine import describe  # benchmarks/machine.py, beside this script

    return describe("pandas")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--group-size", type=int, default=1_000)
    parser.add_argument("--nesting", type=int, default=2)
    phase_options(parser, ["floor", "extract"])
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(measure(args.phase, **json.loads(args.connect))))
        return 0

    with emulator(
        "--generate", str(args.users), "--groups", str(args.groups),
        "--group-size", str(args.group_size), "--nesting", str(args.nesting),
        "--latency", str(args.latency),
    ) as started:  # fmt: skip
        connect = connection(started) | {"groups": started["selected"]}
        minimum = minimum_requests(args.users, args.groups, args.group_size, args.nesting)
        floor_minimum = minimum["token"] + minimum["users.list"]
        extract_minimum = floor_minimum + minimum["groups.get"] + minimum["members.list"]
        rows = [
            {phase: in_fresh_process(__file__, phase, connect) for phase in ("floor", "extract")}
            for _ in range(args.rounds)
        ]

    print(f"Machine: {machine()}")
    print(
        f"Directory: {args.users:,} users; {args.groups} selected groups of {args.group_size:,} "
        f"users, {args.nesting} levels of nesting ({minimum['members_listed']:,} members "
        f"listed); emulator latency {args.latency * 1000:.0f} ms a request, in its own process"
    )
    print(
        f"Minimum requests: {extract_minimum:,} = 1 token + {minimum['users.list']} users.list "
        f"+ {minimum['groups.get']} groups.get + {minimum['members.list']} members.list; "
        f"latency-only floor {minimum['users.list'] * args.latency:.2f} s"
    )
    print()
    print(
        "| round | floor: users alone (s) | extraction (s) | extraction / floor "
        "| requests (floor / extraction) | extraction = minimum | peak RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|")
    for number, found in enumerate(rows, start=1):
        floor, extract = found["floor"], found["extract"]
        assert extract["users"] == args.users, extract
        print(
            f"| {number} | {floor['seconds']:.2f} | {extract['seconds']:.2f} "
            f"| {extract['seconds'] / floor['seconds']:.2f}x "
            f"| {floor['requests']:,} / {extract['requests']:,} "
            f"| {'yes' if extract['requests'] == extract_minimum else 'NO'} "
            f"| {extract['peak_rss_mb']:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
