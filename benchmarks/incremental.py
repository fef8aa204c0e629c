"""Benchmark of the incremental worker: from the 2xx an IdP gets to Komeet's write.

    make bench-incremental
    .venv/bin/python benchmarks/incremental.py --sizes 100,100000 --latency 0.02

For each size N, a fresh SQLite database holds one SCIM domain whose selected group lists N
staged users, each with a name, an externalId and an email. They are staged through the
product's storage (``StagingStorage.create``, in this process, one transaction a user as
the endpoint makes them): the staging rows, the users' keys and the change log are the
endpoint's own. Komeet is the third-party ``scim2-server`` in its own process behind the
latency proxy (``--latency`` a request), as in ``benchmarks/apply.py`` (``stand_in``). A
whole ``komeet-sync sync DOMAIN`` then creates the N accounts (SCIM Bulk) and moves the
worker's cursor past the staging of them: Komeet holds the domain, synced.

The indexed stand-in (``--komeet indexed``, what ``make bench-incremental`` uses) builds
each index on its first search, where a real Komeet's database has them already: one
``komeet-sync sync DOMAIN --person EMAIL --dry-run`` searches by every key first.

Then ``komeet-sync scim serve --json`` and ``komeet-sync worker --json`` run, each in its own
process (``--together``: the worker inside the endpoint's, ``scim serve --worker``), with
their defaults (0.1 s batch wait, 50 writes a second), and this process pushes changes over
HTTP, as an IdP would, with the domain's secret:

- joiners one at a time (``--joiners``): POST /Users, then PATCH of the selected group
  adding the user; the next one once Komeet has the account;
- renames (``--renames``): PATCH of a synced user's userName and emails;
- deactivations (``--deactivations``): PATCH ``active`` false;
- a burst (``--burst``): that many users created out of the group, then one PATCH each
  adding them to it, sent together from as many connections.

The clock starts when this process receives the 2xx of the push that makes the change (for
a joiner, the group's PATCH) and stops at the ``finished_at`` of that person's action in
the ledger (table ``ledger``: the worker writes it once Komeet acknowledged the write).
Both are read from this machine's clock, in UTC. p50 and p95 are nearest-rank
percentiles. The worker's batch lines (``--json``) give the split of a batch's time: the
wall time with a request to Komeet awaiting its answer, and the rest (staging, deciding,
the database). Afterwards the worker is stopped and a whole ``komeet-sync sync --dry-run``
must plan nothing: the worker left Komeet as a whole sync would. Prints a Markdown table
per size and the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import requests
from apply import SCIM2_SERVER, TOKEN, cpu_seconds, stand_in  # benchmarks/apply.py, beside
from machine import describe
from sqlalchemy import Engine, Integer, func, literal_column, select

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.sources.scim.endpoint import staging_provider
from komeet_sync.sources.scim.secret import hash_secret, new_secret
from komeet_sync.sources.scim.storage import StagingStorage
from komeet_sync.store.database import as_utc, open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.tables import LedgerRow

DOMAIN = "bench.example"
GROUP = "Komeet Users"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BIN = Path(sys.executable).parent
LEDGER = LedgerRow.__table__
# SQLite's own row number, in the order rows were written.
rowid = literal_column("ledger.rowid", type_=Integer)
LOOKED_AT = ("action", "user_name", "status", "finished_at", "outcome")
ACKNOWLEDGED_WITHIN = 120.0
# Komeet's stand-ins: scim2-server as it comes (a filter of several terms walks every
# account), or given the indexes a real Komeet's database has (tests/support/komeet_stand_in.py).
STAND_INS = {
    "scim2-server": SCIM2_SERVER,
    "indexed": (sys.executable, "-m", "tests.support.komeet_stand_in"),
}  # seconds: a change not in Komeet by then fails the run


def person(name: str, number: int) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": f"{name}@{DOMAIN}",
        "externalId": f"ext-{name}",
        "active": True,
        "name": {"givenName": f"Given{number}", "familyName": f"Family{number}"},
        "emails": [{"value": f"{name}@{DOMAIN}", "primary": True}],
    }


def stage(engine: Engine, config: DomainConfig, people: int) -> tuple[str, list[dict]]:
    """N users in the selected group, through the staging storage; the group's id and the
    users (with their ids)."""
    provider = staging_provider()
    storage = StagingStorage(
        engine, DomainStore(engine).id_of(DOMAIN), provider, user_name_domains=config.domains
    )
    user_type, group_type = (
        next(kind for kind in provider.resource_types if kind.id == name)
        for name in ("User", "Group")
    )
    user_model, group_model = provider.model_for(user_type), provider.model_for(group_type)
    users = []
    started = time.perf_counter()
    for number in range(people):
        document = person(f"person{number:06d}", number)
        created = storage.create(user_type, user_model.model_validate(document))
        users.append(document | {"id": created.id})
        if number and number % 10_000 == 0:
            log(f"  staged {number:,} users ({time.perf_counter() - started:.0f} s)")
    group = group_model.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": GROUP,
            "members": [{"value": user["id"]} for user in users],
        }
    )
    return str(storage.create(group_type, group).id), users


def staged_domain(engine: Engine, people: int) -> tuple[str, str, list[dict]]:
    """The SCIM domain configured, its secret, and N users staged in its selected group:
    the secret, the group's id and the users."""
    store = DomainStore(engine)
    config = store.add(DomainConfig.create(DOMAIN, "scim", groups=[GROUP]))
    secret = new_secret()
    store.set_scim_secret_hash(DOMAIN, hash_secret(secret))
    group_id, users = stage(engine, config, people)
    return secret, group_id, users


