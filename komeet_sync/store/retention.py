"""How retention deletes from the database and the result store, counting by domain
(README, "Retention"): rows of the SCIM request log and of the change log, older than a
cutoff (and, for a change, processed by every consumer), and the folders of past syncs
(``ResultStore.history``). The cutoff, and the rows and syncs kept whatever their age, are
``runs.retention``'s to say.

Rows go in batches of ``BATCH``, each a transaction of its own that deletes by primary key:
the SCIM endpoint writes the request log all the while, and SQLite has one writer, which a
batch holds for milliseconds, never for the whole prune. An interrupted prune has deleted
whole batches, and whole syncs but perhaps the last one's folder in part; the next prune
goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute

from komeet_sync.store.database import write_lock
from komeet_sync.store.sync_folder import StoredSync
from komeet_sync.store.tables import (
    DomainConfigRow,
    ScimChangeRow,
    ScimRequestRow,
    SyncCursorRow,
)

BATCH = 1_000  # a batch holds SQLite's one writer about 20 ms (rows of about 1 KiB)
NO_DOMAIN = "(no domain)"  # a request whose path named no domain


@dataclass(frozen=True)
class Amount:
    """What is deleted of one kind: rows, or syncs with their files and bytes."""

    count: int = 0
    files: int = 0
    size: int = 0  # bytes

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.count + other.count, self.files + other.files, self.size + other.size)


ByDomain = dict[str, Amount]


def added(counts: ByDomain, more: ByDomain) -> ByDomain:
    """``counts`` and ``more``, summed domain by domain."""
    return {
        domain: counts.get(domain, Amount()) + more.get(domain, Amount())
        for domain in sorted(counts.keys() | more.keys())
    }


@dataclass(frozen=True)
class RowLog:
    """A table retention deletes rows of: its key, the domain each row is of, and which
    rows are old (``where``, given the cutoff and the rows kept whatever their age)."""

    key: InstrumentedAttribute[int]
    # How the domain column names a row's domain (an id is looked up in ``engine``).
    domain: Callable[[Engine], Callable[[Any], str]]
    domain_column: InstrumentedAttribute[Any]
    where: Callable[[datetime, Collection[int]], ColumnElement[bool]]

    def count(self, engine: Engine, before: datetime, keep: Collection[int] = ()) -> ByDomain:
        """The rows older than ``before``, by domain: what ``delete`` deletes."""
        query = (
            select(self.domain_column, func.count())
            .where(self.where(before, keep))
            .group_by(self.domain_column)
        )
        name = self.domain(engine)
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        return added({}, {name(value): Amount(int(count)) for value, count in rows})

    def delete(
        self, engine: Engine, before: datetime, keep: Collection[int] = (), batch: int = BATCH
    ) -> Iterator[ByDomain]:
        """Delete the rows older than ``before``, oldest first, a batch per transaction;
        each batch's rows by domain once it is committed."""
        name = self.domain(engine)
        oldest = select(self.key).where(self.where(before, keep)).order_by(self.key).limit(batch)
        statement = (
            delete(self.key.class_)
            .where(self.key.in_(oldest))
            .returning(self.domain_column)
            .execution_options(synchronize_session=False)
        )
        while True:
            with write_lock(engine), engine.begin() as connection:
                deleted = connection.execute(statement).scalars().all()
            if not deleted:
                return
            counts: ByDomain = {}
            for value in deleted:
                domain = name(value)
                counts[domain] = counts.get(domain, Amount()) + Amount(1)
            yield counts
            if len(deleted) < batch:
                return


def _named(engine: Engine) -> Callable[[Any], str]:
    return lambda domain: domain or NO_DOMAIN


def _domain_names(engine: Engine) -> Callable[[Any], str]:
    """A domain's name from its id; a domain removed meanwhile by its id."""
    with engine.connect() as connection:
        names = dict(connection.execute(select(DomainConfigRow.id, DomainConfigRow.domain)).all())
    return lambda domain_id: names.get(domain_id, f"domain #{domain_id}")


def _old_requests(before: datetime, keep: Collection[int]) -> ColumnElement[bool]:
    return (ScimRequestRow.at < before) & ScimRequestRow.id.not_in(list(keep))


def _read_changes(before: datetime, keep: Collection[int]) -> ColumnElement[bool]:
    """Changes older than ``before`` that every consumer of their domain has processed
    (``sources.scim.changes``: a cursor never moves back, and nothing reads a change at or
    before it). A domain without a cursor keeps them all."""
    passed = (
        select(func.min(SyncCursorRow.seq))
        .where(SyncCursorRow.domain_id == ScimChangeRow.domain_id)
        .scalar_subquery()
    )
    return (ScimChangeRow.accepted_at < before) & (ScimChangeRow.seq <= passed)


# The SCIM request log: ``keep`` are rows kept whatever their age.
REQUEST_LOG = RowLog(ScimRequestRow.id, _named, ScimRequestRow.domain, _old_requests)
# The change log the incremental worker reads (``sources.scim.changes``).
CHANGE_LOG = RowLog(ScimChangeRow.seq, _domain_names, ScimChangeRow.domain_id, _read_changes)


def measure(sync: StoredSync) -> Amount:
    """A stored sync: one sync, its files and their bytes."""
    files = [
        info
        for folder in sync.folders()
        for info in folder.fs.find(str(folder), detail=True).values()
        if info.get("type") == "file"
    ]
    return Amount(1, len(files), sum(int(info.get("size") or 0) for info in files))


def delete_sync(sync: StoredSync) -> Amount:
    """Delete a stored sync's folders; what they held."""
    held = measure(sync)
    for folder in sync.folders():
        folder.fs.rm(str(folder), recursive=True)
    return held
