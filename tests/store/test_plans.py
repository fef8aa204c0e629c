"""Stored plans and where each stands (``store.plans``), on SQLite and PostgreSQL: a dry run's
plan is stored as such and becomes a sync's plan when a sync makes it again, with its
approval; a sync's plan supersedes its domain's plans not applied in full; every state is
read from one rule."""

from __future__ import annotations

import pandas as pd
import pytest

from komeet_sync.engine.planning import build_plan
from komeet_sync.model.holds import Guard, Hold
from komeet_sync.model.plan import PLAN_COLUMNS, Plan
from komeet_sync.store.database import open_database
from komeet_sync.store.ledger import Ledger, Outcome, Status
from komeet_sync.store.plans import PlanError, PlanState, PlanStore, Scope
from tests.support.rows_read import rows_read

DOMAIN = "acme.com"
BUDGET = Hold(Guard.DEACTIVATION_BUDGET, "3 deactivations planned, 2 over the budget", True, 3, 1)
MISSING = Hold(Guard.GROUP_MISSING, "the group all@acme.com does not exist", False, 1, 0)


@pytest.fixture
def plans(database_url):
    engine = open_database(database_url)
    yield PlanStore(engine)
    engine.dispose()


def plan_of(
    *names: str,
    domain: str = DOMAIN,
    holds: tuple[Hold, ...] = (),
    action: str = "create",
    part: bool = False,
) -> Plan:
    """A plan that creates an account for each of ``names`` (or another ``action``);
    ``part``: an incremental sync's."""
    actions = pd.DataFrame(
        [
            {
                "action": action,
                "email": f"{name}@{domain}",
                "komeet_id": "",
                "user_name": f"{name}@{domain}",
                "external_id": f"g-{name}",
                "given_name": name.title(),
                "family_name": "Person",
                "changes": "",
                "reason": "in the selected group, no account",
            }
            for name in names
        ],
        columns=list(PLAN_COLUMNS),
    )
    return build_plan(domain, actions, holds, part=part)


def save(
    plans: PlanStore,
    plan: Plan,
    *,
    dry_run: bool = False,
    reports: str = "first",
    active_managed: int | None = None,
    scope: Scope = Scope.DOMAIN,
):
    return plans.save(
        plan,
        source="google",
        snapshot_at=None,
        desired=10,
        reports=reports,
        dry_run=dry_run,
        scope=scope,
        active_managed=active_managed,
    )


def apply_as(plans: PlanStore, plan_id: str, *statuses: Status, finish: bool = True) -> None:
    """An application of the plan whose actions ended with ``statuses`` (the rest pending)."""
    ledger = Ledger(plans.engine)
    application = ledger.open_application(plan_id, "test", again=True)
    assert application is not None
    entries = ledger.to_send(application)
    ledger.record(
        (entry.key, Outcome(status, status.value, attempts=1))
        for entry, status in zip(entries, statuses, strict=False)
    )
    if finish:
        assert ledger.finish(application)


def states(plans: PlanStore) -> dict[str, str]:
    listed = plans.list()
    return dict(zip(listed["plan_id"], listed["state_text"], strict=True))


def test_a_dry_run_s_plan_is_stored_as_such_and_a_sync_that_makes_it_again_makes_it_its_own(
    plans,
):
    plan = plan_of("ada", "ben", holds=(BUDGET,))
    dry = save(plans, plan, dry_run=True, reports="the dry run's folder")
    assert dry.dry_run and plans.status(dry).state is PlanState.DRY_RUN
    assert states(plans) == {plan.plan_id: "dry run (held)"}
    assert "was made by a dry run: approve it with" in plans.status(dry).next_step()

    approved = plans.approve(plan.plan_id, "Jane Admin")
    assert approved.approved_by == "Jane Admin" and approved.dry_run
    assert states(plans) == {plan.plan_id: "dry run (approved)"}
    assert "`komeet-sync sync acme.com` applies it" in plans.status(approved).next_step()
    # A second dry run of the same state changes nothing.
    assert save(plans, plan, dry_run=True, reports="another dry run") == approved

    synced = save(plans, plan, reports="the sync's folder")

    assert not synced.dry_run and synced.approved_by == "Jane Admin"
    assert synced.reports == "the sync's folder"  # the sync's reports, not the dry run's
    assert synced.may_apply and plans.status(synced).state is PlanState.APPROVED
    # Stored again by a dry run, a sync's plan stays a sync's plan.
    assert not save(plans, plan, dry_run=True).dry_run


