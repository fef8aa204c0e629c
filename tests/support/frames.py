"""People and Komeet accounts written straight as the engine's frames, for the engine's unit
tests: one call per person or account, naming only what the rule under test needs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from komeet_sync.engine.reconcile import Reconciliation
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import (
    DIRECTORY_ALIASES,
    DIRECTORY_USERS,
    GROUP_MEMBERS,
    GROUPS,
    KOMEET_ACCOUNTS,
)
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts

DOMAIN = "acme.com"
GROUP = "all@acme.com"


def config(**options: Any) -> DomainConfig:
    """acme.com, read from Google, its group all@acme.com selected, the default guards."""
    options.setdefault("groups", [GROUP])
    options.setdefault("admin_email", f"admin@{DOMAIN}")
    return DomainConfig.create(DOMAIN, "google", **options)


def person(
    account_id: str,
    email: str,
    *,
    given: str | None = "Ada",
    family: str | None = "Lovelace",
    active: bool = True,
    stable_id: str | None = None,
    employee_id: str | None = None,
    aliases: tuple[str, ...] = (),
    groups: tuple[str, ...] = (GROUP,),
) -> dict[str, Any]:
    """A directory user; ``stable_id`` defaults to ``account_id`` (Google's user id)."""
    return {
        "source": "google",
        "account_id": account_id,
        "stable_id": stable_id or account_id,
        "email": email,
        "given_name": given,
        "family_name": family,
        "active": active,
        "inactive_reason": None if active else "suspended in Google Workspace",
        "employee_id": employee_id,
        "aliases": aliases,
        "groups": groups,
    }


def directory(
    *people: dict[str, Any], selected: tuple[str, ...] = (GROUP,), missing: tuple[str, ...] = ()
) -> DirectorySnapshot:
    """A snapshot of ``people``; the ``selected`` groups were asked for, and those in
    ``missing`` do not exist."""
    users = pd.DataFrame(
        [{column: p.get(column) for column in DIRECTORY_USERS} for p in people],
        columns=list(DIRECTORY_USERS),
    )
    aliases = pd.DataFrame(
        [(p["account_id"], alias) for p in people for alias in p["aliases"]],
        columns=list(DIRECTORY_ALIASES),
    )
    members = pd.DataFrame(
        [
            (group, p["account_id"], p["email"], "USER")
            for p in people
            for group in p["groups"]
            if group in selected and group not in missing
        ],
        columns=list(GROUP_MEMBERS),
    )
    groups = pd.DataFrame(
        [(group, group not in missing) for group in selected], columns=list(GROUPS)
    )
    return DirectorySnapshot.of("google", users, aliases, members, groups)


def account(
    komeet_id: str,
    user_name: str,
    *,
    external_id: str | None = None,
    active: bool = True,
    given: str | None = "Ada",
    family: str | None = "Lovelace",
    email: str | None = None,
    employee_id: str | None = None,
) -> dict[str, Any]:
    """A Komeet account; managed when it has an ``external_id``."""
    return {
        "komeet_id": komeet_id,
        "user_name": user_name,
        "email": email,
        "external_id": external_id,
        "given_name": given,
        "family_name": family,
        "active": active,
        "employee_id": employee_id,
    }


def komeet(*accounts: dict[str, Any]) -> KomeetAccounts:
    return KomeetAccounts.of(pd.DataFrame(list(accounts), columns=list(KOMEET_ACCOUNTS)))


def situation_of(result: Reconciliation, *, person: str | None = None, account: str | None = None):
    """The row of a person (by directory id) or of an account (by Komeet id)."""
    rows = result.rows
    if person is not None:
        found = rows[rows["account_id"] == person]
    else:
        found = rows[rows["komeet_id"] == account]
    assert len(found) == 1, f"{len(found)} rows for {person or account}"
    return found.iloc[0]