class Idp:
    """The IdP's side: pushes over HTTP, each returning when its 2xx arrived (UTC)."""

    def __init__(self, url: str, secret: str, group_id: str) -> None:
        self.url = f"{url}/scim/{DOMAIN}/v2"
        self.group_id = group_id
        self.headers = {"Authorization": f"Bearer {secret}"}
        self._local = threading.local()

    def send(self, method: str, path: str, body: dict) -> tuple[dict, datetime]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self.headers)
        answer = session.request(method, f"{self.url}{path}", json=body, timeout=60)
        at = datetime.now(UTC)
        if not answer.ok:
            raise SystemExit(f"{method} {path} answered {answer.status_code}: {answer.text}")
        return (answer.json() if answer.content else {}), at

    def create(self, name: str, number: int) -> str:
        created, _ = self.send("POST", "/Users", person(name, number))
        return created["id"]

    def patch(self, path: str, *operations: dict) -> datetime:
        return self.send("PATCH", path, {"schemas": [PATCH_OP], "Operations": operations})[1]

    def add_to_group(self, user_id: str) -> datetime:
        return self.patch(
            f"/Groups/{self.group_id}",
            {"op": "add", "path": "members", "value": [{"value": user_id}]},
        )


@dataclass
class Ledger:
    """The ledger's rows written since the last look (SQLite's rowid: the ledger of a
    synced 100,000-person domain is 100,000 rows, not scanned at every look)."""

    engine: Engine
    seen: int = 0

    def __post_init__(self) -> None:
        with self.engine.connect() as connection:
            self.seen = connection.scalar(
                select(func.coalesce(func.max(rowid), 0)).select_from(LEDGER)
            )

    def wait_for(self, wanted: dict[tuple[str, str], datetime]) -> dict[tuple[str, str], float]:
        """Seconds from each (action, userName)'s push to its ledger row's ``finished_at``;
        waits until all are there."""
        latencies: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + ACKNOWLEDGED_WITHIN
        while len(latencies) < len(wanted):
            if time.monotonic() > deadline:
                missing = sorted(set(wanted) - set(latencies))
                raise SystemExit(f"not in Komeet {ACKNOWLEDGED_WITHIN:g} s later: {missing}")
            time.sleep(0.02)
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(rowid.label("rowid"), *(LEDGER.c[name] for name in LOOKED_AT))
                    .where(rowid > self.seen)
                    .order_by(rowid)
                ).all()
            for row in rows:
                if row.finished_at is None:
                    break  # sent, not yet answered: looked at again next time
                self.seen = row.rowid
                key = (row.action, str(row.user_name).lower())
                if key not in wanted:
                    continue
                if row.status != "applied":
                    raise SystemExit(f"{key}: {row.status}, {row.outcome}")
                finished = as_utc(row.finished_at)
                latencies[key] = (finished - wanted[key]).total_seconds()
        return latencies


@dataclass
class Measured:
    size: int
    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind of change -> seconds
    batches: list[dict] = field(default_factory=list)  # the worker's lines that sent writes
    fill_seconds: float = 0.0
    sync_seconds: float = 0.0
    stand_in_cpu: float = 0.0  # scim2-server's CPU seconds during the pushes


