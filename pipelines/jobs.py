"""The sync job: every asset of one domain, extract to provisioning."""

import dagster as dg

sync_domain = dg.define_asset_job(
    "sync_domain",
    selection=dg.AssetSelection.all(),
    description="Extract, reconcile, plan and apply one domain (one partition).",
)
