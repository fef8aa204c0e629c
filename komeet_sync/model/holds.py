"""Why a plan is held: the guard and by how much (ARCHITECTURE.md, "Guards").

A hold on shrink or budget is lifted by an admin's approval of that plan, by id; a missing
group is not: the selection must be fixed. The rules that make holds are ``engine.guards``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Guard(StrEnum):
    GROUP_MISSING = "group_missing"
    SHRINK = "shrink"
    DEACTIVATION_BUDGET = "deactivation_budget"


@dataclass(frozen=True)
class Hold:
    """A guard that held a plan: which, by how much, and whether an approval may lift it."""

    guard: Guard
    detail: str
    approvable: bool
    measured: float
    limit: float

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Hold:
        """A hold as ``as_dict`` wrote it (the plans table, a sync's plan.json)."""
        return cls(
            Guard(str(data["guard"])),
            str(data["detail"]),
            bool(data["approvable"]),
            data["measured"],  # type: ignore[arg-type]
            data["limit"],  # type: ignore[arg-type]
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "guard": self.guard.value,
            "detail": self.detail,
            "approvable": self.approvable,
            "measured": self.measured,
            "limit": self.limit,
        }
