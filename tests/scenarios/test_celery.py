"""Runs whose steps execute on Celery workers (``KOMEET_SYNC_EXECUTOR=celery``), two workers
standing for two machines: each its own process group and working directory, sharing
PostgreSQL (komeet-sync's database and the Dagster instance of deploy/celery.yaml), the
result store and the Redis broker. The runs are started here, as the run worker the daemon
would start; every step of them runs on a worker.

One deployment serves the module: starting the workers is most of its cost."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEventType
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.store.database import open_database
from komeet_sync.store.ledger import Status
from komeet_sync.store.tables import LedgerRow
from pipelines.executors import celery_app
from pipelines.partitions import domains
from pipelines.pools import prepare_pools
from tests.support import ROOT
from tests.support.celery_workers import (
    CeleryWorker,
    answering,
    execute,
    run_workers,
    start_workers,
    stop_workers,
)
from tests.support.komeet_server import KomeetTenant
from tests.support.scim_server import serve, stop
from tests.support.world import NAMES, push_directory

DOMAINS = [f"d{number:02d}.example" for number in range(8)]  # 80 steps, run 2 or 4 at once
KILLED = "umbrella.example"
PEOPLE = [f"person{number:02d}.umbrella" for number in range(60)]  # 6 Bulk requests of 10
# Short, so that the lost step fails within seconds of its worker's death.
WATCH = {"execution": {"config": {"ping_every_seconds": 0.5, "lost_after_seconds": 3.0}}}


def database(server_url: str, prefix: str, driver: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(drivername=driver, database=name)
    return url.render_as_string(hide_password=False)


@dataclass
class Deployment:
    home: Path  # the DAGSTER_HOME of the run processes
    instance: dg.DagsterInstance
    komeet: KomeetTenant
    proxy: HttpProxy  # in front of Komeet
    engine: Engine  # komeet-sync's database
    workers: list[CeleryWorker]
    runs: ProcessPoolExecutor  # the processes that orchestrate runs

    def launch(self, domain: str, run_config=None) -> Future:
        """A run of the domain's partition (its id and whether it succeeded, in time),
        orchestrated by a run process, its steps on the workers."""
        return self.runs.submit(execute, str(self.home), domain, run_config)

    def steps_by_worker(self, run_id: str) -> dict[str, str]:
        """Each step of a run and the worker that executed it, from the run's events."""
        found = {}
        for record in self.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            event = record.dagster_event
            worker = event.engine_event_data.metadata.get("Celery worker")
            if worker is not None:
                found[event.step_key] = worker.value
        return found

    def ledger(self, domain: str) -> Counter:
        """The statuses of the domain's actions in the ledger."""
        mine = select(LedgerRow.status).where(LedgerRow.user_name.endswith(f"@{domain}"))
        with self.engine.connect() as connection:
            return Counter(connection.scalars(mine))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server_url, redis_url, small_bulk_komeet_server):
    root = tmp_path_factory.mktemp("celery")
    komeet_url = database(postgres_server_url, "komeet", "postgresql+psycopg")
    dagster_url = database(postgres_server_url, "dagster", "postgresql+psycopg2")
    komeet = small_bulk_komeet_server.tenant()
    shared = {
        "KOMEET_SYNC_DATABASE_URL": komeet_url,
        "KOMEET_SYNC_RESULTS": str(root / "results"),
        "KOMEET_SYNC_EXECUTOR": "celery",
        "KOMEET_SYNC_CELERY_BROKER": redis_url,
        "KOMEET_SCIM_TOKEN": komeet.token,
        "KOMEET_SYNC_KOMEET_BACKOFF": "0.01",
        "DAGSTER_PG_URL": dagster_url,
    }
    with pytest.MonkeyPatch.context() as env, HttpProxy(komeet.url) as proxy:
        shared["KOMEET_SCIM_URL"] = proxy.url
        for key, value in shared.items():
            env.setenv(key, value)
        env.setenv("KOMEET_SYNC_HOME", str(root / "home"))
        instance_yaml = ROOT / "deploy" / "celery.yaml"
        workers = start_workers(["worker1", "worker2"], root, shared, instance_yaml)
        runs = run_workers(len(DOMAINS))
        engine = open_database(komeet_url)
        server, scim = serve(engine)
        try:
            # The domains are pushed while the workers start.
            for domain in DOMAINS:
                push_directory(scim, domain)
            push_directory(scim, KILLED, PEOPLE)
            home = root / "dagster_home"
            home.mkdir()
            (home / "dagster.yaml").write_text(instance_yaml.read_text())
            with dg.DagsterInstance.from_config(str(home)) as instance:
                prepare_pools(instance)  # as the domains sensor does, before the partitions
                instance.add_dynamic_partitions(domains.name, [*DOMAINS, KILLED])
                answering(celery_app(), workers)
                yield Deployment(home, instance, komeet, proxy, engine, workers, runs)
        finally:
            runs.shutdown(cancel_futures=True)
            stop_workers(workers)
            stop(server)
            scim.endpoint.close()
            engine.dispose()


