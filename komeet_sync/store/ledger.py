"""The ledger: every action sent to Komeet, written before it is sent and completed with its
outcome after (ARCHITECTURE.md, "Applying a plan").

An application of a plan writes one pending row per action, each with its idempotency key,
in one transaction before the first request. A row is marked ``sending`` before each
request and gets its outcome after, so a process killed at any moment leaves rows that say
exactly what may have reached Komeet: ``applied`` and ``failed`` rows are never sent
again; ``pending``, ``sending`` and retryable failures are what a resume sends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import pandas as pd
from sqlalchemy import ColumnElement, Engine, bindparam, func, insert, or_, select, update

from komeet_sync.model.reports import RESULTS
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import ApplicationRow, LedgerRow, PlanActionRow, PlanRow


class Status(StrEnum):
    PENDING = "pending"  # written, never sent
    SENDING = "sending"  # a request may have reached Komeet; the outcome is not known
    APPLIED = "applied"
    FAILED = "failed"


@dataclass(frozen=True)
class Entry:
    """A ledger row with the action it stands for."""

    key: str
    position: int
    action: str
    komeet_id: str | None
    user_name: str
    external_id: str | None
    given_name: str | None
    family_name: str | None
    status: Status
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What became of an action."""

    status: Status
    outcome: str  # in words: "created", "linked the existing account ...", the failure
    attempts: int  # requests sent for it this time
    http_status: int | None = None
    komeet_id: str | None = None
    response_body: str | None = None  # kept for failures
    retryable: bool = False  # a failure a later apply should try again (transient)


@dataclass(frozen=True)
class Sent:
    """An action sent for a person or account, and what became of it (``of_account``)."""

    at: datetime | None  # when its outcome came, else when it was sent
    plan_id: str
    action: str
    user_name: str | None
    status: str
    outcome: str | None
    http_status: int | None
    komeet_id: str | None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self) | {"at": self.at.isoformat() if self.at else None}


@dataclass(frozen=True)
class Application:
    id: int
    plan_id: str
    started_at: datetime
    resumed: bool  # an unfinished application taken up again


