"""Checks on each domain's read and plan (ARCHITECTURE.md, "Guards"), evaluated by the assets
that make them, in the same run and partition.

The ERROR checks are blocking: when one fails, ``results`` does not run, so
nothing is sent to Komeet. The WARN checks flag what an analyst should look at.
"""

import dagster as dg
import pandas as pd

from komeet_sync.model.holds import Guard
from komeet_sync.model.reports import DUPLICATES, ERRORS, PLAN, SNAPSHOT
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.store.plans import StoredPlan

SOURCE_READ_COMPLETE = dg.AssetCheckSpec(
    "source_read_complete",
    asset=SNAPSHOT,
    blocking=True,
    description="The source was read whole and holds people: an empty directory is never trusted.",
)
GUARD_CHECKS = {
    Guard.GROUP_MISSING: dg.AssetCheckSpec(
        "selected_groups_found",
        asset=PLAN.name,
        blocking=True,
        description="Every selected group exists and has members (no approval lifts this).",
    ),
    Guard.SHRINK: dg.AssetCheckSpec(
        "directory_not_shrunk",
        asset=PLAN.name,
        blocking=True,
        description="The directory did not shrink beyond the guard since the last applied "
        "plan, or an admin approved this plan.",
    ),
    Guard.DEACTIVATION_BUDGET: dg.AssetCheckSpec(
        "deactivations_within_budget",
        asset=PLAN.name,
        blocking=True,
        description="The deactivations are within the budget, or an admin approved this plan "
        "by its id (komeet-sync plans approve, or the run config).",
    ),
}
NO_INVALID_EMAILS = dg.AssetCheckSpec(
    "no_invalid_emails",
    asset=ERRORS.name,
    description="People whose email is invalid or outside the domain get no account.",
)
NO_DUPLICATES = dg.AssetCheckSpec(
    "no_duplicates",
    asset=DUPLICATES.name,
    description="Disputed people and accounts get no action until someone resolves them.",
)


def source_read_complete(read: DirectorySnapshot, domain: str) -> dg.AssetCheckResult:
    users = len(read.users)
    return dg.AssetCheckResult(
        check_name=SOURCE_READ_COMPLETE.name,
        passed=users > 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"users": users, "headline": read.describe(domain)},
    )


def guard_checks(plan: StoredPlan) -> list[dg.AssetCheckResult]:
    """One result per guard: passed when the plan has no hold of it, or when an admin
    approved the plan and an approval may lift that hold."""
    results = []
    for guard, spec in GUARD_CHECKS.items():
        holds = [hold for hold in plan.holds if hold.guard is guard]
        lifted = bool(holds) and all(hold.approvable for hold in holds) and bool(plan.approved_by)
        results.append(
            dg.AssetCheckResult(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=not holds or lifted,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "plan_id": plan.plan_id,
                    "detail": holds[0].detail if holds else "ok",
                    "approved_by": plan.approved_by or "",
                },
            )
        )
    return results


def no_invalid_emails(errors: pd.DataFrame) -> dg.AssetCheckResult:
    invalid = errors[errors["error"].isin(["invalid_email", "outside_domain"])]
    return dg.AssetCheckResult(
        asset_key=NO_INVALID_EMAILS.asset_key,
        check_name=NO_INVALID_EMAILS.name,
        passed=invalid.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"invalid": len(invalid)},
    )


def no_duplicates(duplicates: pd.DataFrame) -> dg.AssetCheckResult:
    clusters = int(duplicates["cluster_id"].nunique()) if len(duplicates) else 0
    return dg.AssetCheckResult(
        asset_key=NO_DUPLICATES.asset_key,
        check_name=NO_DUPLICATES.name,
        passed=clusters == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"clusters": clusters, "rows": len(duplicates)},
    )
