"""The schedules: every enabled domain synced, hourly unless ``KOMEET_SYNC_SCHEDULE`` gives
another cron expression; and retention's prune, daily."""

import os
from collections.abc import Iterator

import dagster as dg

from komeet_sync.store.domains import DomainStore

from .jobs import retention, sync_domain
from .resources import DatabaseResource
from .tags import domain_tags

SCHEDULE_ENV = "KOMEET_SYNC_SCHEDULE"
HOURLY = "0 * * * *"
CRON = os.environ.get(SCHEDULE_ENV, "").strip() or HOURLY


def _one_run_per_domain(
    context: dg.ScheduleEvaluationContext, database: DatabaseResource
) -> Iterator[dg.RunRequest]:
    """One run per enabled domain."""
    for config in DomainStore(database.engine()).list():
        if config.enabled:
            yield dg.RunRequest(
                partition_key=config.domain,
                run_key=f"{config.domain}-{context.scheduled_execution_time:%Y%m%dT%H%M}",
                tags=domain_tags(config),
            )


try:
    every_domain = dg.schedule(
        name="every_domain",
        cron_schedule=CRON,
        job=sync_domain,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )(_one_run_per_domain)
except dg.DagsterInvalidDefinitionError:  # Dagster's message does not say where it came from
    raise dg.DagsterInvalidDefinitionError(
        f"{SCHEDULE_ENV}={CRON!r} is not a cron expression of 5 fields; give one like "
        f"'*/15 * * * *', or unset it to sync hourly ({HOURLY!r})"
    ) from None


# Daily, at an hour of few syncs and pushes: the prune's batches interleave with the SCIM
# endpoint's writes anyway.
daily_retention = dg.ScheduleDefinition(
    name="daily_retention",
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    job=retention,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Delete what is older than KOMEET_SYNC_RETENTION_DAYS, daily at 03:30 UTC.",
)
