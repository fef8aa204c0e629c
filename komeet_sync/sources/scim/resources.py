"""The users and groups an IdP pushed (SCIM 2.0, RFC 7643) as a directory snapshot: what the
staging tables hold, or an export of the IdP's resources for the offline audit.

Resources are read leniently (``model.scim_resources``): a resource with a bad value
becomes a read error and never stops the others.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd
from scim2_models import Group

from komeet_sync.model import scim_resources
from komeet_sync.model.domain_config import fold
from komeet_sync.model.frames import (
    GROUP_MEMBERS,
    GROUPS,
    READ_ERRORS,
    Source,
    contains,
)
from komeet_sync.model.scim_resources import parse
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
    read = scim_resources.read_users(users, Source.SCIM)
    found, emails = read.users, read.emails
    gone = contains(found["id"], pd.Series(list(deleted), dtype="str"))
    active = found["active"].to_numpy() & ~gone
    inactive_reason = np.full(len(found), None, dtype=object)
    inactive_reason[~found["active"].to_numpy()] = INACTIVE
    inactive_reason[gone] = DELETED
    external_id = found["external_id"]
    directory_users = pd.DataFrame(
        {
            "source": Source.SCIM.value,
            "account_id": found["id"],
            "stable_id": external_id.where(external_id.notna() & (external_id != ""), found["id"]),
            "email": found["user_name"],
            "given_name": found["given_name"],
            "family_name": found["family_name"],
            "active": active,
            "inactive_reason": inactive_reason,
            "employee_id": found["employee_number"],
            "org_unit": found["department"],
            "created_at": found["created"],
            "last_login_at": None,  # SCIM does not say when a user last signed in
        }
    )
    addressed = emails[emails["value"].notna()]
    ids = found.set_index("position")["id"]
    aliases = pd.DataFrame(
        {"account_id": addressed["position"].map(ids), "alias": addressed["value"]}
    )
    member_rows, group_rows, group_errors = _members(groups, selected)
    errors = read.errors
    if group_errors:
        errors = pd.concat([errors, pd.DataFrame(group_errors, columns=list(READ_ERRORS))])
    return DirectorySnapshot.of(
        Source.SCIM,
        users=directory_users,
        aliases=aliases,
        members=pd.DataFrame(member_rows, columns=list(GROUP_MEMBERS)),
        groups=pd.DataFrame(group_rows, columns=list(GROUPS)),
        read_errors=errors,
    )


def _members(
    groups: Iterable[Any], selected: Iterable[str]
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Members of the selected groups, nested groups expanded (a member whose value is a
    group's id stands for that group's members), the groups found, and the groups that
    could not be read."""
    parsed, errors = parse(groups, Group, Source.SCIM)
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
    return rows, found, errors
