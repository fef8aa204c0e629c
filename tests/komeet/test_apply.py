"""Applying plans to Komeet over real HTTP: our client against the third-party scim2-server
on loopback (the Komeet stand-in), with the tests' own proxy injecting faults."""

from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pandas as pd
import pytest
from sqlalchemy import select

from komeet_sync.emulators.http_proxy import FaultKind, Faults, HttpProxy
from komeet_sync.komeet.apply import Mode, NotApplied, apply_plan
from komeet_sync.komeet.client import KomeetError, KomeetRefused, retry_after
from komeet_sync.store.database import open_database
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.ledger import Ledger, Status
from komeet_sync.store.plans import PlanError, PlanStore
from komeet_sync.store.tables import LedgerRow
from tests.support import ROOT
from tests.support.provisioning import DOMAIN, account_for, configure, directory, person, synced

WRITES = {"POST", "PATCH", "PUT", "DELETE"}


@pytest.fixture
def engine(database_url):
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url, tmp_path):
    engine = open_database(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))


def seeded(komeet):
    """A directory of 12 people and a Komeet holding one account in each situation."""
    people = [person(i) for i in range(12)]
    renamed = person(20, "ada.new@acme.com", aliases=["ada.old@acme.com"])
    people.append(renamed)
    komeet.add(**account_for(people[0], name={"givenName": "Old", "familyName": "Name"}))
    komeet.add(**account_for(people[1], active=False))
    komeet.add(**account_for(renamed, userName="ada.old@acme.com"))
    komeet.add(**account_for(person(99)))  # a leaver: no longer in the directory
    komeet.add("unmanaged@acme.com", name={"givenName": "Shared", "familyName": "Mailbox"})
    komeet.add("someone@globex.com", externalId="x1")  # another domain's account
    return people


def test_every_action_kind_brings_komeet_to_the_desired_state(komeet, engine):
    config = configure(engine, max_deactivation_share=1.0)
    people = seeded(komeet)
    client = komeet.client()

    run = synced(config, directory(people), client, engine)

    assert run.applied.stopped is None and run.applied.result is not None
    assert run.planned.reconciliation.plan.counts() == {
        "create": 10,
        "deactivate": 1,
        "reactivate": 1,
        "update": 2,
    }
    assert run.applied.result.counts == {"applied": 14} and run.applied.result.finished
    accounts = komeet.by_user_name()
    for user in people:
        account = accounts[user["primaryEmail"]]
        assert account["externalId"] == user["id"]
        assert account["active"] is True
        assert account["name"] == {**user["name"]}
    assert accounts["user00099@acme.com"]["active"] is False  # deactivated, not deleted
    assert "ada.old@acme.com" not in accounts  # renamed in place, no second account
    assert "externalId" not in accounts["unmanaged@acme.com"]  # never touched
    assert accounts["unmanaged@acme.com"]["meta"]["version"] == 'W/"5"'
    assert accounts["someone@globex.com"]["externalId"] == "x1"
    assert len(accounts) == len(people) + 3

    again = synced(config, directory(people), client, engine)  # nothing left to do

    assert again.planned.reconciliation.plan.counts() == {}
    assert again.applied.result is not None and again.applied.result.requests == 0


def test_a_second_apply_of_a_plan_sends_nothing(komeet, sqlite_engine):
    config = configure(sqlite_engine)
    people = [person(i) for i in range(5)]
    proxy = HttpProxy(komeet.url).start()
    try:
        client = komeet.client(proxy.url)
        run = synced(config, directory(people), client, sqlite_engine)
        writes = sum(r.method in WRITES for r in proxy.stats().requests)

        second = apply_plan(sqlite_engine, run.planned.plan_id, client)

        assert second.application_id is None and second.counts == {"applied": 5}
        assert sum(r.method in WRITES for r in proxy.stats().requests) == writes
    finally:
        proxy.stop()


