"""Invariants of the engine over generated directories and Komeet states (hypothesis)."""

from __future__ import annotations

import os

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from komeet_sync.engine.reconcile import reconcile
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.emails import normalise_emails
from komeet_sync.model.frames import KOMEET_ACCOUNTS, Source
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts

CONFIG = DomainConfig.create(
    "acme.com",
    "google",
    groups=["all@acme.com"],
    alias_domains=["acme.io"],
    protected=["boss@acme.com"],
    require_admin=False,
)
LOCALS = ["ann", "bob", "cy", "boss", "dee"]
DOMAINS = ["acme.com", "ACME.com", "acme.io", "globex.com"]


def cased(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), text.capitalize()])


def address() -> st.SearchStrategy[str]:
    valid = st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.sampled_from(LOCALS).flatmap(cased),
        st.sampled_from(DOMAINS),
    )
    return st.one_of(valid, valid, valid, st.sampled_from(["ann..x@acme.com", "nope", " "]))


people = st.lists(
    st.fixed_dictionaries(
        {
            "email": address(),
            "given_name": st.sampled_from(["Ann", "Bob", ""]),
            "family_name": st.sampled_from(["Xu", "Yi"]),
            "active": st.booleans(),
            "employee_id": st.sampled_from([None, None, "E1", "E2"]),
            "aliases": st.lists(address(), max_size=2),
            "in_group": st.booleans(),
        }
    ),
    max_size=7,
)
accounts = st.lists(
    st.fixed_dictionaries(
        {
            "user_name": address(),
            "external_id": st.sampled_from([None, "1", "2", "3", "4", "9"]),
            "given_name": st.sampled_from(["Ann", "Bob", None]),
            "family_name": st.sampled_from(["Xu", "Yi"]),
            "active": st.booleans(),
            "employee_id": st.sampled_from([None, None, "E1"]),
        }
    ),
    max_size=7,
)


def snapshot_of(generated: list[dict], order: list[int] | None = None) -> DirectorySnapshot:
    rows = [dict(person, account_id=str(i + 1)) for i, person in enumerate(generated)]
    if order is not None:
        rows = [rows[i] for i in order]
    users = pd.DataFrame(
        [
            {
                "source": "google",
                "account_id": r["account_id"],
                "stable_id": r["account_id"],
                "email": r["email"],
                "given_name": r["given_name"],
                "family_name": r["family_name"],
                "active": r["active"],
                "inactive_reason": None if r["active"] else "suspended",
                "employee_id": r["employee_id"],
            }
            for r in rows
        ],
        columns=[
            "source",
            "account_id",
            "stable_id",
            "email",
            "given_name",
            "family_name",
            "active",
            "inactive_reason",
            "employee_id",
        ],
    )
    aliases = pd.DataFrame(
        [(r["account_id"], alias) for r in rows for alias in r["aliases"]],
        columns=["account_id", "alias"],
    )
    members = pd.DataFrame(
        [("all@acme.com", r["account_id"], None, "USER") for r in rows if r["in_group"]]
        + [("all@acme.com", "999", "someone@acme.com", "USER")],  # keeps the group non-empty
        columns=["group", "member_id", "member_email", "member_type"],
    )
    groups = pd.DataFrame({"group": ["all@acme.com"], "found": [True]})
    return DirectorySnapshot.of(Source.GOOGLE, users, aliases, members, groups)


def komeet_of(generated: list[dict], order: list[int] | None = None) -> pd.DataFrame:
    rows = [dict(a, komeet_id=f"k{i}", email=None) for i, a in enumerate(generated)]
    if order is not None:
        rows = [rows[i] for i in order]
    return pd.DataFrame(rows, columns=list(KOMEET_ACCOUNTS)).astype(KOMEET_ACCOUNTS)


def apply(plan: pd.DataFrame, komeet: pd.DataFrame) -> pd.DataFrame:
    """What Komeet holds once every action of the plan is applied (the test's oracle)."""
    state = komeet.set_index("komeet_id", drop=False)
    for i, action in enumerate(plan.itertuples()):
        target = {
            "user_name": action.user_name,
            "external_id": action.external_id,
            "given_name": action.given_name,
            "family_name": action.family_name,
        }
        if action.action == "create":
            created = pd.DataFrame(
                [
                    {
                        **target,
                        "komeet_id": f"new{i}",
                        "email": None,
                        "active": True,
                        "employee_id": None,
                    }
                ]
            )
            state = pd.concat([state, created.set_index("komeet_id", drop=False)])
        elif action.action in ("update", "reactivate"):
            for column, value in target.items():
                state.loc[action.komeet_id, column] = value
            state.loc[action.komeet_id, "active"] = True
        elif action.action == "deactivate":
            state.loc[action.komeet_id, "active"] = False
        else:
            raise AssertionError(f"unexpected action {action.action}")
    return state.reset_index(drop=True).astype(KOMEET_ACCOUNTS)


