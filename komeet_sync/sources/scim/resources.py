"""The users and groups an IdP pushed (SCIM 2.0, RFC 7643) as a directory snapshot: what the
staging tables hold, or an export of the IdP's resources for the offline audit.

Resources are read leniently (``model.scim_resources``): a resource with a bad value
becomes a read error and never stops the others.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import pandas as pd
from scim2_models import EnterpriseUser, Group

from komeet_sync.model.domain_config import fold
from komeet_sync.model.frames import (
    DIRECTORY_ALIASES,
    DIRECTORY_USERS,
    GROUP_MEMBERS,
    GROUPS,
    READ_ERRORS,
    Source,
)
from komeet_sync.model.scim_resources import USER, parse
from komeet_sync.model.snapshots import DirectorySnapshot

INACTIVE = "inactive in the IdP (active is false)"
DELETED = "deleted in the IdP (DELETE /Users)"


def snapshot(
    users: Iterable[Any],
    groups: Iterable[Any] = (),
    selected: Iterable[str] = (),
    deleted: Collection[str] = (),
) -> DirectorySnapshot:
    """A snapshot of staged SCIM users and groups; ``selected`` are group display names;
    ``deleted`` are the ids of users the IdP deleted (kept inactive: they are leavers)."""
    parsed, errors = parse(users, USER, Source.SCIM)
    user_rows: list[tuple] = []
    alias_rows: list[tuple] = []
    for user in parsed:
        enterprise = user[EnterpriseUser]
        user_rows.append(
            (
                Source.SCIM.value,
                user.id,
                user.external_id or user.id,
                user.user_name,
                user.name.given_name if user.name else None,
                user.name.family_name if user.name else None,
                user.active is not False and user.id not in deleted,
                DELETED if user.id in deleted else None if user.active is not False else INACTIVE,
                enterprise.employee_number if enterprise else None,
                enterprise.department if enterprise else None,
                user.meta.created.isoformat() if user.meta and user.meta.created else None,
                None,  # SCIM does not say when a user last signed in
            )
        )
        alias_rows.extend((user.id, email.value) for email in user.emails or [] if email.value)
    member_rows, group_rows = _members(groups, selected, errors)
    return DirectorySnapshot.of(
        Source.SCIM,
        users=pd.DataFrame(user_rows, columns=list(DIRECTORY_USERS)),
        aliases=pd.DataFrame(alias_rows, columns=list(DIRECTORY_ALIASES)),
        members=pd.DataFrame(member_rows, columns=list(GROUP_MEMBERS)),
        groups=pd.DataFrame(group_rows, columns=list(GROUPS)),
        read_errors=pd.DataFrame(errors, columns=list(READ_ERRORS)),
    )


def _members(
    groups: Iterable[Any], selected: Iterable[str], errors: list[tuple]
) -> tuple[list[tuple], list[tuple]]:
    """Members of the selected groups, nested groups expanded (a member whose value is a
    group's id stands for that group's members)."""
    parsed, group_errors = parse(groups, Group, Source.SCIM)
    errors.extend(group_errors)
    by_id = {group.id: group for group in parsed}
    by_name = {fold(group.display_name): group for group in parsed if group.display_name}
    rows: list[tuple] = []
    found: list[tuple] = []
    for name in selected:
        group = by_name.get(fold(name))
        found.append((name, group is not None))
        if group is None:
            continue
        pending, seen = [group], {group.id}
        while pending:
            current = pending.pop()
            for member in current.members or []:
                nested = by_id.get(member.value)
                if nested is not None:
                    if nested.id not in seen:
                        seen.add(nested.id)
                        pending.append(nested)
                    continue
                rows.append((name, member.value, None, "USER"))
    return rows, found