def test_a_create_whose_answer_was_lost_is_found_not_sent_again(komeet, sqlite_engine):
    """The crash between the POST and the ledger write: the row says ``sending``, the
    account exists; the resume finds it by userName and records it."""
    config = configure(sqlite_engine)
    people = [person(i) for i in range(3)]
    config = DomainStore(sqlite_engine).set_enabled(DOMAIN, False)
    run = synced(config, directory(people), komeet.client(), sqlite_engine)
    assert run.applied.stopped is not None and run.applied.stopped.kind == "disabled"
    DomainStore(sqlite_engine).set_enabled(DOMAIN, True)
    ledger = Ledger(sqlite_engine)
    application = ledger.open_application(run.planned.plan_id, "test", again=False)
    assert application is not None
    first = ledger.to_send(application)[0]
    ledger.mark_sending([first.key])
    komeet.add(**account_for(people[0]))  # the POST that reached Komeet

    result = apply_plan(sqlite_engine, run.planned.plan_id, komeet.client())

    assert result.resumed and result.counts == {"applied": 3}
    entries = ledger.entries(run.planned.plan_id)
    assert "an earlier attempt created it" in entries.loc[0, "outcome"]
    assert sorted(komeet.by_user_name()) == [p["primaryEmail"] for p in people]


def test_an_account_holding_the_user_name_is_linked_not_duplicated(komeet, sqlite_engine):
    config = configure(sqlite_engine)
    people = [person(1), person(2)]
    DomainStore(sqlite_engine).set_enabled(DOMAIN, False)
    run = synced(config, directory(people), komeet.client(), sqlite_engine)  # plans 2 creates
    DomainStore(sqlite_engine).set_enabled(DOMAIN, True)
    # Meanwhile someone made both accounts by hand: one bare, one for another person.
    bare = komeet.add(people[0]["primaryEmail"])
    komeet.add(people[1]["primaryEmail"], externalId="somebody-else")

    result = apply_plan(sqlite_engine, run.planned.plan_id, komeet.client())

    accounts = komeet.by_user_name()
    assert len(accounts) == 2
    linked = accounts[people[0]["primaryEmail"]]
    assert linked["id"] == bare["id"] and linked["externalId"] == "g1"
    assert accounts[people[1]["primaryEmail"]]["externalId"] == "somebody-else"
    assert result.counts == {"applied": 1, "failed": 1}
    failure = result.failures.iloc[0]
    assert failure["user_name"] == people[1]["primaryEmail"]
    assert "linked to another person (externalId somebody-else)" in failure["outcome"]


def test_a_held_plan_sends_nothing_until_approved(komeet, sqlite_engine):
    config = configure(sqlite_engine, max_deactivations=1)
    people = [person(i) for i in range(10)]
    for user in people:
        komeet.add(**account_for(user))
    proxy = HttpProxy(komeet.url).start()
    try:
        client = komeet.client(proxy.url)
        run = synced(config, directory(people[:7]), client, sqlite_engine)  # 3 leavers

        assert run.applied.stopped is not None and run.applied.stopped.kind == "held"
        assert not any(r.method in WRITES for r in proxy.stats().requests)
        with pytest.raises(NotApplied, match="HELD and not approved"):
            apply_plan(sqlite_engine, run.planned.plan_id, client)
        assert all(account["active"] for account in komeet.users())

        PlanStore(sqlite_engine).approve(run.planned.plan_id, "Jane Admin")
        result = apply_plan(sqlite_engine, run.planned.plan_id, client)

        assert result.counts == {"applied": 3}
        inactive = sorted(a["userName"] for a in komeet.users() if not a["active"])
        assert inactive == [p["primaryEmail"] for p in people[7:]]
        assert not any(r.method == "DELETE" for r in proxy.stats().requests)
    finally:
        proxy.stop()


def test_an_approval_does_not_carry_over_to_another_plan(komeet, sqlite_engine):
    config = configure(sqlite_engine, max_deactivations=1)
    people = [person(i) for i in range(10)]
    for user in people:
        komeet.add(**account_for(user))
    first = synced(config, directory(people[:7]), komeet.client(), sqlite_engine)
    PlanStore(sqlite_engine).approve(first.planned.plan_id, "Jane Admin")

    # One more leaver: another plan, which the approval of the first does not cover.
    second = synced(config, directory(people[:6]), komeet.client(), sqlite_engine)

    assert second.planned.plan_id != first.planned.plan_id
    assert second.applied.stopped is not None and second.applied.stopped.kind == "held"
    assert all(account["active"] for account in komeet.users())


