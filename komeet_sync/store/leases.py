"""One incremental writer per domain at a time (docs/incremental.md).

Two workers (or a worker and ``sync --person``) deciding for the same people at once would
each read Komeet before the other's writes and both create the same account. A writer
holds its domain's lease from its read of Komeet until its writes are recorded. A lease
expires after ``ttl`` seconds unless renewed, so a writer that died frees its domains
without anyone's help.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import DomainLeaseRow

TTL = 60.0


class Busy(Exception):
    """Another writer holds the domain's lease."""

    def __init__(self, domain: str, holder: str, expires_at: datetime) -> None:
        super().__init__(
            f"{domain} is being written by {holder} until {expires_at:%H:%M:%S} UTC at the "
            "latest; try again in a minute"
        )
        self.domain, self.holder, self.expires_at = domain, holder, expires_at


def holder_name() -> str:
    """This process, as other writers see it in a ``Busy`` message."""
    return f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"


@dataclass
class Lease:
    engine: Engine
    domain: str
    holder: str
    ttl: float

    def renew(self) -> None:
        """Keep the lease ``ttl`` more seconds; raises Busy if it was lost (it expired and
        another writer took it): stop writing then."""
        if not _take(self.engine, self.domain, self.holder, self.ttl):
            raise Busy(self.domain, *_current(self.engine, self.domain))


@contextmanager
def domain_lease(
    engine: Engine,
    domain: str,
    holder: str,
    *,
    ttl: float = TTL,
    wait: float = 0.0,
    sleep: Callable[[float], object] = time.sleep,
) -> Iterator[Lease]:
    """Hold ``domain``'s lease inside the block, waiting up to ``wait`` seconds for it;
    raises Busy when another writer keeps it longer."""
    deadline = time.monotonic() + wait
    while not _take(engine, domain, holder, ttl):
        if time.monotonic() >= deadline:
            raise Busy(domain, *_current(engine, domain))
        sleep(0.05)
    try:
        yield Lease(engine, domain, holder, ttl)
    finally:
        with write_lock(engine), engine.begin() as connection:
            connection.execute(
                delete(DomainLeaseRow).where(
                    DomainLeaseRow.domain == domain, DomainLeaseRow.holder == holder
                )
            )


def _take(engine: Engine, domain: str, holder: str, ttl: float) -> bool:
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=ttl)
    with write_lock(engine):
        try:
            with engine.begin() as connection:
                connection.execute(
                    insert(DomainLeaseRow).values(
                        domain=domain, holder=holder, expires_at=expires_at
                    )
                )
            return True
        except IntegrityError:
            pass
        with engine.begin() as connection:
            taken = connection.execute(
                update(DomainLeaseRow)
                .where(
                    DomainLeaseRow.domain == domain,
                    or_(DomainLeaseRow.holder == holder, DomainLeaseRow.expires_at < now),
                )
                .values(holder=holder, expires_at=expires_at)
            )
            return taken.rowcount == 1


def _current(engine: Engine, domain: str) -> tuple[str, datetime]:
    with engine.connect() as connection:
        row = connection.execute(
            select(DomainLeaseRow.holder, DomainLeaseRow.expires_at).where(
                DomainLeaseRow.domain == domain
            )
        ).first()
    if row is None:  # released meanwhile
        return "nobody", datetime.now(UTC)
    return row.holder, as_utc(row.expires_at)
