"""What reconciliation makes of a domain's read: the reports and the plan (group
``reports``), with the guards' checks on the plan."""

from collections.abc import Iterator

import dagster as dg

from komeet_sync.model.reports import PLAN, RECONCILED
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.runs import sync

from .. import checks, tags
from ..approvals import launchpad_link, location_of
from ..io_manager import run_folder
from ..metadata import frame_metadata
from ..partitions import domains
from ..resources import DatabaseResource


class Approval(dg.Config):
    """Approve the plan this run makes, if its id is ``plan_id`` (an admin read it in
    ``komeet-sync plans show`` or the UI): the run config's way of ``plans approve``; the
    ``approve_plan`` job approves a plan a run has held."""

    plan_id: str = ""
    approved_by: str = ""


@dg.multi_asset(
    partitions_def=domains,
    group_name="reports",
    outs={
        report.name: dg.AssetOut(description=report.description) for report in (*RECONCILED, PLAN)
    },
    check_specs=[*checks.GUARD_CHECKS.values(), checks.NO_INVALID_EMAILS, checks.NO_DUPLICATES],
)
def reconciliation(
    context: dg.AssetExecutionContext,
    config: Approval,
    database: DatabaseResource,
    snapshot: DirectorySnapshot,
    komeet_accounts: KomeetAccounts,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Every person's and account's situation, as reports and a stored plan."""
    domain = database.domain(context.partition_key)
    folder = run_folder(context.instance, context.run.run_id, domain.domain)
    approval = None
    if config.plan_id.strip():
        by = config.approved_by or f"Dagster run {context.run.run_id}"
        approval = sync.Approval(config.plan_id, by)
    planned = sync.plan(
        database.engine(), domain, snapshot, komeet_accounts, reports=folder, approval=approval
    )
    reports = planned.reconciliation.reports
    for report in RECONCILED:
        frame = reports[report.name]
        yield dg.Output(frame, output_name=report.name, metadata=frame_metadata(frame))
    plan = planned.report.stored
    assert plan is not None  # a sync's plan is stored
    tags.tag_run(context, {tags.PLAN: plan.plan_id})
    link = launchpad_link(plan.plan_id, location_of(context.run))
    yield dg.Output(
        planned.report,
        output_name=PLAN.name,
        metadata=frame_metadata(
            planned.report.actions,
            plan_id=plan.plan_id,
            held=", ".join(hold.guard.value for hold in plan.holds) or "no",
            approved_by=plan.approved_by or "",
            **(checks.approval_metadata(plan, link) if plan.held else {}),
            **{f"actions/{action}": count for action, count in plan.counts.items()},
        ),
    )
    yield from checks.guard_checks(plan, link)
    yield checks.no_invalid_emails(reports["errors"])
    yield checks.no_duplicates(reports["duplicates"])
