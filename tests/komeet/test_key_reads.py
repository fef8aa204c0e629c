"""Reading Komeet's accounts by key (``KomeetSide``) over real HTTP, against the third-party
scim2-server on loopback: the accounts holding some keys are what the whole read, filtered
to them, gives (the definition: ``runs.incremental.SnapshotAccounts``), however
their userNames and emails are written, and whatever the values hold."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from komeet_sync.engine.reconcile import account_keys, node_keys
from komeet_sync.komeet import accounts
from komeet_sync.komeet.accounts import MAX_FILTER_LENGTH, MAX_TERMS, KomeetSide, read_accounts
from komeet_sync.komeet.client import ENTERPRISE_SCHEMA, USER_SCHEMA, KomeetError, quote
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import DIRECTORY_USERS, Source, empty_frame
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.runs.incremental import SnapshotAccounts, SnapshotPeople, gather
from tests.runs import test_incremental
from tests.support.komeet_server import SCIM_JSON, KomeetTenant, start

CONFIG = DomainConfig.create(
    "acme.com",
    "google",
    groups=["all@acme.com"],
    alias_domains=["acme.io", "bücher.de"],
    require_admin=False,
)
EXAMPLES = settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Values that would end a filter's string literal or change the filter if not quoted.
HOSTILE = ['q"1', "b\\2", 'x" or userName pr or externalId eq "y', "ü\u0308\U0001f600", "(3)"]
LOCALS = ["ann", "Ann", "ANN", "bob"]
# Both forms of the internationalised alias domain, a domain in capitals, and another one.
DOMAINS = ["acme.com", "ACME.com", "acme.io", "bücher.de", "xn--bcher-kva.de", "globex.com"]
EXTERNAL_IDS = [None, "1", "2", "x1", *HOSTILE]
EMPLOYEE_IDS = [None, "E1", "e1", "E2", *HOSTILE]

addresses = st.builds(
    lambda local, domain: f"{local}@{domain}", st.sampled_from(LOCALS), st.sampled_from(DOMAINS)
)
accounts_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "user_name": st.one_of(addresses, st.sampled_from(["ann..x@acme.com", "nope"])),
            "emails": st.lists(addresses, max_size=2),
            "external_id": st.sampled_from(EXTERNAL_IDS),
            "employee_id": st.sampled_from(EMPLOYEE_IDS),
        }
    ),
    max_size=8,
)


@pytest.fixture(scope="module", params=["scim2-server", "indexed"])
def stand_in(request, komeet_server):
    """The Komeet stand-in as scim2-server comes, and with the indexes of a real Komeet
    (``tests.support.komeet_stand_in``): both answer the same."""
    if request.param == "scim2-server":
        yield komeet_server
        return
    server = start(indexed=True)
    yield server
    server.stop()


def seeded(komeet: KomeetTenant, accounts: list[dict[str, Any]]) -> None:
    """The accounts Komeet takes: a userName another account holds in any case is refused
    (409), as it refuses it."""
    for account in accounts:
        body: dict[str, Any] = {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "userName": account["user_name"],
            "active": account.get("active", True),
            "emails": [
                {"value": email, "primary": i == 0} for i, email in enumerate(account["emails"])
            ],
        }
        if account.get("external_id"):
            body["externalId"] = account["external_id"]
        if account.get("employee_id"):
            body[ENTERPRISE_SCHEMA] = {"employeeNumber": account["employee_id"]}
        response = komeet.session.post(f"{komeet.url}/Users", json=body, headers=SCIM_JSON)
        assert response.status_code in (201, 409), response.text


def domain_keys(accounts: KomeetAccounts) -> pd.DataFrame:
    """The keys of the domain's accounts, as the whole read's SnapshotAccounts has them (and
    as ``account_keys`` gives them without a directory)."""
    nobody = DirectorySnapshot.of(Source.GOOGLE, empty_frame(DIRECTORY_USERS))
    keys = node_keys(nobody, accounts, CONFIG)
    pd.testing.assert_frame_equal(account_keys(accounts, CONFIG), keys)
    return keys


def ids(accounts: KomeetAccounts) -> list[str]:
    return sorted(accounts.accounts["komeet_id"])


@EXAMPLES
@given(accounts_strategy, st.data())
def test_the_accounts_holding_keys_are_the_whole_reads_holders(stand_in, generated, data):
    komeet = stand_in.tenant()
    seeded(komeet, generated)
    whole = read_accounts(komeet.client(), CONFIG)
    keys = domain_keys(whole)
    held = list(zip(keys["namespace"], keys["value"], strict=True))
    unheld = [("email", "cy@acme.com"), ("id", "9"), ("employee id", "E9")]
    hostile = [(namespace, value) for namespace in ("id", "employee id") for value in HOSTILE]
    wanted = data.draw(st.lists(st.sampled_from(held + unheld + hostile), max_size=6))

    found = KomeetSide(komeet.client(), CONFIG).holding(wanted)

    in_memory = SnapshotAccounts(whole, CONFIG)
    expected = in_memory.holding(wanted).accounts
    assert ids(found) == sorted(expected["komeet_id"])
    pd.testing.assert_frame_equal(
        found.accounts.sort_values("komeet_id", ignore_index=True),
        expected.sort_values("komeet_id", ignore_index=True),
    )
    employee_ids = [value for namespace, value in wanted if namespace == "employee id"]
    assert KomeetSide(komeet.client(), CONFIG).holders(employee_ids) == in_memory.holders(
        employee_ids
    )


def test_userNames_and_emails_are_found_in_any_case_and_either_form_of_their_domain(stand_in):
    komeet = stand_in.tenant()
    for user_name, email in [
        ("ANN@Acme.COM", None),
        ("ann@bücher.de", None),
        ("Bob@XN--BCHER-KVA.de", None),
        ("cy@globex.com", "Cy@Acme.com"),  # outside the domain: not the domain's account
        ("dee@acme.io", "DEE.work@bücher.de"),
    ]:
        komeet.add(user_name, emails=[{"value": email or user_name, "primary": True}])

    side = KomeetSide(komeet.client(), CONFIG)

    def user_names(*keys: tuple[str, str]) -> list[str]:
        return sorted(side.holding(keys).accounts["user_name"])

    assert user_names(("email", "ann@acme.com")) == ["ANN@Acme.COM"]
    assert user_names(("email", "ann@xn--bcher-kva.de")) == ["ann@bücher.de"]
    assert user_names(("email", "bob@xn--bcher-kva.de")) == ["Bob@XN--BCHER-KVA.de"]
    assert user_names(("email", "cy@acme.com")) == []
    assert user_names(("email", "dee.work@xn--bcher-kva.de")) == ["dee@acme.io"]
    # The whole read finds the same accounts of the domain.
    assert len(read_accounts(komeet.client(), CONFIG).accounts) == 4


def test_a_hostile_value_finds_its_holder_and_nobody_else(stand_in):
    komeet = stand_in.tenant()
    for number, value in enumerate(HOSTILE):
        komeet.add(
            f"user{number}@acme.com",
            externalId=value,
            schemas=[USER_SCHEMA, ENTERPRISE_SCHEMA],
            **{ENTERPRISE_SCHEMA: {"employeeNumber": value}},
        )
    komeet.add("other@acme.com", externalId="y")
    client = komeet.client()
    side = KomeetSide(client, CONFIG)

    for number, value in enumerate(HOSTILE):
        assert [
            user["userName"] for user in client.find_users(f"externalId eq {quote(value)}")
        ] == [f"user{number}@acme.com"]
        assert client.count_users(f"externalId eq {quote(value)}") == 1
        assert list(side.holding([("id", value)]).accounts["user_name"]) == [
            f"user{number}@acme.com"
        ]
    assert side.holders(HOSTILE) == dict.fromkeys(HOSTILE, 1)


def test_keys_are_searched_in_few_requests_sent_at_once(komeet):
    for number in range(100):
        komeet.add(f"user{number:03d}@acme.com", externalId=f"g{number}")
    client = komeet.client()
    side = KomeetSide(client, CONFIG)
    client.capabilities()

    sent = client.requests_sent
    assert len(side.holding([("email", "user001@acme.com"), ("id", "g2")]).accounts) == 2
    assert client.requests_sent == sent + 1  # three terms, one request

    sent = client.requests_sent
    keys = [("id", f"g{number}") for number in range(100)]
    assert len(side.holding(keys).accounts) == 100
    assert client.requests_sent == sent + -(-100 // MAX_TERMS)

    # Ten ids of 1,000 characters: five a request keep its filter within MAX_FILTER_LENGTH.
    sent = client.requests_sent
    assert side.holding([("id", f"{number}" + "x" * 999) for number in range(10)]).accounts.empty
    assert 5 * len(quote_plus(f' or externalId eq "{"x" * 1000}"')) <= MAX_FILTER_LENGTH
    assert client.requests_sent == sent + 2


def test_an_employee_id_held_by_many_is_counted_not_read(komeet, monkeypatch):
    monkeypatch.setattr(accounts, "FEW_HOLDERS", 5)
    for number, (employee_id, domain) in enumerate(
        [("0", "acme.com")] * 6
        + [("n/a", "globex.com")] * 6
        + [("n/a", "acme.io"), ("E1", "acme.com")]
    ):
        komeet.add(
            f"user{number:02d}@{domain}",
            schemas=[USER_SCHEMA, ENTERPRISE_SCHEMA],
            **{ENTERPRISE_SCHEMA: {"employeeNumber": employee_id}},
        )
    client = komeet.client()
    client.capabilities()
    sent = client.requests_sent

    # "0": six holders in the domain, counted by Komeet; "n/a": seven, one in the domain,
    # read within it; "E1": one, read.
    holders = KomeetSide(client, CONFIG).holders(["0", "n/a", "E1", "E9"])

    assert holders == {"0": 6, "n/a": 1, "E1": 1}
    # A count of each id, a count within the domain of the two held by more, one search.
    assert client.requests_sent == sent + 4 + 2 + 1


def test_a_komeet_that_does_not_filter_is_read_whole_once(plain_komeet_server):
    komeet = plain_komeet_server.tenant()
    komeet.add("ann@acme.com", externalId="1")
    komeet.add("bob@acme.com", externalId="2")
    client = komeet.client()
    side = KomeetSide(client, CONFIG)

    with pytest.raises(KomeetError, match="does not announce filtering"):
        client.find_users('userName eq "ann@acme.com"')
    assert list(side.holding([("id", "1")]).accounts["user_name"]) == ["ann@acme.com"]
    sent = client.requests_sent
    assert list(side.holding([("email", "bob@acme.com")]).accounts["user_name"]) == ["bob@acme.com"]
    assert client.requests_sent == sent


@settings(EXAMPLES, max_examples=EXAMPLES.max_examples // 2)
@given(test_incremental.people_strategy, test_incremental.accounts_strategy, st.data())
def test_gather_finds_the_components_the_whole_read_gives(stand_in, people, accounts, data):
    komeet = stand_in.tenant()
    seeded(
        komeet,
        [
            account | {"emails": [account["email"]] if _valid(account["email"]) else []}
            for account in accounts
        ],
    )
    config = test_incremental.CONFIG
    snapshot = test_incremental.directory(people)
    changed = data.draw(
        st.lists(st.sampled_from(list(snapshot.users["account_id"])), min_size=1, max_size=3)
    )
    whole = read_accounts(komeet.client(), config)

    by_key = gather(
        config,
        SnapshotPeople(snapshot, config),
        KomeetSide(komeet.client(), config),
        snapshot.restricted_to(changed),
    )
    by_whole = gather(
        config,
        SnapshotPeople(snapshot, config),
        SnapshotAccounts(whole, config),
        snapshot.restricted_to(changed),
    )

    assert ids(by_key.komeet) == ids(by_whole.komeet)
    assert sorted(by_key.snapshot.users["account_id"]) == sorted(
        by_whole.snapshot.users["account_id"]
    )
    assert by_key.common_employee_ids == by_whole.common_employee_ids


def _valid(email: str | None) -> bool:
    """Whether scim2-server takes ``email`` as an emails[].value."""
    return email is not None and "@" in email and ".." not in email


def test_the_indexed_stand_in_answers_as_scim2_server_after_writes(komeet_server):
    indexed = start(indexed=True)
    try:
        plain, komeet = komeet_server.tenant(), indexed.tenant()
        filters = [
            'userName eq "ann@acme.com" or userName eq "BOB@acme.com"',
            'emails.value eq "ann.work@acme.com" or externalId eq "2"',
            'emails.value eq "ann@bücher.de" or emails.value eq "nope"',
            f'{ENTERPRISE_SCHEMA}:employeeNumber eq "e1" or userName eq "cy@acme.com"',
            'userName ew "@acme.com"',
        ]
        answers = []
        for tenant in (plain, komeet):
            client = tenant.client()
            before = [sorted(u["userName"] for u in client.find_users(f)) for f in filters]
            ann = tenant.add("ann@acme.com", emails=[{"value": "ann.work@acme.com"}])
            tenant.add(
                "bob@acme.com",
                externalId="2",
                schemas=[USER_SCHEMA, ENTERPRISE_SCHEMA],
                **{ENTERPRISE_SCHEMA: {"employeeNumber": "E1"}},
            )
            tenant.add("dee@acme.com", emails=[{"value": "ann@xn--bcher-kva.de"}])
            created = [sorted(u["userName"] for u in client.find_users(f)) for f in filters]
            replaced = dict(ann, userName="cy@acme.com", emails=[{"value": "cy@acme.com"}])
            url = f"{tenant.url}/Users/{ann['id']}"
            assert tenant.session.put(url, json=replaced, headers=SCIM_JSON).status_code == 200
            changed = [sorted(u["userName"] for u in client.find_users(f)) for f in filters]
            assert tenant.session.delete(url, headers=SCIM_JSON).status_code == 204
            deleted = [sorted(u["userName"] for u in client.find_users(f)) for f in filters]
            answers.append([before, created, changed, deleted])
    finally:
        indexed.stop()

    assert answers[0] == answers[1]
    assert answers[1][1][0] == ["ann@acme.com", "bob@acme.com"]
    assert answers[1][2][0] == ["bob@acme.com"]  # ann renamed cy: its old name is no key
    assert answers[1][2][3] == ["bob@acme.com", "cy@acme.com"]
    assert answers[1][3][3] == ["bob@acme.com"]
