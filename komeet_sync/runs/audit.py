"""The offline audit: reconcile exported directory data against exported Komeet accounts
and write the reports, without calling Google, the IdP or Komeet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from komeet_sync.engine.reconcile import Reconciliation, reconcile
from komeet_sync.model.domain_config import DomainConfig
from komeet_sync.model.frames import DirectorySnapshot
from komeet_sync.sources.exports import (
    GOOGLE_MEMBERS,
    GOOGLE_USERS,
    SCIM_RESOURCES,
    ExportFormatError,
    load_json,
    unpack,
)
from komeet_sync.sources.google import resources as google_resources
from komeet_sync.sources.scim import resources as scim_resources

REPORTS = ("joiners", "leavers", "updates", "duplicates", "errors", "out_of_scope", "plan")


@dataclass(frozen=True)
class AuditFiles:
    komeet: Path
    google_users: Path | None = None
    google_members: Path | None = None
    scim_users: Path | None = None
    scim_groups: Path | None = None

    @property
    def source(self) -> str:
        """ "google" or "scim": the one source these files are of."""
        google = self.google_users is not None or self.google_members is not None
        scim = self.scim_users is not None or self.scim_groups is not None
        if google == scim:
            raise ExportFormatError(
                "give one source: --google-users with --google-members, or --scim-users "
                "(with --scim-groups when groups are selected)"
            )
        return "google" if google else "scim"


def run_audit(
    config: DomainConfig, files: AuditFiles, out: Path, *, last_good_desired: int | None = None
) -> Reconciliation:
    """Read the files, reconcile, and write every report to ``out`` (CSV and Parquet) with
    ``summary.json``. Raises ExportFormatError naming the file when one cannot be read."""
    snapshot = read_snapshot(config, files)
    komeet, komeet_errors = read_komeet(files.komeet)
    result = reconcile(
        snapshot, komeet, config, last_good_desired=last_good_desired, komeet_errors=komeet_errors
    )
    write_reports(result, out)
    return result


def read_snapshot(config: DomainConfig, files: AuditFiles) -> DirectorySnapshot:
    if files.source == "google":
        if files.google_users is None or files.google_members is None:
            raise ExportFormatError(
                "a Google audit needs both --google-users (users.list) and --google-members "
                "(members.list of each selected group)"
            )
        users = unpack(
            load_json(files.google_users, GOOGLE_USERS), files.google_users, "users", GOOGLE_USERS
        )
        members = _members_by_group(files.google_members)
        return google_resources.snapshot(
            users, {group: members.get(group) for group in config.groups} | members
        )
    assert files.scim_users is not None
    if files.scim_groups is None and config.groups:
        raise ExportFormatError(
            f"groups are selected ({', '.join(config.groups)}) but no --scim-groups file was "
            "given: export the IdP's groups, or leave out --group"
        )
    users_kind = SCIM_RESOURCES.format(kind="User")
    users = unpack(
        load_json(files.scim_users, users_kind), files.scim_users, "Resources", users_kind
    )
    groups: list = []
    if files.scim_groups is not None:
        groups_kind = SCIM_RESOURCES.format(kind="Group")
        groups = unpack(
            load_json(files.scim_groups, groups_kind), files.scim_groups, "Resources", groups_kind
        )
    return scim_resources.snapshot(users, groups, config.groups)


def read_komeet(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    kind = SCIM_RESOURCES.format(kind="User")
    return scim_resources.komeet_users(unpack(load_json(path, kind), path, "Resources", kind))


def _members_by_group(path: Path) -> dict[str, list | None]:
    document = load_json(path, GOOGLE_MEMBERS)
    if not isinstance(document, dict):
        raise ExportFormatError(
            f"{path}: the top level is {type(document).__name__}; expected {GOOGLE_MEMBERS}"
        )
    members: dict[str, list | None] = {}
    for group, value in document.items():
        if value is None:
            members[str(group).strip().lower()] = None
            continue
        members[str(group).strip().lower()] = unpack(
            value, Path(f"{path}[{group!r}]"), "members", GOOGLE_MEMBERS
        )
    return members


def write_reports(
    result: Reconciliation, out: Path, summary: dict[str, object] | None = None
) -> None:
    """Every report as CSV and Parquet, and ``summary.json`` (the result's summary unless
    another is given)."""
    out.mkdir(parents=True, exist_ok=True)
    frames = dict(result.reports) | {"plan": result.plan.actions}
    for name in REPORTS:
        frame = frames[name]
        frame.to_csv(out / f"{name}.csv", index=False)
        frame.to_parquet(out / f"{name}.parquet", index=False)
    summary = result.summary() if summary is None else summary
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
