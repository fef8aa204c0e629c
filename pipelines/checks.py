"""Checks on each domain's read and plan (ARCHITECTURE.md, "Guards"), evaluated by the assets
that make them, in the same run and partition; and on every domain's switch and quarantine.

A source read that is not whole fails its run: its check blocks, nothing is planned from it.
A guard's check fails (ERROR) on a held plan without failing the run: held is not broken.
``results`` still runs and sends nothing (the apply refuses a held plan), records "held"
with the plan's id, and tags the run ``komeet/held=true``; the check's metadata say by how
much the plan is over its guard and how to approve it. The WARN checks flag what an analyst
should look at.
"""

import dagster as dg
import pandas as pd

from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.holds import Guard
from komeet_sync.model.reports import DUPLICATES, ERRORS, PLAN, RESULTS, SNAPSHOT
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.plans import StoredPlan

from .resources import DatabaseResource

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
        description="Every selected group exists and has members (no approval lifts this).",
    ),
    Guard.SHRINK: dg.AssetCheckSpec(
        "directory_not_shrunk",
        asset=PLAN.name,
        description="The directory did not shrink beyond the guard since the last applied "
        "plan, or an admin approved this plan.",
    ),
    Guard.DEACTIVATION_BUDGET: dg.AssetCheckSpec(
        "deactivations_within_budget",
        asset=PLAN.name,
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


def guard_checks(plan: StoredPlan, approve_link: str) -> list[dg.AssetCheckResult]:
    """One result per guard: passed when the plan has no hold of it, or when an admin
    approved the plan and an approval may lift that hold. A hold's result says by how much
    (``measured`` against ``limit``) and how to approve the plan, or that no approval can."""
    results = []
    for guard, spec in GUARD_CHECKS.items():
        holds = [hold for hold in plan.holds if hold.guard is guard]
        lifted = bool(holds) and all(hold.approvable for hold in holds) and bool(plan.approved_by)
        metadata: dict[str, object] = {
            "domain": plan.domain,
            "plan_id": plan.plan_id,
            "detail": holds[0].detail if holds else "ok",
            "approved_by": plan.approved_by or "",
        }
        if holds:
            hold = holds[0]
            metadata |= {"measured": hold.measured, "limit": hold.limit}
            metadata |= {"over": round(hold.measured - hold.limit, 4)}
            metadata |= approval_metadata(plan, approve_link)
        results.append(
            dg.AssetCheckResult(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=not holds or lifted,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=metadata,
            )
        )
    return results


def approval_metadata(plan: StoredPlan, approve_link: str) -> dict[str, object]:
    """How a held plan is approved (the UI's launchpad, or the CLI), or why it cannot be."""
    if plan.stopped:
        return {"approve": plan.why_stopped()}
    if plan.approved_by:
        return {"approve": f"approved by {plan.approved_by}"}
    return {
        "approve": f"komeet-sync plans approve {plan.plan_id} --by NAME",
        "approve in the UI": dg.MetadataValue.url(approve_link),
        "once approved": f"the next sync of {plan.domain} applies it (or `komeet-sync apply "
        f"{plan.plan_id}` at once)",
    }


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


DOMAINS_WRITING = "every_domain_writes"


@dg.asset_check(
    asset=RESULTS.name,
    name=DOMAINS_WRITING,
    blocking=False,
    description="Every configured domain writes to Komeet: none is quarantined or disabled. "
    "Evaluated by each sync and, when a domain's switch or quarantine changes, by the "
    "domain_states sensor; its metadata name each domain that does not write, and why.",
)
def every_domain_writes(database: DatabaseResource) -> dg.AssetCheckResult:
    return domains_writing(DomainStore(database.engine()).list())


def domains_writing(configs: list[DomainConfig]) -> dg.AssetCheckResult:
    """Quarantined and disabled domains, marked: WARN, for they wait for someone (a release,
    an enable) rather than being broken."""
    quarantined = [config for config in configs if config.quarantine is not None]
    disabled = [config for config in configs if not config.enabled]
    rows = [
        f"| {config.domain} | {config.source.value} | quarantined | "
        f"{config.quarantine.since:%Y-%m-%d %H:%M} UTC: {config.quarantine.reason} | "
        f"`{config.quarantine.release}` |"
        for config in quarantined
        if config.quarantine is not None
    ] + [
        f"| {config.domain} | {config.source.value} | disabled | its syncs write nothing | "
        f"`komeet-sync domains enable {config.domain}` |"
        for config in disabled
    ]
    table = "| domain | source | state | why | to lift it |\n|---|---|---|---|---|\n"
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(RESULTS.name),
        check_name=DOMAINS_WRITING,
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "writing": f"{len(configs) - len({c.domain for c in quarantined + disabled})} of "
            f"{len(configs)} domains",
            "quarantined": ", ".join(config.domain for config in quarantined) or "none",
            "disabled": ", ".join(config.domain for config in disabled) or "none",
            "not writing": dg.MetadataValue.md(
                table + "\n".join(rows) if rows else "_every domain writes_"
            ),
        },
    )
