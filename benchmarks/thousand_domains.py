"""Benchmark of the Dagster deployment with many domains: the daemon's ticks and a backfill.

    make bench-domains
    .venv/bin/python benchmarks/thousand_domains.py --domains 100,300,1000 --steady 3

For each size N, on one throwaway PostgreSQL server (tests/support/postgres_server.py):
komeet-sync's database and the Dagster instance's (deploy/dagster.yaml as it is, but for
the phase's run queue), each new. N SCIM domains are configured, each with ``--users``
people in its selected group, staged through the product's storage (``StagingStorage``, as
the endpoint stages a push): every domain has pushes the incremental worker has not synced,
as if all N IdPs had pushed and no worker ran. Komeet is the indexed ``scim2-server``
stand-in (tests/support/komeet_stand_in.py), empty.

Phase 1, the ticks: a real ``dagster-daemon run`` (its own process, and the code server it
starts) evaluates the sensors and the schedule, with ``KOMEET_SYNC_SCHEDULE`` set to every
minute and the run queue paused (``max_concurrent_runs: 0``: what the ticks submit is
queued, never launched). Measured from the instance's ticks (``timestamp`` to
``end_timestamp``): the partitions sensor's first tick (it adds the N partitions) and its
steady ones; the SCIM-push sensor's first tick that launches (N run requests: every domain's
pushes waited more than a minute) and its steady ones (the same run keys: nothing new); the
schedule's ticks (N run requests each); the notification sensor's. Phase 1 ends once each
of them has ticked ``--steady`` times after its first. Its runs stay queued and are
dropped with the instance.

Phase 2, the backfill: a new Dagster instance with deploy/dagster.yaml unchanged (the
queued run coordinator, at most 20 runs at once), a new daemon, the schedule set to a time
that never comes during the run, the pushes marked synced (a whole sync takes them off the
worker's list anyway). An asset backfill of all the assets over the N partitions is added
as the UI adds one (``PartitionBackfill.from_asset_partitions``); the clock runs from then
to the end of the last of its runs. Every run must succeed and Komeet must hold N x users
accounts.

Memory: the daemon's process and the code server's, sampled every 0.5 s (psutil), peak
RSS of each phase; run workers (one process per run) are left out and reported apart.
Storage per run: growth of the Dagster database (and of its event log table), komeet-sync's
database and the result store (KOMEET_SYNC_HOME) over the backfill, divided by its runs.

Prints a Markdown table per phase and the machine; each size's per-domain figures show
whether a tick grows linearly with the domains.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import psutil
import requests
import yaml
from apply import TOKEN, free_port  # benchmarks/apply.py, beside
from machine import describe
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support, from the checkout

from komeet_sync.model.domain_config import DomainConfig  # noqa: E402
from komeet_sync.sources.scim import changes  # noqa: E402
from komeet_sync.sources.scim.endpoint import staging_provider  # noqa: E402
from komeet_sync.sources.scim.storage import StagingStorage  # noqa: E402
from komeet_sync.store.database import open_database  # noqa: E402
from komeet_sync.store.domains import DomainStore  # noqa: E402
from komeet_sync.store.tables import LedgerRow  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402

BIN = Path(sys.executable).parent
GROUP = "Komeet Users"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
EVERY_MINUTE = "* * * * *"
NEVER_DURING_THE_RUN = "0 0 29 2 *"  # 29 February, midnight
PARTITIONS, PUSHES, SCHEDULE, NOTIFICATIONS = (
    "domain_partitions", "scim_pushes", "every_domain", "notifications",
)  # fmt: skip
PHASE_TIMEOUT = 3600.0
PUSH_GRACE = 65.0  # pipelines.sensors.WORKER_GRACE, and a margin


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the world ---------------------------------------------------------------------------


def new_database(server_url: str, name: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def database_bytes(url: str, table: str | None = None) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        if table is None:
            size = connection.scalar(text("SELECT pg_database_size(current_database())"))
        else:
            size = connection.scalar(text(f"SELECT pg_total_relation_size('{table}')"))
    engine.dispose()
    return int(size or 0)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def stage_domains(engine, count: int, users: int) -> list[str]:
    """``count`` SCIM domains, each with ``users`` people in its selected group, staged as
    the endpoint stages a push (users, then the group listing them)."""
    provider = staging_provider()
    user_type, group_type = (
        next(kind for kind in provider.resource_types if kind.id == name)
        for name in ("User", "Group")
    )
    user_model, group_model = provider.model_for(user_type), provider.model_for(group_type)
    store = DomainStore(engine)
    names = [f"d{number:05d}.example" for number in range(count)]
    started = time.perf_counter()
    for number, domain in enumerate(names):
        config = store.add(DomainConfig.create(domain, "scim", groups=[GROUP]))
        storage = StagingStorage(
            engine, store.id_of(domain), provider, user_name_domains=config.domains
        )
        ids = []
        for person in range(users):
            document = {
                "schemas": [USER],
                "userName": f"person{person}@{domain}",
                "externalId": f"ext-{number}-{person}",
                "active": True,
                "name": {"givenName": f"Given{person}", "familyName": f"Family{number}"},
            }
            ids.append(storage.create(user_type, user_model.model_validate(document)).id)
        group = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": GROUP,
            "members": [{"value": str(user_id)} for user_id in ids],
        }
        storage.create(group_type, group_model.model_validate(group))
        if (number + 1) % 250 == 0:
            log(f"  staged {number + 1:,} domains ({time.perf_counter() - started:.0f} s)")
    return names


@contextmanager
def komeet_stand_in(folder: Path) -> Iterator[str]:
    """An empty Komeet: the indexed scim2-server stand-in, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.komeet_stand_in", "--port", str(port),
         "--bearer-token", TOKEN],
        stdout=subprocess.DEVNULL, stderr=(folder / "komeet.log").open("w"), cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/ServiceProviderConfig", timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit(
                    f"the Komeet stand-in did not start: see {folder}/komeet.log"
                ) from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait()


