"""The guards that decide on a plan (ARCHITECTURE.md, "Guards"): each stops writes and says
why. A missing or empty selected group stops the domain (no approval lifts it); a directory
that shrank beyond the share since the last good snapshot, and deactivations over the
budget (the smaller of 500 and 20% of the active managed accounts, by default), hold the plan
until an admin approves it. The guards applied elsewhere (a disabled domain, a partial read)
are tested where they act: ``komeet.apply``, the sources' readers."""

from __future__ import annotations

import pandas as pd
import pytest

from komeet_sync.engine import guards
from komeet_sync.engine.reconcile import reconcile
from komeet_sync.model.holds import Guard
from tests.support.frames import account, config, directory, komeet, person

NO_GROUP_MISSING = pd.DataFrame(columns=["group", "error", "detail"])


def holds(**options):
    """The holds on a plan of ``deactivations`` for a domain of ``active_managed``
    accounts, ``desired`` people now and ``last_good_desired`` at the last good sync."""
    settings = {key: options.pop(key) for key in list(options) if key.startswith("max_")}
    arguments = {
        "missing_groups": NO_GROUP_MISSING,
        "desired": 100,
        "last_good_desired": None,
        "deactivations": 0,
        "active_managed": 100,
    } | options
    return guards.evaluate(config(**settings), **arguments)


def test_the_default_budget_is_the_smaller_of_500_and_a_fifth_of_the_active_managed():
    assert guards.deactivation_budget(config(), 100) == 20
    assert guards.deactivation_budget(config(), 10_000) == 500
    assert guards.deactivation_budget(config(), 4) == 0  # a fifth of 4, rounded down


def test_deactivations_within_the_budget_pass_and_one_more_holds():
    assert holds(deactivations=20) == ()
    [hold] = holds(deactivations=21)

    assert (hold.guard, hold.approvable, hold.measured, hold.limit) == (
        Guard.DEACTIVATION_BUDGET,
        True,
        21,
        20,
    )
    assert "21 deactivations planned, 1 over the budget of 20" in hold.detail


def test_the_budget_follows_the_domain_s_thresholds():
    assert holds(deactivations=5, max_deactivations=5) == ()
    assert [h.guard for h in holds(deactivations=6, max_deactivations=5)] == [
        Guard.DEACTIVATION_BUDGET
    ]
    assert holds(deactivations=50, max_deactivation_share=0.5) == ()


def test_a_directory_that_shrank_beyond_the_share_since_the_last_good_sync_holds():
    assert holds(desired=80, last_good_desired=100) == ()  # 20%: at the limit
    [hold] = holds(desired=79, last_good_desired=100)

    assert (hold.guard, hold.approvable, hold.measured) == (Guard.SHRINK, True, 0.21)
    assert "shrank from 100 to 79 desired people (21.0%)" in hold.detail


def test_without_a_last_good_sync_there_is_nothing_to_shrink_from():
    assert holds(desired=0, last_good_desired=None) == ()


def test_a_missing_group_stops_the_domain_and_no_approval_lifts_it():
    missing = pd.DataFrame(
        [("all@acme.com", "group_not_found", "selected group 'all@acme.com' does not exist")],
        columns=["group", "error", "detail"],
    )

    [hold] = holds(missing_groups=missing)

    assert (hold.guard, hold.approvable) == (Guard.GROUP_MISSING, False)
    assert "does not exist" in hold.detail


@pytest.mark.parametrize("missing", [("all@acme.com",), ()], ids=["not found", "empty"])
def test_reconcile_holds_every_action_of_a_domain_whose_group_is_missing_or_empty(missing):
    result = reconcile(
        directory(person("g1", "ada@acme.com", groups=()), missing=missing),
        komeet(account("k1", "bob@acme.com", external_id="g2")),
        config(max_deactivation_share=1.0),
    )

    assert [hold.guard for hold in result.plan.holds] == [Guard.GROUP_MISSING]
    assert result.plan.held


def test_reconcile_counts_the_deactivations_against_the_active_managed_accounts():
    people = [person(f"g{n}", f"p{n}@acme.com") for n in range(8)]
    accounts = [account(f"k{n}", f"p{n}@acme.com", external_id=f"g{n}") for n in range(10)]

    result = reconcile(directory(*people), komeet(*accounts), config())

    # 10 active managed accounts: a budget of 2, and 2 leavers.
    assert result.plan.counts() == {"deactivate": 2} and not result.plan.held
    held = reconcile(directory(*people[:7]), komeet(*accounts), config())
    assert [hold.guard for hold in held.plan.holds] == [Guard.DEACTIVATION_BUDGET]


def test_incremental_deactivations_share_the_budget_over_the_window():
    domain = config(max_deactivations=500, max_deactivation_share=0.2)
    window = "the last hour"
    # 20% of 100 accounts: 20 a window; 15 already sent.
    assert guards.rolling_budget(
        domain, active_managed=100, spent=15, deactivations=5, window=window
    ) == (5, None)
    allowed, hold = guards.rolling_budget(
        domain, active_managed=100, spent=15, deactivations=8, window=window
    )
    assert allowed == 5 and hold is not None
    assert hold.guard is Guard.DEACTIVATION_BUDGET and hold.approvable
    assert (hold.measured, hold.limit) == (23, 20)
    assert "23 deactivations within the last hour, 3 over the budget of 20" in hold.detail
    # Spent beyond the budget (an approved plan): nothing more goes without approval.
    assert (
        guards.rolling_budget(domain, active_managed=100, spent=30, deactivations=1, window=window)[
            0
        ]
        == 0
    )


def test_without_a_whole_sync_the_incremental_budget_is_nil_and_says_what_to_run():
    allowed, hold = guards.rolling_budget(
        config(), active_managed=None, spent=0, deactivations=1, window="the last hour"
    )
    assert allowed == 0 and hold is not None
    assert "no whole sync has counted yet: run `komeet-sync sync acme.com` once" in hold.detail
    assert guards.rolling_budget(
        config(), active_managed=None, spent=0, deactivations=0, window="the last hour"
    ) == (0, None)
