"""Benchmark of the SCIM endpoint under load against scim2-server's in-memory app (the anchor).

    .venv/bin/python benchmarks/scim_load.py
    .venv/bin/python benchmarks/scim_load.py --users 2000 --clients 8
    .venv/bin/python benchmarks/scim_load.py --baseline /tmp/before  # against an earlier commit
    .venv/bin/python benchmarks/scim_load.py --database postgresql,sqlite --workers 1,2,4

With ``--workers`` (or ``--database``), the anchor is left out: ``komeet-sync scim serve
--workers N`` runs for each database and each N, one after the other, each on a fresh
database with one SCIM domain, and the report gives each run's speed-up over 1 process of
the same database, measured in the same run. PostgreSQL is a throwaway server of the
system's binaries (initdb, fsync on, as in production) unless ``--postgres-url`` names one
(a database is created for each run). After each run the server is stopped (SIGTERM: each
process writes the rest of its request log) and the request log is read too: "unlogged"
counts the POSTs and PATCHes sent that have no row in ``scim_requests``.

Each server runs in its own process on a free loopback port, one after the other: first the
anchor (scim2-server's ``ASGIApplication`` on ``AsyncInMemoryStorage``, under uvicorn), then
``komeet-sync scim serve`` on a fresh SQLite database with one SCIM domain. This process is
the load generator: ``--clients`` threads, each with its own keep-alive ``http.client``
connection,
take the next user from a shared counter until none is left. Phase 1 creates ``--users``
users (POST /Users: userName, name, emails, active, externalId, enterprise employeeNumber);
phase 2 patches each created user once (PATCH /Users/{id}: ``replace`` of name.familyName
and of active). Each request is timed on its own (``time.perf_counter``); writes/s are the
successful writes over the phase's wall time. After the run, the SQLite database is read:
every user answered 201 must be a live row of ``scim_resources`` and every user answered
200/204 to its PATCH must hold the patched values; "lost" counts those that are not. The
anchor keeps its users in memory: its lost count is not checked. The load generator shares
the machine's cores with the server: the CPU seconds of both are printed.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

DOMAIN = "bench.example"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
KOMEET_SYNC = Path(sys.executable).with_name("komeet-sync")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def anchor_app():
    """scim2-server's in-memory ASGI application (``uvicorn --factory``)."""
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage
    from scim2_server.utils import load_default_provider

    return ASGIApplication(AsyncInMemoryStorage(), load_default_provider())


# --- requests ------------------------------------------------------------------------------


def user_body(number: int) -> dict[str, Any]:
    given, family = f"Given{number}", f"Family{number}"
    email = f"user{number:05d}@{DOMAIN}"
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": str(uuid.uuid5(uuid.NAMESPACE_DNS, email)),
        "userName": email,
        "active": True,
        "displayName": f"{given} {family}",
        "name": {"formatted": f"{given} {family}", "givenName": given, "familyName": family},
        "emails": [{"value": email, "type": "work", "primary": True}],
        ENTERPRISE: {"employeeNumber": str(100_000 + number), "department": "Engineering"},
    }


def patched_family(number: int) -> str:
    return f"Patched{number}"


def patched_active(number: int) -> bool:
    return number % 2 == 0  # every other user leaves


def patch_body(number: int) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "name.familyName", "value": patched_family(number)},
            {"op": "replace", "path": "active", "value": patched_active(number)},
        ],
    }


@dataclass
class Phase:
    """What one phase against one server measured."""

    server: str
    name: str
    requests: int = 0
    ok: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    lost: int | None = None
    unlogged: int | None = None  # requests sent with no row in the request log
    ids: dict[int, str] = field(default_factory=dict)  # user number -> id, when it succeeded

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


