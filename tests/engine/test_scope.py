"""Who is desired (ARCHITECTURE.md, "Situations"): valid, active, and a member of at least
one selected group; and what keeps a person or a group from being synced, in errors."""

from __future__ import annotations

import pandas as pd
import pytest

from komeet_sync.engine import scope
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import GROUP_MEMBERS
from komeet_sync.model.snapshots import DirectorySnapshot
from tests.support.frames import GROUP, config, directory, person


def desired(snapshot: DirectorySnapshot, **options) -> dict[str, bool]:
    people = scope.assess(snapshot, config(**options)).people
    return dict(zip(people["account_id"], people["desired"], strict=True))


def test_desired_is_valid_active_and_in_a_selected_group():
    snapshot = directory(
        person("g1", "ada@acme.com"),
        person("g2", "bob@acme.com", active=False),
        person("g3", "cy@acme.com", groups=()),
        person("g4", "dee@acme.com", groups=("other@acme.com",)),
    )

    assert desired(snapshot) == {"g1": True, "g2": False, "g3": False, "g4": False}


def test_any_one_selected_group_is_enough():
    snapshot = directory(
        person("g1", "ada@acme.com", groups=("sales@acme.com",)),
        selected=(GROUP, "sales@acme.com"),
    )

    assert desired(snapshot, groups=[GROUP, "sales@acme.com"]) == {"g1": True}


def test_emails_are_normalised_trimmed_lower_cased_with_an_idna_domain():
    snapshot = directory(person("g1", "  Ada.Lovelace@Bücher.Example "))

    people = scope.assess(snapshot, config(alias_domains=["bücher.example"])).people
    assert list(people["email"]) == ["ada.lovelace@xn--bcher-kva.example"]
    assert list(people["desired"]) == [True]


@pytest.mark.parametrize(
    ("the_person", "error", "detail"),
    [
        (person("g1", "ada@@acme.com"), "invalid_email", ""),
        (person("g1", "ada@globex.com"), "outside_domain", "its domain is not acme.com"),
        (person("g1", "ada@acme.com", given=" "), "missing_name", "givenName and familyName"),
    ],
)
def test_an_invalid_person_is_not_desired_and_says_why(the_person, error, detail):
    assessed = scope.assess(directory(the_person), config())

    assert list(assessed.people["desired"]) == [False]
    row = assessed.errors.iloc[0]
    assert (row["error"], row["email"]) == (error, the_person["email"])
    assert detail in row["detail"] and row["reason"] == scope.NO_ACTION


def test_an_invalid_person_in_no_selected_group_is_no_error():
    snapshot = directory(person("g1", "ada@acme.com"), person("g2", "bob@globex.com", groups=()))

    assert scope.assess(snapshot, config()).errors.empty


@pytest.mark.parametrize(
    ("missing", "error"),
    [((GROUP,), "group_not_found"), ((), "group_empty")],
)
def test_a_selected_group_missing_or_empty_is_listed(missing, error):
    snapshot = directory(person("g1", "ada@acme.com", groups=()), missing=missing)

    assessed = scope.assess(snapshot, config())

    assert list(assessed.missing_groups["error"]) == [error]
    assert list(assessed.errors["error"]) == [error]


def test_a_member_who_is_nobody_in_the_directory_is_reported():
    snapshot = directory(person("g1", "ada@acme.com"))
    strangers = pd.DataFrame(
        [(GROUP, "x1", "ghost@acme.com", "USER"), (GROUP, "x2", "guest@partner.com", "USER")],
        columns=list(GROUP_MEMBERS),
    )
    snapshot = DirectorySnapshot.of(
        snapshot.source,
        snapshot.users,
        snapshot.aliases,
        pd.concat([snapshot.members, strangers], ignore_index=True),
        snapshot.groups,
    )

    errors = scope.assess(snapshot, config()).errors.set_index("account_id")["error"]

    assert errors.to_dict() == {"x1": "member_not_found", "x2": "outside_domain"}


def test_a_scim_domain_without_selected_groups_takes_every_active_user():
    snapshot = directory(person("s1", "ada@acme.com", groups=()), selected=())
    scim = DomainConfig.create("acme.com", "scim")

    people = scope.assess(snapshot, scim).people

    assert list(people["desired"]) == [True]


def test_group_counts_are_users_with_nested_groups_and_those_desired():
    snapshot = directory(
        person("g1", "ada@acme.com", groups=(GROUP, "sales@acme.com")),
        person("g2", "bob@acme.com", active=False),
        person("g3", "cy@acme.com", family=None, groups=("sales@acme.com",)),
        person("g4", "dee@acme.com", groups=()),
        selected=(GROUP, "sales@acme.com", "empty@acme.com"),
    )
    choosing = config(groups=[GROUP, "sales@acme.com", "empty@acme.com"])

    counts = scope.group_counts(snapshot, choosing)

    assert counts.to_dict("records") == [
        {"group": GROUP, "members": 2, "desired": 1},  # bob is not active
        {"group": "sales@acme.com", "members": 2, "desired": 1},  # cy has no family name
        {"group": "empty@acme.com", "members": 0, "desired": 0},
    ]


def test_a_customer_member_counts_everyone_in_its_group_only():
    everyone = directory(person("g1", "ada@acme.com"), person("g2", "bob@acme.com", groups=()))
    members = pd.concat(
        [
            everyone.members,
            pd.DataFrame(
                [("sales@acme.com", "C01", None, "CUSTOMER")], columns=list(GROUP_MEMBERS)
            ),
        ],
        ignore_index=True,
    )
    groups = pd.DataFrame({"group": [GROUP, "sales@acme.com"], "found": [True, True]})
    snapshot = DirectorySnapshot.of(everyone.source, everyone.users, members=members, groups=groups)

    counts = scope.group_counts(snapshot, config(groups=[GROUP, "sales@acme.com"]))

    assert list(counts["desired"]) == [1, 2]