# --- the daemon and its memory ------------------------------------------------------------


@dataclass
class Memory:
    """Peak RSS (bytes) of the daemon's process, of its code servers, and of the largest
    run worker, sampled while it runs."""

    daemon: int = 0
    code_server: int = 0
    both: int = 0
    run_worker: int = 0
    workers_at_once: int = 0
    # CPU seconds (user + system) each run worker had used when last seen, by pid.
    worker_cpu: dict[int, float] = field(default_factory=dict)


class Daemon:
    """``dagster-daemon run -w workspace.yaml`` in its own process group."""

    def __init__(self, home: Path, env: dict[str, str], log_file: Path) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env=env | {"DAGSTER_HOME": str(home)},
            stdout=log_file.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.log_file = log_file
        self.memory = Memory()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        root = psutil.Process(self.process.pid)
        while not self._stop.wait(0.5):
            try:
                daemon = root.memory_info().rss
                servers = workers = largest = 0
                for child in root.children(recursive=True):
                    try:
                        line = " ".join(child.cmdline())
                        rss = child.memory_info().rss
                        cpu = child.cpu_times()
                    except psutil.Error:
                        continue
                    # The code server starts each run in a process of its own (spawned).
                    if "spawn_main" in line or "execute_run" in line:
                        workers += 1
                        largest = max(largest, rss)
                        self.memory.worker_cpu[child.pid] = cpu.user + cpu.system
                    elif "grpc" in line:
                        servers += rss
            except psutil.Error:
                return
            memory = self.memory
            memory.daemon = max(memory.daemon, daemon)
            memory.code_server = max(memory.code_server, servers)
            memory.both = max(memory.both, daemon + servers)
            memory.run_worker = max(memory.run_worker, largest)
            memory.workers_at_once = max(memory.workers_at_once, workers)

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_file.read_text()[-3000:]
            raise SystemExit(f"dagster-daemon ended ({self.process.returncode}):\n{tail}")

    def stop(self) -> None:
        """Stop the daemon, then whatever of its group is left (its code server, runs)."""
        self._stop.set()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        time.sleep(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def dagster_home(folder: Path, name: str, paused: bool) -> Path:
    """A DAGSTER_HOME with deploy/dagster.yaml; ``paused``: its run queue launches nothing."""
    home = folder / name
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    if paused:
        config["concurrency"]["runs"]["max_concurrent_runs"] = 0
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def instance_for(home: Path, env: dict[str, str]):
    from dagster import DagsterInstance

    os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]
    return DagsterInstance.from_config(str(home))


# --- phase 1: ticks -----------------------------------------------------------------------


@dataclass
class Ticks:
    """An instigator's finished ticks, in seconds, oldest first, with their run requests."""

    seconds: list[float] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    failed: int = 0

    def first_launching(self) -> int | None:
        return next((i for i, runs in enumerate(self.runs) if runs), None)


