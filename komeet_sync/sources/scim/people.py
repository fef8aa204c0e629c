"""A SCIM domain's staged people read by key, for an incremental sync (``runs.incremental``'s
PeopleSide; ARCHITECTURE.md, "Full and incremental syncs").

Each answer is what reading the whole staging (``staging.read_staging``) and keeping only
the people asked for gives (``DirectorySnapshot.restricted_to``), found through indexes:
the people holding a key through ``scim_person_keys``, and their selected groups from the
groups that list them, upwards through nested groups, never from the whole directory.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pandas as pd
from sqlalchemy import Connection, Engine, Table, exists, func, select

from komeet_sync.model.domain_config import DomainConfig, fold
from komeet_sync.model.frames import GROUP_MEMBERS, GROUPS, Source
from komeet_sync.model.scim_keys import EMPLOYEE_ID, Key, indexed
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.sources.scim import resources as scim_resources
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.tables import (
    GROUP,
    USER,
    ScimMembershipRow,
    ScimPersonKeyRow,
    ScimResourceRow,
)

T = TypeVar("T")


class StagedPeople:
    """The people an IdP pushed to ``config``'s domain, read by key or by resource id."""

    def __init__(self, engine: Engine, config: DomainConfig) -> None:
        self.engine = engine
        self.config = config
        self.domain_id = DomainStore(engine).id_of(config.domain)

    def holding(self, keys: Collection[Key]) -> DirectorySnapshot:
        """The people holding any of ``keys`` (``engine.reconcile.node_keys``' keys)."""
        by_namespace: dict[str, list[str]] = defaultdict(list)
        for namespace, value in set(keys):
            by_namespace[namespace].append(indexed(value))
        with self.engine.connect() as connection:
            ids: set[str] = set()
            for namespace, values in by_namespace.items():
                for part in _parts(sorted(values)):
                    ids.update(
                        connection.scalars(
                            select(_KEYS.c.resource_id).where(
                                _KEYS.c.domain_id == self.domain_id,
                                _KEYS.c.namespace == namespace,
                                _KEYS.c.value.in_(part),
                            )
                        )
                    )
            return self._people(connection, sorted(ids))

    def by_ids(self, account_ids: Iterable[str]) -> DirectorySnapshot:
        """The people with these resource ids; an id of no staged user is left out."""
        with self.engine.connect() as connection:
            return self._people(connection, sorted(set(account_ids)))

    def holders(self, employee_ids: Collection[str]) -> dict[str, int]:
        """How many staged users (deleted ones included) hold each employee id."""
        held: dict[str, int] = {}
        with self.engine.connect() as connection:
            stored = {indexed(value): value for value in employee_ids}
            for part in _parts(sorted(stored)):
                counted = connection.execute(
                    select(_KEYS.c.value, func.count(func.distinct(_KEYS.c.resource_id)))
                    .where(
                        _KEYS.c.domain_id == self.domain_id,
                        _KEYS.c.namespace == EMPLOYEE_ID,
                        _KEYS.c.value.in_(part),
                    )
                    .group_by(_KEYS.c.value)
                )
                held.update({stored[value]: int(count) for value, count in counted})
        return held

    def groups_listed(self) -> dict[str, int]:
        """Each selected group that exists: 1 when the whole staging lists a member under it
        (directly, or under a nested group), else 0. The empty-group guard compares it with
        0 (``reconcile.DomainFacts.groups_listed``), so a group that lists a user directly
        is answered by one short query, never by counting its 100,000 members."""
        listed: dict[str, int] = {}
        with self.engine.connect() as connection:
            for name, group_id in self._selected(connection).items():
                anyone = self._lists_anyone(connection, [group_id]) or self._lists_anyone(
                    connection, sorted(self._groups_under(connection, group_id))
                )
                listed[name] = int(anyone)
        return listed

    def _lists_anyone(self, connection: Connection, groups: Sequence[str]) -> bool:
        """Whether any of ``groups`` lists a member that is not a live group."""
        return any(
            connection.scalar(
                select(_MEMBERS.c.member_id)
                .where(_MEMBERS.c.group_id.in_(part), ~exists().where(_LIVE_GROUP))
                .limit(1)
            )
            is not None
            for part in _parts(groups)
        )

    def membership_paths(self, account_id: str) -> dict[str, list[str]]:
        """For each selected group the person is in, the display names of the groups from
        the selected group (left out) down to the one that lists the person (``[]``: the
        selected group lists the person itself); the shortest such chain."""
        with self.engine.connect() as connection:
            direct = self._groups_listing(connection, [account_id]).get(account_id, [])
            parents = self._parents(connection, direct)
            chains: dict[str, list[str]] = {group: [] for group in direct}
            due = list(direct)
            while due:  # breadth first: the first chain found to a group is a shortest one
                following = []
                for child in due:
                    for parent in parents.get(child, []):
                        if parent not in chains:
                            chains[parent] = [child, *chains[child]]
                            following.append(parent)
                due = following
            names = self._names(connection, {g for chain in chains.values() for g in chain})
            return {
                selected: [names.get(group, group) for group in chains[group_id]]
                for selected, group_id in self._selected(connection).items()
                if group_id in chains
            }

    # -- reading --

    def _people(self, connection: Connection, ids: Sequence[str]) -> DirectorySnapshot:
        started, clock = datetime.now(UTC), time.monotonic()
        users: list[dict[str, Any]] = []
        deleted: set[str] = set()
        for part in _parts(ids):
            rows = connection.execute(
                select(_RESOURCES.c.id, _RESOURCES.c.deleted_at, _RESOURCES.c.document).where(
                    _RESOURCES.c.domain_id == self.domain_id,
                    _RESOURCES.c.resource_type == USER,
                    _RESOURCES.c.id.in_(part),
                )
            )
            for resource_id, deleted_at, document in rows:
                users.append({**document, "id": resource_id})
                if deleted_at is not None:
                    deleted.add(resource_id)
        read = scim_resources.snapshot(users, deleted=deleted)
        found = [u["id"] for u in users]
        selected = self._selected(connection)
        snapshot = DirectorySnapshot.of(
            Source.SCIM,
            users=read.users,
            aliases=read.aliases,
            members=pd.DataFrame(
                self._member_rows(connection, found, selected), columns=list(GROUP_MEMBERS)
            ),
            groups=pd.DataFrame(
                [(name, name in selected) for name in self.config.groups], columns=list(GROUPS)
            ),
            read_errors=read.read_errors,
        )
        return dataclasses.replace(snapshot, started_at=started, seconds=time.monotonic() - clock)

    def _member_rows(
        self, connection: Connection, user_ids: list[str], selected: dict[str, str]
    ) -> list[tuple]:
        """A row (selected group, user) for each group under a selected group (itself
        included) that lists the user: as ``resources.snapshot`` lists nested members."""
        if not selected or not user_ids:
            return []
        listing = self._groups_listing(connection, user_ids)
        parents = self._parents(connection, {g for groups in listing.values() for g in groups})
        above: dict[str, set[str]] = {}  # group -> itself and every group it is under
        rows: list[tuple] = []
        for user_id, groups in listing.items():
            for group in groups:
                if group not in above:
                    above[group] = _closure(group, parents)
                rows.extend(
                    (name, user_id, None, "USER")
                    for name, group_id in selected.items()
                    if group_id in above[group]
                )
        return rows

    def _selected(self, connection: Connection) -> dict[str, str]:
        """Each selected group (as the configuration names it) that is a live group of the
        domain, and its id; names compared folded (``domain_config.fold``)."""
        wanted = {fold(name) for name in self.config.groups}
        if not wanted:
            return {}
        found: dict[str, str] = {}
        rows = connection.execute(
            select(_RESOURCES.c.id, _DISPLAY_NAME).where(
                _RESOURCES.c.domain_id == self.domain_id,
                _RESOURCES.c.resource_type == GROUP,
                _RESOURCES.c.deleted_at.is_(None),
            )
        )
        for group_id, display_name in rows:
            if display_name and fold(display_name) in wanted:
                found[fold(display_name)] = group_id
        return {name: found[fold(name)] for name in self.config.groups if fold(name) in found}

    def _groups_listing(
        self, connection: Connection, member_ids: Iterable[str]
    ) -> dict[str, list[str]]:
        """The groups that list each of these members directly."""
        listing: dict[str, list[str]] = defaultdict(list)
        for part in _parts(sorted(set(member_ids))):
            rows = connection.execute(
                select(_MEMBERS.c.member_id, _MEMBERS.c.group_id).where(
                    _MEMBERS.c.domain_id == self.domain_id, _MEMBERS.c.member_id.in_(part)
                )
            )
            for member_id, group_id in rows:
                listing[member_id].append(group_id)
        return listing

    def _parents(self, connection: Connection, groups: Iterable[str]) -> dict[str, list[str]]:
        """The groups that list each of ``groups`` and, in turn, each group found: every
        group above them."""
        parents: dict[str, list[str]] = {}
        due = set(groups)
        while due:
            found = self._groups_listing(connection, due)
            parents.update({group: found.get(group, []) for group in due})
            due = {p for listed in found.values() for p in listed} - parents.keys()
        return parents

    def _groups_under(self, connection: Connection, group_id: str) -> set[str]:
        """A group and the live groups nested in it, at any depth."""
        under, due = {group_id}, [group_id]
        while due:
            nested: list[str] = []
            for part in _parts(due):
                nested.extend(
                    connection.scalars(
                        select(_MEMBERS.c.member_id)
                        .where(_MEMBERS.c.group_id.in_(part))
                        .where(exists().where(_LIVE_GROUP))
                    )
                )
            due = [group for group in dict.fromkeys(nested) if group not in under]
            under.update(due)
        return under

    def _names(self, connection: Connection, group_ids: set[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for part in _parts(sorted(group_ids)):
            rows = connection.execute(
                select(_RESOURCES.c.id, _DISPLAY_NAME).where(_RESOURCES.c.id.in_(part))
            )
            names.update({group_id: name for group_id, name in rows})
        return names


def _closure(group: str, parents: dict[str, list[str]]) -> set[str]:
    """A group and every group above it."""
    seen, due = {group}, [group]
    while due:
        for parent in parents.get(due.pop(), []):
            if parent not in seen:
                seen.add(parent)
                due.append(parent)
    return seen


def _parts(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """``values`` in parts within SQLite's bound parameters."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


_RESOURCES = cast(Table, ScimResourceRow.__table__)
_MEMBERS = cast(Table, ScimMembershipRow.__table__)
_KEYS = cast(Table, ScimPersonKeyRow.__table__)
_DISPLAY_NAME = _RESOURCES.c.document["displayName"].as_string()
# A membership whose member is a live group of the domain: a nested group, not a person.
_LIVE_GROUP = (
    (_RESOURCES.c.id == _MEMBERS.c.member_id)
    & (_RESOURCES.c.domain_id == _MEMBERS.c.domain_id)
    & (_RESOURCES.c.resource_type == GROUP)
    & _RESOURCES.c.deleted_at.is_(None)
)
