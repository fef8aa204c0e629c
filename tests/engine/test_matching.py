"""The matching rules (ARCHITECTURE.md, "Identity and matching"), on ``link`` itself: people
are nodes 0..n-1, accounts n..n+m-1, each with the keys a rule compares.

1. stable id = Komeet externalId; 2. primary email = userName (or the account's email);
3. an alias = userName. The first rule that matches names the match; a person linked to
several accounts, or an account to several people, by any rule, is a dispute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from komeet_sync.engine.matching import (
    MAX_EMPLOYEE_ID_HOLDERS,
    KeyKind,
    Keys,
    dispute_clusters,
    link,
)


def keys(kind: KeyKind, *pairs: tuple[int, str]) -> Keys:
    """``kind`` keys: (node, value) pairs."""
    return Keys(
        kind,
        np.array([node for node, _ in pairs], dtype=np.int64),
        pd.Series([value for _, value in pairs], dtype="str"),
    )


def people_and_accounts(
    people: int,
    accounts: int,
    *,
    stable_ids=(),
    emails=(),
    aliases=(),
    external_ids=(),
    user_names=(),
    account_emails=(),
    person_employee_ids=(),
    account_employee_ids=(),
):
    """Link ``people`` people and ``accounts`` accounts; account pairs give the account's
    position (0..), turned into its node here."""
    shift = lambda pairs: [(people + at, value) for at, value in pairs]  # noqa: E731
    return link(
        [
            keys(KeyKind.STABLE_ID, *stable_ids),
            keys(KeyKind.EMAIL, *emails),
            keys(KeyKind.ALIAS, *aliases),
            keys(KeyKind.PERSON_EMPLOYEE_ID, *person_employee_ids),
            keys(KeyKind.EXTERNAL_ID, *shift(external_ids)),
            keys(KeyKind.USER_NAME, *shift(user_names)),
            keys(KeyKind.ACCOUNT_EMAIL, *shift(account_emails)),
            keys(KeyKind.ACCOUNT_EMPLOYEE_ID, *shift(account_employee_ids)),
        ],
        people,
        accounts,
    )


def test_rule_1_the_stable_id_matches_the_external_id():
    links = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        external_ids=[(0, "g1")], user_names=[(0, "someone.else@acme.com")],
    )  # fmt: skip

    assert list(links.matched_account) == [0]
    assert list(links.match_rule) == ["stable_id"]
    assert not links.disputed.any()


def test_rule_2_the_primary_email_matches_the_user_name_or_the_account_email():
    by_user_name = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        user_names=[(0, "ada@acme.com")],
    )  # fmt: skip
    by_account_email = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        user_names=[(0, "a.lovelace@acme.com")], account_emails=[(0, "ada@acme.com")],
    )  # fmt: skip

    for links in (by_user_name, by_account_email):
        assert list(links.matched_account) == [0]
        assert list(links.match_rule) == ["email"]


def test_rule_3_an_alias_matches_the_user_name_of_a_renamed_person():
    links = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada.king@acme.com")],
        aliases=[(0, "ada@acme.com")], user_names=[(0, "ada@acme.com")],
    )  # fmt: skip

    assert list(links.matched_account) == [0]
    assert list(links.match_rule) == ["alias"]


def test_the_first_rule_that_matches_names_the_match():
    every_rule = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        aliases=[(0, "a@acme.com")], external_ids=[(0, "g1")],
        user_names=[(0, "ada@acme.com")], account_emails=[(0, "a@acme.com")],
    )  # fmt: skip
    email_and_alias = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        aliases=[(0, "a@acme.com")], user_names=[(0, "ada@acme.com")],
        account_emails=[(0, "a@acme.com")],
    )  # fmt: skip

    assert list(every_rule.match_rule) == ["stable_id"]
    assert list(email_and_alias.match_rule) == ["email"]


def test_a_person_matching_two_accounts_by_any_rules_is_a_dispute():
    links = people_and_accounts(
        1, 2, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        external_ids=[(0, "g1")], user_names=[(0, "old@acme.com"), (1, "ada@acme.com")],
    )  # fmt: skip

    assert list(links.matched_account) == [-1]
    assert list(links.disputed) == [True, True, True]


def test_an_account_matching_two_people_is_a_dispute():
    links = people_and_accounts(
        2, 1, stable_ids=[(0, "g1"), (1, "g2")],
        emails=[(0, "ada@acme.com"), (1, "ada.k@acme.com")], aliases=[(1, "ada@acme.com")],
        user_names=[(0, "ada@acme.com")],
    )  # fmt: skip

    assert list(links.matched_account) == [-1, -1]
    assert list(links.disputed) == [True, True, True]


def test_two_people_sharing_an_address_are_a_dispute_without_any_account():
    links = people_and_accounts(
        2, 0, stable_ids=[(0, "g1"), (1, "g2")],
        emails=[(0, "ada@acme.com"), (1, "ada.k@acme.com")], aliases=[(1, "ada@acme.com")],
    )  # fmt: skip

    assert list(links.disputed) == [True, True]


def test_an_employee_id_alone_never_matches_but_marks_a_probable_duplicate():
    links = people_and_accounts(
        1, 1, stable_ids=[(0, "g1")], emails=[(0, "ada@acme.com")],
        person_employee_ids=[(0, "E42")], user_names=[(0, "a.l@acme.com")],
        account_employee_ids=[(0, "E42")],
    )  # fmt: skip

    assert list(links.matched_account) == [-1]
    assert list(links.disputed) == [True, True]
    assert set(links.shared["kind"]) == {"employee id"}


def test_an_employee_id_held_by_more_than_four_is_a_placeholder_and_ignored():
    holders = MAX_EMPLOYEE_ID_HOLDERS + 1
    links = people_and_accounts(
        holders,
        0,
        stable_ids=[(n, f"g{n}") for n in range(holders)],
        emails=[(n, f"p{n}@acme.com") for n in range(holders)],
        person_employee_ids=[(n, "0") for n in range(holders)],
    )

    assert not links.disputed.any()


def test_a_cluster_s_id_does_not_depend_on_the_order_of_its_nodes():
    def cluster(names: list[str]) -> pd.DataFrame:  # g1 has the address, g2 as an alias
        g1, g2 = names.index("google user g1"), names.index("google user g2")
        links = people_and_accounts(
            2, 0, emails=[(g1, "ada@acme.com")], aliases=[(g2, "ada@acme.com")]
        )
        return dispute_clusters(links, lambda nodes: np.array(names)[nodes])

    one = cluster(["google user g1", "google user g2"])
    other = cluster(["google user g2", "google user g1"])

    assert one["cluster_id"].nunique() == 1
    assert set(one["cluster_id"]) == set(other["cluster_id"])
    assert (
        set(one["reason"])
        == set(other["reason"])
        == {
            "share email ada@acme.com (google user g1, google user g2): no action for any of "
            "them until one account remains per person"
        }
    )
