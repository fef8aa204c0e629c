"""Retention (README, "Retention"): what komeet-sync keeps only ``KOMEET_SYNC_RETENTION_DAYS``
days (default 90), and the prune that deletes the rest: the one step ``komeet-sync prune``
and the Dagster job ``retention`` both run.

Deleted once older than the cutoff (``days`` before now):

- the SCIM request log (``scim_requests``), but each SCIM domain's last push, which
  ``status`` shows;
- the change log (``scim_changes``), but the changes a consumer (the incremental worker)
  has not processed yet: they are still to be decided, however old;
- the results of past syncs, each a folder of the result store (and those stored before its
  layout), but each domain's latest sync and its latest sync holding each result (what the
  next sync's steps, ``status``, ``explain --last`` and the notebooks read), and the sync of
  each plan that may still be applied (an apply writes its results beside its reports).

Never deleted: plans with their actions and approvals, the ledger and the recorded sync
failures, the audit trail. An analyst chasing a missing account still finds every decision
and its outcome (``plans show``, ``Loader.ledger``); the reports saying why, person by
person, cover the retention period, and a plan whose reports were deleted says so
(``reports_missing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from upath import UPath

from komeet_sync import settings
from komeet_sync.progress import SILENT, Progress
from komeet_sync.sources.scim.pushes import last_push_rows
from komeet_sync.store.plans import PlanStore, StoredPlan
from komeet_sync.store.results import ResultStore
from komeet_sync.store.retention import (
    BATCH,
    CHANGE_LOG,
    REQUEST_LOG,
    Amount,
    ByDomain,
    RowLog,
    added,
    delete_sync,
    measure,
)
from komeet_sync.store.sync_folder import StoredSync, SyncFolder


class Kind(StrEnum):
    """What retention deletes."""

    REQUEST_LOG = "request_log"
    CHANGE_LOG = "change_log"
    RESULTS = "results"

    @property
    def what(self) -> str:
        return {
            Kind.REQUEST_LOG: "SCIM request log",
            Kind.CHANGE_LOG: "SCIM change log",
            Kind.RESULTS: "results of past syncs",
        }[self]

    @property
    def unit(self) -> str:
        return "syncs" if self is Kind.RESULTS else "rows"


ROWS: dict[Kind, RowLog] = {Kind.REQUEST_LOG: REQUEST_LOG, Kind.CHANGE_LOG: CHANGE_LOG}


@dataclass
class Tally:
    """What a prune deletes, or would, of each kind, by domain."""

    kinds: dict[Kind, ByDomain] = field(default_factory=lambda: {kind: {} for kind in Kind})

    def add(self, kind: Kind, counts: ByDomain) -> None:
        self.kinds[kind] = added(self.kinds[kind], counts)

    def total(self, kind: Kind) -> Amount:
        return sum(self.kinds[kind].values(), Amount())

    @property
    def empty(self) -> bool:
        return not any(self.total(kind).count for kind in Kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            kind.value: {
                "total": vars(self.total(kind)),
                "by_domain": {domain: vars(amount) for domain, amount in counts.items()},
            }
            for kind, counts in self.kinds.items()
        }


def cutoff(days: int, now: datetime | None = None) -> datetime:
    """The moment before which what retention deletes goes."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


class Prune:
    """One prune of what is older than ``days`` (default: ``KOMEET_SYNC_RETENTION_DAYS``)
    before ``now``, ``batch`` rows a transaction. ``survey`` counts what it deletes; ``run``
    deletes it, counting in ``deleted`` as it goes, so that an interrupted prune says what it
    deleted."""

    def __init__(
        self,
        engine: Engine,
        store: ResultStore,
        *,
        days: int | None = None,
        now: datetime | None = None,
        batch: int = BATCH,
    ) -> None:
        self.engine, self.store, self.batch = engine, store, batch
        self.days = days if days is not None else settings.retention_days()
        self.cutoff = cutoff(self.days, now)
        self.deleted = Tally()
        self._syncs: list[tuple[str, StoredSync]] | None = None

    def survey(self, progress: Progress = SILENT) -> Tally:
        """What ``run`` deletes, counted, deleting nothing."""
        found = Tally()
        for kind, log in ROWS.items():
            found.add(kind, log.count(self.engine, self.cutoff, self._kept(kind)))
        syncs = self._past_syncs()
        with progress.stage("Measuring past syncs", "syncs") as advance:
            for done, (domain, sync) in enumerate(syncs, 1):
                found.add(Kind.RESULTS, {domain: measure(sync)})
                advance(done, len(syncs))
        return found

    def run(self, progress: Progress = SILENT, planned: Tally | None = None) -> Tally:
        """Delete what is older than the cutoff; ``deleted``, as it is when this returns or
        raises (Ctrl-C), is what was. ``planned``: the survey, for the progress' totals."""
        for kind, log in ROWS.items():
            total = planned.total(kind).count if planned else None
            with progress.stage(f"Deleting the {kind.what}", kind.unit) as advance:
                for batch in log.delete(self.engine, self.cutoff, self._kept(kind), self.batch):
                    self.deleted.add(kind, batch)
                    advance(self.deleted.total(kind).count, total)
        syncs = self._past_syncs()
        with progress.stage(f"Deleting the {Kind.RESULTS.what}", Kind.RESULTS.unit) as advance:
            for done, (domain, sync) in enumerate(syncs, 1):
                self.deleted.add(Kind.RESULTS, {domain: delete_sync(sync)})
                advance(done, len(syncs))
        return self.deleted

    def _kept(self, kind: Kind) -> list[int]:
        """The rows of ``kind`` kept whatever their age."""
        return last_push_rows(self.engine) if kind is Kind.REQUEST_LOG else []

    def _past_syncs(self) -> list[tuple[str, StoredSync]]:
        """Every domain's syncs older than the cutoff, but those kept whatever their age."""
        if self._syncs is None:
            waiting = PlanStore(self.engine).waiting_reports()
            self._syncs = [
                (domain, sync)
                for domain in self.store.domains()
                for sync in self.store.history(domain, self.cutoff, keep=waiting)
            ]
        return self._syncs


def reports_missing(plan: StoredPlan, now: datetime | None = None) -> str | None:
    """Why a plan's reports are not where it says, in a sentence: deleted by retention, or
    missing; None while they are there (or when it stored none)."""
    if not plan.reports:
        return None
    try:
        folder = SyncFolder(UPath(plan.reports))
        if folder.path.exists():
            return None
    except (ValueError, ImportError, OSError) as exc:  # a filesystem this process cannot read
        return f"its reports cannot be read here: {exc}"
    days = settings.retention_days()
    if (folder.started_at or plan.created_at) < cutoff(days, now):
        return (
            f"its reports were deleted by retention, which keeps syncs' results {days} days "
            f"({settings.retention_setting()}); the plan, its actions and their outcomes are "
            "kept"
        )
    return "its reports are not there any more: moved, or deleted by hand"
