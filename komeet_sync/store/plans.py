"""Stored provisioning plans, their approvals and where each stands (ARCHITECTURE.md,
"Guards").

A plan is stored when a sync makes it, held or not, so that an admin can read it
(``komeet-sync plans show``), approve it by its id (``plans approve``) and apply it later
(``komeet-sync apply``). The id is a digest of the actions: an approval belongs to exactly
those actions, and never carries over to a plan that differs by one action.

A dry run's plan is stored too, marked as a dry run: it may have been made from an export
of Komeet, so it is not applied by its id, but a later sync that makes the same plan (the
same id) applies it, with its approval. A sync's plan replaces its domain's plans that were
not applied in full: they are marked superseded by it, and are not applied any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    Subquery,
    func,
    insert,
    or_,
    select,
    update,
)

from komeet_sync.model.domain_names import domain_key
from komeet_sync.model.holds import Hold
from komeet_sync.model.plan import PLAN_COLUMNS, Plan
from komeet_sync.model.situations import Action
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.ledger import Status, left_to_send
from komeet_sync.store.tables import ApplicationRow, LedgerRow, PlanActionRow, PlanRow

PLAN_LIST_COLUMNS = [
    "plan_id",
    "domain",
    "created_at",
    "actions",
    "held",
    "approved_by",
    "state",
    "state_text",
    "superseded_by",
]


class Scope(StrEnum):
    """Whom a plan decides for."""

    DOMAIN = "domain"  # every person and account of the domain: a whole sync's plan
    PEOPLE = "people"  # some people's components: an incremental sync's (docs/incremental.md)


class PlanError(Exception):
    """A plan that does not exist, or that cannot be approved or applied; the message says
    why and what to do."""


@dataclass(frozen=True)
class StoredPlan:
    plan_id: str
    domain: str
    created_at: datetime
    source: str
    snapshot_at: datetime | None
    desired: int
    counts: dict[str, int]
    holds: tuple[Hold, ...]
    reports: str | None
    approved_by: str | None
    approved_at: datetime | None
    dry_run: bool = False  # made by ``sync --dry-run``: a sync that makes it again applies it
    superseded_by: str | None = None  # the domain's latest plan, made before this one was done
    superseded_at: datetime | None = None
    scope: Scope = Scope.DOMAIN

    @property
    def size(self) -> int:
        return sum(self.counts.values())

    @property
    def held(self) -> bool:
        return bool(self.holds)

    @property
    def stopped(self) -> tuple[Hold, ...]:
        """Holds an approval cannot lift (a selected group missing): fix the cause."""
        return tuple(hold for hold in self.holds if not hold.approvable)

    @property
    def waiting_for_approval(self) -> bool:
        return self.held and not self.stopped and self.approved_by is None

    @property
    def may_apply(self) -> bool:
        return not self.held or (not self.stopped and self.approved_by is not None)

    def why_stopped(self) -> str:
        """Why no approval can lift this plan's holds, and what to do instead."""
        return (
            f"{self.plan_id} cannot be approved: "
            + "; ".join(hold.detail for hold in self.stopped)
            + ". Fix the domain's group selection or the directory, then sync again"
        )

    def how_a_sync_applies_it(self) -> str:
        """How a dry run's plan gets applied: by a sync that makes it again."""
        return (
            f"`komeet-sync sync {self.domain}` applies it if the directory and Komeet still "
            "give this plan (an approval is kept)"
        )

    def replacement(self) -> str:
        """What to do with the plan that superseded this one."""
        return (
            f"See where {self.superseded_by} stands: `komeet-sync plans show {self.superseded_by}`"
        )

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON values: ``plans show --json`` and a sync's ``plan.json``."""
        return {
            "plan_id": self.plan_id,
            "domain": self.domain,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "snapshot_at": self.snapshot_at.isoformat() if self.snapshot_at else None,
            "desired": self.desired,
            "counts": dict(self.counts),
            "holds": [hold.as_dict() for hold in self.holds],
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat() if self.approved_at else None,
            "dry_run": self.dry_run,
            "superseded_by": self.superseded_by,
            "superseded_at": self.superseded_at.isoformat() if self.superseded_at else None,
            "reports": self.reports,
            "scope": self.scope.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredPlan:
        def moment(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            plan_id=data["plan_id"],
            domain=data["domain"],
            created_at=datetime.fromisoformat(data["created_at"]),
            source=data["source"],
            snapshot_at=moment(data.get("snapshot_at")),
            desired=int(data["desired"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            holds=tuple(Hold.from_dict(hold) for hold in data["holds"]),
            reports=data.get("reports"),
            approved_by=data.get("approved_by"),
            approved_at=moment(data.get("approved_at")),
            dry_run=bool(data.get("dry_run", False)),
            superseded_by=data.get("superseded_by"),
            superseded_at=moment(data.get("superseded_at")),
            scope=Scope(data.get("scope", Scope.DOMAIN.value)),
        )


@dataclass(frozen=True)
class LastApplication:
    """A plan's latest application (ARCHITECTURE.md, "Applying a plan"): when it started and
    finished, and its ledger rows by status."""

    application_id: int
    started_at: datetime
    finished_at: datetime | None  # None: actions are left to send (applying, or interrupted)
    counts: dict[str, int]  # ledger rows by status
    left: int  # actions a resume sends: pending, sending and retryable failures

    @property
    def applied(self) -> int:
        return self.counts.get(Status.APPLIED.value, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(Status.FAILED.value, 0)


class PlanState(StrEnum):
    """Where a plan stands."""

    HELD = "held"  # a guard holds it, not approved (or no approval can lift it)
    APPROVED = "approved"  # held, approved, not applied yet
    DRY_RUN = "dry_run"  # made by a dry run, not made by a sync since
    SUPERSEDED = "superseded"  # a later plan of its domain replaced it before it was applied
    UNFINISHED = "unfinished"  # applying, or interrupted: actions are left to send
    APPLIED = "applied"  # applied in full
    APPLIED_WITH_FAILURES = "applied_with_failures"  # applied; Komeet refused some actions
    NEVER_APPLIED = "never_applied"  # may be applied, and never was


@dataclass(frozen=True)
class PlanStatus:
    """A plan's state, from its row and its latest application: the one rule behind
    ``plans list``, ``plans show`` (and their ``--json``) and ``plans approve``'s advice.

    Superseded comes first: a superseded plan is not applied any more, whatever happened to
    it before. Then the latest application says applied or unfinished; a plan never
    applied is a dry run, held, approved, or simply never applied.
    """

    plan: StoredPlan
    last: LastApplication | None

    @property
    def state(self) -> PlanState:
        plan, last = self.plan, self.last
        if plan.superseded_by is not None:
            return PlanState.SUPERSEDED
        if last is not None and last.finished_at is None:
            return PlanState.UNFINISHED
        if last is not None:
            return PlanState.APPLIED_WITH_FAILURES if last.failed else PlanState.APPLIED
        if plan.dry_run:
            return PlanState.DRY_RUN
        if plan.held and (plan.stopped or plan.approved_by is None):
            return PlanState.HELD
        return PlanState.APPROVED if plan.held else PlanState.NEVER_APPLIED

    def __str__(self) -> str:
        """The state in a few words, for a column of ``plans list``."""
        plan, last, state = self.plan, self.last, self.state
        if state is PlanState.SUPERSEDED:
            return f"superseded by {plan.superseded_by}"
        if state is PlanState.UNFINISHED:
            assert last is not None
            return f"applying / interrupted ({last.left:,} pending)"
        if state is PlanState.APPLIED_WITH_FAILURES:
            assert last is not None
            return f"applied with failures ({last.failed:,} failed)"
        if state is PlanState.HELD:
            return "held (cannot be approved)" if plan.stopped else "held (waiting for approval)"
        if state is PlanState.DRY_RUN and plan.held:
            return "dry run (approved)" if plan.may_apply else "dry run (held)"
        return state.value.replace("_", " ")

    def next_step(self) -> str:
        """What the plan's state asks of an operator, in a sentence naming the command."""
        plan, last, state = self.plan, self.last, self.state
        plan_id = plan.plan_id
        if state is PlanState.SUPERSEDED:
            assert plan.superseded_at is not None
            return (
                f"{plan_id} was superseded by {plan.superseded_by}, a later plan of "
                f"{plan.domain}, at {plan.superseded_at:%Y-%m-%d %H:%M} UTC: it is not "
                f"applied any more. {plan.replacement()}"
            )
        if state is PlanState.UNFINISHED:
            assert last is not None
            return (
                f"{plan_id}'s application is unfinished, {last.left:,} action(s) left to send: "
                f"resume it with `komeet-sync apply {plan_id}`"
            )
        if state is PlanState.APPLIED:
            assert last is not None and last.finished_at is not None
            return (
                f"{plan_id} was applied in full at {last.finished_at:%Y-%m-%d %H:%M} UTC: "
                "nothing needs applying"
            )
        if state is PlanState.APPLIED_WITH_FAILURES:
            assert last is not None and last.finished_at is not None
            return (
                f"{plan_id} was applied at {last.finished_at:%Y-%m-%d %H:%M} UTC and Komeet "
                f"refused {last.failed:,} action(s): list them with `komeet-sync plans show "
                f"{plan_id} --failed`; the next sync plans again whatever is still needed"
            )
        if plan.stopped:
            return plan.why_stopped()
        approve = f"approve it with `komeet-sync plans approve {plan_id} --by NAME`"
        if state is PlanState.DRY_RUN:
            first = f"{approve}; then " if plan.waiting_for_approval else ""
            return f"{plan_id} was made by a dry run: {first}{plan.how_a_sync_applies_it()}"
        if state is PlanState.HELD:
            return f"{plan_id} is held: {approve}, then `komeet-sync apply {plan_id}`"
        if state is PlanState.APPROVED:
            return f"{plan_id} is approved: apply it with `komeet-sync apply {plan_id}`"
        return f"{plan_id} may be applied with `komeet-sync apply {plan_id}`"

    def as_dict(self) -> dict[str, Any]:
        last = self.last
        return {
            "state": self.state.value,
            "state_text": str(self),
            "next_step": self.next_step(),
            "pending": last.left if last is not None else 0,
            "failed": last.failed if last is not None else 0,
        }


@dataclass(frozen=True)
class PlanReport:
    """The ``plan`` of a sync (model.reports.PLAN): its actions, the reconciliation's summary
    (counts, plan id, holds: ``summary.json``), and the plan as stored, for a sync that
    stored it (a dry run's too; the offline audit stores none)."""

    actions: pd.DataFrame  # PLAN_COLUMNS
    summary: dict[str, Any]
    stored: StoredPlan | None = None


class PlanStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(
        self,
        plan: Plan,
        *,
        source: str,
        snapshot_at: datetime | None,
        desired: int,
        reports: str | None,
        dry_run: bool = False,
        scope: Scope = Scope.DOMAIN,
        active_managed: int | None = None,
    ) -> StoredPlan:
        """Store a plan and its actions, in one transaction.

        A plan already stored (the same id) keeps its approval. A sync's plan (not a dry
        run's) is its domain's current plan: stored again, it is no longer superseded, and
        no longer only a dry run (it takes this sync's holds, counts and reports: the dry
        run may have read an export); and it supersedes every other plan of the domain that
        was not applied in full (never applied, held, or with actions left to send). A dry
        run changes no plan but its own.

        A plan of some people (``Scope.PEOPLE``, an incremental sync's) decides for no one
        else: it supersedes only the unfinished plans of some people that act on one of its
        people, never the domain's plan. ``active_managed``: the whole domain's active
        managed accounts, which its read of Komeet counted (``active_managed``).
        """
        now = datetime.now(UTC)
        made = {
            "source": source,
            "snapshot_at": snapshot_at,
            "desired": desired,
            "counts": plan.counts(),
            "holds": [hold.as_dict() for hold in plan.holds],
            "reports": reports,
            "scope": scope.value,
            "active_managed": active_managed,
        }
        with write_lock(self.engine), self.engine.begin() as connection:
            was_dry_run = connection.scalar(
                select(PlanRow.dry_run).where(PlanRow.plan_id == plan.plan_id)
            )
            if was_dry_run is None:
                connection.execute(
                    insert(PlanRow).values(
                        plan_id=plan.plan_id,
                        domain=plan.domain,
                        created_at=now,
                        dry_run=dry_run,
                        **made,
                    )
                )
                _insert_actions(connection, plan)
            if dry_run:
                return self._get(connection, plan.plan_id)
            current = {"superseded_by": None, "superseded_at": None, "dry_run": False}
            connection.execute(
                update(PlanRow)
                .where(PlanRow.plan_id == plan.plan_id)
                .values(**current, **(made if was_dry_run else {}))
            )
            replaced = [
                PlanRow.domain == plan.domain,
                PlanRow.plan_id != plan.plan_id,
                PlanRow.plan_id.not_in(
                    _applied_in_full(
                        ApplicationRow.plan_id.in_(
                            select(PlanRow.plan_id).where(PlanRow.domain == plan.domain)
                        )
                    )
                ),
            ]
            if scope is Scope.PEOPLE:
                people = [
                    value
                    for column in ("email", "user_name", "komeet_id")
                    for value in plan.actions[column].dropna().unique().tolist()
                    if value
                ]
                acting_on_them = select(PlanActionRow.plan_id).where(
                    or_(
                        PlanActionRow.email.in_(people),
                        PlanActionRow.user_name.in_(people),
                        PlanActionRow.komeet_id.in_(people),
                    )
                )
                replaced += [
                    PlanRow.scope == Scope.PEOPLE.value,
                    PlanRow.plan_id.in_(acting_on_them),
                ]
            connection.execute(
                update(PlanRow)
                .where(*replaced)
                .values(superseded_by=plan.plan_id, superseded_at=now)
            )
            return self._get(connection, plan.plan_id)

    def get(self, plan_id: str) -> StoredPlan:
        with self.engine.connect() as connection:
            return self._get(connection, plan_id)

    def _get(self, connection: Connection, plan_id: str) -> StoredPlan:
        row = connection.execute(
            select(PlanRow).where(PlanRow.plan_id == plan_id.strip())
        ).one_or_none()
        if row is None:
            raise PlanError(
                f"no plan {plan_id!r}: list the plans with `komeet-sync plans list`; a plan "
                "id looks like plan_5c935ecafa8b2408aa0d"
            )
        return _stored(row)

    def status(self, plan: StoredPlan) -> PlanStatus:
        """Where a plan stands (``PlanStatus``)."""
        with self.engine.connect() as connection:
            last = _last_applications(connection, [plan.plan_id]).get(plan.plan_id)
        return PlanStatus(plan, last)

    def statuses(self, plan_ids: Iterable[str]) -> dict[str, PlanStatus]:
        """Where each stored plan among ``plan_ids`` stands (``PlanStatus``), by id: two
        queries however many plans."""
        plan_ids = list(set(plan_ids))
        if not plan_ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(select(PlanRow).where(PlanRow.plan_id.in_(plan_ids))).all()
            last = _last_applications(connection, [row.plan_id for row in rows])
        return {row.plan_id: PlanStatus(_stored(row), last.get(row.plan_id)) for row in rows}

    def actions(self, plan_id: str) -> pd.DataFrame:
        """The plan's actions (PLAN_COLUMNS) in plan order, with their position."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(PlanActionRow)
                .where(PlanActionRow.plan_id == plan_id)
                .order_by(PlanActionRow.position)
            ).all()
        frame = pd.DataFrame(
            [row._mapping for row in rows], columns=["position", *PLAN_COLUMNS, "plan_id"]
        )
        return frame[["position", *PLAN_COLUMNS]].astype({"position": "int64"} | PLAN_COLUMNS)

    def approve(self, plan_id: str, by: str) -> StoredPlan:
        """Record who approved a held plan, and when. Only holds an approval may lift can be
        approved; approving twice keeps the first approval. A superseded plan or a dry
        run's may be approved: the approval counts if a sync makes that plan again."""
        by = by.strip()
        if not by:
            raise PlanError("give the approver's name with --by, like --by 'Jane Admin'")
        plan = self.get(plan_id)
        if not plan.held:
            raise PlanError(
                f"{plan.plan_id} is not held: it needs no approval. "
                + self.status(plan).next_step()
            )
        if plan.stopped:
            raise PlanError(plan.why_stopped())
        if plan.approved_by is not None:
            return plan
        with write_lock(self.engine), self.engine.begin() as connection:
            connection.execute(
                update(PlanRow)
                .where(PlanRow.plan_id == plan.plan_id, PlanRow.approved_by.is_(None))
                .values(approved_by=by, approved_at=datetime.now(UTC))
            )
        return self.get(plan.plan_id)

    def waiting_reports(self) -> set[str]:
        """Where the reports of each plan that may still be applied are (held, approved, a
        dry run's, never applied, or with actions left to send: neither superseded nor
        applied in full): an apply writes its results beside them."""
        query = select(PlanRow.reports).where(
            PlanRow.superseded_by.is_(None),
            PlanRow.reports.is_not(None),
            PlanRow.plan_id.not_in(_applied_in_full()),
        )
        with self.engine.connect() as connection:
            return {reports for reports in connection.scalars(query) if reports}

    def list(self, domain: str | None = None, limit: int = 20) -> pd.DataFrame:
        """The latest plans, newest first (PLAN_LIST_COLUMNS): their approval and their state
        (``PlanStatus``: ``state``, and ``state_text`` in words)."""
        query = select(PlanRow).order_by(PlanRow.created_at.desc(), PlanRow.plan_id).limit(limit)
        if domain is not None:
            query = query.where(PlanRow.domain == domain_key(domain))
        with self.engine.connect() as connection:
            plans = [_stored(row) for row in connection.execute(query).all()]
            last = _last_applications(connection, [plan.plan_id for plan in plans])
        rows = []
        for plan in plans:
            status = PlanStatus(plan, last.get(plan.plan_id))
            rows.append(
                {
                    "plan_id": plan.plan_id,
                    "domain": plan.domain,
                    "created_at": plan.created_at,
                    "actions": plan.size,
                    "held": ", ".join(hold.guard.value for hold in plan.holds),
                    "approved_by": plan.approved_by,
                    "state": status.state.value,
                    "state_text": str(status),
                    "superseded_by": plan.superseded_by,
                }
            )
        return pd.DataFrame(rows, columns=PLAN_LIST_COLUMNS)

    def last_good_desired(self, domain: str) -> int | None:
        """The desired count of the domain's latest plan whose application finished: the
        shrink guard's "last good snapshot" (ARCHITECTURE.md, "Guards"). A dry run's plan
        is never applied, so never counts."""
        query = (
            select(PlanRow.desired)
            .join(ApplicationRow, ApplicationRow.plan_id == PlanRow.plan_id)
            .where(*_whole_syncs_of(domain), ApplicationRow.finished_at.is_not(None))
            .order_by(ApplicationRow.finished_at.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.scalar(query)

    def active_managed(self, domain: str) -> int | None:
        """The domain's active managed accounts now, as far as komeet-sync knows without
        reading them all: what its latest whole sync's read of Komeet counted, plus the
        creates and reactivations applied since, minus the deactivations. None before
        any whole sync: an incremental sync then cannot size the deactivation budget."""
        with self.engine.connect() as connection:
            last = connection.execute(
                select(PlanRow.active_managed, PlanRow.created_at)
                .where(*_whole_syncs_of(domain), PlanRow.active_managed.is_not(None))
                .order_by(PlanRow.created_at.desc())
                .limit(1)
            ).first()
            if last is None:
                return None
            applied = dict(
                connection.execute(
                    select(LedgerRow.action, func.count())
                    .join(PlanRow, PlanRow.plan_id == LedgerRow.plan_id)
                    .where(
                        PlanRow.domain == domain,
                        LedgerRow.status == Status.APPLIED.value,
                        LedgerRow.finished_at > last.created_at,
                    )
                    .group_by(LedgerRow.action)
                ).all()
            )
        gained = applied.get(Action.CREATE.value, 0) + applied.get(Action.REACTIVATE.value, 0)
        return max(0, int(last.active_managed) + gained - applied.get(Action.DEACTIVATE.value, 0))

    def deactivations_since(self, domain: str, since: datetime) -> int:
        """Deactivations that plans of some people (incremental syncs) applied or sent in
        ``domain`` since ``since``: what they spent of the domain's rolling budget."""
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(LedgerRow)
                    .join(PlanRow, PlanRow.plan_id == LedgerRow.plan_id)
                    .where(
                        PlanRow.domain == domain,
                        PlanRow.scope == Scope.PEOPLE.value,
                        LedgerRow.action == Action.DEACTIVATE.value,
                        LedgerRow.status.in_([Status.APPLIED.value, Status.SENDING.value]),
                        LedgerRow.sent_at >= since,
                    )
                )
                or 0
            )

    def sent_since(self, domain: str, since: datetime, other_than: str) -> bool:
        """Whether a plan of ``domain`` other than ``other_than`` sent anything to Komeet
        since ``since``: a read of Komeet made then may miss what it wrote."""
        with self.engine.connect() as connection:
            return (
                connection.scalar(
                    select(LedgerRow.plan_id)
                    .join(PlanRow, PlanRow.plan_id == LedgerRow.plan_id)
                    .where(
                        PlanRow.domain == domain,
                        LedgerRow.plan_id != other_than,
                        LedgerRow.sent_at >= since,
                    )
                    .limit(1)
                )
                is not None
            )


def _whole_syncs_of(domain: str) -> tuple[ColumnElement[bool], ...]:
    """The plans of ``domain`` that whole syncs made (not a dry run's, not some people's)."""
    return (
        PlanRow.domain == domain,
        PlanRow.dry_run.is_(False),
        PlanRow.scope == Scope.DOMAIN.value,
    )


def _stored(row: Row[Any]) -> StoredPlan:
    """A plan as its row in ``plans`` holds it."""
    return StoredPlan(
        plan_id=row.plan_id,
        domain=row.domain,
        created_at=as_utc(row.created_at),
        source=row.source,
        snapshot_at=as_utc(row.snapshot_at) if row.snapshot_at else None,
        desired=row.desired,
        counts=dict(row.counts),
        holds=tuple(Hold.from_dict(hold) for hold in row.holds),
        reports=row.reports,
        approved_by=row.approved_by,
        approved_at=as_utc(row.approved_at) if row.approved_at else None,
        dry_run=bool(row.dry_run),
        superseded_by=row.superseded_by,
        superseded_at=as_utc(row.superseded_at) if row.superseded_at else None,
        scope=Scope(row.scope),
    )


def _insert_actions(connection: Connection, plan: Plan) -> None:
    rows: list[dict[Any, Any]] = (
        plan.actions[list(PLAN_COLUMNS)]
        .astype(object)
        .where(plan.actions.notna(), None)
        .assign(plan_id=plan.plan_id, position=range(len(plan.actions)))
        .to_dict("records")
    )
    if rows:
        connection.execute(insert(PlanActionRow), rows)


def _applied_in_full(*among: ColumnElement[bool]) -> Select[str]:
    """The plans whose latest application finished (applied, with failures or not), among
    the applications ``among`` selects (all when none)."""
    latest = _latest_applications(*among)
    return (
        select(ApplicationRow.plan_id)
        .join(latest, latest.c.id == ApplicationRow.id)
        .where(ApplicationRow.finished_at.is_not(None), *among)
    )


def _latest_applications(*among: ColumnElement[bool]) -> Subquery:
    """Each plan's latest application: its ``plan_id`` and ``id``, among the applications
    ``among`` selects. A caller that needs some plans' says which: the grouping is not
    narrowed by a condition outside it, and would read every domain's applications."""
    return (
        select(ApplicationRow.plan_id, func.max(ApplicationRow.id).label("id"))
        .where(*among)
        .group_by(ApplicationRow.plan_id)
        .subquery()
    )


def _last_applications(
    connection: Connection, plan_ids: Iterable[str]
) -> dict[str, LastApplication]:
    """The latest application of each of ``plan_ids`` that was ever applied."""
    plan_ids = list(plan_ids)
    if not plan_ids:
        return {}
    latest = _latest_applications(ApplicationRow.plan_id.in_(plan_ids))
    to_send = left_to_send()
    rows = connection.execute(
        select(
            ApplicationRow.id,
            ApplicationRow.plan_id,
            ApplicationRow.started_at,
            ApplicationRow.finished_at,
            LedgerRow.status,
            to_send.label("to_send"),
            func.count(LedgerRow.idempotency_key).label("actions"),
        )
        .join(latest, latest.c.id == ApplicationRow.id)
        .outerjoin(LedgerRow, LedgerRow.application_id == ApplicationRow.id)
        .where(ApplicationRow.plan_id.in_(plan_ids))
        .group_by(
            ApplicationRow.id,
            ApplicationRow.plan_id,
            ApplicationRow.started_at,
            ApplicationRow.finished_at,
            LedgerRow.status,
            to_send,
        )
    ).all()
    counts: dict[str, dict[str, int]] = {}
    left: dict[str, int] = {}
    for row in rows:
        counts.setdefault(row.plan_id, {})
        left.setdefault(row.plan_id, 0)
        if row.status is not None:
            counts[row.plan_id][row.status] = counts[row.plan_id].get(row.status, 0) + row.actions
            left[row.plan_id] += row.actions if row.to_send else 0
    return {
        row.plan_id: LastApplication(
            application_id=row.id,
            started_at=as_utc(row.started_at),
            finished_at=as_utc(row.finished_at) if row.finished_at else None,
            counts=counts[row.plan_id],
            left=left[row.plan_id],
        )
        for row in rows
    }
