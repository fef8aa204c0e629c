"""What notebooks read: a domain's reports and snapshots (the latest, or any past one), the
plans, the ledger, the SCIM request log and the failed syncs, as DataFrames, by domain and
time, without knowing where they are stored.

Reports and snapshots are the Dagster assets' values (``$KOMEET_SYNC_HOME/assets``, each
run's copy under ``history/``); the rest is in the database (``KOMEET_SYNC_DATABASE_URL``).

    from komeet_sync.analysis.loader import Loader
    sync = Loader()
    sync.report("acme.com", "sync_errors")                  # the latest
    sync.report("acme.com", "joiners", at="2026-11-01")     # the last one written by then
    sync.history("acme.com", "joiners")                     # every materialization
    sync.trend("acme.com")                                  # the counts of every sync
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import Engine, select
from upath import UPath

from komeet_sync import settings
from komeet_sync.model.frames import DirectorySnapshot
from komeet_sync.store.database import open_database
from komeet_sync.store.failures import recent_failures
from komeet_sync.store.frame_files import FRAME, read_result, read_stamp
from komeet_sync.store.ledger import Ledger
from komeet_sync.store.plans import PlanStore
from komeet_sync.store.tables import LedgerRow, PlanRow, ScimRequestRow

REPORTS = (
    "joiners",
    "leavers",
    "updates",
    "duplicates",
    "sync_errors",
    "out_of_scope",
    "provisioning_plan",
    "provisioning_results",
    "komeet_users",
    "directory_users",
)


TREND_REPORTS = ("joiners", "leavers", "updates", "duplicates", "sync_errors")


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
    """Reads komeet-sync's state: ``home`` and ``database_url`` default to the settings
    (``KOMEET_SYNC_HOME``, ``KOMEET_SYNC_DATABASE_URL``); with ``home`` alone, the SQLite
    database in it."""

    home: str | None = None
    database_url: str | None = None

    def __post_init__(self) -> None:
        root = self.home or str(settings.home().resolve())
        self.assets = UPath(root) / "assets"
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.database_url:
                url = self.database_url
            elif self.home and not settings.database_url_configured():
                url = f"sqlite:///{(Path(self.home) / 'komeet_sync.db').resolve()}"
            else:
                url = settings.database_url()
            self._engine = open_database(url)
        return self._engine

    # Reports and snapshots ------------------------------------------------------------

    def history(self, domain: str, name: str) -> pd.DataFrame:
        """Every stored materialization of ``name`` for ``domain``, oldest first: its run
        and when it was written."""
        folder = self.assets / "history" / name / domain
        rows = []
        if folder.exists():
            for run in folder.iterdir():
                stamp = read_stamp(run)
                written = stamp.get("written_at")
                rows.append(
                    {
                        "run_id": stamp.get("run_id", run.name),
                        "written_at": pd.Timestamp(written) if written else pd.NaT,
                        "path": str(run),
                    }
                )
        frame = pd.DataFrame(rows, columns=["run_id", "written_at", "path"])
        return frame.sort_values("written_at", kind="stable").reset_index(drop=True)

    def value(self, domain: str, name: str, at: Any = None, run_id: str | None = None) -> Any:
        """The stored value of ``name``: the latest, the one ``run_id`` wrote, or the last
        one written at or before ``at`` (a datetime or a date string)."""
        if name not in REPORTS:
            raise NotStored(f"{name!r} is not a stored report: name one of {', '.join(REPORTS)}")
        if at is None and run_id is None:
            folder = self.assets / name / domain
            if not folder.exists():
                raise NotStored(self._nothing(domain, name))
            return read_result(folder)
        history = self.history(domain, name)
        if run_id is not None:
            chosen = history[history["run_id"] == run_id]
        else:
            chosen = history[history["written_at"] <= utc(at)].tail(1)
        if chosen.empty:
            raise NotStored(self._nothing(domain, name, at or run_id))
        return read_result(UPath(chosen["path"].iloc[-1]))

    def report(
        self, domain: str, name: str, at: Any = None, run_id: str | None = None
    ) -> pd.DataFrame:
        """A report as a DataFrame (the plan's actions, the results' ledger rows, the
        Komeet accounts and the desired people included)."""
        value = self.value(domain, name, at, run_id)
        if isinstance(value, pd.DataFrame):
            return value
        for frame in ("actions", "results", "accounts"):
            if hasattr(value, frame):
                return getattr(value, frame)
        if hasattr(value, "snapshot"):
            return value.snapshot.users
        raise NotStored(f"{name} of {domain} is not a table")

    def trend(self, domain: str) -> pd.DataFrame:
        """One row per sync of ``domain`` that computed reports, oldest first: when, its
        run, how many rows each report had, its plan, the guards that held it, who approved
        it, and how many actions Komeet accepted (``applied``) and refused (``failed``)
        after it, before the next sync (the ledger)."""
        runs = self.history(domain, "joiners")
        if runs.empty:
            raise NotStored(self._nothing(domain, "joiners"))
        rows = []
        for run in runs.to_dict("records"):
            run_id = str(run["run_id"])
            row: dict[str, Any] = {"written_at": run["written_at"], "run_id": run_id}
            for name in TREND_REPORTS:
                stored = self.assets / "history" / name / domain / run_id / FRAME
                row[name] = pq.ParquetFile(stored.open("rb")).metadata.num_rows
            plan_folder = self.assets / "history" / "provisioning_plan" / domain / run_id
            plan = read_result(plan_folder).plan if plan_folder.exists() else None
            row["plan_id"] = plan.plan_id if plan else None
            row["actions"] = plan.size if plan else 0
            row["held"] = ", ".join(hold.guard.value for hold in plan.holds) if plan else ""
            row["approved_by"] = plan.approved_by if plan else None
            rows.append(row)
        frame = pd.DataFrame(
            rows, columns=["written_at", "run_id", *TREND_REPORTS, "plan_id", "actions",
                           "held", "approved_by"],
        )  # fmt: skip
        frame[["applied", "failed"]] = self._outcomes_after(domain, frame["written_at"])
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

    def snapshot(self, domain: str, at: Any = None, run_id: str | None = None) -> DirectorySnapshot:
        """The directory as the sync read it: users, aliases, members, groups."""
        return self.value(domain, "directory_users", at, run_id).snapshot

    def domains(self) -> list[str]:
        """The domains with stored reports."""
        folder = self.assets / "joiners"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    def _nothing(self, domain: str, name: str, when: Any = None) -> str:
        folder = self.assets / name
        known = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        when_text = f" at {when}" if when is not None else ""
        return (
            f"no {name} stored for {domain}{when_text} under {self.assets}; domains with "
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
