"""The Dagster definitions of komeet-sync: ``dagster dev -w workspace.yaml``."""

import dagster as dg

from .approvals import APPROVALS, approve_plan
from .assets.extract import komeet_accounts, snapshot
from .assets.provisioning import results
from .assets.reports import reconciliation
from .checks import every_domain_writes
from .executors import steps_executor
from .io_manager import sync_store
from .jobs import retention, sync_domain
from .resources import DatabaseResource, GoogleResource, KomeetResource
from .schedules import daily_retention, every_domain
from .sensors import (
    domain_partitions,
    domain_states,
    notifications,
    scim_pushes,
    sync_failures,
)

defs = dg.Definitions(
    # In the run's process, or on Celery workers: KOMEET_SYNC_EXECUTOR, read as a run starts.
    executor=steps_executor,
    assets=[snapshot, komeet_accounts, reconciliation, results, APPROVALS],
    asset_checks=[every_domain_writes],
    jobs=[sync_domain, retention, approve_plan],
    schedules=[every_domain, daily_retention],
    sensors=[domain_partitions, scim_pushes, sync_failures, notifications, domain_states],
    resources={
        "io_manager": sync_store,
        "database": DatabaseResource(),
        "google": GoogleResource(),
        "komeet": KomeetResource(
            url=dg.EnvVar("KOMEET_SCIM_URL"), token=dg.EnvVar("KOMEET_SCIM_TOKEN")
        ),
    },
)
