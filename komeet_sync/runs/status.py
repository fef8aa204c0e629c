"""Where every configured domain stands (ARCHITECTURE.md, "Operations": every sync, held
plan, failure and push visible in one ``status`` view).

A domain's last sync is its newest folder in the result store, whoever ran it (``sync.json``:
``komeet-sync sync``, or a Dagster run and its id); its plan and what was sent of it are in
the database (``plans``, ``applications``, ``ledger``), as are the domain's last failure
(``sync_failures``: a failed Dagster run's, or a CLI sync's that raised) and, for a SCIM
domain, its IdP's last accepted write (the request log). The database is read with one query
per table however many domains; the result store with one listing and two or three small
files per domain, read a few domains at a time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.model.domain_config import DomainConfig, SourceKind
from komeet_sync.model.holds import Hold
from komeet_sync.model.reports import PLAN
from komeet_sync.sources.scim.pushes import last_pushes
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.failures import latest_failures
from komeet_sync.store.ledger import LastApplication, Ledger, Status
from komeet_sync.store.plans import PlanStore, StoredPlan
from komeet_sync.store.results import ResultStore
from komeet_sync.store.sync_folder import ResultError, StoredSync, SyncFolder

READERS = 8  # domains whose result-store folder is read at once (an object store's latency)


class SyncResult(StrEnum):
    """What came of a domain's last sync."""

    NEVER_SYNCED = "never_synced"
    FAILED = "failed"  # the sync raised (its failure is recorded), or Komeet refused actions
    INCOMPLETE = "incomplete"  # running, or stopped before its plan (nothing was sent)
    DRY_RUN = "dry_run"  # planned, and sent nothing by design
    HELD = "held"  # a guard holds its plan: an approval, or a fix, is needed
    APPROVED = "approved"  # its held plan is approved and waits to be applied
    DISABLED = "disabled"  # the domain is disabled: its plan was not sent
    UNFINISHED = "unfinished"  # applying, or interrupted: actions are left to send
    NOTHING_TO_DO = "nothing_to_do"  # in step: the plan had no action
    APPLIED = "applied"  # every action of the plan was applied

    @property
    def text(self) -> str:
        return self.value.replace("_", " ")

    @property
    def waits_for_someone(self) -> bool:
        """A plan that stays as it is until an operator approves, applies or resumes it."""
        return self in (SyncResult.HELD, SyncResult.APPROVED, SyncResult.UNFINISHED)


@dataclass(frozen=True)
class LastSync:
    """A domain's latest sync as the result store keeps it."""

    sync_id: str
    started_at: datetime | None
    trigger: str  # "komeet-sync sync", "komeet-sync sync --dry-run", "dagster run ..."
    run_id: str | None  # the Dagster run's; None for the CLI
    location: str

    @property
    def by(self) -> str:
        """Who ran it: ``dagster`` (a run of the orchestrator) or ``cli``."""
        return "dagster" if self.run_id else "cli"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sync_id": self.sync_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "by": self.by,
            "trigger": self.trigger,
            "run_id": self.run_id,
            "location": self.location,
        }


@dataclass(frozen=True)
class Failure:
    """A domain's latest recorded failure."""

    at: datetime
    run_id: str
    job: str  # the Dagster job, or the CLI command that failed
    message: str  # its first line

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "job": self.job,
            "message": self.message,
        }


