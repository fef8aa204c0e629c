"""The provisioning plan: what to send to Komeet, each row with its action and reason.

The plan id is a hash of the domain and the plan's actions in a canonical order, so the
same state always gives the same id whatever the order of the input rows, and an approval
names exactly one plan.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from komeet_sync.engine.guards import Hold

PLAN_COLUMNS: dict[str, str] = {
    "action": "str",  # create | reactivate | update | deactivate
    "email": "str",  # the person's normalised email; the account's userName for deactivate
    "komeet_id": "str",  # empty for create
    "user_name": "str",  # the userName the account must have
    "external_id": "str",  # the externalId the account must carry
    "given_name": "str",
    "family_name": "str",
    "changes": "str",  # for update and reactivate: what changes, before and after
    "reason": "str",
}

# What identifies an action; the reason is explanation only and is left out of the id.
_IDENTITY = ["action", "komeet_id", "user_name", "external_id", "given_name", "family_name"]


@dataclass(frozen=True)
class Plan:
    domain: str
    plan_id: str
    actions: pd.DataFrame  # PLAN_COLUMNS
    holds: tuple[Hold, ...]

    @property
    def held(self) -> bool:
        return bool(self.holds)

    def counts(self) -> dict[str, int]:
        return {
            str(action): int(count)
            for action, count in self.actions["action"].value_counts().sort_index().items()
        }


def build_plan(domain: str, actions: pd.DataFrame, holds: tuple[Hold, ...]) -> Plan:
    ordered = (
        actions[list(PLAN_COLUMNS)]
        .astype(PLAN_COLUMNS)
        .sort_values(["action", "email", "komeet_id"], na_position="first", kind="stable")
        .reset_index(drop=True)
    )
    return Plan(domain=domain, plan_id=plan_id(domain, ordered), actions=ordered, holds=holds)


def plan_id(domain: str, actions: pd.DataFrame) -> str:
    canonical = (
        actions[_IDENTITY]
        .fillna("")
        .sort_values(_IDENTITY, kind="stable")
        .to_csv(index=False, lineterminator="\n")
    )
    digest = hashlib.sha256(f"{domain}\n{canonical}".encode()).hexdigest()
    return f"plan_{digest[:20]}"