# HYPOTHESIS_PROFILE=thorough explores twenty times more cases than the default run (`make
# test` runs the default: each example reconciles, about a tenth of a second).
settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
PROPERTY = settings()


@PROPERTY
@given(people, accounts)
def test_applying_the_plan_then_reconciling_again_yields_no_action(directory, komeet):
    snapshot = snapshot_of(directory)
    first = reconcile(snapshot, KomeetAccounts.of(komeet_of(komeet)), CONFIG)
    after = apply(first.plan.actions, komeet_of(komeet))
    second = reconcile(snapshot, KomeetAccounts.of(after), CONFIG)
    assert second.plan.actions.empty, second.plan.actions.to_dict("records")


@PROPERTY
@given(people, accounts)
def test_nobody_gets_two_creates_nor_a_create_beside_an_existing_account(directory, komeet):
    result = reconcile(snapshot_of(directory), KomeetAccounts.of(komeet_of(komeet)), CONFIG)
    plan = result.plan.actions
    assert plan["komeet_id"].dropna().is_unique  # one action per account at most
    creates = plan[plan["action"] == "create"]
    assert creates["external_id"].is_unique and creates["user_name"].is_unique
    # No create for a person whose email or alias already has an account, in any case.
    accounts_frame = komeet_of(komeet)
    held = set(normalise_emails(accounts_frame["user_name"])["email"].dropna()) | {
        str(u).strip().lower() for u in accounts_frame["user_name"]
    }
    rows = result.rows.set_index("node")
    for create in creates.itertuples():
        person = int(create.external_id) - 1
        addresses = {create.user_name} | {
            a
            for a in normalise_emails(pd.Series(directory[person]["aliases"], dtype=object))[
                "email"
            ].dropna()
        }
        assert not addresses & held, (create, rows)


@PROPERTY
@given(people, accounts)
def test_no_action_targets_a_user_name_another_account_holds(directory, komeet):
    accounts_frame = komeet_of(komeet)
    result = reconcile(snapshot_of(directory), KomeetAccounts.of(accounts_frame), CONFIG)
    plan = result.plan.actions
    holders = pd.DataFrame(
        {
            "komeet_id": accounts_frame["komeet_id"],
            "user_name": normalise_emails(accounts_frame["user_name"])["email"].fillna(
                accounts_frame["user_name"].str.strip().str.lower()
            ),
        }
    )
    targets = plan[plan["action"] != "deactivate"]
    assert targets["user_name"].is_unique
    clash = targets.merge(holders, on="user_name", suffixes=("", "_holder"))
    assert (clash["komeet_id"] == clash["komeet_id_holder"]).all(), clash


@PROPERTY
@given(people, accounts)
def test_joiners_and_leavers_never_overlap(directory, komeet):
    result = reconcile(snapshot_of(directory), KomeetAccounts.of(komeet_of(komeet)), CONFIG)
    joiners, leavers = result.reports["joiners"], result.reports["leavers"]
    assert not set(joiners["email"]) & set(leavers["email"])
    assert not set(joiners["komeet_id"].dropna()) & set(leavers["komeet_id"])


@PROPERTY
@given(people, accounts)
def test_protected_and_unmanaged_accounts_are_never_deactivated(directory, komeet):
    accounts_frame = komeet_of(komeet)
    result = reconcile(snapshot_of(directory), KomeetAccounts.of(accounts_frame), CONFIG)
    deactivated = set(result.plan.actions.query("action == 'deactivate'")["komeet_id"])
    unmanaged = set(accounts_frame.loc[accounts_frame["external_id"].isna(), "komeet_id"])
    protected = set(
        accounts_frame.loc[
            normalise_emails(accounts_frame["user_name"])["email"].isin(CONFIG.protected),
            "komeet_id",
        ]
    )
    assert not deactivated & (unmanaged | protected)


@PROPERTY
@given(people, accounts, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_the_order_of_input_rows(directory, komeet, random):
    first = reconcile(snapshot_of(directory), KomeetAccounts.of(komeet_of(komeet)), CONFIG)
    people_order = random.sample(range(len(directory)), len(directory))
    account_order = random.sample(range(len(komeet)), len(komeet))
    second = reconcile(
        snapshot_of(directory, people_order),
        KomeetAccounts.of(komeet_of(komeet, account_order)),
        CONFIG,
    )
    assert first.plan.plan_id == second.plan.plan_id
    pd.testing.assert_frame_equal(first.plan.actions, second.plan.actions)
    for name, report in first.reports.items():
        pd.testing.assert_frame_equal(
            report.sort_values(list(report.columns)).reset_index(drop=True),
            second.reports[name].sort_values(list(report.columns)).reset_index(drop=True),
            obj=name,
        )