@dataclass(frozen=True)
class DomainStatus:
    """One domain in the status view: its configuration, its last sync and what came of it,
    its plan's actions (applied, failed, pending: planned and not sent yet), what an
    operator should do next, its last failure and, for a SCIM domain, its IdP's last push."""

    domain: str
    source: SourceKind
    enabled: bool
    last_sync: LastSync | None
    result: SyncResult
    plan_id: str | None
    actions: int
    applied: int
    failed: int
    pending: int
    holds: tuple[Hold, ...]
    approve: str | None  # the command that approves a plan held for approval
    next_step: str | None  # the command an operator runs next, when one is needed
    last_failure: Failure | None
    last_push: datetime | None  # SCIM domains: the IdP's last accepted write

    def as_dict(self) -> dict[str, Any]:
        """``komeet-sync status --json``: one object per domain."""
        return {
            "domain": self.domain,
            "source": self.source.value,
            "enabled": self.enabled,
            "last_sync": self.last_sync.as_dict() if self.last_sync else None,
            "result": self.result.value,
            "plan_id": self.plan_id,
            "actions": self.actions,
            "applied": self.applied,
            "failed": self.failed,
            "pending": self.pending,
            "holds": [hold.as_dict() for hold in self.holds],
            "approve": self.approve,
            "next_step": self.next_step,
            "last_failure": self.last_failure.as_dict() if self.last_failure else None,
            "last_push": self.last_push.isoformat() if self.last_push else None,
        }


@dataclass(frozen=True)
class _Planned:
    """What a domain's last sync stored of its reconciliation."""

    sync: LastSync
    plan_id: str | None  # None: the sync has not planned (yet)
    held: bool
    size: int
    dry_run: bool


def domain_statuses(engine: Engine, store: ResultStore) -> list[DomainStatus]:
    """Every configured domain's status, by domain name. Raises ResultError when the result
    store is not a folder (every domain would look never synced)."""
    configs = DomainStore(engine).list()
    if not configs:
        return []
    if store.root.exists() and not store.root.is_dir():
        raise ResultError(
            f"the result store {store.root} is a file: KOMEET_SYNC_RESULTS (else "
            "KOMEET_SYNC_HOME) must name a folder or a bucket"
        )
    with ThreadPoolExecutor(READERS) as pool:
        planned = dict(
            zip(
                (config.domain for config in configs),
                pool.map(lambda config: _last_planned(store, config.domain), configs),
                strict=True,
            )
        )
    plan_ids = [p.plan_id for p in planned.values() if p is not None and p.plan_id]
    plans = PlanStore(engine).get_many(plan_ids)
    applications = Ledger(engine).last_applications(plan_ids)
    failures = _failures(latest_failures(engine))
    pushes = last_pushes(engine)
    statuses = []
    for config in configs:
        last = planned[config.domain]
        plan = plans.get(last.plan_id) if last is not None and last.plan_id else None
        application = applications.get(plan.plan_id) if plan is not None else None
        statuses.append(
            _status(
                config,
                last,
                plan,
                application,
                failures.get(config.domain),
                pushes.get(config.domain),
            )
        )
    return statuses


def _status(
    config: DomainConfig,
    last: _Planned | None,
    plan: StoredPlan | None,
    application: LastApplication | None,
    failure: Failure | None,
    last_push: datetime | None,
) -> DomainStatus:
    sync = last.sync if last is not None else None
    if (
        application is not None
        and sync is not None
        and sync.started_at is not None
        and application.started_at < sync.started_at
    ):
        application = None  # an earlier sync's application of the same plan
    result = _result(config, last, plan, application, failure)
    size = plan.size if plan is not None else (last.size if last is not None else 0)
    if application is not None:
        applied, failed = application.applied, application.failed
        pending = application.counts.get(Status.PENDING.value, 0) + application.counts.get(
            Status.SENDING.value, 0
        )
    else:
        applied = failed = 0
        pending = size if plan is not None and result is not SyncResult.DRY_RUN else 0
    plan_id = last.plan_id if last is not None else None
    approve = (
        f"komeet-sync plans approve {plan_id} --by NAME"
        if result is SyncResult.HELD and plan is not None and plan.waiting_for_approval
        else None
    )
    return DomainStatus(
        domain=config.domain,
        source=config.source,
        enabled=config.enabled,
        last_sync=sync,
        result=result,
        plan_id=plan_id,
        actions=size,
        applied=applied,
        failed=failed,
        pending=pending,
        holds=plan.holds if plan is not None and result is SyncResult.HELD else (),
        approve=approve,
        next_step=approve or _next_step(config.domain, result, plan_id, failed),
        last_failure=failure,
        last_push=last_push if config.source is SourceKind.SCIM else None,
    )


