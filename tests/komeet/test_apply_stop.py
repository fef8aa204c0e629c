"""Stopping an application (ARCHITECTURE.md, "Applying a plan"): the operator's Ctrl-C sets
``client.stopping``; a Dagster run terminated raises in the thread that applies. Either way
the requests in flight get their outcome, nothing new is sent, and a resume finishes."""

from __future__ import annotations

import _thread
from collections import Counter

import pytest
from sqlalchemy import select

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.komeet.apply import Mode, apply_plan
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.ledger import Status
from komeet_sync.store.tables import LedgerRow
from tests.support.provisioning import DOMAIN, configure, directory, person, synced

PEOPLE = 60


@pytest.fixture
def planned(sqlite_url, tmp_path, monkeypatch, komeet):
    """A stored plan of ``PEOPLE`` creates, not applied yet, and Komeet behind latency."""
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    engine = open_database(sqlite_url)
    config = configure(engine, enabled=False)
    run = synced(config, directory([person(i) for i in range(PEOPLE)]), komeet.client(), engine)
    DomainStore(engine).set_enabled(DOMAIN, True)
    with HttpProxy(komeet.url, latency=0.02) as proxy:
        yield engine, run.planned.plan_id, proxy
    engine.dispose()


def ledger(engine) -> Counter:
    with engine.connect() as connection:
        return Counter(connection.scalars(select(LedgerRow.status)))


@pytest.mark.parametrize("mode", [Mode.SEQUENTIAL, Mode.CONCURRENT, Mode.BULK])
def test_stopping_sends_nothing_new_and_leaves_no_action_without_its_outcome(planned, komeet, mode):
    engine, plan_id, proxy = planned
    client = komeet.client()
    client.url = proxy.url
    at_stop: list[int] = []

    def stop_after_ten(done: int, total: int | None) -> None:
        if done >= 10 and not at_stop:
            at_stop.append(proxy.stats().received)
            client.stopping.set()

    result = apply_plan(engine, plan_id, client, mode=mode, concurrency=4, progress=stop_after_ten)

    statuses = ledger(engine)
    if mode is Mode.BULK:  # one Bulk request settles every create: nothing was left to stop
        assert statuses == {Status.APPLIED.value: PEOPLE}
        return
    assert result.interrupted and not result.finished
    assert statuses[Status.SENDING.value] == 0
    assert 10 <= statuses[Status.APPLIED.value] < PEOPLE
    assert result.remaining == statuses[Status.PENDING.value] == PEOPLE - result.applied
    # After the stop, only the requests then in flight: a search and its create per worker.
    assert proxy.stats().received - at_stop[0] <= 2 * 4

    client.stopping.clear()
    resumed = apply_plan(engine, plan_id, client)
    assert resumed.finished and resumed.resumed and not resumed.interrupted
    assert ledger(engine) == {Status.APPLIED.value: PEOPLE}
    assert len(komeet.users()) == PEOPLE


def test_an_interruption_of_the_applying_thread_drains_the_workers_then_is_raised(planned, komeet):
    """What a Dagster run terminated from the UI does: an exception raised in the thread
    waiting for the workers."""
    engine, plan_id, proxy = planned
    client = komeet.client()
    client.url = proxy.url

    interrupted: list[bool] = []

    def interrupt_after_ten(done: int, total: int | None) -> None:
        if done >= 10 and not interrupted:
            interrupted.append(True)
            _thread.interrupt_main()  # KeyboardInterrupt in the applying thread

    with pytest.raises(KeyboardInterrupt):
        apply_plan(
            engine,
            plan_id,
            client,
            mode=Mode.CONCURRENT,
            concurrency=4,
            progress=interrupt_after_ten,
        )

    statuses = ledger(engine)
    assert client.stopping.is_set()
    assert statuses[Status.SENDING.value] == 0
    assert 10 <= statuses[Status.APPLIED.value] < PEOPLE
    sent = proxy.stats().received
    assert len(komeet.users()) == statuses[Status.APPLIED.value]
    assert proxy.stats().received == sent
