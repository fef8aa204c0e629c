"""Sending the plan to Komeet (group ``provisioning``)."""

from datetime import UTC, datetime

import dagster as dg

from komeet_sync.model.reports import ACCOUNTS, PLAN, RESULTS
from komeet_sync.runs import sync
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport, PlanStore

from .. import checks, tags
from ..approvals import launchpad_link, location_of
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
    """Each action's outcome in Komeet (the ledger), or why nothing was sent. Its metadata
    are the domain's health at a glance in the catalog, partition by partition: ``status``
    (applied, applied with failures, nothing to do, held, quarantined, disabled...), what was
    sent and planned, and when. A plan a guard holds is not sent: the run is tagged
    ``komeet/held=true`` and the metadata link to its approval; it does not fail."""
    assert plan.stored is not None
    engine = database.engine()
    config = database.domain(context.partition_key)
    tags.tag_run(context, tags.domain_tags(config))
    # This run read Komeet and made the plan from that read (not a run of the apply alone).
    folder = run_folder(context.instance, context.run.run_id, context.partition_key)
    fresh_read = folder.has(ACCOUNTS) and folder.has(PLAN.name)
    applied = sync.apply(
        engine,
        plan.stored.plan_id,
        komeet.client(),
        trigger=f"dagster run {context.run.run_id}",
        fresh_read=fresh_read,
    )
    report = applied.report
    quarantine = applied.quarantine
    plans = PlanStore(engine)
    status = plans.status(plans.get(report.plan_id))  # its approval and state, after the apply
    stored = status.plan
    outcome = applied.outcome(status)
    if applied.held:
        tags.tag_run(context, {tags.HELD: "true"})
        link = launchpad_link(stored.plan_id, location_of(context.run))
        context.log.warning(f"{config.domain}: nothing was sent. {report.stopped}")
    context.add_output_metadata(
        frame_metadata(
            report.entries,
            status=outcome.value,
            domain=config.domain,
            source=config.source.value,
            enabled="yes" if config.enabled else "no",
            synced_at=datetime.now(UTC).isoformat(timespec="seconds"),
            plan_id=report.plan_id,
            stopped=report.stopped or "no",
            quarantined="yes" if quarantine else "no",
            **({"quarantine": str(quarantine)} if quarantine else {}),
            **(checks.approval_metadata(stored, link) if applied.held else {}),
            **{f"planned/{action}": count for action, count in stored.counts.items()},
            **{f"ledger/{status}": count for status, count in report.counts.items()},
        )
    )
    return report
