"""The provisioning plan: the actions to send to Komeet, each row with its action and reason,
and the holds that keep it from being sent (ARCHITECTURE.md, "Applying a plan").
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from komeet_sync.model.holds import Hold

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
