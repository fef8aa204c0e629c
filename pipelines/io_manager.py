"""Where the assets' values live: the result store (``komeet_sync.store.results``), where
``komeet-sync sync`` stores its syncs too. Each run of a domain is one sync folder, each
asset stored under its name there; ``KOMEET_SYNC_RESULTS`` (a folder, or an fsspec URL such
as ``s3://bucket/komeet``) says where, for Dagster, the CLI and the notebooks alike.

A step loads its inputs from its own run's folder when the run made them, else from the
domain's latest sync that stored them (a run of part of the graph, like the apply alone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from komeet_sync.store.results import ResultStore
from komeet_sync.store.sync_folder import ResultError, SyncFolder


def run_folder(instance: dg.DagsterInstance, run_id: str, domain: str) -> SyncFolder:
    """The folder of a run's sync of ``domain``, named after the run's creation."""
    return ResultStore.from_settings().folder(domain, _created(instance, run_id), run_id)


def _created(instance: dg.DagsterInstance, run_id: str) -> datetime:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        raise ResultError(f"no Dagster run {run_id} in this instance")
    return record.create_timestamp


class SyncStoreIOManager(dg.IOManager):
    """Each asset's value written to its run's sync folder, under the asset's name."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        folder = ResultStore.from_settings().start(
            context.asset_partition_key,
            f"dagster run {context.run_id}",
            started_at=_created(context.step_context.instance, context.run_id),
            run_id=context.run_id,
        )
        folder.write(context.asset_key.path[-1], obj)
        context.add_output_metadata({"stored in": dg.MetadataValue.path(folder.location)})

    def load_input(self, context: dg.InputContext) -> Any:
        name, domain = context.asset_key.path[-1], context.asset_partition_key
        mine = run_folder(context.instance, context.step_context.run_id, domain)
        if mine.has(name):
            return mine.read(name)
        latest = ResultStore.from_settings().latest(domain, name)
        if latest is None:
            raise ResultError(
                f"no {name} is stored for {domain}: materialize it first (its sync's upstream "
                "assets)"
            )
        return latest.read(name)


@dg.io_manager(description="Every asset in its run's sync folder of the result store.")
def sync_store() -> SyncStoreIOManager:
    return SyncStoreIOManager()