def measure(size: int, args: argparse.Namespace, folder: Path) -> Measured:
    measured = Measured(size)
    home = folder / f"home-{size}"
    engine = open_database(f"sqlite:///{home / 'komeet_sync.db'}")
    started = time.perf_counter()
    secret, group_id, users = staged_domain(engine, size)
    measured.fill_seconds = time.perf_counter() - started
    log(f"{size:,} users staged in {measured.fill_seconds:.1f} s")

    komeet = stand_in(folder, args.latency, f"{size}", STAND_INS[args.komeet])
    with komeet as (server_pid, _, proxy_url, komeet_port):
        env = os.environ | {
            "KOMEET_SYNC_HOME": str(home),
            "KOMEET_SCIM_URL": f"{proxy_url}/v2",
            "KOMEET_SCIM_TOKEN": TOKEN,
        }
        env.pop("KOMEET_SYNC_DATABASE_URL", None)
        started = time.perf_counter()
        synced = komeet_sync("sync", DOMAIN, "--json", env=env)
        measured.sync_seconds = time.perf_counter() - started
        actions = synced.get("actions")
        if actions != {"create": size} or synced["applied"]["ledger"] != {"applied": size}:
            raise SystemExit(f"the whole sync did not create the {size:,} accounts: {synced}")
        log(f"whole sync: {size:,} accounts created in {measured.sync_seconds:.1f} s")
        # The indexed stand-in builds each index on its first search, as a real Komeet's
        # database has them already: one person's sync searches by every key.
        started = time.perf_counter()
        komeet_sync(
            "sync", DOMAIN, "--person", users[0]["userName"], "--dry-run", "--json", env=env
        )
        log(f"Komeet searched by every key once, in {time.perf_counter() - started:.1f} s")

        worker = Worker(env, folder / f"serve-{size}.log", args.together)
        try:
            idp = Idp(worker.url, secret, group_id)
            ledger = Ledger(engine)
            cpu_before = cpu_seconds(server_pid)
            measured.latencies = push_changes(idp, ledger, users, args)
            measured.stand_in_cpu = cpu_seconds(server_pid) - cpu_before
            worker.settle()
        finally:
            worker.stop()
        measured.batches = [line for line in worker.lines if line.get("applied")]
        failed = [line for line in worker.lines if line.get("error")]
        if failed:
            raise SystemExit(f"worker batches failed: {failed}")
        report(measured, args)
        # The stand-in serves a page of 100,000 accounts in seconds: the check reads them
        # without the proxy (its 30 s upstream timeout), two pages at a time, waiting.
        direct = {
            "KOMEET_SCIM_URL": f"http://127.0.0.1:{komeet_port}/v2",
            "KOMEET_SYNC_KOMEET_TIMEOUT": "600",
        }
        check = komeet_sync(
            "sync", DOMAIN, "--dry-run", "--json", "--concurrency", "2", env=env | direct
        )
        if check.get("actions"):
            raise SystemExit(f"a whole sync after the pushes plans {check['actions']}")
    engine.dispose()
    return measured


