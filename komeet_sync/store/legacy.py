"""What was stored before the layered layout, read as today's results (read-only).

Two layouts came before ``store.results``:

- the Dagster IO manager's, ``$KOMEET_SYNC_HOME/assets/history/ASSET/DOMAIN/RUN_ID/``, one
  folder per asset with the import paths of that time in its ``fields.json``
  (``komeet_sync.sync:SourceRead``, ...) and the asset names of that time (``sync_errors``,
  ``provisioning_plan``, ...);
- the CLI's, ``$KOMEET_SYNC_HOME/reports/DOMAIN/TIME/``: the reports as today's, without
  ``sync.json``, ``plan.json`` or what was read.

Both are listed with today's syncs, under today's names; nothing is moved or rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from upath import UPath

from komeet_sync.model.frames import Source
from komeet_sync.model.holds import Guard, Hold
from komeet_sync.model.reports import ACCOUNTS, SNAPSHOT
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.store import frame_files
from komeet_sync.store.frame_files import STAMP
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport, StoredPlan
from komeet_sync.store.sync_folder import ResultError, StoredSync, SyncFolder


def _source_read(
    snapshot: DirectorySnapshot,
    started_at: datetime,
    seconds: float,
    headline: str = "",
    details: dict[str, Any] | None = None,
) -> DirectorySnapshot:
    """``komeet_sync.sync:SourceRead``: a snapshot and the time of its read, now one type."""
    requests = (details or {}).get("requests")
    return DirectorySnapshot(
        snapshot.source, snapshot.users, snapshot.aliases, snapshot.members, snapshot.groups,
        snapshot.read_errors, started_at, seconds, requests,
    )  # fmt: skip


def _planned_sync(plan: StoredPlan, actions: pd.DataFrame) -> PlanReport:
    summary = {
        "domain": plan.domain,
        "plan_id": plan.plan_id,
        "actions": plan.counts,
        "held": plan.held,
        "hold_reasons": [hold.as_dict() for hold in plan.holds],
        "desired": plan.desired,
    }
    return PlanReport(actions, summary, plan)


def _applied_sync(
    plan_id: str, results: pd.DataFrame, counts: dict[str, int], stopped: str
) -> ResultsReport:
    return ResultsReport(plan_id, None, results, counts, stopped)


# The import paths in folders written before the layered layout -> what builds them now.
TYPES: dict[str, Callable[..., Any]] = {
    "komeet_sync.frames:Source": Source,
    "komeet_sync.frames:DirectorySnapshot": DirectorySnapshot,
    "komeet_sync.guards:Guard": Guard,
    "komeet_sync.guards:Hold": Hold,
    "komeet_sync.plan_store:StoredPlan": StoredPlan,
    "komeet_sync.sync:SourceRead": _source_read,
    "komeet_sync.domain_sync:KomeetRead": lambda accounts, errors: KomeetAccounts(accounts, errors),
    "komeet_sync.domain_sync:PlannedSync": _planned_sync,
    "komeet_sync.domain_sync:AppliedSync": _applied_sync,
}

# The Dagster assets of that time -> today's names.
ASSETS = {
    "directory_users": SNAPSHOT,
    "komeet_users": ACCOUNTS,
    "joiners": "joiners",
    "leavers": "leavers",
    "updates": "updates",
    "duplicates": "duplicates",
    "sync_errors": "errors",
    "out_of_scope": "out_of_scope",
    "provisioning_plan": "plan",
    "provisioning_results": "results",
}
NAMES = {name: asset for asset, name in ASSETS.items()}


def read_result(folder: UPath) -> Any:
    """A folder of the Dagster IO manager of that time, as today's type."""
    return frame_files.read_result(folder, TYPES)


class DagsterRun:
    """One Dagster run's assets of a domain, in the IO manager's former layout."""

    def __init__(self, history: Path, domain: str, run_id: str) -> None:
        self.history, self.domain, self.sync_id = history, domain, run_id
        self._started_at: datetime | None = None

    def _folder(self, name: str) -> Path:
        return self.history / NAMES.get(name, name) / self.domain / self.sync_id

    @property
    def location(self) -> str:
        return str(self._folder("joiners"))

    @property
    def started_at(self) -> datetime | None:
        """When the run wrote its first asset (its stamps)."""
        if self._started_at is None:
            stamps = [
                json.loads((self._folder(name) / STAMP).read_text())
                for name in ASSETS.values()
                if (self._folder(name) / STAMP).exists()
            ]
            times = [datetime.fromisoformat(stamp["written_at"]) for stamp in stamps]
            self._started_at = min(times).astimezone(UTC) if times else None
        return self._started_at

    def record(self) -> dict[str, Any]:
        return {"sync_id": self.sync_id, "domain": self.domain, "run_id": self.sync_id}

    def folders(self) -> list[UPath]:
        """Where the run is stored: a folder per asset it wrote, those no longer read
        (``google_directory``, ``scim_staging``) included."""
        runs = (asset / self.domain / self.sync_id for asset in sorted(self.history.iterdir()))
        return [UPath(run) for run in runs if run.is_dir()]

    def has(self, name: str) -> bool:
        return name in NAMES and self._folder(name).exists()

    def rows(self, name: str) -> int:
        return frame_files.frame_rows(UPath(self._folder(name) / frame_files.FRAME))

    def read(self, name: str) -> Any:
        if not self.has(name):
            raise ResultError(f"the Dagster run {self.sync_id} stored no {name} of {self.domain}")
        return read_result(UPath(self._folder(name)))


def legacy_syncs(home: Path, domain: str) -> list[StoredSync]:
    """The domain's syncs stored under ``home`` before this layout."""
    found: list[StoredSync] = []
    history = home / "assets" / "history"
    runs = {
        run.name
        for asset in ASSETS
        if (history / asset / domain).is_dir()
        for run in (history / asset / domain).iterdir()
    }
    found += [DagsterRun(history, domain, run_id) for run_id in sorted(runs)]
    reports = home / "reports" / domain
    if reports.is_dir():
        found += [SyncFolder(UPath(folder)) for folder in sorted(reports.iterdir())]
    return found


def legacy_domains(home: Path) -> list[str]:
    history = home / "assets" / "history"
    domains = {
        folder.name
        for asset in ASSETS
        if (history / asset).is_dir()
        for folder in (history / asset).iterdir()
    }
    if (home / "reports").is_dir():
        domains |= {folder.name for folder in (home / "reports").iterdir()}
    return sorted(domains)
