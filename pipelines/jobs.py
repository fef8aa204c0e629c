"""The jobs: ``sync_domain``, every asset of one domain, extract to provisioning; and
``retention``, the prune of what is kept only ``KOMEET_SYNC_RETENTION_DAYS`` days."""

import dagster as dg

from komeet_sync.runs.retention import Kind, Prune
from komeet_sync.store.results import ResultStore

from .resources import DatabaseResource

sync_domain = dg.define_asset_job(
    "sync_domain",
    selection=dg.AssetSelection.all(),
    description="Extract, reconcile, plan and apply one domain (one partition).",
)


@dg.op(out=dg.Out(dg.Nothing))
def prune(context: dg.OpExecutionContext, database: DatabaseResource) -> dg.Output:
    """Delete the SCIM request log, the change log the worker has read and past syncs'
    results older than ``KOMEET_SYNC_RETENTION_DAYS`` days (``runs.retention``, as
    ``komeet-sync prune`` does); the metadata say what went, by domain."""
    pruning = Prune(database.engine(), ResultStore.from_settings())
    deleted = pruning.run()
    rows = [
        f"| {kind.what} | {domain} | {amount.count:,} {kind.unit} | {amount.files:,} | "
        f"{amount.size:,} |"
        for kind, counts in deleted.kinds.items()
        for domain, amount in counts.items()
    ]
    table = "| what | domain | deleted | files | bytes |\n|---|---|---|---|---|\n" + "\n".join(rows)
    context.log.info(f"deleted what is older than {pruning.cutoff:%Y-%m-%d %H:%M} UTC")
    return dg.Output(
        None,
        metadata={
            "retention_days": pruning.days,
            "cutoff": pruning.cutoff.isoformat(),
            **{f"{kind.value}_deleted": deleted.total(kind).count for kind in Kind},
            "results_bytes_deleted": deleted.total(Kind.RESULTS).size,
            "deleted": dg.MetadataValue.md(table if rows else "_nothing was older_"),
        },
    )


@dg.job(description="Delete what is older than KOMEET_SYNC_RETENTION_DAYS (README, Retention).")
def retention() -> None:
    prune()
