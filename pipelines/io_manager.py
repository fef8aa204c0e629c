"""Where the assets' values live: Parquet files (and JSON beside them) under
``KOMEET_SYNC_HOME/assets`` by default, or under any fsspec URL (``s3://bucket/komeet``,
``gs://...``) when configured.

Each materialization is written twice: at ``<asset>/<domain>/`` (the latest, which
downstream assets read) and at ``history/<asset>/<domain>/<run id>/``, so that every
snapshot and report stays retrievable for trends and audits; the run's path is in the
materialization's metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field
from upath import UPath

from komeet_sync import settings
from komeet_sync.store.frame_files import read_result, write_result


class FrameStore(dg.UPathIOManager):
    """A ``dg.UPathIOManager`` writing each value as a folder (``store.frame_files``)."""

    extension = ""  # a folder per asset and domain

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if path.exists():
            path.fs.rm(str(path), recursive=True)
        stamp = {"run_id": context.run_id, "written_at": datetime.now(UTC).isoformat()}
        write_result(obj, path, stamp)
        history = self._base_path / "history" / path.relative_to(self._base_path) / context.run_id
        write_result(obj, history, stamp)
        context.add_output_metadata({"history": dg.MetadataValue.path(str(history))})

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        return read_result(path)


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """The Parquet IO manager: ``base_path`` is a folder or an fsspec URL (default
    ``$KOMEET_SYNC_HOME/assets``); ``storage_options`` go to fsspec (credentials from
    ``dg.EnvVar``)."""

    base_path: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)

    def create_io_manager(self, context: dg.InitResourceContext) -> FrameStore:
        base = self.base_path or str((settings.home() / "assets").resolve())
        return FrameStore(base_path=UPath(base, **self.storage_options))
