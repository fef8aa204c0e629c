"""One sync's folder: each of its results written and read under the README's names, in the
layout ``store.results`` describes. The offline audit's ``--out`` is such a folder too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd
from upath import UPath

from komeet_sync.model.reports import ACCOUNTS, ACTION_FAILED, PLAN, RECONCILED, RESULTS, SNAPSHOT
from komeet_sync.store.frame_files import (
    frame_rows,
    read_frame,
    read_result,
    write_frame,
    write_result,
)
from komeet_sync.store.ledger import ResultsReport
from komeet_sync.store.plans import PlanReport, StoredPlan

SYNC_FILE = "sync.json"
SUMMARY_FILE = "summary.json"
_STAMP = re.compile(r"^(\d{8}T\d{6})(?:\.(\d{3}))?Z")
_FRAME_REPORTS = {report.name for report in RECONCILED}


class ResultError(LookupError):
    """A result that is not stored, or a value that is not one; the message says which."""


class StoredSync(Protocol):
    """A sync as the store lists it: in today's layout (``SyncFolder``) or an older one."""

    @property
    def sync_id(self) -> str: ...

    @property
    def started_at(self) -> datetime | None: ...

    @property
    def location(self) -> str: ...

    def has(self, name: str) -> bool: ...

    def read(self, name: str) -> Any: ...

    def rows(self, name: str) -> int: ...

    def record(self) -> dict[str, Any]: ...

    def folders(self) -> list[UPath]: ...


@dataclass(frozen=True)
class SyncFolder:
    """One sync's folder (or the offline audit's ``--out``): each name written and read in
    the layout above."""

    path: UPath

    @property
    def sync_id(self) -> str:
        return self.path.name

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def started_at(self) -> datetime | None:
        found = _STAMP.match(self.sync_id)
        if found is None:
            return None
        moment = datetime.strptime(found.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        return moment.replace(microsecond=int(found.group(2) or 0) * 1000)

    def folders(self) -> list[UPath]:
        """Where the sync is stored: its folder."""
        return [self.path]

    def record(self) -> dict[str, Any]:
        """The sync's ``sync.json``: who ran it and when (empty for an audit's folder)."""
        return self._read_json(SYNC_FILE) or {}

    def keep_record(self, record: dict[str, Any]) -> None:
        """Write ``sync.json``, unless the sync has one already (a run's later steps)."""
        if not (self.path / SYNC_FILE).exists():
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_json(SYNC_FILE, record)

    def summary(self) -> dict[str, Any] | None:
        """The reconciliation's ``summary.json`` (counts, plan id, holds); None when the
        sync has not planned (yet)."""
        return self._read_json(SUMMARY_FILE)

    def is_dry_run(self) -> bool:
        """Whether the sync planned to send nothing (``sync --dry-run``), as its
        ``sync.json`` says. Folders from before it said so: a dry run stored no
        ``plan.json``, or one marked as a dry run's; the CLI's folders from before this
        layout have neither ``sync.json`` nor ``plan.json``, and are not known as dry runs."""
        record = self.record()
        if "dry_run" in record:
            return bool(record["dry_run"])
        if not record or not (self.path / SUMMARY_FILE).exists():
            return False
        stored = self._read_json("plan.json")
        return stored is None or bool(stored.get("dry_run"))

    def has(self, name: str) -> bool:
        if name in (SNAPSHOT, ACCOUNTS):
            return (self.path / name).exists()
        return (self.path / f"{name}.parquet").exists()

    def rows(self, name: str) -> int:
        """How many rows the report ``name`` has, read from its Parquet metadata."""
        return frame_rows(self.path / f"{name}.parquet")

    def write(self, name: str, value: Any) -> None:
        """Store ``value`` under ``name``, replacing what was there: a report's frame, the
        plan (``PlanReport``), the results (``ResultsReport``: their failed actions join
        this sync's errors report, ARCHITECTURE.md "Reports"), or what was read."""
        self.path.mkdir(parents=True, exist_ok=True)
        if name in (SNAPSHOT, ACCOUNTS):
            folder = self.path / name
            if folder.exists():
                folder.fs.rm(str(folder), recursive=True)
            write_result(value, folder)
        elif name in _FRAME_REPORTS and isinstance(value, pd.DataFrame):
            self._write_table(name, value)
        elif name == PLAN.name and isinstance(value, PlanReport):
            self._write_table(name, value.actions)
            self._write_json(SUMMARY_FILE, value.summary)
            if value.stored is not None:
                self._write_json("plan.json", value.stored.as_dict())
        elif name == RESULTS.name and isinstance(value, ResultsReport):
            self._write_table(name, value.entries)
            self._write_json("results.json", value.as_dict())
            self._add_failed_actions(value)
        else:
            raise ResultError(f"cannot store a {type(value).__name__} as {name!r}")

    def read(self, name: str) -> Any:
        """What ``write`` stored under ``name``."""
        if not self.has(name):
            raise ResultError(f"{self.path} holds no {name}")
        if name in (SNAPSHOT, ACCOUNTS):
            return read_result(self.path / name)
        frame = self._read_table(name)
        if name == PLAN.name:
            stored = self._read_json("plan.json")
            return PlanReport(
                frame,
                self._read_json(SUMMARY_FILE) or {},
                StoredPlan.from_dict(stored) if stored else None,
            )
        if name == RESULTS.name:
            # Folders of the CLI before results.json: the counts are the ledger's statuses.
            facts = self._read_json("results.json") or {
                "plan_id": (self._read_json(SUMMARY_FILE) or {}).get("plan_id", ""),
                "application_id": None,
                "counts": frame["status"].value_counts().to_dict(),
            }
            return ResultsReport(entries=frame, **facts)
        return frame

    def _write_table(self, name: str, frame: pd.DataFrame) -> None:
        write_frame(frame, self.path / f"{name}.parquet")
        with (self.path / f"{name}.csv").open("w") as out:
            frame.to_csv(out, index=False)

    def _read_table(self, name: str) -> pd.DataFrame:
        return read_frame(self.path / f"{name}.parquet")

    def _write_json(self, file: str, value: Any) -> None:
        (self.path / file).write_text(json.dumps(value, indent=2, default=str) + "\n")

    def _read_json(self, file: str) -> Any:
        path = self.path / file
        return json.loads(path.read_text()) if path.exists() else None

    def _add_failed_actions(self, results: ResultsReport) -> None:
        """The actions Komeet refused, as rows of this sync's errors report (replacing an
        earlier apply's)."""
        if not self.has("errors"):
            return
        before = self._read_table("errors")
        errors = before[before["error"] != ACTION_FAILED]
        failed = results.failed
        if failed.empty and len(errors) == len(before):
            return
        added = pd.DataFrame(
            {
                "source": "komeet",
                "account_id": failed["komeet_id"],
                "email": failed["user_name"],
                "error": ACTION_FAILED,
                "detail": failed["outcome"],
                "reason": failed["action"] + " failed; see results.csv for the response",
            }
        ).astype(errors.dtypes.to_dict())
        if len(added):
            errors = pd.concat([errors, added], ignore_index=True)
        self._write_table("errors", errors)
