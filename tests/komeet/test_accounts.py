"""Reading a domain's accounts from Komeet over real HTTP: our client against the third-party
scim2-server on loopback (the Komeet stand-in), behind the tests' proxy, which adds latency,
injects faults and counts the requests it holds at once."""

from __future__ import annotations

import _thread
import random
import re
import threading
import time
from itertools import pairwise

import pandas as pd
import pytest

from komeet_sync.backoff import Backoff
from komeet_sync.emulators.http_proxy import Faults, HttpProxy
from komeet_sync.komeet.accounts import read_accounts
from komeet_sync.komeet.client import KomeetError, ListPage
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.runs import sync
from komeet_sync.store.database import open_database
from komeet_sync.store.results import ResultStore
from tests.support.komeet_server import PLAIN_CONFIG, SCIM_JSON, KomeetTenant, start
from tests.support.provisioning import GROUP, configure, directory, person

DOMAIN = "acme.com"
CONFIG = DomainConfig.create(DOMAIN, "google", admin_email=f"admin@{DOMAIN}", groups=[GROUP])
PAGE = 10  # accounts a page, so that a few dozen accounts make several pages
ONE_TRY = Backoff(attempts=1, base=0.01, cap=0.01)


def seeded(komeet: KomeetTenant, count: int) -> list[dict]:
    """``count`` accounts of acme.com and one of globex.com, in the order Komeet lists them."""
    for number in range(count):
        komeet.add(f"user{number:05d}@{DOMAIN}", externalId=f"g{number}")
    komeet.add("someone@globex.com")
    return komeet.users()


def test_the_pages_after_the_first_are_read_at_once(komeet):
    seeded(komeet, 95)  # 10 pages of acme.com's accounts
    told: list[tuple[int, int | None]] = []

    with HttpProxy(komeet.url, latency=0.3) as proxy:
        client = komeet.client(proxy.url, page_size=PAGE)
        read = read_accounts(client, CONFIG, lambda *progress: told.append(progress), 4)
        stats = proxy.stats()

    assert len(read.accounts) == 95 and read.unreadable.empty
    assert set(read.accounts["user_name"]) == {f"user{n:05d}@{DOMAIN}" for n in range(95)}
    # Discovery, the first page, then the 9 others: 4 held by the proxy at once, never more.
    assert stats.received == client.requests_sent == 1 + 10
    assert stats.most_in_flight == 4
    # Progress advances page by page (10 accounts each, the last 5), its count only growing.
    assert len(told) == 10 and told[0] == (10, 95) and told[-1] == (95, 95)
    assert all(before[0] < after[0] for before, after in pairwise(told))


def test_the_time_awaiting_komeet_counts_requests_in_flight_together_once(komeet):
    seeded(komeet, 95)

    with HttpProxy(komeet.url, latency=0.3) as proxy:
        client = komeet.client(proxy.url, page_size=PAGE)
        started = time.monotonic()
        read_accounts(client, CONFIG, None, 4)
        elapsed = time.monotonic() - started

    # Discovery, the first page, then 9 pages 4 at a time: 5 waits of 0.3 s at least, while
    # the 11 requests waited 3.3 s between them.
    assert 5 * 0.3 <= client.seconds_waited <= elapsed < 11 * 0.3


def test_the_read_at_once_gives_the_frame_of_the_read_page_after_page(komeet):
    seeded(komeet, 95)

    with HttpProxy(komeet.url, latency=0.05) as proxy:
        one_by_one = read_accounts(komeet.client(proxy.url, page_size=PAGE), CONFIG, None, 1)
        assert proxy.stats().most_in_flight == 1
        at_once = read_accounts(komeet.client(proxy.url, page_size=PAGE), CONFIG, None, 8)
        assert proxy.stats().most_in_flight == 8

    pd.testing.assert_frame_equal(at_once.accounts, one_by_one.accounts)
    pd.testing.assert_frame_equal(at_once.unreadable, one_by_one.unreadable)


def test_a_dry_run_sync_reads_komeet_concurrency_pages_at_a_time(
    sqlite_url, komeet, tmp_path, monkeypatch
):
    monkeypatch.setenv("KOMEET_SYNC_HOME", str(tmp_path / "home"))
    engine = open_database(sqlite_url)
    seeded(komeet, 45)
    config = configure(engine)

    with HttpProxy(komeet.url, latency=0.3) as proxy:
        run = sync.sync(
            config,
            engine,
            ResultStore.from_settings(),
            read_directory=lambda _advance: directory([person(n) for n in range(50)])(),
            client=komeet.client(proxy.url, page_size=PAGE),
            dry_run=True,
            concurrency=3,
        )
        stats = proxy.stats()
    engine.dispose()

    assert run.planned.reconciliation.plan.counts()["create"] == 5
    assert stats.received == 1 + 5 and stats.most_in_flight == 3


