"""Where komeet-sync keeps its state, from the environment.

``KOMEET_SYNC_HOME`` (default ``./.komeet_sync/``) holds the embedded SQLite database and every
sync's results (``syncs/``); ``KOMEET_SYNC_DATABASE_URL`` selects another database
(PostgreSQL: ``postgresql+psycopg://user@host/dbname``); ``KOMEET_SYNC_RESULTS`` another
place for the results (a folder, or an fsspec URL such as ``s3://bucket/komeet``);
``KOMEET_SYNC_PUBLIC_URL`` is the address IdPs reach the SCIM endpoint at (default
``http://127.0.0.1:8000``).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("KOMEET_SYNC_HOME") or ".komeet_sync").expanduser()


def database_url() -> str:
    configured = os.environ.get("KOMEET_SYNC_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{(home() / 'komeet_sync.db').resolve()}"


def database_url_configured() -> bool:
    return bool(os.environ.get("KOMEET_SYNC_DATABASE_URL"))


def results_url(state: Path | None = None) -> str:
    """Where every sync's results are stored (``store.results``): ``KOMEET_SYNC_RESULTS``,
    else ``syncs/`` in ``state`` (default ``KOMEET_SYNC_HOME``)."""
    configured = os.environ.get("KOMEET_SYNC_RESULTS")
    return configured or str(((state or home()) / "syncs").resolve())


def public_url() -> str:
    return (os.environ.get("KOMEET_SYNC_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
