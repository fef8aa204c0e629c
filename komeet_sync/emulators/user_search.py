"""The ``query`` of ``users.list``, as Google's "Search for users" guide (Admin SDK Directory
API) defines it: clauses ``field operator value`` separated by spaces and all required
(an implicit AND); a value with spaces is enclosed in single quotes, a quote in it escaped
as ``\\'``; ``=`` matches the whole value, ``:`` a word of it, ``:{PREFIX}*`` a word's
start; text compares ignoring case.

The emulator answers the fields komeet-sync searches by (``externalId``, ``email``) and a
few more; any other field is refused as Google refuses an unknown one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from komeet_sync.emulators.directory import user_addresses

_CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z]+)(?P<operator>[=:])(?P<value>'(?:[^'\\]|\\.)*'\*?|\S+)"
)


class InvalidQuery(ValueError):
    """A query Google would refuse (HTTP 400 Invalid Input)."""


def _name(user: dict[str, Any], part: str) -> list[str]:
    name = user.get("name")
    return [str(name[part])] if isinstance(name, dict) and name.get(part) else []


def _external_ids(user: dict[str, Any]) -> list[str]:
    entries = user.get("externalIds")
    return [
        str(entry["value"])
        for entry in entries or []
        if isinstance(entry, dict) and entry.get("value") is not None
    ]


def _flag(name: str) -> Callable[[dict[str, Any]], list[str]]:
    return lambda user: ["true" if user.get(name) else "false"]


# field -> the user's values it searches (the guide's "Fields" table)
TEXT_FIELDS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "email": user_addresses,  # "the user's email addresses, including aliases"
    "externalId": _external_ids,  # "an external ID value", whatever its type
    "givenName": lambda user: _name(user, "givenName"),
    "familyName": lambda user: _name(user, "familyName"),
}
BOOLEAN_FIELDS = {
    "isAdmin": _flag("isAdmin"),
    "isSuspended": _flag("suspended"),
    "isArchived": _flag("archived"),
}


@dataclass(frozen=True)
class Clause:
    field: str
    operator: str  # "=" or ":"
    value: str

    def matches(self, user: dict[str, Any]) -> bool:
        values = [v.lower() for v in (TEXT_FIELDS | BOOLEAN_FIELDS)[self.field](user)]
        wanted = self.value.lower()
        if self.operator == "=":
            return wanted in values
        words = [word for value in values for word in re.split(r"[\s@.]+", value)]
        if wanted.endswith("*"):
            return any(word.startswith(wanted[:-1]) for word in words)
        return wanted in words or wanted in values


def tokens(query: str) -> Iterator[tuple[str, str, str, bool]]:
    """Each clause of a query (of users or of groups) as Google's search guides write them:
    its field, operator, value (unquoted, ``\\'`` unescaped) and whether it ends with
    ``*`` (a prefix); InvalidQuery where the query cannot be read."""
    position = 0
    while query[position:].strip():
        match = _CLAUSE.match(query, position)
        if match is None:
            raise InvalidQuery(f"cannot read the query from {query[position:].strip()!r}")
        value = match["value"]
        prefix = value.endswith("*") and value != "*"
        value = value[:-1] if prefix else value
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        yield match["field"], match["operator"], value + ("*" if prefix else ""), prefix
        position = match.end()


def parse(query: str) -> list[Clause]:
    """The clauses of ``query``; InvalidQuery when Google would refuse it."""
    clauses = []
    for field, operator, value, _ in tokens(query):
        if field not in TEXT_FIELDS and field not in BOOLEAN_FIELDS:
            raise InvalidQuery(f"unknown field {field!r}")
        if field in BOOLEAN_FIELDS and (operator != "=" or value not in ("true", "false")):
            raise InvalidQuery(f"{field} takes =true or =false")
        clauses.append(Clause(field, operator, value))
    return clauses


def search(users: Iterable[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The users matching every clause of ``query``."""
    clauses = parse(query)
    return [user for user in users if all(clause.matches(user) for clause in clauses)]
