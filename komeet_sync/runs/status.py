"""Where every configured domain stands (ARCHITECTURE.md, "Operations": every sync, held
plan, failure and push visible in one ``status`` view).

A domain's last sync is its newest folder in the result store, whoever ran it (``sync.json``:
``komeet-sync sync``, or a Dagster run and its id); its plan and what was sent of it are in
the database (``plans``, ``applications``, ``ledger``; where the plan stands is
``PlanStatus``, the one rule ``plans list`` and ``plans show`` follow too), as are the
domain's last failure (``sync_failures``: a failed Dagster run's, or a CLI sync's that
raised), its quarantine and, for a SCIM domain, its IdP's last accepted write (the request
log). The
database is read with one query per table however many domains; the result store with one
listing and two or three small files per domain, read a few domains at a time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from komeet_sync.model.domain_config import DomainConfig, Quarantine, SourceKind
from komeet_sync.model.holds import Hold
from komeet_sync.model.reports import PLAN
from komeet_sync.sources.scim.pushes import last_pushes
from komeet_sync.store.domains import DomainStore
from komeet_sync.store.failures import latest_failures
from komeet_sync.store.plans import PlanState, PlanStatus, PlanStore
from komeet_sync.store.results import ResultStore
from komeet_sync.store.sync_folder import ResultError, StoredSync, SyncFolder

READERS = 8  # domains whose result-store folder is read at once (an object store's latency)
# The states of a plan that was never sent and may yet be: its actions are all pending.
UNSENT = (PlanState.HELD, PlanState.APPROVED, PlanState.NEVER_APPLIED)
# The states of a plan that a quarantine keeps from being sent (or resumed).
KEPT_BY_QUARANTINE = (PlanState.APPROVED, PlanState.NEVER_APPLIED, PlanState.UNFINISHED)


class SyncResult(StrEnum):
    """What came of a domain's last sync: where its plan stands (``PlanState``, the rule of
    ``plans list``), or what comes before a plan or over it."""

    NEVER_SYNCED = "never_synced"
    FAILED = "failed"  # the sync raised, or an apply of its plan did (the failure is recorded)
    INCOMPLETE = "incomplete"  # running, or stopped before its plan was stored
    DRY_RUN = PlanState.DRY_RUN.value  # the last sync was a dry run: it sent nothing by design
    DISABLED = "disabled"  # the domain is disabled: its plan, which may be applied, was not sent
    QUARANTINED = "quarantined"  # the domain is quarantined: its plan was not sent
    NOTHING_TO_DO = "nothing_to_do"  # in step: the plan has no action
    HELD = PlanState.HELD.value
    APPROVED = PlanState.APPROVED.value
    SUPERSEDED = PlanState.SUPERSEDED.value
    UNFINISHED = PlanState.UNFINISHED.value
    NEVER_APPLIED = PlanState.NEVER_APPLIED.value
    APPLIED = PlanState.APPLIED.value
    APPLIED_WITH_FAILURES = PlanState.APPLIED_WITH_FAILURES.value

    @property
    def failed(self) -> bool:
        """The sync, or the apply of its plan, failed, or Komeet refused actions of it."""
        return self in (SyncResult.FAILED, SyncResult.APPLIED_WITH_FAILURES)

    @property
    def waits_for_someone(self) -> bool:
        """A plan that stays as it is until an operator approves, applies or resumes it."""
        return self in (
            SyncResult.HELD,
            SyncResult.APPROVED,
            SyncResult.UNFINISHED,
            SyncResult.NEVER_APPLIED,
            SyncResult.QUARANTINED,
        )


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
    where its plan stands (``PlanStatus``, as ``plans list`` says it) and its actions
    (applied, failed, pending: left to send), the command an operator runs next, its last
    failure, its quarantine and, for a SCIM domain, its IdP's last push."""

    domain: str
    source: SourceKind
    enabled: bool
    last_sync: LastSync | None
    result: SyncResult
    plan_id: str | None
    plan: PlanStatus | None  # the last sync's plan, as stored
    actions: int
    applied: int
    failed: int
    pending: int
    approve: str | None  # the command that approves a plan held for approval
    next_step: str | None  # the command an operator runs next, when one is needed
    last_failure: Failure | None
    last_push: datetime | None  # SCIM domains: the IdP's last accepted write
    # SCIM domains: until when the secret replaced by the last rotation still works.
    former_secret_until: datetime | None = None
    quarantine: Quarantine | None = None  # nothing is written to Komeet until it is released

    @property
    def holds(self) -> tuple[Hold, ...]:
        """What holds the plan, when the result is that it is held."""
        held = self.result is SyncResult.HELD and self.plan is not None
        return self.plan.plan.holds if held and self.plan is not None else ()

    @property
    def result_text(self) -> str:
        """The result in a few words: a plan's state in the words of ``plans list``."""
        if self.plan is not None and self.result.value == self.plan.state.value:
            return str(self.plan)
        return self.result.value.replace("_", " ")

    def as_dict(self) -> dict[str, Any]:
        """``komeet-sync status --json``: one object per domain."""
        return {
            "domain": self.domain,
            "source": self.source.value,
            "enabled": self.enabled,
            "last_sync": self.last_sync.as_dict() if self.last_sync else None,
            "result": self.result.value,
            "result_text": self.result_text,
            "plan_id": self.plan_id,
            "plan_state": self.plan.state.value if self.plan else None,
            "plan_state_text": str(self.plan) if self.plan else None,
            "actions": self.actions,
            "applied": self.applied,
            "failed": self.failed,
            "pending": self.pending,
            "holds": [hold.as_dict() for hold in self.holds],
            "approve": self.approve,
            "next_step": self.next_step,
            "last_failure": self.last_failure.as_dict() if self.last_failure else None,
            "last_push": self.last_push.isoformat() if self.last_push else None,
            "former_secret_until": (
                self.former_secret_until.isoformat() if self.former_secret_until else None
            ),
            "quarantine": self.quarantine.as_dict() if self.quarantine else None,
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
    plans = PlanStore(engine).statuses(
        p.plan_id for p in planned.values() if p is not None and p.plan_id
    )
    failures = _failures(latest_failures(engine))
    pushes = last_pushes(engine)
    overlaps = DomainStore(engine).secret_overlaps()
    statuses = []
    for config in configs:
        last = planned[config.domain]
        statuses.append(
            _status(
                config,
                last,
                plans.get(last.plan_id) if last is not None and last.plan_id else None,
                failures.get(config.domain),
                pushes.get(config.domain),
            )
        )
    return [replace(status, former_secret_until=overlaps.get(status.domain)) for status in statuses]


def _status(
    config: DomainConfig,
    last: _Planned | None,
    plan: PlanStatus | None,
    failure: Failure | None,
    last_push: datetime | None,
) -> DomainStatus:
    result = _result(config, last, plan, failure)
    application = plan.last if plan is not None else None
    size = plan.plan.size if plan is not None else (last.size if last is not None else 0)
    if application is not None:
        applied, failed, pending = application.applied, application.failed, application.left
    else:
        applied = failed = 0
        unsent = plan is not None and plan.state in UNSENT and result is not SyncResult.DRY_RUN
        pending = size if unsent else 0
    plan_id = last.plan_id if last is not None else None
    approve = (
        f"komeet-sync plans approve {plan_id} --by NAME"
        if result is SyncResult.HELD and plan is not None and plan.plan.waiting_for_approval
        else None
    )
    return DomainStatus(
        domain=config.domain,
        source=config.source,
        enabled=config.enabled,
        last_sync=last.sync if last is not None else None,
        result=result,
        plan_id=plan_id,
        plan=plan,
        actions=size,
        applied=applied,
        failed=failed,
        pending=pending,
        approve=approve,
        next_step=approve or _next_step(config.domain, result, plan_id, plan),
        last_failure=failure,
        last_push=last_push if config.source is SourceKind.SCIM else None,
        quarantine=config.quarantine,
    )


def _result(
    config: DomainConfig,
    last: _Planned | None,
    plan: PlanStatus | None,
    failure: Failure | None,
) -> SyncResult:
    """What came of the last sync: its plan's state (``PlanStatus``), except where the sync
    says more.

    A plan held and not applied is held whatever came after it (a Dagster run that held its
    plan ends tagged ``komeet/held``, not failed; one from before that failed by its
    blocking check, and that failure was the hold). Otherwise a
    failure recorded since the sync began, and since its plan was last applied, is the
    sync's (or a later one's that stored nothing: a read that failed; or an apply's). A
    sync that stored no plan is incomplete; a dry run sent nothing by design, whatever its
    plan's state. A plan that may be applied and never was is the disabled domain's, or
    nothing to do when it has no action (as is one applied with none); one with actions to
    send, or to resume, is the quarantined domain's."""
    if last is None:
        return SyncResult.FAILED if failure is not None else SyncResult.NEVER_SYNCED
    state = plan.state if plan is not None else None
    if state is PlanState.HELD and not last.dry_run:
        return SyncResult.HELD
    started = last.sync.started_at
    if plan is not None and plan.last is not None:  # what was sent since is later still
        sent = plan.last.finished_at or plan.last.started_at
        started = max(started, sent) if started is not None else sent
    if failure is not None and (started is None or failure.at >= started):
        return SyncResult.FAILED
    if last.plan_id is None:
        return SyncResult.INCOMPLETE
    if last.dry_run:
        return SyncResult.DRY_RUN
    if plan is None:  # a sync from before plans were stored with their state
        return (
            SyncResult.NOTHING_TO_DO if last.size == 0 and not last.held else SyncResult.INCOMPLETE
        )
    if state is PlanState.NEVER_APPLIED and not config.enabled:
        return SyncResult.DISABLED
    if state in (PlanState.NEVER_APPLIED, PlanState.APPLIED) and plan.plan.size == 0:
        return SyncResult.NOTHING_TO_DO
    if config.quarantine is not None and state in KEPT_BY_QUARANTINE:
        return SyncResult.QUARANTINED
    return SyncResult(plan.state.value)


def _next_step(
    domain: str, result: SyncResult, plan_id: str | None, plan: PlanStatus | None
) -> str | None:
    """The command an operator runs next (the approval of a held plan is ``approve``)."""
    if result in (SyncResult.APPROVED, SyncResult.UNFINISHED, SyncResult.NEVER_APPLIED):
        return f"komeet-sync apply {plan_id}"
    if result is SyncResult.DISABLED:
        return f"komeet-sync domains enable {domain}"
    if result is SyncResult.QUARANTINED:
        return f"komeet-sync domains release {domain}"
    if result is SyncResult.HELD:
        return f"komeet-sync plans show {plan_id}"
    if result is SyncResult.APPLIED_WITH_FAILURES:
        return f"komeet-sync plans show {plan_id} --failed"
    if result is SyncResult.SUPERSEDED and plan is not None:
        return f"komeet-sync plans show {plan.plan.superseded_by}"
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