def read_ticks(instance) -> dict[str, Ticks]:
    from dagster._core.scheduler.instigation import TickStatus

    found: dict[str, Ticks] = {}
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
        measured = Ticks()
        for tick in sorted(ticks, key=lambda tick: tick.timestamp):
            if tick.status is TickStatus.STARTED or tick.end_timestamp is None:
                continue
            measured.seconds.append(tick.end_timestamp - tick.timestamp)
            measured.runs.append(len(tick.tick_data.run_ids or ()))
            measured.failed += tick.status is TickStatus.FAILURE
        found[state.instigator_name] = measured
    return found


def ticks_done(ticks: dict[str, Ticks], steady: int) -> bool:
    partitions, pushes, schedule = (
        ticks.get(name, Ticks()) for name in (PARTITIONS, PUSHES, SCHEDULE)
    )
    first = pushes.first_launching()
    return (
        len(partitions.seconds) > steady
        and first is not None
        and len(pushes.seconds) > first + steady
        and len(schedule.seconds) >= 1  # each of its ticks asks for every domain's run
    )


def phase_ticks(size: int, steady: int, env: dict[str, str], folder: Path, pg: str) -> dict:
    env = env | {"DAGSTER_PG_URL": dagster_url(pg, f"dagster_ticks_{size}")}
    home = dagster_home(folder, f"dagster_ticks_{size}", paused=True)
    instance = instance_for(home, env)
    daemon = Daemon(
        home, env | {"KOMEET_SYNC_SCHEDULE": EVERY_MINUTE}, folder / f"daemon-ticks-{size}.log"
    )
    started = time.monotonic()
    try:
        while True:
            time.sleep(5)
            daemon.check()
            ticks = read_ticks(instance)
            if ticks_done(ticks, steady):
                break
            if time.monotonic() - started > PHASE_TIMEOUT:
                raise SystemExit(f"ticks not done within {PHASE_TIMEOUT:.0f} s: {ticks}")
    finally:
        daemon.stop()
    return {"ticks": ticks, "memory": daemon.memory, "wall": time.monotonic() - started}


# --- phase 2: the backfill ----------------------------------------------------------------


def dagster_url(pg: str, name: str) -> str:
    url = make_url(new_database(pg, name)).set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