def test_a_sync_s_plan_supersedes_the_domain_s_plans_not_applied_in_full(plans):
    never = save(plans, plan_of("ada"))
    held = save(plans, plan_of("ben", holds=(BUDGET,)))
    interrupted = save(plans, plan_of("ada", "ben", "cleo"))
    apply_as(plans, interrupted.plan_id, Status.APPLIED, finish=False)
    applied = save(plans, plan_of("dan"))
    apply_as(plans, applied.plan_id, Status.APPLIED)
    failed = save(plans, plan_of("eve", "fay"))
    apply_as(plans, failed.plan_id, Status.APPLIED, Status.FAILED)
    elsewhere = save(plans, plan_of("ada", domain="globex.com"))
    dry = save(plans, plan_of("gus"), dry_run=True)
    # Superseded by the domain's latest sync's plan; the dry run superseded nothing.
    assert plans.get(held.plan_id).superseded_by == failed.plan_id
    assert plans.get(interrupted.plan_id).superseded_by == failed.plan_id

    latest = save(plans, plan_of("ada", "ben", "cleo", "dan", "eve"))

    assert states(plans) == {
        never.plan_id: f"superseded by {latest.plan_id}",
        held.plan_id: f"superseded by {latest.plan_id}",
        interrupted.plan_id: f"superseded by {latest.plan_id}",
        applied.plan_id: "applied",
        failed.plan_id: "applied with failures (1 failed)",
        elsewhere.plan_id: "never applied",
        dry.plan_id: f"superseded by {latest.plan_id}",
        latest.plan_id: "never applied",
    }
    superseded = plans.get(interrupted.plan_id)
    assert superseded.superseded_at is not None and superseded.superseded_at >= latest.created_at
    assert f"See where {latest.plan_id} stands: `komeet-sync plans show {latest.plan_id}`" in (
        plans.status(superseded).next_step()
    )
    listed = plans.list()
    assert set(listed[listed["state"] == "superseded"]["superseded_by"]) == {latest.plan_id}


def test_a_plan_stored_again_is_no_longer_superseded_and_supersedes_the_other(plans):
    first = save(plans, plan_of("ada"))
    second = save(plans, plan_of("ben"))
    assert plans.get(first.plan_id).superseded_by == second.plan_id

    again = save(plans, plan_of("ada"))

    assert again.superseded_by is None and again.superseded_at is None
    assert again.created_at == first.created_at  # the same plan, made first back then
    assert plans.get(second.plan_id).superseded_by == first.plan_id


def test_every_state_in_words(plans):
    held = save(plans, plan_of("ada", holds=(BUDGET,)), dry_run=True)
    save(plans, plan_of("ada", holds=(BUDGET,)))
    stopped = save(plans, plan_of("ben", domain="b.example", holds=(MISSING,)))
    unfinished = save(plans, plan_of("ada", "ben", "cleo", domain="c.example"))
    apply_as(plans, unfinished.plan_id, Status.APPLIED, finish=False)
    retrying = save(plans, plan_of("ada", "ben", domain="d.example"))
    ledger = Ledger(plans.engine)
    application = ledger.open_application(retrying.plan_id, "test", again=False)
    assert application is not None
    [first, second] = ledger.to_send(application)
    ledger.record([(first.key, Outcome(Status.APPLIED, "created", 1))])
    ledger.record([(second.key, Outcome(Status.FAILED, "503", 6, retryable=True))])
    assert not ledger.finish(application)

    assert states(plans) == {
        held.plan_id: "held (waiting for approval)",
        stopped.plan_id: "held (cannot be approved)",
        unfinished.plan_id: "applying / interrupted (2 pending)",
        retrying.plan_id: "applying / interrupted (1 pending)",  # a retryable failure is left
    }
    status = plans.status(plans.get(unfinished.plan_id))
    assert status.as_dict() | {"next_step": ""} == {
        "state": "unfinished",
        "state_text": "applying / interrupted (2 pending)",
        "next_step": "",
        "pending": 2,
        "failed": 0,
    }
    assert f"resume it with `komeet-sync apply {unfinished.plan_id}`" in status.next_step()
    assert "cannot be approved: the group all@acme.com does not exist" in (
        plans.status(stopped).next_step()
    )


def test_an_approval_is_refused_with_the_plan_s_real_state(plans):
    applied = save(plans, plan_of("ada"))
    apply_as(plans, applied.plan_id, Status.APPLIED)
    with pytest.raises(PlanError) as refused:
        plans.approve(applied.plan_id, "Jane Admin")
    assert str(refused.value).startswith(f"{applied.plan_id} is not held: it needs no approval.")
    assert "was applied in full at" in str(refused.value)
    assert "nothing needs applying" in str(refused.value)
    assert "komeet-sync apply" not in str(refused.value)

    waiting = save(plans, plan_of("ben"))
    with pytest.raises(
        PlanError, match=f"may be applied with `komeet-sync apply {waiting.plan_id}`"
    ):
        plans.approve(waiting.plan_id, "Jane Admin")

    stopped = save(plans, plan_of("cleo", holds=(MISSING,)))
    with pytest.raises(PlanError, match=r"cannot be approved: the group all@acme\.com"):
        plans.approve(stopped.plan_id, "Jane Admin")


def test_the_shrink_guard_s_last_good_snapshot_is_never_a_dry_run(plans):
    applied = plans.save(
        plan_of("ada"), source="google", snapshot_at=None, desired=100, reports=None
    )
    apply_as(plans, applied.plan_id, Status.APPLIED)
    plans.save(
        plan_of("ben"), source="google", snapshot_at=None, desired=5, reports=None, dry_run=True
    )

    assert plans.last_good_desired(DOMAIN) == 100