def test_a_plan_stopped_by_a_missing_group_cannot_be_approved(komeet, sqlite_engine):
    config = DomainStore(sqlite_engine).add(
        configure.__globals__["DomainConfig"].create(
            DOMAIN, "google", admin_email="admin@acme.com", groups=["all@acme.com", "gone@acme.com"]
        )
    )
    run = synced(config, directory([person(1)]), komeet.client(), sqlite_engine)

    assert run.applied.stopped is not None and run.applied.stopped.kind == "stopped"
    with pytest.raises(PlanError, match="cannot be approved"):
        PlanStore(sqlite_engine).approve(run.planned.plan_id, "Jane Admin")
    assert komeet.users() == []


def test_a_disabled_domain_sends_nothing_but_still_reports(komeet, sqlite_engine):
    config = configure(sqlite_engine, enabled=False)

    run = synced(config, directory([person(1), person(2)]), komeet.client(), sqlite_engine)

    assert run.applied.stopped is not None and run.applied.stopped.kind == "disabled"
    assert komeet.users() == []
    joiners = pd.read_csv(run.folder.path / "joiners.csv")
    assert list(joiners["email"]) == ["user00001@acme.com", "user00002@acme.com"]


@pytest.mark.parametrize("mode", list(Mode))
def test_every_mode_ends_in_the_same_state(komeet, sqlite_engine, mode):
    config = configure(sqlite_engine, max_deactivation_share=1.0)
    people = seeded(komeet)
    proxy = HttpProxy(komeet.url).start()
    try:
        run = synced(config, directory(people), komeet.client(proxy.url), sqlite_engine, mode=mode)
        paths = {(r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.stats().requests}
    finally:
        proxy.stop()

    assert run.applied.result is not None and run.applied.result.counts == {"applied": 14}
    assert run.applied.result.mode is mode
    assert (("POST", "Bulk") in paths) == (mode is Mode.BULK)
    accounts = komeet.by_user_name()
    assert {a["userName"] for a in accounts.values() if a.get("externalId")} >= {
        p["primaryEmail"] for p in people
    }
    assert len(accounts) == len(people) + 3


def test_a_komeet_without_filters_or_bulk_is_listed_and_matched_locally(
    plain_komeet_server, sqlite_engine
):
    komeet = plain_komeet_server.tenant()
    config = configure(sqlite_engine, max_deactivation_share=1.0)
    people = seeded(komeet)
    client = komeet.client()

    run = synced(config, directory(people), client, sqlite_engine)

    assert not client.capabilities().filter and not client.capabilities().bulk
    assert run.applied.result is not None and run.applied.result.mode is Mode.CONCURRENT
    assert run.applied.result.counts == {"applied": 14}
    assert len(komeet.users()) == len(people) + 3
    assert (
        synced(
            config, directory(people), client, sqlite_engine
        ).planned.reconciliation.plan.counts()
        == {}
    )


@pytest.mark.parametrize(
    ("server", "mode"),
    [("komeet_server", Mode.CONCURRENT), ("small_bulk_komeet_server", Mode.BULK)],
)
def test_faults_on_a_fifth_of_the_requests_leave_every_action_settled(
    request, sqlite_engine, server, mode
):
    """429 with Retry-After, 503, slow answers past the client's timeout and dropped
    connections, at a 20% rate: every action ends applied or recorded as failed, none is
    left pending or silently dropped, and no account is created twice. (Bulk requests of
    10 operations, so that faults fall on a dozen of them.)"""
    komeet = request.getfixturevalue(server).tenant()
    config = configure(sqlite_engine, max_deactivation_share=1.0)
    people = [person(i) for i in range(120)]
    leavers = [person(500 + i) for i in range(10)]
    for user in people[:20]:
        komeet.add(**account_for(user, name={"givenName": "Old", "familyName": "Name"}))
    for user in leavers:
        komeet.add(**account_for(user))
    faults = Faults(rate=0.2, retry_after=0, slow_seconds=0.6, seed=11)
    proxy = HttpProxy(komeet.url, faults=faults).start()
    try:
        client = komeet.client(proxy.url, timeout=0.3)
        run = synced(config, directory(people), client, sqlite_engine, mode=mode)
        stats = proxy.stats()
    finally:
        proxy.stop()

    assert run.applied.result is not None
    assert sum(run.applied.result.counts.values()) == 130
    assert set(run.applied.result.counts) <= {"applied", "failed"}
    assert all(stats.faults[kind] > 0 for kind in faults.kinds), stats.faults
    assert not any(r.method == "DELETE" for r in stats.requests)
    with sqlite_engine.connect() as connection:
        statuses = set(connection.scalars(select(LedgerRow.status)))
    assert statuses <= {Status.APPLIED.value, Status.FAILED.value}
    # Whatever failed for good is resumed to the end once the faults stop.
    result = apply_plan(sqlite_engine, run.planned.plan_id, komeet.client())
    assert result.counts == {"applied": 130}, result.failures
    accounts = komeet.users()
    names = [a["userName"].lower() for a in accounts]
    assert len(names) == len(set(names)) == 130
    active = {a["userName"] for a in accounts if a["active"]}
    assert active == {p["primaryEmail"] for p in people}
    assert all(a["name"]["givenName"] != "Old" for a in accounts if a["active"])


def test_a_refused_token_stops_with_a_message_and_leaves_the_rest_pending(komeet, sqlite_engine):
    config = configure(sqlite_engine)
    config = DomainStore(sqlite_engine).set_enabled(DOMAIN, False)
    run = synced(config, directory([person(1), person(2)]), komeet.client(), sqlite_engine)
    DomainStore(sqlite_engine).set_enabled(DOMAIN, True)

    with pytest.raises(KomeetRefused, match="KOMEET_SCIM_TOKEN"):
        apply_plan(sqlite_engine, run.planned.plan_id, komeet.client(token="wrong"))

    assert komeet.users() == []
    result = apply_plan(sqlite_engine, run.planned.plan_id, komeet.client())
    assert result.counts == {"applied": 2}


def test_the_client_refuses_to_send_delete(komeet):
    with pytest.raises(ValueError, match="never sent to Komeet"):
        komeet.client().send("DELETE", "/Users/x")


PACKAGE = ROOT / "komeet_sync"
# Every module on the way to Komeet: its client, the apply, the ledger and plans, and the
# sync's steps and commands that reach Komeet (those of runs/ and cli/ that import its client
# or apply; retention's deletes local rows and files, and imports neither).
OUTBOUND = sorted(
    str(path.relative_to(PACKAGE))
    for pattern in ("komeet/*.py", "runs/*.py", "cli/*.py", "store/ledger.py", "store/plans.py")
    for path in PACKAGE.glob(pattern)
    if path.parent.name not in ("runs", "cli")
    or re.search(
        r"komeet_sync\.komeet\b|komeet_client|runs\.(sync|incremental|worker)\b", path.read_text()
    )
)


@pytest.mark.parametrize("module", OUTBOUND)
def test_no_code_path_towards_komeet_names_delete(module):
    """Grep-level: the modules that talk to Komeet hold the word DELETE nowhere but in
    the docstrings and the refusal, and call no ``.delete``."""
    path = PACKAGE / module
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    offending = [
        node.lineno
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.search(r"\bDELETE\b", node.value, re.IGNORECASE | re.ASCII)
            and id(node) not in docstrings
            and "never sent to Komeet" not in node.value
        )
        or (isinstance(node, ast.Attribute) and node.attr.lower() == "delete")
    ]
    assert offending == [], f"{module} names DELETE at lines {offending}"


