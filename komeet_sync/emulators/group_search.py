"""The ``query`` of ``groups.list``, as Google's "Search for groups" guide (Admin SDK
Directory API) defines it: clauses ``field operator value`` separated by spaces and all
required (an implicit AND; there is no OR); a value with spaces is enclosed in single
quotes, a quote in it escaped as ``\\'``. Fields: ``email`` and ``name`` with ``=`` (the
whole value) or ``:{PREFIX}*`` (the value starts with the prefix: ``email:support*`` finds
``support@`` and ``supportgroup@``, not ``contactsupport@``), and ``memberKey=`` (the groups
a user or group is a direct member of), which goes with neither of the others. Text
compares ignoring case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from komeet_sync.emulators.user_search import InvalidQuery, tokens

FIELDS = ("email", "name", "memberKey")


@dataclass(frozen=True)
class Clause:
    field: str
    operator: str  # "=" or ":"
    value: str  # lower case; a prefix for ":"

    def matches(self, group: dict[str, Any]) -> bool:
        if self.field == "memberKey":
            return any(
                self.value in (str(m.get("id", "")).lower(), str(m.get("email", "")).lower())
                for m in group.get("members", [])
            )
        value = str(group.get(self.field) or "").lower()
        return value == self.value if self.operator == "=" else value.startswith(self.value)


def parse(query: str) -> list[Clause]:
    """The clauses of ``query``; InvalidQuery when Google would refuse it."""
    clauses = []
    for field, operator, value, prefix in tokens(query):
        if field not in FIELDS:
            raise InvalidQuery(f"unknown field {field!r}")
        if operator == ":" and (field == "memberKey" or not prefix):
            raise InvalidQuery(f"{field} takes = or :PREFIX*")
        if operator == "=" and prefix:
            raise InvalidQuery(f"{field}= takes a whole value, without *")
        clauses.append(Clause(field, operator, value.removesuffix("*").lower()))
    keys = {clause.field for clause in clauses}
    if "memberKey" in keys and keys & {"email", "name"}:
        raise InvalidQuery("memberKey cannot be used with email or name in the same query")
    return clauses


def search(groups: Iterable[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The groups matching every clause of ``query``."""
    clauses = parse(query)
    return [group for group in groups if all(clause.matches(group) for clause in clauses)]
