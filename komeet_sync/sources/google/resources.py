"""Directory API resources as the engine's frames (Admin SDK Directory API, ``users`` and
``members`` resources).

A record with a bad value becomes a read error and never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from komeet_sync.model.collector import collector_paused
from komeet_sync.model.emails import normalise_emails
from komeet_sync.model.frames import (
    DIRECTORY_ALIASES,
    DIRECTORY_USERS,
    GROUP_MEMBERS,
    GROUPS,
    READ_ERRORS,
    Source,
)
from komeet_sync.model.json_values import json_kind
from komeet_sync.model.snapshots import DirectorySnapshot

SUSPENDED = "suspended in Google Workspace"
ARCHIVED = "archived in Google Workspace"


@collector_paused()
def snapshot(
    users: Iterable[Any], members_by_group: Mapping[str, Iterable[Any] | None]
) -> DirectorySnapshot:
    """A snapshot from User resources and each selected group's Member resources.

    A group mapped to None does not exist (``groups.get`` answered 404).
    """
    user_rows, alias_rows, errors = _users(users)
    member_rows, group_rows = _members(members_by_group, errors)
    return DirectorySnapshot.of(
        Source.GOOGLE,
        users=pd.DataFrame(user_rows, columns=list(DIRECTORY_USERS)),
        aliases=pd.DataFrame(alias_rows, columns=list(DIRECTORY_ALIASES)),
        members=pd.DataFrame(member_rows, columns=list(GROUP_MEMBERS)),
        groups=pd.DataFrame(group_rows, columns=list(GROUPS)),
        read_errors=pd.DataFrame(errors, columns=list(READ_ERRORS)),
    )


def _users(users: Iterable[Any]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    rows: list[tuple] = []
    aliases: list[tuple] = []
    errors: list[tuple] = []
    seen: set[str] = set()
    for position, user in enumerate(users, start=1):
        if not isinstance(user, dict):
            errors.append(
                _bad(
                    None,
                    None,
                    f"record {position} is {json_kind(user)}, not a User resource (a JSON object)",
                )
            )
            continue
        user_id = _text(user.get("id"))
        email = _text(user.get("primaryEmail"))
        if user_id is None:
            errors.append(
                _bad(None, email, f"record {position} has no id; every Directory API user has one")
            )
            continue
        if user_id in seen:
            errors.append(
                _bad(
                    user_id,
                    email,
                    f"record {position} repeats user id {user_id}; the first one was kept",
                )
            )
            continue
        seen.add(user_id)
        name: dict[str, Any] = user["name"] if isinstance(user.get("name"), dict) else {}
        suspended = _flag(user.get("suspended"))
        archived = _flag(user.get("archived"))
        if suspended is None or archived is None:
            errors.append(
                _bad(
                    user_id,
                    email,
                    f"record {position}: suspended/archived must be "
                    f"true or false, not {user.get('suspended')!r}/"
                    f"{user.get('archived')!r}",
                )
            )
            continue
        rows.append(
            (
                Source.GOOGLE.value,
                user_id,
                user_id,
                email,
                _text(name.get("givenName")),
                _text(name.get("familyName")),
                not (suspended or archived),
                SUSPENDED if suspended else ARCHIVED if archived else None,
                _employee_id(user.get("externalIds")),
                _text(user.get("orgUnitPath")),
                _text(user.get("creationTime")),
                _last_login(user.get("lastLoginTime")),
            )
        )
        known = {email}
        for key in ("aliases", "nonEditableAliases"):
            values = user.get(key) or []
            if isinstance(values, list):
                for alias in values:
                    if isinstance(alias, str) and alias not in known:
                        known.add(alias)
                        aliases.append((user_id, alias))
        # ``emails`` lists the primary address and the aliases again (without a type), and
        # addresses the admin recorded: a work one identifies the person, a home one does not.
        for entry in user.get("emails") or []:
            if not isinstance(entry, dict) or entry.get("type", "work") != "work":
                continue
            address = entry.get("address")
            if isinstance(address, str) and address not in known:
                known.add(address)
                aliases.append((user_id, address))
    return rows, aliases, errors


def _members(
    members_by_group: Mapping[str, Iterable[Any] | None], errors: list[tuple]
) -> tuple[list[tuple], list[tuple]]:
    rows: list[tuple] = []
    groups: list[tuple] = []
    keys = list(members_by_group)
    normal = normalise_emails(pd.Series(keys, dtype=object))["email"]
    for key, group in zip(keys, normal, strict=True):
        name = group if isinstance(group, str) else str(key).strip().lower()
        members = members_by_group[key]
        groups.append((name, members is not None))
        for position, member in enumerate(members or [], start=1):
            if not isinstance(member, dict):
                errors.append(
                    _bad(
                        None,
                        None,
                        f"member {position} of {name} is "
                        f"{json_kind(member)}, not a Member resource",
                    )
                )
                continue
            rows.append(
                (
                    name,
                    _text(member.get("id")),
                    _text(member.get("email")),
                    str(member.get("type") or "USER").upper(),
                )
            )
    return rows, groups


def _employee_id(external_ids: Any) -> str | None:
    """The ``externalIds`` entry of type ``organization`` (the employee id), if any."""
    if not isinstance(external_ids, list):
        return None
    for entry in external_ids:
        if isinstance(entry, dict) and entry.get("type") == "organization":
            return _text(entry.get("value"))
    return None


def _last_login(value: Any) -> str | None:
    """``lastLoginTime``, or None for Google's "never signed in" (the Unix epoch)."""
    text = _text(value)
    return None if text is None or text.startswith("1970-01-01") else text


def _flag(value: Any) -> bool | None:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _bad(account_id: str | None, email: str | None, detail: str) -> tuple:
    return (Source.GOOGLE.value, account_id, email, "invalid_record", detail)