def test_429_is_retried_after_its_retry_after(komeet, sqlite_engine):
    config = configure(sqlite_engine)
    faults = Faults(rate=0.3, kinds=("429",), retry_after=2, seed=3)
    proxy = HttpProxy(komeet.url, faults=faults).start()
    waits: list[float] = []
    try:
        client = komeet.client(proxy.url, sleep=waits.append)  # waits recorded, not slept
        run = synced(config, directory([person(i) for i in range(20)]), client, sqlite_engine)
        refused = proxy.stats().faults[FaultKind.TOO_MANY_REQUESTS]
    finally:
        proxy.stop()

    assert run.applied.result is not None and run.applied.result.counts == {"applied": 20}
    assert refused > 0 and len(waits) == refused
    assert min(waits) >= 2.0
    assert len(komeet.users()) == 20


def test_retry_after_is_read_as_seconds_or_an_http_date():
    later = datetime.now(UTC) + timedelta(seconds=90)

    assert retry_after("7") == 7.0
    assert 80 < retry_after(format_datetime(later, usegmt=True)) <= 90
    assert retry_after("soon") is None and retry_after(None) is None


def test_accounts_are_listed_page_by_page_filtered_by_domain(
    komeet_server, plain_komeet_server, tmp_path
):
    for server in (komeet_server, plain_komeet_server):
        komeet = server.tenant()
        for number in range(600):
            komeet.add(f"user{number:05d}@acme.com")
        komeet.add("someone@globex.com")
        client = komeet.client(page_size=250)

        accounts = client.list_users(["acme.com"])

        names = sorted(account["userName"] for account in accounts)
        if client.capabilities().filter:  # Komeet filtered: only acme.com's accounts
            assert names == [f"user{number:05d}@acme.com" for number in range(600)]
            assert client.requests_sent == 1 + 3  # discovery, then pages of 250, 250 and 100
        else:  # every account, 200 a page (filter.maxResults); the engine keeps acme.com's
            assert len(names) == 601 and client.requests_sent == 1 + 4


