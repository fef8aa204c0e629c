"""The Dagster definitions of komeet-sync: ``dagster dev -w workspace.yaml``."""

import dagster as dg

from .assets.extract import google_directory, komeet_users, scim_staging
from .assets.provisioning import provisioning_results
from .assets.reports import directory_users, reconciliation
from .io_manager import ParquetIOManager
from .jobs import sync_domain
from .resources import DatabaseResource, GoogleResource, KomeetResource
from .schedules import every_domain
from .sensors import domain_partitions, scim_pushes, sync_failures

defs = dg.Definitions(
    # A domain's steps run one after the other in the run's process: a process per step
    # would cost more in imports than the steps take.
    executor=dg.in_process_executor,
    assets=[
        google_directory,
        scim_staging,
        komeet_users,
        directory_users,
        reconciliation,
        provisioning_results,
    ],
    jobs=[sync_domain],
    schedules=[every_domain],
    sensors=[domain_partitions, scim_pushes, sync_failures],
    resources={
        "io_manager": ParquetIOManager(),
        "database": DatabaseResource(),
        "google": GoogleResource(),
        "komeet": KomeetResource(
            url=dg.EnvVar("KOMEET_SCIM_URL"), token=dg.EnvVar("KOMEET_SCIM_TOKEN")
        ),
    },
)
