"""Guards: each stops writes and says why; none is silent (ARCHITECTURE.md, "Guards").

- A selected group that does not exist or comes back empty stops the domain.
- The directory shrank by more than the configured share since the last good snapshot: hold.
- Deactivations over the budget (the smaller of ``max_deactivations`` and
  ``max_deactivation_share`` of the domain's active managed accounts): hold.

A hold on shrink or budget is lifted by an admin's approval of that plan, by id; a missing
group is not: the selection must be fixed. (A source read that fails part-way never gets
here: it produces no snapshot. A disabled domain is stopped where plans are applied.)
"""

from __future__ import annotations

import math

import pandas as pd

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.holds import Guard, Hold


def deactivation_budget(config: DomainConfig, active_managed: int) -> int:
    """The most deactivations a plan may carry without an approval."""
    return min(config.max_deactivations, math.floor(config.max_deactivation_share * active_managed))


def evaluate(
    config: DomainConfig,
    *,
    missing_groups: pd.DataFrame,
    desired: int,
    last_good_desired: int | None,
    deactivations: int,
    active_managed: int | None,
) -> tuple[Hold, ...]:
    """The holds on a plan. ``active_managed`` None: the plan is part of a domain (an
    incremental sync), whose deactivations are counted over a rolling window instead."""
    holds: list[Hold] = []
    for row in missing_groups.itertuples(index=False):  # a handful of selected groups at most
        holds.append(Hold(Guard.GROUP_MISSING, str(row.detail), False, 1, 0))

    if last_good_desired:
        shrink = (last_good_desired - desired) / last_good_desired
        if shrink > config.max_deactivation_share:
            holds.append(
                Hold(
                    Guard.SHRINK,
                    f"the directory shrank from {last_good_desired:,} to {desired:,} desired "
                    f"people ({shrink:.1%}) since the last good snapshot; the limit is "
                    f"{config.max_deactivation_share:.0%}. Approve this plan if the shrink "
                    "is real, or check the group selection and the source",
                    True,
                    round(shrink, 6),
                    config.max_deactivation_share,
                )
            )

    if active_managed is None:
        return tuple(holds)
    budget = deactivation_budget(config, active_managed)
    if deactivations > budget:
        holds.append(
            Hold(
                Guard.DEACTIVATION_BUDGET,
                f"{deactivations:,} deactivations planned, {deactivations - budget:,} over the "
                f"budget of {budget:,} (the smaller of {config.max_deactivations:,} and "
                f"{config.max_deactivation_share:.0%} of {active_managed:,} active managed "
                "accounts). Review the leavers, then approve this plan by its id",
                True,
                deactivations,
                budget,
            )
        )
    return tuple(holds)


def rolling_budget(
    config: DomainConfig,
    *,
    active_managed: int | None,
    spent: int,
    deactivations: int,
    window: str,
) -> tuple[int, Hold | None]:
    """How many of an incremental sync's ``deactivations`` may be sent now, and the hold on
    the rest: incremental syncs share the domain's budget over a rolling ``window`` (in
    words), of which ``spent`` is gone (ARCHITECTURE.md, "Guards"), so that a mass
    deprovisioning pushed one person at a time is held like a whole sync's. Without the
    domain's size (``active_managed`` None: no whole sync has counted its accounts) the
    budget is nil."""
    budget = 0 if active_managed is None else deactivation_budget(config, active_managed)
    allowed = max(0, min(deactivations, budget - spent))
    if allowed == deactivations:
        return allowed, None
    size = (
        f"{config.max_deactivation_share:.0%} of {active_managed:,} active managed accounts"
        if active_managed is not None
        else "a share of the domain's accounts, which no whole sync has counted yet: run "
        f"`komeet-sync sync {config.domain}` once"
    )
    detail = (
        f"{spent + deactivations:,} deactivations within {window}, "
        f"{spent + deactivations - budget:,} over the budget of {budget:,} (the smaller of "
        f"{config.max_deactivations:,} and {size}). Review the leavers, then approve this "
        "plan by its id"
    )
    return allowed, Hold(Guard.DEACTIVATION_BUDGET, detail, True, spent + deactivations, budget)