def test_a_listing_that_stops_short_is_an_error_not_a_partial_read(tmp_path):
    from tests.support.komeet_server import PLAIN_CONFIG, start

    config = PLAIN_CONFIG | {"filter": {"supported": False, "maxResults": 0}}
    server = start(config=config, tmp=tmp_path)
    try:
        komeet = server.tenant()
        komeet.add("ada@acme.com")
        with pytest.raises(KomeetError, match="empty page at startIndex 1 of 1 accounts"):
            komeet.client().list_users(["acme.com"])
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("server", "mode"),
    [("plain_komeet_server", Mode.SEQUENTIAL), ("komeet_server", Mode.BULK)],
)
def test_a_409_on_create_links_the_account_made_meanwhile(request, sqlite_engine, server, mode):
    """An account for a later joiner appears while the plan is being applied (made by
    hand, between our search and our POST): Komeet answers 409, and the sync links it."""
    komeet = request.getfixturevalue(server).tenant()
    people = [person(i) for i in range(6)]
    config = configure(sqlite_engine, enabled=False)
    run = synced(config, directory(people), komeet.client(), sqlite_engine)  # 6 creates
    DomainStore(sqlite_engine).set_enabled(DOMAIN, True)
    komeet.add(people[0]["primaryEmail"])  # made by hand before the apply: found, linked
    made: list[dict] = []

    def meanwhile(done: int, total: int) -> None:
        if not made:  # after the first action: an account for the last joiner, by hand
            made.append(komeet.add(people[5]["primaryEmail"]))

    result = apply_plan(
        sqlite_engine, run.planned.plan_id, komeet.client(), mode=mode, progress=meanwhile
    )

    assert result.counts == {"applied": 6}, result.failures
    accounts = komeet.by_user_name()
    assert len(accounts) == 6
    linked = accounts[people[5]["primaryEmail"]]
    assert linked["id"] == made[0]["id"] and linked["externalId"] == people[5]["id"]
    outcomes = Ledger(sqlite_engine).entries(run.planned.plan_id)["outcome"]
    assert outcomes.str.startswith("linked the existing account").sum() == 2


