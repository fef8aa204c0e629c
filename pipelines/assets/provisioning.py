"""Sending the plan to Komeet (group ``provisioning``)."""

import dagster as dg

from komeet_sync.runs.steps import AppliedSync, PlannedSync, apply_planned

from ..metadata import frame_metadata
from ..partitions import domains
from ..resources import DatabaseResource, KomeetResource

# Every application holds a slot of this pool: its limit (deploy/dagster.yaml) caps the
# applies running at once across all domains, to protect Komeet's API.
KOMEET_POOL = "komeet_api"


@dg.asset(partitions_def=domains, group_name="provisioning", pool=KOMEET_POOL)
def provisioning_results(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    komeet: KomeetResource,
    provisioning_plan: PlannedSync,
) -> AppliedSync:
    """Each action's outcome in Komeet (the ledger), or why nothing was sent. Runs only when
    the blocking checks on the plan pass."""
    applied = apply_planned(
        database.engine(),
        provisioning_plan.plan.plan_id,
        komeet.client(),
        trigger=f"dagster run {context.run.run_id}",
    )
    context.add_output_metadata(
        frame_metadata(
            applied.results,
            plan_id=applied.plan_id,
            stopped=applied.stopped or "no",
            **{f"ledger/{status}": count for status, count in applied.counts.items()},
        )
    )
    return applied