def _result(
    config: DomainConfig,
    last: _Planned | None,
    plan: StoredPlan | None,
    application: LastApplication | None,
    failure: Failure | None,
) -> SyncResult:
    """What came of the last sync. A plan held and not applied is held whatever came after
    it: a Dagster run whose plan a guard holds fails by its blocking check, and that failure
    is the hold. Otherwise a failure recorded since the sync began, and since its plan was
    last applied, is the sync's (or a later one's that stored nothing: a read that failed; or
    an apply's)."""
    if last is None:
        return SyncResult.FAILED if failure is not None else SyncResult.NEVER_SYNCED
    started = last.sync.started_at
    if application is not None:  # what was sent since the sync began is later still
        started = application.finished_at or application.started_at
    if application is None and plan is not None and not plan.may_apply and not last.dry_run:
        return SyncResult.HELD
    if failure is not None and (started is None or failure.at >= started):
        return SyncResult.FAILED
    if last.plan_id is None:
        return SyncResult.INCOMPLETE
    if last.dry_run:
        return SyncResult.DRY_RUN
    if application is not None:
        if application.failed:
            return SyncResult.FAILED
        if application.finished_at is None:
            return SyncResult.UNFINISHED
        return SyncResult.APPLIED if application.applied else SyncResult.NOTHING_TO_DO
    if plan is not None and plan.held:
        return SyncResult.APPROVED
    if not config.enabled:
        return SyncResult.DISABLED
    if last.size == 0 and not last.held:
        return SyncResult.NOTHING_TO_DO
    return SyncResult.INCOMPLETE


def _next_step(domain: str, result: SyncResult, plan_id: str | None, failed: int) -> str | None:
    """The command an operator runs next (the approval of a held plan is ``approve``)."""
    if result in (SyncResult.APPROVED, SyncResult.UNFINISHED):
        return f"komeet-sync apply {plan_id}"
    if result is SyncResult.DISABLED:
        return f"komeet-sync domains enable {domain}"
    if result is SyncResult.HELD or (result is SyncResult.FAILED and failed):
        return f"komeet-sync plans show {plan_id}"
    if result in (
        SyncResult.FAILED,  # once its cause is fixed
        SyncResult.NEVER_SYNCED,
        SyncResult.INCOMPLETE,
        SyncResult.DRY_RUN,
    ):
        return f"komeet-sync sync {domain}"
    return None


def _last_planned(store: ResultStore, domain: str) -> _Planned | None:
    """What the domain's latest sync stored: who ran it and when, and its plan."""
    sync = store.last_sync(domain)
    if sync is None:
        return None
    record = sync.record()
    last = LastSync(
        sync.sync_id,
        sync.started_at,
        str(record.get("trigger") or ""),
        record.get("run_id"),
        sync.location,
    )
    summary, dry_run = _summary(sync)
    if summary is None:
        return _Planned(last, None, False, 0, False)
    return _Planned(
        last,
        summary.get("plan_id"),
        bool(summary.get("held")),
        sum(int(count) for count in (summary.get("actions") or {}).values()),
        dry_run,
    )


def _summary(sync: StoredSync) -> tuple[dict[str, Any] | None, bool]:
    """The sync's reconciliation summary, and whether it was a dry run: read from its
    small files in today's layout, from its plan in an older one."""
    if isinstance(sync, SyncFolder):
        return sync.summary(), sync.is_dry_run()
    if not sync.has(PLAN.name):
        return None, False
    report = sync.read(PLAN.name)
    return report.summary, report.stored is None


def _failures(frame: pd.DataFrame) -> dict[str, Failure]:
    return {
        str(row["domain"]): Failure(
            row["at"], str(row["run_id"]), str(row["job"]), _first_line(str(row["message"]))
        )
        for row in frame.to_dict("records")
    }


def _first_line(message: str) -> str:
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""
