"""A domain whose writes keep failing is quarantined (``runs.quarantine``), over real HTTP:
Komeet the scim2-server stand-in, whose accounts vanish between the plan and its application
(each update of them fails with 404), or whose token is refused (the sync fails). A
quarantined domain's syncs still plan and write their reports, and send nothing until it is
released."""

from __future__ import annotations

import pytest
import requests

from komeet_sync.emulators.http_proxy import HttpProxy
from komeet_sync.komeet.client import KomeetError
from komeet_sync.model.reports import PLAN
from komeet_sync.runs.quarantine import release
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.events import EventKind, recent_events
from tests.support.komeet_server import SCIM_JSON
from tests.support.provisioning import DOMAIN, account_for, configure, directory, person, synced


@pytest.fixture
def engine(database_url):
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))


def quarantines(engine):
    """The domain's quarantine events (its failed syncs are told too, as events of their own)."""
    return [e for e in recent_events(engine, DOMAIN) if e.kind is EventKind.QUARANTINED]


def renamed(komeet, count: int):
    """``count`` people whose Komeet accounts carry old names: a sync updates each."""
    people = [person(i) for i in range(count)]
    old = {"givenName": "Old", "familyName": "Name"}
    return people, [komeet.add(**account_for(user, name=old)) for user in people]


def deleting(komeet, accounts):
    """Told the sync before it applies: these accounts go away in Komeet, so that each
    update of them fails (404)."""

    def delete(_run) -> None:
        for account in accounts:
            url = f"{komeet.url}/Users/{account['id']}"
            requests.delete(url, headers=SCIM_JSON, timeout=5).raise_for_status()

    return delete


def test_failed_actions_quarantine_the_domain_until_it_is_released(komeet, engine):
    config = configure(engine)
    people, accounts = renamed(komeet, 12)

    run = synced(
        config,
        directory(people),
        komeet.client(),
        engine,
        before_apply=deleting(komeet, accounts[:10]),
    )

    assert run.applied.result.counts == {"applied": 2, "failed": 10}
    quarantine = DomainStore(engine).get(DOMAIN).quarantine
    assert quarantine is not None and run.applied.quarantine == quarantine
    assert quarantine.reason == f"10 of 12 actions failed (83%) applying {run.planned.plan_id}"
    [event] = recent_events(engine, DOMAIN)
    assert event.kind is EventKind.QUARANTINED
    assert event.subject == "acme.com quarantined: 10 of 12 actions failed (83%)"
    assert "10 update: the account is no longer in Komeet: Komeet answered 404" in event.body
    assert "Nothing is written to Komeet for acme.com until it is released" in event.body
    assert f"`komeet-sync plans show {run.planned.plan_id} --failed`" in event.body
    assert event.body.endswith("\n    komeet-sync domains release acme.com\n")

    with HttpProxy(komeet.url) as proxy:  # the next sync: reports, and nothing sent
        held = synced(config, directory(people), komeet.client(proxy.url), engine)
        methods = {request.method for request in proxy.stats().requests}

    assert methods == {"GET"}
    assert held.applied.result is None and held.applied.stopped.kind == "quarantined"
    assert str(held.applied.stopped) == (
        f"{held.planned.plan_id} not applied: acme.com is quarantined since "
        f"{quarantine.since:%Y-%m-%d %H:%M} UTC ({quarantine.reason}); "
        "`komeet-sync domains release acme.com` lifts it"
    )
    assert held.planned.reconciliation.plan.counts() == {"create": 10}
    assert held.folder.has(PLAN.name) and held.folder.has("joiners")
    assert held.summary()["quarantine"]["release"] == "komeet-sync domains release acme.com"
    assert len(recent_events(engine, DOMAIN)) == 1  # told once

    assert release(engine, DOMAIN) == quarantine
    released = recent_events(engine, DOMAIN)[0]
    assert released.kind is EventKind.RELEASED
    assert released.subject == "acme.com released from quarantine"
    again = synced(config, directory(people), komeet.client(), engine)
    assert again.applied.result.counts == {"applied": 10} and again.applied.quarantine is None
    assert sorted(komeet.by_user_name()) == sorted(user["primaryEmail"] for user in people)


def failing_sync(config, people, komeet, engine) -> None:
    """A sync that fails (Komeet refuses its token), and is recorded as failed."""
    with pytest.raises(KomeetError):
        synced(config, directory(people), komeet.client(token="wrong"), engine)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_nine_failed_actions_of_nine_do_not_quarantine_but_fail_the_run(komeet, engine):
    config = configure(engine)
    people, accounts = renamed(komeet, 9)

    run = synced(
        config, directory(people), komeet.client(), engine, before_apply=deleting(komeet, accounts)
    )

    assert run.applied.result.counts == {"failed": 9}
    assert run.applied.quarantine is None and DomainStore(engine).get(DOMAIN).quarantine is None
    assert recent_events(engine, DOMAIN) == []
    for _ in range(4):  # with it, five failed runs in a row
        failing_sync(config, people, komeet, engine)
    assert DomainStore(engine).get(DOMAIN).quarantine.reason.startswith("5 syncs failed in a row")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_five_failed_syncs_in_a_row_quarantine_the_domain(komeet, engine):
    config = configure(engine)
    people = [person(i) for i in range(3)]
    for _ in range(4):
        failing_sync(config, people, komeet, engine)
    synced(config, directory(people), komeet.client(), engine)  # a success ends the row
    for _ in range(4):
        failing_sync(config, people, komeet, engine)
    assert DomainStore(engine).get(DOMAIN).quarantine is None

    failing_sync(config, people, komeet, engine)

    quarantine = DomainStore(engine).get(DOMAIN).quarantine
    assert quarantine is not None
    assert quarantine.reason.startswith("5 syncs failed in a row, the last at ")
    assert "KOMEET_SCIM_TOKEN" in quarantine.reason
    [event] = quarantines(engine)
    assert event.subject == "acme.com quarantined: 5 syncs failed in a row"
    assert "Commonest causes:\n  - 5 run(s): " in event.body
    assert "`komeet-sync domains show acme.com` lists the failed syncs" in event.body

    failing_sync(config, people, komeet, engine)  # quarantined already: told once
    assert len(quarantines(engine)) == 1
    release(engine, DOMAIN)
    failing_sync(config, people, komeet, engine)  # a release starts the count afresh
    assert DomainStore(engine).get(DOMAIN).quarantine is None