def sync_through(proxy, komeet, engine, people, **options):
    """A sync of ``people`` through ``proxy``; returns it and the requests of its apply
    (those the proxy received once the plan was made), as (method, last path segment)."""
    config = DomainStore(engine).get(DOMAIN)
    before: list[int] = []

    def planned(run) -> None:
        before.append(len(proxy.stats().requests))
        if "meanwhile" in options:
            options["meanwhile"](run)

    extra = {key: value for key, value in options.items() if key != "meanwhile"}
    run = synced(
        config, directory(people), komeet.client(proxy.url), engine, before_apply=planned, **extra
    )
    sent = [(r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.stats().requests[before[0] :]]
    return run, sent


@pytest.mark.parametrize(
    ("server", "mode", "expected"),
    [
        ("komeet_server", Mode.SEQUENTIAL, {("POST", "Users"): 25}),
        ("komeet_server", Mode.CONCURRENT, {("POST", "Users"): 25}),
        ("small_bulk_komeet_server", Mode.BULK, {("POST", "Bulk"): 3}),
    ],
)
def test_a_sync_sends_each_create_once_without_a_search(
    request, sqlite_engine, server, mode, expected
):
    """A plan made from the sync's own read of Komeet: a create's first attempt is its POST
    alone (or its operation in a Bulk request of 10), without a search before it."""
    komeet = request.getfixturevalue(server).tenant()
    configure(sqlite_engine)
    people = [person(i) for i in range(25)]
    with HttpProxy(komeet.url) as proxy:
        run, sent = sync_through(proxy, komeet, sqlite_engine, people, mode=mode)

    assert Counter(sent) == expected
    assert run.applied is not None and run.applied.result is not None
    assert run.applied.result.requests == sum(expected.values())
    assert run.applied.result.counts == {"applied": 25}
    entries = Ledger(sqlite_engine).entries(run.planned.plan_id)
    assert set(entries["attempts"]) == {1}
    assert sorted(komeet.by_user_name()) == [p["primaryEmail"] for p in people]


def test_apply_plan_id_searches_before_each_create(komeet, sqlite_engine):
    """``komeet-sync apply PLAN_ID`` applies a plan made earlier, from a read that may be
    stale: each create is searched first."""
    config = configure(sqlite_engine, enabled=False)
    people = [person(i) for i in range(5)]
    run = synced(config, directory(people), komeet.client(), sqlite_engine)
    DomainStore(sqlite_engine).set_enabled(DOMAIN, True)
    with HttpProxy(komeet.url) as proxy:
        result = apply_plan(sqlite_engine, run.planned.plan_id, komeet.client(proxy.url))
        sent = Counter((r.method, r.path.rsplit("/", 1)[-1]) for r in proxy.stats().requests)

    assert result.counts == {"applied": 5}
    assert sent == {("GET", "ServiceProviderConfig"): 1, ("GET", "Users"): 5, ("POST", "Bulk"): 1}


def test_a_create_whose_answer_is_lost_is_searched_not_sent_again(komeet, sqlite_engine):
    """Connections dropped after Komeet applied the request (the answer lost): the create is
    in doubt, so it is searched before it would be sent again, found and recorded. Every
    create is POSTed exactly once."""
    configure(sqlite_engine)
    people = [person(i) for i in range(20)]
    faults = Faults(rate=0.3, kinds=("drop",), seed=5)
    with HttpProxy(komeet.url, faults=faults) as proxy:
        run, sent = sync_through(proxy, komeet, sqlite_engine, people, mode=Mode.SEQUENTIAL)

    assert run.applied is not None and run.applied.result is not None
    assert run.applied.result.counts == {"applied": 20}
    outcomes = Ledger(sqlite_engine).entries(run.planned.plan_id)["outcome"]
    found = int(outcomes.str.contains("an earlier attempt created it").sum())
    assert found >= 2  # POSTs whose answer was lost
    assert Counter(sent)[("POST", "Users")] == 20  # none sent twice
    assert Counter(sent)[("GET", "Users")] >= found  # each searched (a search may drop too)
    assert sorted(komeet.by_user_name()) == [p["primaryEmail"] for p in people]


def test_a_bulk_request_whose_answer_is_lost_is_settled_by_searches(
    small_bulk_komeet_server, sqlite_engine
):
    """A Bulk request whose connection dropped after Komeet applied it: each of its creates
    is in doubt, searched, found and recorded; none is sent again."""
    komeet = small_bulk_komeet_server.tenant()
    configure(sqlite_engine)
    people = [person(i) for i in range(25)]
    faults = Faults(rate=0.5, kinds=("drop",), seed=2)
    with HttpProxy(komeet.url, faults=faults) as proxy:
        run, sent = sync_through(proxy, komeet, sqlite_engine, people, mode=Mode.BULK)

    assert run.applied is not None and run.applied.result is not None
    assert run.applied.result.counts == {"applied": 25}
    outcomes = Ledger(sqlite_engine).entries(run.planned.plan_id)["outcome"]
    found = int(outcomes.str.contains("an earlier attempt created it").sum())
    assert found >= 5 and found + int(outcomes.str.endswith("(bulk)").sum()) == 25
    assert Counter(sent)[("POST", "Bulk")] == 3 and Counter(sent)[("POST", "Users")] == 0
    assert sorted(komeet.by_user_name()) == [p["primaryEmail"] for p in people]


def test_a_sync_resuming_an_action_left_sending_searches_it_first(komeet, sqlite_engine):
    """A sync that makes the plan of an application a killed process left behind: the row
    left ``sending`` is searched before its create is sent; the pending ones are not."""
    config = configure(sqlite_engine, enabled=False)
    people = [person(i) for i in range(4)]
    stored = synced(config, directory(people), komeet.client(), sqlite_engine)
    ledger = Ledger(sqlite_engine)
    application = ledger.open_application(stored.planned.plan_id, "test", again=False)
    assert application is not None
    ledger.mark_sending([ledger.to_send(application)[0].key])  # killed before the POST left
    DomainStore(sqlite_engine).set_enabled(DOMAIN, True)

    with HttpProxy(komeet.url) as proxy:
        run, sent = sync_through(proxy, komeet, sqlite_engine, people, mode=Mode.SEQUENTIAL)

    assert run.planned.plan_id == stored.planned.plan_id
    assert run.applied is not None and run.applied.result is not None
    assert run.applied.result.resumed and run.applied.result.counts == {"applied": 4}
    assert sent == [("GET", "Users")] + [("POST", "Users")] * 4
    assert list(ledger.entries(run.planned.plan_id)["attempts"]) == [2, 1, 1, 1]
    assert sorted(komeet.by_user_name()) == [p["primaryEmail"] for p in people]


@pytest.mark.parametrize(
    ("server", "mode", "expected"),
    [
        (
            "komeet_server",
            Mode.SEQUENTIAL,
            [("POST", "Users"), ("GET", "Users"), ("PATCH", "x"), ("POST", "Users")],
        ),
        ("komeet_server", Mode.BULK, [("POST", "Bulk"), ("GET", "Users"), ("PATCH", "x")]),
    ],
)
def test_a_409_on_a_first_create_searches_and_links(request, sqlite_engine, server, mode, expected):
    """An account made by hand between the sync's read and its apply: the create, sent
    without a search, gets 409; the sync then searches and links the account."""
    komeet = request.getfixturevalue(server).tenant()
    configure(sqlite_engine)
    people = [person(i) for i in range(2)]
    made: list[dict] = []

    def meanwhile(_run) -> None:
        made.append(komeet.add(people[0]["primaryEmail"]))

    with HttpProxy(komeet.url) as proxy:
        run, sent = sync_through(
            proxy, komeet, sqlite_engine, people, mode=mode, meanwhile=meanwhile
        )

    assert run.applied is not None and run.applied.result is not None
    assert run.applied.result.counts == {"applied": 2}, run.applied.result.failures
    assert [(method, "x" if method == "PATCH" else path) for method, path in sent] == expected
    accounts = komeet.by_user_name()
    assert len(accounts) == 2
    linked = accounts[people[0]["primaryEmail"]]
    assert linked["id"] == made[0]["id"] and linked["externalId"] == people[0]["id"]
    outcome = Ledger(sqlite_engine).entries(run.planned.plan_id).loc[0, "outcome"]
    assert outcome.startswith("linked the existing account")