class Connection:
    """One client's keep-alive HTTP/1.1 connection. ``http.client`` costs the load generator
    about a third of the CPU httpx does for each request (0.3 ms against 0.8-1 ms here),
    and the generator shares the cores with the server."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        self.prefix = url.path
        self.headers = headers
        self.http = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)

    def send(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.http.request(method, self.prefix + path, body=body, headers=self.headers)
            response = self.http.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.http.close()  # the next request opens a new connection
            return -1, repr(exc).encode()

    def close(self) -> None:
        self.http.close()


def run_phase(
    phase: Phase,
    clients: int,
    connect: Callable[[], Connection],
    requests: list[tuple[Any, str, str, bytes]],
    expected: tuple[int, ...],
    server_pid: int,
) -> list[tuple[Any, int, Any]]:
    """Send every (job, method, path, body) from ``clients`` threads, each on its own
    connection; the (job, status, response JSON or None) of each request."""
    counter = itertools.count()  # next() on a count is atomic in CPython
    results: list[tuple[Any, int, Any]] = []
    lock = threading.Lock()
    shown = itertools.count()

    def worker() -> None:
        mine: list[tuple[Any, int, Any]] = []
        latencies: list[float] = []
        connection = connect()
        try:
            while (index := next(counter)) < len(requests):
                job, method, path, body = requests[index]
                started = time.perf_counter()
                status, content = connection.send(method, path, body)
                latencies.append(time.perf_counter() - started)
                document = None
                if status in (200, 201) and content:
                    document = json.loads(content)
                elif status not in expected and next(shown) < 5:
                    print(f"  {phase.server}, {phase.name}: {status} {content[:300]!r}")
                mine.append((job, status, document))
        finally:
            connection.close()
            with lock:
                results.extend(mine)
                phase.latencies.extend(latencies)

    threads = [threading.Thread(target=worker, name=f"client-{n}") for n in range(clients)]
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    phase.server_cpu = cpu_seconds(server_pid) - server_before
    phase.client_cpu = time.process_time() - client_before
    phase.requests = len(results)
    phase.statuses = Counter("error" if s == -1 else str(s) for _, s, _ in results)
    phase.ok = sum(1 for _, s, _ in results if s in expected)
    return results


def load(server: str, base_url: str, headers: dict[str, str], args, pid: int) -> list[Phase]:
    """Create ``args.users`` users, then patch each created one: the two phases."""

    def connect() -> Connection:
        return Connection(base_url, headers)

    create = Phase(server, "create")
    created = run_phase(
        create,
        args.clients,
        connect,
        [
            (number, "POST", "/Users", json.dumps(user_body(number)).encode())
            for number in range(1, args.users + 1)
        ],
        (201,),
        pid,
    )
    create.ids = {number: body["id"] for number, status, body in created if status == 201}
    patch = Phase(server, "patch")
    patched = run_phase(
        patch,
        args.clients,
        connect,
        [
            (
                (number, resource_id),
                "PATCH",
                f"/Users/{resource_id}",
                json.dumps(patch_body(number)).encode(),
            )
            for number, resource_id in sorted(create.ids.items())
        ],
        (200, 204),
        pid,
    )
    patch.ids = dict(job for job, status, _ in patched if status in (200, 204))
    return [create, patch]


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(process: subprocess.Popen, url: str, headers: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urlopen(Request(url, headers=headers), timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer {url} within 60 s:\n{log.read_text()}")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (with its threads) and of its live children
    (the processes of ``scim serve --workers``), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(cpu_seconds(child) for child in children)


def bench_anchor(args, folder: Path, processes: list[subprocess.Popen]) -> list[Phase]:
    port = free_port()
    log = folder / "anchor.log"
    anchor = start(
        [
            sys.executable, "-m", "uvicorn", "--factory", "scim_load:anchor_app",
            "--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning",
        ],
        dict(os.environ),
        log,
    )  # fmt: skip
    processes.append(anchor)
    base = f"http://127.0.0.1:{port}/v2"
    headers = {"Content-Type": "application/scim+json"}
    wait_ready(anchor, f"{base}/ServiceProviderConfig", headers, log)
    try:
        return load("scim2-server in memory (anchor)", base, headers, args, anchor.pid)
    finally:
        stop(anchor)


def bench_komeet(
    args,
    folder: Path,
    processes: list[subprocess.Popen],
    label: str = "komeet-sync scim serve, SQLite",
    source: Path | None = None,
    database_url: str | None = None,
    workers: int = 1,
) -> list[Phase]:
    """``komeet-sync scim serve`` on a fresh database (default: SQLite under a new home);
    with ``source``, the server runs the ``komeet_sync`` package of that source tree (an
    earlier commit's worktree) instead; with ``workers``, from that many processes."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="home-", dir=folder))
    env = dict(os.environ)
    env.pop("KOMEET_SYNC_DATABASE_URL", None)  # the embedded SQLite, unless one is given
    if database_url is not None:
        env["KOMEET_SYNC_DATABASE_URL"] = database_url
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    env |= {
        "KOMEET_SYNC_HOME": str(home),
        "KOMEET_SYNC_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # The endpoint's own speed is measured, not the domain's rate limit (50/s by default).
        "KOMEET_SYNC_SCIM_RATE_LIMIT": "10000",
    }
    added = subprocess.run(
        [str(KOMEET_SYNC), "domains", "add", DOMAIN, "--source", "scim", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    domain = json.loads(added.stdout)
    log = home / "server.log"
    command = [str(KOMEET_SYNC), "scim", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    server = start(command, env, log)
    processes.append(server)
    headers = {
        "Authorization": f"Bearer {domain['secret']}",
        "Content-Type": "application/scim+json",
    }
    wait_ready(server, f"{domain['scim_url']}/ServiceProviderConfig", headers, log)
    try:
        phases = load(label, domain["scim_url"], headers, args, server.pid)
    finally:
        stop(server)  # SIGTERM: each process writes the rest of its request log
    check_staging(database_url or f"sqlite:///{home / 'komeet_sync.db'}", phases)
    return phases


def check_staging(database_url: str, phases: list[Phase]) -> None:
    """Count the 201s not staged, the 200/204 PATCHes whose values are not stored, and
    the POSTs and PATCHes with no row in the request log."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT r.id, r.document FROM scim_resources r JOIN domain_configs d "
                    "ON d.id = r.domain_id WHERE d.domain = :domain AND r.resource_type = 'User' "
                    "AND r.deleted_at IS NULL"
                ),
                {"domain": DOMAIN},
            ).all()
            logged = dict(
                connection.execute(
                    text(
                        "SELECT method, count(*) FROM scim_requests WHERE domain = :domain "
                        "AND method IN ('POST', 'PATCH') GROUP BY method"
                    ),
                    {"domain": DOMAIN},
                ).all()
            )
    finally:
        engine.dispose()
    staged = {
        resource_id: json.loads(document) if isinstance(document, str) else document
        for resource_id, document in rows
    }
    create, patch = phases
    create.unlogged = create.requests - logged.get("POST", 0)
    patch.unlogged = patch.requests - logged.get("PATCH", 0)
    create.lost = sum(
        1
        for number, resource_id in create.ids.items()
        if staged.get(resource_id, {}).get("userName") != f"user{number:05d}@{DOMAIN}"
    )
    patch.lost = 0
    for number, resource_id in patch.ids.items():
        document = staged.get(resource_id, {})
        if (document.get("name") or {}).get("familyName") != patched_family(number) or document.get(
            "active"
        ) is not patched_active(number):
            patch.lost += 1
    extra = len(staged) - len(create.ids)
    if extra:
        print(f"  note: {extra:+,} staged users against the 201 answers", file=sys.stderr)


class Databases:
    """The database URL of each run: a fresh SQLite file, or a fresh database on the
    PostgreSQL server (``--postgres-url``, else a throwaway one started here)."""

    def __init__(self, postgres_url: str | None) -> None:
        self.postgres_url = postgres_url
        self.server: Any = None
        self.created: list[str] = []

    def fresh(self, kind: str) -> str | None:
        if kind == "sqlite":
            return None  # the embedded default, under the run's new home
        from sqlalchemy import create_engine, text

        if self.postgres_url is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.support.postgres_server import PostgresServer

            self.server = PostgresServer(fsync=True)
            self.postgres_url = self.server.start()
        name = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return self.postgres_url.rsplit("/", 1)[0] + "/" + name

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            return
        if not self.created or self.postgres_url is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- report --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] * 1000


def overall(phases: list[Phase]) -> Phase:
    total = Phase(phases[0].server, "both")
    for phase in phases:
        total.requests += phase.requests
        total.ok += phase.ok
        total.seconds += phase.seconds
        total.latencies += phase.latencies
        total.statuses += phase.statuses
        total.server_cpu += phase.server_cpu
        total.client_cpu += phase.client_cpu
        if phase.lost is not None:
            total.lost = (total.lost or 0) + phase.lost
    return total


def machine() -> str:
    from machine import describe  # benchmarks/machine.py, beside this script

    return describe(
        "scim2-server",
        "scim2-models",
        "uvicorn",
        "uvloop",
        "httptools",
        "sqlalchemy",
        extra=f"SQLite {sqlite3.sqlite_version}",
    )


def combined(runs: list[list[Phase]]) -> list[Phase]:
    """The phases of several runs of one server as one run each phase (rates over the summed
    wall time)."""
    phases = []
    for index, name in enumerate(("create", "patch")):
        total = overall([run[index] for run in runs])
        total.name = name
        phases.append(total)
    return phases


def commit_of(source: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(source), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip()[:90] or str(source)


def report(args, anchor: list[Phase], ours: list[Phase], baseline: list[Phase] = ()) -> None:
    print(f"Machine: {machine()}")
    print(
        f"Load: {args.clients} client threads (keep-alive http.client), {args.users:,} POST /Users "
        "then one PATCH per created user; servers and clients share the cores"
    )
    print()
    print("| server | phase | requests | writes/s | p50 ms | p99 ms | errors | lost |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    servers = [anchor, *([baseline] if baseline else []), ours]
    for phases in servers:
        for phase in [*phases, overall(phases)]:
            lost = "not checked" if phase.lost is None else f"{phase.lost:,}"
            print(
                f"| {phase.server} | {phase.name} | {phase.requests:,} | {phase.rate:,.0f} "
                f"| {percentile(phase.latencies, 0.50):.1f} "
                f"| {percentile(phase.latencies, 0.99):.1f} | {phase.errors:,} | {lost} |"
            )
    print()
    print_wall_and_cpu(servers)
    print()
    ratios = rate_ratios(ours, anchor, lambda ratio: f"{ratio:.2f}")
    print(f"Ours / anchor, writes/s: {ratios}")
    if baseline:
        print(f"Baseline: {commit_of(args.baseline)}")
        changes = rate_ratios(ours, baseline, lambda ratio: f"{ratio - 1:+.1%}")
        print(f"Ours against the baseline, writes/s: {changes}")


def rate_ratios(ours: list[Phase], other: list[Phase], shown: Callable[[float], str]) -> str:
    """Our writes/s over another server's, each phase and both together."""
    return "; ".join(
        f"{name} {shown(mine.rate / theirs.rate)}"
        for name, mine, theirs in zip(
            ("create", "patch", "both"),
            [*ours, overall(ours)],
            [*other, overall(other)],
            strict=True,
        )
        if theirs.rate
    )


def report_workers(args, runs: dict[tuple[str, int], list[Phase]]) -> None:
    """Each database's runs at each number of processes, and their speed-up over 1 process
    of the same database."""
    print(f"Machine: {machine()}")
    print(
        f"Load: {args.clients} client threads (keep-alive http.client), {args.users:,} POST /Users "
        "then one PATCH per created user; servers and clients share the cores"
    )
    print()
    print(
        "| database | processes | phase | requests | writes/s | x 1 process | p50 ms | p95 ms "
        "| p99 ms | errors | lost | unlogged |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (database, workers), phases in runs.items():
        single = runs.get((database, 1))
        for index, phase in enumerate([*phases, overall(phases)]):
            base = [*single, overall(single)][index] if single else None
            ratio = f"x{phase.rate / base.rate:.2f}" if base and base.rate else "-"
            unlogged = "-" if phase.unlogged is None else f"{phase.unlogged:,}"
            print(
                f"| {database} | {workers} | {phase.name} | {phase.requests:,} "
                f"| {phase.rate:,.0f} | {ratio} | {percentile(phase.latencies, 0.50):.1f} "
                f"| {percentile(phase.latencies, 0.95):.1f} "
                f"| {percentile(phase.latencies, 0.99):.1f} | {phase.errors:,} "
                f"| {phase.lost:,} | {unlogged} |"
            )
    print()
    print_wall_and_cpu(list(runs.values()))


def print_wall_and_cpu(servers: list[list[Phase]]) -> None:
    """Each phase's wall time, statuses and CPU seconds, server and load generator."""
    for phases in servers:
        for phase in phases:
            statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(phase.statuses.items()))
            print(
                f"- {phase.server}, {phase.name}: {phase.seconds:.1f} s wall; statuses {statuses}; "
                f"CPU {phase.server_cpu:.1f} s server ({phase.server_cpu / phase.seconds:.0%} "
                f"of a core, {1000 * phase.server_cpu / max(phase.requests, 1):.1f} ms a request), "
                f"{phase.client_cpu:.1f} s load generator "
                f"({1000 * phase.client_cpu / max(phase.requests, 1):.1f} ms a request)"
            )


def counts(text: str) -> list[int]:
    """``--workers``: numbers of processes, such as 1,2,4."""
    try:
        found = [int(part) for part in text.split(",")]
    except ValueError:
        found = []
    if not found or not all(1 <= n <= 64 for n in found):
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers of processes, such as 1,2,4")
    return found


def databases(text: str) -> list[str]:
    """``--database``: sqlite, postgresql, or both (postgresql,sqlite)."""
    found = [part.strip() for part in text.split(",")]
    if not found or not set(found) <= {"sqlite", "postgresql"}:
        raise argparse.ArgumentTypeError(f"{text!r}: give sqlite, postgresql or both")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000, help="users created, then patched")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="SOURCE_TREE",
        help="also load the server of an earlier commit's source tree (a git worktree), in "
        "the order baseline, ours, ours, baseline, and report the change in writes/s",
    )
    parser.add_argument(
        "--workers",
        type=counts,
        metavar="N,N,...",
        help="load `scim serve --workers N` for each N (e.g. 1,2,4), without the anchor",
    )
    parser.add_argument(
        "--database",
        type=databases,
        metavar="NAME,...",
        help="sqlite (default), postgresql, or postgresql,sqlite; without the anchor",
    )
    parser.add_argument(
        "--postgres-url",
        metavar="URL",
        help="a PostgreSQL server to create each run's database on (default: a throwaway "
        "server of the system's binaries, fsync on)",
    )
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C, so that the servers and the folder are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.workers or args.database:
        return main_workers(args)

    folder = Path(tempfile.mkdtemp(prefix="scim-load-"))
    processes: list[subprocess.Popen] = []
    try:
        print("anchor: scim2-server in memory", file=sys.stderr)
        anchor = bench_anchor(args, folder, processes)
        if args.baseline is None:
            print("ours: komeet-sync scim serve on SQLite", file=sys.stderr)
            ours = bench_komeet(args, folder, processes)
            baseline: list[Phase] = []
        else:
            # ABBA: a drift of the machine's speed during the run weighs on both alike.
            runs: dict[str, list[list[Phase]]] = {"baseline": [], "ours": []}
            label = {
                "baseline": "komeet-sync scim serve, SQLite, baseline",
                "ours": "komeet-sync scim serve, SQLite",
            }
            for which in ("baseline", "ours", "ours", "baseline"):
                print(f"{which}: komeet-sync scim serve on SQLite", file=sys.stderr)
                source = args.baseline if which == "baseline" else None
                runs[which].append(bench_komeet(args, folder, processes, label[which], source))
            baseline, ours = combined(runs["baseline"]), combined(runs["ours"])
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(folder, ignore_errors=True)
    report(args, anchor, ours, baseline)
    return 0


def main_workers(args) -> int:
    """Each database at each number of processes (``--workers``, ``--database``)."""
    folder = Path(tempfile.mkdtemp(prefix="scim-load-"))
    processes: list[subprocess.Popen] = []
    runs: dict[tuple[str, int], list[Phase]] = {}
    urls = Databases(args.postgres_url)
    try:
        for database in args.database or ["sqlite"]:
            for workers in args.workers or [1]:
                print(
                    f"komeet-sync scim serve --workers {workers} on {database} (load average "
                    f"{os.getloadavg()[0]:.1f}: others' work on the machine)",
                    file=sys.stderr,
                )
                runs[database, workers] = bench_komeet(
                    args,
                    folder,
                    processes,
                    f"{database}, {workers} process{'es' if workers > 1 else ''}",
                    database_url=urls.fresh(database),
                    workers=workers,
                )
    finally:
        for process in processes:
            stop(process)
        urls.close()
        shutil.rmtree(folder, ignore_errors=True)
    report_workers(args, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