def phase_backfill(
    size: int,
    domains: list[str],
    env: dict[str, str],
    folder: Path,
    pg: str,
    komeet_db: str,
    minutes: float | None,
) -> dict:
    """The backfill of every domain; stopped after ``minutes`` (its runs/min measured on
    the runs finished by then) when given."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

    from pipelines.definitions import defs
    from pipelines.pools import prepare_pools

    dagster_pg = dagster_url(pg, f"dagster_backfill_{size}")
    env = env | {"DAGSTER_PG_URL": dagster_pg, "KOMEET_SYNC_SCHEDULE": NEVER_DURING_THE_RUN}
    home = dagster_home(folder, f"dagster_backfill_{size}", paused=False)
    instance = instance_for(home, env)
    prepare_pools(instance)  # as the domains sensor does, before the partitions
    instance.add_dynamic_partitions("domains", domains)
    engine = open_database(komeet_db)
    for domain in domains:  # what a whole sync does for the pushes it read
        seq = changes.read_changes(engine, domain, 0, 1_000_000)
        if seq:
            changes.advance(engine, domain, changes.WORKER, seq[-1].seq)
    daemon = Daemon(home, env, folder / f"daemon-backfill-{size}.log")
    try:
        time.sleep(15)  # the daemon's first loop (a backfill added before is taken as well)
        home_folder = Path(env["KOMEET_SYNC_HOME"])
        before = (
            database_bytes(dagster_pg.replace("+psycopg2", "+psycopg")),
            database_bytes(dagster_pg.replace("+psycopg2", "+psycopg"), "event_logs"),
            database_bytes(komeet_db),
            folder_bytes(home_folder),
        )
        graph = defs.resolve_asset_graph()
        backfill_id = uuid.uuid4().hex[:8]
        started = time.time()
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=graph,
            partition_names=domains,
            asset_selection=list(graph.get_all_asset_keys()),
            backfill_timestamp=started,
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
        instance.add_backfill(backfill)
        log(f"  backfill {backfill_id} of {size:,} partitions added")
        finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
        last_note = time.monotonic()
        limit = minutes * 60 if minutes else PHASE_TIMEOUT * 2
        stopped = False
        all_created: float | None = None  # when the backfill had made a run of every domain
        while True:
            time.sleep(5)
            daemon.check()
            status = instance.get_backfill(backfill_id).status
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
            done = [run for run in runs if run.status in finished]
            if all_created is None and len(runs) >= size:
                all_created = time.time() - started
                log(f"  a run of each of the {size:,} domains created after {all_created:.0f} s")
            if time.monotonic() - last_note > 60:
                log(f"  {len(done):,} of {size:,} runs finished ({status.value})")
                last_note = time.monotonic()
            if status not in (BulkActionStatus.REQUESTED,) and len(done) == len(runs):
                break
            if time.time() - started > limit:
                if not minutes:
                    raise SystemExit(f"backfill not done within {limit:.0f} s")
                log(f"  stopped after {minutes:g} min: {len(done):,} of {size:,} runs finished")
                stopped = True
                break
        records = [
            record
            for record in instance.get_run_records(
                RunsFilter(tags={"dagster/backfill": backfill_id})
            )
            if record.dagster_run.status in finished
        ]
        ended = max(record.end_time or 0.0 for record in records)
        first_start = min(record.start_time or ended for record in records)
        after = (
            database_bytes(dagster_pg.replace("+psycopg2", "+psycopg")),
            database_bytes(dagster_pg.replace("+psycopg2", "+psycopg"), "event_logs"),
            database_bytes(komeet_db),
            folder_bytes(home_folder),
        )
    finally:
        daemon.stop()
    with engine.connect() as connection:
        applied = connection.scalar(
            select(func.count()).select_from(LedgerRow).where(LedgerRow.status == "applied")
        )
    engine.dispose()
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.dagster_run.status.value] = (
            statuses.get(record.dagster_run.status.value, 0) + 1
        )
    return {
        "status": status.value,
        "stopped": stopped,
        "runs": len(records),
        "statuses": statuses,
        "seconds": ended - started,
        "first_start": first_start - started,
        "all_created": all_created,
        "run_mean": mean(
            [r.end_time - r.start_time for r in records if r.start_time and r.end_time]
        ),
        "applied": int(applied or 0),
        "memory": daemon.memory,
        "grown": [b - a for a, b in zip(before, after, strict=True)],
    }


# --- the run ------------------------------------------------------------------------------


def measure(size: int, args: argparse.Namespace, folder: Path, pg: str) -> dict:
    log(f"{size:,} domains")
    komeet_db = new_database(pg, f"komeet_sync_{size}")
    engine = open_database(komeet_db)
    started = time.perf_counter()
    domains = stage_domains(engine, size, args.users)
    staged = time.perf_counter() - started
    engine.dispose()
    log(f"  {size:,} domains staged in {staged:.0f} s")
    time.sleep(PUSH_GRACE)  # every domain's pushes overdue: its first tick asks for them all
    with komeet_stand_in(folder) as komeet_url:
        env = {
            **{key: value for key, value in os.environ.items()},
            "KOMEET_SYNC_HOME": str(folder / f"home_{size}"),
            "KOMEET_SYNC_DATABASE_URL": komeet_db,
            "KOMEET_SCIM_URL": komeet_url,
            "KOMEET_SCIM_TOKEN": TOKEN,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        load = os.getloadavg()[0]
        ticks = None
        if not args.backfill_only:
            ticks = phase_ticks(size, args.steady, env, folder, pg)
            log(f"  ticks measured in {ticks['wall']:.0f} s")
        backfill = phase_backfill(size, domains, env, folder, pg, komeet_db, args.backfill_minutes)
        log(f"  backfill: {backfill['runs']:,} runs in {backfill['seconds']:.0f} s")
    return {"size": size, "staged": staged, "ticks": ticks, "backfill": backfill,
            "load": (load, os.getloadavg()[0])}  # fmt: skip


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, the first column right-aligned like the numbers."""
    aligns = ["---:" if name.endswith(")") or name == "domains" else "---" for name in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def tick_rows(result: dict) -> list[list[str]]:
    size = result["size"]
    rows = []
    for name in (PARTITIONS, PUSHES, SCHEDULE, NOTIFICATIONS):
        measured = result["ticks"]["ticks"].get(name, Ticks())
        first = measured.first_launching() if name == PUSHES else 0
        if first is None or not measured.seconds:
            rows.append([f"{size:,}", name, *["-"] * 6])
            continue
        steady = measured.seconds[first + 1 :]
        per_domain = [measured.seconds[first], mean(steady)]
        rows.append(
            [
                f"{size:,}",
                name,
                f"{measured.seconds[first]:.2f}",
                f"{mean(steady):.2f}",
                f"{max(steady, default=float('nan')):.2f}",
                f"{measured.runs[first]:,}",
                *(f"{seconds / size * 1000:.2f}" for seconds in per_domain),
            ]
        )
    return rows


def backfill_row(result: dict) -> list[str]:
    backfill, mb = result["backfill"], 2**20
    memory: Memory = backfill["memory"]
    runs = max(backfill["runs"], 1)
    statuses = ", ".join(
        f"{count:,} {name}" for name, count in sorted(backfill["statuses"].items())
    )
    seconds = f"{backfill['seconds']:.0f}"
    if backfill["stopped"]:
        seconds = f"stopped at {seconds}"
    return [
        f"{result['size']:,}",
        seconds,
        statuses,
        f"{backfill['runs'] / backfill['seconds'] * 60:.1f}",
        f"{backfill['first_start']:.1f}",
        "-" if backfill["all_created"] is None else f"{backfill['all_created']:.0f}",
        f"{backfill['run_mean']:.1f}",
        f"{sum(memory.worker_cpu.values()) / runs:.1f}",
        f"{memory.daemon / mb:.0f}",
        f"{memory.code_server / mb:.0f}",
        f"{memory.run_worker / mb:.0f}",
        f"{memory.workers_at_once}",
        *(f"{grown / runs / 1024:.1f}" for grown in backfill["grown"]),
        f"{backfill['applied']:,}",
    ]


def report(results: list[dict], args: argparse.Namespace, file: TextIO = sys.stdout) -> None:
    mb = 2**20
    print = functools.partial(builtins.print, file=file)
    postgres = f"PostgreSQL {pg_version()}"
    print(f"Machine: {describe('dagster', 'dagster-postgres', 'pandas', extra=postgres)}")
    print(f"Users per domain: {args.users}; steady ticks measured: {args.steady}\n")
    measured = [result for result in results if result["ticks"] is not None]
    print(
        table(
            ["domains", "tick", "first (s)", "steady mean (s)", "steady max (s)",
             "runs requested (first)", "per domain, first (ms)", "per domain, steady (ms)"],
            [row for result in measured for row in tick_rows(result)],
        )
    )  # fmt: skip
    print(
        table(
            ["domains", "ticks phase: daemon peak RSS (MB)", "code server peak RSS (MB)",
             "both (MB)", "failed ticks (n)", "staged in (s)", "load average, start and end"],
            [
                [
                    f"{result['size']:,}",
                    f"{result['ticks']['memory'].daemon / mb:.0f}",
                    f"{result['ticks']['memory'].code_server / mb:.0f}",
                    f"{result['ticks']['memory'].both / mb:.0f}",
                    f"{sum(ticks.failed for ticks in result['ticks']['ticks'].values())}",
                    f"{result['staged']:.0f}",
                    f"{result['load'][0]:.1f}, {result['load'][1]:.1f}",
                ]
                for result in measured
            ],
        )
    )  # fmt: skip
    print(
        table(
            ["domains", "backfill (s)", "runs", "runs/min (n)", "first run started after (s)",
             "a run of every domain created after (s)",
             "a run, mean (s)",
             "run worker CPU per run (s)",
             "daemon peak RSS (MB)", "code server peak RSS (MB)", "run worker peak RSS (MB)",
             "workers at once (n)", "Dagster DB per run (kB)", "of it event_logs (kB)",
             "komeet-sync DB per run (kB)", "result store per run (kB)",
             "accounts created (n)"],
            [backfill_row(result) for result in results],
        )
    )  # fmt: skip


def pg_version() -> str:
    found = subprocess.run(
        [str(PostgresServer().bin / "postgres"), "--version"], capture_output=True, text=True
    )
    return found.stdout.split()[2] if found.returncode == 0 else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default="100,1000", help="comma-separated sizes")
    parser.add_argument("--steady", type=int, default=3, help="ticks measured after the first")
    parser.add_argument("--users", type=int, default=3, help="people in each domain")
    parser.add_argument(
        "--backfill-minutes",
        type=float,
        help="stop each backfill after this long; runs/min from the runs finished by then",
    )
    parser.add_argument(
        "--backfill-only", action="store_true", help="skip the ticks: measure the backfill only"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    # Stopped (``kill``), stop the daemon and PostgreSQL too: the finally blocks run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(size) for size in args.domains.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="komeet-domains-bench-"))
    server = PostgresServer()
    pg = server.start()
    log(f"working in {folder}; PostgreSQL at {pg}")
    results = []
    try:
        for size in sizes:
            results.append(measure(size, args, folder, pg))
            try:  # the figures so far, should a later size fail
                report(results, args, file=sys.stderr)
            except Exception as error:
                log(f"the report failed: {error!r}; results: {results!r}")
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    report(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
