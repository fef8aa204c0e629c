"""Checks of what is already staged: rows that the endpoint's rules refuse today but that
an earlier version stored. They are reported, never deleted: what to do with them (ask the
IdP to push the group again, or leave them) is a person's call.

A dangling membership is a ``scim_memberships`` row whose member is no resource of the
group's domain: an id that was never staged, or the id of another domain's resource. The
endpoint refuses both since the member check (400 ``invalidValue``); a member that the IdP
deleted later is not dangling, it is a leaver (ARCHITECTURE.md, "Situations").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import aliased

from komeet_sync.store.tables import DomainConfigRow, ScimMembershipRow, ScimResourceRow

NO_SUCH_RESOURCE = "no resource has this id"
OTHER_DOMAIN = "another domain's resource"


@dataclass(frozen=True)
class DanglingMember:
    """One membership row the endpoint would refuse today."""

    domain: str
    group_id: str
    group_name: str | None
    member_id: str
    member_domain: str | None  # the domain of the resource it names, when it is another's
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dangling_members(engine: Engine, domain: str | None = None) -> list[DanglingMember]:
    """The dangling memberships of every SCIM domain (or of ``domain``, its stored form),
    by domain, group and member."""
    group = aliased(ScimResourceRow)
    member = aliased(ScimResourceRow)
    member_domain = aliased(DomainConfigRow)
    query = (
        select(
            DomainConfigRow.domain,
            ScimMembershipRow.group_id,
            group.document,
            ScimMembershipRow.member_id,
            member_domain.domain,
        )
        .join(group, group.id == ScimMembershipRow.group_id)
        .join(DomainConfigRow, DomainConfigRow.id == group.domain_id)
        .outerjoin(member, member.id == ScimMembershipRow.member_id)
        .outerjoin(member_domain, member_domain.id == member.domain_id)
        .where(or_(member.id.is_(None), member.domain_id != group.domain_id))
        .order_by(DomainConfigRow.domain, ScimMembershipRow.group_id, ScimMembershipRow.member_id)
    )
    if domain is not None:
        query = query.where(DomainConfigRow.domain == domain)
    with engine.connect() as connection:
        return [
            DanglingMember(
                domain=row[0],
                group_id=row[1],
                group_name=(row[2] or {}).get("displayName"),
                member_id=row[3],
                member_domain=row[4],
                reason=OTHER_DOMAIN if row[4] is not None else NO_SUCH_RESOURCE,
            )
            for row in connection.execute(query)
        ]
