"""What notebooks read: a domain's reports and snapshots (the latest, or any past one), the
plans, the ledger, the SCIM request log and the failed syncs, as DataFrames, by domain and
time, without knowing where they are stored.

Reports and snapshots are the Dagster assets' values (``$KOMEET_SYNC_HOME/assets``, each
run's copy under ``history/``); the rest is in the database (``KOMEET_SYNC_DATABASE_URL``).

    from komeet_sync.loader import Loader
    sync = Loader()
    sync.report("acme.com", "sync_errors")                  # the latest
    sync.report("acme.com", "joiners", at="2026-11-01")     # the last one written by then
    sync.history("acme.com", "joiners")                     # every materialization
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from upath import UPath

from komeet_sync import settings
from komeet_sync.database import open_database
from komeet_sync.frame_files import read_result, read_stamp
from komeet_sync.frames import DirectorySnapshot
from komeet_sync.ledger import Ledger
from komeet_sync.plan_store import PlanStore
from komeet_sync.sync_failures import recent_failures
from komeet_sync.tables import LedgerRow, PlanRow, ScimRequestRow

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


class NotStored(LookupError):
    """Nothing of that name is stored for that domain (at that time); the message says what
    there is."""


@dataclass
class Loader:
    """Reads komeet-sync's state: ``home`` and ``database_url`` default to the settings."""

    home: str | None = None
    database_url: str | None = None

    def __post_init__(self) -> None:
        root = self.home or str(settings.home().resolve())
        self.assets = UPath(root) / "assets"
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = open_database(self.database_url or settings.database_url())
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
        if at is None and run_id is None:
            folder = self.assets / name / domain
            if not folder.exists():
                raise NotStored(self._nothing(domain, name))
            return read_result(folder)
        history = self.history(domain, name)
        if run_id is not None:
            chosen = history[history["run_id"] == run_id]
        else:
            moment = pd.Timestamp(at)
            moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment
            chosen = history[history["written_at"] <= moment].tail(1)
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

    def snapshot(self, domain: str, at: Any = None, run_id: str | None = None) -> DirectorySnapshot:
        """The directory as the sync read it: users, aliases, members, groups."""
        return self.value(domain, "directory_users", at, run_id).snapshot

    def _nothing(self, domain: str, name: str, when: Any = None) -> str:
        known = sorted(p.name for p in self.assets.iterdir()) if self.assets.exists() else []
        when_text = f" at {when}" if when is not None else ""
        return (
            f"no {name} stored for {domain}{when_text} under {self.assets}; stored: "
            f"{', '.join(k for k in known if k != 'history') or 'nothing yet (run a sync)'}"
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
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).mappings().all())

    def scim_requests(
        self, domain: str | None = None, since: Any = None, limit: int = 10_000
    ) -> pd.DataFrame:
        """The SCIM request log (passwords never stored), newest last."""
        query = select(ScimRequestRow).order_by(ScimRequestRow.id.desc()).limit(limit)
        if domain is not None:
            query = query.where(ScimRequestRow.domain == domain)
        if since is not None:
            moment = pd.Timestamp(since)
            moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment
            query = query.where(ScimRequestRow.at >= moment.to_pydatetime())
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all())
        return frame.iloc[::-1].reset_index(drop=True)

    def failures(self, domain: str | None = None, limit: int = 100) -> pd.DataFrame:
        return recent_failures(self.engine, domain, limit)
