"""The offline audit: reconcile exported directory data against exported Komeet accounts
and write the reports, without calling Google, the IdP or Komeet. Its ``--out`` holds the
files a sync stores (``store.results``), but for what a sync reads and applies."""

from __future__ import annotations

from pathlib import Path

from upath import UPath

from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.komeet.accounts import accounts_from_resources
from komeet_sync.model.collector import collector_paused
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.reports import RECONCILED
from komeet_sync.model.snapshots import KomeetAccounts
from komeet_sync.progress import SILENT, Progress
from komeet_sync.runs.sync import Planned, write_reports
from komeet_sync.sources.exports import (
    SCIM_RESOURCES,
    DirectoryExport,
    load_json,
    read_export,
    unpack,
)
from komeet_sync.store.plans import PlanReport
from komeet_sync.store.sync_folder import SyncFolder


def read_komeet_export(path: Path) -> KomeetAccounts:
    """Komeet's accounts from an export of its SCIM API (``GET /Users``)."""
    kind = SCIM_RESOURCES.format(kind="User")
    return accounts_from_resources(unpack(load_json(path, kind), path, "Resources", kind))


def run_audit(
    config: DomainConfig,
    files: DirectoryExport,
    komeet_file: Path,
    out: Path,
    *,
    last_good_desired: int | None = None,
    progress: Progress = SILENT,
) -> Reconciliation:
    """Read the files, reconcile, and write every report to ``out`` (CSV and Parquet) with
    ``summary.json``, each step a stage of ``progress``. Raises ExportFormatError naming the
    file when one cannot be read."""
    with collector_paused():  # millions of objects made, no cycle (model.collector)
        with progress.stage(f"Reading the export of {config.domain}", "users") as advance:
            snapshot = read_export(config, files)
            advance(len(snapshot.users), len(snapshot.users))
        with progress.stage("Reading Komeet's export", "accounts") as advance:
            komeet = read_komeet_export(komeet_file)
            advance(len(komeet.accounts), len(komeet.accounts))
    with progress.stage("Reconciling", "accounts") as advance:
        result = reconcile(snapshot, komeet, config, last_good_desired=last_good_desired)
        advance(len(komeet.accounts), len(komeet.accounts))
    planned = Planned(result, PlanReport(result.plan.actions, result.summary()))
    with progress.stage("Writing the reports", "reports") as advance:
        write_reports(SyncFolder(UPath(out)), planned)
        advance(len(RECONCILED) + 1, len(RECONCILED) + 1)
    return result
