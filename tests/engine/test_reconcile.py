"""Every row of ARCHITECTURE.md's situations table, decided by ``reconcile`` on frames:
each person's and account's situation, the action it gets, and the report it is in."""

from __future__ import annotations

import pytest

from komeet_sync.engine.reconcile import node_keys, reconcile
from tests.support.frames import (
    account,
    config,
    directory,
    komeet,
    person,
    situation_of,
)


def plan_row(result, **where):
    actions = result.plan.actions
    for column, value in where.items():
        actions = actions[actions[column] == value]
    assert len(actions) == 1, actions
    return actions.iloc[0]


def test_joiner_desired_without_an_account_is_created_active_with_its_external_id():
    result = reconcile(directory(person("g1", "Ada.Lovelace@ACME.com")), komeet(), config())

    row = situation_of(result, person="g1")
    assert (row["situation"], row["action"]) == ("joiner", "create")
    created = plan_row(result, action="create")
    assert (created["user_name"], created["external_id"]) == ("ada.lovelace@acme.com", "g1")
    assert (created["given_name"], created["family_name"]) == ("Ada", "Lovelace")
    assert list(result.reports["joiners"]["email"]) == ["ada.lovelace@acme.com"]


def test_returner_desired_with_an_inactive_account_is_reactivated():
    result = reconcile(
        directory(person("g1", "ada@acme.com")),
        komeet(account("k1", "ada@acme.com", external_id="g1", active=False)),
        config(),
    )

    row = situation_of(result, person="g1")
    assert (row["situation"], row["action"], row["komeet_id"]) == ("returner", "reactivate", "k1")
    assert list(result.reports["joiners"]["situation"]) == ["returner"]


@pytest.mark.parametrize(
    ("the_person", "the_account", "changes"),
    [
        (
            person("g1", "ada@acme.com", family="King"),
            account("k1", "ada@acme.com", external_id="g1"),
            "familyName Lovelace -> King",
        ),
        (  # renamed: the old address is an alias, the account's userName follows
            person("g1", "ada.king@acme.com", aliases=("ada@acme.com",)),
            account("k1", "ada@acme.com"),
            "userName ada@acme.com -> ada.king@acme.com; externalId (none) -> g1",
        ),
        (  # matched by email, without the externalId the sync links it with
            person("g1", "ada@acme.com"),
            account("k1", "ada@acme.com"),
            "externalId (none) -> g1",
        ),
    ],
    ids=["names", "userName after a rename", "missing externalId"],
)
def test_changed_desired_and_matched_with_other_attributes_is_updated(
    the_person, the_account, changes
):
    result = reconcile(directory(the_person), komeet(the_account), config())

    row = situation_of(result, person="g1")
    assert (row["situation"], row["action"], row["komeet_id"]) == ("changed", "update", "k1")
    assert row["changes"] == changes
    updated = plan_row(result, action="update")
    assert (updated["user_name"], updated["external_id"]) == (the_person["email"], "g1")


def test_unchanged_desired_matched_and_equal_needs_nothing():
    result = reconcile(
        directory(person("g1", "ada@acme.com")),
        komeet(account("k1", "ada@acme.com", external_id="g1")),
        config(),
    )

    row = situation_of(result, person="g1")
    assert (row["situation"], row["action"]) == ("unchanged", "")
    assert result.plan.actions.empty


@pytest.mark.parametrize(
    ("people", "why"),
    [
        ([person("g1", "ada@acme.com", active=False)], "suspended in Google Workspace"),
        ([person("g1", "ada@acme.com", groups=())], "in none of the selected groups"),
        ([], "no directory user has externalId g1"),
    ],
    ids=["inactive", "in no selected group", "gone from the directory"],
)
def test_leaver_an_active_managed_account_of_nobody_desired_is_deactivated(people, why):
    result = reconcile(
        directory(person("g9", "someone@acme.com"), *people),
        komeet(
            account("k1", "ada@acme.com", external_id="g1"),
            account("k9", "someone@acme.com", external_id="g9"),
        ),
        config(max_deactivation_share=1.0),
    )

    row = situation_of(result, account="k1")
    assert (row["situation"], row["action"]) == ("leaver", "deactivate")
    assert why in row["reason"] and "never delete" in row["reason"]
    deactivated = plan_row(result, action="deactivate")
    assert (deactivated["komeet_id"], deactivated["user_name"]) == ("k1", "ada@acme.com")
    assert list(result.reports["leavers"]["komeet_id"]) == ["k1"]


def test_a_protected_leaver_is_reported_and_kept_active():
    result = reconcile(
        directory(person("g9", "someone@acme.com")),
        komeet(
            account("k1", "ceo@acme.com", external_id="g1"),
            account("k9", "someone@acme.com", external_id="g9"),
        ),
        config(protected=["CEO@acme.com"], max_deactivation_share=1.0),
    )

    row = situation_of(result, account="k1")
    assert (row["situation"], row["action"]) == ("leaver", "")
    assert "protected: kept active" in row["reason"]
    assert result.plan.actions.empty
    assert list(result.reports["leavers"]["protected"]) == [True]


