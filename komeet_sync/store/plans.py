"""Stored provisioning plans and their approvals (ARCHITECTURE.md, "Guards").

A plan is stored when a sync makes it, held or not, so that an admin can read it
(``komeet-sync plans show``), approve it by its id (``plans approve``) and apply it later
(``komeet-sync apply``). The id is a digest of the actions: an approval belongs to exactly
those actions, and never carries over to a plan that differs by one action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Row, func, insert, select, update

from komeet_sync.model.holds import Hold
from komeet_sync.model.plan import PLAN_COLUMNS, Plan
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import ApplicationRow, PlanActionRow, PlanRow

PLAN_LIST_COLUMNS = ["plan_id", "domain", "created_at", "actions", "held", "approved_by", "applied"]


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
            "reports": self.reports,
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
        )


@dataclass(frozen=True)
class PlanReport:
    """The ``plan`` of a sync (model.reports.PLAN): its actions, the reconciliation's summary
    (counts, plan id, holds: ``summary.json``), and the plan as stored, for a sync that
    stored it (the offline audit and a dry run do not)."""

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
    ) -> StoredPlan:
        """Store a plan and its actions; a plan already stored (the same id) is kept as it
        was, with its approval."""
        with write_lock(self.engine), self.engine.begin() as connection:
            exists = connection.scalar(
                select(PlanRow.plan_id).where(PlanRow.plan_id == plan.plan_id)
            )
            if exists is None:
                connection.execute(
                    insert(PlanRow).values(
                        plan_id=plan.plan_id,
                        domain=plan.domain,
                        created_at=datetime.now(UTC),
                        source=source,
                        snapshot_at=snapshot_at,
                        desired=desired,
                        counts=plan.counts(),
                        holds=[hold.as_dict() for hold in plan.holds],
                        reports=reports,
                    )
                )
                rows: list[dict[Any, Any]] = (
                    plan.actions[list(PLAN_COLUMNS)]
                    .astype(object)
                    .where(plan.actions.notna(), None)
                    .assign(plan_id=plan.plan_id, position=range(len(plan.actions)))
                    .to_dict("records")
                )
                if rows:
                    connection.execute(insert(PlanActionRow), rows)
        return self.get(plan.plan_id)

    def get(self, plan_id: str) -> StoredPlan:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(PlanRow).where(PlanRow.plan_id == plan_id.strip())
            ).one_or_none()
        if row is None:
            raise PlanError(
                f"no plan {plan_id!r}: list the plans with `komeet-sync plans list`; a plan "
                "id looks like plan_5c935ecafa8b2408aa0d"
            )
        return _stored(row)

    def get_many(self, plan_ids: Iterable[str]) -> dict[str, StoredPlan]:
        """The stored plans among ``plan_ids``, by id, in one query however many."""
        plan_ids = list(set(plan_ids))
        if not plan_ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(select(PlanRow).where(PlanRow.plan_id.in_(plan_ids))).all()
        return {row.plan_id: _stored(row) for row in rows}

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
        approved; approving twice keeps the first approval."""
        by = by.strip()
        if not by:
            raise PlanError("give the approver's name with --by, like --by 'Jane Admin'")
        plan = self.get(plan_id)
        if not plan.held:
            raise PlanError(
                f"{plan.plan_id} is not held: it needs no approval; apply it with "
                f"`komeet-sync apply {plan.plan_id}`"
            )
        if plan.stopped:
            raise PlanError(
                f"{plan.plan_id} cannot be approved: "
                + "; ".join(hold.detail for hold in plan.stopped)
                + ". Fix the domain's group selection or the directory, then sync again"
            )
        if plan.approved_by is not None:
            return plan
        with write_lock(self.engine), self.engine.begin() as connection:
            connection.execute(
                update(PlanRow)
                .where(PlanRow.plan_id == plan.plan_id, PlanRow.approved_by.is_(None))
                .values(approved_by=by, approved_at=datetime.now(UTC))
            )
        return self.get(plan.plan_id)

    def list(self, domain: str | None = None, limit: int = 20) -> pd.DataFrame:
        """The latest plans, newest first, with their approval and their last application."""
        last = (
            select(
                ApplicationRow.plan_id,
                func.max(ApplicationRow.id).label("application_id"),
            )
            .group_by(ApplicationRow.plan_id)
            .subquery()
        )
        query = (
            select(
                PlanRow.plan_id,
                PlanRow.domain,
                PlanRow.created_at,
                PlanRow.counts,
                PlanRow.holds,
                PlanRow.approved_by,
                ApplicationRow.started_at.label("applied_at"),
                ApplicationRow.finished_at,
            )
            .outerjoin(last, last.c.plan_id == PlanRow.plan_id)
            .outerjoin(ApplicationRow, ApplicationRow.id == last.c.application_id)
            .order_by(PlanRow.created_at.desc(), PlanRow.plan_id)
            .limit(limit)
        )
        if domain is not None:
            query = query.where(PlanRow.domain == domain)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return pd.DataFrame(
            [
                {
                    "plan_id": row.plan_id,
                    "domain": row.domain,
                    "created_at": as_utc(row.created_at),
                    "actions": sum(row.counts.values()),
                    "held": ", ".join(hold["guard"] for hold in row.holds),
                    "approved_by": row.approved_by,
                    "applied": _application_state(row.applied_at, row.finished_at),
                }
                for row in rows
            ],
            columns=[
                "plan_id",
                "domain",
                "created_at",
                "actions",
                "held",
                "approved_by",
                "applied",
            ],
        )

    def last_good_desired(self, domain: str) -> int | None:
        """The desired count of the domain's latest plan whose application finished: the
        shrink guard's "last good snapshot" (ARCHITECTURE.md, "Guards")."""
        query = (
            select(PlanRow.desired)
            .join(ApplicationRow, ApplicationRow.plan_id == PlanRow.plan_id)
            .where(PlanRow.domain == domain, ApplicationRow.finished_at.is_not(None))
            .order_by(ApplicationRow.finished_at.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.scalar(query)


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
    )


def _application_state(started: datetime | None, finished: datetime | None) -> str:
    if started is None:
        return "never"
    if finished is None:
        return f"unfinished (started {as_utc(started):%Y-%m-%d %H:%M}Z)"
    return f"{as_utc(finished):%Y-%m-%d %H:%M}Z"
