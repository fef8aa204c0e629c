"""Sending the plan to Komeet (group ``provisioning``)."""

import dagster as dg

from komeet_sync.model.reports import ACCOUNTS, PLAN, RESULTS
from komeet_sync.runs import sync
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport

from ..io_manager import run_folder
from ..metadata import frame_metadata
from ..partitions import domains
from ..resources import DatabaseResource, KomeetResource

# Every application holds a slot of this pool: its limit (deploy/dagster.yaml) caps the
# applies running at once across all domains, to protect Komeet's API.
KOMEET_POOL = "komeet_api"


@dg.asset(
    name=RESULTS.name,
    partitions_def=domains,
    group_name="provisioning",
    pool=KOMEET_POOL,
    description=RESULTS.description,
)
def results(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    komeet: KomeetResource,
    plan: PlanReport,
) -> ResultsReport:
    """Each action's outcome in Komeet (the ledger), or why nothing was sent. Runs only when
    the blocking checks on the plan pass. Its metadata says whether the domain is
    quarantined (it was, and nothing was sent; or this application quarantined it)."""
    assert plan.stored is not None
    # This run read Komeet and made the plan from that read (not a run of the apply alone).
    folder = run_folder(context.instance, context.run.run_id, context.partition_key)
    fresh_read = folder.has(ACCOUNTS) and folder.has(PLAN.name)
    applied = sync.apply(
        database.engine(),
        plan.stored.plan_id,
        komeet.client(),
        trigger=f"dagster run {context.run.run_id}",
        fresh_read=fresh_read,
    )
    report = applied.report
    quarantine = applied.quarantine
    context.add_output_metadata(
        frame_metadata(
            report.entries,
            plan_id=report.plan_id,
            stopped=report.stopped or "no",
            quarantined="yes" if quarantine else "no",
            **({"quarantine": str(quarantine)} if quarantine else {}),
            **{f"ledger/{status}": count for status, count in report.counts.items()},
        )
    )
    return report
