"""A Dagster run terminated from the UI while it applies a plan stops its writes as Ctrl-C
does at the console: the requests in flight get their ledger row, nothing more reaches
Komeet, and what remains is pending for the next run (whose resume the ledger's tests
prove)."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
from sqlalchemy import select

from komeet_sync.emulators.directory import Directory
from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.ledger import Status
from komeet_sync.store.tables import LedgerRow
from tests.support.dagster_server import ADD_PARTITION, ASSETS, BACKFILL, STATUS, TERMINATE, start
from tests.support.google_workspace import member
from tests.support.provisioning import person

ADMIN = "admin@acme.com"
GROUP = "all@acme.com"
PEOPLE = 150


def statuses(engine) -> Counter:
    with engine.connect() as connection:
        return Counter(connection.scalars(select(LedgerRow.status)))


@pytest.fixture
def acme(monkeypatch, tmp_path, workspace, plain_komeet_server):
    """acme.com on the Directory API emulator with ``PEOPLE`` joiners, an empty Komeet that
    has neither Bulk nor filters (so creates go one by one) behind a slow network."""
    database = f"sqlite:///{tmp_path / 'komeet_sync.db'}"
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KOMEET_SYNC_DATABASE_URL", database)
    people = [person(0, ADMIN), *(person(i) for i in range(1, PEOPLE))]
    directory = Directory.from_exports(
        people, {GROUP: [member(user) for user in people]}, admins=[ADMIN]
    )
    workspace(directory).env(monkeypatch)
    komeet = plain_komeet_server.tenant()
    komeet.env(monkeypatch)
    engine = open_database(database)
    DomainStore(engine).add(
        DomainConfig.create("acme.com", "google", admin_email=ADMIN, groups=[GROUP])
    )
    with HttpProxy(komeet.url, latency=0.15) as proxy:
        yield engine, komeet, proxy
    engine.dispose()


def launch(server, selector) -> str:
    selection = [{"path": [name]} for name in ASSETS]
    launched = server.graphql(
        BACKFILL, params={"assetSelection": selection, "partitionNames": ["acme.com"]}
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def run_of(server, backfill_id: str, deadline: float) -> dict:
    while True:
        runs = server.graphql(STATUS, id=backfill_id)["runsOrError"]["results"]
        if runs:
            return runs[0]
        assert time.monotonic() < deadline, server.log.read_text()[-2000:]
        time.sleep(0.5)


def test_a_run_terminated_from_the_ui_stops_its_writes(acme, tmp_path):
    engine, komeet, proxy = acme
    env = {key: value for key, value in os.environ.items() if key.startswith(("KOMEET", "GOOGLE"))}
    server = start(tmp_path / "dagster_home", env | {"KOMEET_SCIM_URL": proxy.url})
    try:
        selector = {"repositoryLocationName": server.location(), "repositoryName": "__repository__"}
        server.graphql(ADD_PARTITION, selector=selector, key="acme.com")
        backfill_id = launch(server, selector)
        deadline = time.monotonic() + 300
        while statuses(engine)[Status.APPLIED.value] < 10:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        run = run_of(server, backfill_id, deadline)

        terminated = server.graphql(TERMINATE, runId=run["runId"])["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated
        while run_of(server, backfill_id, deadline)["status"] not in ("CANCELED", "FAILURE"):
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.5)
        at_end = proxy.stats().received
        time.sleep(1.5)
        assert proxy.stats().received == at_end, "a request reached Komeet after the run ended"
        stopped = statuses(engine)
        assert stopped[Status.SENDING.value] == 0, stopped
        assert 10 <= stopped[Status.APPLIED.value] < PEOPLE, stopped
        assert stopped[Status.APPLIED.value] + stopped[Status.PENDING.value] == PEOPLE
        assert len(komeet.users()) == stopped[Status.APPLIED.value]

    finally:
        server.stop()
