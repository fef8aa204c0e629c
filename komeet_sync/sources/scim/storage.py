"""The SCIM staging tables of one domain, as scim2-server's storage (``ScimStorage``).

Every write is one transaction: a resource, its unique values and its group memberships
change together or not at all, so a crash cannot leave half a request in staging. Unique
values (RFC 7643 §2.1: ``userName`` is unique on the server, whatever its case) are rows
with a primary key, so that of two concurrent creations of the same user one succeeds and
the other gets 409 ``uniqueness``. A deleted resource is kept and marked: a user the IdP
deleted becomes a leaver (ARCHITECTURE.md, "Situations").

The same transaction keeps each user's matching keys (``model.scim_keys``) and records the
users it touched (``changes``): the user written, or each user who joined or left a group
written, so that an incremental sync decides for them (ARCHITECTURE.md, "Full and
incremental syncs").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from scim2_models import (
    InvalidValueException,
    Meta,
    NotFoundException,
    Path,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    Uniqueness,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import parametrize
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from komeet_sync.model.emails import InvalidEmail, normalise_email
from komeet_sync.model.scim_keys import Key, indexed, person_keys
from komeet_sync.sources.scim import changes
from komeet_sync.sources.scim.quirks import SECRET_ATTRIBUTES
from komeet_sync.store.database import as_utc, write_lock
from komeet_sync.store.tables import (
    GROUP,
    USER,
    ScimMembershipRow,
    ScimPersonKeyRow,
    ScimResourceRow,
    ScimUniqueValueRow,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class StagingStorage(ScimStorage):
    """The staged resources of one domain configuration (``domain_id``).

    ``user_name_domains``, when given, are the domains a User's ``userName`` must be an
    email address of; a userName outside them is refused with 400 ``invalidValue``.
    """

    supports_cursors = False

    def __init__(
        self,
        engine: Engine,
        domain_id: int,
        provider: ScimProvider,
        *,
        user_name_domains: Sequence[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.domain_id = domain_id
        self.user_name_domains = tuple(user_name_domains) if user_name_domains else None
        self.clock = clock
        self._models = {
            str(rt.name): cast(type[Resource[Any]], provider.model_for(rt))
            for rt in provider.resource_types
        }

    # -- ScimStorage --

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        with self.engine.connect() as connection:
            return self._resource(self._fetch(connection, resource_type, resource_id))

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        names = list(dict.fromkeys(str(rt.name) for rt in resource_types))
        scim_filter = search_request.filter
        start = search_request.start_index_0 or 0
        count = search_request.count
        with Session(self.engine) as session:
            query = select(ScimResourceRow).where(
                ScimResourceRow.domain_id == self.domain_id,
                ScimResourceRow.resource_type.in_(names),
                ScimResourceRow.deleted_at.is_(None),
            )
            if scim_filter is None and search_request.sort_by is None:
                # Index paging in SQL, in the order of the identifiers.
                total = session.scalar(select(func.count()).select_from(query.subquery()))
                page = query.order_by(ScimResourceRow.id).offset(start)
                if count is not None:
                    page = page.limit(count)
                rows = session.scalars(page).all()
                return SearchPage(int(total or 0), [self._resource(row) for row in rows])
            user_name = _user_name_equality(scim_filter) if names == [USER] else None
            if user_name is not None:  # what IdPs ask before each creation
                key = _user_name_key(self._models[USER], user_name)
                query = query.where(ScimResourceRow.user_name_key == key)
            candidates = [self._resource(row) for row in session.scalars(query)]
        if scim_filter is not None and not scim_filter.models and candidates:
            models = tuple(dict.fromkeys(type(r) for r in candidates))
            scim_filter = parametrize(ScimFilter, models[0] if len(models) == 1 else models)(
                str(scim_filter)
            )
        found = [r for r in candidates if scim_filter is None or scim_filter.match(r)]
        descending = (
            search_request.sort_by is not None
            and search_request.sort_order == SearchRequest.SortOrder.descending
        )
        found.sort(key=lambda r: _sort_key(search_request, r), reverse=descending)
        stop = None if count is None else start + count
        return SearchPage(len(found), found[start:stop])

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        resource = _without_secrets(resource)
        self._check_user_name(resource_type, resource)
        now = self.clock()
        resource_id = uuid.uuid4().hex
        values = _unique_values(resource)
        document = _document(resource)
        keys = person_keys(resource_id, document) if resource_type.name == USER else []
        try:
            with write_lock(self.engine), self.engine.begin() as connection:
                connection.execute(
                    _INSERT,
                    {
                        "id": resource_id,
                        "domain_id": self.domain_id,
                        "resource_type": str(resource_type.name),
                        "user_name_key": _user_name_key_of(resource_type, resource),
                        "unique_digest": _digest(values, keys),
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                        "deleted_at": None,
                        "document": document,
                    },
                )
                self._add_unique_values(connection, resource_id, values)
                if resource_type.name == USER:
                    self._add_keys(connection, resource_id, keys)
                    self._record(connection, {resource_id: []})
                else:
                    members = _member_ids(resource)
                    self._add_members(connection, resource_id, members)
                    self._record(connection, self._users_under(connection, members))
        except IntegrityError:
            raise UniquenessException() from None
        return _stamped(resource, resource_type, resource_id, now, now, 1)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        resource = _without_secrets(resource)
        self._check_user_name(resource_type, resource)
        resource_id = cast(str, resource.id)
        quick = self._update_in_place(resource_type, resource, expected_version)
        if quick is not None:
            return quick
        for _ in range(5):  # another writer changed it between our read and our write
            now = self.clock()
            try:
                with write_lock(self.engine), self.engine.begin() as connection:
                    row = self._fetch(connection, resource_type, resource_id)
                    _check_version(row.version, expected_version)
                    values = _unique_values(resource)
                    document = _document(resource)
                    user = resource_type.name == USER
                    keys = person_keys(resource_id, document) if user else []
                    if _digest(values, keys) != row.unique_digest:
                        self._reindex_unique_values(connection, resource_id, values)
                    written = connection.execute(
                        update(_RESOURCES)
                        .where(_RESOURCES.c.id == resource_id, _RESOURCES.c.version == row.version)
                        .values(
                            document=document,
                            user_name_key=_user_name_key_of(resource_type, resource),
                            unique_digest=_digest(values, keys),
                            updated_at=now,
                            version=row.version + 1,
                        )
                    )
                    if written.rowcount != 1:
                        raise _Stale
                    if user:
                        before = person_keys(resource_id, row.document)
                        self._rekey(connection, resource_id, before, keys)
                    else:
                        renamed = row.document.get("displayName") != document.get("displayName")
                        self._record_members(connection, resource, renamed)
            except IntegrityError:
                raise UniquenessException() from None
            except _Stale:
                if expected_version is not None:
                    raise PreconditionFailedException() from None
                continue
            return _stamped(
                resource, resource_type, resource_id, as_utc(row.created_at), now, row.version + 1
            )
        raise PreconditionFailedException(detail="the resource kept changing; send it again")

    def change_members(
        self, group_type: ResourceType, group_id: str, added: list[dict], removed: list[str]
    ) -> Resource[Any]:
        """Add and remove members of a group, touching only their rows: the PATCH of one
        member, as Entra ID and Okta send them, costs the same in a group of 100,000 as in a
        group of ten. ``added`` are members as stored (``members[]`` of the document), each
        with a ``value``; ``removed`` are values. A member already in the group is not added
        twice (RFC 7644 §3.5.2.1), removing one that is not there changes nothing, and
        nothing written records no change. Returns the group without its members (the answer
        to such a PATCH is 204, RFC 7644 §3.5.2)."""
        for _ in range(5):  # another writer changed the group between our read and our write
            now = self.clock()
            with write_lock(self.engine), self.engine.begin() as connection:
                row = self._fetch(connection, group_type, group_id)
                document = dict(row.document)
                members = list(document.get("members") or [])
                present = {member.get("value") for member in members}
                leaving = set(removed) & present
                joining = {
                    m["value"]: m
                    for m in added
                    if m["value"] not in present and m["value"] not in leaving
                }
                version = row.version
                if joining or leaving:
                    kept = [m for m in members if m.get("value") not in leaving]
                    document["members"] = [*kept, *joining.values()]
                    written = connection.execute(
                        update(_RESOURCES)
                        .where(_RESOURCES.c.id == group_id, _RESOURCES.c.version == version)
                        .values(document=document, updated_at=now, version=version + 1)
                    )
                    if written.rowcount != 1:
                        continue
                    version += 1
                    if leaving:
                        connection.execute(
                            delete(_MEMBERS).where(
                                _MEMBERS.c.group_id == group_id,
                                _MEMBERS.c.member_id.in_(sorted(leaving)),
                            )
                        )
                    self._add_members(connection, group_id, list(joining))
                    touched = [*joining, *sorted(leaving)]
                    self._record(connection, self._users_under(connection, touched))
            group = self._models[GROUP].model_validate({"displayName": document.get("displayName")})
            modified = now if version != row.version else as_utc(row.updated_at)
            return _stamped(group, group_type, group_id, as_utc(row.created_at), modified, version)
        raise PreconditionFailedException(detail="the group kept changing; send it again")

    def _update_in_place(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        expected_version: str | None,
    ) -> Resource[Any] | None:
        """The common update of a user in one statement: the user is still at the version it
        was read at (or the one expected) and keeps its unique values and its keys (both in
        ``unique_digest``). None when that does not hold, and for a group (whose change
        needs its former name): the caller then reads the row and updates it in full."""
        meta = resource.meta
        version = _version_number(expected_version or (meta.version if meta else None))
        if version is None or meta is None or meta.created is None or resource_type.name != USER:
            return None
        values = _unique_values(resource)
        document = _document(resource)
        keys = person_keys(cast(str, resource.id), document)
        now = self.clock()
        try:
            with write_lock(self.engine), self.engine.begin() as connection:
                written = connection.execute(
                    update(_RESOURCES)
                    .where(
                        _RESOURCES.c.id == resource.id,
                        _RESOURCES.c.domain_id == self.domain_id,
                        _RESOURCES.c.resource_type == resource_type.name,
                        _RESOURCES.c.deleted_at.is_(None),
                        _RESOURCES.c.version == version,
                        _RESOURCES.c.unique_digest == _digest(values, keys),
                    )
                    .values(
                        document=document,
                        user_name_key=_user_name_key_of(resource_type, resource),
                        updated_at=now,
                        version=version + 1,
                    )
                )
                if written.rowcount != 1:
                    return None
                self._record(connection, {cast(str, resource.id): keys})  # keys unchanged
        except IntegrityError:
            raise UniquenessException() from None
        return _stamped(
            resource, resource_type, cast(str, resource.id), meta.created, now, version + 1
        )

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        now = self.clock()
        with write_lock(self.engine), self.engine.begin() as connection:
            row = self._fetch(connection, resource_type, resource_id)
            _check_version(row.version, expected_version)
            written = connection.execute(
                update(_RESOURCES)
                .where(_RESOURCES.c.id == resource_id, _RESOURCES.c.version == row.version)
                .values(deleted_at=now, updated_at=now, version=row.version + 1)
            )
            if written.rowcount != 1:
                raise PreconditionFailedException()
            connection.execute(delete(_UNIQUE).where(_UNIQUE.c.resource_id == resource_id))
            if row.resource_type == USER:  # a leaver: its keys stay, to find its account
                self._record(connection, {resource_id: person_keys(resource_id, row.document)})
            else:
                members = list(
                    connection.scalars(
                        select(_MEMBERS.c.member_id).where(_MEMBERS.c.group_id == resource_id)
                    )
                )
                connection.execute(delete(_MEMBERS).where(_MEMBERS.c.group_id == resource_id))
                self._record(connection, self._users_under(connection, members))

    # -- rows and resources --

    def _fetch(self, connection: Connection, resource_type: ResourceType, resource_id: str):
        found = None
        if resource_id:
            found = connection.execute(
                _FETCH,
                {"id": resource_id, "domain_id": self.domain_id, "type": str(resource_type.name)},
            ).one_or_none()
        if found is None:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return found

    def _resource(self, row: Any) -> Resource[Any]:
        resource = self._models[row.resource_type].model_validate(row.document)
        resource.id = row.id
        resource.meta = Meta(
            resource_type=row.resource_type,
            created=as_utc(row.created_at),
            last_modified=as_utc(row.updated_at),
            version=f'W/"{row.version}"',
        )
        return resource

    def _record_members(self, connection: Connection, group: Resource[Any], renamed: bool) -> None:
        """Store a group's new members, and record the users who joined or left it, or all
        of them, before and after, when it was renamed (a group is selected by name)."""
        joined, left, kept = self._reindex_members(
            connection, cast(str, group.id), _member_ids(group)
        )
        touched = joined + left + (kept if renamed else [])
        self._record(connection, self._users_under(connection, touched))

    def _reindex_unique_values(
        self, connection: Connection, resource_id: str, values: dict[str, str]
    ) -> None:
        stored = dict(
            connection.execute(
                select(_UNIQUE.c.urn, _UNIQUE.c.value).where(_UNIQUE.c.resource_id == resource_id)
            ).all()
        )
        gone = [urn for urn, value in stored.items() if values.get(urn) != value]
        if gone:
            connection.execute(
                delete(_UNIQUE).where(_UNIQUE.c.resource_id == resource_id, _UNIQUE.c.urn.in_(gone))
            )
        self._add_unique_values(
            connection, resource_id, {u: v for u, v in values.items() if stored.get(u) != v}
        )

    def _reindex_members(
        self, connection: Connection, group_id: str, members: list[str]
    ) -> tuple[list[str], list[str], list[str]]:
        """Store a group's new members; the members who joined, left, and stayed."""
        current = set(
            connection.scalars(select(_MEMBERS.c.member_id).where(_MEMBERS.c.group_id == group_id))
        )
        left = sorted(current - set(members))
        if left:
            connection.execute(
                delete(_MEMBERS).where(
                    _MEMBERS.c.group_id == group_id, _MEMBERS.c.member_id.in_(left)
                )
            )
        joined = [m for m in members if m not in current]
        self._add_members(connection, group_id, joined)
        return joined, left, [m for m in members if m in current]

    def _add_keys(self, connection: Connection, resource_id: str, keys: list[Key]) -> None:
        if keys:
            connection.execute(
                _INSERT_KEY,
                [
                    {
                        "resource_id": resource_id,
                        "namespace": namespace,
                        "value": indexed(value),
                        "domain_id": self.domain_id,
                    }
                    for namespace, value in keys
                ],
            )

    def _rekey(
        self, connection: Connection, resource_id: str, before: list[Key], keys: list[Key]
    ) -> None:
        """Store a user's new keys, touching only the rows that change, and record the
        user with its keys before."""
        gone = [key for key in before if key not in keys]
        if gone:
            connection.execute(
                _DELETE_KEY,
                [{"id": resource_id, "namespace": n, "value": indexed(v)} for n, v in gone],
            )
        self._add_keys(connection, resource_id, [key for key in keys if key not in before])
        self._record(connection, {resource_id: before})

    def _users_under(self, connection: Connection, member_ids: list[str]) -> dict[str, list[Key]]:
        """The users among these members of a group and under the groups among them (nested
        groups, RFC 7643 §4.2), each with its keys."""
        users: set[str] = set()
        seen: set[str] = set()
        due = [m for m in member_ids if len(m) <= 64 and "\x00" not in m]
        while due:
            seen.update(due)
            groups = []
            for start in range(0, len(due), 500):
                rows = connection.execute(
                    select(_RESOURCES.c.id, _RESOURCES.c.resource_type).where(
                        _RESOURCES.c.domain_id == self.domain_id,
                        _RESOURCES.c.id.in_(due[start : start + 500]),
                    )
                )
                for resource_id, resource_type in rows:
                    if resource_type == USER:
                        users.add(resource_id)
                    elif resource_type == GROUP:
                        groups.append(resource_id)
            due = []
            for start in range(0, len(groups), 500):
                nested = connection.scalars(
                    select(_MEMBERS.c.member_id).where(
                        _MEMBERS.c.group_id.in_(groups[start : start + 500])
                    )
                )
                due.extend(m for m in nested if m not in seen)
            due = list(dict.fromkeys(due))
        keys: dict[str, list[Key]] = {}
        ordered = sorted(users)
        for start in range(0, len(ordered), 500):
            rows = connection.execute(_DOCUMENTS, {"ids": ordered[start : start + 500]})
            keys.update({user_id: person_keys(user_id, document) for user_id, document in rows})
        return keys

    def _record(self, connection: Connection, touched: dict[str, list[Key]]) -> None:
        """Record the users a write touched, last in its transaction (``changes.record``)."""
        changes.record(connection, self.domain_id, touched, self.clock())

    def _add_unique_values(self, connection: Connection, resource_id: str, values: dict) -> None:
        if values:
            connection.execute(
                _INSERT_UNIQUE,
                [
                    {"domain_id": self.domain_id, "urn": u, "value": v, "resource_id": resource_id}
                    for u, v in values.items()
                ],
            )

    def _add_members(self, connection: Connection, group_id: str, member_ids: list[str]) -> None:
        """Add members to a group, each a live User or Group of this domain (RFC 7643 §4.2:
        ``members.value`` is the ``id`` of a resource of the service provider); any other
        value is refused with 400 ``invalidValue``, naming it. Only members being added are
        checked: a membership already stored stays, even if its resource is gone."""
        self._check_members(connection, member_ids)
        if member_ids:
            connection.execute(
                insert(_MEMBERS),
                [
                    {"group_id": group_id, "member_id": m, "domain_id": self.domain_id}
                    for m in member_ids
                ],
            )

    def _check_members(self, connection: Connection, member_ids: list[str]) -> None:
        if not member_ids:
            return
        # Our ids are 32 hex digits: a longer value, or one holding a NUL (which PostgreSQL
        # refuses in a query), names nothing and is not looked up.
        candidates = [m for m in member_ids if len(m) <= 64 and "\x00" not in m]
        found: set[str] = set()
        for start in range(0, len(candidates), 500):  # within SQLite's bound parameters
            found.update(
                connection.scalars(
                    select(_RESOURCES.c.id).where(
                        _RESOURCES.c.domain_id == self.domain_id,
                        _RESOURCES.c.id.in_(candidates[start : start + 500]),
                        _RESOURCES.c.deleted_at.is_(None),
                    )
                )
            )
        unknown = [m for m in member_ids if m not in found]
        if unknown:
            # Another domain's id gets the same answer as an unknown one: a secret of one
            # domain learns nothing of another's resources.
            named = ", ".join(repr(m) for m in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise InvalidValueException(
                detail=f"members value {named}{more} is not the id of a User or Group "
                "of this domain: add the member once the IdP has created it here"
            )

    def _check_user_name(self, resource_type: ResourceType, resource: Resource[Any]) -> None:
        """A staged user's userName must be an email address of the domain (ARCHITECTURE.md:
        a person's email decides their Komeet account), so the IdP's provisioning log tells
        the customer what to fix."""
        if self.user_name_domains is None or resource_type.name != USER:
            return
        user_name = str(getattr(resource, "user_name", None) or "")
        expected = " or ".join(self.user_name_domains)
        try:
            email = normalise_email(user_name)
        except InvalidEmail as exc:
            raise InvalidValueException(
                detail=f"userName {user_name!r} is not a valid email address ({exc.reason}); "
                f"Komeet needs the user's email in {expected}"
            ) from None
        if email.rpartition("@")[2] not in self.user_name_domains:
            raise InvalidValueException(
                detail=f"userName {user_name!r} is not in {expected}: this SCIM URL and secret "
                f"are for {expected}; map userName to the user's email in that domain"
            )


_RESOURCES = cast(Table, ScimResourceRow.__table__)
_UNIQUE = cast(Table, ScimUniqueValueRow.__table__)
_MEMBERS = cast(Table, ScimMembershipRow.__table__)
_KEYS = cast(Table, ScimPersonKeyRow.__table__)
_READ = (
    _RESOURCES.c.id,
    _RESOURCES.c.resource_type,
    _RESOURCES.c.version,
    _RESOURCES.c.created_at,
    _RESOURCES.c.updated_at,
    _RESOURCES.c.unique_digest,
    _RESOURCES.c.document,
)

# Built once: every request runs some of these.
_INSERT = insert(_RESOURCES)
_INSERT_UNIQUE = insert(_UNIQUE)
_INSERT_KEY = insert(_KEYS)
_DOCUMENTS = select(_RESOURCES.c.id, _RESOURCES.c.document).where(
    _RESOURCES.c.id.in_(bindparam("ids", expanding=True))
)
_DELETE_KEY = delete(_KEYS).where(
    _KEYS.c.resource_id == bindparam("id"),
    _KEYS.c.namespace == bindparam("namespace"),
    _KEYS.c.value == bindparam("value"),
)
_FETCH = select(*_READ).where(
    _RESOURCES.c.id == bindparam("id"),
    _RESOURCES.c.domain_id == bindparam("domain_id"),
    _RESOURCES.c.resource_type == bindparam("type"),
    _RESOURCES.c.deleted_at.is_(None),
)


class _Stale(Exception):
    """Another writer changed the resource between our read and our write."""


def _version_number(version: str | None) -> int | None:
    """The write count in an ETag we gave (``W/"7"``), or None for any other value."""
    if not version:
        return None
    text = version.removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else None


def _check_version(version: int, expected_version: str | None) -> None:
    if expected_version is not None and f'W/"{version}"' != expected_version:
        raise PreconditionFailedException()


def _stamped(
    resource: Resource[Any],
    resource_type: ResourceType,
    resource_id: str,
    created: datetime,
    modified: datetime,
    version: int,
) -> Resource[Any]:
    """The resource as stored: a copy with its id and meta (RFC 7643 §3.1)."""
    meta = Meta(
        resource_type=str(resource_type.name),
        created=created,
        last_modified=modified,
        version=f'W/"{version}"',
    )
    return resource.model_copy(update={"id": resource_id, "meta": meta})


def _document(resource: Resource[Any]) -> dict[str, Any]:
    document = resource.model_dump(mode="json", exclude={"id", "meta"})
    return cast(dict[str, Any], document)


def _without_secrets(resource: Resource[Any]) -> Resource[Any]:
    """The resource without its password (a copy only when it has one: the resource given
    to the storage is not changed)."""
    present = {name: None for name in SECRET_ATTRIBUTES if getattr(resource, name, None)}
    return resource.model_copy(update=present) if present else resource


def _digest(values: dict[str, str], keys: list[Key]) -> str:
    """``unique_digest``: of the unique values, and of a user's keys when it has any."""
    content: Any = sorted(values.items())
    if keys:
        content = [content, sorted(keys)]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def _member_ids(resource: Resource[Any]) -> list[str]:
    members = getattr(resource, "members", None) or []
    return list(dict.fromkeys(m.value for m in members if getattr(m, "value", None)))


def _user_name_key_of(resource_type: ResourceType, resource: Resource[Any]) -> str | None:
    if resource_type.name != USER:
        return None
    user_name = getattr(resource, "user_name", None)
    return _user_name_key(type(resource), str(user_name)) if user_name else None


def _user_name_key(model: type[Resource[Any]], user_name: str) -> str | None:
    """The ``user_name_key`` column of a userName: the form uniqueness and filters compare
    it in (``_comparison_text``), so that the row a ``userName eq`` filter looks up is the
    one whose unique value refuses a second creation, whatever the Unicode form or case."""
    return _comparison_text(_user_name_attribute(model), user_name, limit=254)


@lru_cache(maxsize=64)
def _user_name_attribute(model: type[Resource[Any]]) -> Any:
    return parametrize(Path, model)("userName").resolve()


def _comparison_text(attribute: Any, value: Any, limit: int) -> str | None:
    """A value in the one form uniqueness, filters and lookups compare it in: the SCIM
    policy's comparison key (scim2-models: Unicode NFC, and lower case unless the attribute
    is ``caseExact``; RFC 7643 §2.1, RFC 7644 §3.4.2.2), which ``ScimFilter.match`` also
    applies. A text longer than the column's ``limit`` is kept as its SHA-256; None for no
    value or a string the policy cannot prepare (equal to no other)."""
    try:
        comparable = attribute.comparable(value)
    except ValueError:
        return None
    if comparable is None:
        return None
    text = str(comparable)
    if len(text) > limit:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


@lru_cache(maxsize=64)
def _unique_attributes(model: type[Resource[Any]]) -> tuple[tuple[Any, Any], ...]:
    """A model's attributes whose uniqueness is ``server`` or ``global``, each with the
    path that reads it: found once per model, not per request."""
    paths = parametrize(Path, model).iter_paths(
        include_subattributes=False, uniqueness=[Uniqueness.server, Uniqueness.global_]
    )
    found = []
    for path in paths:
        attribute = path.resolve()
        if attribute is not None:
            found.append((attribute, parametrize(Path, model)(attribute.urn)))
    return tuple(found)


def _unique_values(resource: Resource[Any]) -> dict[str, str]:
    """The values of the attributes whose uniqueness is ``server`` or ``global``, by URN,
    in the form they are compared in (``_comparison_text``)."""
    values = {}
    for attribute, reader in _unique_attributes(type(resource)):
        text = _comparison_text(attribute, reader.get(resource, strict=False), limit=512)
        if text is not None:
            values[attribute.urn] = text
    return values


def _user_name_equality(scim_filter: ScimFilter[Any] | None) -> str | None:
    """The value of a ``userName eq "..."`` filter, if that is the whole filter."""
    if scim_filter is None:
        return None
    node = scim_filter.ast
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and isinstance(node.value, str)
        and str(node.attr_path).lower().rsplit(":", 1)[-1] == "username"
    ):
        return node.value
    return None


def _sort_key(search_request: SearchRequest[Any], resource: Resource[Any]) -> tuple:
    """The sort value, missing values last, then the identifier (as scim2-server sorts)."""
    value = search_request.sort_value(resource) if search_request.sort_by else None
    return (value is None, value if value is not None else "", resource.id)
