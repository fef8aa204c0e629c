"""An incremental sync decides for the people who changed what a full sync decides for them
(ARCHITECTURE.md, "Full and incremental syncs"): ``gather`` reads whole components, and the
engine decides for them what it decides in the whole domain (hypothesis, over generated
directories and Komeet states full of shared addresses, ids and employee ids)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from komeet_sync.engine.reconcile import DomainFacts, reconcile
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import KOMEET_ACCOUNTS, Source
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.runs.incremental import SnapshotAccounts, SnapshotPeople, gather
from tests.support.scale import at_scale

GROUP, NESTED = "all@acme.com", "team@acme.com"
CONFIG = DomainConfig.create(
    "acme.com",
    "google",
    groups=[GROUP, "gone@acme.com"],
    alias_domains=["acme.io"],
    protected=["boss@acme.com"],
    require_admin=False,
)
LOCALS = ["ann", "bob", "boss"]
DOMAINS = ["acme.com", "ACME.com", "acme.io", "globex.com"]
# E0 is held by many people and accounts: a placeholder, which links nobody.
EMPLOYEE_IDS = [None, None, None, "E0", "E1", "E2"]


def address() -> st.SearchStrategy[str]:
    valid = st.builds(
        lambda local, upper, domain: f"{local.upper() if upper else local}@{domain}",
        st.sampled_from(LOCALS),
        st.booleans(),
        st.sampled_from(DOMAINS),
    )
    return st.one_of(valid, valid, valid, st.sampled_from(["ann..x@acme.com", "nope"]))


people_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "email": address(),
            "stable_id": st.sampled_from([None, None, "x1", "x2"]),
            "given_name": st.sampled_from(["Ann", "Bob", ""]),
            "family_name": st.sampled_from(["Xu", "Yi"]),
            "active": st.booleans(),
            "employee_id": st.sampled_from(EMPLOYEE_IDS),
            "aliases": st.lists(address(), max_size=2),
            "group": st.sampled_from([GROUP, NESTED, None]),
        }
    ),
    max_size=9,
)
accounts_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "user_name": address(),
            "email": st.one_of(st.none(), address()),
            "external_id": st.sampled_from([None, "1", "2", "3", "4", "5", "x1"]),
            "given_name": st.sampled_from(["Ann", "Bob", None]),
            "family_name": st.sampled_from(["Xu", "Yi"]),
            "active": st.booleans(),
            "employee_id": st.sampled_from(EMPLOYEE_IDS),
        }
    ),
    max_size=9,
)


def directory(generated: list[dict]) -> DirectorySnapshot:
    rows = [dict(person, account_id=str(i + 1)) for i, person in enumerate(generated)]
    # Six placeholders make E0 common whatever was drawn.
    rows += [
        dict(generated[0] if generated else {}, account_id=f"p{i}", email=f"p{i}@acme.com")
        | {"employee_id": "E0", "aliases": [], "stable_id": None, "group": None}
        for i in range(5)
    ]
    users = pd.DataFrame(
        [
            {
                "source": "google",
                "account_id": r["account_id"],
                "stable_id": r.get("stable_id") or r["account_id"],
                "email": r["email"],
                "given_name": r.get("given_name", "Pat"),
                "family_name": r.get("family_name", "Doe"),
                "active": r.get("active", True),
                "inactive_reason": None if r.get("active", True) else "suspended",
                "employee_id": r["employee_id"],
            }
            for r in rows
        ]
    )
    aliases = pd.DataFrame(
        [(r["account_id"], alias) for r in rows for alias in r["aliases"]],
        columns=["account_id", "alias"],
    )
    # The selected group's members, the nested group's flattened into it.
    members = pd.DataFrame(
        [(GROUP, r["account_id"], None, "USER") for r in rows if r["group"] is not None],
        columns=["group", "member_id", "member_email", "member_type"],
    )
    groups = pd.DataFrame({"group": [GROUP, "gone@acme.com"], "found": [True, False]})
    return DirectorySnapshot.of(Source.GOOGLE, users, aliases, members, groups)


def komeet(generated: list[dict]) -> KomeetAccounts:
    rows = [dict(a, komeet_id=f"k{i}") for i, a in enumerate(generated)]
    rows += [
        {"komeet_id": f"q{i}", "user_name": f"q{i}@acme.com", "active": True, "employee_id": "E0"}
        for i in range(2)
    ]
    return KomeetAccounts.of(pd.DataFrame(rows, columns=list(KOMEET_ACCOUNTS)))


COMPARED = ["situation", "action", "reason", "komeet_id", "match_rule", "changes", "cluster_id"]


def identity(rows: pd.DataFrame) -> pd.Series:
    """A row's person, or its account when it has no person."""
    return ("person " + rows["account_id"]).fillna("account " + rows["komeet_id"])


@settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", at_scale(20, 60))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(people_strategy, accounts_strategy, st.data())
def test_the_decision_for_changed_people_is_the_full_syncs(generated, generated_accounts, data):
    snapshot, accounts = directory(generated), komeet(generated_accounts)
    full = reconcile(snapshot, accounts, CONFIG)
    ids = list(snapshot.users["account_id"])
    changed = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))

    people = SnapshotPeople(snapshot, CONFIG)
    found = gather(
        CONFIG, people, SnapshotAccounts(accounts, CONFIG), snapshot.restricted_to(changed)
    )
    facts = DomainFacts(
        groups_listed=people.groups_listed(),
        common_employee_ids=found.common_employee_ids,
    )
    part = reconcile(found.snapshot, found.komeet, CONFIG, facts=facts)

    assert set(changed) <= set(part.rows["account_id"].dropna())
    theirs = full.rows.assign(identity=identity(full.rows)).set_index("identity")
    ours = part.rows.assign(identity=identity(part.rows)).set_index("identity")
    assert ours.index.is_unique
    pd.testing.assert_frame_equal(
        ours[COMPARED].sort_index(),
        theirs.loc[ours.index, COMPARED].sort_index(),
        check_dtype=False,
    )
    assert "E0" not in found.snapshot.users["employee_id"].dropna().tolist() or (
        "E0" in found.common_employee_ids
    )


def test_a_placeholder_employee_id_links_nobody_in_a_part_either():
    snapshot = directory([])
    accounts = komeet([])
    people = SnapshotPeople(snapshot, CONFIG)
    found = gather(
        CONFIG, people, SnapshotAccounts(accounts, CONFIG), snapshot.restricted_to(["p0"])
    )

    assert found.common_employee_ids == {"E0"}
    assert list(found.snapshot.users["account_id"]) == ["p0"]  # the other holders not read
    assert ("employee id", "E0") not in people.asked
    part = reconcile(
        found.snapshot,
        found.komeet,
        CONFIG,
        facts=DomainFacts({GROUP: 0}, found.common_employee_ids),
    )
    assert part.rows.set_index("account_id").loc["p0", "situation"] != "disputed"


@pytest.mark.parametrize("listed", [{GROUP: 3}, {GROUP: 0}, {}])
def test_the_group_guard_takes_the_whole_directorys_groups(listed):
    snapshot = directory(
        [
            {
                "email": "ann@acme.com",
                "stable_id": None,
                "given_name": "Ann",
                "family_name": "Xu",
                "active": True,
                "employee_id": None,
                "aliases": [],
                "group": GROUP,
            }
        ]
    )
    part = reconcile(
        snapshot.restricted_to(["1"]),
        komeet([]),
        DomainConfig.create("acme.com", "google", groups=[GROUP], require_admin=False),
        facts=DomainFacts(listed),
    )
    errors = [hold.guard.value for hold in part.plan.holds]
    expected = {3: [], 0: ["group_missing"]}.get(listed.get(GROUP, -1), ["group_missing"])
    assert errors == expected


def test_a_chain_of_keys_is_followed_to_its_end():
    """Ann's address is held by an account whose externalId is Bob's id, and Bob's alias by
    another account: the four are one component, a dispute, though Ann shares nothing with
    Bob or the second account."""
    base = {
        "stable_id": None,
        "given_name": "Ann",
        "family_name": "Xu",
        "active": True,
        "employee_id": None,
        "group": GROUP,
    }
    snapshot = directory(
        [
            base | {"email": "ann@acme.com", "aliases": []},
            base | {"email": "bob@acme.com", "aliases": ["cy@acme.com"]},
        ]
    )
    accounts = komeet(
        [
            {"user_name": "ann@acme.com", "external_id": "2", "active": True},
            {"user_name": "cy@acme.com", "external_id": None, "active": True},
        ]
    )
    found = gather(
        CONFIG,
        SnapshotPeople(snapshot, CONFIG),
        SnapshotAccounts(accounts, CONFIG),
        snapshot.restricted_to(["1"]),
    )

    assert sorted(found.snapshot.users["account_id"]) == ["1", "2"]
    assert sorted(found.komeet.accounts["komeet_id"]) == ["k0", "k1"]
    assert found.rounds == 3  # Ann's keys, then k0's and Bob's, then k1's: nothing new
    part = reconcile(found.snapshot, found.komeet, CONFIG, facts=DomainFacts({GROUP: 2}))
    assert set(part.rows["situation"]) == {"disputed"}
