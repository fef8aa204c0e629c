"""The staged users each accepted SCIM write touched, in the order the writes committed: what
an incremental sync of a SCIM domain decides for (ARCHITECTURE.md, "Full and incremental
syncs"), and how far each consumer of them has got.

A change's ``seq`` grows in commit order within a domain: the writers of a domain take one
lock just before recording (SQLite has one writer; on PostgreSQL a transaction-level
advisory lock per domain), so the sequence number is drawn in the order the writes commit,
and a consumer that has read up to ``seq`` never later finds an earlier one. Its
``accepted_at`` is the moment the write committed: an incremental sync's latency is
counted from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Engine, Table, case, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from komeet_sync.model.scim_keys import Key, as_json
from komeet_sync.store.database import as_utc
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.tables import DomainConfigRow, ScimChangeRow, SyncCursorRow

WORKER = "worker"  # the incremental sync's consumer

# The first key of the advisory locks that order a domain's changes (the second: its id).
_LOCK_CLASS = 0x5C1C


@dataclass(frozen=True)
class Change:
    """A staged user (``resource_id``) a write accepted at ``accepted_at`` touched, with
    the keys it held before that write."""

    seq: int
    domain: str
    resource_id: str
    accepted_at: datetime
    keys: tuple[Key, ...]


def record(
    connection: Connection,
    domain_id: int,
    touched: Mapping[str, Sequence[Key]],
    accepted_at: datetime,
) -> None:
    """Record the users a write touched (each with its keys before the write), as the last
    statement of the write's transaction: the lock taken here is held until the commit."""
    if not touched:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(_ADVISORY_LOCK, {"domain_id": domain_id})
    connection.execute(
        _INSERT,
        [
            {
                "domain_id": domain_id,
                "resource_id": resource_id,
                "accepted_at": accepted_at,
                "keys": json.dumps(as_json(keys)),
            }
            for resource_id, keys in sorted(touched.items())
        ],
    )


def read_changes(engine: Engine, domain: str, after: int, limit: int) -> list[Change]:
    """The domain's changes after ``seq`` ``after``, at most ``limit``, in order."""
    domain_id = DomainStore(engine).id_of(domain)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                _CHANGES.c.seq, _CHANGES.c.resource_id, _CHANGES.c.accepted_at, _CHANGES.c["keys"]
            )
            .where(_CHANGES.c.domain_id == domain_id, _CHANGES.c.seq > after)
            .order_by(_CHANGES.c.seq)
            .limit(limit)
        ).all()
    return [
        Change(
            seq=seq,
            domain=domain,
            resource_id=resource_id,
            accepted_at=as_utc(accepted_at),
            keys=tuple((namespace, value) for namespace, value in json.loads(keys)),
        )
        for seq, resource_id, accepted_at, keys in rows
    ]


def cursor(engine: Engine, domain: str, consumer: str = WORKER) -> int:
    """The last ``seq`` of the domain's changes ``consumer`` has processed (0: none)."""
    domain_id = DomainStore(engine).id_of(domain)
    with engine.connect() as connection:
        seq = connection.scalar(
            select(_CURSORS.c.seq).where(
                _CURSORS.c.domain_id == domain_id, _CURSORS.c.consumer == consumer
            )
        )
    return int(seq or 0)


def advance(engine: Engine, domain: str, consumer: str, seq: int) -> None:
    """Note that ``consumer`` has processed the domain's changes up to ``seq``. A cursor
    never moves back: an older ``seq`` (a slow consumer's late word) changes nothing."""
    domain_id = DomainStore(engine).id_of(domain)
    where = (_CURSORS.c.domain_id == domain_id) & (_CURSORS.c.consumer == consumer)
    for _ in range(2):  # the first cursor of a consumer may be inserted by two at once
        with engine.begin() as connection:
            moved = connection.execute(
                update(_CURSORS)
                .where(where)
                .values(seq=case((_CURSORS.c.seq < seq, seq), else_=_CURSORS.c.seq))
            )
            if moved.rowcount:
                return
            try:
                connection.execute(
                    insert(_CURSORS).values(domain_id=domain_id, consumer=consumer, seq=seq)
                )
                return
            except IntegrityError:
                continue


def pending(engine: Engine, consumer: str = WORKER) -> dict[str, tuple[int, datetime]]:
    """Each domain with changes ``consumer`` has not processed: how many, and when the
    oldest of them was accepted (how long the domain has been waiting)."""
    # From the few domains down the (domain, seq) index: never a scan of every change.
    with engine.connect() as connection:
        rows = connection.execute(
            select(_DOMAINS.c.domain, func.count(), func.min(_CHANGES.c.accepted_at))
            .select_from(_DOMAINS)
            .outerjoin(
                _CURSORS,
                (_CURSORS.c.domain_id == _DOMAINS.c.id) & (_CURSORS.c.consumer == consumer),
            )
            .join(
                _CHANGES,
                (_CHANGES.c.domain_id == _DOMAINS.c.id)
                & (_CHANGES.c.seq > func.coalesce(_CURSORS.c.seq, 0)),
            )
            .group_by(_DOMAINS.c.domain)
        ).all()
    return {domain: (int(count), as_utc(oldest)) for domain, count, oldest in rows}


_CHANGES = cast(Table, ScimChangeRow.__table__)
_CURSORS = cast(Table, SyncCursorRow.__table__)
_DOMAINS = cast(Table, DomainConfigRow.__table__)
_INSERT = insert(_CHANGES)
_ADVISORY_LOCK = text(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, :domain_id)")


def decided_by_whole_read(engine: Engine, domain: str, read_at: datetime) -> None:
    """A whole sync that read the domain's staging at ``read_at`` and applied its plan has
    decided for every change committed before: the worker skips them. A change committed
    within ``_COMMIT_MARGIN`` of the read may have been invisible to it and is decided
    again (which sends nothing if the whole sync did)."""
    domain_id = DomainStore(engine).id_of(domain)
    with engine.connect() as connection:
        seq = connection.scalar(
            select(func.max(_CHANGES.c.seq)).where(
                _CHANGES.c.domain_id == domain_id,
                _CHANGES.c.accepted_at < read_at - _COMMIT_MARGIN,
            )
        )
    if seq is not None:
        advance(engine, domain, WORKER, int(seq))


_COMMIT_MARGIN = timedelta(seconds=5)
