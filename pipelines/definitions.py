"""The Dagster definitions of komeet-sync: ``dagster dev -w workspace.yaml``."""

import dagster as dg

from .assets.extract import komeet_accounts, snapshot
from .assets.provisioning import results
from .assets.reports import reconciliation
from .io_manager import sync_store
from .jobs import retention, sync_domain
from .resources import DatabaseResource, GoogleResource, KomeetResource
from .schedules import daily_retention, every_domain
from .sensors import domain_partitions, notifications, scim_pushes, sync_failures

defs = dg.Definitions(
    # A domain's steps run one after the other in the run's process: a process per step
    # would cost more in imports than the steps take.
    executor=dg.in_process_executor,
    assets=[snapshot, komeet_accounts, reconciliation, results],
    jobs=[sync_domain, retention],
    schedules=[every_domain, daily_retention],
    sensors=[domain_partitions, scim_pushes, sync_failures, notifications],
    resources={
        "io_manager": sync_store,
        "database": DatabaseResource(),
        "google": GoogleResource(),
        "komeet": KomeetResource(
            url=dg.EnvVar("KOMEET_SCIM_URL"), token=dg.EnvVar("KOMEET_SCIM_TOKEN")
        ),
    },
)