def test_a_backfill_of_8_domains_runs_its_steps_on_both_workers(deployment):
    launched = [deployment.launch(domain) for domain in DOMAINS]
    runs = [run.result(timeout=600) for run in launched]

    assert [succeeded for _, succeeded in runs] == [True] * len(DOMAINS)
    accounts = deployment.komeet.by_user_name()
    for domain in DOMAINS:
        mine = {name: user for name, user in accounts.items() if name.endswith(f"@{domain}")}
        assert sorted(mine) == sorted(f"{name}@{domain}" for name in NAMES)
        assert all(user["active"] and user["externalId"] for user in mine.values())
    steps = [deployment.steps_by_worker(run_id) for run_id, _ in runs]
    assert all(
        set(ran)
        == {
            "snapshot",
            "komeet_accounts",
            "reconciliation",
            "results",
            "results_every_domain_writes",
        }
        for ran in steps
    ), steps
    by_worker = Counter(worker for ran in steps for worker in ran.values())
    assert set(by_worker) == {worker.name for worker in deployment.workers}, by_worker


def test_a_worker_killed_while_it_applies_fails_the_run_and_the_next_run_resumes(deployment):
    deployment.proxy.latency = 1.0  # each Bulk request of 10 creates takes a second
    killed_run = deployment.launch(KILLED, WATCH)
    deadline = time.monotonic() + 120
    while deployment.ledger(KILLED)[Status.APPLIED.value] == 0:
        assert not killed_run.done(), killed_run.result()
        assert time.monotonic() < deadline, "the apply did not start"
        time.sleep(0.05)
    [applying] = [worker for worker in deployment.workers if worker.name in _applying(deployment)]
    applying.kill()
    killed_at = time.monotonic()
    run_id, succeeded = killed_run.result(timeout=60)
    deployment.proxy.latency = 0.0

    assert not succeeded
    assert time.monotonic() - killed_at < 30
    [failure] = [
        record.dagster_event
        for record in deployment.instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
    ]
    assert failure.step_key == "results"
    message = failure.step_failure_data.error.message
    assert f"Step 'results' was lost: worker {applying.name} stopped answering" in message
    assert 0 < deployment.ledger(KILLED)[Status.APPLIED.value] < len(PEOPLE)

    _, resumed = deployment.launch(KILLED).result(timeout=120)

    assert resumed
    users = [u for u in deployment.komeet.users() if u["userName"].endswith(f"@{KILLED}")]
    assert sorted(user["userName"] for user in users) == sorted(f"{p}@{KILLED}" for p in PEOPLE)


def test_the_celery_instance_is_the_production_one_without_captured_output():
    celery = yaml.safe_load((ROOT / "deploy" / "celery.yaml").read_text())
    production = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())

    assert celery.pop("compute_logs")["class"] == "NoOpComputeLogManager"
    assert celery == production


def _applying(deployment) -> set[str]:
    """The worker that executes the killed domain's apply, once it has started it."""
    [run] = deployment.instance.get_runs(dg.RunsFilter(tags={"dagster/partition": KILLED}))
    return {deployment.steps_by_worker(run.run_id).get("results")}
