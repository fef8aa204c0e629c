"""One scenario per situation and per guard (ARCHITECTURE.md), through `komeet-sync audit`
on hand-written data in the sources' formats."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.exports import Audit, account, google_user, member, scim_group, scim_user

ALL = "all@acme.com"


@pytest.fixture
def audit(tmp_path) -> Audit:
    return Audit(tmp_path / "audit")


def only(frame: pd.DataFrame, **where: str) -> pd.Series:
    for column, value in where.items():
        frame = frame[frame[column] == value]
    assert len(frame) == 1, frame
    return frame.iloc[0]


def test_joiner_is_created_with_its_stable_id(cli, audit):
    code, summary = audit.run(
        cli,
        users=[google_user("1", "Jane.Doe@ACME.com", "Jane", "Doe")],
        members={ALL: [member("1", "jane.doe@acme.com")]},
    )
    assert code == 0 and summary["actions"] == {"create": 1}
    row = only(audit.report("plan"))
    assert (row.action, row.email, row.user_name, row.external_id, row.komeet_id) == (
        "create",
        "jane.doe@acme.com",
        "jane.doe@acme.com",
        "1",
        "",
    )
    assert (row.given_name, row.family_name) == ("Jane", "Doe")
    assert "member of all@acme.com" in row.reason
    assert only(audit.report("joiners")).situation == "joiner"


def test_returner_is_reactivated(cli, audit):
    audit.run(
        cli,
        users=[google_user("1", "jane@acme.com")],
        members={ALL: [member("1", "")]},
        komeet=[account("k1", "jane@acme.com", "1", active=False)],
    )
    row = only(audit.report("plan"))
    assert (row.action, row.komeet_id) == ("reactivate", "k1")
    assert only(audit.report("joiners")).situation == "returner"


@pytest.mark.parametrize(
    ("user", "komeet", "changes", "rule"),
    [
        (
            google_user("1", "jane@acme.com", "Jane", "Smith"),
            account("k1", "jane@acme.com", "1", "Jane", "Doe"),
            "familyName Doe -> Smith",
            "matched by externalId",
        ),
        # Renamed, and the account was made before we set externalIds: rule 3 finds it.
        (
            google_user("1", "jane.smith@acme.com", aliases=["jane.doe@acme.com"]),
            account("k1", "Jane.Doe@acme.com"),
            "userName jane.doe@acme.com -> jane.smith@acme.com; externalId (none) -> 1",
            "matched by alias (renamed)",
        ),
        (
            google_user("1", "jane@acme.com"),
            account("k1", "JANE@acme.com"),
            "externalId (none) -> 1",
            "matched by email",
        ),
    ],
)
def test_changed_is_updated(cli, audit, user, komeet, changes, rule):
    audit.run(cli, users=[user], members={ALL: [member("1", "")]}, komeet=[komeet])
    row = only(audit.report("plan"))
    assert (row.action, row.komeet_id, row.changes) == ("update", "k1", changes)
    assert row.reason.startswith(rule)
    assert only(audit.report("updates")).changes == changes


def test_unchanged_needs_nothing(cli, audit):
    code, summary = audit.run(
        cli,
        users=[google_user("1", "jane@acme.com", "Jane", "Doe")],
        members={ALL: [member("1", "")]},
        komeet=[account("k1", "Jane@Acme.com", "1", "Jane", "Doe")],
    )
    assert code == 0 and summary["actions"] == {} and summary["counts"]["plan"] == 0


@pytest.mark.parametrize(
    ("users", "members", "reason"),
    [
        (
            [google_user("1", "jane@acme.com", suspended=True)],
            [member("1", "")],
            "suspended in Google Workspace",
        ),
        (
            [google_user("1", "jane@acme.com", archived=True)],
            [member("1", "")],
            "archived in Google Workspace",
        ),
        ([google_user("1", "jane@acme.com")], [], "in none of the selected groups"),
        ([], [], "no directory user has externalId 1 or email jane@acme.com"),
    ],
)
def test_leaver_is_deactivated_never_deleted(cli, audit, users, members, reason):
    keep = [google_user("2", "keep@acme.com")]
    komeet = [account("k1", "jane@acme.com", "1")] + [
        account(f"k{i}", f"u{i}@acme.com", f"x{i}") for i in range(2, 8)
    ]
    audit.run(cli, users=users + keep, members={ALL: [*members, member("2", "")]}, komeet=komeet)
    plan = audit.report("plan")
    row = only(plan, komeet_id="k1")
    assert row.action == "deactivate" and reason in row.reason
    assert set(plan["action"]) <= {"create", "deactivate"}  # never anything but deactivate
    assert only(audit.report("leavers"), komeet_id="k1").protected == "False"


def test_protected_accounts_are_never_deactivated(cli, audit):
    audit.args = ["--protect", "Boss@acme.com"]
    audit.run(
        cli,
        users=[],
        members={ALL: [member("9", "x@acme.com")]},
        komeet=[account("k1", "boss@acme.com", "1")],
    )
    assert audit.report("plan").empty
    row = only(audit.report("leavers"))
    assert row.protected == "True" and "protected: kept active" in row.reason


@pytest.mark.parametrize(
    ("users", "komeet", "shared"),
    [
        # one person, two accounts (same address in another case)
        (
            [google_user("1", "jane@acme.com")],
            [account("k1", "jane@acme.com", "1"), account("k2", "Jane@ACME.com")],
            "share email jane@acme.com",
        ),
        # one account, two people (its externalId is one's, its userName the other's)
        (
            [google_user("1", "jane@acme.com"), google_user("2", "jane.doe@acme.com")],
            [account("k1", "jane.doe@acme.com", "1")],
            "share id 1",
        ),
        # two directory users sharing an employee id: nobody gets two accounts
        (
            [
                google_user(
                    "1", "jane@acme.com", externalIds=[{"type": "organization", "value": "E7"}]
                ),
                google_user(
                    "2", "jdoe@acme.com", externalIds=[{"type": "organization", "value": "E7"}]
                ),
            ],
            [],
            "share employee id E7",
        ),
    ],
)
def test_disputed_clusters_get_no_action(cli, audit, users, komeet, shared):
    members = {ALL: [member(u["id"], "") for u in users]}
    audit.run(cli, users=users, members=members, komeet=komeet)
    assert audit.report("plan").empty
    duplicates = audit.report("duplicates")
    assert len(duplicates) == len(users) + len(komeet)
    assert duplicates["cluster_id"].nunique() == 1
    assert all(shared in reason for reason in duplicates["reason"])
    assert set(duplicates["source"]) == {"google"} | ({"komeet"} if komeet else set())


@pytest.mark.parametrize(
    ("user", "error", "detail"),
    [
        (google_user("1", "jane..doe@acme.com"), "invalid_email", "two periods in a row"),
        (google_user("1", "jane@globex.com"), "outside_domain", "its domain is not acme.com"),
        (google_user("1", "jane@acme.com", "", "Doe"), "missing_name", "givenName and familyName"),
    ],
)
def test_invalid_people_are_reported_and_their_account_untouched(cli, audit, user, error, detail):
    audit.run(
        cli,
        users=[user],
        members={ALL: [member("1", "")]},
        komeet=[account("k1", "jane@acme.com", "1", "Old", "Name")],
    )
    assert audit.report("plan").empty
    row = only(audit.report("errors"))
    assert (row.source, row.account_id, row.email, row.error) == (
        "google",
        "1",
        user["primaryEmail"],
        error,
    )
    assert detail in row.detail


def test_members_outside_the_domain_are_reported(cli, audit):
    audit.run(
        cli,
        users=[google_user("1", "jane@acme.com")],
        members={
            ALL: [
                member("1", ""),
                member("77", "pat@gmail.com"),
                member("88", "eng@acme.com", "GROUP"),
            ]
        },
    )
    row = only(audit.report("errors"))
    assert (row.account_id, row.email, row.error) == ("77", "pat@gmail.com", "outside_domain")
    assert "member of all@acme.com" in row.detail


def test_unmanaged_accounts_are_never_touched(cli, audit):
    audit.run(
        cli,
        users=[google_user("1", "jane@acme.com")],
        members={ALL: [member("1", "")]},
        komeet=[
            account("k1", "jane@acme.com", "1"),
            account("k9", "reception@acme.com"),
            account("k8", "other@globex.com", "5"),
        ],
    )
    assert audit.report("plan").empty
    _code, summary = audit.run(
        cli,
        users=[google_user("1", "jane@acme.com")],
        members={ALL: [member("1", "")]},
        komeet=[account("k8", "other@globex.com", "5")],
    )
    assert summary["komeet_accounts_outside_domain"] == 1


def test_out_of_scope_lists_active_users_in_no_selected_group(cli, audit):
    audit.run(
        cli,
        users=[
            google_user("1", "jane@acme.com"),
            google_user("2", "joe@acme.com"),
            google_user("3", "sus@acme.com", suspended=True),
        ],
        members={ALL: [member("1", "")]},
    )
    row = only(audit.report("out_of_scope"))
    assert (row.email, row.account_id) == ("joe@acme.com", "2")
    assert "none of the selected groups (all@acme.com)" in row.reason


def test_alias_domains_belong_to_the_domain(cli, audit):
    audit.args = ["--alias-domain", "acme.io"]
    audit.run(
        cli,
        users=[google_user("1", "jane@acme.io")],
        members={ALL: [member("1", "")]},
        komeet=[account("k2", "gone@acme.io", "2")],
    )
    plan = audit.report("plan")
    assert sorted(plan["action"]) == ["create", "deactivate"]


def test_scim_source_without_groups_takes_every_active_user(cli, audit):
    audit.groups = []
    audit.run(
        cli,
        scim_users=[
            scim_user("s1", "Anna@acme.com", "Anna", "A", external_id="e1"),
            scim_user("s2", "ben@acme.com", "Ben", "B", active="False"),
            scim_user("s3", "cara@acme.com", "Cara", "C"),
        ],
        komeet=[account("k2", "ben@acme.com", "e2")],
    )
    plan = audit.report("plan").set_index("email")
    assert plan.loc["anna@acme.com", "external_id"] == "e1"  # the IdP's externalId
    assert plan.loc["cara@acme.com", "external_id"] == "s3"  # else the staged resource id
    assert plan.loc["ben@acme.com", "action"] == "deactivate"
    assert "inactive in the IdP" in plan.loc["ben@acme.com", "reason"]


def test_scim_groups_are_selected_by_name_with_nested_groups(cli, audit):
    audit.groups = ["Komeet Users"]
    audit.run(
        cli,
        scim_users=[scim_user(f"s{i}", f"u{i}@acme.com") for i in range(1, 4)],
        scim_groups={
            "Resources": [
                scim_group("g1", "komeet users", ["s1", "g2"]),
                scim_group("g2", "Nested", ["s2"]),
            ]
        },
    )
    assert sorted(audit.report("plan")["email"]) == ["u1@acme.com", "u2@acme.com"]
    assert only(audit.report("out_of_scope")).email == "u3@acme.com"


# --- guards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "error"),
    [({}, "group_not_found"), ({ALL: []}, "group_empty")],
)
def test_a_missing_or_empty_selected_group_holds_the_domain(cli, audit, members, error):
    code, summary = audit.run(
        cli,
        users=[google_user("1", "jane@acme.com")],
        members=members,
        komeet=[account("k1", "jane@acme.com", "1")],
    )
    assert code == 3 and summary["held"]
    # Everyone in the group now looks out of scope, so the budget holds it too.
    holds = pd.DataFrame(summary["hold_reasons"])
    assert list(holds["guard"]) == ["group_missing", "deactivation_budget"]
    hold = only(holds, guard="group_missing")
    assert not hold.approvable and "all@acme.com" in hold.detail
    assert only(audit.report("errors"), error=error).account_id == ALL


def test_deactivations_over_the_budget_hold_the_plan(cli, audit):
    audit.args = ["--max-deactivations", "2"]
    komeet = [account(f"k{i}", f"u{i}@acme.com", str(i)) for i in range(20)]
    users = [google_user(str(i), f"u{i}@acme.com") for i in range(20)]
    members = {ALL: [member(str(i), "") for i in range(17)]}  # three left the group
    code, summary = audit.run(cli, users=users, members=members, komeet=komeet)
    assert code == 3
    hold = only(pd.DataFrame(summary["hold_reasons"]))
    assert hold.guard == "deactivation_budget" and hold.approvable
    assert (hold.measured, hold.limit) == (3, 2)
    assert "3 deactivations planned, 1 over the budget of 2" in hold.detail

    audit.args = ["--max-deactivations", "3"]  # 3 of 20 is 15%, under the 20% share
    code, summary = audit.run(cli, users=users, members=members, komeet=komeet)
    assert code == 0 and not summary["held"]

    audit.args = ["--max-deactivation-share", "0.1"]  # 10% of 20 is 2
    code, summary = audit.run(cli, users=users, members=members, komeet=komeet)
    assert code == 3 and summary["hold_reasons"][0]["limit"] == 2


def test_a_directory_that_shrank_holds_the_plan(cli, audit):
    users = [google_user(str(i), f"u{i}@acme.com") for i in range(10)]
    members = {ALL: [member(str(i), "") for i in range(10)]}
    audit.args = ["--last-good-count", "20"]
    code, summary = audit.run(cli, users=users, members=members)
    assert code == 3
    hold = only(pd.DataFrame(summary["hold_reasons"]))
    assert hold.guard == "shrink" and hold.approvable
    assert "shrank from 20 to 10 desired people (50.0%)" in hold.detail
    audit.args = ["--last-good-count", "12"]  # 16.7%: under the 20% limit
    assert audit.run(cli, users=users, members=members)[0] == 0


def test_the_plan_id_names_exactly_one_plan(cli, audit):
    users = [google_user("1", "jane@acme.com"), google_user("2", "joe@acme.com")]
    members = {ALL: [member("1", ""), member("2", "")]}
    _, first = audit.run(cli, users=users, members=members)
    _, again = audit.run(cli, users=list(reversed(users)), members=members)
    assert first["plan_id"] == again["plan_id"]
    _, other = audit.run(cli, users=users[:1], members=members)
    assert other["plan_id"] != first["plan_id"]


def test_scim_users_carry_their_department_and_creation_time():
    from komeet_sync.sources.scim.resources import snapshot

    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    found = snapshot(
        [
            scim_user(
                "r1",
                "ana@globex.com",
                schemas=["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
                meta={"resourceType": "User", "created": "2024-05-06T07:08:09Z"},
                **{enterprise: {"department": "Finance"}},
            ),
            scim_user("r2", "ben@globex.com"),
        ],
        [],
        (),
    ).users.set_index("account_id")

    assert found.loc["r1", "org_unit"] == "Finance"
    assert found.loc["r1", "created_at"].startswith("2024-05-06T07:08:09")
    assert found.loc["r2", ["org_unit", "created_at", "last_login_at"]].isna().all()