def test_a_komeet_that_announces_neither_filtering_nor_paging_is_read_page_after_page(
    plain_komeet_server,
):
    komeet = plain_komeet_server.tenant()
    seeded(komeet, 45)

    with HttpProxy(komeet.url, latency=0.1) as proxy:
        client = komeet.client(proxy.url, page_size=PAGE)
        accounts = client.list_users([DOMAIN], concurrency=8)
        stats = proxy.stats()

    assert not client.capabilities().index_paging
    assert len(accounts) == 46  # not filtered: the engine keeps acme.com's
    assert stats.received == 1 + 5 and stats.most_in_flight == 1


def test_a_komeet_that_announces_index_paging_with_smaller_pages_is_read_at_once(tmp_path):
    """Pagination announced (RFC 9865 §4) without filtering; its pages (maxPageSize 7) are
    smaller than those asked for, and the first page says so."""
    config = PLAIN_CONFIG | {"pagination": {"cursor": False, "index": True, "maxPageSize": 7}}
    server = start(config=config, tmp=tmp_path)
    try:
        komeet = server.tenant()
        listed = seeded(komeet, 40)
        with HttpProxy(komeet.url, latency=0.2) as proxy:
            client = komeet.client(proxy.url, page_size=PAGE)
            accounts = client.list_users([DOMAIN], concurrency=3)
            stats = proxy.stats()
    finally:
        server.stop()

    assert client.capabilities().index_paging and not client.capabilities().filter
    assert [account["id"] for account in accounts] == [account["id"] for account in listed]
    assert stats.received == 1 + 6 and stats.most_in_flight == 3  # 41 accounts, 7 a page


def seed_faulting_a_later_page(rate: float, kinds: tuple[str, ...], before: int) -> int:
    """A seed of the proxy's faults that lets the first ``before`` requests through and
    faults one of the next three: its draws come in the order the requests arrive
    (``Faults``), and the pages after the first arrive in any order."""
    for seed in range(1000):
        dice = random.Random(seed)
        faulted = []
        for _ in range(before + 3):
            faulted.append(dice.random() < rate)
            if faulted[-1]:
                dice.choice(kinds)
        if not any(faulted[:before]) and any(faulted[before:]):
            return seed
    raise AssertionError("no seed found")


@pytest.mark.parametrize(
    ("kind", "answer", "advice"),
    [
        ("503", "Komeet answered 503", "nothing was planned"),
        (
            "slow",
            "no answer from Komeet (no answer within 0.5 s)",
            "nothing was planned. Raise KOMEET_SYNC_KOMEET_TIMEOUT (now 0.5 s), or read fewer "
            "pages at once (--concurrency)",
        ),
    ],
)
def test_a_page_that_fails_fails_the_whole_read(komeet, kind, answer, advice):
    seeded(komeet, 95)
    seed = seed_faulting_a_later_page(0.5, (kind,), before=2)  # discovery, the first page
    faults = Faults(rate=0.5, kinds=(kind,), slow_seconds=1.0, seed=seed)
    told: list[tuple[int, int | None]] = []

    with HttpProxy(komeet.url, faults=faults) as proxy:
        client = komeet.client(proxy.url, page_size=PAGE, backoff=ONE_TRY, timeout=0.5)
        with pytest.raises(KomeetError) as failed:
            read_accounts(client, CONFIG, lambda *progress: told.append(progress), 4)
        stats = proxy.stats()

    message = str(failed.value)
    assert re.fullmatch(
        rf"listing Komeet's accounts failed at startIndex \d+1: {re.escape(answer)}.*; "
        + re.escape(advice),
        message,
    ), message
    assert stats.faults[kind] >= 1
    assert told[0] == (10, 95) and all(done < 95 for done, _ in told)


def test_accounts_removed_during_the_read_fail_it_as_a_whole(komeet):
    """Accounts deleted once the first page is read: the last page comes back short, and
    every page says fewer accounts than the first did."""
    listed = [account for account in seeded(komeet, 45) if DOMAIN in account["userName"]]

    def delete_two(done: int, total: int | None) -> None:
        if done == PAGE:
            for account in listed[-2:]:
                deleted = komeet.session.delete(
                    f"{komeet.url}/Users/{account['id']}", headers=SCIM_JSON
                )
                assert deleted.status_code == 204

    client = komeet.client(page_size=PAGE)
    with pytest.raises(KomeetError) as failed:
        client.list_users([DOMAIN], delete_two, concurrency=4)

    assert re.fullmatch(
        r"Komeet's accounts changed during the read: 45 at the first page, 43 at startIndex "
        r"(11|21|31|41), so its pages shifted; nothing was planned\. Sync again",
        str(failed.value),
    )


