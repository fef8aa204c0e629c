"""The events a person is told of (README, "Notifications"), each recorded once.

An event is recorded where it happens (a sync that holds its plan, a run that fails, a
quarantine, the SCIM endpoint refusing pushes, the worker falling behind) and sent
afterwards (``komeet_sync.notify``): recording is one INSERT, never a network call, so
telling someone never slows or fails the sync. ``key`` names the occurrence (the held
plan's id, the failed run's id, ...): recording the same key again records nothing, so the
same held plan is notified once however many syncs hold it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import EventRow

KEY_LENGTH = 255

# Set when this process records an event: its sender (``komeet_sync.notify``) wakes at once.
RECORDED = threading.Event()


class EventKind(StrEnum):
    PLAN_HELD = "plan held"
    SYNC_FAILED = "sync failed"
    QUARANTINED = "quarantined"
    RELEASED = "released"
    PUSHES_REFUSED = "pushes refused"
    WORKER_BEHIND = "worker behind"


@dataclass(frozen=True)
class Event:
    """One event as recorded: ``subject`` is its one line, ``body`` what to read and do."""

    kind: EventKind
    domain: str | None
    key: str
    subject: str
    body: str
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    id: int | None = None
    attempts: int = 0
    delivered_at: datetime | None = None
    delivery: str | None = None

    @property
    def title(self) -> str:
        """The subject of the email, the title of the chat message."""
        return f"komeet-sync: {self.subject}"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat() if self.at else None,
            "domain": self.domain,
            "kind": self.kind.value,
            "subject": self.subject,
            "body": self.body,
            "details": self.details,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "delivery": self.delivery,
        }


def record_event(engine: Engine, event: Event) -> Event | None:
    """Record ``event``, as recorded (with its id and time); None when its key was recorded
    before: that occurrence is known, and notified already or about to be."""
    return next(iter(record_events(engine, [event])), None)


def record_events(engine: Engine, events: Iterable[Event]) -> list[Event]:
    """Record each of ``events`` whose key was not recorded before; those recorded, as
    recorded. Two statements however many: a sensor telling of a thousand domains at each
    evaluation asks once which it told of already, and inserts the others at once."""
    keyed = {event.key[:KEY_LENGTH]: event for event in events}
    if not keyed:
        return []
    with engine.connect() as connection:
        known = set(connection.scalars(select(EventRow.key).where(EventRow.key.in_(keyed))))
    fresh = {key: event for key, event in keyed.items() if key not in known}
    if not fresh:
        return []
    at = datetime.now(UTC)
    rows = [
        {
            "at": at,
            "domain": event.domain,
            "kind": event.kind.value,
            "key": key,
            "subject": event.subject,
            "body": event.body,
            "details": event.details,
            "attempts": 0,
        }
        for key, event in fresh.items()
    ]
    try:
        with write_lock(engine), engine.begin() as connection:
            recorded = connection.execute(
                insert(EventRow).returning(EventRow.key, EventRow.id), rows
            ).all()
    except IntegrityError:  # another process recorded one of them meanwhile
        if len(fresh) == 1:
            return []
        return [done for event in fresh.values() for done in record_events(engine, [event])]
    RECORDED.set()
    ids = {key: row_id for key, row_id in recorded}
    return [dataclasses.replace(event, key=key, at=at, id=ids[key]) for key, event in fresh.items()]


def undelivered(engine: Engine, most_attempts: int) -> list[Event]:
    """Events whose sending has not ended, oldest first: tried fewer than ``most_attempts``
    times and not being sent by a process now."""
    now = datetime.now(UTC)
    with engine.connect() as connection:
        rows = connection.execute(
            select(EventRow)
            .where(
                EventRow.delivered_at.is_(None),
                EventRow.attempts < most_attempts,
                or_(EventRow.claimed_until.is_(None), EventRow.claimed_until < now),
            )
            .order_by(EventRow.id)
        ).all()
    return [_event(row, row.id) for row in rows]


def claim(engine: Engine, event: Event, hold: timedelta) -> bool:
    """Take ``event`` to send it, for ``hold`` at most: False when another process took it
    since it was read (its attempts changed) or sent it; each claim counts one attempt."""
    now = datetime.now(UTC)
    with write_lock(engine), engine.begin() as connection:
        taken = connection.execute(
            update(EventRow)
            .where(
                EventRow.id == event.id,
                EventRow.attempts == event.attempts,
                EventRow.delivered_at.is_(None),
                or_(EventRow.claimed_until.is_(None), EventRow.claimed_until < now),
            )
            .values(attempts=EventRow.attempts + 1, claimed_until=now + hold)
        )
    return taken.rowcount == 1


def record_delivery(engine: Engine, event_id: int, outcome: str, settled: bool) -> None:
    """The outcome of a try at sending an event, in words; ``settled`` ends the tries (it was
    sent, or there is nowhere to send it)."""
    with write_lock(engine), engine.begin() as connection:
        connection.execute(
            update(EventRow)
            .where(EventRow.id == event_id)
            .values(
                delivery=outcome,
                claimed_until=None,
                delivered_at=datetime.now(UTC) if settled else None,
            )
        )


EVENT_COLUMNS = ["at", "domain", "kind", "subject", "delivery"]


def recent_events(engine: Engine, domain: str | None = None, limit: int = 10) -> list[Event]:
    """The latest events, newest first (of one domain, or of all)."""
    query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
    if domain is not None:
        query = query.where(EventRow.domain == domain)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [_event(row, row.id) for row in rows]


def events_frame(events: list[Event]) -> pd.DataFrame:
    """Events as the notebooks show them (EVENT_COLUMNS)."""
    return pd.DataFrame(
        [
            (event.at, event.domain, event.kind.value, event.subject, event.delivery)
            for event in events
        ],
        columns=EVENT_COLUMNS,
    )


def _event(row: Any, row_id: int) -> Event:
    return Event(
        kind=EventKind(row.kind),
        domain=row.domain,
        key=row.key,
        subject=row.subject,
        body=row.body,
        details=dict(row.details or {}),
        at=as_utc(row.at),
        id=row_id,
        attempts=row.attempts or 0,
        delivered_at=as_utc(row.delivered_at) if row.delivered_at else None,
        delivery=row.delivery,
    )
