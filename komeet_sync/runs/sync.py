"""One domain's sync, step by step (ARCHITECTURE.md, "Data flow"): read the source, read
Komeet's accounts, reconcile and store the plan, apply it, record the outcome.

``komeet-sync sync`` (``--dry-run`` included) runs the steps one after the other through
``sync``, and ``komeet-sync apply`` resumes a plan through ``resume``; the Dagster assets call
each step as an asset, and their IO manager stores what each returns in the same place,
under the same names (``store.results``). No step is written twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.komeet.accounts import read_accounts
from komeet_sync.komeet.apply import DEFAULT_CONCURRENCY, ApplyResult, Mode, NotApplied, apply_plan
from komeet_sync.komeet.client import KomeetClient
from komeet_sync.model.domain_config import DomainConfig, Quarantine, SourceKind
from komeet_sync.model.frames import Source
from komeet_sync.model.reports import ACCOUNTS, PLAN, RECONCILED, RESULTS, SNAPSHOT
from komeet_sync.model.snapshots import DirectorySnapshot, KomeetAccounts
from komeet_sync.progress import SILENT, Advance, Progress
from komeet_sync.runs import alerts
from komeet_sync.runs.failures import failure_recorded
from komeet_sync.runs.quarantine import after_application
from komeet_sync.runs.status import SyncResult
from komeet_sync.sources.google.reader import DirectoryReader, reader_for
from komeet_sync.sources.scim.changes import decided_by_whole_read
from komeet_sync.sources.scim.staging import read_staging
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport, PlanStatus, PlanStore, Scope
from komeet_sync.store.results import ResultStore
from komeet_sync.store.sync_folder import SyncFolder


def read_source(
    config: DomainConfig,
    engine: Engine,
    reader: DirectoryReader | None = None,
    progress: Advance | None = None,
) -> DirectorySnapshot:
    """The domain's own source, read whole: the Directory API for a Google domain (with
    ``reader``, else one made from the environment and the domain's stored consent), the
    SCIM staging tables for a SCIM domain. ``progress`` counts the users read."""
    if config.source is SourceKind.GOOGLE:
        reader = reader or reader_for(config, engine=engine)
        return reader.extract(config.domains, config.groups, progress)
    snapshot = read_staging(engine, config)
    if progress is not None:
        progress(len(snapshot.users), len(snapshot.users))
    return snapshot


def read_komeet(
    client: KomeetClient,
    config: DomainConfig,
    progress: Advance | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> KomeetAccounts:
    """The domain's accounts in Komeet, read whole from its SCIM API, ``concurrency`` pages
    at a time."""
    return read_accounts(client, config, progress, concurrency)


@dataclass(frozen=True)
class Approval:
    """An admin's approval of the plan a sync makes, if it is ``plan_id`` (read beforehand in
    ``plans show`` or the UI): ``plans approve`` given with the sync."""

    plan_id: str
    by: str


@dataclass(frozen=True)
class Planned:
    """What reconciliation decided, and the plan as stored (the sync's ``plan``)."""

    reconciliation: Reconciliation
    report: PlanReport

    @property
    def plan_id(self) -> str:
        return self.reconciliation.plan.plan_id


def plan(
    engine: Engine,
    config: DomainConfig,
    snapshot: DirectorySnapshot,
    komeet: KomeetAccounts,
    *,
    reports: SyncFolder | None,
    dry_run: bool = False,
    last_good_desired: int | None = None,
    approval: Approval | None = None,
) -> Planned:
    """Reconcile, and store the plan, held or not, naming the folder of its reports, so that
    it can be read, approved and applied by its id. The shrink guard compares with the last
    plan of the domain applied in full, unless ``last_good_desired`` is given. A dry run's
    plan is stored as such (``PlanStore.save``): approved, it is applied by the sync that
    makes it again."""
    plans = PlanStore(engine)
    if last_good_desired is None:
        last_good_desired = plans.last_good_desired(config.domain)
    result = reconcile(snapshot, komeet, config, last_good_desired=last_good_desired)
    summary = result.summary() | {"snapshot": snapshot.details()}
    stored = plans.save(
        result.plan,
        source=snapshot.source.value,
        snapshot_at=snapshot.started_at,
        desired=result.stats["desired"],
        reports=reports.location if reports is not None else None,
        dry_run=dry_run,
        active_managed=result.stats["active_managed_accounts"],
    )
    approved = approval is not None and approval.plan_id.strip() == stored.plan_id
    if approved and stored.waiting_for_approval:
        assert approval is not None
        stored = plans.approve(stored.plan_id, approval.by)
    if not dry_run:
        alerts.plan_held(engine, stored)
    return Planned(result, PlanReport(result.plan.actions, summary, stored))


def write_reports(folder: SyncFolder, planned: Planned) -> None:
    """Every report and the plan into a sync's folder (the audit's ``--out`` too)."""
    for report in RECONCILED:
        folder.write(report.name, planned.reconciliation.reports[report.name])
    folder.write(PLAN.name, planned.report)


# Why nothing was sent (``NotApplied.kind``), as the status view says it; a guard's hold,
# whether an approval lifts it ("held") or the cause must be fixed ("stopped"), is held.
STOPPED_RESULTS = {
    "held": SyncResult.HELD,
    "stopped": SyncResult.HELD,
    "disabled": SyncResult.DISABLED,
    "quarantined": SyncResult.QUARANTINED,
    "superseded": SyncResult.SUPERSEDED,
    "dry_run": SyncResult.DRY_RUN,
}


@dataclass(frozen=True)
class Applied:
    """An apply that went as far as the guards let it: what was sent, or why nothing was."""

    result: ApplyResult | None  # None: nothing was sent, ``stopped`` says why
    stopped: NotApplied | None
    report: ResultsReport  # the sync's ``results``
    unrecorded: str = ""  # why the results could not be written beside the reports
    # The domain's quarantine, when this apply found it quarantined or quarantined it.
    quarantine: Quarantine | None = None

    def quarantine_dict(self) -> dict[str, object] | None:
        return self.quarantine.as_dict() if self.quarantine else None

    @property
    def held(self) -> bool:
        """A guard held the plan (an approval may lift it, or the cause must be fixed)."""
        return self.stopped is not None and self.stopped.held

    def outcome(self, plan: PlanStatus) -> SyncResult:
        """What came of it, in the words of ``komeet-sync status``: held, disabled or
        quarantined when nothing was sent; else where its plan (``plan``, read after the
        apply) stands now (applied, with failures, unfinished), or nothing to do."""
        if self.stopped is not None:
            return STOPPED_RESULTS.get(self.stopped.kind, SyncResult.INCOMPLETE)
        if self.quarantine is not None:
            return SyncResult.QUARANTINED
        if plan.plan.size == 0:
            return SyncResult.NOTHING_TO_DO
        return SyncResult(plan.state.value)


def apply(
    engine: Engine,
    plan_id: str,
    client: KomeetClient,
    *,
    trigger: str,
    again: bool = True,
    fresh_read: bool = False,
    read_at: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    mode: Mode | None = None,
    progress: Advance | None = None,
) -> Applied:
    """Apply a stored plan unless a guard forbids it (ARCHITECTURE.md, "Applying a plan"),
    then judge whether its failures quarantine the domain (``runs.quarantine``).
    ``again``: a sync that finds a plan applied before applies its actions again (they are
    still needed); ``apply PLAN_ID`` only resumes. ``fresh_read``: the caller made the plan
    just now from its own read of Komeet, begun at ``read_at``
    (``komeet.apply.searched_first``)."""
    try:
        result = apply_plan(
            engine,
            plan_id,
            client,
            concurrency=concurrency,
            mode=mode,
            trigger=trigger,
            again=again,
            fresh_read=fresh_read,
            read_at=read_at,
            progress=progress,
        )
    except NotApplied as stopped:
        nothing = pd.DataFrame(columns=list(RESULTS.columns))
        report = ResultsReport(plan_id, None, nothing, {}, str(stopped))
        return Applied(None, stopped, report, quarantine=stopped.quarantine)
    stored = PlanStore(engine).get(plan_id)
    whole = stored.scope is Scope.DOMAIN and stored.snapshot_at is not None
    if whole and stored.source == Source.SCIM.value and not result.interrupted:
        assert stored.snapshot_at is not None
        decided_by_whole_read(engine, stored.domain, stored.snapshot_at)
    quarantined = None
    if result.application_id is not None:  # else nothing was sent: it was judged before
        quarantined = after_application(engine, result, whole=stored.scope is Scope.DOMAIN)
    return Applied(result, None, result.report(), quarantine=quarantined)


@dataclass(frozen=True)
class SyncRun:
    """A sync as far as it went: where it is stored, what it read, its plan, and what
    was applied (None for a dry run)."""

    folder: SyncFolder
    snapshot: DirectorySnapshot
    planned: Planned
    applied: Applied | None

    def summary(self) -> dict[str, object]:
        summary = self.planned.report.summary | {
            "sync_id": self.folder.sync_id,
            "out": self.folder.location,
        }
        if self.applied is None:
            return summary
        result, stopped = self.applied.result, self.applied.stopped
        return summary | {
            "applied": result.summary() if result else None,
            "stopped": {"kind": stopped.kind, "detail": str(stopped)} if stopped else None,
            "quarantine": self.applied.quarantine_dict(),
        }


@failure_recorded(lambda call: call["config"].domain)
def sync(
    config: DomainConfig,
    engine: Engine,
    store: ResultStore,
    *,
    read_directory: Callable[[Advance], DirectorySnapshot],
    client: KomeetClient | None = None,
    komeet: KomeetAccounts | None = None,
    dry_run: bool = False,
    trigger: str = "komeet-sync sync",
    last_good_desired: int | None = None,
    also_to: SyncFolder | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    mode: Mode | None = None,
    progress: Progress = SILENT,
    before_apply: Callable[[SyncRun], None] | None = None,
) -> SyncRun:
    """A whole sync of one domain, stored in ``store``: read the directory (``read_directory``
    counts the users it reads), read Komeet's accounts (or take ``komeet``, an export, for a
    dry run), reconcile, write the reports, store the plan and apply it, unless a guard holds
    it or this is a dry run. Each step is a stage of ``progress``; ``before_apply`` is told
    the sync so far before anything is sent (the plan id a resume needs).

    Komeet's discovery is read first, so that a wrong URL or token fails before a long
    extraction; its accounts are read after the directory, as late as possible. Nothing is
    stored when a read fails. ``also_to``: a second folder for the reports (``--out``).
    ``concurrency``: requests to Komeet in flight at once, reading its accounts and applying.
    """
    if client is not None:
        client.capabilities()
    started_at = datetime.now(UTC)
    source = "Google Workspace" if config.source is SourceKind.GOOGLE else "SCIM staging"
    with progress.stage(f"Reading {config.domain} ({source})", "users") as advance:
        snapshot = read_directory(advance)
    komeet_read = komeet is None  # the plan comes from this sync's own read of Komeet
    if komeet is None:
        if client is None:
            raise ValueError("give the Komeet client, or Komeet's accounts for a dry run")
        with progress.stage("Reading Komeet's accounts", "accounts") as advance:
            komeet = read_komeet(client, config, advance, concurrency)
    folder = store.start(config.domain, trigger, started_at=started_at, dry_run=dry_run)
    with progress.stage("Reconciling", "accounts") as advance:
        planned = plan(
            engine,
            config,
            snapshot,
            komeet,
            reports=folder,
            dry_run=dry_run,
            last_good_desired=last_good_desired,
        )
        advance(len(komeet.accounts), len(komeet.accounts))
    destinations = [d for d in (folder, also_to) if d is not None]
    with progress.stage("Writing the reports", "files") as advance:
        total = 2 + (len(RECONCILED) + 1) * len(destinations)
        folder.write(SNAPSHOT, snapshot)
        folder.write(ACCOUNTS, komeet)
        advance(2, total)
        for done, destination in enumerate(destinations, 1):
            write_reports(destination, planned)
            advance(2 + (len(RECONCILED) + 1) * done, total)
    if dry_run:
        return SyncRun(folder, snapshot, planned, None)
    assert client is not None
    if before_apply is not None:
        before_apply(SyncRun(folder, snapshot, planned, None))
    with progress.stage(f"Applying {planned.plan_id}", "actions") as advance:
        applied = apply(
            engine,
            planned.plan_id,
            client,
            trigger=trigger,
            fresh_read=komeet_read,
            read_at=komeet.started_at,
            concurrency=concurrency,
            mode=mode,
            progress=advance,
        )
    if applied.result is not None:
        for destination in destinations:
            destination.write(RESULTS.name, applied.report)
    return SyncRun(folder, snapshot, planned, applied)


@failure_recorded(lambda call: PlanStore(call["engine"]).get(call["plan_id"]).domain)
def resume(
    engine: Engine,
    store: ResultStore,
    plan_id: str,
    client: KomeetClient,
    *,
    trigger: str = "komeet-sync apply",
    concurrency: int = DEFAULT_CONCURRENCY,
    mode: Mode | None = None,
    progress: Advance | None = None,
) -> Applied:
    """Apply a stored plan, or resume its interrupted application, and record the results
    beside the plan's reports (``unrecorded`` says why when they could not be)."""
    applied = apply(
        engine,
        plan_id,
        client,
        trigger=trigger,
        again=False,
        concurrency=concurrency,
        mode=mode,
        progress=progress,
    )
    stored = PlanStore(engine).get(plan_id)
    if applied.result is None or applied.result.application_id is None or not stored.reports:
        return applied
    try:
        store.at(stored.reports).write(RESULTS.name, applied.report)
    except OSError as exc:
        return dataclasses.replace(applied, unrecorded=f"{stored.reports}: {exc.strerror or exc}")
    return applied