@dataclass(frozen=True)
class ResultsReport:
    """The ``results`` of a sync (model.reports.RESULTS): the ledger rows of one application
    of its plan, or why nothing was sent."""

    plan_id: str
    application_id: int | None  # None: nothing was sent (``stopped`` says why)
    entries: pd.DataFrame  # RESULTS columns
    counts: dict[str, int]  # ledger status -> actions
    stopped: str = ""  # why nothing was sent; empty when the plan was applied

    @property
    def failed(self) -> pd.DataFrame:
        return self.entries[self.entries["status"] == Status.FAILED.value]

    def as_dict(self) -> dict[str, object]:
        return {
            "plan_id": self.plan_id,
            "application_id": self.application_id,
            "counts": dict(self.counts),
            "stopped": self.stopped,
        }


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_application(self, plan_id: str, trigger: str, *, again: bool) -> Application | None:
        """The application to work on: the plan's unfinished one if there is one; else, when
        ``again`` (a sync found the same actions still needed), a new one with every action
        pending; else None (the plan was applied: nothing is sent twice)."""
        with write_lock(self.engine), self.engine.begin() as connection:
            latest = connection.execute(
                select(ApplicationRow)
                .where(ApplicationRow.plan_id == plan_id)
                .order_by(ApplicationRow.id.desc())
                .limit(1)
            ).one_or_none()
            if latest is not None and latest.finished_at is None:
                return Application(latest.id, plan_id, as_utc(latest.started_at), resumed=True)
            if latest is not None and not again:
                return None
            now = datetime.now(UTC)
            application_id = connection.execute(
                insert(ApplicationRow)
                .values(plan_id=plan_id, started_at=now, trigger=trigger[:64])
                .returning(ApplicationRow.id)
            ).scalar_one()
            actions = connection.execute(
                select(PlanActionRow.position, PlanActionRow.action, PlanActionRow.user_name)
                .where(PlanActionRow.plan_id == plan_id)
                .order_by(PlanActionRow.position)
            ).all()
            if actions:
                connection.execute(
                    insert(LedgerRow),
                    [
                        {
                            "idempotency_key": idempotency_key(plan_id, application_id, position),
                            "application_id": application_id,
                            "plan_id": plan_id,
                            "position": position,
                            "action": action,
                            "user_name": user_name,
                            "status": Status.PENDING.value,
                            "attempts": 0,
                            "retryable": False,
                        }
                        for position, action, user_name in actions
                    ],
                )
            return Application(application_id, plan_id, now, resumed=False)

    def to_send(self, application: Application) -> list[Entry]:
        """The application's actions that are not done: pending, sending (the outcome was
        lost) and retryable failures, in plan order."""
        query = (
            select(
                LedgerRow.idempotency_key,
                LedgerRow.position,
                LedgerRow.status,
                LedgerRow.attempts,
                PlanActionRow.action,
                PlanActionRow.komeet_id,
                PlanActionRow.user_name,
                PlanActionRow.external_id,
                PlanActionRow.given_name,
                PlanActionRow.family_name,
            )
            .join(
                PlanActionRow,
                (PlanActionRow.plan_id == LedgerRow.plan_id)
                & (PlanActionRow.position == LedgerRow.position),
            )
            .where(LedgerRow.application_id == application.id, left_to_send())
            .order_by(LedgerRow.position)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            Entry(
                key=row.idempotency_key,
                position=row.position,
                action=row.action,
                komeet_id=row.komeet_id,
                user_name=row.user_name or "",
                external_id=row.external_id,
                given_name=row.given_name,
                family_name=row.family_name,
                status=Status(row.status),
                attempts=row.attempts,
            )
            for row in rows
        ]

    def mark_sending(self, keys: Iterable[str]) -> None:
        """Before the request: from now on the action may have reached Komeet."""
        keys = list(keys)
        if not keys:
            return
        statement = (
            update(LedgerRow)
            .where(LedgerRow.idempotency_key == bindparam("key"))
            .values(status=Status.SENDING.value, sent_at=bindparam("now"))
        )
        now = datetime.now(UTC)
        with write_lock(self.engine), self.engine.begin() as connection:
            connection.execute(statement, [{"key": key, "now": now} for key in keys])

    def unmark(self, keys: Iterable[str]) -> None:
        """Rows marked ``sending`` ahead of their request, which was never sent (the apply
        stopped first): ``pending`` again. Only for rows that were pending before."""
        keys = list(keys)
        if not keys:
            return
        statement = (
            update(LedgerRow)
            .where(
                LedgerRow.idempotency_key == bindparam("key"),
                LedgerRow.status == Status.SENDING.value,
            )
            .values(status=Status.PENDING.value, sent_at=None)
        )
        with write_lock(self.engine), self.engine.begin() as connection:
            connection.execute(statement, [{"key": key} for key in keys])

    def record(self, outcomes: Iterable[tuple[str, Outcome]]) -> None:
        """After the answer: each action's outcome, in one transaction."""
        now = datetime.now(UTC)
        values = [
            {
                "key": key,
                "status": outcome.status.value,
                "outcome": outcome.outcome,
                "sent": outcome.attempts,
                "retryable": outcome.retryable,
                "http_status": outcome.http_status,
                "response_body": outcome.response_body,
                "komeet_id": outcome.komeet_id,
                "finished_at": now,
            }
            for key, outcome in outcomes
        ]
        if not values:
            return
        statement = (
            update(LedgerRow)
            .where(LedgerRow.idempotency_key == bindparam("key"))
            .values(
                status=bindparam("status"),
                outcome=bindparam("outcome"),
                attempts=LedgerRow.attempts + bindparam("sent"),
                retryable=bindparam("retryable"),
                http_status=bindparam("http_status"),
                response_body=bindparam("response_body"),
                komeet_id=bindparam("komeet_id"),
                finished_at=bindparam("finished_at"),
            )
        )
        with write_lock(self.engine), self.engine.begin() as connection:
            connection.execute(statement, values)

    def finish(self, application: Application) -> bool:
        """Close the application when no action is left to send; True when closed."""
        with write_lock(self.engine), self.engine.begin() as connection:
            left = connection.scalar(
                select(func.count())
                .select_from(LedgerRow)
                .where(LedgerRow.application_id == application.id, left_to_send())
            )
            if left:
                return False
            connection.execute(
                update(ApplicationRow)
                .where(ApplicationRow.id == application.id)
                .values(finished_at=datetime.now(UTC))
            )
            return True

    def entries(self, plan_id: str, application_id: int | None = None) -> pd.DataFrame:
        """The ledger rows of a plan's latest application (or of ``application_id``), with
        the action each stands for: for ``plans show``, the CLI's failure list and the
        notebooks."""
        if application_id is None:
            with self.engine.connect() as connection:
                application_id = connection.scalar(
                    select(func.max(ApplicationRow.id)).where(ApplicationRow.plan_id == plan_id)
                )
        columns = list(RESULTS.columns)
        if application_id is None:
            return pd.DataFrame(columns=columns)
        query = (
            select(*(getattr(LedgerRow, column) for column in columns))
            .where(LedgerRow.application_id == application_id)
            .order_by(LedgerRow.position)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return pd.DataFrame([tuple(row) for row in rows], columns=columns)

    def of_account(
        self,
        domain: str,
        *,
        user_names: Iterable[str] = (),
        komeet_ids: Iterable[str] = (),
        external_ids: Iterable[str] = (),
        limit: int = 5,
    ) -> list[Sent]:
        """The latest ``limit`` actions sent for one person or account of ``domain``, newest
        first: those whose userName (any case) is one of ``user_names``,
        whose Komeet account is one of ``komeet_ids`` (the plan's, or the one a create
        made), or that set one of ``external_ids``. Pending rows never sent are left out."""
        names = sorted({name.strip().lower() for name in user_names if name})
        ids = sorted(set(filter(None, komeet_ids)))
        external = sorted(set(filter(None, external_ids)))
        wanted = [
            condition
            for values, condition in (
                (names, func.lower(LedgerRow.user_name).in_(names)),
                (ids, LedgerRow.komeet_id.in_(ids) | PlanActionRow.komeet_id.in_(ids)),
                (external, PlanActionRow.external_id.in_(external)),
            )
            if values
        ]
        if not wanted:
            return []
        at = func.coalesce(LedgerRow.finished_at, LedgerRow.sent_at)
        query = (
            select(
                at.label("at"),
                LedgerRow.plan_id,
                LedgerRow.action,
                LedgerRow.user_name,
                LedgerRow.status,
                LedgerRow.outcome,
                LedgerRow.http_status,
                func.coalesce(LedgerRow.komeet_id, PlanActionRow.komeet_id).label("komeet_id"),
            )
            .join(PlanRow, PlanRow.plan_id == LedgerRow.plan_id)
            .join(
                PlanActionRow,
                (PlanActionRow.plan_id == LedgerRow.plan_id)
                & (PlanActionRow.position == LedgerRow.position),
            )
            .where(
                PlanRow.domain == domain,
                LedgerRow.status != Status.PENDING.value,
                or_(*wanted),
            )
            .order_by(at.desc(), LedgerRow.idempotency_key.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            Sent(
                as_utc(row.at) if row.at is not None else None,
                row.plan_id,
                row.action,
                row.user_name,
                row.status,
                row.outcome,
                row.http_status,
                row.komeet_id,
            )
            for row in rows
        ]

    def counts(self, application: Application) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(LedgerRow.status, func.count())
                .where(LedgerRow.application_id == application.id)
                .group_by(LedgerRow.status)
            ).all()
        return {status: count for status, count in rows}


def left_to_send() -> ColumnElement[bool]:
    """The rows a resume sends: pending, sending (the outcome was lost) and retryable
    failures. An application is finished when none is left."""
    return LedgerRow.status.in_([Status.PENDING.value, Status.SENDING.value]) | (
        (LedgerRow.status == Status.FAILED.value) & LedgerRow.retryable
    )


def idempotency_key(plan_id: str, application_id: int, position: int) -> str:
    """The key of an action: its plan, the application and its position in the plan."""
    return f"{plan_id}.{application_id}.{position}"