@pytest.mark.parametrize(
    ("server", "concurrency"),
    [("komeet_server", 4), ("komeet_server", 1), ("plain_komeet_server", 4)],
)
def test_an_account_moved_across_a_page_edge_during_the_read_is_listed_twice(
    request, server, concurrency
):
    """An account created once the first page is read sorts into it (scim2-server lists by
    id), and one is deleted, so the total stays: the first page's last account moves to the
    second page and is read twice, at once or page after page alike (the engine then
    reports it among the duplicates and touches neither)."""
    komeet = request.getfixturevalue(server).tenant()
    for number in range(45):
        komeet.add(f"user{number:05d}@{DOMAIN}")
    listed = komeet.users()
    edge = listed[PAGE - 1]

    def move_the_edge(done: int, total: int | None) -> None:
        if done != PAGE:
            return
        for attempt in range(500):  # until a new account sorts before the edge
            created = komeet.add(f"late{attempt}@{DOMAIN}")
            if created["id"] < edge["id"]:
                break
            komeet.session.delete(f"{komeet.url}/Users/{created['id']}", headers=SCIM_JSON)
        komeet.session.delete(f"{komeet.url}/Users/{listed[-1]['id']}", headers=SCIM_JSON)

    client = komeet.client(page_size=PAGE)
    accounts = client.list_users([DOMAIN], move_the_edge, concurrency=concurrency)

    expected = [*listed[:PAGE], edge, *listed[PAGE:-1]]
    assert [account["id"] for account in accounts] == [account["id"] for account in expected]


def test_an_interrupted_read_stops_at_once_and_asks_for_no_other_page(komeet):
    seeded(komeet, 95)
    interrupted_at: list[float] = []

    def interrupt_soon(done: int, total: int | None) -> None:
        if done == PAGE:  # the first page: the others are about to be asked for

            def interrupt() -> None:
                interrupted_at.append(time.monotonic())
                _thread.interrupt_main()  # Ctrl-C, as the reading thread receives it

            threading.Timer(0.3, interrupt).start()

    with HttpProxy(komeet.url, latency=1.0) as proxy:
        client = komeet.client(proxy.url, page_size=PAGE)
        with pytest.raises(KeyboardInterrupt):
            client.list_users([DOMAIN], interrupt_soon, concurrency=2)
        stopped_in = time.monotonic() - interrupted_at[0]
        time.sleep(1.5)  # the two pages in flight get their answer
        stats = proxy.stats()

    assert stopped_in < 0.8, f"the read took {stopped_in:.1f} s to stop"
    assert client.stopping.is_set()
    assert stats.received == 1 + 1 + 2  # no page asked for after the interruption


@pytest.mark.parametrize(
    ("page", "start", "due", "complaint"),
    [
        (
            {"totalResults": 25, "Resources": [{}] * 4, "startIndex": 11},
            11,
            10,
            "stopped short: 4 of the 10 accounts due at startIndex 11 of 25 accounts",
        ),
        (
            {"totalResults": 25, "Resources": [], "startIndex": 11},
            11,
            10,
            "stopped short: an empty page at startIndex 11 of 25 accounts",
        ),
        (
            {"totalResults": 25, "Resources": [{}] * 10, "startIndex": 1},
            11,
            10,
            "at startIndex 11 with startIndex a number (1): it does not page by startIndex",
        ),
        (
            {"totalResults": 25, "Resources": [{}] * 10},
            11,
            10,
            "at startIndex 11 with startIndex null",
        ),
        (
            {"totalResults": 25, "Resources": [{}] * 10, "startIndex": 11, "itemsPerPage": 9},
            11,
            10,
            "says itemsPerPage a number (9) but holds 10",
        ),
        (
            {"totalResults": 25, "Resources": [{}] * 12, "startIndex": 11},
            11,
            10,
            "holds 12, more than the 10 due",
        ),
        (
            {"totalResults": 26, "Resources": [{}] * 10, "startIndex": 11},
            11,
            10,
            "changed during the read: 25 at the first page, 26 at startIndex 11",
        ),
    ],
)
def test_each_page_is_checked_against_the_first(page, start, due, complaint):
    with pytest.raises(KomeetError, match="nothing was planned") as failed:
        ListPage.of(page, start).check(start, 25, due)
    assert complaint in str(failed.value)


@pytest.mark.parametrize(
    ("page", "complaint"),
    [
        ({"Resources": []}, "totalResults is null, not a count"),
        ({"totalResults": "25", "Resources": []}, 'totalResults is a string ("25")'),
        ({"totalResults": 25, "Resources": {}}, "Resources is an object, not a list"),
    ],
)
def test_an_answer_that_is_no_list_response_fails_the_read(page, complaint):
    with pytest.raises(KomeetError, match="is not a SCIM ListResponse") as failed:
        ListPage.of(page, 1)
    assert complaint in str(failed.value)


def test_a_first_page_sets_the_page_size_but_may_not_be_empty():
    for held in (7, 12, 25):  # fewer or more than the 10 asked for, or the whole listing
        ListPage.of({"totalResults": 25, "Resources": [{}] * held}, 1).check(1, 25, 10, first=True)
    ListPage.of({"totalResults": 0, "Resources": []}, 1).check(1, 0, 0, first=True)
    with pytest.raises(KomeetError, match="an empty page at startIndex 1 of 25 accounts"):
        ListPage.of({"totalResults": 25, "Resources": []}, 1).check(1, 25, 10, first=True)
    with pytest.raises(KomeetError, match="holds 26, more than the 25 due"):
        ListPage.of({"totalResults": 25, "Resources": [{}] * 26}, 1).check(1, 25, 10, first=True)
