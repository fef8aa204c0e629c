"""What a sync reads: the directory snapshot (the desired state's source) and Komeet's
accounts (the current state), each one type with one name (ARCHITECTURE.md, "Data flow").

Both are complete reads or nothing: a read that fails part-way raises, so that no plan is
ever made from a partial read (ARCHITECTURE.md, "Guards").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from komeet_sync.model.frames import (
    DIRECTORY_ALIASES,
    DIRECTORY_USERS,
    GROUP_MEMBERS,
    GROUPS,
    KOMEET_ACCOUNTS,
    OPTIONAL_USER_COLUMNS,
    READ_ERRORS,
    Source,
    conform,
    contains,
    empty_frame,
)

_SOURCE_WORDS = {Source.GOOGLE: "Google Workspace", Source.SCIM: "the SCIM staging tables"}


@dataclass(frozen=True)
class DirectorySnapshot:
    """One complete read of a domain's directory, as the engine consumes it, and when it
    was taken: nothing older than ``started_at`` is in it."""

    source: Source
    users: pd.DataFrame  # DIRECTORY_USERS
    aliases: pd.DataFrame  # DIRECTORY_ALIASES
    members: pd.DataFrame  # GROUP_MEMBERS
    groups: pd.DataFrame  # GROUPS
    read_errors: pd.DataFrame  # READ_ERRORS
    started_at: datetime | None = None  # None for exported files: their time is not known
    seconds: float = 0.0  # how long the read took
    requests: int | None = None  # Directory API requests; None for a read of no API

    @classmethod
    def of(
        cls,
        source: Source,
        users: pd.DataFrame,
        aliases: pd.DataFrame | None = None,
        members: pd.DataFrame | None = None,
        groups: pd.DataFrame | None = None,
        read_errors: pd.DataFrame | None = None,
    ) -> DirectorySnapshot:
        """A snapshot whose frames are checked against their schemas."""

        def checked(frame: pd.DataFrame | None, schema: dict[str, str], name: str):
            return conform(empty_frame(schema) if frame is None else frame, schema, name)

        return cls(
            source=Source(source),
            users=conform(users, DIRECTORY_USERS, "directory users", OPTIONAL_USER_COLUMNS),
            aliases=checked(aliases, DIRECTORY_ALIASES, "directory aliases"),
            members=checked(members, GROUP_MEMBERS, "group members"),
            groups=checked(groups, GROUPS, "groups"),
            read_errors=checked(read_errors, READ_ERRORS, "read errors"),
        )

    def restricted_to(self, account_ids: Iterable[str]) -> DirectorySnapshot:
        """The snapshot of only these people: their users rows, aliases, rows among the
        selected groups' members (by member id; a CUSTOMER member, the whole account, stays)
        and read errors; the same groups. What a read of just those people gives (an
        incremental sync's, docs/incremental.md)."""
        ids = pd.Series(sorted(set(account_ids)), dtype="str")
        members = self.members
        everyone = (members["member_type"] == "CUSTOMER").to_numpy()
        return dataclasses.replace(
            self,
            users=_kept(self.users, "account_id", ids),
            aliases=_kept(self.aliases, "account_id", ids),
            members=members[contains(members["member_id"], ids) | everyone].reset_index(drop=True),
            read_errors=_kept(self.read_errors, "account_id", ids),
        )

    def joined(self, other: DirectorySnapshot) -> DirectorySnapshot:
        """The people of both snapshots of one source (each person once, as ``other`` has
        them when both do); the groups as ``other`` found them."""
        return dataclasses.replace(
            other,
            users=_union(self.users, other.users, ["account_id"]),
            aliases=_union(self.aliases, other.aliases, ["account_id", "alias"]),
            members=_union(self.members, other.members, list(self.members.columns)),
            read_errors=_union(self.read_errors, other.read_errors, list(self.read_errors.columns)),
            started_at=min(filter(None, (self.started_at, other.started_at)), default=None),
            seconds=self.seconds + other.seconds,
            requests=None
            if self.requests is None and other.requests is None
            else (self.requests or 0) + (other.requests or 0),
        )

    def describe(self, domain: str) -> str:
        """What was read, in words, for the console and the Dagster UI."""
        users = f"{len(self.users):,} users"
        if self.source is Source.SCIM:
            inactive = int((~self.users["active"]).sum())
            users += f" ({inactive:,} inactive or deleted)"
        text = (
            f"Read {domain} from {_SOURCE_WORDS.get(self.source, self.source.value)}: {users} "
            f"and {len(self.members):,} group members"
        )
        return text + (f" in {self.requests:,} requests" if self.requests is not None else "")

    def details(self) -> dict[str, object]:
        """The read's figures, for the sync's summary."""
        details: dict[str, object] = {
            "source": self.source.value,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "seconds": round(self.seconds, 3),
            "users": len(self.users),
            "members": len(self.members),
        }
        if self.requests is not None:
            details["requests"] = self.requests
        return details


@dataclass(frozen=True)
class KomeetAccounts:
    """A domain's accounts in Komeet (KOMEET_ACCOUNTS), read whole, and the resources Komeet
    returned that could not be read (READ_ERRORS: listed in the errors report, never
    touched)."""

    accounts: pd.DataFrame  # KOMEET_ACCOUNTS
    unreadable: pd.DataFrame  # READ_ERRORS
    started_at: datetime | None = None
    seconds: float = 0.0

    @classmethod
    def of(
        cls,
        accounts: pd.DataFrame,
        unreadable: pd.DataFrame | None = None,
        started_at: datetime | None = None,
        seconds: float = 0.0,
    ) -> KomeetAccounts:
        """Komeet's accounts, checked against their schemas."""
        return cls(
            accounts=conform(accounts, KOMEET_ACCOUNTS, "komeet accounts"),
            unreadable=conform(
                empty_frame(READ_ERRORS) if unreadable is None else unreadable,
                READ_ERRORS,
                "unreadable komeet accounts",
            ),
            started_at=started_at,
            seconds=seconds,
        )

    def restricted_to(self, komeet_ids: Iterable[str]) -> KomeetAccounts:
        """Only these accounts (and no unreadable ones)."""
        ids = pd.Series(sorted(set(komeet_ids)), dtype="str")
        return KomeetAccounts.of(
            _kept(self.accounts, "komeet_id", ids), None, self.started_at, self.seconds
        )

    def joined(self, other: KomeetAccounts) -> KomeetAccounts:
        """The accounts of both reads, each once (as ``other`` read it when both did)."""
        return KomeetAccounts.of(
            _union(self.accounts, other.accounts, ["komeet_id"]),
            _union(self.unreadable, other.unreadable, list(self.unreadable.columns)),
            min(filter(None, (self.started_at, other.started_at)), default=None),
            self.seconds + other.seconds,
        )


def _kept(frame: pd.DataFrame, column: str, ids: pd.Series) -> pd.DataFrame:
    return frame[contains(frame[column], ids)].reset_index(drop=True)


def _union(first: pd.DataFrame, second: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    if first.empty:
        return second
    if second.empty:
        return first
    both = pd.concat([first, second], ignore_index=True)
    return both.drop_duplicates(key, keep="last", ignore_index=True)
