"""The failures of orchestrated syncs, recorded where the CLI and the notebooks read them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, insert, select

from komeet_sync.store.database import write_lock
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
