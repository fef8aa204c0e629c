"""A Google Workspace account's users and groups as Directory API resources (Admin SDK
Directory API, User, Group and Member): what the emulator serves, from exports or generated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Directory:
    """A Google Workspace account's users and groups, as Directory API resources.

    Each group carries its *direct* members under ``"members"``; nested groups are members
    of type ``GROUP``. Users with ``"isAdmin": true`` are the super admins that domain-wide
    delegation may act as. Build a new one rather than change it while it is served.
    """

    users: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    customer_id: str = "C01abc234"
    domains: list[str] = field(default_factory=list)  # default: those of the users and groups

    def __post_init__(self) -> None:
        self._by_email = {str(u.get("primaryEmail", "")).lower(): u for u in self.users}
        self._by_key: dict[str, dict[str, Any]] = {}
        self._by_domain: dict[str, list[dict[str, Any]]] = {}
        for user in self.users:
            user.setdefault("kind", "admin#directory#user")
            user.setdefault("customerId", self.customer_id)
            for key in (user.get("id"), *user_addresses(user)):
                if key:
                    self._by_key.setdefault(str(key).lower(), user)
            self._by_domain.setdefault(domain_of(user.get("primaryEmail")), []).append(user)
        if not self.domains:
            emails = [g.get("email") for g in self.groups]
            self.domains = sorted(set(self._by_domain) | {domain_of(e) for e in emails} - {""})
        self._groups: dict[str, dict[str, Any]] = {}
        self._listed: dict[tuple[str, bool], list[dict[str, Any]]] = {}
        for group in self.groups:
            for key in (group.get("id"), group.get("email"), *group.get("aliases", [])):
                if key:
                    self._groups[str(key).lower()] = group

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Directory:
        """A directory from ``{"users": [User, ...], "groups": [Group + "members", ...]}``."""
        return cls(
            users=list(document.get("users") or []),
            groups=list(document.get("groups") or []),
            customer_id=str(document.get("customerId") or "C01abc234"),
            domains=list(document.get("domains") or []),
        )

    @classmethod
    def from_exports(
        cls,
        users: dict[str, Any] | list[Any],
        members: dict[str, Any],
        admins: Iterable[str] = (),
    ) -> Directory:
        """A directory from a ``users.list`` export and a ``{group email: members.list}``
        export, as ``komeet-sync audit`` reads them. A group mapped to null does not exist;
        ``admins`` are the users made super admins."""
        records = users.get("users", []) if isinstance(users, dict) else list(users)
        admin_set = {email.lower() for email in admins}
        records = [
            {**user, "isAdmin": True}
            if str(user.get("primaryEmail", "")).lower() in admin_set
            else user
            for user in records
        ]
        groups = []
        for number, (email, listing) in enumerate(members.items(), start=1):
            if listing is None:
                continue
            found = listing.get("members", []) if isinstance(listing, dict) else listing
            groups.append(
                {
                    "id": f"group{number:04d}",
                    "email": email,
                    "name": email.split("@")[0],
                    "members": list(found or []),
                }
            )
        return cls(users=records, groups=groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "domains": self.domains,
            "users": self.users,
            "groups": self.groups,
        }

    def users_of(self, domain: str) -> list[dict[str, Any]]:
        """The users whose primary email is in ``domain`` (``users.list?domain=``)."""
        return self._by_domain.get(domain.lower(), [])

    def user(self, email: str) -> dict[str, Any] | None:
        return self._by_email.get(email.lower())

    def user_by_key(self, key: str) -> dict[str, Any] | None:
        """A user by its primary email, one of its aliases, or its id (as ``userKey``
        allows)."""
        return self._by_key.get(key.lower())

    def group(self, key: str) -> dict[str, Any] | None:
        """A group by its email, one of its aliases, or its id (as ``groupKey`` allows)."""
        return self._groups.get(key.lower())

    def members(self, group: dict[str, Any], derived: bool) -> list[dict[str, Any]]:
        """A group's members; with ``derived``, also every user of its nested groups, once
        each (``members.list`` with ``includeDerivedMembership=true``). Each listing is
        made once, not once a page: the directory does not change while it is served."""
        key = (str(group.get("id") or group.get("email")), derived)
        if key not in self._listed:
            self._listed[key] = self._members(group, derived)
        return self._listed[key]

    def direct_member(self, group: dict[str, Any], key: str) -> dict[str, Any] | None:
        """The entry of ``group``'s direct members that ``key`` names (``members.get``)."""
        names = self._names(key)
        return next(
            (_member(entry) for entry in group.get("members", []) if _named(entry, names)), None
        )

    def chain(self, group: dict[str, Any], key: str) -> list[dict[str, Any]] | None:
        """The groups from ``group`` down to the one listing the member that ``key`` names
        directly, the fewest; ``[group]`` when it is a direct member, None when it is no
        member (``members.hasMember``, direct or nested)."""
        names = self._names(key)
        paths = [[group]]
        visited = {str(group.get("id"))}
        while paths:
            path = paths.pop(0)
            entries = path[-1].get("members", [])
            if any(_named(entry, names) for entry in entries):
                return path
            for entry in entries:
                if entry.get("type") != "GROUP":
                    continue
                nested = self.group(str(entry.get("email") or entry.get("id") or ""))
                if nested is not None and str(nested.get("id")) not in visited:
                    visited.add(str(nested.get("id")))
                    paths.append([*path, nested])
        return None

    def _names(self, key: str) -> set[str]:
        """Every id and address of the user or group ``key`` names, lower-cased; the key
        itself for a member that is neither (a guest of another domain)."""
        found = self.user_by_key(key) or self.group(key)
        if found is None:
            return {key.lower()}
        keys = (found.get("id"), found.get("email"), *found.get("aliases", []))
        return {str(k).lower() for k in (*keys, *user_addresses(found)) if k}

    def _members(self, group: dict[str, Any], derived: bool) -> list[dict[str, Any]]:
        direct = [_member(member) for member in group.get("members", [])]
        if not derived:
            return direct
        seen = {member.get("id") for member in direct}
        result = list(direct)
        for user in self._nested_users(group, {str(group.get("id"))}):
            if user.get("id") not in seen:
                seen.add(user.get("id"))
                result.append({**user, "role": "MEMBER"})
        return result

    def _nested_users(self, group: dict[str, Any], visited: set[str]) -> Iterator[dict[str, Any]]:
        for member in group.get("members", []):
            if member.get("type") != "GROUP":
                continue
            nested = self.group(str(member.get("email") or member.get("id") or ""))
            if nested is None or str(nested.get("id")) in visited:
                continue
            visited.add(str(nested.get("id")))
            for inner in nested.get("members", []):
                if inner.get("type", "USER") in ("USER", "EXTERNAL"):
                    yield _member(inner)
            yield from self._nested_users(nested, visited)


def user_addresses(user: dict[str, Any]) -> list[str]:
    """A user's primary email, aliases and non-editable aliases: the addresses Google
    resolves to it."""
    addresses = [user.get("primaryEmail"), *user.get("aliases", [])]
    return [str(a) for a in (*addresses, *user.get("nonEditableAliases", [])) if a]


def _named(entry: dict[str, Any], names: set[str]) -> bool:
    return str(entry.get("id") or "").lower() in names or (
        str(entry.get("email") or "").lower() in names
    )


def _member(member: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "admin#directory#member", "role": "MEMBER", "type": "USER", **member}


def domain_of(email: Any) -> str:
    """The domain of an address, lower-cased; empty when there is none."""
    return str(email or "").rpartition("@")[2].lower()