@pytest.mark.parametrize(
    ("people", "accounts"),
    [
        (  # a person matching two accounts, by externalId and by email
            [person("g1", "ada@acme.com")],
            [account("k1", "old@acme.com", external_id="g1"), account("k2", "ada@acme.com")],
        ),
        (  # an account matching two people, by one's email and the other's alias
            [
                person("g1", "ada@acme.com"),
                person("g2", "ada.k@acme.com", aliases=("ada@acme.com",)),
            ],
            [account("k1", "ada@acme.com")],
        ),
    ],
    ids=["a person, two accounts", "an account, two people"],
)
def test_disputed_nodes_get_no_action_and_are_listed_in_duplicates(people, accounts):
    result = reconcile(directory(*people), komeet(*accounts), config())

    disputed = result.rows[result.rows["situation"] == "disputed"]
    assert len(disputed) == len(people) + len(accounts)
    assert set(disputed["action"]) == {""}
    assert result.plan.actions.empty
    duplicates = result.reports["duplicates"]
    assert duplicates["cluster_id"].nunique() == 1 and len(duplicates) == len(disputed)
    assert duplicates["reason"].str.contains("no action for any of them").all()


def test_an_update_is_never_planned_onto_a_user_name_another_account_holds():
    """Renamed to an address another account already has: the person is linked to both."""
    result = reconcile(
        directory(person("g1", "ada.king@acme.com", aliases=("ada@acme.com",))),
        komeet(
            account("k1", "ada@acme.com", external_id="g1"),
            account("k2", "ada.king@acme.com"),
        ),
        config(),
    )

    assert set(result.rows["situation"]) == {"disputed"}
    assert result.plan.actions.empty


@pytest.mark.parametrize(
    ("the_person", "error"),
    [
        (person("g1", "not an address"), "invalid_email"),
        (person("g1", "ada@elsewhere.com"), "outside_domain"),
        (person("g1", "ada@acme.com", family=None), "missing_name"),
    ],
)
def test_invalid_people_are_listed_in_errors_and_their_account_is_untouched(the_person, error):
    result = reconcile(
        directory(the_person),
        komeet(account("k1", "ada@acme.com", external_id="g1", family="Other")),
        config(),
    )

    row = situation_of(result, person="g1")
    assert (row["situation"], row["action"]) == ("invalid", "")
    assert result.plan.actions.empty
    assert list(result.reports["errors"]["error"]) == [error]


def test_unmanaged_an_account_without_external_id_that_nobody_matches_is_never_touched():
    result = reconcile(
        directory(person("g1", "ada@acme.com")),
        komeet(
            account("k1", "ada@acme.com", external_id="g1"),
            account("k2", "shared-mailbox@acme.com"),
        ),
        config(),
    )

    row = situation_of(result, account="k2")
    assert (row["situation"], row["action"]) == ("unmanaged", "")
    assert result.plan.actions.empty


def test_accounts_of_other_domains_are_neither_read_nor_written():
    result = reconcile(
        directory(person("g1", "ada@acme.com")),
        komeet(account("k1", "ada@globex.com", external_id="g7")),
        config(),
    )

    assert result.stats["komeet_accounts_outside_domain"] == 1
    assert result.rows["komeet_id"].dropna().empty
    assert list(result.plan.actions["action"]) == ["create"]


def test_an_alias_domain_is_the_domain_s_own():
    result = reconcile(
        directory(person("g1", "ada@acme.io")),
        komeet(account("k1", "ada@acme.io", external_id="g1")),
        config(alias_domains=["acme.io"]),
    )

    assert situation_of(result, person="g1")["situation"] == "unchanged"


def test_out_of_scope_active_people_in_no_selected_group_are_reported_not_created():
    result = reconcile(
        directory(person("g1", "ada@acme.com"), person("g2", "bob@acme.com", groups=())),
        komeet(),
        config(),
    )

    assert situation_of(result, person="g2")["situation"] == "out_of_scope"
    assert list(result.reports["out_of_scope"]["email"]) == ["bob@acme.com"]
    assert list(result.plan.actions["email"]) == ["ada@acme.com"]


def test_a_komeet_account_that_could_not_be_read_is_listed_in_errors():
    accounts = komeet(account("k1", "ada@acme.com", external_id="g1"))
    unreadable = accounts.unreadable.astype(object)
    unreadable.loc[0] = ["komeet", "k2", None, "invalid_record", "record 1: no id"]
    result = reconcile(
        directory(person("g1", "ada@acme.com")),
        type(accounts).of(accounts.accounts, unreadable),
        config(),
    )

    errors = result.reports["errors"]
    assert list(errors["error"]) == ["invalid_record"]
    assert (errors["reason"] == "this Komeet account is left as it is").all()


def test_node_keys_are_the_normalised_keys_matching_links_by():
    keys = node_keys(
        directory(
            person(
                "g1", " Ada@ACME.com", stable_id=" x1 ", employee_id="42", aliases=("AL@acme.com",)
            ),
            person("g2", "not an address", employee_id=" "),
        ),
        komeet(
            account("k1", "ADA@acme.com", external_id="x1", employee_id="42"),
            account("k2", "bob@elsewhere.com", external_id="x2"),  # outside the domain
        ),
        config(),
    )

    found = {(row.person, row.id, row.namespace, row.value) for row in keys.itertuples()}
    assert found == {
        (True, "g1", "id", "x1"),
        (True, "g1", "email", "ada@acme.com"),
        (True, "g1", "email", "al@acme.com"),
        (True, "g1", "employee id", "42"),
        (True, "g2", "id", "g2"),  # an invalid address is no key; a blank employee id neither
        (False, "k1", "id", "x1"),
        (False, "k1", "email", "ada@acme.com"),
        (False, "k1", "employee id", "42"),
    }