def push_changes(
    idp: Idp, ledger: Ledger, users: list[dict], args: argparse.Namespace
) -> dict[str, list[float]]:
    """The IdP's changes, one kind after the other; the seconds each took to reach Komeet."""
    latencies: dict[str, list[float]] = {}

    def one_at_a_time(kind: str, push: Callable[[int], tuple[str, str, datetime]], count: int):
        for number in range(count):
            action, user_name, at = push(number)
            (seconds,) = ledger.wait_for({(action, user_name): at}).values()
            latencies.setdefault(kind, []).append(seconds)
            time.sleep(args.pause)

    def joiner(number: int) -> tuple[str, str, datetime]:
        name = f"joiner{number:03d}"
        return "create", f"{name}@{DOMAIN}", idp.add_to_group(idp.create(name, number))

    def rename(number: int) -> tuple[str, str, datetime]:
        user = users[(number * 7919) % len(users)]
        new = f"renamed{number:03d}@{DOMAIN}"
        at = idp.patch(
            f"/Users/{user['id']}",
            {"op": "replace", "path": "userName", "value": new},
            {"op": "replace", "path": "emails", "value": [{"value": new, "primary": True}]},
        )
        return "update", new, at

    def deactivation(number: int) -> tuple[str, str, datetime]:
        user = users[(number * 7919 + len(users) // 2) % len(users)]
        at = idp.patch(f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False})
        return "deactivate", user["userName"], at

    one_at_a_time("joiner, one at a time", joiner, args.joiners)
    one_at_a_time("rename", rename, args.renames)
    one_at_a_time("deactivation", deactivation, args.deactivations)

    if args.burst:
        names = [f"burst{number:03d}" for number in range(args.burst)]
        ids = [idp.create(name, number) for number, name in enumerate(names)]
        time.sleep(1.0)  # the worker has seen the creations (nothing to send), and is idle
        with ThreadPoolExecutor(args.burst) as pool:
            pushed = list(pool.map(idp.add_to_group, ids))
        wanted = {
            ("create", f"{name}@{DOMAIN}"): at for name, at in zip(names, pushed, strict=True)
        }
        kind = f"joiner in a burst of {args.burst}"
        latencies[kind] = sorted(ledger.wait_for(wanted).values())
    return latencies


class Worker:
    """The endpoint and the worker, each in its own process (``komeet-sync scim serve --json``
    and ``komeet-sync worker --json``), or both in one (``scim serve --worker --json``,
    ``together``); the worker's batch lines read as they come."""

    def __init__(self, env: dict[str, str], log_file: Path, together: bool) -> None:
        serve = [str(BIN / "komeet-sync"), "scim", "serve", "--port", "0", "--json", "--quiet"]
        log = log_file.open("w")
        self.processes = [
            subprocess.Popen(
                serve + (["--worker"] if together else []),
                stdout=subprocess.PIPE, stderr=log, text=True, env=env,
            )
        ]  # fmt: skip
        endpoint = self.processes[0].stdout
        assert endpoint is not None
        first = endpoint.readline()
        if not first:
            self.stop()
            raise SystemExit(f"scim serve did not start; see {log_file}")
        self.url = json.loads(first)["url"]
        if not together:
            self.processes.append(
                subprocess.Popen(
                    [str(BIN / "komeet-sync"), "worker", "--json"],
                    stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                )
            )  # fmt: skip
        self.lines: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        batches = self.processes[-1].stdout
        assert batches is not None
        for line in batches:
            self.lines.append(json.loads(line))

    def settle(self, quiet: float = 10.0) -> None:
        """Wait until no batch line came for ``quiet`` seconds: the changes decided again
        after their person was synced (a burst read whole by its first batch) are done, and
        the stop interrupts no batch."""
        seen, since = len(self.lines), time.monotonic()
        while time.monotonic() - since < quiet:
            time.sleep(0.1)
            if len(self.lines) != seen:
                seen, since = len(self.lines), time.monotonic()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        self._reader.join(timeout=10)


def komeet_sync(*args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [str(BIN / "komeet-sync"), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"komeet-sync {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(measured: Measured, args: argparse.Namespace) -> None:
    print(
        f"\n### {measured.size:,} people\n\nStaged in {measured.fill_seconds:.0f} s; the whole "
        f"sync that created their accounts took {measured.sync_seconds:.1f} s.\n"
    )
    print("| change | pushes | p50 (s) | p95 (s) | max (s) |")
    print("|---|---:|---:|---:|---:|")
    every = []
    for kind, values in measured.latencies.items():
        every += values
        print(
            f"| {kind} | {len(values)} | {percentile(values, 0.5):.2f} | "
            f"{percentile(values, 0.95):.2f} | {max(values):.2f} |"
        )
    print(
        f"| **all** | {len(every)} | **{percentile(every, 0.5):.2f}** | "
        f"**{percentile(every, 0.95):.2f}** | **{max(every):.2f}** |"
    )
    batches = measured.batches
    if not batches:
        return
    seconds = [line["seconds"] for line in batches]
    komeet = [line["komeet_seconds"] for line in batches]
    sent = [line["komeet_requests"] for line in batches]
    ours = [whole - waited for whole, waited in zip(seconds, komeet, strict=True)]
    print(
        f"\nThe worker's {len(batches)} batches that wrote: a batch took {median(seconds):.2f} s "
        f"(median; max {max(seconds):.2f} s), of which {median(komeet):.2f} s awaiting Komeet's "
        f"answers (max {max(komeet):.2f} s) over {median(sent):.0f} requests (max "
        f"{max(sent):.0f}); {median(ours):.2f} s ours "
        f"(staging, deciding, the ledger). scim2-server used {measured.stand_in_cpu:.1f} CPU s "
        f"during the pushes; {args.latency * 1000:g} ms latency a request.",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,100000", help="people in the domain, by comma")
    parser.add_argument("--latency", type=float, default=0.02, metavar="SECONDS")
    parser.add_argument("--komeet", choices=sorted(STAND_INS), default="scim2-server")
    parser.add_argument("--joiners", type=int, default=40)
    parser.add_argument("--renames", type=int, default=5)
    parser.add_argument("--deactivations", type=int, default=5)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument(
        "--together",
        action="store_true",
        help="the worker inside the endpoint's process (scim serve --worker), not its own",
    )
    parser.add_argument(
        "--pause", type=float, default=0.3, metavar="SECONDS", help="between two changes"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="komeet-incremental-bench-"))
    print(f"Machine: {describe('scim2-server', 'sqlalchemy')}")
    print(
        f"Worker: `komeet-sync {'scim serve --worker' if args.together else 'worker'}` "
        "(batch wait 0.1 s, 50 writes a second); "
        f"Komeet: {args.komeet} behind {args.latency * 1000:g} ms a request",
        flush=True,
    )
    for size in args.sizes.split(","):  # each size's table as soon as it is measured
        measure(int(size), args, folder)
        print("A whole `sync --dry-run` after the pushes planned nothing.", flush=True)
    shutil.rmtree(folder)  # kept when the run fails: its logs say why
    return 0


if __name__ == "__main__":
    sys.exit(main())
