"""The failures of syncs, recorded where the CLI and the notebooks read them: a Dagster run's
(its run failure sensor) and a ``komeet-sync sync`` or ``apply`` that raised (``runs.sync``);
and a domain's latest runs, failed or not, as its quarantine counts them (``latest_runs``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, func, insert, not_, select

from komeet_sync.engine.quarantine import actions_reason, application_failed
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.events import EventKind
from komeet_sync.store.ledger import Status
from komeet_sync.store.plans import Scope
from komeet_sync.store.tables import ApplicationRow, EventRow, LedgerRow, PlanRow, SyncFailureRow

MESSAGE_KEPT = 4000


def record_failure(engine: Engine, domain: str | None, run_id: str, job: str, message: str) -> None:
    with write_lock(engine), engine.begin() as connection:
        connection.execute(
            insert(SyncFailureRow).values(
                at=datetime.now(UTC),
                domain=domain,
                run_id=run_id,
                job=job,
                message=message[:MESSAGE_KEPT],
            )
        )


def recent_failures(engine: Engine, domain: str | None = None, limit: int = 5) -> pd.DataFrame:
    """The latest failures, newest first (of one domain, or of all)."""
    query = (
        select(
            SyncFailureRow.at, SyncFailureRow.domain, SyncFailureRow.run_id, SyncFailureRow.message
        )
        .order_by(SyncFailureRow.id.desc())
        .limit(limit)
    )
    if domain is not None:
        query = query.where(SyncFailureRow.domain == domain)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=["at", "domain", "run_id", "message"])


LATEST_COLUMNS = ["at", "domain", "run_id", "job", "message"]


def latest_failures(engine: Engine) -> pd.DataFrame:
    """Each domain's latest failure (LATEST_COLUMNS), in one query however many domains."""
    latest = (
        select(func.max(SyncFailureRow.id))
        .where(SyncFailureRow.domain.is_not(None))
        .group_by(SyncFailureRow.domain)
    )
    query = select(*(getattr(SyncFailureRow, column) for column in LATEST_COLUMNS)).where(
        SyncFailureRow.id.in_(latest)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=LATEST_COLUMNS)
    frame["at"] = frame["at"].map(as_utc)
    return frame


@dataclass(frozen=True)
class RunOutcome:
    """A whole-domain run as the quarantine counts it (``engine.quarantine``): a recorded
    failure, or an application of a whole sync's plan that attempted something (or had
    nothing to do), failed or not; ``cause`` says what happened, in words."""

    at: datetime
    failed: bool
    cause: str


def latest_runs(
    engine: Engine, domain: str, limit: int, jobs_left_out: Iterable[str] = ()
) -> list[RunOutcome]:
    """The domain's latest ``limit`` runs since it was last released (a release starts the
    count afresh), newest first: its recorded failures, but those of jobs beginning with one
    of ``jobs_left_out`` (what is not a whole-domain run), and the applications of its
    whole syncs' plans, each as it stands now (a resume that settled its failures makes it
    a success). An application that attempted nothing yet is no run."""
    with engine.connect() as connection:
        released = connection.scalar(
            select(func.max(EventRow.at)).where(
                EventRow.domain == domain, EventRow.kind == EventKind.RELEASED.value
            )
        )
        after = [] if released is None else [as_utc(released)]
        failures = connection.execute(
            select(SyncFailureRow.at, SyncFailureRow.message)
            .where(
                SyncFailureRow.domain == domain,
                *(SyncFailureRow.at > moment for moment in after),
                *(
                    not_(SyncFailureRow.job.startswith(job, autoescape=True))
                    for job in jobs_left_out
                ),
            )
            .order_by(SyncFailureRow.id.desc())
            .limit(limit)
        ).all()
        applications = (
            select(ApplicationRow.id, ApplicationRow.plan_id, ApplicationRow.started_at)
            .join(PlanRow, PlanRow.plan_id == ApplicationRow.plan_id)
            .where(
                PlanRow.domain == domain,
                PlanRow.scope == Scope.DOMAIN.value,
                *(ApplicationRow.started_at > moment for moment in after),
            )
            .order_by(ApplicationRow.id.desc())
            .limit(limit)
            .subquery()
        )
        counted = connection.execute(
            select(
                applications.c.id,
                applications.c.plan_id,
                applications.c.started_at,
                func.count(LedgerRow.idempotency_key).label("actions"),
                func.count(LedgerRow.idempotency_key)
                .filter(LedgerRow.status == Status.FAILED.value)
                .label("failed"),
                func.count(LedgerRow.idempotency_key)
                .filter(LedgerRow.status == Status.APPLIED.value)
                .label("applied"),
            )
            .select_from(applications)
            .outerjoin(LedgerRow, LedgerRow.application_id == applications.c.id)
            .group_by(applications.c.id, applications.c.plan_id, applications.c.started_at)
        ).all()
    runs = [RunOutcome(as_utc(row.at), True, str(row.message)) for row in failures]
    for row in counted:
        attempted = row.failed + row.applied
        if row.actions and not attempted:
            continue
        failed = application_failed(row.failed, attempted)
        cause = actions_reason(row.failed, attempted, row.plan_id) if failed else "applied"
        runs.append(RunOutcome(as_utc(row.started_at), failed, cause))
    return sorted(runs, key=lambda run: run.at, reverse=True)[:limit]
