"""Benchmark of applying a plan of creates to Komeet: sequential, concurrent and Bulk.

    .venv/bin/python benchmarks/apply.py
    .venv/bin/python benchmarks/apply.py --people 2000 --latency 0.02

The Komeet stand-in is the third-party ``scim2-server`` command in its own process, behind
the fault-free proxy of ``komeet_sync.emulators.http_proxy`` (its own process too) adding
``--latency`` seconds to every request, as a remote API would. One plan of ``--people``
creates is made once (a Google snapshot of that many people, an empty Komeet), then applied
with ``apply_plan``, each time to a fresh, empty Komeet (a scim2-server process of its own,
behind a proxy process of its own: a process that kept earlier runs' accounts answers
slower and slower, its collector scanning them):
``sequential`` (one request at a time), ``concurrent`` (``--concurrency`` in flight, 24 here;
the CLI's default is 8, and n requests in flight, each a round trip of 20 ms and more, make
at most n times the sequential rate) and ``bulk`` (SCIM Bulk, the default when announced). Each
application is what ``komeet-sync sync`` does once it has read an empty Komeet and planned:
ledger rows first, each create sent without a search on its first attempt (a plan made
from a fresh read: ``fresh_read``), outcomes recorded. The modes run in the order of
``--modes``; by default concurrent and Bulk run before and after the sequential one, so
that a change of the machine's load during the long sequential run weighs on both sides,
and their rate is the mean of the two. Afterwards each Komeet is read back: the accounts
must be exactly the plan's, each userName and externalId once. Actions per second are the
plan's actions over the application's wall time; requests are those the application sent
(the first is the ServiceProviderConfig); CPU is each process's, per action.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from machine import describe  # benchmarks/machine.py, beside this script

from komeet_sync.komeet.apply import Mode, apply_plan
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.runs import sync
from komeet_sync.sources.google import resources as google_resources
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.results import ResultStore

DOMAIN = "bench.example"
GROUP = f"all@{DOMAIN}"
TOKEN = "bench-token"
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
SCIM2_SERVER = (str(BIN / "scim2-server"),)


def people(count: int) -> list[dict]:
    return [
        {
            "id": f"g{number}",
            "primaryEmail": f"person{number:06d}@{DOMAIN}",
            "name": {"givenName": f"Given{number}", "familyName": f"Family{number}"},
        }
        for number in range(count)
    ]


def start(command: list[str], ready: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Start a process; return it and the URL on its ready line."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://[\d.]+:\d+", line)
    if ready not in line or match is None:
        process.kill()
        raise SystemExit(f"{command[0]} did not start: {line!r}; see {log}")
    return process, match.group(0)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def stand_in(
    folder: Path, latency: float, name: str, server_command: Sequence[str] = SCIM2_SERVER
) -> Iterator[tuple[int, int, str, int]]:
    """A fresh, empty Komeet: scim2-server (or ``server_command``, taking its options) and
    the latency proxy in front of it, each in its own process. Yields their pids, the
    proxy's URL and scim2-server's port."""
    port = free_port()
    server = subprocess.Popen(
        [*server_command, "--port", str(port), "--bearer-token", TOKEN],
        stdout=subprocess.DEVNULL, stderr=(folder / f"scim2-server-{name}.log").open("w"),
        cwd=ROOT,
    )  # fmt: skip
    proxy, proxy_url = start(
        [sys.executable, "-m", "komeet_sync.emulators.http_proxy",
         "--upstream", f"http://127.0.0.1:{port}", "--latency", str(latency)],
        "Proxying", folder / f"proxy-{name}.log",
    )  # fmt: skip
    try:
        time.sleep(1.0)  # scim2-server's start
        yield server.pid, proxy.pid, proxy_url, port
    finally:
        for process in (proxy, server):
            process.terminate()
            process.wait()


def read_all(url: str) -> list[dict]:
    client = KomeetClient(url, TOKEN)
    return client.list_users([])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000, help="creates in the plan")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument(
        "--modes",
        default="concurrent,bulk,sequential,bulk,concurrent",
        help="comma-separated, in order",
    )
    args = parser.parse_args()
    modes = [Mode(mode) for mode in args.modes.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="komeet-apply-bench-"))
    os.environ["KOMEET_SYNC_HOME"] = str(folder / "home")

    engine = open_database(f"sqlite:///{folder / 'komeet_sync.db'}")
    config = DomainStore(engine).add(
        DomainConfig.create(
            DOMAIN, "google", admin_email=f"admin@{DOMAIN}", groups=[GROUP], enabled=False
        )
    )
    directory = people(args.people)
    snapshot = google_resources.snapshot(
        directory, {GROUP: [{"id": p["id"], "email": p["primaryEmail"], "type": "USER"}
                            for p in directory]}
    )  # fmt: skip
    with stand_in(folder, args.latency, "plan") as (_, _, proxy_url, _):
        planned = sync.sync(
            config,
            engine,
            ResultStore.from_settings(),
            read_directory=lambda _advance: dataclasses.replace(
                snapshot, started_at=datetime.now(UTC)
            ),
            client=KomeetClient(f"{proxy_url}/v2", TOKEN),
        )
    plan_id = planned.planned.plan_id
    counts = planned.planned.reconciliation.plan.counts()
    assert counts == {"create": args.people}, counts
    DomainStore(engine).set_enabled(DOMAIN, True)
    print(f"Plan {plan_id}: {args.people:,} creates; latency {args.latency * 1000:g} ms")

    seconds_of: dict[Mode, list[float]] = {}
    for number, mode in enumerate(modes):
        with stand_in(folder, args.latency, f"{number}") as (server, proxy, proxy_url, port):
            client = KomeetClient(f"{proxy_url}/v2", TOKEN)
            cpu_before = (time.process_time(), cpu_seconds(proxy), cpu_seconds(server))
            started = time.perf_counter()
            result = apply_plan(
                engine,
                plan_id,
                client,
                mode=mode,
                concurrency=args.concurrency,
                again=True,
                fresh_read=True,
            )
            seconds = time.perf_counter() - started
            cpu_after = (time.process_time(), cpu_seconds(proxy), cpu_seconds(server))
            client_cpu, proxy_cpu, server_cpu = (
                (after - before) * 1000 / args.people
                for before, after in zip(cpu_before, cpu_after, strict=True)
            )
            accounts = read_all(f"http://127.0.0.1:{port}/v2")
        names = Counter(a["userName"].lower() for a in accounts)
        external = Counter(a.get("externalId") for a in accounts)
        duplicates = sum(n - 1 for n in names.values()) + sum(n - 1 for n in external.values())
        expected = {p["primaryEmail"] for p in directory}
        assert result.counts == {"applied": args.people}, result.counts
        assert set(names) == expected, "the accounts are not the plan's"
        seconds_of.setdefault(mode, []).append(seconds)
        print(
            f"{mode.value:>10}: {seconds:7.1f} s, {args.people / seconds:7.1f} actions/s, "
            f"{result.requests:,} requests, {len(accounts):,} accounts, "
            f"{duplicates} duplicates; CPU ms an action: client {client_cpu:.2f}, "
            f"proxy {proxy_cpu:.2f}, scim2-server {server_cpu:.2f}",
            flush=True,
        )
    rates = {mode: args.people * len(runs) / sum(runs) for mode, runs in seconds_of.items()}
    if Mode.SEQUENTIAL in rates:
        for mode, rate in rates.items():
            if mode is not Mode.SEQUENTIAL:
                times = len(seconds_of[mode])
                print(
                    f"{mode.value} / sequential: {rate / rates[Mode.SEQUENTIAL]:.1f}x "
                    f"({rate:.1f} actions/s{f', mean of {times} runs' if times > 1 else ''})"
                )
    print(describe("scim2-server", "requests"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
