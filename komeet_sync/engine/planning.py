"""The provisioning plan: what to send to Komeet, each row with its action and reason.

The plan id is a hash of the domain and the plan's actions in a canonical order, so the
same state always gives the same id whatever the order of the input rows, and an approval
names exactly one plan.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from komeet_sync.model.holds import Hold
from komeet_sync.model.plan import PLAN_COLUMNS, Plan

# What identifies an action; the reason is explanation only and is left out of the id.
_IDENTITY = ["action", "komeet_id", "user_name", "external_id", "given_name", "family_name"]


def build_plan(
    domain: str, actions: pd.DataFrame, holds: tuple[Hold, ...], *, part: bool = False
) -> Plan:
    """The plan of these actions, ordered, and its id. ``part``: the plan decides for some
    of the domain's people only (an incremental sync's), and its id is never a whole
    domain's, even when their actions are the same (a whole sync's plan supersedes the
    domain's others; a part's does not)."""
    ordered = (
        actions[list(PLAN_COLUMNS)]
        .astype(PLAN_COLUMNS)
        .sort_values(["action", "email", "komeet_id"], na_position="first", kind="stable")
        .reset_index(drop=True)
    )
    identity = f"{domain} (some people)" if part else domain
    return Plan(domain=domain, plan_id=plan_id(identity, ordered), actions=ordered, holds=holds)


def plan_id(domain: str, actions: pd.DataFrame) -> str:
    canonical = (
        actions[_IDENTITY]
        .fillna("")
        .sort_values(_IDENTITY, kind="stable")
        .to_csv(index=False, lineterminator="\n")
    )
    digest = hashlib.sha256(f"{domain}\n{canonical}".encode()).hexdigest()
    return f"plan_{digest[:20]}"
