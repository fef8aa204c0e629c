"""Every sync's results in one store, in one layout, under one set of names, whoever ran it:
``komeet-sync sync`` or a Dagster run (ARCHITECTURE.md, "Layers": one sync path).

    ROOT/DOMAIN/SYNC_ID/
        sync.json                      the sync: its id, domain, start, who ran it, dry run
        snapshot/                      the directory as read (model.snapshots, Parquet + JSON)
        komeet_accounts/               Komeet's accounts as read
        joiners.csv  joiners.parquet   one pair per report (model.reports), as the audit's
        ...
        plan.csv  plan.parquet         the plan's actions
        summary.json                   counts, plan id and holds (as the offline audit's)
        plan.json                      the plan as stored: holds, approval, state
        results.csv  results.parquet   after an apply: each action's outcome (the ledger)
        results.json                   the application, its counts, or why nothing was sent

The root is ``KOMEET_SYNC_RESULTS`` (a folder or an fsspec URL: ``s3://bucket/komeet``),
by default ``$KOMEET_SYNC_HOME/syncs``. A sync id begins with its start time in UTC, to the
millisecond (``20261201T093000.250Z-1a2b3c4d``), so a domain's folders list in the order they
ran. The
offline audit writes the same files to its ``--out``. Syncs stored before this layout are
listed too, read-only (``store.legacy``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from upath import UPath

from komeet_sync import settings
from komeet_sync.model.reports import STORED_NAMES
from komeet_sync.store.legacy import legacy_domains, legacy_syncs
from komeet_sync.store.sync_folder import ResultError, StoredSync, SyncFolder


class ResultStore:
    """Every domain's syncs under one root (see the module's docstring)."""

    def __init__(
        self,
        root: str | UPath | None = None,
        *,
        legacy_home: str | Path | None = None,
    ) -> None:
        """ResultError, naming the setting to change, when no filesystem can hold ``root``
        here: an unknown URL scheme, or its fsspec package missing."""
        location = str(root or settings.results_url())
        # A message names the variables when the root is the one the settings give.
        self.setting = settings.results_setting() if location == settings.results_url() else None
        try:
            self.root = root if isinstance(root, UPath) else UPath(location)
            self.root.fs  # noqa: B018 - loads the filesystem's package now, not mid-sync
        except ValueError as exc:  # upath: "Unsupported filesystem: 'garbage'"
            raise ResultError(
                f"cannot store results in {location!r}: {exc}; "
                f"{self._fix('a folder, or an fsspec URL such as s3://bucket/komeet')}"
            ) from None
        except ImportError as exc:  # fsspec: "Install s3fs to access S3"
            raise ResultError(
                f"cannot store results in {location!r}: {exc}; install it beside komeet-sync, "
                f"or {self._fix('a folder')}"
            ) from None
        self.legacy_home = Path(legacy_home) if legacy_home is not None else None

    @classmethod
    def from_settings(cls) -> ResultStore:
        """The store ``KOMEET_SYNC_RESULTS`` names, with what ``KOMEET_SYNC_HOME`` held
        before this layout."""
        return cls(legacy_home=settings.home())

    def folder(self, domain: str, started_at: datetime, run_id: str | None = None) -> SyncFolder:
        """Where the sync of ``domain`` that began at ``started_at`` is stored: a Dagster run
        gives its id, so that each of its steps finds the same folder."""
        suffix = (run_id or uuid.uuid4().hex).replace("-", "")[:8]
        moment = started_at.astimezone(UTC)
        stamp = f"{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z"
        return SyncFolder(self.root / domain / f"{stamp}-{suffix}")

    def start(
        self,
        domain: str,
        trigger: str,
        *,
        started_at: datetime | None = None,
        run_id: str | None = None,
        dry_run: bool = False,
    ) -> SyncFolder:
        """The folder of a new sync of ``domain``, with its ``sync.json`` (who ran it, and
        whether it is a dry run)."""
        started_at = (started_at or datetime.now(UTC)).astimezone(UTC)
        folder = self.folder(domain, started_at, run_id)
        record = {
            "sync_id": folder.sync_id,
            "domain": domain,
            "started_at": started_at.isoformat(),
            "trigger": trigger,
            "run_id": run_id,
            "dry_run": dry_run,
        }
        try:
            folder.keep_record(record)
        except OSError as exc:
            raise ResultError(
                f"cannot store the sync of {domain} in {self.root}: {exc.strerror or exc}; "
                f"{self._fix('a folder or a bucket this process may write to')}"
            ) from None
        return folder

    def _fix(self, place: str) -> str:
        return f"set {self.setting} to {place}" if self.setting else f"give {place}"

    def at(self, location: str) -> SyncFolder:
        """The sync folder at ``location`` (a plan's ``reports``)."""
        return SyncFolder(UPath(location))

    def syncs(self, domain: str) -> list[StoredSync]:
        """The domain's syncs, oldest first."""
        folder = self.root / domain
        found: list[StoredSync] = (
            [SyncFolder(path) for path in folder.iterdir() if path.is_dir()]
            if folder.exists()
            else []
        )
        if self.legacy_home is not None:
            found += legacy_syncs(self.legacy_home, domain)
        return sorted(found, key=_in_order)

    def last_sync(self, domain: str) -> StoredSync | None:
        """The domain's latest sync, whatever it stored. A sync id begins with its start
        time, so the folders' names alone say which: one listing, however many syncs."""
        folder = self.root / domain
        names = [path.name for path in folder.iterdir()] if folder.exists() else []
        newest = sorted((SyncFolder(folder / name) for name in names), key=_in_order)
        found: list[StoredSync] = []
        for sync in reversed(newest):  # the newest that is a folder
            if sync.path.is_dir():
                found.append(sync)
                break
        if self.legacy_home is not None:
            found += legacy_syncs(self.legacy_home, domain)
        return max(found, key=_in_order) if found else None

    def history(
        self, domain: str, before: datetime, keep: Collection[str] = ()
    ) -> list[StoredSync]:
        """The domain's past syncs begun before ``before``, oldest first: what retention
        deletes (``runs.retention``). Kept whatever their age: the domain's latest sync, its
        latest sync holding each result (what ``latest`` finds: a step's inputs, ``explain
        --last``, the notebooks' latest report), and those at ``keep`` (locations, known by
        their domain and sync id, wherever the store was when they were recorded)."""
        kept = {tuple(location.rstrip("/").rsplit("/", 2)[-2:]) for location in keep}
        wanted = set(STORED_NAMES)
        found: list[StoredSync] = []
        for newer, sync in enumerate(reversed(self.syncs(domain))):
            latest_of = {name for name in wanted if sync.has(name)}
            wanted -= latest_of
            if not newer or latest_of or (domain, sync.sync_id) in kept:
                continue
            if sync.started_at is not None and sync.started_at < before:
                found.append(sync)
        return found[::-1]

    def latest(self, domain: str, name: str) -> StoredSync | None:
        """The domain's latest sync that stored ``name``."""
        return next((sync for sync in reversed(self.syncs(domain)) if sync.has(name)), None)

    def domains(self) -> list[str]:
        """The domains with a stored sync."""
        names = {path.name for path in self.root.iterdir()} if self.root.exists() else set()
        if self.legacy_home is not None:
            names |= set(legacy_domains(self.legacy_home))
        return sorted(names)


def _in_order(sync: StoredSync) -> tuple[datetime, str]:
    """The order syncs ran in: by start, then by id."""
    return (sync.started_at or datetime.min.replace(tzinfo=UTC), sync.sync_id)
