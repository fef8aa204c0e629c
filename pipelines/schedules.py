"""The schedule: every enabled domain synced, hourly unless ``KOMEET_SYNC_SCHEDULE`` gives
another cron expression."""

import os
from collections.abc import Iterator

import dagster as dg

from komeet_sync.store.domains import DomainStore

from .jobs import sync_domain
from .resources import DatabaseResource

CRON = os.environ.get("KOMEET_SYNC_SCHEDULE", "0 * * * *")


@dg.schedule(cron_schedule=CRON, job=sync_domain, default_status=dg.DefaultScheduleStatus.RUNNING)
def every_domain(
    context: dg.ScheduleEvaluationContext, database: DatabaseResource
) -> Iterator[dg.RunRequest]:
    """One run per enabled domain."""
    for config in DomainStore(database.engine()).list():
        if config.enabled:
            yield dg.RunRequest(
                partition_key=config.domain,
                run_key=f"{config.domain}-{context.scheduled_execution_time:%Y%m%dT%H%M}",
            )
