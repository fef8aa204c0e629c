"""What notebooks read: a domain's reports and snapshots (the latest, or any past one), the
plans, the ledger, the SCIM request log and the failed syncs, as DataFrames, by domain and
time, without knowing where they are stored.

Reports and snapshots are in the result store (``store.results``: every sync, whether
``komeet-sync sync`` or a Dagster run made it, under the README's report names); the rest
is in the database (``KOMEET_SYNC_DATABASE_URL``).

    from komeet_sync.analysis.loader import Loader
    sync = Loader()
    sync.report("acme.com", "errors")                       # the latest
    sync.report("acme.com", "joiners", at="2026-11-01")     # the last one made by then
    sync.history("acme.com", "joiners")                     # every sync that made one
    sync.trend("acme.com")                                  # the counts of every sync
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from komeet_sync import settings
from komeet_sync.model.reports import ACCOUNTS, PLAN, RESULTS, SNAPSHOT, STORED_NAMES
from komeet_sync.model.snapshots import DirectorySnapshot
from komeet_sync.store.database import open_database
from komeet_sync.store.events import events_frame, recent_events
from komeet_sync.store.failures import recent_failures
from komeet_sync.store.ledger import Ledger
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.results import ResultStore
from komeet_sync.store.sync_folder import StoredSync
from komeet_sync.store.tables import LedgerRow, PlanRow, ScimRequestRow

TREND_REPORTS = ("joiners", "leavers", "updates", "duplicates", "errors")
SYNC_COLUMNS = ["sync_id", "started_at", "trigger", "run_id", "location"]


def utc(moment: Any) -> pd.Timestamp:
    """A time given by a user or read from the database, in UTC: a naive one is taken as
    UTC (SQLite gives naive datetimes, stored in UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


class NotStored(LookupError):
    """Nothing of that name is stored for that domain (at that time); the message says what
    there is."""


@dataclass
class Loader:
    """Reads komeet-sync's state: ``home``, ``database_url`` and ``results`` default to the
    settings (``KOMEET_SYNC_HOME``, ``KOMEET_SYNC_DATABASE_URL``, ``KOMEET_SYNC_RESULTS``);
    with ``home`` alone, the SQLite database and the syncs in it."""

    home: str | None = None
    database_url: str | None = None
    results: str | None = None

    def __post_init__(self) -> None:
        home = Path(self.home) if self.home else settings.home()
        self.store = ResultStore(self.results or settings.results_url(home), legacy_home=home)
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            url = self.database_url
            if not url and self.home and not settings.database_url_configured():
                url = f"sqlite:///{(Path(self.home) / 'komeet_sync.db').resolve()}"
            self._engine = open_database(url)  # None: the settings
        return self._engine

    # Reports and snapshots ------------------------------------------------------------

    def syncs(self, domain: str, name: str | None = None) -> pd.DataFrame:
        """Every stored sync of ``domain`` (that made ``name``, if given), oldest first: its
        id, when it started, who ran it (``komeet-sync sync``, a Dagster run) and where it
        is stored."""
        rows = []
        for sync in self.store.syncs(domain):
            if name is not None and not sync.has(name):
                continue
            record = sync.record()
            rows.append(
                {
                    "sync_id": sync.sync_id,
                    "started_at": pd.Timestamp(sync.started_at) if sync.started_at else pd.NaT,
                    "trigger": record.get("trigger", ""),
                    "run_id": record.get("run_id"),
                    "location": sync.location,
                }
            )
        return pd.DataFrame(rows, columns=SYNC_COLUMNS)

    def history(self, domain: str, name: str) -> pd.DataFrame:
        """Every stored sync of ``domain`` that made ``name``, oldest first."""
        self._check_name(name)
        return self.syncs(domain, name)

    def value(self, domain: str, name: str, at: Any = None, sync_id: str | None = None) -> Any:
        """The stored value of ``name``: the latest, the one of ``sync_id``, or the last one
        made at or before ``at`` (a datetime or a date string)."""
        self._check_name(name)
        return self._sync(domain, name, at, sync_id).read(name)

    def report(
        self, domain: str, name: str, at: Any = None, sync_id: str | None = None
    ) -> pd.DataFrame:
        """A report as a DataFrame (``plan``: its actions; ``results``: the ledger rows;
        ``snapshot``: the directory's users; ``komeet_accounts``: the accounts)."""
        value = self.value(domain, name, at, sync_id)
        if name == PLAN.name:
            return value.actions
        if name == RESULTS.name:
            return value.entries
        if name == SNAPSHOT:
            return value.users
        if name == ACCOUNTS:
            return value.accounts
        return value

    def snapshot(
        self, domain: str, at: Any = None, sync_id: str | None = None
    ) -> DirectorySnapshot:
        """The directory as the sync read it: users, aliases, members, groups."""
        return self.value(domain, SNAPSHOT, at, sync_id)

    def trend(self, domain: str) -> pd.DataFrame:
        """One row per sync of ``domain`` that made reports, oldest first: when, its id and
        trigger, how many rows each report had, its plan, the guards that held it, who
        approved it (as the sync stored it), and how many actions Komeet accepted
        (``applied``) and refused (``failed``) after it, before the next sync (the ledger)."""
        rows = []
        for sync in self.store.syncs(domain):
            if not sync.has("joiners"):
                continue
            record = sync.record()
            row: dict[str, Any] = {
                "started_at": pd.Timestamp(sync.started_at) if sync.started_at else pd.NaT,
                "sync_id": sync.sync_id,
                "trigger": record.get("trigger", ""),
                "run_id": record.get("run_id"),
            }
            row |= {name: sync.rows(name) for name in TREND_REPORTS}
            plan = sync.read(PLAN.name).stored if sync.has(PLAN.name) else None
            row["plan_id"] = plan.plan_id if plan else None
            row["actions"] = plan.size if plan else 0
            row["held"] = ", ".join(hold.guard.value for hold in plan.holds) if plan else ""
            row["approved_by"] = plan.approved_by if plan else None
            rows.append(row)
        if not rows:
            raise NotStored(self._nothing(domain, "joiners"))
        frame = pd.DataFrame(rows)
        frame[["applied", "failed"]] = self._outcomes_after(domain, frame["started_at"])
        return frame

    def _outcomes_after(self, domain: str, syncs: pd.Series) -> pd.DataFrame:
        """The ledger's applied and failed actions of ``domain``, counted against the last
        sync (``syncs``, ascending times) before each was sent."""
        ledger = self.ledger(domain)
        done = ledger[ledger["status"].isin(["applied", "failed"])]
        runs = pd.DataFrame({"sync": range(len(syncs)), "at": syncs.reset_index(drop=True)})
        if done.empty:
            return pd.DataFrame(0, index=runs.index, columns=["applied", "failed"])
        sent = pd.to_datetime(done["sent_at"].fillna(done["finished_at"]))
        sent = sent.dt.tz_localize(UTC) if sent.dt.tz is None else sent.dt.tz_convert(UTC)
        timed = pd.DataFrame(
            {"at": sent.reset_index(drop=True), "status": done["status"].reset_index(drop=True)}
        )
        placed = pd.merge_asof(
            timed.sort_values("at"), runs.astype({"at": timed["at"].dtype}), on="at"
        )
        counts = placed.pivot_table(
            index="sync", columns="status", values="at", aggfunc="count", fill_value=0
        )
        counts = counts.reindex(index=runs["sync"], columns=["applied", "failed"], fill_value=0)
        return counts.fillna(0).astype("int64").reset_index(drop=True)

    def domains(self) -> list[str]:
        """The domains with stored syncs."""
        return self.store.domains()

    def _check_name(self, name: str) -> None:
        if name not in STORED_NAMES:
            raise NotStored(
                f"{name!r} is not a stored report: name one of {', '.join(STORED_NAMES)}"
            )

    def _sync(self, domain: str, name: str, at: Any, sync_id: str | None) -> StoredSync:
        syncs = [sync for sync in self.store.syncs(domain) if sync.has(name)]
        if sync_id is not None:
            syncs = [sync for sync in syncs if sync.sync_id == sync_id]
        elif at is not None:
            syncs = [sync for sync in syncs if sync.started_at and sync.started_at <= utc(at)]
        if not syncs:
            raise NotStored(self._nothing(domain, name, at or sync_id))
        return syncs[-1]

    def _nothing(self, domain: str, name: str, when: Any = None) -> str:
        known = [other for other in self.store.domains() if self.store.latest(other, name)]
        when_text = f" at {when}" if when is not None else ""
        return (
            f"no {name} stored for {domain}{when_text} in {self.store.root}; domains with "
            f"{name}: {', '.join(known) or 'none yet (run a sync, or make demo)'}"
        )

    # The database ---------------------------------------------------------------------

    def plans(self, domain: str | None = None, limit: int = 1000) -> pd.DataFrame:
        return PlanStore(self.engine).list(domain, limit)

    def plan_actions(self, plan_id: str) -> pd.DataFrame:
        return PlanStore(self.engine).actions(plan_id)

    def ledger(self, domain: str | None = None, plan_id: str | None = None) -> pd.DataFrame:
        """Every action sent to Komeet, with its plan and domain: of one plan (its latest
        application), or of every plan of a domain."""
        if plan_id is not None:
            return Ledger(self.engine).entries(plan_id).assign(plan_id=plan_id)
        query = (
            select(PlanRow.domain, LedgerRow)
            .join(PlanRow, PlanRow.plan_id == LedgerRow.plan_id)
            .order_by(LedgerRow.finished_at, LedgerRow.idempotency_key)
        )
        if domain is not None:
            query = query.where(PlanRow.domain == domain)
        return self._frame(query)

    def scim_requests(
        self, domain: str | None = None, since: Any = None, limit: int = 10_000
    ) -> pd.DataFrame:
        """The SCIM request log (passwords never stored), newest last."""
        query = select(ScimRequestRow).order_by(ScimRequestRow.id.desc()).limit(limit)
        if domain is not None:
            query = query.where(ScimRequestRow.domain == domain)
        if since is not None:
            query = query.where(ScimRequestRow.at >= utc(since).to_pydatetime())
        return self._frame(query).iloc[::-1].reset_index(drop=True)

    def _frame(self, query: Any) -> pd.DataFrame:
        """The rows of ``query``, with its columns even when there are none."""
        with self.engine.connect() as connection:
            result = connection.execute(query)
            return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))

    def failures(self, domain: str | None = None, limit: int = 100) -> pd.DataFrame:
        return recent_failures(self.engine, domain, limit)

    def events(self, domain: str | None = None, limit: int = 100) -> pd.DataFrame:
        """What people were told (a plan held, a sync failed, a quarantine, SCIM pushes
        refused, the worker behind), newest first, with what became of telling them."""
        return events_frame(recent_events(self.engine, domain, limit))
