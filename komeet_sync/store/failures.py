"""The failures of syncs, recorded where the CLI and the notebooks read them: a Dagster run's
(its run failure sensor) and a ``komeet-sync sync`` or ``apply`` that raised (``runs.sync``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, func, insert, select

from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import SyncFailureRow

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