def test_a_plan_of_some_people_supersedes_only_unfinished_plans_of_the_same_people(plans):
    whole = save(plans, plan_of("ada", "ben", holds=(BUDGET,)))
    ada = save(plans, plan_of("ada", part=True), scope=Scope.PEOPLE)
    ben = save(plans, plan_of("ben", part=True), scope=Scope.PEOPLE)
    assert ada.scope is Scope.PEOPLE and ada.plan_id != plan_of("ada").plan_id

    ada_again = save(plans, plan_of("ada", action="update", part=True), scope=Scope.PEOPLE)

    assert plans.get(whole.plan_id).superseded_by is None  # a part decides for no one else
    assert plans.get(ada.plan_id).superseded_by == ada_again.plan_id
    assert plans.get(ben.plan_id).superseded_by is None

    latest = save(plans, plan_of("cleo"))  # a whole sync decides for everyone

    assert {plans.get(p.plan_id).superseded_by for p in (whole, ben, ada_again)} == {latest.plan_id}


def test_the_domain_s_size_is_the_last_whole_read_s_and_the_writes_since(plans):
    assert plans.active_managed(DOMAIN) is None  # no whole sync has counted it
    whole = save(plans, plan_of("ada"), active_managed=100)
    apply_as(plans, whole.plan_id, Status.APPLIED)
    joiners = save(plans, plan_of("ben", "cleo", "dan", part=True), scope=Scope.PEOPLE)
    apply_as(plans, joiners.plan_id, Status.APPLIED, Status.APPLIED, Status.FAILED)
    leaver = save(plans, plan_of("eve", action="deactivate", part=True), scope=Scope.PEOPLE)
    apply_as(plans, leaver.plan_id, Status.APPLIED)

    assert plans.active_managed(DOMAIN) == 100 + 1 + 2 - 1
    assert plans.last_good_desired(DOMAIN) == 10  # a part's plan is never the last good one


def test_the_rolling_budget_counts_the_deactivations_parts_sent_in_the_window(plans):
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC) - timedelta(seconds=1)
    whole = save(plans, plan_of("ada", "ben", action="deactivate"))
    _sent(plans, whole.plan_id, Status.APPLIED, Status.APPLIED)
    part = save(
        plans, plan_of("cleo", "dan", "eve", action="deactivate", part=True), scope=Scope.PEOPLE
    )
    _sent(plans, part.plan_id, Status.APPLIED, Status.FAILED, Status.APPLIED)

    assert plans.deactivations_since(DOMAIN, before) == 2  # the part's, applied
    assert plans.deactivations_since(DOMAIN, datetime.now(UTC) + timedelta(seconds=1)) == 0
    assert plans.deactivations_since("globex.com", before) == 0
    assert plans.sent_since(DOMAIN, before, other_than=part.plan_id)
    assert not plans.sent_since(DOMAIN, datetime.now(UTC), other_than=part.plan_id)
    assert not plans.sent_since("globex.com", before, other_than=part.plan_id)


def _sent(plans: PlanStore, plan_id: str, *statuses: Status) -> None:
    """An application whose actions were sent (``sent_at`` set) and ended with ``statuses``."""
    ledger = Ledger(plans.engine)
    application = ledger.open_application(plan_id, "test", again=True)
    assert application is not None
    entries = ledger.to_send(application)
    ledger.mark_sending(entry.key for entry in entries)
    ledger.record(
        (entry.key, Outcome(status, status.value, attempts=1))
        for entry, status in zip(entries, statuses, strict=True)
    )
    assert ledger.finish(application)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_saving_a_domain_s_plan_reads_the_applications_of_that_domain_only(plans):
    """With a thousand domains synced hourly, a sync that read every domain's applications
    to supersede its own domain's plans would read more with each domain added."""
    for number in range(16):
        for _ in range(4):
            other = save(plans, plan_of(f"p{number}", domain=f"other{number}.com"))
            apply_as(plans, other.plan_id, Status.APPLIED)
    mine = save(plans, plan_of("ada"))
    apply_as(plans, mine.plan_id, Status.APPLIED)
    held = save(plans, plan_of("ben", holds=(BUDGET,)))
    apply_as(plans, held.plan_id, finish=False)

    newer = plan_of("cleo")
    saved, read = rows_read(plans.engine, "applications", lambda: save(plans, newer))

    assert read <= 3, read  # its domain's 2 applications (84 read, every domain's, before)
    assert plans.get(held.plan_id).superseded_by == saved.plan_id
    assert plans.get(mine.plan_id).superseded_by is None  # applied in full: not replaced


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_where_a_plan_stands_is_read_from_its_own_applications(plans):
    for number in range(16):
        other = save(plans, plan_of(f"p{number}", domain=f"other{number}.com"))
        apply_as(plans, other.plan_id, Status.APPLIED)
    mine = save(plans, plan_of("ada", "ben"))
    apply_as(plans, mine.plan_id, Status.APPLIED, finish=False)

    status, read = rows_read(plans.engine, "applications", lambda: plans.status(mine))

    assert read <= 2, read
    assert status.last is not None and status.last.left == 1
