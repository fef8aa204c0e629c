"""The desired state and what reconciliation makes of it (group ``reports``)."""

from collections.abc import Iterator

import dagster as dg

from komeet_sync.engine import scope
from komeet_sync.runs.steps import KomeetRead, PlannedSync, domain_source, plan_sync
from komeet_sync.runs.sync import SourceRead
from komeet_sync.store.plans import PlanStore

from .. import checks
from ..metadata import frame_metadata
from ..partitions import domains
from ..resources import DatabaseResource

# Report asset -> the reconciliation's report of that name.
REPORTS = {
    "joiners": "joiners",
    "leavers": "leavers",
    "updates": "updates",
    "duplicates": "duplicates",
    "sync_errors": "errors",
    "out_of_scope": "out_of_scope",
}
DESCRIPTIONS = {
    "joiners": "People to get an account (create) or to have theirs back (reactivate).",
    "leavers": "Active managed accounts whose person is no longer desired: deactivate.",
    "updates": "Matched accounts whose names, userName or externalId differ: update.",
    "duplicates": "Clusters of people and accounts that match each other more than once.",
    "sync_errors": "What could not be done and why: invalid emails, missing groups, failures.",
    "out_of_scope": "Active directory users in none of the selected groups.",
}


@dg.asset(partitions_def=domains, group_name="reports", check_specs=[checks.SOURCE_READ_COMPLETE])
def directory_users(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    google_directory: SourceRead | None,
    scim_staging: SourceRead | None,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The desired state: the read of the domain's own source (Google or SCIM)."""
    config = database.domain(context.partition_key)
    read = domain_source(config, google_directory, scim_staging)
    people = scope.assess(read.snapshot, config).people
    desired = people[people["desired"]]
    yield dg.Output(
        read,
        metadata=frame_metadata(
            desired[["email", "given_name", "family_name", "org_unit"]],
            source=read.snapshot.source.value,
            directory_users=len(people),
            desired=len(desired),
        ),
    )
    yield checks.source_read_complete(read)


class Approval(dg.Config):
    """Approve the plan this run makes, if its id is ``plan_id`` (an admin read it in
    ``komeet-sync plans show`` or the UI): the run config's way of ``plans approve``."""

    plan_id: str = ""
    approved_by: str = ""


@dg.multi_asset(
    partitions_def=domains,
    group_name="reports",
    outs={
        **{name: dg.AssetOut(description=DESCRIPTIONS[name]) for name in REPORTS},
        "provisioning_plan": dg.AssetOut(
            description="The actions to send to Komeet, with the guards that hold them."
        ),
    },
    check_specs=[*checks.GUARD_CHECKS.values(), checks.NO_INVALID_EMAILS, checks.NO_DUPLICATES],
)
def reconciliation(
    context: dg.AssetExecutionContext,
    config: Approval,
    database: DatabaseResource,
    directory_users: SourceRead,
    komeet_users: KomeetRead,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Every person's and account's situation, as reports and a stored plan, with the
    guards' checks on the plan."""
    domain = database.domain(context.partition_key)
    result, planned = plan_sync(database.engine(), domain, directory_users, komeet_users)
    if config.plan_id.strip() == planned.plan.plan_id and planned.plan.waiting_for_approval:
        approved = PlanStore(database.engine()).approve(
            planned.plan.plan_id, config.approved_by or f"Dagster run {context.run.run_id}"
        )
        planned = PlannedSync(approved, planned.actions)
    for asset, report in REPORTS.items():
        frame = result.reports[report]
        yield dg.Output(frame, output_name=asset, metadata=frame_metadata(frame))
    plan = planned.plan
    yield dg.Output(
        planned,
        output_name="provisioning_plan",
        metadata=frame_metadata(
            planned.actions,
            plan_id=plan.plan_id,
            held=", ".join(hold.guard.value for hold in plan.holds) or "no",
            approved_by=plan.approved_by or "",
            **{f"actions/{action}": count for action, count in plan.counts.items()},
        ),
    )
    yield from checks.guard_checks(plan)
    yield checks.no_invalid_emails(result.reports["errors"])
    yield checks.no_duplicates(result.reports["duplicates"])
