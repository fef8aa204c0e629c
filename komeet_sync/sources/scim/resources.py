"""SCIM 2.0 resources (RFC 7643) as the engine's frames: the users and groups an IdP pushed,
and the accounts of Komeet.

Resources are validated with ``scim2-models``. Unknown attributes (IdPs add their own) are
set aside rather than refused; a resource with a bad value becomes a read error and never
stops the others.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import pandas as pd
from pydantic import ValidationError
from scim2_models import EnterpriseUser, Group, User

from komeet_sync.model.frames import (
    DIRECTORY_ALIASES,
    DIRECTORY_USERS,
    GROUP_MEMBERS,
    GROUPS,
    KOMEET_USERS,
    READ_ERRORS,
    DirectorySnapshot,
    Source,
)

INACTIVE = "inactive in the IdP (active is false)"
DELETED = "deleted in the IdP (DELETE /Users)"
_USER = User[EnterpriseUser]


def snapshot(
    users: Iterable[Any],
    groups: Iterable[Any] = (),
    selected: Iterable[str] = (),
    deleted: Collection[str] = (),
) -> DirectorySnapshot:
    """A snapshot of staged SCIM users and groups; ``selected`` are group display names;
    ``deleted`` are the ids of users the IdP deleted (kept inactive: they are leavers)."""
    parsed, errors = _parse(users, _USER, Source.SCIM)
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


def komeet_users(resources: Iterable[Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Komeet's accounts as the KOMEET_USERS frame, and the resources that could not be read."""
    parsed, errors = _parse(resources, _USER, Source.KOMEET)
    rows = []
    for user in parsed:
        enterprise = user[EnterpriseUser]
        primary = next((e.value for e in user.emails or [] if e.primary), None)
        rows.append(
            (
                user.id,
                user.user_name,
                primary,
                user.external_id,
                user.name.given_name if user.name else None,
                user.name.family_name if user.name else None,
                user.active is not False,
                enterprise.employee_number if enterprise else None,
            )
        )
    return (
        pd.DataFrame(rows, columns=list(KOMEET_USERS)).astype(KOMEET_USERS),
        pd.DataFrame(errors, columns=list(READ_ERRORS)).astype(READ_ERRORS),
    )


def _members(
    groups: Iterable[Any], selected: Iterable[str], errors: list[tuple]
) -> tuple[list[tuple], list[tuple]]:
    """Members of the selected groups, nested groups expanded (a member whose value is a
    group's id stands for that group's members)."""
    parsed, group_errors = _parse(groups, Group, Source.SCIM)
    errors.extend(group_errors)
    by_id = {group.id: group for group in parsed}
    by_name = {_fold(group.display_name): group for group in parsed if group.display_name}
    rows: list[tuple] = []
    found: list[tuple] = []
    for name in selected:
        group = by_name.get(_fold(name))
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


def _parse(records: Iterable[Any], model: Any, source: Source) -> tuple[list[Any], list[tuple]]:
    parsed: list[Any] = []
    errors: list[tuple] = []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            errors.append(
                (
                    source.value,
                    None,
                    None,
                    "invalid_record",
                    f"record {position} is {type(record).__name__}, not a SCIM resource",
                )
            )
            continue
        resource, problem = _validate(model, record)
        if resource is None or not resource.id:
            identifier = _lookup(record, "id")
            email = _lookup(record, "userName") or _lookup(record, "displayName")
            errors.append(
                (
                    source.value,
                    identifier,
                    email,
                    "invalid_record",
                    f"record {position}: {problem or 'no id'}",
                )
            )
            continue
        parsed.append(resource)
    return parsed, errors


def _validate(model: Any, record: dict[str, Any]) -> tuple[Any, str | None]:
    """Validate, setting aside attributes the model does not know (IdPs add their own)."""
    candidate = dict(record)
    for _ in range(3):
        try:
            return model.model_validate(candidate), None
        except ValidationError as exc:
            unknown = {e["loc"][0] for e in exc.errors() if e["type"] == "extra_forbidden"}
            if not unknown or len(unknown) < len({e["loc"][0] for e in exc.errors()}):
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                return None, f"{where}: {first['msg']}"
            candidate = {k: v for k, v in candidate.items() if k not in unknown}
    return None, "could not be read as a SCIM resource"


def _lookup(record: dict[str, Any], name: str) -> str | None:
    for key, value in record.items():
        if key.lower() == name.lower() and value is not None:
            return str(value)
    return None


def _fold(name: str) -> str:
    return " ".join(str(name).split()).casefold()
