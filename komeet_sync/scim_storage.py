"""The SCIM staging tables of one domain, as scim2-server's storage (``ScimStorage``).

Every write is one transaction: a resource, its unique values and its group memberships
change together or not at all, so a crash cannot leave half a request in staging. Unique
values (RFC 7643 §2.1: ``userName`` is unique on the server, whatever its case) are rows
with a primary key, so that of two concurrent creations of the same user one succeeds and
the other gets 409 ``uniqueness``. A deleted resource is kept and marked: a user the IdP
deleted becomes a leaver (ARCHITECTURE.md, "Situations").
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
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
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from komeet_sync.emails import InvalidEmail, normalise_email
from komeet_sync.tables import ScimMembershipRow, ScimResourceRow, ScimUniqueValueRow

USER = "User"
GROUP = "Group"
SECRET_ATTRIBUTES = ("password",)  # dropped on arrival, never stored (RFC 7643 §4.1.1)


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
        with Session(self.engine) as session:
            return self._resource(self._stored(session, resource_type, resource_id))

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
                query = query.where(ScimResourceRow.user_name_key == user_name.casefold())
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
        row = ScimResourceRow(
            id=uuid.uuid4().hex,
            domain_id=self.domain_id,
            resource_type=str(resource_type.name),
            user_name_key=_user_name_key(resource_type, resource),
            created_at=now,
            updated_at=now,
            document=_document(resource),
        )
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                session.add(row)
                session.flush()
                self._index(session, row.id, resource)
                session.commit()
            except IntegrityError:
                session.rollback()
                raise UniquenessException() from None
            return self._resource(row)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        resource = _without_secrets(resource)
        self._check_user_name(resource_type, resource)
        for _ in range(5):  # another writer changed it between our read and our write
            with Session(self.engine, expire_on_commit=False) as session:
                row = self._stored(session, resource_type, cast(str, resource.id))
                _check_version(row, expected_version)
                row.document = _document(resource)
                row.user_name_key = _user_name_key(resource_type, resource)
                row.updated_at = self.clock()
                try:
                    session.execute(
                        delete(ScimUniqueValueRow).where(ScimUniqueValueRow.resource_id == row.id)
                    )
                    session.execute(
                        delete(ScimMembershipRow).where(ScimMembershipRow.group_id == row.id)
                    )
                    session.flush()
                    self._index(session, row.id, resource)
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    raise UniquenessException() from None
                except StaleDataError:
                    session.rollback()
                    if expected_version is not None:
                        raise PreconditionFailedException() from None
                    continue
                return self._resource(row)
        raise PreconditionFailedException(detail="the resource kept changing; send it again")

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        with Session(self.engine) as session:
            row = self._stored(session, resource_type, resource_id)
            _check_version(row, expected_version)
            row.deleted_at = row.updated_at = self.clock()
            session.execute(
                delete(ScimUniqueValueRow).where(ScimUniqueValueRow.resource_id == row.id)
            )
            session.execute(delete(ScimMembershipRow).where(ScimMembershipRow.group_id == row.id))
            try:
                session.commit()
            except StaleDataError:
                raise PreconditionFailedException() from None

    # -- rows and resources --

    def _stored(self, session: Session, resource_type: ResourceType, resource_id: str):
        row = session.get(ScimResourceRow, resource_id) if resource_id else None
        if (
            row is None
            or row.domain_id != self.domain_id
            or row.resource_type != resource_type.name
            or row.deleted_at is not None
        ):
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return row

    def _resource(self, row: ScimResourceRow) -> Resource[Any]:
        resource = self._models[row.resource_type].model_validate(row.document)
        resource.id = row.id
        resource.meta = Meta(
            resource_type=row.resource_type,
            created=_aware(row.created_at),
            last_modified=_aware(row.updated_at),
            version=f'W/"{row.version}"',
        )
        return resource

    def _index(self, session: Session, resource_id: str, resource: Resource[Any]) -> None:
        """Add the resource's unique values and, for a group, its memberships."""
        for urn, value in _unique_values(resource).items():
            session.add(
                ScimUniqueValueRow(
                    domain_id=self.domain_id, urn=urn, value=value, resource_id=resource_id
                )
            )
        members = getattr(resource, "members", None) or []
        for member_id in dict.fromkeys(m.value for m in members if getattr(m, "value", None)):
            session.add(
                ScimMembershipRow(
                    group_id=resource_id, member_id=member_id, domain_id=self.domain_id
                )
            )
        session.flush()

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


def _check_version(row: ScimResourceRow, expected_version: str | None) -> None:
    if expected_version is not None and f'W/"{row.version}"' != expected_version:
        raise PreconditionFailedException()


def _document(resource: Resource[Any]) -> dict[str, Any]:
    document = resource.model_dump(mode="json", exclude={"id", "meta"})
    return cast(dict[str, Any], document)


def _without_secrets(resource: Resource[Any]) -> Resource[Any]:
    resource = resource.model_copy(deep=True)
    for name in SECRET_ATTRIBUTES:
        if getattr(resource, name, None) is not None:
            setattr(resource, name, None)
    return resource


def _user_name_key(resource_type: ResourceType, resource: Resource[Any]) -> str | None:
    if resource_type.name != USER:
        return None
    user_name = getattr(resource, "user_name", None)
    return str(user_name).casefold()[:254] if user_name else None


def _unique_values(resource: Resource[Any]) -> dict[str, str]:
    """The values of the attributes whose uniqueness is ``server`` or ``global``, by URN,
    in the form they are compared in (a case-insensitive one case-folded)."""
    paths = parametrize(Path, type(resource)).iter_paths(
        include_subattributes=False, uniqueness=[Uniqueness.server, Uniqueness.global_]
    )
    values = {}
    for path in paths:
        attribute = path.resolve()
        if attribute is None:
            continue
        value = parametrize(Path, type(resource))(attribute.urn).get(resource, strict=False)
        try:
            comparable = attribute.comparable(value)
        except ValueError:
            continue
        if comparable is None:
            continue
        text = str(comparable)
        if len(text) > 512:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
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


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
